"""A real Prometheus scrapes the real stack: the scheduler's metrics come through its query API.

Starts the stack with one CPU worker, a Debian `prometheus` on a free port with a scrape
config for the server (the admin key as bearer token, 1 s scrape interval, storage in a temp
dir), runs echo workflows (more than the worker's slots, so some queue), one that is
cancelled, and an inference workflow on the tiny GGUF model; then polls Prometheus's HTTP
API (with a deadline) until queue depth, task rates by type and status, the placement
latency histogram, worker utilisation and inference tokens are all there. Prometheus is
stopped by pid.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

import re

from harness import SOURCE_DIR, StackTestCase, echo_workflow, ensure_demo_model, free_port, wait_until
from test_inference import inference_workflow

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


def prometheus_config(target, key, scrape_s=1):
    # YAML is a superset of JSON: no YAML writer needed.
    return json.dumps({
        "global": {"scrape_interval": f"{scrape_s}s", "evaluation_interval": f"{scrape_s}s"},
        "scrape_configs": [{
            "job_name": "flowmesh",
            "metrics_path": "/metrics",
            "scrape_interval": f"{scrape_s}s",
            "authorization": {"type": "Bearer", "credentials": key},
            "static_configs": [{"targets": [target]}],
        }],
    }, indent=2)


class Prometheus:
    """One prometheus process on a free port with its own storage dir."""

    def __init__(self, target, key):
        self.dir = tempfile.mkdtemp(prefix="fm-prom-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = os.path.join(self.dir, "prometheus.yml")
        with open(config, "w") as f:
            f.write(prometheus_config(target, key))
        self.log_path = os.path.join(self.dir, "prometheus.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={self.dir}/data",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def get(self, path, params=None):
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.loads(r.read())

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited {self.proc.returncode}:\n{self.log_tail()}")
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def query(self, expr):
        """The instant vector of `expr` as [(labels, value)]."""
        reply = self.get("/api/v1/query", {"query": expr})
        if reply.get("status") != "success":
            raise AssertionError(f"query {expr!r}: {reply}")
        return [(r["metric"], float(r["value"][1])) for r in reply["data"]["result"]]

    def log_tail(self):
        with open(self.log_path, errors="replace") as f:
            return "".join(f.readlines()[-30:])

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@unittest.skipUnless(os.path.exists(PROMETHEUS), "prometheus is not installed (scripts/install-deps)")
class PrometheusTest(StackTestCase):
    def setUp(self):
        super().setUp()
        self.prom = None

    def tearDown(self):
        if self.prom:
            self.prom.stop()
        super().tearDown()

    def test_scheduler_metrics_reach_prometheus(self):
        s = self.stack
        model = ensure_demo_model()
        s.up()
        s.workers_up(1)
        self.prom = Prometheus(f"127.0.0.1:{s.port}", s.api_key)
        prom = self.prom
        wait_until(prom.ready, timeout=60, what="prometheus ready")
        wait_until(lambda: prom.query('up{job="flowmesh"} == 1'), timeout=30,
                   what="prometheus scraping the server")

        # More sleeping echo tasks than the worker's 16 slots: some wait in the queue while
        # Prometheus scrapes every second.
        # Distinct items: identical echo tasks would be de-duplicated, not placed.
        ids = [s.submit(echo_workflow(f"prom-{i}", sleep=2.5, items=(f"m{i}",)))["workflow_id"]
               for i in range(40)]
        cancelled = s.submit(echo_workflow("prom-cancelled", sleep=60, items=("c",)))["workflow_id"]
        inference = s.submit(inference_workflow("prom-inference", model, ["The water cycle is"],
                                                {"max_tokens": 8, "temperature": 0}))["workflow_id"]
        wait_until(lambda: s.tasks(cancelled)[0]["status"] == "DISPATCHED", timeout=120,
                   what="the workflow to cancel running")
        s.api("POST", f"/api/v1/workflows/{cancelled}/cancel")
        for wf in ids + [inference]:
            self.assertEqual(s.wait_workflow(wf, timeout=180)["status"], "DONE", s.tasks(wf))
        self.assertEqual(s.wait_workflow(cancelled, timeout=60)["status"], "CANCELLED")

        def series(expr, pred=lambda v: v > 0):
            found = prom.query(expr)
            return found if found and all(pred(v) for _, v in found) else None

        def ended():
            got = {(m.get("task_type"), m.get("status")): v for m, v in
                   prom.query("sum by (task_type, status) (flowmesh_tasks_total)")}
            want = {("echo", "DONE"): len(ids), ("echo", "CANCELLED"): 1, ("inference", "DONE"): 1}
            return got if all(got.get(k, 0) >= n for k, n in want.items()) else None

        got = wait_until(ended, timeout=60, interval=0.5, what="task ends by type and status")
        self.assertEqual(got.get(("echo", "FAILED"), 0), 0)
        # A rate by type and status, as a dashboard plots it (each series exists, at 0, from
        # its task type's first submission, so rate() sees the first ends too).
        wait_until(lambda: series('sum by (task_type, status) '
                                  '(rate(flowmesh_tasks_total{task_type="echo",status="DONE"}[5m]))'),
                   timeout=30, interval=0.5, what="the echo DONE rate")
        wait_until(lambda: series("max_over_time(flowmesh_queue_depth[10m])"), timeout=30,
                   interval=0.5, what="a queue depth above 0 in Prometheus")
        # Every ended task was placed once: the histogram's count reaches the task count.
        placed = wait_until(lambda: series("flowmesh_placement_latency_seconds_count",
                                           lambda v: v >= len(ids) + 2),
                            timeout=30, interval=0.5, what="the placement latency histogram")
        self.assertEqual(len(placed), 1)
        buckets = prom.query("flowmesh_placement_latency_seconds_bucket")
        self.assertGreater(len(buckets), 10)
        self.assertIn("+Inf", {m["le"] for m, _ in buckets})
        quantile = prom.query("histogram_quantile(0.9, sum by (le) "
                              "(increase(flowmesh_placement_latency_seconds_bucket[10m])))")
        self.assertEqual(len(quantile), 1)
        self.assertGreater(quantile[0][1], 0)  # queued tasks waited for a free slot
        util = wait_until(lambda: series("max_over_time(flowmesh_worker_utilization[10m])"),
                          timeout=30, interval=0.5, what="worker utilisation above 0")
        self.assertLessEqual(util[0][1], 1.0)
        self.assertEqual(util[0][0].get("node"), "local")
        slots = prom.query("flowmesh_worker_slots")
        self.assertEqual([v for _, v in slots], [16.0])
        tokens = wait_until(lambda: series('flowmesh_inference_tokens_total{kind="completion"}'),
                            timeout=30, interval=0.5, what="inference tokens")
        self.assertEqual(tokens[0][0]["task_type"], "inference")
        # The same numbers as the usage rows bill.
        billed = sum(o["prompt_tokens"] for o in s.api("GET", "/api/v1/usage")["totals"])
        self.assertGreater(billed, 0)
        wait_until(lambda: sum(v for _, v in prom.query(
            'flowmesh_inference_tokens_total{kind="prompt"}')) == billed,
                   timeout=30, interval=0.5, what=f"{billed} prompt tokens in Prometheus")
        # After the burst the queue drains and nothing is in flight.
        wait_until(lambda: series("flowmesh_queue_depth + flowmesh_tasks_in_flight",
                                  lambda v: v == 0), timeout=30, interval=0.5,
                   what="an empty queue in Prometheus")
        self.assertTrue(series('flowmesh_node_up{node="local"}', lambda v: v == 1))

        # Every metric the Grafana dashboard plots is scraped; every scraped family is
        # documented in docs/operations.md.
        scraped = set(prom.get("/api/v1/label/__name__/values")["data"])
        with open(os.path.join(SOURCE_DIR, "docs", "grafana", "flowmesh.json")) as f:
            dashboard = json.load(f)
        exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
        used = {m for e in exprs for m in re.findall(r"flowmesh_[a-z_]+", e)}
        self.assertTrue(used)
        self.assertEqual(sorted(used - scraped), [], "dashboard metrics Prometheus never scraped")
        with open(os.path.join(SOURCE_DIR, "docs", "operations.md")) as f:
            documented = f.read()
        def family(name):  # a histogram's series are <family>_bucket, _sum and _count
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            return base if base + "_bucket" in scraped else name
        families = {family(n) for n in scraped if n.startswith("flowmesh_")}
        self.assertEqual(sorted(n for n in families if f"`{n}`" not in documented), [],
                         "metrics missing from docs/operations.md")


if __name__ == "__main__":
    unittest.main()
