"""The `api` task type and server-side credentials end to end, through the real binaries:
`flowmesh secret set|list|delete`, /api/v1/secrets, {{credential:NAME}} resolved on the
worker, the server's default endpoint, streaming into task logs, and the secret values
never appearing in results, logs, events or anywhere under FLOWMESH_HOME.

The endpoint is tests/support/api_stub_server.py, started on port 0.
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

from harness import SOURCE_DIR, Stack, wait_until

API = "/api/v1"
USER_SCOPES = "workflow:read,workflow:write,workflow:cancel,task:read,result:read"
SECRET = "sk-e2e-secret-4f1c9a77d2"
DEFAULT_SECRET = "sk-e2e-default-88b3e1"


def api_workflow(name, api_yaml, items=None):
    data = f"\n  data: {{type: list, items: {json.dumps(items)}}}" if items else ""
    return f"""apiVersion: flowmesh/v1
kind: Workflow
metadata: {{name: {name}}}
spec:
  taskType: api{data}
  api:
{api_yaml}
"""


class ApiTaskTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="fm-apitask-")
        port_file = os.path.join(cls.tmp, "port")
        cls.stub = subprocess.Popen(
            [sys.executable, os.path.join(SOURCE_DIR, "tests/support/api_stub_server.py"), port_file])
        wait_until(lambda: os.path.exists(port_file), timeout=20, what="the stub server")
        with open(port_file) as f:
            cls.stub_url = f"http://127.0.0.1:{f.read().strip()}"
        s = cls.stack = Stack()
        s.env["FLOWMESH_API_DEFAULT_URL"] = cls.stub_url
        s.env["FLOWMESH_API_DEFAULT_CREDENTIAL"] = "DEFAULT_KEY"
        s.up()
        s.workers_up(1)
        cls.keys = {}
        for org in ("alpha", "beta"):
            s.cli("--json", "admin", "org", "create", org)
            out = s.cli("--json", "admin", "key", "create", "--org", org, "--scopes", USER_SCOPES)
            cls.keys[org] = json.loads(out.stdout)["key"]
        # The admin (default organisation) sets the default endpoint's credential by CLI.
        s.cli("secret", "set", "DEFAULT_KEY", input=DEFAULT_SECRET + "\n")
        # alpha stores its own key through the REST route.
        s.api("PUT", f"{API}/secrets/STUB_KEY", {"value": SECRET}, key=cls.keys["alpha"], expect=200)

    @classmethod
    def tearDownClass(cls):
        cls.stack.close()
        cls.stub.terminate()
        cls.stub.wait(timeout=10)

    def run_workflow(self, text, key):
        wf = self.stack.api("POST", f"{API}/workflows", text, key=key, expect=201)
        wf_id = wf["workflow_id"]
        done = wait_until(
            lambda: (lambda w: w if w["status"] in ("DONE", "FAILED", "CANCELLED") else None)(
                self.stack.api("GET", f"{API}/workflows/{wf_id}", key=key)),
            timeout=60, what=f"workflow {wf_id}")
        return done, wf["tasks"][0]["task_id"]

    def test_credential_resolved_on_the_worker_and_never_returned(self):
        s, key = self.stack, self.keys["alpha"]
        text = api_workflow("creds", f"""    url: {self.stub_url}/v1/chat/completions
    headers: {{Authorization: "Bearer {{{{credential:STUB_KEY}}}}"}}
    body: {{model: m, messages: [{{role: user, content: "{{{{prompt}}}}"}}]}}""",
                            items=["first question", "second"])
        wf, task = self.run_workflow(text, key)
        self.assertEqual(wf["status"], "DONE", wf)
        result = s.api("GET", f"{API}/results/{task}", key=key)
        self.assertEqual([i["text"] for i in result["items"]], ["echo: first question", "echo: second"])
        self.assertTrue(all(i["response_json"]["auth_seen"] for i in result["items"]))
        self.assertEqual(result["usage"]["prompt_tokens"], 3)
        self.assertNotIn(SECRET, json.dumps(result))
        # Not in the logs, the events, nor any file of the installation (the store is encrypted).
        status, _, raw = s.request("GET", f"{API}/results/{task}/logs", key=key)
        self.assertEqual(status, 200)
        self.assertNotIn(SECRET.encode(), raw)
        hits = []
        for root, _, files in os.walk(s.home):
            for name in files:
                path = os.path.join(root, name)
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                    if SECRET.encode() in data or DEFAULT_SECRET.encode() in data:
                        hits.append(path)
                except OSError:
                    pass
        self.assertEqual(hits, [], "secret values found in plain text")

    def test_secrets_list_names_only_per_organisation(self):
        s = self.stack
        listed = s.api("GET", f"{API}/secrets", key=self.keys["alpha"])
        self.assertEqual([x["name"] for x in listed["secrets"]], ["STUB_KEY"])
        self.assertNotIn(SECRET, json.dumps(listed))
        self.assertEqual(s.api("GET", f"{API}/secrets", key=self.keys["beta"])["secrets"], [])
        out = s.cli("secret", "list").stdout
        self.assertIn("DEFAULT_KEY", out)
        self.assertNotIn(DEFAULT_SECRET, out)
        # A user key cannot resolve values, not even its own.
        status, _, raw = s.request("POST", f"{API}/secrets/resolve",
                                   {"task_id": "tsk-x", "attempt": 1, "names": ["STUB_KEY"]},
                                   key=self.keys["alpha"])
        self.assertIn(status, (403, 404), raw)
        self.assertNotIn(SECRET.encode(), raw)
        # Set, then delete through the CLI.
        s.cli("secret", "set", "TEMP", input="temporary\n")
        self.assertIn("TEMP", s.cli("secret", "list").stdout)
        s.cli("secret", "delete", "TEMP")
        self.assertNotIn("TEMP", s.cli("secret", "list").stdout)
        self.assertNotEqual(s.cli("secret", "delete", "TEMP", check=False).returncode, 0)

    def test_other_organisation_cannot_use_the_credential(self):
        text = api_workflow("borrow", f"""    url: {self.stub_url}/echo
    headers: {{X-Api-Key: "{{{{credential:STUB_KEY}}}}"}}""")
        wf, task = self.run_workflow(text, self.keys["beta"])
        self.assertEqual(wf["status"], "FAILED", wf)
        info = self.stack.api("GET", f"{API}/tasks/{task}", key=self.keys["beta"])
        self.assertIn("STUB_KEY", json.dumps(info))
        self.assertNotIn(SECRET, json.dumps(info))

    def test_default_endpoint_and_streaming_into_logs(self):
        s, key = self.stack, self.keys["alpha"]
        text = api_workflow("default", """    stream: true
    body: {model: m, messages: [{role: user, content: "{{prompt}}"}]}""", items=["streamed words here"])
        wf, task = self.run_workflow(text, key)
        self.assertEqual(wf["status"], "DONE", wf)
        result = s.api("GET", f"{API}/results/{task}", key=key)
        self.assertEqual(result["items"][0]["text"], "echo: streamed words here")
        self.assertEqual(result["url"], self.stub_url + "/v1/chat/completions")
        status, _, raw = s.request("GET", f"{API}/results/{task}/logs", key=key)
        self.assertIn(b"echo: streamed words here", raw)
        self.assertNotIn(DEFAULT_SECRET.encode(), raw)


if __name__ == "__main__":
    unittest.main()
