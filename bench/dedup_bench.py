"""bench/run.sh dedup: work done once, measured through the real stack.

8 organisations x 25 workflows, drawn from a pool in which 60% of the workflows (and so
60% of the operators) recur: each workflow is a three-operator chain (echo preprocessing,
a deterministic operator that reads it — greedy inference on a generated model when the
worker has the inference executor, else a costly echo — and data profiling). The same
submissions run three times on a fresh stack each: dedup off, `tenant`, `global`. Prints,
for each, executed operators beside the worker-seconds they cost and the makespan, the
ratios worker_cpu_seconds_off_over_{tenant,global}, and checks that every workflow's results
are identical in all three runs.

Worker-seconds are CPU time: utime + stime of the worker processes and of their children
(reaped ones through cutime/cstime, live ones by walking /proc), read from /proc/<pid>/stat
before the first submission and after the last workflow ends. Wall time (the sum of the
attempts' runtimes, kept as *_worker_wall_seconds) grows with contention: a run that executes
more operators at once on a busy machine waits longer for each, which inflates the off-scope
figure. Echo's sleep costs no CPU, so with the echo middle operator the CPU figures are mostly
the workers' own bookkeeping; the inference operator is where the work is.
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
from harness import BIN_DIR, SOURCE_DIR, Stack, wait_until  # noqa: E402

API = "/api/v1"
ORGS = int(os.environ.get("BENCH_ORGS", "8"))
PER_ORG = int(os.environ.get("BENCH_WORKFLOWS_PER_ORG", "25"))
RECUR = float(os.environ.get("BENCH_RECUR", "0.6"))
TEMPLATES = int(os.environ.get("BENCH_TEMPLATES", "6"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
ECHO_WORK_S = float(os.environ.get("BENCH_ECHO_WORK_S", "0.2"))
SCOPES = "workflow:read,workflow:write,task:read,result:read"


def find_model_tool():
    """The test-model generator, when the tree has the inference executor."""
    for rel in ("tools/gguf-gen",):
        p = os.path.join(SOURCE_DIR, rel)
        if os.path.exists(p):
            return p
    return None


def workflow(name, seed, model):
    """A three-operator chain; `seed` decides every input, so equal seeds are equal work."""
    rng = random.Random(seed)
    words = " ".join(rng.choice(["alpha", "beta", "gamma", "delta", "omega"]) for _ in range(12))
    if model:
        middle = f"""      - name: think
        dependsOn: [prep]
        spec:
          taskType: inference
          model: {{source: {{type: local, identifier: "{model}"}}, llamacpp: {{threads: 1}}}}
          data: {{type: list, items: ["${{prep.items.0.output}} {seed}"]}}
          inference: {{max_tokens: 48, temperature: 0}}"""
    else:
        middle = f"""      - name: think
        dependsOn: [prep]
        spec:
          taskType: echo
          data: {{type: list, items: ["${{prep.items.0.output}} {seed}"]}}
          echo: {{sleep_seconds: {ECHO_WORK_S * 3}}}"""
    return f"""apiVersion: flowmesh/v1
kind: Workflow
metadata: {{name: {name}}}
spec:
  graph:
    nodes:
      - name: prep
        spec:
          taskType: echo
          data: {{type: list, items: ["{words}"]}}
          echo: {{sleep_seconds: {ECHO_WORK_S}}}
{middle}
      - name: profile
        dependsOn: [think]
        spec:
          taskType: data_profiling
          data: {{type: list, items: ["{words}", "seed {seed}"]}}
"""


def plan():
    """(org index, workflow index, seed): 60% from a shared pool of templates."""
    rng = random.Random(2026)
    out = []
    for i in range(PER_ORG):
        for o in range(ORGS):
            if rng.random() < RECUR:
                seed = rng.randrange(TEMPLATES)          # recurring: shared by everyone
            else:
                seed = 1000 + o * PER_ORG + i            # unique to this workflow
            out.append((o, i, seed))
    return out


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_table():
    """{pid: (ppid, own cpu ticks, reaped children's cpu ticks)} of every live process."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended while we looked
        # After "pid (comm)": state ppid ... utime(14) stime(15) cutime(16) cstime(17).
        table[int(name)] = (int(fields[1]), int(fields[11]) + int(fields[12]),
                            int(fields[13]) + int(fields[14]))
    return table


def worker_cpu_seconds(roots):
    """CPU seconds used so far by the worker processes and all their descendants."""
    table = proc_table()
    children = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    ticks, todo, seen = 0, [p for p in roots if p in table], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        _, own, reaped = table[pid]
        ticks += own + reaped
        todo.extend(children.get(pid, []))
    return ticks / CLK_TCK


def worker_pids(stack):
    return {int(w["pid"]) for w in stack.api("GET", f"{API}/stack/workers") if w.get("pid")}


def run(scope, submissions, model):
    stack = Stack()
    stack.env["FLOWMESH_DEDUP_SCOPE"] = scope
    try:
        stack.up()
        stack.workers_up(WORKERS)
        keys = []
        for o in range(ORGS):
            stack.cli("--json", "admin", "org", "create", f"org{o}")
            key = json.loads(stack.cli("--json", "admin", "key", "create", "--org", f"org{o}",
                                       "--scopes", SCOPES).stdout)["key"]
            keys.append(key)
        pids = worker_pids(stack)
        cpu_before = worker_cpu_seconds(pids)
        t0 = time.time()
        ids = []
        for o, i, seed in submissions:
            wf = stack.api("POST", f"{API}/workflows", workflow(f"o{o}-w{i}", seed, model),
                           key=keys[o], expect=201)["workflow_id"]
            ids.append((o, wf))
        for o, wf in ids:
            wait_until(lambda: stack.api("GET", f"{API}/workflows/{wf}", key=keys[o])["status"]
                       in ("DONE", "FAILED", "CANCELLED"), timeout=1800, interval=0.2,
                       what=f"workflow {wf}")
        # Workers the supervisor started meanwhile count from zero.
        pids |= worker_pids(stack)
        cpu_s = worker_cpu_seconds(pids) - cpu_before
        executed = reused = 0
        worker_s = 0.0
        first, last = None, 0.0
        results = []
        for o, wf in ids:
            info = stack.api("GET", f"{API}/workflows/{wf}", key=keys[o])
            if info["status"] != "DONE":
                raise RuntimeError(f"{scope}: workflow {wf} ended {info['status']}")
            outs = {}
            for t in stack.api("GET", f"{API}/tasks?workflow_id={wf}", key=keys[o]):
                if t["attempts"] > 0:
                    executed += 1
                else:
                    reused += 1
                worker_s += sum(u["runtime_sec"] for u in t["usages"])
                first = t["submitted_ts"] if first is None else min(first, t["submitted_ts"])
                last = max(last, t["finished_ts"] or 0)
                outs[t["graph_node_name"]] = stack.api("GET", f"{API}/results/{t['task_id']}", key=keys[o])
            results.append(outs)
        return {"executed_operators": executed, "reused_operators": reused,
                "worker_wall_seconds": worker_s, "worker_cpu_seconds": cpu_s,
                "worker_processes": len(pids), "makespan_s": last - first,
                "wall_s": time.time() - t0}, results
    finally:
        stack.close()


def main():
    tool = find_model_tool()
    tmp = tempfile.mkdtemp(prefix="fm-dedup-bench-")
    model = None
    try:
        if tool and os.path.exists(os.path.join(BIN_DIR, "flowmesh-worker")):
            model = os.path.join(tmp, "bench.gguf")
            subprocess.run([sys.executable, tool, model, "--dim", "128", "--layers", "4",
                            "--seed", "7"], check=True, capture_output=True)
        submissions = plan()
        figures, outputs = {}, {}
        for scope in ("off", "tenant", "global"):
            figures[scope], outputs[scope] = run(scope, submissions, model)
        identical = outputs["off"] == outputs["tenant"] == outputs["global"]
        print(f"workflows={len(submissions)}")
        print(f"organisations={ORGS}")
        print(f"operators={len(submissions) * 3}")
        print(f"recurring_fraction={RECUR}")
        print(f"middle_operator={'inference' if model else 'echo'}")
        for scope in ("off", "tenant", "global"):
            f = figures[scope]
            print(f"{scope}_executed_operators={f['executed_operators']}")
            print(f"{scope}_worker_cpu_seconds={f['worker_cpu_seconds']:.2f}")
            print(f"{scope}_worker_wall_seconds={f['worker_wall_seconds']:.2f}")
            print(f"{scope}_worker_processes={f['worker_processes']}")
            print(f"{scope}_makespan_s={f['makespan_s']:.2f}")
        for kind in ("cpu", "wall"):
            off = figures["off"][f"worker_{kind}_seconds"]
            for scope in ("tenant", "global"):
                other = figures[scope][f"worker_{kind}_seconds"]
                print(f"worker_{kind}_seconds_off_over_{scope}={off / max(other, 1e-9):.2f}")
        print(f"results_identical={'true' if identical else 'false'}")
        if not identical:
            sys.exit(1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
