"""Work done once, end to end: operator fingerprints, reuse from the store, single-flight
joins, lineage and trace routes, the trace CLI, and garbage collection that keeps what
results still name. Real binaries, default server settings (dedup scope `tenant`)."""
import json
import time
import unittest

from harness import StackTestCase

API = "/api/v1"


def chain(name, message, sleep=0.0, cache=""):
    cache_line = f"  cache: {cache}\n" if cache else ""
    return f"""apiVersion: flowmesh/v1
kind: Workflow
metadata: {{name: {name}}}
spec:
  taskType: echo
{cache_line}  graph:
    nodes:
      - name: first
        spec:
          data: {{type: list, items: ["{message}"]}}
          echo: {{sleep_seconds: {sleep}}}
      - name: second
        dependsOn: [first]
        spec:
          data: {{type: list, items: ["${{first.items.0.output}} again"]}}
"""


def ndjson(raw):
    return [json.loads(line) for line in raw.decode().splitlines() if line.strip()]


class ProvenanceTest(StackTestCase):
    def setUp(self):
        super().setUp()
        self.stack.up()
        self.stack.workers_up(2)

    def run_wf(self, text, timeout=60):
        wf = self.stack.submit(text)["workflow_id"]
        self.stack.wait_workflow(wf, timeout=timeout)
        return wf, {t["graph_node_name"]: t for t in self.stack.tasks(wf)}

    def lineage(self, wf):
        status, _, raw = self.stack.request("GET", f"{API}/traces/workflows/{wf}/lineage")
        self.assertEqual(status, 200, raw)
        return {row["node"]: row for row in ndjson(raw)}

    def test_identical_work_runs_once_and_keeps_its_own_lineage(self):
        w1, t1 = self.run_wf(chain("one", "fingerprint-me"))
        self.assertEqual(self.stack.workflow(w1)["status"], "DONE")
        self.assertEqual([t1[n]["attempts"] for n in ("first", "second")], [1, 1])

        w2, t2 = self.run_wf(chain("two", "fingerprint-me"))
        self.assertEqual(self.stack.workflow(w2)["status"], "DONE")
        self.assertEqual([t2[n]["attempts"] for n in ("first", "second")], [0, 0])
        for n in ("first", "second"):
            self.assertEqual(self.stack.api("GET", f"{API}/results/{t2[n]['task_id']}"),
                             self.stack.api("GET", f"{API}/results/{t1[n]['task_id']}"))
        l1, l2 = self.lineage(w1), self.lineage(w2)
        for n in ("first", "second"):
            self.assertFalse(l1[n]["reused"])
            self.assertTrue(l2[n]["reused"])
            self.assertEqual(l1[n]["fingerprint"], l2[n]["fingerprint"])
            self.assertEqual(len(l2[n]["fingerprint"]), 64)
            self.assertEqual(l2[n]["attempts"], [])
        # Each workflow's lineage names its own upstream task.
        self.assertEqual(l2["second"]["inputs"][0]["task_id"], t2["first"]["task_id"])
        self.assertEqual(l2["second"]["inputs"][0]["digest"], l1["second"]["inputs"][0]["digest"])
        self.assertEqual(l1["second"]["outputs"]["result"]["digest"],
                         l2["second"]["outputs"]["result"]["digest"])

        # Different input: a different fingerprint, and it runs.
        w3, t3 = self.run_wf(chain("three", "something else"))
        self.assertEqual(t3["first"]["attempts"], 1)
        self.assertNotEqual(self.lineage(w3)["first"]["fingerprint"], l1["first"]["fingerprint"])

        # cache: never always runs.
        w4, t4 = self.run_wf(chain("four", "fingerprint-me", cache="never"))
        self.assertEqual([t4[n]["attempts"] for n in ("first", "second")], [1, 1])

    def test_a_twin_submitted_while_the_first_runs_joins_it(self):
        text = chain("slow", "join-me", sleep=2.0)
        w1 = self.stack.submit(text)["workflow_id"]
        time.sleep(0.5)
        w2 = self.stack.submit(text.replace("name: slow", "name: slow-twin"))["workflow_id"]
        for wf in (w1, w2):
            self.stack.wait_workflow(wf, timeout=60)
        t1 = {t["graph_node_name"]: t for t in self.stack.tasks(w1)}
        t2 = {t["graph_node_name"]: t for t in self.stack.tasks(w2)}
        self.assertEqual(t1["first"]["attempts"], 1)
        self.assertEqual(t2["first"]["attempts"], 0)
        self.assertEqual(t2["first"]["merged_parent_id"], t1["first"]["task_id"])
        self.assertEqual(t2["first"]["merge_key"], t1["first"]["merge_key"])
        metrics = self.stack.api("GET", f"{API}/system/metrics")
        self.assertGreaterEqual(metrics["tasks_joined_total"], 1)

    def test_trace_routes_and_cli(self):
        wf, tasks = self.run_wf(chain("traced", "trace-me", sleep=0.2))
        status, headers, raw = self.stack.request("GET", f"{API}/traces/workflows/{wf}/spans")
        self.assertEqual(status, 200)
        self.assertIn("ndjson", headers["Content-Type"])
        spans = ndjson(raw)
        kinds = {(s["task_id"], s["kind"]) for s in spans}
        for t in tasks.values():
            for kind in ("task", "queue", "attempt"):
                self.assertIn((t["task_id"], kind), kinds)
        attempt = [s for s in spans if s["kind"] == "attempt" and s["task_id"] == tasks["first"]["task_id"]][0]
        self.assertGreaterEqual(attempt["duration_s"], 0.2)
        self.assertEqual(attempt["status"], "DONE")

        status, _, raw = self.stack.request("GET", f"{API}/traces/workflows/{wf}/assets")
        self.assertEqual(status, 200)
        assets = {a["digest"]: a for a in ndjson(raw)}
        first_digest = self.lineage(wf)["first"]["outputs"]["result"]["digest"]
        self.assertIn(tasks["first"]["task_id"], assets[first_digest]["produced_by"])
        self.assertIn(tasks["second"]["task_id"], assets[first_digest]["consumed_by"])

        analysis = self.stack.api("GET", f"{API}/traces/workflows/analyze/{wf}?view=flowmesh")
        path = [t["node"] for t in analysis["critical_path"]["tasks"]]
        self.assertEqual(path, ["first", "second"])
        self.assertGreater(analysis["makespan_s"], 0.2)
        self.assertEqual(analysis["breakdown"]["executed"], 2)
        self.assertEqual(analysis["lineage_edges"][0]["from_node"], "first")

        out = self.stack.cli("trace", "analyze", wf).stdout
        self.assertIn("critical path: 2 task(s)", out)
        self.assertIn("first", out)
        self.assertIn("#", out)
        lines = self.stack.cli("trace", "fetch", wf, "--kind", "spans").stdout.splitlines()
        self.assertEqual(len(lines), len(spans))
        self.assertEqual(json.loads(self.stack.cli("trace", "analyze", wf, "--json").stdout)["workflow"]["workflow_id"], wf)

        status, _, _ = self.stack.request("GET", f"{API}/traces/workflows/wfl-nope/lineage")
        self.assertEqual(status, 404)
        self.assertEqual(self.stack.cli("trace", "analyze", "wfl-nope", check=False).returncode, 1)

    def test_garbage_collection_keeps_what_results_name(self):
        wf, tasks = self.run_wf(chain("kept", "gc-me"))
        before = {n: self.stack.api("GET", f"{API}/results/{t['task_id']}") for n, t in tasks.items()}
        report = self.stack.api("POST", f"{API}/system/gc?grace_s=0")
        self.assertTrue(report["ok"])
        for n, t in tasks.items():
            self.assertEqual(self.stack.api("GET", f"{API}/results/{t['task_id']}"), before[n])
        status, _, _ = self.stack.request("POST", f"{API}/system/gc?grace_s=-1")
        self.assertEqual(status, 422)


if __name__ == "__main__":
    unittest.main()
