"""Cancellation, worker crash, server crash and Redis restart in the middle of workflows."""
import os
import signal
import subprocess
import time
import unittest

from harness import StackTestCase, echo_workflow, pid_alive, wait_until


def stages_workflow(name, n, sleep):
    stages = "\n".join(
        f"    - name: s{i}\n      spec: {{taskType: echo, data: {{type: list, items: [\"step {i}\"]}}, echo: {{sleep_seconds: {sleep}}}}}"
        for i in range(n))
    return f"""apiVersion: flowmesh/v1
kind: Workflow
metadata: {{name: {name}}}
spec:
  stages:
{stages}
"""


class ResilienceTest(StackTestCase):
    def test_cancel_mid_run(self):
        s = self.stack
        s.up()
        s.workers_up(1)
        wf_id = s.submit(stages_workflow("long", 3, 30))["workflow_id"]
        wait_until(lambda: any(t["started_ts"] for t in s.tasks(wf_id)), what="first task to start")
        watcher = s.cli_popen("workflow", "watch", wf_id)
        s.cli("workflow", "cancel", wf_id)
        wf = s.wait_workflow(wf_id, timeout=20)
        self.assertEqual(wf["status"], "CANCELLED")
        self.assertEqual(len(wf["cancelled_tasks"]), 3)
        self.assertEqual(watcher.wait(timeout=30), 130)

    def test_worker_killed_mid_task_is_redispatched(self):
        s = self.stack
        s.up()
        s.workers_up(2)
        wf_id = s.submit(echo_workflow("crash", sleep=3))["workflow_id"]
        task = wait_until(lambda: next((t for t in s.tasks(wf_id) if t["started_ts"]), None),
                          what="task to start")
        victim = next(w for w in s.api("GET", "/api/v1/workers") if w["worker_id"] == task["assigned_worker"])
        os.kill(int(victim["pid"]), signal.SIGKILL)
        wf = s.wait_workflow(wf_id, timeout=60)
        self.assertEqual(wf["status"], "DONE")
        t = s.tasks(wf_id)[0]
        self.assertEqual(t["attempts"], 2)
        self.assertIn(victim["worker_id"], t["failed_workers"])
        self.assertNotEqual(t["assigned_worker"], victim["worker_id"])

    def test_server_killed_mid_workflow_recovers(self):
        s = self.stack
        s.up()
        s.workers_up(1)
        wf_id = s.submit(stages_workflow("survive", 4, 0.7))["workflow_id"]
        wait_until(lambda: sum(1 for t in s.tasks(wf_id) if t["status"] == "DONE") >= 1, what="first stage done")
        server = s.pid("server")
        os.kill(server, signal.SIGKILL)
        wait_until(lambda: not pid_alive(server), what="server to die")
        s.cli("stack", "up")
        wf = s.wait_workflow(wf_id, timeout=90)
        self.assertEqual(wf["status"], "DONE", s.tasks(wf_id))
        self.assertEqual(len(wf["completed_tasks"]), 4)

    def test_redis_restart_mid_workflow(self):
        s = self.stack
        s.up()
        s.workers_up(1)
        wf_id = s.submit(stages_workflow("redis-bounce", 4, 0.7))["workflow_id"]
        wait_until(lambda: sum(1 for t in s.tasks(wf_id) if t["status"] == "DONE") >= 1, what="first stage done")
        redis = s.pid("redis")
        os.kill(redis, signal.SIGTERM)
        wait_until(lambda: not pid_alive(redis), what="redis to stop")
        time.sleep(1.0)  # an outage, not a synchronisation: the stack must ride through it
        s.cli("stack", "up")
        wf = s.wait_workflow(wf_id, timeout=90)
        self.assertEqual(wf["status"], "DONE", s.tasks(wf_id))

    def test_retry_on_injected_failure(self):
        s = self.stack
        s.up()
        s.workers_up(2)
        wf_id = s.submit(echo_workflow("flaky", extra="  max_attempts: 3\n").replace(
            "echo: {sleep_seconds: 0.0}", "echo: {fail_attempts: 1}"))["workflow_id"]
        wf = s.wait_workflow(wf_id)
        self.assertEqual(wf["status"], "DONE")
        t = s.tasks(wf_id)[0]
        self.assertEqual(t["attempts"], 2)
        self.assertEqual(len(t["failed_workers"]), 1)
        self.assertNotEqual(t["assigned_worker"], t["failed_workers"][0])

    def test_failure_cascades_to_dependents(self):
        s = self.stack
        s.up()
        s.workers_up(1)
        text = """apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: cascade}
spec:
  stages:
    - name: bad
      spec: {taskType: echo, echo: {fail: "broken on purpose"}}
    - name: after
      spec: {taskType: echo}
"""
        wf_id = s.submit(text)["workflow_id"]
        wf = s.wait_workflow(wf_id)
        self.assertEqual(wf["status"], "FAILED")
        by_name = {t["graph_node_name"]: t for t in s.tasks(wf_id)}
        self.assertEqual(by_name["bad"]["status"], "FAILED")
        self.assertEqual(by_name["bad"]["attempts"], 1)  # non-retryable
        self.assertIn("broken on purpose", by_name["bad"]["error"])
        self.assertEqual(by_name["after"]["status"], "FAILED")
        watch = s.cli("workflow", "watch", wf_id, check=False)
        self.assertEqual(watch.returncode, 1)


if __name__ == "__main__":
    unittest.main()
