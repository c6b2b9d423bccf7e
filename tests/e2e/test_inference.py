"""Inference workflows through the real stack on the worker's embedded llama.cpp."""
import json
import os
import subprocess
import threading
import time
import unittest

from harness import TEMPLATES, StackTestCase, ensure_demo_model, wait_until


def inference_workflow(name, model, items, inference, extra=None):
    return json.dumps({
        "apiVersion": "flowmesh/v1", "kind": "Workflow", "metadata": {"name": name},
        "spec": {"taskType": "inference",
                 "model": {"source": {"type": "local", "identifier": model}},
                 "data": {"type": "list", "items": items},
                 "inference": inference, **(extra or {})}})


class InferenceTest(StackTestCase):
    def setUp(self):
        super().setUp()
        self.model = ensure_demo_model()

    def result(self, wf_id):
        [task] = self.stack.tasks(wf_id)
        return self.stack.api("GET", f"/api/v1/results/{task['task_id']}")

    def test_template_runs_end_to_end(self):
        s = self.stack
        s.up()
        s.workers_up(1)
        with open(os.path.join(TEMPLATES, "inference_local.yaml")) as f:
            wf_id = s.submit(f.read())["workflow_id"]
        wf = s.wait_workflow(wf_id, timeout=120)
        self.assertEqual(wf["status"], "DONE", s.tasks(wf_id))
        for t in s.tasks(wf_id):
            r = s.api("GET", f"/api/v1/results/{t['task_id']}")
            self.assertTrue(r["model"].startswith("local:"))
            for item in r["items"]:
                self.assertIsInstance(item["output"], str)
                self.assertIn(item["finish_reason"], ("stop", "length"))
                self.assertGreater(item["usage"]["prompt_tokens"], 0)
            # The attempt's usage row bills the tokens its result reports.
            rows = wait_until(lambda: [u for u in s.api("GET", "/api/v1/usage")["rows"]
                                       if u["task_id"] == t["task_id"]], what="usage row")
            self.assertEqual(rows[0]["prompt_tokens"], r["usage"]["prompt_tokens"])
            self.assertEqual(rows[0]["completion_tokens"], r["usage"]["completion_tokens"])
        totals = s.api("GET", "/api/v1/usage")["totals"]
        self.assertGreater(sum(o["completion_tokens"] for o in totals), 0)

    def test_many_concurrent_workflows_on_one_worker(self):
        s = self.stack
        s.up()
        s.workers_up(1)
        n = 12
        prompts = [f"workflow {i % 4} asks a question" for i in range(n)]
        ids = [None] * n

        def submit(i):
            ids[i] = s.submit(inference_workflow(f"tenant-{i}", self.model, [prompts[i]],
                                                 {"max_tokens": 24, "temperature": 0}))["workflow_id"]
        threads = [threading.Thread(target=submit, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        outputs = {}
        for i, wf_id in enumerate(ids):
            wf = s.wait_workflow(wf_id, timeout=180)
            self.assertEqual(wf["status"], "DONE", s.tasks(wf_id))
            item = self.result(wf_id)["items"][0]
            self.assertEqual(item["usage"]["completion_tokens"], 24)
            outputs.setdefault(prompts[i], set()).add(item["output"])
        # Greedy decoding: the same prompt gives the same text whatever it was batched with.
        for prompt, texts in outputs.items():
            self.assertEqual(len(texts), 1, f"{prompt}: {texts}")
        # The supervisor's heartbeat relays what the worker holds loaded and its free slots.
        beat = self.heartbeat_with_models()
        [worker] = [w for w in beat["workers"] if w["loaded_models"]]
        self.assertEqual(worker["loaded_models"], [f"local:{self.model}"])
        self.assertGreater(worker["free_sequence_slots"], 0)
        # ... and the server shows both on the worker's record.
        shown = wait_until(lambda: [w for w in s.api("GET", "/api/v1/workers") if w.get("loaded_models")],
                           timeout=20, what="a worker record with its loaded models")
        self.assertEqual(shown[0]["loaded_models"], [f"local:{self.model}"])
        self.assertGreater(shown[0]["free_sequence_slots"], 0)

    def heartbeat_with_models(self):
        auth = ["-a", self.stack.redis_password, "--no-auth-warning"] if self.stack.redis_password else []
        proc = subprocess.Popen(["redis-cli", "-p", str(self.stack.redis_port), *auth, "--raw", "subscribe",
                                 "fm:heartbeats"],
                                stdout=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                if line.startswith("{"):
                    beat = json.loads(line)
                    if any(w.get("loaded_models") for w in beat.get("workers", [])):
                        return beat
            self.fail("no heartbeat with loaded models")
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()

    def test_tokens_stream_as_logs(self):
        s = self.stack
        s.up()
        s.workers_up(1)
        wf_id = s.submit(inference_workflow("streaming", self.model, ["tell me a story"],
                                            {"max_tokens": 64, "temperature": 0}))["workflow_id"]
        self.assertEqual(s.wait_workflow(wf_id, timeout=120)["status"], "DONE")
        logs = s.api("GET", f"/api/v1/workflows/{wf_id}/logs?limit=1000")
        lines = [json.dumps(e["event"]) for e in logs["entries"] if e["event"].get("type") == "TASK_LOG"]
        self.assertTrue(any("[0] " in line for line in lines), lines[:5])

    def test_model_not_found_fails_without_retry(self):
        s = self.stack
        s.up()
        s.workers_up(1)
        wf_id = s.submit(inference_workflow("missing", "/nonexistent/model.gguf", ["x"], {"max_tokens": 4},
                                            extra={"max_attempts": 3}))["workflow_id"]
        wf = s.wait_workflow(wf_id, timeout=60)
        self.assertEqual(wf["status"], "FAILED")
        [task] = s.tasks(wf_id)
        self.assertEqual(task["attempts"], 1)
        self.assertIn("/nonexistent/model.gguf", json.dumps(task))


if __name__ == "__main__":
    unittest.main()
