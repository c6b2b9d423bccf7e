"""bench/run.sh metrics: how long GET /metrics takes to render on a stack with workers.

A private stack with BENCH_WORKERS (4) CPU workers runs BENCH_WORKFLOWS (200) echo
workflows of distinct items first, so the registry holds what a working server holds
(tasks by type and status, filled histogram buckets, per-node worker gauges); then
BENCH_SCRAPES (500) GET /metrics on one keep-alive connection, timed on the client.
Prints metrics_render_p50_ms, metrics_render_p99_ms, metrics_bytes, metrics_series.
"""
import http.client
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
from harness import Stack, echo_workflow  # noqa: E402

WORKERS = int(os.environ.get("BENCH_WORKERS", "4"))
WORKFLOWS = int(os.environ.get("BENCH_WORKFLOWS", "200"))
SCRAPES = int(os.environ.get("BENCH_SCRAPES", "500"))


def main():
    s = Stack()
    try:
        s.up()
        s.workers_up(WORKERS)
        ids = [s.submit(echo_workflow(f"m{i}", items=(f"x{i}",)))["workflow_id"] for i in range(WORKFLOWS)]
        for wf in ids:
            s.wait_workflow(wf, timeout=300)
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
        headers = {"Authorization": f"Bearer {s.api_key}"}
        times, body = [], b""
        for _ in range(SCRAPES):
            t0 = time.perf_counter()
            conn.request("GET", "/metrics", headers=headers)
            r = conn.getresponse()
            body = r.read()
            times.append((time.perf_counter() - t0) * 1000)
            if r.status != 200:
                raise SystemExit(f"/metrics answered {r.status}: {body[:200]!r}")
        times.sort()
        series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
        print(f"metrics_render_p50_ms={statistics.median(times):.3f}")
        print(f"metrics_render_p99_ms={times[int(len(times) * 0.99) - 1]:.3f}")
        print(f"metrics_bytes={len(body)}")
        print(f"metrics_series={series}")
        print(f"metrics_workers={WORKERS}")
    finally:
        s.close()


if __name__ == "__main__":
    main()
