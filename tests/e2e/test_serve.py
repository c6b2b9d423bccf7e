"""The serve executor through the real stack: a tiny generated model served as an
OpenAI-compatible endpoint, called with the official `openai` client through the server's
/api/v1/serve/tasks/{id}/ proxy (streaming and not), isolated per organisation, sharing the
worker's engine with inference tasks, and ended by idle timeout and by stop.

Runs with the pinned venv of scripts/install-e2e-python (see tests/e2e/CMakeLists.txt)."""
import json
import os
import unittest

import openai

from harness import Stack, ensure_demo_model, wait_until

API = "/api/v1"


def serve_workflow(name, model, **serve):
    return json.dumps({
        "apiVersion": "flowmesh/v1", "kind": "Workflow", "metadata": {"name": name},
        "spec": {"taskType": "serve",
                 "model": {"source": {"type": "local", "identifier": model}},
                 **serve}})


class ServeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = ensure_demo_model()
        s = cls.stack = Stack()
        try:
            s.up()
            s.workers_up(1)
            cls.task = cls.start_serve("served", ttlSeconds=600)
            out = s.cli("--json", "admin", "org", "create", "beta")
            out = s.cli("--json", "admin", "key", "create", "--org", "beta", "--scopes", "task:read")
            cls.beta_key = json.loads(out.stdout)["key"]
        except BaseException:
            s.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.stack.close()

    @classmethod
    def start_serve(cls, name, **serve):
        """Submits a serve workflow; returns its task once the endpoint is advertised."""
        s = cls.stack
        wf = s.submit(serve_workflow(name, cls.model, **serve))["workflow_id"]
        [task] = s.tasks(wf)
        tid = task["task_id"]
        wait_until(lambda: s.api("GET", f"{API}/tasks/{tid}").get("latest_update", {}).get("serve"),
                   timeout=120, what=f"serve task {tid} to advertise its endpoint")
        return {"workflow_id": wf, "task_id": tid}

    def client(self, task=None, key=None):
        tid = (task or self.task)["task_id"]
        return openai.OpenAI(base_url=f"{self.stack.url}{API}/serve/tasks/{tid}/v1",
                             api_key=key or self.stack.api_key, max_retries=0, timeout=120)

    def test_openai_client_chat_completions_embeddings_and_models(self):
        c = self.client()
        models = c.models.list()
        self.assertEqual([m.id for m in models.data], [self.model])

        chat = c.chat.completions.create(model=self.model, messages=[{"role": "user", "content": "hello"}],
                                         max_tokens=12, temperature=0)
        self.assertEqual(chat.choices[0].message.role, "assistant")
        self.assertIsInstance(chat.choices[0].message.content, str)
        self.assertEqual(chat.usage.completion_tokens, 12)
        self.assertEqual(chat.choices[0].finish_reason, "length")

        # Streaming: the same greedy text (in as many chunks as the decode loop produced
        # while the stream was sending: a tiny model may finish between two sends), then a
        # chunk with the finish reason, then the usage chunk.
        pieces, usage, finish = [], None, None
        stream = c.chat.completions.create(model=self.model, messages=[{"role": "user", "content": "hello"}],
                                           max_tokens=12, temperature=0, stream=True,
                                           stream_options={"include_usage": True})
        for chunk in stream:
            if chunk.usage:
                usage = chunk.usage
            for choice in chunk.choices:
                if choice.delta.content:
                    pieces.append(choice.delta.content)
                if choice.finish_reason:
                    finish = choice.finish_reason
        self.assertGreaterEqual(len(pieces), 1)
        self.assertEqual(finish, "length")
        self.assertEqual("".join(pieces), chat.choices[0].message.content)
        self.assertEqual(usage.completion_tokens, 12)

        text = c.completions.create(model=self.model, prompt="once upon a time", max_tokens=8, temperature=0)
        self.assertEqual(text.usage.completion_tokens, 8)
        streamed = "".join(ch.choices[0].text for ch in
                           c.completions.create(model=self.model, prompt="once upon a time", max_tokens=8,
                                                temperature=0, stream=True) if ch.choices)
        self.assertEqual(streamed, text.choices[0].text)

        emb = c.embeddings.create(model=self.model, input=["hello", "world"])
        self.assertEqual(len(emb.data), 2)
        self.assertGreater(len(emb.data[0].embedding), 0)

        # The endpoint's own errors come back as OpenAI errors.
        with self.assertRaises(openai.BadRequestError):
            c.chat.completions.create(model=self.model, messages=[], max_tokens=4)

    def test_keys_and_organisations_are_checked(self):
        tid = self.task["task_id"]
        path = f"{API}/serve/tasks/{tid}/v1/models"
        status, _, _ = self.stack.request("GET", path, key=None)
        self.assertEqual(status, 401)
        status, _, _ = self.stack.request("GET", path, key="fm-not-a-key")
        self.assertEqual(status, 401)
        # Another organisation's key, even with task:read, does not find the task.
        status, _, body = self.stack.request("GET", path, key=self.beta_key)
        self.assertEqual(status, 404, body)
        with self.assertRaises(openai.NotFoundError):
            self.client(key=self.beta_key).chat.completions.create(
                model=self.model, messages=[{"role": "user", "content": "hi"}], max_tokens=2, stream=True)
        status, _, _ = self.stack.request("GET", f"{API}/serve/tasks/tsk-nope/v1/models")
        self.assertEqual(status, 404)

    def test_the_internal_key_is_never_shown_or_stored(self):
        s = self.stack
        tid = self.task["task_id"]
        task = s.api("GET", f"{API}/tasks/{tid}")
        serve = task["latest_update"]["serve"]
        self.assertEqual(set(serve), {"mode", "host", "port", "model"})
        self.assertNotIn("_internal", task["latest_update"])
        status, _, raw = s.request("GET", f"{API}/tasks/{tid}/logs")
        self.assertEqual(status, 200)
        self.assertNotIn(b"serve_key", raw)
        self.assertIn(b"TASK_UPDATE", raw)
        # Everything but Redis, the fabric's own transport (its append-only file holds the
        # worker's update as sent, as it holds every task spec and result).
        for root, dirs, files in os.walk(s.home):
            dirs[:] = [d for d in dirs if d != "redis"]
            for name in files:
                path = os.path.join(root, name)
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                self.assertNotIn(b"serve_key", data, path)

    def test_inference_tasks_share_the_served_engine(self):
        s = self.stack
        wf = s.submit(json.dumps({
            "apiVersion": "flowmesh/v1", "kind": "Workflow", "metadata": {"name": "batch-beside-serve"},
            "spec": {"taskType": "inference",
                     "model": {"source": {"type": "local", "identifier": self.model}},
                     "data": {"type": "list", "items": ["a question"]},
                     "inference": {"max_tokens": 8, "temperature": 0}}}))["workflow_id"]
        self.assertEqual(s.wait_workflow(wf, timeout=120)["status"], "DONE")
        shown = wait_until(lambda: [w for w in s.api("GET", f"{API}/workers") if w.get("loaded_models")],
                           timeout=20, what="a worker record with its loaded models")
        self.assertEqual(shown[0]["loaded_models"], [f"local:{self.model}"])  # one engine for both

    def test_an_api_task_calls_the_served_model(self):
        # The api executor as the served model's client: the proxy URL, the caller's key
        # kept as a server-side secret and resolved on the worker, chat items per data item.
        s = self.stack
        s.api("PUT", f"{API}/secrets/SERVE_KEY", {"value": s.api_key}, expect=200)
        url = f"{s.url}{API}/serve/tasks/{self.task['task_id']}/v1/chat/completions"
        wf = s.submit(json.dumps({
            "apiVersion": "flowmesh/v1", "kind": "Workflow", "metadata": {"name": "api-to-serve"},
            "spec": {"taskType": "api",
                     "data": {"type": "list", "items": ["first question", "second"]},
                     "api": {"url": url,
                             "headers": {"Authorization": "Bearer {{credential:SERVE_KEY}}"},
                             "body": {"model": self.model, "max_tokens": 6, "temperature": 0,
                                      "messages": [{"role": "user", "content": "{{prompt}}"}]}}}}))
        done = s.wait_workflow(wf["workflow_id"], timeout=120)
        [task] = s.tasks(wf["workflow_id"])
        self.assertEqual(done["status"], "DONE", task)
        result = s.api("GET", f"{API}/results/{task['task_id']}")
        self.assertEqual([i["status_code"] for i in result["items"]], [200, 200])
        self.assertTrue(all(isinstance(i["text"], str) for i in result["items"]), result)
        self.assertGreater(result["usage"]["completion_tokens"], 0)
        # The same answer the openai client gets for the same greedy request.
        direct = self.client().chat.completions.create(
            model=self.model, messages=[{"role": "user", "content": "first question"}],
            max_tokens=6, temperature=0)
        self.assertEqual(result["items"][0]["text"], direct.choices[0].message.content)
        self.assertNotIn(s.api_key, json.dumps(result))

    def test_an_agent_uses_the_served_model_as_its_remote_model(self):
        # The agent's remote model goes through the api executor's client: the proxy URL,
        # the caller's key as a secret named in a header, resolved on the worker.
        s = self.stack
        s.api("PUT", f"{API}/secrets/AGENT_KEY", {"value": s.api_key}, expect=200)
        base = f"{s.url}{API}/serve/tasks/{self.task['task_id']}/v1"
        wf = s.submit(json.dumps({
            "apiVersion": "flowmesh/v1", "kind": "Workflow", "metadata": {"name": "agent-to-serve"},
            "spec": {"taskType": "agent", "task": "What is 6*7?", "inference": {"temperature": 0},
                     "agent": {"model": {"url": base, "name": self.model, "retries": 1,
                                         "headers": {"Authorization": "Bearer {{credential:AGENT_KEY}}"}},
                               "max_steps": 2, "max_step_tokens": 8, "timeout": 120}}}))
        done = s.wait_workflow(wf["workflow_id"], timeout=120)
        [task] = s.tasks(wf["workflow_id"])
        self.assertEqual(done["status"], "DONE", task)
        result = s.api("GET", f"{API}/results/{task['task_id']}")
        self.assertEqual(result["model"], f"api:{self.model}")
        steps = result["items"][0]["transcript"]["steps"]
        self.assertTrue(steps)
        # Every turn was answered by the served model (its usage came back through the proxy).
        self.assertGreater(result["usage"]["prompt_tokens"], 0)
        self.assertTrue(all(st["completion_tokens"] > 0 for st in steps), steps)
        self.assertNotIn(s.api_key, json.dumps(result))
        # A key the server does not hold is named, and the attempt fails without retry.
        bad = s.submit(json.dumps({
            "apiVersion": "flowmesh/v1", "kind": "Workflow", "metadata": {"name": "agent-no-key"},
            "spec": {"taskType": "agent", "task": "t", "max_attempts": 2,
                     "agent": {"model": {"url": base, "name": self.model,
                                         "headers": {"Authorization": "Bearer {{credential:NOPE}}"}}}}}))
        self.assertEqual(s.wait_workflow(bad["workflow_id"], timeout=120)["status"], "FAILED")
        [bad_task] = s.tasks(bad["workflow_id"])
        self.assertIn("NOPE", json.dumps(bad_task))

    def test_idle_timeout_ends_the_task(self):
        s = self.stack
        task = self.start_serve("idle", ttlSeconds=600, idleTimeoutSeconds=1)
        wf = s.wait_workflow(task["workflow_id"], timeout=60)
        self.assertEqual(wf["status"], "DONE")
        result = s.api("GET", f"{API}/results/{task['task_id']}")
        self.assertEqual(result["stopped"], "idle")
        self.assertEqual(result["model"], self.model)

    def test_stop_ends_the_task_and_the_proxy_answers_409(self):
        s = self.stack
        task = self.start_serve("stopped", ttlSeconds=600)
        self.client(task).models.list()
        s.api("POST", f"{API}/tasks/{task['task_id']}/stop")
        wf = s.wait_workflow(task["workflow_id"], timeout=60)
        self.assertIn(wf["status"], ("CANCELLED", "DONE"))
        status, _, _ = s.request("GET", f"{API}/serve/tasks/{task['task_id']}/v1/models")
        self.assertEqual(status, 409)


if __name__ == "__main__":
    unittest.main()
