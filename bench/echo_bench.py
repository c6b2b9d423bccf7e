"""bench/run.sh echo: FlowMesh echo throughput and round-trip latency on a private stack."""
import http.client
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
from harness import Stack, wait_until  # noqa: E402

N_TASKS = int(os.environ.get("BENCH_TASKS", "1000"))
N_LATENCY = int(os.environ.get("BENCH_LATENCY_RUNS", "200"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))


def wide_workflow(n):
    nodes = "\n".join(f"      - name: t{i}\n        spec: {{taskType: echo, data: {{type: list, items: [\"x{i}\"]}}}}"
                      for i in range(n))
    return f"apiVersion: flowmesh/v1\nkind: Workflow\nmetadata: {{name: wide}}\nspec:\n  graph:\n    nodes:\n{nodes}\n"


# Each latency run echoes a different item, so it measures execution, not result reuse.
def single(k):
    return ("apiVersion: flowmesh/v1\nkind: Workflow\nmetadata: {name: one}\nspec:\n  taskType: echo\n"
            f"  data: {{type: list, items: [\"ping-{k}\"]}}\n")


class Conn:
    """One keep-alive HTTP connection."""

    def __init__(self, port, key=None):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.auth = {"Authorization": f"Bearer {key}"} if key else {}

    def post(self, path, body, ctype="text/plain"):
        self.c.request("POST", path, body=body, headers={"Content-Type": ctype, **self.auth})
        r = self.c.getresponse()
        data = r.read()
        if r.status >= 300:
            raise RuntimeError(f"POST {path}: {r.status} {data[:300]!r}")
        return json.loads(data)

    def get(self, path):
        self.c.request("GET", path, headers=self.auth)
        r = self.c.getresponse()
        return json.loads(r.read())


def wait_eos(port, wf_id, key=None):
    """Follows the workflow's SSE stream until eos (no polling)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("GET", f"/api/v1/workflows/{wf_id}/logs/stream",
              headers={"Authorization": f"Bearer {key}"} if key else {})
    r = c.getresponse()
    while True:
        line = r.fp.readline()
        if not line:
            raise RuntimeError("stream ended before eos")
        if line.startswith(b"event: eos"):
            c.close()
            return


def main():
    stack = Stack()
    # BENCH_AUTH=off measures the same run with authentication switched off (FLOWMESH_AUTH).
    auth_on = os.environ.get("BENCH_AUTH", "on") != "off"
    if not auth_on:
        stack.env["FLOWMESH_AUTH"] = "off"
    try:
        stack.up()
        stack.workers_up(WORKERS)
        key = stack.api_key if auth_on else None
        conn = Conn(stack.port, key)
        # Warm-up.
        wf = conn.post("/api/v1/workflows", single("warm-up"))
        wait_eos(stack.port, wf["workflow_id"], key)

        text = wide_workflow(N_TASKS)
        t0 = time.perf_counter()
        wf = conn.post("/api/v1/workflows", text)
        wait_eos(stack.port, wf["workflow_id"], key)
        elapsed = time.perf_counter() - t0
        info = conn.get(f"/api/v1/workflows/{wf['workflow_id']}")
        assert info["status"] == "DONE" and len(info["completed_tasks"]) == N_TASKS, info["status"]

        lat = []
        for k in range(N_LATENCY):
            t = time.perf_counter()
            wf = conn.post("/api/v1/workflows", single(k))
            wait_eos(stack.port, wf["workflow_id"], key)
            lat.append((time.perf_counter() - t) * 1000)
        lat.sort()
        print(f"auth={'on' if auth_on else 'off'}")
        print(f"tasks={N_TASKS}")
        print(f"workers={WORKERS}")
        print(f"tasks_per_sec={N_TASKS / elapsed:.0f}")
        print(f"latency_runs={N_LATENCY}")
        print(f"latency_p50_ms={statistics.median(lat):.2f}")
        print(f"latency_p99_ms={lat[min(len(lat) - 1, int(len(lat) * 0.99))]:.2f}")
        print(f"latency_max_ms={lat[-1]:.2f}")
    finally:
        stack.close()


if __name__ == "__main__":
    main()
