"""The published quick start, every example template, and graph ordering, end to end."""
import glob
import json
import os
import unittest

from harness import TEMPLATES, StackTestCase, ensure_demo_model, pid_alive, wait_until


class QuickStartTest(StackTestCase):
    def test_quick_start(self):
        s = self.stack
        s.up()
        s.cli("stack", "worker", "up", "cpu", "1")
        wait_until(lambda: any(w["status"] != "DOWN" for w in s.api("GET", "/api/v1/workers")),
                   what="a worker to register")
        out = s.cli("workflow", "submit", os.path.join(TEMPLATES, "echo_local.yaml"), "--json").stdout
        wf_id = json.loads(out)["workflow_id"]
        listing = s.cli("workflow", "list").stdout
        self.assertIn(wf_id, listing)
        watch = s.cli("workflow", "watch", wf_id, check=False, timeout=60)
        self.assertEqual(watch.returncode, 0, watch.stdout + watch.stderr)
        wf = s.workflow(wf_id)
        self.assertEqual(wf["status"], "DONE")
        self.assertEqual(len(wf["completed_tasks"]), 3)
        for t in s.tasks(wf_id):
            result = s.api("GET", f"/api/v1/results/{t['task_id']}")
            self.assertIn("items", result)
        # Stages run in order: each stage starts after the previous one finished.
        tasks = sorted(s.tasks(wf_id), key=lambda t: t["started_ts"])
        for prev, nxt in zip(tasks, tasks[1:]):
            self.assertGreaterEqual(nxt["started_ts"], prev["finished_ts"])
        workers = s.api("GET", "/api/v1/stack/workers")
        worker_pids = [w["pid"] for w in workers if w.get("pid")]
        s.cli("stack", "worker", "down", "all")
        wait_until(lambda: all(not pid_alive(p) for p in worker_pids), what="worker processes to exit")
        s.cli("stack", "down")
        self.assertEqual(s.alive_pids(), [])
        self.assertNotEqual(s.cli("health", check=False).returncode, 0)

    def test_every_example_template_runs(self):
        s = self.stack
        s.up()
        s.workers_up(2)
        ensure_demo_model()
        files = sorted(glob.glob(os.path.join(TEMPLATES, "*.yaml")))
        self.assertGreaterEqual(len(files), 3)
        ids = {}
        for path in files:
            with open(path) as f:
                ids[path] = s.submit(f.read())["workflow_id"]
        for path, wf_id in ids.items():
            wf = s.wait_workflow(wf_id)
            self.assertEqual(wf["status"], "DONE", f"{os.path.basename(path)}: {s.tasks(wf_id)}")

    def test_graph_diamond_respects_dependencies(self):
        s = self.stack
        s.up()
        s.workers_up(2)
        with open(os.path.join(TEMPLATES, "echo_graph.yaml")) as f:
            reply = s.submit(f.read())
        wf = s.wait_workflow(reply["workflow_id"])
        self.assertEqual(wf["status"], "DONE")
        tasks = {t["task_id"]: t for t in s.tasks(wf["workflow_id"])}
        for t in tasks.values():
            for dep in t["depends_on"]:
                self.assertGreaterEqual(t["started_ts"], tasks[dep]["finished_ts"],
                                        f"{t['graph_node_name']} started before {tasks[dep]['graph_node_name']} finished")
        # The logs of the workflow hold every task's lifecycle, in cursor order.
        logs = s.api("GET", f"/api/v1/workflows/{wf['workflow_id']}/logs?limit=1000")
        cursors = [int(e["cursor"]) for e in logs["entries"]]
        self.assertEqual(cursors, sorted(cursors))
        types = [e["event"]["type"] for e in logs["entries"]]
        self.assertEqual(types.count("TASK_SUCCEEDED"), len(tasks))
        self.assertEqual(types[-1], "LOG_STREAM_CLOSED")


if __name__ == "__main__":
    unittest.main()
