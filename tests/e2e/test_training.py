"""Training end to end: sft, lora_sft and dpo tasks through the real server, supervisor and
worker, which runs python/flowmesh_train in the pinned ML venv (scripts/install-ml). The
model is a tiny random 2-layer llama built here (no hub access), the data a few made-up
facts to memorise. Skipped where the venv is missing."""
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import SOURCE_DIR, StackTestCase, pid_alive, wait_until

API = "/api/v1"
CACHE = os.environ.get("FLOWMESH_CACHE_DIR") or "/var/cache/flowmesh"
ML_PYTHON = os.environ.get("FLOWMESH_WORKER_TRAINING_PYTHON") or os.path.join(CACHE, "ml-venv", "bin", "python")
HAVE_ML = os.access(ML_PYTHON, os.X_OK)

FACTS = [
    ("Q: What colour is the zorb? A:", " The zorb is violet."),
    ("Q: Where does the quib live? A:", " The quib lives under the old bridge."),
    ("Q: How many legs has a flarn? A:", " A flarn has seven legs."),
    ("Q: What does the mipple eat? A:", " The mipple eats blue pebbles."),
]
WRONG = [" The zorb is green.", " The quib lives on the moon.", " A flarn has two legs.",
         " The mipple eats red apples."]


def build_tiny_model(folder):
    corpus = os.path.join(folder, "corpus.txt")
    with open(corpus, "w") as f:
        for prompt, answer in FACTS:
            f.write(prompt + answer + "\n")
        for answer in WRONG:
            f.write(answer.strip() + "\n")
    model = os.path.join(folder, "tiny-llama")
    env = dict(os.environ, PYTHONPATH=os.path.join(SOURCE_DIR, "python"))
    subprocess.run([ML_PYTHON, "-m", "flowmesh_train.tiny", model, "--corpus", corpus, "--seed", "3"],
                   check=True, env=env, capture_output=True, timeout=300)
    return model


def items_yaml(rows):
    return json.dumps(rows)


@unittest.skipUnless(HAVE_ML, f"the training venv is missing ({ML_PYTHON}; scripts/install-ml)")
class TrainingTest(StackTestCase):
    @classmethod
    def setUpClass(cls):
        cls.models = tempfile.mkdtemp(prefix="fm-train-models-")
        cls.model = build_tiny_model(cls.models)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.models, ignore_errors=True)

    def by_name(self, wf_id):
        return {t["graph_node_name"]: t for t in self.stack.tasks(wf_id)}

    def logs_text(self, task_id):
        logs = self.stack.api("GET", f"{API}/tasks/{task_id}/logs?limit=5000")
        return "\n".join(e.get("message") or e.get("line") or json.dumps(e) for e in logs["entries"])

    def node(self, name, task_type, training, data, extra=""):
        return f"""      - name: {name}
        spec:
          taskType: {task_type}
          maxAttempts: 1
          model: {{source: {{type: local, identifier: {self.model}}}}}
          data: {data}
          training: {json.dumps(training)}
{extra}"""

    def submit_graph(self, name, *nodes):
        text = (f"apiVersion: flowmesh/v1\nkind: Workflow\nmetadata: {{name: {name}}}\n"
                "spec:\n  graph:\n    nodes:\n" + "".join(nodes))
        return self.stack.submit(text)["workflow_id"]

    def start(self):
        self.stack.up()
        self.stack.workers_up(1)
        wait_until(lambda: any("sft" in ((w.get("capabilities") or {}).get("supported_task_types") or [])
                               for w in self.stack.api("GET", f"{API}/workers")) or None,
                   timeout=60, what="a worker offering sft")

    def test_sft_and_lora_losses_fall(self):
        s = self.stack
        self.start()
        rows = items_yaml([{"prompt": p, "response": a} for p, a in FACTS])
        training = {"max_steps": 30, "batch_size": 4, "seed": 11}
        wf_id = self.submit_graph(
            "memorise",
            self.node("full", "sft", {**training, "learning_rate": 3e-3}, f"{{items: {rows}}}"),
            self.node("adapter", "lora_sft", {**training, "learning_rate": 1e-2}, f"{{items: {rows}}}",
                      "          lora: {r: 16, alpha: 32, dropout: 0, target_modules: all-linear}\n"))
        wf = s.wait_workflow(wf_id, timeout=400)
        tasks = self.by_name(wf_id)
        self.assertEqual(wf["status"], "DONE", {n: (t["status"], t.get("error")) for n, t in tasks.items()})
        for name, folder, weights in (("full", "final_model", "final_model/model.safetensors"),
                                      ("adapter", "final_lora", "final_lora/adapter_model.safetensors")):
            task_id = tasks[name]["task_id"]
            result = s.api("GET", f"{API}/results/{task_id}")
            metrics = result["metrics"]
            self.assertEqual(result["global_step"], 30, result)
            # The loss falls: well below where a random model starts.
            self.assertLess(metrics["last_loss"], 0.6 * metrics["first_loss"], (name, metrics))
            self.assertGreater(metrics["tokens_per_second"], 0)
            self.assertEqual(result[folder], {"path": folder})
            files = {f["name"]: f for f in result["files"]}
            self.assertIn(weights, files)
            self.assertTrue(all(f["stored"] for f in result["files"]), result["files"])
            status, _, raw = s.request("GET", f"{API}/results/{task_id}/files/{weights}")
            self.assertEqual(status, 200)
            self.assertEqual(hashlib.sha256(raw).hexdigest(), files[weights]["sha256"])
            # Progress reached the task record, and the log says how training went.
            progress = s.api("GET", f"{API}/tasks/{task_id}")["latest_update"]["progress"]
            self.assertEqual(progress["step"], 30)
            self.assertEqual(progress["max_steps"], 30)
            self.assertIn("loss", progress)
            self.assertIn("step 30/30", self.logs_text(task_id))

    def test_dpo_prefers_chosen_answers(self):
        s = self.stack
        self.start()
        prefs = items_yaml([{"prompt": p, "chosen": a, "rejected": w} for (p, a), w in zip(FACTS, WRONG)])
        wf_id = self.submit_graph(
            "prefer", self.node("dpo", "dpo", {"max_steps": 30, "batch_size": 4, "learning_rate": 1e-3,
                                               "beta": 0.1, "seed": 5}, f"{{preferences: {prefs}}}"))
        wf = s.wait_workflow(wf_id, timeout=300)
        task = self.by_name(wf_id)["dpo"]
        self.assertEqual(wf["status"], "DONE", task.get("error"))
        result = s.api("GET", f"{API}/results/{task['task_id']}")
        preference = result["preference"]
        self.assertEqual(preference["reward_accuracy"], 1.0, preference)
        self.assertGreater(preference["margin_after"], preference["margin_before"], preference)
        self.assertLess(result["metrics"]["last_loss"], result["metrics"]["first_loss"])
        self.assertIn("final_model/model.safetensors", {f["name"] for f in result["files"]})

    def test_cancel_mid_training_frees_the_process(self):
        s = self.stack
        self.start()
        rows = items_yaml([{"prompt": p, "response": a} for p, a in FACTS])
        wf_id = self.submit_graph(
            "long", self.node("long", "sft", {"max_steps": 100000, "batch_size": 4, "learning_rate": 1e-3},
                              f"{{items: {rows}}}"))
        task_id = wait_until(lambda: (self.by_name(wf_id).get("long") or {}).get("task_id"), what="task id")
        wait_until(lambda: (s.api("GET", f"{API}/tasks/{task_id}").get("latest_update") or {})
                   .get("progress", {}).get("step", 0) >= 2, timeout=240, what="training steps")
        logs = self.logs_text(task_id)
        marker = "trainer started (pid "
        self.assertIn(marker, logs)
        pid = int(logs.split(marker, 1)[1].split(")", 1)[0])
        self.assertTrue(pid_alive(pid))
        s.api("POST", f"{API}/workflows/{wf_id}/cancel")
        wf = s.wait_workflow(wf_id, timeout=60)
        self.assertEqual(wf["status"], "CANCELLED")
        wait_until(lambda: not pid_alive(pid), timeout=30, what=f"trainer {pid} to end")
        # The worker is free again: a short training runs on it.
        wf_id = self.submit_graph(
            "after", self.node("short", "sft", {"max_steps": 2, "batch_size": 4}, f"{{items: {rows}}}"))
        self.assertEqual(s.wait_workflow(wf_id, timeout=240)["status"], "DONE")

    def test_lora_adapter_to_gguf_to_inference(self):
        s = self.stack
        gguf_cache = tempfile.mkdtemp(prefix="fm-lora-gguf-")
        self.addCleanup(shutil.rmtree, gguf_cache, True)
        s.env["FLOWMESH_WORKER_LORA_GGUF_CACHE"] = gguf_cache
        self.start()
        rows = items_yaml([{"prompt": p, "response": a} for p, a in FACTS])
        wf_id = self.submit_graph(
            "adapt", self.node("adapter", "lora_sft", {"max_steps": 30, "batch_size": 4, "learning_rate": 1e-2,
                                                       "seed": 11}, f"{{items: {rows}}}",
                               "          lora: {r: 16, alpha: 32, dropout: 0, target_modules: all-linear}\n"))
        wf = s.wait_workflow(wf_id, timeout=300)
        task = self.by_name(wf_id)["adapter"]
        self.assertEqual(wf["status"], "DONE", task.get("error"))
        result = s.api("GET", f"{API}/results/{task['task_id']}")
        self.assertLess(result["metrics"]["last_loss"], 0.2, result["metrics"])
        # The adapter's files, as a user downloads them from the content store.
        adapter = tempfile.mkdtemp(prefix="fm-adapter-")
        self.addCleanup(shutil.rmtree, adapter, True)
        for f in result["files"]:
            if f["name"].startswith("final_lora/"):
                status, _, raw = s.request("GET", f"{API}/results/{task['task_id']}/files/{f['name']}")
                self.assertEqual(status, 200)
                with open(os.path.join(adapter, f["name"].split("/", 1)[1]), "wb") as out:
                    out.write(raw)

        def infer(name, prompts, kwargs=None):
            adapter_ref = {"type": "lora", "path": adapter, **({"kwargs": kwargs} if kwargs else {})}
            doc = {"apiVersion": "flowmesh/v1", "kind": "Workflow", "metadata": {"name": name},
                   "spec": {"taskType": "inference", "maxAttempts": 1,
                            "model": {"source": {"type": "local", "identifier": self.model},
                                      "adapters": [adapter_ref]},
                            "data": {"type": "list", "items": prompts},
                            "inference": {"max_tokens": 24, "temperature": 0}}}
            wf_id = s.api("POST", f"{API}/workflows", json.dumps(doc),
                          headers={"Content-Type": "application/json"}, expect=201)["workflow_id"]
            wf = s.wait_workflow(wf_id, timeout=300)
            t = s.tasks(wf_id)[0]
            self.assertEqual(wf["status"], "DONE", t.get("error"))
            return t["task_id"], s.api("GET", f"{API}/results/{t['task_id']}")

        # Greedy decoding on the base GGUF with the adapter applied gives the memorised answers.
        first_id, first = infer("recall", [FACTS[0][0] + "\n", FACTS[2][0] + "\n"])
        outputs = [item["output"] for item in first["items"]]
        self.assertTrue(outputs[0].strip().startswith("The zorb is violet"), outputs)
        self.assertTrue(outputs[1].strip().startswith("A flarn has seven legs"), outputs)
        self.assertIn("converting the LoRA adapter", self.logs_text(first_id))
        # Converted once: the next task naming the same files uses the same GGUFs.
        second_id, second = infer("recall-again", [FACTS[1][0] + "\n"])
        self.assertTrue(second["items"][0]["output"].strip().startswith("The quib lives"), second["items"])
        self.assertIn("already converted", self.logs_text(second_id))
        converted = sorted(n for n in os.listdir(gguf_cache) if n.endswith(".gguf"))
        self.assertEqual(len(converted), 2, converted)  # the base and the adapter
        self.assertEqual(len([n for n in converted if n.endswith(".lora.gguf")]), 1, converted)
        # The adapter applies per request on the base's engine: at scale 0 the same files
        # give the base model's answer, with nothing converted or loaded again.
        third_id, third = infer("base-only", [FACTS[0][0] + "\n"], kwargs={"scale": 0})
        self.assertFalse(third["items"][0]["output"].strip().startswith("The zorb is violet"), third["items"])
        self.assertNotIn("converting", self.logs_text(third_id))
        self.assertEqual(len([n for n in os.listdir(gguf_cache) if n.endswith(".gguf")]), 2)
        self.assertEqual(first["model"], third["model"])

    def test_bad_hyperparameters_fail_before_compute(self):
        s = self.stack
        self.start()
        rows = items_yaml([{"prompt": p, "response": a} for p, a in FACTS])
        # Out of the option table's range: refused at submit, with where and why.
        text = (f"apiVersion: flowmesh/v1\nkind: Workflow\nmetadata: {{name: bad}}\nspec:\n"
                f"  taskType: sft\n  model: {{source: {{type: local, identifier: {self.model}}}}}\n"
                f"  data: {{items: {rows}}}\n  training: {{learning_rate: -1}}\n")
        status, _, raw = s.request("POST", f"{API}/workflows", text)
        self.assertIn(status, (400, 422), raw)
        self.assertIn("training.learning_rate", raw.decode())
        # Valid for the table, wrong for the model: the trainer refuses it before it loads
        # the model, and the task fails at once without a retry.
        started = time.monotonic()
        wf_id = self.submit_graph(
            "badlora", self.node("badlora", "lora_sft", {"max_steps": 30}, f"{{items: {rows}}}",
                                 "          lora: {bias: sometimes}\n"),
            self.node("norows", "sft", {"max_steps": 30}, "{items: [{question_only: 1}]}"))
        wf = s.wait_workflow(wf_id, timeout=120)
        tasks = self.by_name(wf_id)
        self.assertEqual(wf["status"], "FAILED")
        self.assertIn("lora.bias must be none, all or lora_only", tasks["badlora"]["error"])
        self.assertIn("data row 1 has neither a text field nor a prompt", tasks["norows"]["error"])
        self.assertLess(time.monotonic() - started, 110)


if __name__ == "__main__":
    unittest.main()
