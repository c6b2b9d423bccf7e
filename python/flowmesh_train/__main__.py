"""python -m flowmesh_train: one training attempt driven over stdin/stdout (see protocol.py).

python -m flowmesh_train --probe prints the versions of the training packages as JSON and
exits 0 when all of them are installed (the worker's check before it offers the task types).
"""
import importlib.metadata
import importlib.util
import json
import os
import sys
import traceback

from . import PROTOCOL_VERSION
from .protocol import BridgeError, Channel

PACKAGES = ("torch", "transformers", "trl", "peft", "datasets", "accelerate")
TASK_TYPES = ("sft", "lora_sft", "dpo")


def versions():
    found = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def probe():
    found = versions()
    print(json.dumps({"protocol": PROTOCOL_VERSION, "task_types": list(TASK_TYPES),
                      "packages": found}))
    return 0 if all(found.values()) else 1


def run(channel):
    start = channel.read_start()
    # The worker is gone (stdin closed) or asks to stop: end at once, the worker reaps us.
    channel.watch_stdin(lambda reason: None if channel.finished else os._exit(3))
    task_type = start.get("task_type")
    spec = start.get("spec") or {}
    output_dir = start.get("output_dir")
    if not output_dir or not os.path.isdir(output_dir):
        raise BridgeError("invalid_argument", f"output_dir {output_dir!r} is not a folder")
    if task_type in ("sft", "lora_sft"):
        from . import sft as trainer
    elif task_type == "dpo":
        from . import dpo as trainer
    else:
        raise BridgeError("invalid_argument", f"task type {task_type!r} is not trained here "
                          f"({', '.join(TASK_TYPES)})")
    return trainer.run(task_type, spec, channel, output_dir)


def main():
    if "--probe" in sys.argv[1:]:
        return probe()
    channel = Channel()
    channel.send("hello", protocol=PROTOCOL_VERSION, pid=os.getpid(), packages=versions())
    try:
        result = run(channel)
    except BridgeError as exc:
        channel.finished = True
        channel.send("error", code=exc.code, message=exc.message)
        return 1
    except MemoryError:
        channel.finished = True
        channel.send("error", code="resource_exhausted", message="out of memory")
        return 1
    except Exception as exc:  # a crash of the trainer: reported, and retried elsewhere
        traceback.print_exc(file=sys.stderr)
        channel.finished = True
        channel.send("error", code="internal", message=f"{type(exc).__name__}: {exc}")
        return 1
    channel.finished = True
    channel.send("result", result=result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
