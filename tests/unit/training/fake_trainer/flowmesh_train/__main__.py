"""A stand-in for python/flowmesh_train that speaks the bridge protocol with the standard
library only, so the executor's handling of each outcome is tested without torch. What it
does is chosen by the start message's spec.fake."""
import json
import os
import subprocess
import sys


def send(kind, **fields):
    sys.stdout.write(json.dumps({"type": kind, **fields}) + "\n")
    sys.stdout.flush()


if "--probe" in sys.argv:
    probe = {"protocol": int(os.environ.get("FAKE_PROTOCOL", "1"))}
    if os.environ.get("FAKE_TASK_TYPES") is not None:  # comma-separated; absent: no field
        probe["task_types"] = [t for t in os.environ["FAKE_TASK_TYPES"].split(",") if t]
    print(json.dumps(probe))
    sys.exit(0)

send("hello", protocol=int(os.environ.get("FAKE_PROTOCOL", "1")))
start = json.loads(sys.stdin.readline())
fake = start["spec"].get("fake", "ok")
out = start["output_dir"]
if fake == "ok":
    send("log", message="training " + start["task_type"])
    for step in (1, 2, 3):
        send("progress", step=step, max_steps=3, loss=3.0 - step, tokens_per_second=100.5,
             junk="ignored")
    os.makedirs(os.path.join(out, "final_lora"))
    with open(os.path.join(out, "final_lora", "adapter.bin"), "wb") as f:
        f.write(b"weights")
    send("checkpoint", step=3, path="final_lora")
    print("a stray line on stderr", file=sys.stderr)
    send("result", result={"ok": True, "lr": start["spec"]["training"].get("learning_rate"),
                           "alpha": start["spec"].get("lora", {}).get("alpha")})
elif fake == "invalid":
    send("error", code="invalid_argument", message="data row 2 has no prompt")
    sys.exit(1)
elif fake == "internal":
    print("RuntimeError: CUDA out of memory", file=sys.stderr)
    send("error", code="internal", message="RuntimeError: boom")
    sys.exit(1)
elif fake == "crash":
    print("Fatal Python error: Segmentation fault", file=sys.stderr)
    sys.stderr.flush()
    os.abort()
elif fake == "silent_exit":
    sys.exit(0)
elif fake == "hang":
    child = subprocess.Popen(["sleep", "1000"])
    send("log", message=f"pids {os.getpid()} {child.pid}")
    sys.stdin.read()  # until the worker closes stdin or kills us
    child.wait()
