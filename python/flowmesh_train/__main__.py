"""python -m flowmesh_train: one training attempt driven over stdin/stdout (see protocol.py).

python -m flowmesh_train --probe prints the versions of the training packages as JSON, with
the task types this venv can run, and exits 0 when the core packages are installed (the
worker's check before it offers the task types: it offers those listed).
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
# Packages some task types need beyond PACKAGES (import names differ: PIL is pillow).
OPTIONAL = ("diffusers", "pillow")
OMNI_TYPES = ("omni_text2image", "omni_text2speech", "omni_text2audio", "omni_text2general",
              "omni_text2video")
TASK_TYPES = ("sft", "lora_sft", "dpo", "ppo", "diffusion", "image_classification",
              "image_classification_training") + OMNI_TYPES
NEEDS = {"diffusion": ("diffusers", "pillow"), "omni_text2image": ("diffusers", "pillow"),
         "image_classification": ("pillow",), "image_classification_training": ("pillow",)}


def versions():
    found = {}
    for name in PACKAGES + OPTIONAL:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def available_task_types(found):
    return [t for t in TASK_TYPES if all(found.get(p) for p in NEEDS.get(t, ()))]


def probe():
    found = versions()
    print(json.dumps({"protocol": PROTOCOL_VERSION, "task_types": available_task_types(found),
                      "packages": found}))
    return 0 if all(found[p] for p in PACKAGES) else 1


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
    elif task_type == "ppo":
        from . import ppo as trainer
    elif task_type == "diffusion":
        from . import diffusion as trainer
    elif task_type in ("image_classification", "image_classification_training"):
        from . import image_classification as trainer
    elif task_type in OMNI_TYPES:
        from . import omni as trainer
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
