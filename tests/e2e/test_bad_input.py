"""Bad input gets clear errors; nothing bad input does takes a process down."""
import json
import os
import socket
import subprocess
import time
import unittest

from harness import StackTestCase, echo_workflow, wait_until


class BadInputTest(StackTestCase):
    def setUp(self):
        super().setUp()
        self.stack.up()

    def test_malformed_yaml_reports_line_and_column(self):
        status, _, body = self.stack.request("POST", "/api/v1/workflows",
                                             "apiVersion: flowmesh/v1\nkind: Workflow\nmetadata: {name: x\nspec: [\n")
        self.assertEqual(status, 422)
        err = json.loads(body)
        self.assertIn("detail", err)
        self.assertTrue(err["errors"][0]["line"] > 0, err)

    def test_unknown_task_type_lists_known_ones(self):
        status, _, body = self.stack.request("POST", "/api/v1/workflows",
                                             echo_workflow("x").replace("taskType: echo", "taskType: teleport"))
        self.assertEqual(status, 422)
        detail = json.loads(body)["detail"]
        self.assertIn("teleport", detail)
        self.assertIn("echo", detail)
        self.assertIn("data_profiling", detail)

    def test_body_over_limit_is_413(self):
        status, _, body = self.stack.request("POST", "/api/v1/workflows", "x" * (17 << 20))
        self.assertEqual(status, 413)

    def test_unknown_ids_are_404(self):
        for path in ("/api/v1/workflows/wfl-nope", "/api/v1/tasks/tsk-nope", "/api/v1/results/tsk-nope",
                     "/api/v1/workers/wkr-nope", "/api/v1/nodes/nod-nope", "/api/v1/workflows/wfl-nope/logs",
                     "/api/v1/workflows/wfl-nope/logs/stream"):
            status, _, body = self.stack.request("GET", path)
            self.assertEqual(status, 404, path)
            self.assertIn("detail", json.loads(body))
        status, _, _ = self.stack.request("POST", "/api/v1/workflows/wfl-nope/cancel")
        self.assertEqual(status, 404)

    def test_validate_endpoint_and_cli(self):
        ok = self.stack.api("POST", "/api/v1/workflows/validate", echo_workflow("v"))
        self.assertTrue(ok["ok"])
        self.assertEqual(ok["count"], 1)
        status, _, _ = self.stack.request("POST", "/api/v1/workflows/validate", "spec: [")
        self.assertEqual(status, 422)

    def test_sse_client_disconnect_leaks_nothing(self):
        s = self.stack
        s.workers_up(1)
        wf_id = s.submit(echo_workflow("sse", sleep=5))["workflow_id"]
        socks = []
        for _ in range(50):
            c = socket.create_connection(("127.0.0.1", s.port))
            c.sendall(f"GET /api/v1/workflows/{wf_id}/logs/stream HTTP/1.1\r\nHost: x\r\n"
                      f"Authorization: Bearer {s.api_key}\r\n\r\n".encode())
            socks.append(c)
        for c in socks:
            self.assertIn(b"text/event-stream", c.recv(4096))
        wait_until(lambda: s.api("GET", "/api/v1/system/metrics")["sse_subscribers"] >= 50, what="50 subscribers")
        for c in socks:
            c.close()
        wait_until(lambda: s.api("GET", "/api/v1/system/metrics")["sse_subscribers"] == 0,
                   what="subscribers to be released")
        s.cli("workflow", "cancel", wf_id)

    def test_garbage_on_the_bus_is_dropped(self):
        s = self.stack
        s.workers_up(1)
        cli = ["redis-cli", "-p", str(s.redis_port)]
        redis_env = dict(os.environ, REDISCLI_AUTH=s.redis_password)
        for payload in ("not json", "[1,2,3]", '{"kind":"task_event","task_id":42,"attempt":"x"}',
                        '{"kind":"worker_up","worker_id":"wkr-x","info":{"slots":"many"}}', '{"kind": "task_event"',
                        "\xff\xfe garbage", '{"kind":1}', '{"kind":"task_event","task_id":"tsk-x","attempt":1e300}',
                        '{"kind":"stack_workers","node_id":"x","workers":{"a":1}}'):
            subprocess.run(cli + ["XADD", "fm:events", "*", "p", payload], check=True, capture_output=True, env=redis_env)
        for payload in ('{"workers":[{"worker_id":7}]}', '{"workers":[{"worker_id":"wkr-x","running":[1,{"task_id":2}]}]}',
                        '[]', "not json", '{"workers":{"x":1}}'):
            subprocess.run(cli + ["PUBLISH", "fm:heartbeats", payload], check=True, capture_output=True, env=redis_env)
        for body in ({"node_id": 5}, {"local": "yes", "alias": ["x"]}):
            status, _, _ = s.request("POST", "/api/v1/nodes/register", body)
            self.assertLess(status, 500)
        wf_id = s.submit(echo_workflow("after-garbage"))["workflow_id"]
        self.assertEqual(s.wait_workflow(wf_id)["status"], "DONE")

    def test_garbage_http_requests(self):
        s = self.stack
        for raw in (b"\x00\x01\x02garbage\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"POST /api/v1/workflows HTTP/1.1\r\nContent-Length: -5\r\n\r\n"):
            c = socket.create_connection(("127.0.0.1", s.port))
            c.sendall(raw)
            c.settimeout(5)
            try:
                c.recv(4096)
            except OSError:
                pass
            c.close()
        self.assertEqual(s.health().get("status"), "ok")


if __name__ == "__main__":
    unittest.main()
