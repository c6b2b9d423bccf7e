"""The bridge's other executors end to end: ppo, diffusion, image_classification and the
omni family, through the real server, supervisor and worker, which runs python/flowmesh_train
in the pinned ML venv (scripts/install-ml). Every model is tiny, random and built here (a
2-layer llama, a Stable Diffusion pipeline with a 2-block UNet, a 2-layer ViT): no hub
access. Skipped where the venv is missing."""
import hashlib
import json
import os
import random
import shutil
import struct
import subprocess
import tempfile
import time
import unittest

from harness import SOURCE_DIR, StackTestCase, wait_until

API = "/api/v1"
CACHE = os.environ.get("FLOWMESH_CACHE_DIR") or "/var/cache/flowmesh"
ML_PYTHON = os.environ.get("FLOWMESH_WORKER_TRAINING_PYTHON") or os.path.join(CACHE, "ml-venv", "bin", "python")
HAVE_ML = os.access(ML_PYTHON, os.X_OK)
PROMPTS = ["Write a kind note:", "Describe a sunny day:", "Say hello to a friend:", "The cat sat"]


def ml(*args):
    env = dict(os.environ, PYTHONPATH=os.path.join(SOURCE_DIR, "python"))
    subprocess.run([ML_PYTHON, *args], check=True, env=env, capture_output=True, timeout=300)


def build_models(folder):
    corpus = os.path.join(folder, "corpus.txt")
    with open(corpus, "w") as f:
        f.write("\n".join(PROMPTS + ["a kind and sunny note", "hello friend, the cat is happy"]) + "\n")
    ml("-m", "flowmesh_train.tiny", os.path.join(folder, "llama"), "--corpus", corpus, "--seed", "3")
    # A reward model: a two-label (NEGATIVE, POSITIVE) classifier on the same backbone.
    ml("-c", f"""
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
torch.manual_seed(5)
m = AutoModelForSequenceClassification.from_pretrained({os.path.join(folder, "llama")!r}, num_labels=2,
        id2label={{0: "NEGATIVE", 1: "POSITIVE"}}, label2id={{"NEGATIVE": 0, "POSITIVE": 1}})
m.save_pretrained({os.path.join(folder, "reward")!r})
AutoTokenizer.from_pretrained({os.path.join(folder, "llama")!r}).save_pretrained({os.path.join(folder, "reward")!r})
""")
    ml("-m", "flowmesh_train.tiny", os.path.join(folder, "sd"), "--kind", "diffusion", "--seed", "1")
    ml("-m", "flowmesh_train.tiny", os.path.join(folder, "vit"), "--kind", "vit", "--seed", "2")
    # A separable image set in imagefolder layout: reddish against bluish 16x16 squares.
    ml("-c", f"""
import os, random
from PIL import Image
rng = random.Random(0)
for split, n in (("train", 8), ("test", 4)):
    for label, base in (("red", (200, 40, 40)), ("blue", (40, 40, 200))):
        os.makedirs(os.path.join({folder!r}, "colours", split, label))
        for i in range(n):
            img = Image.new("RGB", (16, 16))
            img.putdata([tuple(max(0, min(255, c + rng.randint(-60, 60))) for c in base) for _ in range(256)])
            img.save(os.path.join({folder!r}, "colours", split, label, f"{{i}}.png"))
""")


def png_size(raw):
    """(width, height) from a PNG's IHDR chunk."""
    assert raw[:8] == b"\x89PNG\r\n\x1a\n", raw[:8]
    return struct.unpack(">II", raw[16:24])


@unittest.skipUnless(HAVE_ML, f"the training venv is missing ({ML_PYTHON}; scripts/install-ml)")
class GenerativeTest(StackTestCase):
    @classmethod
    def setUpClass(cls):
        cls.models = tempfile.mkdtemp(prefix="fm-gen-models-")
        build_models(cls.models)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.models, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.models, name)

    def start(self):
        self.stack.up()
        self.stack.workers_up(1)
        wait_until(lambda: any("diffusion" in ((w.get("capabilities") or {}).get("supported_task_types") or [])
                               for w in self.stack.api("GET", f"{API}/workers")) or None,
                   timeout=60, what="a worker offering diffusion")

    def submit(self, name, nodes):
        """nodes: {node name: task spec (a dict)}; one graph, every task tried once."""
        graph = [{"name": n, "spec": {"maxAttempts": 1, **spec}} for n, spec in nodes.items()]
        doc = {"apiVersion": "flowmesh/v1", "kind": "Workflow", "metadata": {"name": name},
               "spec": {"graph": {"nodes": graph}}}
        return self.stack.api("POST", f"{API}/workflows", json.dumps(doc),
                              headers={"Content-Type": "application/json"}, expect=201)["workflow_id"]

    def run_graph(self, name, nodes, timeout=400, status="DONE"):
        wf_id = self.submit(name, nodes)
        wf = self.stack.wait_workflow(wf_id, timeout=timeout)
        tasks = {t["graph_node_name"]: t for t in self.stack.tasks(wf_id)}
        self.assertEqual(wf["status"], status, {n: (t["status"], t.get("error")) for n, t in tasks.items()})
        return tasks

    def result(self, task):
        return self.stack.api("GET", f"{API}/results/{task['task_id']}")

    def file(self, task, name):
        status, _, raw = self.stack.request("GET", f"{API}/results/{task['task_id']}/files/{name}")
        self.assertEqual(status, 200, name)
        return raw

    def logs_text(self, task):
        logs = self.stack.api("GET", f"{API}/tasks/{task['task_id']}/logs?limit=5000")
        return "\n".join(e.get("message") or e.get("line") or json.dumps(e) for e in logs["entries"])

    def test_ppo_runs_its_steps(self):
        self.start()
        # The prompts come from an upstream node's results.
        spec = {"taskType": "ppo", "dependsOn": ["prompts"],
                "model": {"source": {"type": "local", "identifier": self.path("llama")}},
                "data": {"type": "list", "items": [{"node": "prompts", "path": "items.*.output"}]},
                "training": {"learning_rate": 1e-4, "batch_size": 2, "steps": 3, "ppo_epochs": 2, "seed": 4},
                "generation": {"max_new_tokens": 8, "temperature": 0.7}}
        tasks = self.run_graph("ppo", {
            "prompts": {"taskType": "echo", "data": {"type": "list", "items": PROMPTS}},
            "ppo": spec,
            "again": {**spec, "cache": "never"},
            "rewarded": {**spec, "reward_model": {"identifier": self.path("reward"), "type": "sentiment"},
                         "training": {**spec["training"], "steps": 2}}})
        task = tasks["ppo"]
        result = self.result(task)
        self.assertEqual(result["global_step"], 3, result)
        self.assertEqual(result["episodes"], 6, result)  # 3 steps × 2 rollouts
        self.assertEqual([s for s, _ in result["metrics"]["reward_history"]], [1, 2, 3], result["metrics"])
        self.assertEqual(len(result["metrics"]["loss_history"]), 3)
        files = {f["name"]: f for f in result["files"]}
        self.assertIn("final_model/model.safetensors", files)
        self.assertTrue(all(f["stored"] for f in result["files"]))
        progress = self.stack.api("GET", f"{API}/tasks/{task['task_id']}")["latest_update"]["progress"]
        self.assertEqual((progress["step"], progress["max_steps"]), (3, 3))
        logs = self.logs_text(task)
        self.assertIn("PPO on 4 prompts: 3 steps of 2 rollouts", logs)
        self.assertIn("no reward_model: rewards come from an untrained", logs)
        # Seeded: the same rollouts, rewards, losses and weights again.
        again = self.result(tasks["again"])
        self.assertEqual(again["metrics"]["reward_history"], result["metrics"]["reward_history"])
        self.assertEqual(again["metrics"]["loss_history"], result["metrics"]["loss_history"])
        self.assertEqual({f["name"]: f["sha256"] for f in again["files"]}["final_model/model.safetensors"],
                         files["final_model/model.safetensors"]["sha256"])
        # A reward model scores the decoded text.
        rewarded = self.result(tasks["rewarded"])
        self.assertEqual((rewarded["global_step"], rewarded["reward_model"]), (2, self.path("reward")))
        self.assertIn(f"reward: {self.path('reward')} (sentiment)", self.logs_text(tasks["rewarded"]))

    def test_diffusion_writes_the_asked_size_deterministically(self):
        self.start()
        spec = {"taskType": "diffusion",
                "model": {"source": {"type": "local", "identifier": self.path("sd")}},
                "data": {"type": "list", "items": ["a red cube on a table"]},
                "inference": {"num_inference_steps": 3, "guidance_scale": 2.0, "height": 64, "width": 48,
                              "seed": 7}}
        # The second copy is not served from the result cache: it computes again.
        tasks = self.run_graph("diffuse", {"first": spec, "again": {**spec, "cache": "never"}})
        digests = []
        for name in ("first", "again"):
            result = self.result(tasks[name])
            self.assertEqual(result["images"][0]["path"], "images/image_0.png", result)
            self.assertEqual((result["images"][0]["width"], result["images"][0]["height"]), (48, 64))
            files = {f["name"]: f for f in result["files"]}
            self.assertTrue(files["images/image_0.png"]["stored"], files)
            raw = self.file(tasks[name], "images/image_0.png")
            self.assertEqual(png_size(raw), (48, 64))
            self.assertEqual(hashlib.sha256(raw).hexdigest(), files["images/image_0.png"]["sha256"])
            digests.append(files["images/image_0.png"]["sha256"])
        self.assertEqual(digests[0], digests[1])  # seeded: the same bytes
        self.assertIn("loading diffusers pipeline", self.logs_text(tasks["again"]))

    def test_image_classification_learns_and_repeats(self):
        self.start()
        spec = {"taskType": "image_classification",
                "model": {"source": {"type": "local", "identifier": self.path("vit")}},
                "data": {"dataset_name": self.path("colours"), "eval_split": "test"},
                "training": {"learning_rate": 1e-3, "batch_size": 4, "num_train_epochs": 5,
                             "logging_steps": 1, "seed": 3, "save_strategy": "no"}}
        tasks = self.run_graph("classify", {
            "first": spec, "again": {**spec, "taskType": "image_classification_training", "cache": "never"}})
        first, again = self.result(tasks["first"]), self.result(tasks["again"])
        self.assertEqual((first["num_labels"], first["labels"]), (2, ["blue", "red"]))
        self.assertEqual((first["dataset_size"], first["eval_size"], first["global_step"]), (16, 8, 20))
        self.assertLess(first["train_losses"][-1], 0.7 * first["train_losses"][0], first["train_losses"])
        self.assertEqual(first["eval_accuracy"], 1.0, first)
        self.assertLess(first["accuracy_before"], first["eval_accuracy"])
        self.assertIn("final_model/model.safetensors", {f["name"] for f in first["files"]})
        # Seeded: the published task type's run repeats the losses and the weights.
        self.assertEqual(first["train_losses"], again["train_losses"])
        weights = lambda r: {f["name"]: f["sha256"] for f in r["files"]}["final_model/model.safetensors"]
        self.assertEqual(weights(first), weights(again))

    def test_omni(self):
        self.start()
        started = time.monotonic()
        tasks = self.run_graph("omni", {
            "speech": {"taskType": "omni_text2speech", "data": {"items": ["Hello there."]}},
            "video": {"taskType": "omni_text2video",
                      "model": {"source": {"type": "huggingface", "identifier": "Wan-AI/Wan2.2-T2V-A14B-Diffusers"}},
                      "data": {"items": ["A cat walks."]}}}, status="FAILED")
        for name, model in (("speech", "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice"),
                            ("video", "Wan-AI/Wan2.2-T2V-A14B-Diffusers")):
            error = tasks[name]["error"]
            self.assertIn(f"no backend for model '{model}' on this worker", error)
            self.assertIn("vllm-omni", error)
            self.assertEqual(tasks[name]["attempts"], 1)
        self.assertLess(time.monotonic() - started, 120)
        # text2image runs where the worker has a diffusers pipeline.
        tasks = self.run_graph("omni-image", {"image": {
            "taskType": "omni_text2image",
            "model": {"source": {"type": "local", "identifier": self.path("sd")}},
            "data": {"items": ["a tree"]},
            "omni": {"num_inference_steps": 2, "height": 32, "width": 40, "seed": 1}}})
        result = self.result(tasks["image"])
        self.assertEqual((result["executor"], result["mode"]), ("omni_text2image", "image"))
        self.assertEqual(result["image"], {"path": "generated_image.png"})
        self.assertEqual(png_size(self.file(tasks["image"], "generated_image.png")), (40, 32))

    def test_huggingface_safetensors_converted_once(self):
        # A Hugging Face cache holding the model as transformers safetensors, no GGUF: the
        # worker converts it once (llama.cpp's convert_hf_to_gguf.py) and the engine runs it.
        hub = tempfile.mkdtemp(prefix="fm-hf-hub-")
        gguf_cache = tempfile.mkdtemp(prefix="fm-hf-gguf-")
        self.addCleanup(shutil.rmtree, hub, True)
        self.addCleanup(shutil.rmtree, gguf_cache, True)
        commit = "0123456789abcdef0123456789abcdef01234567"
        repo = os.path.join(hub, "models--flowmesh-test--tiny-llama")
        shutil.copytree(self.path("llama"), os.path.join(repo, "snapshots", commit))
        os.makedirs(os.path.join(repo, "refs"))
        with open(os.path.join(repo, "refs", "main"), "w") as f:
            f.write(commit)
        self.stack.env.update({"HF_HUB_CACHE": hub, "FLOWMESH_OFFLINE": "1",
                               "FLOWMESH_WORKER_LORA_GGUF_CACHE": gguf_cache})
        self.start()
        spec = {"taskType": "inference",
                "model": {"source": {"type": "huggingface", "identifier": "flowmesh-test/tiny-llama"}},
                "data": {"type": "list", "items": ["Write a kind note:"]},
                "inference": {"max_tokens": 6, "temperature": 0}}
        first = self.run_graph("hf-first", {"infer": spec})["infer"]
        self.assertEqual(len(self.result(first)["items"]), 1)
        self.assertIn("converting huggingface:flowmesh-test/tiny-llama", self.logs_text(first))
        again = self.run_graph("hf-again", {"infer": {**spec, "cache": "never"}})["infer"]
        self.assertIn("already converted", self.logs_text(again))
        self.assertEqual(len([n for n in os.listdir(gguf_cache) if n.endswith(".gguf")]), 1)

    def test_bad_options_fail_before_compute(self):
        self.start()
        # Out of the option table's range: refused at submit.
        doc = {"apiVersion": "flowmesh/v1", "kind": "Workflow", "metadata": {"name": "bad"},
               "spec": {"taskType": "ppo", "model": {"source": {"type": "local", "identifier": self.path("llama")}},
                        "data": {"prompts": PROMPTS}, "training": {"ppo_epochs": 0}}}
        status, _, raw = self.stack.request("POST", f"{API}/workflows", json.dumps(doc),
                                            headers={"Content-Type": "application/json"})
        self.assertIn(status, (400, 422), raw)
        self.assertIn("training.ppo_epochs", raw.decode())
        # Valid for the tables, refused by the trainer before it loads a model.
        started = time.monotonic()
        tasks = self.run_graph("bad-options", {
            "size": {"taskType": "diffusion",
                     "model": {"source": {"type": "local", "identifier": self.path("sd")}},
                     "data": {"items": ["x"]}, "inference": {"height": 60, "num_inference_steps": 3}},
            "stop": {"taskType": "ppo", "model": {"source": {"type": "local", "identifier": self.path("llama")}},
                     "data": {"prompts": PROMPTS}, "training": {"steps": 2},
                     "generation": {"stop": "\n"}},
            "labels": {"taskType": "image_classification",
                       "model": {"source": {"type": "local", "identifier": self.path("vit")}},
                       "data": {"dataset_name": self.path("colours"), "labels": ["red", "green"]}},
            "notapipeline": {"taskType": "diffusion",
                             "model": {"source": {"type": "local", "identifier": self.path("vit")}},
                             "data": {"items": ["x"]}}}, status="FAILED")
        self.assertIn("inference.height must be a multiple of 8, got 60", tasks["size"]["error"])
        self.assertIn("generation.stop", tasks["stop"]["error"])
        self.assertIn("labels ['blue'] are not in data.labels", tasks["labels"]["error"])
        self.assertIn("is not a diffusers pipeline folder", tasks["notapipeline"]["error"])
        for task in tasks.values():
            self.assertEqual(task["attempts"], 1, task)
        self.assertLess(time.monotonic() - started, 100)


if __name__ == "__main__":
    unittest.main()
