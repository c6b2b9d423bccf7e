"""Documents written to the published FlowMesh 0.1.x schema (tests/data/workflows/published)
through the real stack: every one is accepted, refused ones are refused with path and line,
and those our workers can execute run to DONE (echo, data_profiling, and inference and
embedding on a generated GGUF standing in for a Hugging Face model)."""
import glob
import json
import os
import shutil
import stat
import subprocess
import tempfile

from harness import BIN_DIR, SOURCE_DIR, StackTestCase, ensure_demo_model, wait_until

CORPUS = os.path.join(SOURCE_DIR, "tests", "data", "workflows", "published")
API = "/api/v1"
STAND_IN = "flowmesh-test/tiny-llama-64-GGUF"  # the Hugging Face id the documents name

# Documents whose every task our workers run; p00 asks for a GPU (a gpu worker is started
# on a host with a fake nvidia-smi: it advertises that GPU only when this build's engine
# has a GPU backend, so on a CPU-only build p00 must stay queued, never run on the CPU).
RUNNABLE = ["p00_readme_minimal.yaml", "p01_kind_is_informative.yaml", "p02_quoted_cpu.yaml",
            "p03_memory_binary_units.yaml", "p05_inference_options.yaml", "p06_spec_extras.yaml",
            "p07_data_forms.yaml", "p11_embedding.yaml"]


def read(name):
    with open(os.path.join(CORPUS, name)) as f:
        return f.read()


class PublishedFormatTest(StackTestCase):
    def setUp(self):
        super().setUp()
        self.scratch = tempfile.mkdtemp(prefix="fm-published-")
        # The Hugging Face cache layout with the generated model as the stand-in.
        model = ensure_demo_model()
        snapshot = os.path.join(self.scratch, "hub", "models--" + STAND_IN.replace("/", "--"),
                                "snapshots", "main")
        os.makedirs(snapshot)
        shutil.copy(model, os.path.join(snapshot, "tiny-llama-64.gguf"))
        # A GPU for the worker to advertise (the README example asks for one).
        bindir = os.path.join(self.scratch, "bin")
        os.makedirs(bindir)
        smi = os.path.join(bindir, "nvidia-smi")
        with open(smi, "w") as f:
            f.write("#!/bin/sh\necho '0, FlowMesh Test GPU, 24576'\n")
        os.chmod(smi, os.stat(smi).st_mode | stat.S_IEXEC)
        env = self.stack.env
        env["HF_HUB_CACHE"] = os.path.join(self.scratch, "hub")
        env["FLOWMESH_OFFLINE"] = "1"
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
        env["FLOWMESH_UNPLACEABLE_GRACE_S"] = "600"

    def tearDown(self):
        super().tearDown()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def test_corpus_is_accepted_refused_and_run(self):
        s = self.stack
        s.up()
        # Every published-format document validates; n8n exports through the n8n format.
        for path in sorted(glob.glob(os.path.join(CORPUS, "p*"))):
            if path.endswith(".expected.json"):
                continue
            headers = {"Workflow-Format": "n8n"} if path.endswith(".json") else None
            with open(path) as f:
                text = f.read()
            reply = s.api("POST", f"{API}/workflows/validate", text, headers=headers, expect=200)
            self.assertTrue(reply["ok"], (path, reply))
        # Refused ones say where.
        for path in sorted(glob.glob(os.path.join(CORPUS, "refused", "*.yaml"))):
            with open(path) as f:
                text = f.read()
            status, _, body = s.request("POST", f"{API}/workflows", text)
            self.assertEqual(status, 422, (path, body))
            errors = json.loads(body)["errors"]
            self.assertTrue(errors, path)
            for e in errors:
                self.assertGreater(e["line"], 0, (path, e))

        s.workers_up(1)
        s.api("POST", f"{API}/stack/workers",
              {"name": "gpu-1", "worker_config": {"worker_type": "gpu", "slots": "4"}}, expect=201)
        backend = subprocess.run([os.path.join(BIN_DIR, "flowmesh-worker"), "--print-backend"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        live = lambda: [w for w in s.api("GET", f"{API}/workers") if w["status"] != "DOWN"]
        if backend == "cuda":
            wait_until(lambda: any("FlowMesh Test GPU" in json.dumps(w) for w in live()),
                       timeout=30, what="the gpu worker")
            runnable = RUNNABLE
        else:
            gpu = wait_until(lambda: next((w for w in live() if w.get("name") == "gpu-1"), None),
                             timeout=30, what="the gpu worker")
            self.assertNotIn("FlowMesh Test GPU", json.dumps(gpu))
            runnable = [name for name in RUNNABLE if name != "p00_readme_minimal.yaml"]
            gpu_wf = s.submit(read("p00_readme_minimal.yaml"))["workflow_id"]
        ids = {name: s.submit(read(name))["workflow_id"] for name in runnable}
        for name, wf_id in ids.items():
            wf = s.wait_workflow(wf_id, timeout=180)
            self.assertEqual(wf["status"], "DONE", (name, s.tasks(wf_id), s.log_tail("server")))

        # The README example ran on the stand-in through the huggingface source (on a CPU
        # build it waits for a GPU no worker may advertise; p05 reads the same source).
        if backend == "cuda":
            [task] = s.tasks(ids["p00_readme_minimal.yaml"])
        else:
            [queued] = s.tasks(gpu_wf)
            self.assertEqual(queued["status"], "PENDING", queued)
            self.assertFalse(queued.get("assigned_worker"), queued)
            s.api("POST", f"{API}/workflows/{gpu_wf}/cancel", expect=200)
            [task] = s.tasks(ids["p05_inference_options.yaml"])
        result = s.api("GET", f"{API}/results/{task['task_id']}")
        self.assertIn(STAND_IN, result["model"])
        self.assertIsInstance(result["items"][0]["output"], str)
        # A list taken from an upstream result: one item per upstream item.
        tasks = {t["graph_node_name"]: t for t in s.tasks(ids["p07_data_forms.yaml"])}
        relist = s.api("GET", f"{API}/results/{tasks['relist']['task_id']}")
        self.assertEqual(len(relist["items"]), 3)
        prompts = s.api("GET", f"{API}/results/{tasks['prompts']['task_id']}")
        self.assertEqual([i["output"] for i in prompts["items"]],
                         ["red is a colour", "green is a colour", "blue is a colour"])
