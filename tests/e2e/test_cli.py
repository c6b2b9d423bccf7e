"""The `flowmesh` command line against a real stack: every inspection verb, text and --json."""
import json
import os
import re
import tarfile
import unittest

from harness import TEMPLATES, StackTestCase, echo_workflow, free_port, wait_until


class CliTest(StackTestCase):
    def write(self, name, text):
        path = os.path.join(self.stack.home, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def cli_json(self, *args):
        out = self.stack.cli(*args, "--json").stdout
        try:
            return json.loads(out)
        except ValueError as e:
            raise AssertionError(f"{' '.join(args)} --json printed no JSON: {out!r}") from e

    def test_verbs_against_a_running_stack(self):
        s = self.stack
        s.up()
        s.workers_up(1)
        graph = os.path.join(TEMPLATES, "echo_graph.yaml")

        # validate: a DAG summary for a good file; FILE:LINE:COLUMN for a broken one.
        p = s.cli("workflow", "validate", graph)
        self.assertIn("valid, 4 task(s)", p.stdout)
        self.assertRegex(p.stdout, r"(?m)^d\s+b, c\s*$")
        self.assertRegex(p.stdout, r"(?m)^a\s+-\s*$")
        self.assertEqual(self.cli_json("workflow", "validate", graph)["count"], 4)
        bad = self.write("bad.yaml", "apiVersion: flowmesh/v1\nkind: Workflow\nmetadata: {name: x\nspec: [\n")
        p = s.cli("workflow", "validate", bad, check=False)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertRegex(p.stderr, re.escape(bad) + r":\d+:\d+: ")
        unknown = self.write("unknown.yaml", echo_workflow("u").replace("taskType: echo", "taskType: teleport"))
        p = s.cli("workflow", "validate", unknown, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("teleport", p.stderr)
        p = s.cli("workflow", "validate", os.path.join(s.home, "no-such.yaml"), check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no-such.yaml", p.stderr)

        wf_id = self.cli_json("workflow", "submit", graph)["workflow_id"]
        self.assertEqual(s.cli("workflow", "watch", wf_id, timeout=60).returncode, 0)

        # workflow info / logs.
        p = s.cli("workflow", "info", wf_id)
        self.assertIn(wf_id, p.stdout)
        self.assertIn("DONE", p.stdout)
        info = self.cli_json("workflow", "info", wf_id)
        self.assertEqual((info["workflow_id"], info["status"], len(info["completed_tasks"])), (wf_id, "DONE", 4))
        self.assertEqual(json.loads(s.cli("--json", "workflow", "info", wf_id).stdout)["workflow_id"], wf_id)
        p = s.cli("workflow", "info", "wfl-nope", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("404", p.stderr)

        shown = s.cli("workflow", "logs", "show", wf_id).stdout
        self.assertEqual(shown.count("TASK_SUCCEEDED"), 4, shown)
        page = self.cli_json("workflow", "logs", "show", wf_id, "--limit", "2")
        self.assertEqual(len(page["entries"]), 2)
        p = s.cli("workflow", "logs", "show", wf_id, "--limit", "2")
        self.assertEqual(len(p.stdout.strip().splitlines()), 2, p.stdout)
        self.assertIn(f"--after {page['next_cursor']}", p.stderr)
        rest = self.cli_json("workflow", "logs", "show", wf_id, "--after", str(page["next_cursor"]))
        self.assertTrue(all(int(e["cursor"]) > int(page["next_cursor"]) for e in rest["entries"]))
        self.assertEqual(len(page["entries"]) + len(rest["entries"]),
                         len(self.cli_json("workflow", "logs", "show", wf_id)["entries"]))

        p = s.cli("workflow", "logs", "stream", wf_id, timeout=30)
        self.assertEqual(p.stdout.count("TASK_SUCCEEDED"), 4, p.stdout)
        streamed = [json.loads(l) for l in s.cli("workflow", "logs", "stream", wf_id, "--json", timeout=30)
                    .stdout.splitlines() if l.strip()]
        self.assertEqual([e["type"] for e in streamed].count("TASK_SUCCEEDED"), 4)
        self.assertTrue(all(e["workflow_id"] == wf_id for e in streamed))

        # tasks.
        tasks = self.cli_json("task", "list", "--workflow", wf_id)
        self.assertEqual(sorted(t["graph_node_name"] for t in tasks), ["a", "b", "c", "d"])
        p = s.cli("task", "list", "--workflow", wf_id)
        for t in tasks:
            self.assertIn(t["task_id"], p.stdout)
        self.assertEqual(self.cli_json("task", "list", "--workflow", wf_id, "--status", "FAILED"), [])
        d = next(t for t in tasks if t["graph_node_name"] == "d")
        p = s.cli("task", "info", d["task_id"])
        self.assertIn(d["task_id"], p.stdout)
        self.assertIn("DONE", p.stdout)
        self.assertEqual(self.cli_json("task", "info", d["task_id"])["graph_node_name"], "d")
        p = s.cli("task", "logs", d["task_id"])
        self.assertIn("TASK_SUCCEEDED", p.stdout)
        self.assertEqual({e["event"]["task_id"] for e in self.cli_json("task", "logs", d["task_id"])["entries"]},
                         {d["task_id"]})

        # results.
        result = json.loads(s.cli("result", "fetch", d["task_id"]).stdout)
        self.assertEqual([i["output"] for i in result["items"]], ["joined"])
        self.assertEqual(self.cli_json("result", "fetch", d["task_id"]), result)
        out = os.path.join(s.home, "x.tar.gz")
        p = s.cli("result", "download", d["task_id"], "-o", out)
        self.assertIn(out, p.stdout)
        with tarfile.open(out) as tar:
            self.assertEqual([m.name for m in tar.getmembers() if m.isfile()], [f"{d['task_id']}/results.json"])
            envelope = json.load(tar.extractfile(f"{d['task_id']}/results.json"))
            envelope["result"].pop("_artifacts")
            self.assertEqual(envelope["result"], result)
        dl = self.cli_json("result", "download", d["task_id"], "--include", "all", "-o", out)
        self.assertEqual(dl["bytes"], os.path.getsize(out))
        with tarfile.open(out) as tar:
            self.assertIn(f"{d['task_id']}/logs/logs.jsonl", tar.getnames())
        p = s.cli("result", "fetch", "tsk-nope", check=False)
        self.assertEqual(p.returncode, 1)

        # workers.
        workers = self.cli_json("worker", "list")
        self.assertEqual(len(workers), 1)
        wid = workers[0]["worker_id"]
        p = s.cli("worker", "list")
        self.assertIn(wid, p.stdout)
        self.assertIn("CORDONED", p.stdout)
        self.assertEqual(self.cli_json("worker", "info", wid)["worker_id"], wid)
        self.assertIn(wid, s.cli("worker", "info", wid).stdout)
        self.assertIn("cordoned", s.cli("worker", "cordon", wid).stdout)
        self.assertIs(self.cli_json("worker", "info", wid)["cordoned"], True)
        self.assertIn("uncordoned", s.cli("worker", "uncordon", wid).stdout)
        self.assertIs(self.cli_json("worker", "info", wid)["cordoned"], False)
        self.cli_json("worker", "cordon", wid)
        self.assertIs(self.cli_json("worker", "info", wid)["cordoned"], True)
        self.cli_json("worker", "uncordon", wid)
        p = s.cli("worker", "cordon", "wkr-nope", check=False)
        self.assertEqual(p.returncode, 1)

        # A running task has no bundle yet: exit 1 and no file; cancel; watch exits 130.
        sleeper = self.write("sleeper.yaml", echo_workflow("sleeper", sleep=30))
        running = self.cli_json("workflow", "submit", sleeper)
        task_id = running["tasks"][0]["task_id"]
        wait_until(lambda: self.cli_json("task", "info", task_id)["status"] == "DISPATCHED", what="dispatch")
        early = os.path.join(s.home, "early.tar.gz")
        p = s.cli("result", "download", task_id, "-o", early, check=False)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("409", p.stderr)
        self.assertFalse(os.path.exists(early))
        self.assertIn("cancel", s.cli("workflow", "cancel", running["workflow_id"]).stdout)
        p = s.cli("workflow", "watch", running["workflow_id"], check=False, timeout=60)
        self.assertEqual(p.returncode, 130, p.stdout + p.stderr)
        self.assertIn("CANCELLED", p.stdout)

        # stack status / logs, health.
        p = s.cli("stack", "status")
        self.assertIn("ok", p.stdout)
        self.assertIn(s.url, p.stdout)
        status = self.cli_json("stack", "status")
        self.assertEqual(status["url"], s.url)
        p = s.cli("stack", "logs", "server", "-n", "5")
        self.assertEqual(len(p.stdout.splitlines()), 5, p.stdout)
        p = s.cli("health")
        self.assertIn("healthy", p.stdout)
        self.assertEqual(self.cli_json("health")["status"], "ok")

    def test_local_configuration_and_unreachable_server(self):
        s = self.stack
        # No stack runs here: config, init and the connection error need no server.
        cfg = self.cli_json("config")
        self.assertEqual(cfg["home"], s.home)
        self.assertEqual((cfg["url"], cfg["url_source"]), (s.url, "env"))
        self.assertIn(s.url, s.cli("config").stdout)

        dead = f"http://127.0.0.1:{free_port()}"
        for args in (("health",), ("workflow", "list"), ("task", "info", "tsk-x"), ("worker", "list"),
                     ("workflow", "logs", "stream", "wfl-x")):
            p = s.cli("--url", dead, *args, check=False, timeout=30)
            self.assertEqual(p.returncode, 2, f"{args}: {p.stdout}{p.stderr}")
            self.assertIn(dead, p.stderr)
            self.assertIn("flowmesh stack up", p.stderr)

        env = dict(s.env)
        del env["FLOWMESH_URL"]
        s.env = env
        p = s.cli("init", "127.0.0.1:9/")
        config_file = os.path.join(s.home, "config.json")
        self.assertIn(config_file, p.stdout)
        with open(config_file) as f:
            self.assertEqual(json.load(f)["url"], "http://127.0.0.1:9")
        self.assertEqual(os.stat(config_file).st_mode & 0o777, 0o600)
        cfg = self.cli_json("config")
        self.assertEqual((cfg["url"], cfg["url_source"]), ("http://127.0.0.1:9", "config"))
        inited = self.cli_json("--api-key", "sk-0123456789abcdef", "init", dead)
        self.assertEqual(inited["url"], dead)
        self.assertNotIn("0123456789abcdef", json.dumps(inited))
        with open(config_file) as f:
            self.assertEqual(json.load(f)["api_key"], "sk-0123456789abcdef")
        p = s.cli("health", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn(dead, p.stderr)
        # Flag beats config.
        self.assertEqual(self.cli_json("--url", "http://127.0.0.1:1", "config")["url_source"], "flag")


if __name__ == "__main__":
    unittest.main()
