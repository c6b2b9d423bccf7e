"""Agent tasks through the real stack: a tool-using loop on the worker's embedded llama.cpp."""
import json
import os
import unittest

from harness import TEMPLATES, StackTestCase, ensure_demo_model


def agent_workflow(name, model, agent, task="What is 6*7?", extra=None):
    return json.dumps({
        "apiVersion": "flowmesh/v1", "kind": "Workflow", "metadata": {"name": name},
        "spec": {"taskType": "agent", "configName": "default", "task": task,
                 "model": {"source": {"type": "local", "identifier": model}},
                 "inference": {"temperature": 0.8, "seed": 5},
                 "agent": agent, **(extra or {})}})


class AgentTest(StackTestCase):
    def setUp(self):
        super().setUp()
        self.model = ensure_demo_model()

    def result(self, wf_id):
        [task] = self.stack.tasks(wf_id)
        return task, self.stack.api("GET", f"/api/v1/results/{task['task_id']}")

    def test_template_calls_the_required_tool_and_answers(self):
        s = self.stack
        s.up()
        s.workers_up(1)
        with open(os.path.join(TEMPLATES, "agent_calculator.yaml")) as f:
            wf_id = s.submit(f.read())["workflow_id"]
        wf = s.wait_workflow(wf_id, timeout=180)
        self.assertEqual(wf["status"], "DONE", s.tasks(wf_id))
        task, r = self.result(wf_id)
        [item] = r["items"]
        t = item["transcript"]
        self.assertEqual(r["model"], f"local:{self.model}")
        self.assertEqual(r["usage"]["agent_config"], "default")
        # The tiny random model was grammar-constrained into a valid calculator call first...
        first = t["steps"][0]
        self.assertEqual(first["kind"], "tool_call", t)
        self.assertEqual(first["tool"], "calculator")
        self.assertIn("expression", first["arguments"])
        self.assertTrue("result" in first or "error" in first, first)
        self.assertGreaterEqual(r["usage"]["tool_calls"], 1)
        # ... and the loop ended with a final answer within max_steps (the last turn may only answer).
        self.assertEqual(item["finish_reason"], "final", t)
        self.assertEqual(item["output"], t["output"])
        self.assertLessEqual(len(t["steps"]), 3)
        roles = [m["role"] for m in t["messages"]]
        self.assertEqual(roles[:4], ["system", "user", "assistant", "tool"])
        for step in t["steps"]:
            for key in ("started_ms", "model_ms", "tool_ms", "duration_ms", "completion_tokens"):
                self.assertIn(key, step)

        # Each step was a progress update (a span) and a log line of the task.
        logs = s.api("GET", f"/api/v1/workflows/{wf_id}/logs?limit=1000")["entries"]
        spans = [e["event"] for e in logs if e["event"].get("type") == "TASK_UPDATE"
                 and "agent.step" in json.dumps(e["event"])]
        self.assertEqual(len(spans), len(t["steps"]), logs[-5:])
        lines = [json.dumps(e["event"]) for e in logs if e["event"].get("type") == "TASK_LOG"]
        self.assertTrue(any("agent[0] step 0: calculator" in line for line in lines), lines[:5])
        # ... and each step is a span of the workflow's trace, under the attempt that ran it.
        status, _, raw = s.request("GET", f"/api/v1/traces/workflows/{wf_id}/spans")
        self.assertEqual(status, 200)
        trace = [json.loads(line) for line in raw.decode().splitlines() if line]
        steps = [sp for sp in trace if sp["kind"] == "step"]
        self.assertEqual(len(steps), len(t["steps"]), trace)
        self.assertEqual({sp["parent"] for sp in steps}, {f"{task['task_id']}:attempt:1"})
        self.assertEqual(steps[0]["tool"], "calculator")
        self.assertEqual(steps[0]["name"], "agent.step")
        for sp in steps:
            self.assertLessEqual(sp["start"], sp["end"])

    def test_python_tool_runs_in_the_sandbox(self):
        # The grammar makes even the random model call the python tool; its (random) program
        # runs in the sandbox and its exit code and output come back as the step's result.
        s = self.stack
        s.up()
        s.workers_up(1)
        wf_id = s.submit(agent_workflow("python-tool", self.model,
                                        {"tools": ["python"], "tool_choice": "required",
                                         "max_steps": 2, "timeout": 120}))["workflow_id"]
        self.assertEqual(s.wait_workflow(wf_id, timeout=180)["status"], "DONE", s.tasks(wf_id))
        _, r = self.result(wf_id)
        first = r["items"][0]["transcript"]["steps"][0]
        self.assertEqual(first["kind"], "tool_call", first)
        self.assertEqual(first["tool"], "python")
        self.assertIn("code", first["arguments"])
        if "result" in first:
            self.assertIn("exit_code", first["result"])
            self.assertIn("stderr", first["result"])
        else:  # a program the model wrote that ran out of time or memory
            self.assertRegex(first["error"], "python:")

    def test_bad_agent_spec_fails_without_retry(self):
        s = self.stack
        s.up()
        s.workers_up(1)
        wf_id = s.submit(agent_workflow("bad-tools", self.model, {"tools": ["shell"]},
                                        extra={"max_attempts": 3}))["workflow_id"]
        wf = s.wait_workflow(wf_id, timeout=120)
        self.assertEqual(wf["status"], "FAILED")
        [task] = s.tasks(wf_id)
        self.assertIn("unknown tool 'shell'", json.dumps(task))
        self.assertEqual(task["attempts"], 1)

    def test_batch_of_tasks_each_get_a_transcript(self):
        s = self.stack
        s.up()
        s.workers_up(1)
        wf_id = s.submit(agent_workflow("batch", self.model, {"max_steps": 2, "timeout": 60},
                                        extra={"data": {"type": "list", "items": ["one", "two"]}}))["workflow_id"]
        self.assertEqual(s.wait_workflow(wf_id, timeout=180)["status"], "DONE", s.tasks(wf_id))
        _, r = self.result(wf_id)
        self.assertEqual([i["input"] for i in r["items"]], ["one", "two"])
        for item in r["items"]:
            self.assertLessEqual(len(item["transcript"]["steps"]), 2)
            self.assertIn(item["finish_reason"], ("final", "max_steps"))
        self.assertEqual(r["usage"]["num_requests"], 2)


if __name__ == "__main__":
    unittest.main()
