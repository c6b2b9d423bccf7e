"""Tenancy end to end: API keys and scopes, the isolation matrix over every route of
API.md (another organisation's resources answer 404 exactly as missing ones), revocation,
quotas, usage, tokens kept out of logs, the Redis password, and every plugin hook kind
through the example plugin (plus the refusal of a plugin built for another ABI)."""
import glob
import json
import os
import socket
import subprocess
import tempfile
import unittest

from harness import BIN_DIR, Stack, echo_workflow, wait_until

API = "/api/v1"
PLUGIN_DIR = os.path.join(os.path.dirname(BIN_DIR.rstrip("/")), "plugins")
PLUGIN = os.path.join(PLUGIN_DIR, "libstatic_tokens.so")
WRONG_ABI = os.path.join(PLUGIN_DIR, "libstatic_tokens_wrong_abi.so")
PLUGIN_TOKEN = "plugin-token-5f1c2e9a"  # resolved by the example plugin's identity hook
USER_SCOPES = "workflow:read,workflow:write,workflow:cancel,task:read,task:cancel,result:read,result:write,worker:read,node:read,system:read"


def wide(name, n):
    """A workflow of n independent echo tasks."""
    nodes = "\n".join(f"      - name: t{i}\n        spec: {{taskType: echo, data: {{type: list, items: [\"x{i}\"]}}}}"
                      for i in range(n))
    return f"apiVersion: flowmesh/v1\nkind: Workflow\nmetadata: {{name: {name}}}\nspec:\n  graph:\n    nodes:\n{nodes}\n"


def multipart(name, data, boundary="fmTenancyBoundary"):
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


class TenancyTest(unittest.TestCase):
    """One stack for the suite (starting one costs seconds); tests do not depend on order."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="fm-tenancy-")
        cls.tokens = os.path.join(cls.tmp, "tokens")
        cls.usage_file = os.path.join(cls.tmp, "usage.jsonl")
        cls.deny_ids = os.path.join(cls.tmp, "deny_ids")
        cls.registry = os.path.join(cls.tmp, "registry")
        with open(cls.tokens, "w") as f:
            f.write(f"{PLUGIN_TOKEN} usr-plugin org-plugin workflow:read,workflow:write,task:read,result:read\n")
        s = cls.stack = Stack()
        s.env["FLOWMESH_PLUGINS"] = PLUGIN
        s.env["FLOWMESH_PLUGIN_CONFIG_STATIC_TOKENS"] = (
            f"tokens={cls.tokens};usage={cls.usage_file};deny=forbidden-by-guard;"
            f"deny_ids={cls.deny_ids};registry={cls.registry};supplier=acme-cloud")
        s.up()
        s.workers_up(1)
        cls.keys = {}
        for org in ("alpha", "beta"):
            out = s.cli("--json", "admin", "org", "create", org)
            org_rec = json.loads(out.stdout)
            out = s.cli("--json", "admin", "key", "create", "--org", org, "--scopes", USER_SCOPES)
            key = json.loads(out.stdout)
            assert set(key) >= {"key", "org", "scopes"}, key
            cls.keys[org] = key["key"]
            setattr(cls, f"{org}_org", org_rec["org_id"])
        cls.A, cls.B = cls.keys["alpha"], cls.keys["beta"]
        # One finished workflow of org alpha, with a result file.
        cls.wf = s.api("POST", f"{API}/workflows", echo_workflow("alpha-work"), key=cls.A, expect=201)["workflow_id"]
        wait_until(lambda: s.api("GET", f"{API}/workflows/{cls.wf}", key=cls.A)["status"] == "DONE",
                   what="alpha's workflow to finish")
        cls.task = s.api("GET", f"{API}/tasks?workflow_id={cls.wf}", key=cls.A)[0]["task_id"]
        body, hdrs = multipart("out/report.txt", b"alpha only")
        s.api("POST", f"{API}/results/{cls.task}/files", body, headers=hdrs, key=cls.A, expect=201)

    @classmethod
    def tearDownClass(cls):
        cls.stack.close()

    def status(self, method, path, key, body=None, headers=None):
        return self.stack.request(method, path, body, headers, key=key)[0]

    # ---- authentication and scopes

    def test_no_token_is_401_everywhere_but_health_and_version(self):
        s = self.stack
        self.assertEqual(self.status("GET", "/healthz", None), 200)
        self.assertEqual(self.status("GET", f"{API}/system/version", None), 200)
        for method, path in (("GET", f"{API}/workflows"), ("POST", f"{API}/workflows"),
                             ("GET", f"{API}/tasks"), ("GET", f"{API}/workers"), ("GET", f"{API}/nodes"),
                             ("GET", f"{API}/results/{self.task}"), ("GET", f"{API}/system/metrics"),
                             ("GET", "/metrics"), ("GET", f"{API}/stack/workers"), ("GET", f"{API}/usage"),
                             ("GET", f"{API}/admin/keys"), ("GET", f"{API}/workflows/{self.wf}/logs/stream")):
            self.assertEqual(self.status(method, path, None), 401, f"{method} {path}")
            self.assertEqual(self.status(method, path, "fmk_" + "0" * 64), 401, f"{method} {path}")
        st, hdrs, _ = s.request("GET", f"{API}/workflows", key=None)
        self.assertEqual(hdrs.get("WWW-Authenticate"), "Bearer")

    def test_key_without_the_scope_is_403(self):
        s = self.stack
        ro = json.loads(s.cli("--json", "admin", "key", "create", "--org", "alpha",
                              "--scopes", "workflow:read").stdout)["key"]
        self.assertEqual(self.status("GET", f"{API}/workflows/{self.wf}", ro), 200)
        self.assertEqual(self.status("POST", f"{API}/workflows", ro, echo_workflow("x")), 403)
        self.assertEqual(self.status("POST", f"{API}/workflows/{self.wf}/cancel", ro), 403)
        self.assertEqual(self.status("GET", f"{API}/tasks", ro), 403)
        self.assertEqual(self.status("GET", f"{API}/results/{self.task}", ro), 403)
        self.assertEqual(self.status("POST", f"{API}/workers/anything/cordon", self.A), 403)
        self.assertEqual(self.status("GET", f"{API}/system/metrics", self.A), 403)
        self.assertEqual(self.status("GET", f"{API}/admin/keys", self.A), 403)
        # A key cannot mint a key with more than it holds.
        st, _, body = s.request("POST", f"{API}/admin/keys", {"scopes": ["*"]}, key=ro)
        self.assertEqual(st, 403)

    def test_revoked_key_is_401_at_once(self):
        s = self.stack
        k = json.loads(s.cli("--json", "admin", "key", "create", "--org", "beta", "--scopes", "workflow:read").stdout)
        self.assertEqual(self.status("GET", f"{API}/workflows", k["key"]), 200)
        s.cli("admin", "key", "revoke", k["key_id"])
        self.assertEqual(self.status("GET", f"{API}/workflows", k["key"]), 401)
        keys = json.loads(s.cli("--json", "admin", "key", "list", "--org", "beta").stdout)
        self.assertTrue(any(x["key_id"] == k["key_id"] and x["revoked"] for x in keys))
        self.assertFalse(any("key_hash" in x or "key" in x for x in keys))

    # ---- the isolation matrix

    def test_other_org_gets_404_on_every_route_while_owner_succeeds(self):
        s, A, B, wf, task = self.stack, self.A, self.B, self.wf, self.task
        body, hdrs = multipart("x.txt", b"b was here")
        routes = [
            ("GET", f"{API}/workflows/{wf}", None, None, 200),
            ("GET", f"{API}/workflows/{wf}/logs", None, None, 200),
            ("GET", f"{API}/tasks/{task}", None, None, 200),
            ("GET", f"{API}/tasks/{task}/logs", None, None, 200),
            ("GET", f"{API}/results/{task}", None, None, 200),
            ("GET", f"{API}/results/{task}/files/out/report.txt", None, None, 200),
            ("GET", f"{API}/results/{task}/bundle", None, None, 200),
            ("GET", f"{API}/results/{task}/logs", None, None, 200),
            ("POST", f"{API}/results/{task}/files", body, hdrs, 201),
            ("POST", f"{API}/results", {"task_id": task, "worker_id": "w", "result": {"x": 1}}, None, 200),
            ("POST", f"{API}/tasks/{task}/stop", None, None, 409),  # finished: not running
            ("POST", f"{API}/workflows/{wf}/cancel", None, None, (200, 409)),
        ]
        for method, path, b, h, owner_status in routes:
            missing = path.replace(wf, "wfl-doesnotexist").replace(task, "tsk-doesnotexist")
            if isinstance(b, dict) and "task_id" in b:
                other = dict(b, task_id="tsk-doesnotexist")
            else:
                other = b
            st_b, _, raw_b = s.request(method, path, b, h, key=B)
            st_missing, _, raw_missing = s.request(method, missing, other, h, key=B)
            self.assertEqual(st_b, 404, f"org B: {method} {path} -> {st_b} {raw_b[:200]!r}")
            self.assertEqual(st_missing, 404, f"missing: {method} {missing}")
            # Exactly as a missing one: same wording with the id swapped.
            detail_b = json.loads(raw_b)["detail"].replace(wf, "ID").replace(task, "ID")
            detail_missing = json.loads(raw_missing)["detail"].replace("wfl-doesnotexist", "ID").replace("tsk-doesnotexist", "ID")
            self.assertEqual(detail_b, detail_missing, f"{method} {path}")
            allowed = owner_status if isinstance(owner_status, tuple) else (owner_status,)
            self.assertIn(self.status(method, path, A, b, h), allowed, f"org A: {method} {path}")
        # SSE streams: refused before any stream starts.
        for kind, rid in (("workflows", wf), ("tasks", task)):
            self.assertEqual(self.status("GET", f"{API}/{kind}/{rid}/logs/stream", B), 404)
            self.assertEqual(self.status("GET", f"{API}/{kind}/{rid}/logs/stream?token={B}", None), 404)
            st, hdrs, raw = s.request("GET", f"{API}/{kind}/{rid}/logs/stream", key=A, timeout=30)
            self.assertEqual(st, 200)
            self.assertIn(b"event: eos", raw)
        # Traces (lineage and profiling), where the server has them: never another org's.
        for path in (f"{API}/traces/workflows/{wf}/spans", f"{API}/traces/workflows/{wf}/assets",
                     f"{API}/traces/workflows/{wf}/lineage", f"{API}/traces/workflows/analyze/{wf}"):
            self.assertIn(self.status("GET", path, B), (403, 404), path)

    def test_listings_show_only_the_callers_org(self):
        s, A, B = self.stack, self.A, self.B
        b_wf = s.api("POST", f"{API}/workflows", echo_workflow("beta-work"), key=B, expect=201)["workflow_id"]
        a_ids = {w["workflow_id"] for w in s.api("GET", f"{API}/workflows", key=A)}
        b_ids = {w["workflow_id"] for w in s.api("GET", f"{API}/workflows", key=B)}
        self.assertIn(self.wf, a_ids)
        self.assertNotIn(b_wf, a_ids)
        self.assertIn(b_wf, b_ids)
        self.assertNotIn(self.wf, b_ids)
        for key, org in ((A, self.alpha_org), (B, self.beta_org)):
            for t in s.api("GET", f"{API}/tasks", key=key):
                self.assertEqual(t["org_id"], org)
            for w in s.api("GET", f"{API}/workflows?status=DONE", key=key):
                self.assertEqual(w["org_id"], org)
        self.assertEqual(s.api("GET", f"{API}/tasks?workflow_id={self.wf}", key=B), [])
        # Records carry the submitting org and principal.
        t = s.api("GET", f"{API}/tasks/{self.task}", key=A)
        self.assertEqual(t["org_id"], self.alpha_org)
        # Fleet resources are shared: both read workers and nodes.
        self.assertTrue(s.api("GET", f"{API}/workers", key=B))
        self.assertTrue(s.api("GET", f"{API}/nodes", key=B))
        # Usage: each org sees its own rows only.
        wait_until(lambda: s.api("GET", f"{API}/usage", key=A)["rows"], what="alpha usage rows")
        for row in s.api("GET", f"{API}/usage", key=B)["rows"]:
            self.assertEqual(row["org_id"], self.beta_org)
        self.assertEqual(self.status("GET", f"{API}/usage?org=alpha", B), 404)

    def test_result_file_names_cannot_escape(self):
        s = self.stack
        for name in ("../../etc/passwd", "/etc/passwd", "a/../../b"):
            body, hdrs = multipart(name, b"x")
            st = self.status("POST", f"{API}/results/{self.task}/files", self.A, body, hdrs)
            self.assertIn(st, (400, 422), name)
        for path in ("..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd"):
            st = self.status("GET", f"{API}/results/{self.task}/files/{path}", self.A)
            self.assertIn(st, (400, 404, 422), path)

    # ---- quotas

    def test_quota_refusal_names_the_limit_and_recovers(self):
        s = self.stack
        s.cli("admin", "org", "create", "gamma", "--max-queued-tasks", "2", "--max-request-bytes", "4000")
        key = json.loads(s.cli("--json", "admin", "key", "create", "--org", "gamma", "--scopes", USER_SCOPES).stdout)["key"]
        three = wide("three", 3)
        st, hdrs, raw = s.request("POST", f"{API}/workflows", three, key=key)
        detail = json.loads(raw)["detail"]
        self.assertEqual(st, 429)
        self.assertIn("max_queued_tasks", detail)
        self.assertTrue(int(hdrs["Retry-After"]) > 0)
        big = echo_workflow("big", items=("x" * 5000,))
        st, hdrs, raw = s.request("POST", f"{API}/workflows", big, key=key)
        self.assertEqual(st, 429)
        self.assertIn("max_request_bytes", json.loads(raw)["detail"])
        self.assertIn("Retry-After", hdrs)
        # Raising the limit lets the same submission through.
        s.cli("admin", "org", "set", "gamma", "--max-queued-tasks", "100")
        wf = s.api("POST", f"{API}/workflows", three, key=key, expect=201)["workflow_id"]
        wait_until(lambda: s.api("GET", f"{API}/workflows/{wf}", key=key)["status"] == "DONE", what="gamma workflow")
        orgs = json.loads(s.cli("--json", "admin", "org", "list").stdout)
        gamma = next(o for o in orgs if o["name"] == "gamma")
        self.assertEqual(gamma["policy"]["max_queued_tasks"], 100)
        self.assertEqual(gamma["policy"]["max_request_bytes"], 4000)

    def test_running_task_quota_throttles_dispatch(self):
        s = self.stack
        s.cli("admin", "org", "create", "delta", "--max-running-tasks", "1")
        key = json.loads(s.cli("--json", "admin", "key", "create", "--org", "delta", "--scopes", USER_SCOPES).stdout)["key"]
        nodes = "\n".join(f"      - name: t{i}\n        spec: {{taskType: echo, echo: {{sleep_seconds: 0.4}}, "
                          f"data: {{type: list, items: [\"quota {i}\"]}}}}" for i in range(3))
        text = f"apiVersion: flowmesh/v1\nkind: Workflow\nmetadata: {{name: one-at-a-time}}\nspec:\n  graph:\n    nodes:\n{nodes}\n"
        wf = s.api("POST", f"{API}/workflows", text, key=key, expect=201)["workflow_id"]
        peak = 0

        def done():
            nonlocal peak
            tasks = s.api("GET", f"{API}/tasks?workflow_id={wf}", key=key)
            peak = max(peak, sum(t["status"] == "DISPATCHED" for t in tasks))
            return all(t["status"] == "DONE" for t in tasks)
        wait_until(done, timeout=60, interval=0.02, what="delta's workflow")
        self.assertEqual(peak, 1)
        # The attempts ran one after another although the worker has free slots.
        spans = sorted((t["dispatched_ts"], t["finished_ts"]) for t in s.api("GET", f"{API}/tasks?workflow_id={wf}", key=key))
        for (_, end), (start, _) in zip(spans, spans[1:]):
            self.assertGreaterEqual(start, end - 0.05)

    # ---- usage

    def test_usage_rows_and_totals(self):
        s = self.stack
        usage = wait_until(lambda: s.api("GET", f"{API}/usage", key=self.A)
                           if any(r["task_id"] == self.task for r in s.api("GET", f"{API}/usage", key=self.A)["rows"])
                           else None, what="usage row of alpha's task")
        row = next(r for r in usage["rows"] if r["task_id"] == self.task)
        for field in ("org_id", "principal_id", "supplier_id", "started_at", "finished_at", "runtime_sec",
                      "hardware", "cost_per_hour", "cost", "status"):
            self.assertIn(field, row)
        self.assertEqual(row["org_id"], self.alpha_org)
        self.assertEqual(row["status"], "DONE")
        self.assertEqual(row["supplier_id"], "acme-cloud")  # stamped by the supplier resolver
        self.assertTrue(any(t["org_id"] == self.alpha_org for t in usage["totals"]))
        self.assertTrue(usage["per_day"])
        self.assertEqual(s.api("GET", f"{API}/usage?from=2999-01-01", key=self.A)["rows"], [])
        self.assertIn(self.status("GET", f"{API}/usage?from=yesterday", self.A), (400, 422))
        everything = json.loads(s.cli("--json", "usage", "--org", "all").stdout)
        self.assertTrue({r["org_id"] for r in everything["rows"]} >= {self.alpha_org})
        self.assertIn("Totals per organisation", s.cli("usage").stdout)

    # ---- secrets

    def test_secrets_never_reach_the_logs_and_config_is_private(self):
        s = self.stack
        self.assertEqual(os.stat(os.path.join(s.home, "config.json")).st_mode & 0o777, 0o600)
        # Exercise the query-token path too (it must not be logged either).
        s.request("GET", f"{API}/workflows/{self.wf}/logs/stream?token={self.A}", key=None)
        secrets = [self.A, self.B, s.api_key, PLUGIN_TOKEN, s.redis_password]
        logs = glob.glob(os.path.join(s.home, "logs", "*.log")) + glob.glob(os.path.join(s.home, "state", "**", "*.log"), recursive=True)
        self.assertTrue(logs)
        for path in logs:
            with open(path, errors="replace") as f:
                text = f.read()
            for secret in secrets:
                self.assertNotIn(secret, text, f"a secret appears in {path}")

    def test_redis_requires_the_password(self):
        s = self.stack
        with socket.create_connection(("127.0.0.1", s.redis_port), timeout=5) as c:
            c.sendall(b"PING\r\n")
            self.assertTrue(c.recv(200).startswith(b"-NOAUTH"))
            c.sendall(f"AUTH {s.redis_password}\r\nPING\r\n".encode())
            reply = b""
            while reply.count(b"\r\n") < 2:
                reply += c.recv(200)
            self.assertEqual(reply, b"+OK\r\n+PONG\r\n")

    def test_worker_with_a_wrong_token_is_refused(self):
        s = self.stack
        node = next(n for n in s.api("GET", f"{API}/nodes") if n["local"])
        addr = node["info"]["grpc_address"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWMESH_")}
        for token in ("wrong-token", ""):
            p = subprocess.run([os.path.join(BIN_DIR, "flowmesh-worker"), "--supervisor", addr,
                                "--name", "intruder", "--token", token],
                               env=env, capture_output=True, text=True, timeout=60)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("invalid worker token", p.stderr + p.stdout)
        self.assertFalse([w for w in s.api("GET", f"{API}/workers") if w.get("name") == "intruder"])

    # ---- plugins

    def test_plugin_identity_provider(self):
        s = self.stack
        self.assertEqual(self.status("GET", f"{API}/workflows", PLUGIN_TOKEN), 200)
        wf = s.api("POST", f"{API}/workflows", echo_workflow("from-plugin"), key=PLUGIN_TOKEN, expect=201)["workflow_id"]
        rec = s.api("GET", f"{API}/workflows/{wf}", key=PLUGIN_TOKEN)
        self.assertEqual(rec["org_id"], "org-plugin")
        self.assertEqual(rec["owner_id"], "usr-plugin")
        self.assertEqual(self.status("GET", f"{API}/workflows/{wf}", self.A), 404)
        self.assertEqual(self.status("POST", f"{API}/workflows/{wf}/cancel", PLUGIN_TOKEN), 403)  # no workflow:cancel

    def test_plugin_submission_guard(self):
        st, _, raw = self.stack.request("POST", f"{API}/workflows", echo_workflow("forbidden-by-guard"), key=self.A)
        self.assertEqual(st, 403)
        self.assertIn("forbidden-by-guard", json.loads(raw)["detail"])

    def test_plugin_usage_sink_and_registrar(self):
        s = self.stack
        def delivered():
            if not os.path.exists(self.usage_file):
                return False
            with open(self.usage_file) as f:
                return self.task in f.read()
        wait_until(delivered, what="the usage sink to receive alpha's task")
        with open(self.usage_file) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        self.assertTrue(any(r["task_id"] == self.task and r["org_id"] == self.alpha_org for r in rows))
        with open(self.registry) as f:
            registry = f.read()
        self.assertIn("reconcile workflow", registry)
        self.assertIn(f"register workflow {self.wf} {self.alpha_org}", registry)
        self.assertIn(f"register task {self.task} {self.alpha_org}", registry)
        self.assertIn("register node nod-", registry)

    def test_plugin_permission_checker(self):
        s = self.stack
        other = s.api("POST", f"{API}/workflows", echo_workflow("alpha-two"), key=self.A, expect=201)["workflow_id"]
        try:
            with open(self.deny_ids, "w") as f:
                f.write(other + "\n")
            self.assertEqual(self.status("GET", f"{API}/workflows/{other}", self.A), 403)
            listed = {w["workflow_id"] for w in s.api("GET", f"{API}/workflows", key=self.A)}
            self.assertNotIn(other, listed)
            self.assertIn(self.wf, listed)
        finally:
            os.remove(self.deny_ids)
        self.assertEqual(self.status("GET", f"{API}/workflows/{other}", self.A), 200)

    def test_plugin_with_wrong_abi_stops_the_server_naming_it(self):
        state = tempfile.mkdtemp(prefix="fm-abi-")
        env = dict(os.environ, FLOWMESH_PLUGINS=WRONG_ABI)
        p = subprocess.run([os.path.join(BIN_DIR, "flowmesh-server"), "--port", "0", "--state-dir", state,
                            "--no-supervisor", "--redis-port", str(self.stack.redis_port)],
                           env=env, capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(WRONG_ABI, p.stderr)
        self.assertIn("ABI version", p.stderr)


if __name__ == "__main__":
    unittest.main()
