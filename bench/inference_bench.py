"""bench/run.sh inference (stack part): 8 inference tasks (128-token prompts, 128 new tokens
each) submitted at once through the full stack vs the same 8 one at a time, on one CPU
worker; and the worker's RSS with the model loaded. Prints key=value lines."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
from harness import Stack  # noqa: E402
from echo_bench import Conn, wait_eos  # noqa: E402

MODEL = sys.argv[1]
N = int(os.environ.get("BENCH_INFERENCE_TASKS", "8"))
NPP = int(os.environ.get("BENCH_PROMPT_TOKENS", "128"))
NTG = int(os.environ.get("BENCH_NEW_TOKENS", "128"))


def prompt(n, salt):
    """n tokens with gguf-gen's vocabulary: BOS + single-letter words."""
    state = 12345 + salt * 7919
    words = []
    for i in range(n - 1):
        state = (state * 1103515245 + 12345) % 2**32
        words.append(chr(ord("a") + (salt % 26 if i == 0 else (state >> 16) % 26)))
    return " ".join(words)


def workflow(name, salt, ntg=NTG):
    return json.dumps({
        "apiVersion": "flowmesh/v1", "kind": "Workflow", "metadata": {"name": name},
        "spec": {"taskType": "inference",
                 "model": {"source": {"type": "local", "identifier": MODEL}},
                 "data": {"type": "list", "items": [prompt(NPP, salt)]},
                 "inference": {"max_tokens": ntg, "min_tokens": ntg, "temperature": 0, "stream": False}}})


def main():
    stack = Stack()
    try:
        stack.up()
        stack.workers_up(1)
        key = stack.api_key
        conn = Conn(stack.port, key)
        # Warm-up: loads the model and sizes its compute buffers for a full batch.
        warm = [conn.post("/api/v1/workflows", workflow(f"warm-up-{i}", 90000 + i, ntg=4), "application/json")
                for i in range(N)]
        for wf in warm:
            wait_eos(stack.port, wf["workflow_id"], key)

        def run(names_salts):
            ids = [conn.post("/api/v1/workflows", workflow(n, s), "application/json")["workflow_id"]
                   for n, s in names_salts]
            for i in ids:
                wait_eos(stack.port, i, key)
            for i in ids:
                info = conn.get(f"/api/v1/workflows/{i}")
                assert info["status"] == "DONE", info
            return ids

        # Interleaved rounds, best of each (the machine may be shared); fresh prompts every
        # time, so no round reuses another's KV prefix.
        rounds = int(os.environ.get("BENCH_ROUNDS", "2"))
        batched = sequential = float("inf")
        for r in range(rounds):
            base = 1000 * r
            t0 = time.perf_counter()
            run([(f"together-{r}-{i}", base + i) for i in range(N)])
            batched = min(batched, time.perf_counter() - t0)
            t0 = time.perf_counter()
            for i in range(N):
                run([(f"alone-{r}-{i}", base + 100 + i)])
            sequential = min(sequential, time.perf_counter() - t0)

        rss_mb = 0.0
        for w in conn.get("/api/v1/stack/workers"):
            pid = w.get("pid")
            if pid:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            rss_mb = max(rss_mb, int(line.split()[1]) / 1024)
        print(f"stack_batched_seconds={batched:.2f}")
        print(f"stack_sequential_seconds={sequential:.2f}")
        print(f"batched_over_sequential={sequential / batched:.2f}")
        print(f"worker_rss_mb={rss_mb:.0f}")
    finally:
        stack.close()


if __name__ == "__main__":
    main()
