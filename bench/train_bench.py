"""bench/run.sh train: SFT tokens/s through the fabric (a private stack, one CPU worker, an
sft task submitted over the API; the figure is the trainer's own tokens/s as its result
reports it) against the same trl script run directly in the same venv (bench/train_direct.py),
in BENCH_TRAIN_ROUNDS (5) interleaved rounds (alternating which runs first), best of each.
The model is a random 4-layer, 256-wide llama made here (python -m flowmesh_train.tiny), the
data 64 generated rows, BENCH_TRAIN_STEPS (60) steps of 8 rows. Prints key=value lines:
fabric_tokens_per_sec, direct_tokens_per_sec, train_ratio_vs_direct, fabric_wall_s /
direct_wall_s (submit to DONE / script start to exit: start-up included)."""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
from harness import SOURCE_DIR, Stack, wait_until  # noqa: E402

CACHE = os.environ.get("FLOWMESH_CACHE_DIR") or "/var/cache/flowmesh"
ML_PYTHON = os.environ.get("FLOWMESH_WORKER_TRAINING_PYTHON") or os.path.join(CACHE, "ml-venv", "bin", "python")
ROUNDS = int(os.environ.get("BENCH_TRAIN_ROUNDS", "5"))
ARGS = {"max_steps": int(os.environ.get("BENCH_TRAIN_STEPS", "60")), "batch_size": 8,
        "learning_rate": 1e-3, "seed": 1, "max_seq_length": 256}
WORDS = ("zorb quib flarn mipple violet bridge legs pebbles river stone cloud lantern copper "
         "whistle meadow harbour ember willow falcon orchard").split()


def rows():
    rng = random.Random(7)
    out = []
    for i in range(64):
        prompt = f"Q{i}: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 30))) + "? A:"
        answer = " " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60))) + "."
        out.append({"prompt": prompt, "response": answer})
    return out


def build_model(folder, data):
    corpus = os.path.join(folder, "corpus.txt")
    with open(corpus, "w") as f:
        for r in data:
            f.write(r["prompt"] + r["response"] + "\n")
    model = os.path.join(folder, "model")
    env = dict(os.environ, PYTHONPATH=os.path.join(SOURCE_DIR, "python"))
    subprocess.run([ML_PYTHON, "-m", "flowmesh_train.tiny", model, "--corpus", corpus, "--layers", "4",
                    "--hidden", "256"], check=True, env=env, capture_output=True)
    return model


def direct(model, data):
    started = time.monotonic()
    # The same rows as the fabric's trainer sees them: prompt + "\n" separator, completion.
    trl_rows = [{"prompt": r["prompt"] + "\n", "completion": r["response"]} for r in data]
    p = subprocess.run([ML_PYTHON, os.path.join(SOURCE_DIR, "bench", "train_direct.py"), model,
                        json.dumps(trl_rows), json.dumps(ARGS)], check=True, capture_output=True, text=True)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    out["wall"] = time.monotonic() - started
    return out


def fabric(stack, model, data, round_no):
    training = dict(ARGS, save_strategy="no", save_model=False)
    training["seed"] = ARGS["seed"] + round_no  # distinct fingerprints: never de-duplicated
    doc = {"apiVersion": "flowmesh/v1", "kind": "Workflow", "metadata": {"name": f"train-{round_no}"},
           "spec": {"taskType": "sft", "maxAttempts": 1,
                    "model": {"source": {"type": "local", "identifier": model}},
                    "data": {"items": data}, "training": training}}
    started = time.monotonic()
    wf_id = stack.api("POST", "/api/v1/workflows", json.dumps(doc),
                      headers={"Content-Type": "application/json"}, expect=201)["workflow_id"]
    wf = stack.wait_workflow(wf_id, timeout=1800)
    wall = time.monotonic() - started
    task = stack.tasks(wf_id)[0]
    if wf["status"] != "DONE":
        raise SystemExit(f"fabric training failed: {task.get('error')}")
    result = stack.api("GET", f"/api/v1/results/{task['task_id']}")
    return {"tokens_per_second": result["metrics"]["tokens_per_second"], "wall": wall,
            "last_loss": result["metrics"]["last_loss"]}


def main():
    if not os.access(ML_PYTHON, os.X_OK):
        raise SystemExit(f"no training venv at {ML_PYTHON}: run scripts/install-ml")
    folder = tempfile.mkdtemp(prefix="fm-train-bench-")
    stack = Stack()
    try:
        data = rows()
        model = build_model(folder, data)
        stack.up()
        stack.workers_up(1)
        wait_until(lambda: any("sft" in ((w.get("capabilities") or {}).get("supported_task_types") or [])
                               for w in stack.api("GET", "/api/v1/workers")) or None,
                   timeout=60, what="a worker offering sft")
        fab, dire = [], []
        for i in range(ROUNDS):
            # Alternating which goes first, so a change of background load hits both alike.
            if i % 2 == 0:
                dire.append(direct(model, data))
                fab.append(fabric(stack, model, data, i))
            else:
                fab.append(fabric(stack, model, data, i))
                dire.append(direct(model, data))
            print(f"round {i}: fabric {fab[-1]['tokens_per_second']:.0f} tokens/s, "
                  f"direct {dire[-1]['tokens_per_second']:.0f} tokens/s", file=sys.stderr)
        best_f = max(r["tokens_per_second"] for r in fab)
        best_d = max(r["tokens_per_second"] for r in dire)
        print(f"rounds={ROUNDS}")
        print(f"steps={ARGS['max_steps']}")
        print(f"fabric_tokens_per_sec={best_f:.1f}")
        print(f"direct_tokens_per_sec={best_d:.1f}")
        print(f"train_ratio_vs_direct={best_f / best_d:.3f}")
        print(f"fabric_wall_s={min(r['wall'] for r in fab):.2f}")
        print(f"direct_wall_s={min(r['wall'] for r in dire):.2f}")
        print(f"fabric_last_loss={fab[-1]['last_loss']:.4f}")
        print(f"direct_last_loss={dire[-1]['last_loss']:.4f}")
    finally:
        stack.close()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
