"""The global scheduler through the real stack: heterogeneous CPU workers (different costs,
slots and tags), batching up to free slots, selected_worker, the no-eligible-worker failure
and elasticity of native workers."""
import os
import stat
import subprocess
import tempfile
import unittest

from harness import BIN_DIR, StackTestCase, echo_workflow, wait_until

API = "/api/v1"


def independent(name, n, sleep, extra_spec=""):
    nodes = "".join(f"""
      - name: n{i}
        spec:
          data: {{type: list, items: ["{i}"]}}
          echo: {{sleep_seconds: {sleep}}}{extra_spec}""" for i in range(n))
    return f"""apiVersion: flowmesh/v1
kind: Workflow
metadata: {{name: {name}}}
spec:
  taskType: echo
  graph:
    nodes:{nodes}
"""


class SchedulerTest(StackTestCase):
    def start_worker(self, name, cost, slots, tags):
        self.stack.api("POST", f"{API}/stack/workers",
                       {"name": name, "worker_config": {"worker_type": "cpu", "worker_cost_per_hour": str(cost),
                                                        "slots": str(slots), "tags": tags}}, expect=201)

    def live_workers(self):
        return {w["name"]: w for w in self.stack.api("GET", f"{API}/workers") if w["status"] != "DOWN"}

    def test_gpu_worker_advertises_only_what_its_build_can_run(self):
        # A host with one GPU (nvidia-smi answers for it); the worker's build decides whether
        # it may advertise it: a CPU-only build runs every layer on the CPU and says so.
        s = self.stack
        fake_bin = tempfile.mkdtemp(prefix="fm-fake-smi-")
        smi = os.path.join(fake_bin, "nvidia-smi")
        with open(smi, "w") as f:
            f.write("#!/bin/sh\necho '0, Fake GPU 80GB, 81559'\n")
        os.chmod(smi, stat.S_IRWXU)
        s.env["PATH"] = fake_bin + os.pathsep + s.env.get("PATH", "")
        s.up()
        s.api("POST", f"{API}/stack/workers",
              {"name": "g", "worker_config": {"worker_type": "gpu"}}, expect=201)
        worker = wait_until(lambda: self.live_workers().get("g"), timeout=60, what="gpu worker up")
        backend = subprocess.run([os.path.join(BIN_DIR, "flowmesh-worker"), "--print-backend"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        self.assertIn(backend, ("cpu", "cuda"))
        devices = worker["hardware"].get("gpu", {}).get("devices", [])
        if backend == "cpu":
            self.assertEqual(devices, [], worker)
            self.assertIn("advertises no GPUs", self.worker_log("g"))
        else:
            self.assertEqual([d["name"] for d in devices], ["Fake GPU 80GB"], worker)

    def worker_log(self, name):
        for root, _, files in os.walk(self.stack.home):
            if f"{name}.log" in files and os.path.basename(root) == "workers":
                with open(os.path.join(root, f"{name}.log"), errors="replace") as f:
                    return f.read()
        return ""

    def test_heterogeneous_workers(self):
        s = self.stack
        s.env["FLOWMESH_UNPLACEABLE_GRACE_S"] = "2"
        # Workers without the training venv: they offer no ppo (the type no worker offers).
        s.env["FLOWMESH_WORKER_TRAINING_PYTHON"] = "/nonexistent/ml-venv/bin/python"
        s.up()
        self.start_worker("cheap", 1, 2, ["small"])
        self.start_worker("dear", 5, 2, ["large"])
        workers = wait_until(lambda: self.live_workers() if len(self.live_workers()) == 2 else None,
                             timeout=60, what="two workers")
        cheap, dear = workers["cheap"]["worker_id"], workers["dear"]["worker_id"]
        self.assertEqual(workers["dear"]["cost_per_hour"], 5)

        # One task: the cheaper worker, everything else being equal.
        wf = s.submit(echo_workflow("one"))["workflow_id"]
        self.assertEqual(s.wait_workflow(wf)["status"], "DONE")
        self.assertEqual([t["assigned_worker"] for t in s.tasks(wf)], [cheap])

        # Four compatible tasks at once: a batch up to the cheap worker's two free slots,
        # the rest on the other worker; each task keeps its own record and result.
        wf = s.submit(independent("burst", 4, 1.5))["workflow_id"]
        self.assertEqual(s.wait_workflow(wf)["status"], "DONE")
        placed = [t["assigned_worker"] for t in s.tasks(wf)]
        self.assertEqual(sorted(placed), sorted([cheap, cheap, dear, dear]), placed)
        for t in s.tasks(wf):
            self.assertEqual(t["status"], "DONE")
            self.assertEqual(t["attempts"], 1)

        # selected_worker overrides the utility.
        pinned = echo_workflow("pinned", items=("pinned",)).replace(
            "metadata: {name: pinned}",
            "metadata:\n  name: pinned\n  annotations:\n    schedule_hint: {selected_worker: dear}")
        wf = s.submit(pinned)["workflow_id"]
        self.assertEqual(s.wait_workflow(wf)["status"], "DONE")
        self.assertEqual([t["assigned_worker"] for t in s.tasks(wf)], [dear])

        # A task no worker can ever run fails after the grace period, saying why.
        gpu = independent("needs-gpus", 1, 0, "\n          resources: {hardware: {gpu: {count: 2}}}")
        wf = s.submit(gpu)["workflow_id"]
        self.assertEqual(s.wait_workflow(wf, timeout=30)["status"], "FAILED")
        task = s.tasks(wf)[0]
        self.assertIn("no worker can run this task", task["error"])
        self.assertIn("gpus=2", task["error"])
        self.assertIn("gpus=0", task["error"])

        # A task type no worker offers (ppo: these workers lack the venv) is accepted, then fails with the
        # type and what the fleet offers instead of waiting forever.
        wf = s.submit("""apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: train}
spec:
  taskType: ppo
  model: {source: {type: huggingface, identifier: org/model}}
  data: {dataset_name: org/data}
""")["workflow_id"]
        self.assertEqual(s.wait_workflow(wf, timeout=30)["status"], "FAILED")
        error = s.tasks(wf)[0]["error"]
        self.assertTrue(error.startswith("no worker offers taskType ppo; workers offer: "), error)
        self.assertIn("echo", error)

    def test_faster_worker_at_the_same_cost_wins(self):
        # --speed travels worker -> supervisor -> scheduler -> placement core: at equal cost
        # per hour the faster worker is cheaper per unit of work and has more throughput.
        s = self.stack
        s.up()
        self.stack.api("POST", f"{API}/stack/workers",
                       {"name": "slow", "worker_config": {"worker_type": "cpu", "worker_cost_per_hour": "2",
                                                          "slots": "2"}}, expect=201)
        self.stack.api("POST", f"{API}/stack/workers",
                       {"name": "fast", "worker_config": {"worker_type": "cpu", "worker_cost_per_hour": "2",
                                                          "worker_speed": "4", "slots": "2"}}, expect=201)
        workers = wait_until(lambda: self.live_workers() if len(self.live_workers()) == 2 else None,
                             timeout=60, what="two workers")
        self.assertEqual(workers["fast"]["speed"], 4)
        self.assertEqual(workers["slow"]["speed"], 1)
        wf = s.submit(echo_workflow("speed"))["workflow_id"]
        self.assertEqual(s.wait_workflow(wf)["status"], "DONE")
        self.assertEqual([t["assigned_worker"] for t in s.tasks(wf)], [workers["fast"]["worker_id"]])

    def test_bad_utility_option_is_refused_at_start(self):
        out = subprocess.run([os.path.join(BIN_DIR, "flowmesh-server"), "--no-supervisor", "--utility", "lambda_training=2"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn("lambda_training must be between 0 and 1", out.stderr)

    def test_elasticity_starts_and_retires_native_workers(self):
        s = self.stack
        s.env.update({"FLOWMESH_ELASTIC_MAX_WORKERS": "1", "FLOWMESH_ELASTIC_IDLE_S": "2"})
        s.up()
        self.assertEqual(s.api("GET", f"{API}/stack/workers"), [])
        wf = s.submit(echo_workflow("grow"))["workflow_id"]
        self.assertEqual(s.wait_workflow(wf, timeout=90)["status"], "DONE")
        # Idle past the timeout: the worker the policy started is removed again.
        wait_until(lambda: s.api("GET", f"{API}/stack/workers") == [], timeout=60,
                   what="the elastic worker to be retired")


if __name__ == "__main__":
    unittest.main()
