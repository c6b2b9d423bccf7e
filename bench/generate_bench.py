"""bench/run.sh generate: diffusion through the fabric (a private stack, one CPU worker, a
diffusion task submitted over the API) against the same diffusers pipeline called directly
in the same venv, in BENCH_GEN_ROUNDS (3) interleaved rounds (alternating which runs first),
best of each. The pipeline is the tiny random Stable Diffusion of python -m flowmesh_train.tiny
--kind diffusion; BENCH_GEN_STEPS (10) steps at BENCH_GEN_SIZE (64) pixels square, one
image, seeded. Prints key=value lines: fabric_wall_s (submit to DONE), direct_wall_s (a fresh
python: imports, load and generation, as the bridge's trainer does), their ratio, the
trainer's own generation seconds, and whether both made the same PNG (same_image)."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
from harness import SOURCE_DIR, Stack, wait_until  # noqa: E402

CACHE = os.environ.get("FLOWMESH_CACHE_DIR") or "/var/cache/flowmesh"
ML_PYTHON = os.environ.get("FLOWMESH_WORKER_TRAINING_PYTHON") or os.path.join(CACHE, "ml-venv", "bin", "python")
ROUNDS = int(os.environ.get("BENCH_GEN_ROUNDS", "3"))
STEPS = int(os.environ.get("BENCH_GEN_STEPS", "10"))
SIZE = int(os.environ.get("BENCH_GEN_SIZE", "64"))
PROMPT = "a lighthouse on a cliff at dawn"
# The direct run: what a user would write with diffusers, the same options and generator.
DIRECT = """
import hashlib, io, sys, torch
from diffusers import AutoPipelineForText2Image
pipe = AutoPipelineForText2Image.from_pretrained(sys.argv[1], torch_dtype=torch.float32)
pipe.set_progress_bar_config(disable=True)
image = pipe(prompt=[sys.argv[2]], num_inference_steps=int(sys.argv[3]), guidance_scale=7.5,
             height=int(sys.argv[4]), width=int(sys.argv[4]),
             generator=torch.Generator("cpu").manual_seed(1)).images[0]
out = io.BytesIO(); image.save(out, format="PNG", optimize=False)
print(hashlib.sha256(out.getvalue()).hexdigest())
"""


def direct(model):
    started = time.monotonic()
    p = subprocess.run([ML_PYTHON, "-c", DIRECT, model, PROMPT, str(STEPS), str(SIZE)],
                       check=True, capture_output=True, text=True)
    return {"wall": time.monotonic() - started, "sha256": p.stdout.strip().splitlines()[-1]}


def fabric(stack, model, round_no):
    doc = {"apiVersion": "flowmesh/v1", "kind": "Workflow", "metadata": {"name": f"gen-{round_no}"},
           "spec": {"taskType": "diffusion", "maxAttempts": 1, "cache": "never",
                    "model": {"source": {"type": "local", "identifier": model}},
                    "data": {"type": "list", "items": [PROMPT]},
                    "inference": {"num_inference_steps": STEPS, "guidance_scale": 7.5,
                                  "height": SIZE, "width": SIZE, "seed": 1}}}
    started = time.monotonic()
    wf_id = stack.api("POST", "/api/v1/workflows", json.dumps(doc),
                      headers={"Content-Type": "application/json"}, expect=201)["workflow_id"]
    wf = stack.wait_workflow(wf_id, timeout=1800)
    wall = time.monotonic() - started
    task = stack.tasks(wf_id)[0]
    if wf["status"] != "DONE":
        raise SystemExit(f"fabric diffusion failed: {task.get('error')}")
    result = stack.api("GET", f"/api/v1/results/{task['task_id']}")
    sha = {f["name"]: f["sha256"] for f in result["files"]}["images/image_0.png"]
    return {"wall": wall, "generation": result["generation_time_seconds"], "sha256": sha}


def main():
    if not os.access(ML_PYTHON, os.X_OK):
        raise SystemExit(f"no training venv at {ML_PYTHON}: run scripts/install-ml")
    folder = tempfile.mkdtemp(prefix="fm-gen-bench-")
    stack = Stack()
    try:
        model = os.path.join(folder, "sd")
        subprocess.run([ML_PYTHON, "-m", "flowmesh_train.tiny", model, "--kind", "diffusion"], check=True,
                       env=dict(os.environ, PYTHONPATH=os.path.join(SOURCE_DIR, "python")), capture_output=True)
        stack.up()
        stack.workers_up(1)
        wait_until(lambda: any("diffusion" in ((w.get("capabilities") or {}).get("supported_task_types") or [])
                               for w in stack.api("GET", "/api/v1/workers")) or None,
                   timeout=60, what="a worker offering diffusion")
        fab, dire = [], []
        for i in range(ROUNDS):
            if i % 2 == 0:
                dire.append(direct(model))
                fab.append(fabric(stack, model, i))
            else:
                fab.append(fabric(stack, model, i))
                dire.append(direct(model))
            print(f"round {i}: fabric {fab[-1]['wall']:.2f} s, direct {dire[-1]['wall']:.2f} s", file=sys.stderr)
        best_f = min(r["wall"] for r in fab)
        best_d = min(r["wall"] for r in dire)
        print(f"rounds={ROUNDS}")
        print(f"steps={STEPS}")
        print(f"size={SIZE}")
        print(f"fabric_wall_s={best_f:.2f}")
        print(f"direct_wall_s={best_d:.2f}")
        print(f"generate_ratio_fabric_vs_direct={best_f / best_d:.3f}")
        print(f"fabric_generation_s={min(r['generation'] for r in fab):.2f}")
        print(f"same_image={int(len({r['sha256'] for r in fab + dire}) == 1)}")
    finally:
        stack.close()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
