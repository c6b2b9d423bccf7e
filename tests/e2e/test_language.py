"""Run-time semantics of the workflow language through the real stack: references,
conditions (met and unmet, skipped results seen downstream), graph templates, datasets,
epoch order and worker pinning."""
import json
import os
import tempfile
import unittest

from harness import SOURCE_DIR, StackTestCase


def doc(name, body, annotations=""):
    return f"apiVersion: flowmesh/v1\nkind: Workflow\nmetadata:\n  name: {name}\n{annotations}spec:\n{body}"


class LanguageTest(StackTestCase):
    def setUp(self):
        super().setUp()
        self.stack.up()
        self.stack.workers_up(2)

    def run_doc(self, text):
        s = self.stack
        wf_id = s.submit(text)["workflow_id"]
        wf = s.wait_workflow(wf_id)
        tasks = {t["graph_node_name"]: t for t in s.tasks(wf_id)}
        return wf, tasks

    def result(self, task):
        return self.stack.api("GET", f"/api/v1/results/{task['task_id']}")

    def test_references_conditions_and_skips(self):
        body = """  taskType: echo
  stages:
    - name: a
      spec: {data: {type: list, items: ["yes"]}}
    - name: b
      dependsOn: [a]
      spec:
        condition: {node: a, field: items.0.output, equals: "yes"}
        echo: {message: "a said ${a.items.0.output}"}
    - name: c
      dependsOn: [a]
      spec:
        condition: {node: a, field: items.0.output, equals: "no"}
    - name: d
      dependsOn: [a, c]
      spec:
        data: {type: list, items: [{node: a, path: items.0}, "${c.skipped}"]}
"""
        wf, t = self.run_doc(doc("refs", body))
        self.assertEqual(wf["status"], "DONE", t)
        self.assertEqual(self.result(t["b"])["items"][0]["output"], "a said yes")
        self.assertEqual(self.result(t["c"]), {"skipped": True})
        self.assertIs(t["c"]["latest_update"].get("skipped"), True)
        self.assertIsNone(t["c"]["assigned_worker"])  # never dispatched
        d_items = self.result(t["d"])["items"]
        self.assertEqual(d_items[0]["output"], {"input": "yes", "output": "yes"})  # JSON type kept
        self.assertIs(d_items[1]["output"], True)

    def test_unresolvable_reference_fails_without_retry(self):
        body = """  taskType: echo
  stages:
    - name: a
    - name: b
      spec: {echo: {message: "${a.items.5.output}"}}
"""
        wf, t = self.run_doc(doc("badref", body))
        self.assertEqual(wf["status"], "FAILED")
        self.assertEqual(t["b"]["attempts"], 0)
        self.assertIn("a.items.5.output", t["b"]["error"])

    def test_graph_template_broadcasts_rows(self):
        body = """  taskType: echo
  graph:
    nodes:
      - name: topics
        spec: {echo: {message: ["rain", "snow"]}}
      - name: ask
        dependsOn: [topics]
        spec:
          data:
            type: graph_template
            template:
              text: "Explain {topic} to a {who}."
              columns:
                - {label: topic, node: topics, path: items.0.output}
                - {label: who, expr: "${topics.missing}", default: "child"}
"""
        wf, t = self.run_doc(doc("template", body))
        self.assertEqual(wf["status"], "DONE", t)
        outputs = [i["output"] for i in self.result(t["ask"])["items"]]
        self.assertEqual(outputs, ["Explain rain to a child.", "Explain snow to a child."])

    def test_dataset_from_local_jsonl(self):
        path = os.path.join(tempfile.mkdtemp(prefix="fm-ds-"), "rows.jsonl")
        with open(path, "w") as f:
            for i in range(5):
                f.write(json.dumps({"text": f"row {i}", "n": i}) + "\n")
        body = f"""  taskType: echo
  data: {{type: dataset, url: "{path}", column: text, split: "train[1:4]"}}
"""
        wf, t = self.run_doc(doc("dataset", body))
        self.assertEqual(wf["status"], "DONE", t)
        self.assertEqual([i["output"] for i in self.result(t["main"])["items"]], ["row 1", "row 2", "row 3"])

    def test_epoch_order_is_honoured(self):
        # cache: never — identical nodes would otherwise be reused, not dispatched.
        body = """  taskType: echo
  cache: never
  echo: {sleep_seconds: 0.3}
  graph:
    nodes:
      - {name: a}
      - {name: b}
      - {name: c}
"""
        ann = "  annotations:\n    schedule_hint:\n      node_execution_order: [[c], [a, b]]\n"
        wf, t = self.run_doc(doc("epochs", body, ann))
        self.assertEqual(wf["status"], "DONE", t)
        for n in ("a", "b"):
            self.assertGreaterEqual(t[n]["dispatched_ts"], t["c"]["finished_ts"], t)

    def test_selected_worker_pins_the_task(self):
        s = self.stack
        workers = [w for w in s.api("GET", "/api/v1/workers") if w["status"] != "DOWN"]
        target = sorted(w["alias"] for w in workers)[-1]
        body = """  taskType: echo
  cache: never
  graph:
    nodes:
""" + "".join(f"      - {{name: n{i}}}\n" for i in range(6))
        ann = f"  annotations:\n    schedule_hint:\n      selected_worker: {target}\n"
        wf, t = self.run_doc(doc("pinned", body, ann))
        self.assertEqual(wf["status"], "DONE", t)
        by_alias = {w["worker_id"]: w["alias"] for w in workers}
        self.assertEqual({by_alias[x["assigned_worker"]] for x in t.values()}, {target})

    def test_n8n_import_through_cli_and_api(self):
        s = self.stack
        n8n_dir = os.path.join(SOURCE_DIR, "tests", "data", "workflows", "n8n")
        good = os.path.join(n8n_dir, "disabled_passthrough.json")
        with open(os.path.join(n8n_dir, "disabled_passthrough.expected.json")) as f:
            expected = json.load(f)
        names = [n["name"] for n in expected["document"]["spec"]["graph"]["nodes"]]
        out = s.cli("workflow", "validate", good, "--format", "n8n", "--json").stdout
        self.assertEqual(sorted(t["graph_node_name"] for t in json.loads(out)["tasks"]), sorted(names))
        reply = json.loads(s.cli("workflow", "submit", good, "--format", "n8n", "--json").stdout)
        self.assertEqual(reply["count"], len(names))
        tasks = s.tasks(reply["workflow_id"])
        self.assertEqual(sorted(t["graph_node_name"] for t in tasks), sorted(names))
        s.cli("workflow", "cancel", reply["workflow_id"])  # no inference/api executors yet
        # An unsupported node is refused with the node's name, type and location.
        bad = os.path.join(n8n_dir, "err_unsupported_node.json")
        p = s.cli("workflow", "submit", bad, "--format", "n8n", check=False)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("n8n-nodes-base.code", p.stdout + p.stderr)
        self.assertIn(":18:15:", p.stdout + p.stderr)
        with open(bad) as f:
            status, _, raw = s.request("POST", "/api/v1/workflows", f.read(),
                                       headers={"Workflow-Format": "n8n", "Content-Type": "application/json"})
        self.assertEqual(status, 422)
        self.assertEqual(json.loads(raw)["errors"][0]["line"], 18)


if __name__ == "__main__":
    unittest.main()
