"""The benchmarks' own measuring code: placement_bench places every queued task and reports
decisions beside placements; dedup_bench's worker CPU time counts a process tree's CPU, not
its wall time; the peers bench runs Celery against a private redis-server and leaves
nothing behind (when scripts/install-peers has made its venv)."""
import os
import subprocess
import sys
import unittest

from harness import BIN_DIR, SOURCE_DIR, pid_alive

sys.path.insert(0, os.path.join(SOURCE_DIR, "bench"))
import dedup_bench  # noqa: E402

PEERS_PYTHON = os.path.join(os.environ.get("FLOWMESH_CACHE_DIR", "/var/cache/flowmesh"),
                            "peers-venv", "bin", "python")


def figures(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


# A process tree that has used ~0.6 CPU seconds by the time it prints "ready": a child that
# burned 0.3 s and was reaped, a child that burned 0.3 s and is still alive, and a root
# that itself burns almost nothing; then everything blocks on stdin.
TREE = r"""
import subprocess, sys, time
BURN = "import time, sys\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
subprocess.run([sys.executable, "-c", BURN], check=True)
live = subprocess.Popen([sys.executable, "-c", BURN + "print('ready', flush=True)\nsys.stdin.read()"],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
assert live.stdout.readline().strip() == "ready"
print("ready", flush=True)
sys.stdin.read()
live.stdin.close()
live.wait()
"""


class BenchTest(unittest.TestCase):
    def test_placement_bench_places_every_queued_task(self):
        out = subprocess.run([os.path.join(BIN_DIR, "placement_bench"), "20000"], check=True,
                             capture_output=True, text=True, timeout=300).stdout
        f = figures(out)
        self.assertEqual(f["tasks_placed"], "20000")
        self.assertEqual(f["unique_keys_tasks_placed"], "20000")
        self.assertGreater(float(f["tasks_per_decision"]), 1.0)  # batches of a shared key
        self.assertEqual(f["unique_keys_tasks_per_decision"], "1.00")
        self.assertEqual(f["unique_keys_batch_decisions_per_sec"], f["unique_keys_placements_per_sec"])
        self.assertGreater(float(f["batch_decisions_per_sec"]), 0)

    def test_worker_cpu_seconds_counts_live_and_reaped_descendants(self):
        tree = subprocess.Popen([sys.executable, "-c", TREE], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        try:
            self.assertEqual(tree.stdout.readline().strip(), "ready")
            cpu = dedup_bench.worker_cpu_seconds({tree.pid})
            self.assertGreaterEqual(cpu, 0.55)  # both children, not just the idle root
            self.assertLess(cpu, 0.6 + 1.5)     # the interpreters' start-up, nothing more
        finally:
            tree.stdin.close()
            tree.wait(timeout=60)

    @unittest.skipUnless(os.path.exists(PEERS_PYTHON), "no peers venv (scripts/install-peers)")
    def test_celery_peer_runs_on_a_private_redis_and_stops_it(self):
        env = dict(os.environ, BENCH_TASKS="50", BENCH_LATENCY_RUNS="5")
        run = subprocess.run([PEERS_PYTHON, os.path.join(SOURCE_DIR, "bench", "peers_bench.py"), "celery"],
                             env=env, check=True, capture_output=True, text=True, timeout=300)
        f = figures(run.stdout)
        self.assertEqual(f["celery_workers"], "2")
        self.assertGreater(float(f["celery_tasks_per_sec"]), 0)
        self.assertLessEqual(float(f["celery_latency_p50_ms"]), float(f["celery_latency_p99_ms"]))
        # The redis-server it started is stopped by pid before it returns.
        redis_pid = int(figures(run.stderr)["peers_bench: redis_server_pid"])
        self.assertFalse(pid_alive(redis_pid))


if __name__ == "__main__":
    unittest.main()
