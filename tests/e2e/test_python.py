"""The python executor end to end: sandboxed user code through the real server, supervisor
and worker: results, metrics, output files and logs; hostile code fails its own task with a
clear error while the worker, and every other task, go on."""
import hashlib
import json
import os
import shutil
import unittest

from harness import TEMPLATES, StackTestCase

API = "/api/v1"
HAVE_SANDBOX = shutil.which("bwrap") is not None and os.path.exists("/usr/bin/python3")


def python_node(name, code, extra=""):
    body = "\n".join("            " + line for line in code.strip("\n").splitlines())
    return f"""      - name: {name}
        spec:
          taskType: python
          maxAttempts: 1
{extra}          code: |
{body}
"""


@unittest.skipUnless(HAVE_SANDBOX, "bubblewrap or /usr/bin/python3 missing")
class PythonExecutorTest(StackTestCase):
    def by_name(self, wf_id):
        return {t["graph_node_name"]: t for t in self.stack.tasks(wf_id)}

    def logs_text(self, task_id):
        logs = self.stack.api("GET", f"{API}/tasks/{task_id}/logs?limit=1000")
        return json.dumps(logs["entries"])

    def test_pipeline_template(self):
        s = self.stack
        s.up()
        s.workers_up(1)
        with open(os.path.join(TEMPLATES, "python_pipeline.yaml")) as f:
            wf_id = s.submit(f.read())["workflow_id"]
        wf = s.wait_workflow(wf_id, timeout=120)
        tasks = self.by_name(wf_id)
        self.assertEqual(wf["status"], "DONE", tasks)
        stats = s.api("GET", f"{API}/results/{tasks['stats']['task_id']}")
        self.assertEqual(stats["task_type"], "python")
        self.assertEqual(stats["value"]["distinct"], 8)
        self.assertEqual(stats["metrics"], {"lines": 2.0})
        self.assertEqual([f["name"] for f in stats["files"]], ["counts.json"])
        self.assertEqual(len(stats["files"][0]["sha256"]), 64)
        # The file is kept in the content store with the result, under its digest.
        self.assertTrue(stats["files"][0]["stored"], stats["files"])
        status, _, raw = s.request("GET", f"{API}/results/{tasks['stats']['task_id']}/files/counts.json")
        self.assertEqual(status, 200)
        self.assertEqual(hashlib.sha256(raw).hexdigest(), stats["files"][0]["sha256"])
        self.assertEqual(len(json.loads(raw)), 8)  # the distinct words it counted
        self.assertIn("2 lines, 8 distinct words", self.logs_text(tasks["stats"]["task_id"]))
        report = s.api("GET", f"{API}/results/{tasks['report']['task_id']}")
        self.assertEqual(report["value"], "8 distinct words over 2 lines")

    def test_hostile_code_fails_alone(self):
        s = self.stack
        s.up()
        s.workers_up(1)
        home = s.home
        nodes = [
            python_node("raises", "def main():\n    raise ValueError('no such column: price')"),
            python_node("loops", "def main():\n    while True:\n        pass", "          timeoutSeconds: 2\n"),
            python_node("forks", "import os\ndef main():\n    while True:\n        try:\n            os.fork()\n"
                                 "        except OSError:\n            pass", "          timeoutSeconds: 3\n"),
            python_node("crashes", "import ctypes\ndef main():\n    ctypes.string_at(0)"),
            python_node("snoops", f"""
import os, socket
def main():
    seen = {{}}
    for path in [{home!r}, {os.path.join(home, 'config.json')!r}, '/root']:
        try:
            with open(path) as f:
                seen[path] = f.read(20)
        except OSError:
            seen[path] = None
    try:
        socket.create_connection(('127.0.0.1', {s.port}), timeout=3)
        seen['server'] = 'reached'
    except OSError:
        seen['server'] = None
    try:
        open('/usr/bin/flowmesh-owned', 'w')
        seen['write'] = 'wrote'
    except OSError:
        seen['write'] = None
    return seen
"""),
        ]
        text = ("apiVersion: flowmesh/v1\nkind: Workflow\nmetadata: {name: hostile}\n"
                "spec:\n  graph:\n    nodes:\n" + "".join(nodes))
        wf_id = s.submit(text)["workflow_id"]
        s.wait_workflow(wf_id, timeout=180)
        tasks = self.by_name(wf_id)
        status = {name: t["status"] for name, t in tasks.items()}
        self.assertEqual(status, {"raises": "FAILED", "loops": "FAILED", "forks": "FAILED",
                                  "crashes": "FAILED", "snoops": "DONE"}, tasks)
        self.assertIn("python task failed: ValueError: no such column: price", tasks["raises"]["error"])
        self.assertIn("timed out after 2s", tasks["loops"]["error"])
        self.assertIn("timed out after 3s", tasks["forks"]["error"])
        self.assertIn("SIGSEGV", tasks["crashes"]["error"])
        snooped = s.api("GET", f"{API}/results/{tasks['snoops']['task_id']}")["value"]
        self.assertTrue(all(v is None for v in snooped.values()), snooped)
        # The worker survived all of it and still runs work.
        wf_id = s.submit(text.replace("name: hostile", "name: after")
                         .split("      - name: loops")[0])["workflow_id"]
        self.assertEqual(s.wait_workflow(wf_id, timeout=60)["status"], "FAILED")
        ok = s.submit("apiVersion: flowmesh/v1\nkind: Workflow\nmetadata: {name: ok}\nspec:\n"
                      "  taskType: python\n  code: \"def main():\\n    return 'still here'\"\n")
        self.assertEqual(s.wait_workflow(ok["workflow_id"], timeout=60)["status"], "DONE")


if __name__ == "__main__":
    unittest.main()
