"""Many nodes: the root server and two supervisor nodes, each in a network namespace of its own.

Topology (per test run, names and subnet unique to it): a bridge in the test's namespace
with the address .254, and three namespaces on it through veth pairs: the root (.1: `flowmesh
stack up --host`, Redis, the server and its local supervisor, no workers) and nodes a (.2)
and b (.3), each running `flowmesh-server --role worker` against the root's address, with a
worker started on each through `flowmesh node worker start`. Workflows spread over both
nodes; node a is killed whole (kill -9 of every process in its namespace) while it runs
tasks: they are placed again on node b and every workflow ends DONE. `flowmesh node list`
shows a DOWN and b UP with their addresses; node a restarted rejoins under the same id and
runs work again. Needs root and `ip netns` (iproute2); skips, saying so, otherwise.
Namespaces, links and processes are removed in cleanups that run even when the test fails.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from harness import BIN_DIR, Stack, free_port, pid_alive, wait_until

SLEEP_S = 4       # each task's run time
TASKS = 40        # more than one node's 16 slots: the fleet's work spreads over both nodes
GRACE_S = 3       # FLOWMESH_WORKER_GRACE_S: silence before a worker and a node are DOWN


def run(*cmd, check=True):
    return subprocess.run(list(cmd), capture_output=True, text=True, check=check, timeout=60)


def netns_unavailable():
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    probe = f"fmprobe{os.getpid() % 100000}"
    try:
        p = run("ip", "netns", "add", probe, check=False)
    except FileNotFoundError:
        return "ip (iproute2) is not installed"
    if p.returncode != 0:
        return f"ip netns add failed: {p.stderr.strip()}"
    run("ip", "netns", "del", probe, check=False)
    return None


def free_subnet():
    """A 10.77.K.0/24 no route of this machine uses (another run may hold one)."""
    used = run("ip", "-4", "route").stdout
    for k in range(os.getpid() % 200 + 1, 256):
        if f"10.77.{k}." not in used:
            return f"10.77.{k}"
    raise unittest.SkipTest("no free 10.77.K.0/24 subnet")


class NetnsStack(Stack):
    """The root's stack: every CLI call runs inside the root's namespace."""

    def __init__(self, netns, host):
        super().__init__()
        self.netns = netns
        self.url = f"http://{host}:{self.port}"
        self.env.update({"FLOWMESH_URL": self.url, "FLOWMESH_HOST": host,
                         "FLOWMESH_WORKER_GRACE_S": str(GRACE_S)})

    def cli(self, *args, check=True, timeout=120, input=None):
        cmd = ["ip", "netns", "exec", self.netns, os.path.join(BIN_DIR, "flowmesh"), *args]
        p = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout,
                           input=input)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {p.returncode}\nstdout:\n{p.stdout}\n"
                                 f"stderr:\n{p.stderr}\nserver log tail:\n{self.log_tail('server')}")
        self._collect_pids()
        return p


SKIP_REASON = netns_unavailable()


@unittest.skipIf(SKIP_REASON, SKIP_REASON or "")
class MultiNodeTest(unittest.TestCase):
    def setUp(self):
        tag = f"fm{os.getpid() % 100000}"
        self.net = free_subnet()
        self.bridge = f"{tag}br"
        self.ns = {"root": f"{tag}root", "a": f"{tag}a", "b": f"{tag}b"}
        self.addr = {"root": f"{self.net}.1", "a": f"{self.net}.2", "b": f"{self.net}.3"}
        self.addCleanup(self.remove_network)  # runs last: after the processes are gone
        run("ip", "link", "add", self.bridge, "type", "bridge")
        run("ip", "addr", "add", f"{self.net}.254/24", "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        for i, (role, ns) in enumerate(self.ns.items()):
            host_end, ns_end = f"{tag}h{i}", f"{tag}v{i}"
            run("ip", "netns", "add", ns)
            run("ip", "link", "add", host_end, "type", "veth", "peer", "name", ns_end)
            run("ip", "link", "set", ns_end, "netns", ns)
            run("ip", "link", "set", host_end, "master", self.bridge, "up")
            run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{self.addr[role]}/24", "dev", ns_end)
            run("ip", "netns", "exec", ns, "ip", "link", "set", ns_end, "up")
            run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        self.stack = NetnsStack(self.ns["root"], self.addr["root"])
        self.addCleanup(self.stop_everything)
        self.supervisors = {}  # role -> Popen
        self.homes = {r: tempfile.mkdtemp(prefix=f"fm-node-{r}-") for r in ("a", "b")}

    # ---- cleanup
    def kill_netns(self, role):
        """kill -9 of every process in the role's namespace; returns their pids."""
        pids = [int(p) for p in run("ip", "netns", "pids", self.ns[role], check=False).stdout.split()]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in pids:
            wait_until(lambda: not pid_alive(pid), timeout=10, what=f"pid {pid} gone")
        return pids

    def stop_everything(self):
        try:
            self.stack.close()
        finally:
            for role in ("a", "b", "root"):
                self.kill_netns(role)
            for p in self.supervisors.values():
                p.poll()
            for home in self.homes.values():
                subprocess.run(["rm", "-rf", home], check=False)

    def remove_network(self):
        for ns in self.ns.values():
            run("ip", "netns", "del", ns, check=False)
        run("ip", "link", "del", self.bridge, check=False)

    # ---- helpers
    def start_node(self, role):
        home = self.homes[role]
        env = dict(os.environ)
        env.update({"FLOWMESH_REDIS_PASSWORD": self.stack.redis_password,
                    "FLOWMESH_API_TOKEN": self.stack.api_key})
        with open(os.path.join(self.stack.home, "run", "redis.port")) as f:
            redis_port = f.read().strip()
        log = open(os.path.join(home, "supervisor.out"), "a")
        if role in self.supervisors:
            self.supervisors[role].poll()  # reap the one killed before
        self.supervisors[role] = subprocess.Popen(
            ["ip", "netns", "exec", self.ns[role], os.path.join(BIN_DIR, "flowmesh-server"),
             "--role", "worker", "--root-url", self.stack.url, "--redis-host", self.addr["root"],
             "--redis-port", redis_port, "--node-alias", f"node-{role}", "--home", home,
             "--log-file", os.path.join(home, "supervisor.log")],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def nodes(self):
        return {n["alias"]: n for n in self.stack.api("GET", "/api/v1/nodes")}

    def node_up(self, role):
        n = self.nodes().get(f"node-{role}")
        return n if n and n.get("status") == "UP" else None

    def alive_workers(self):
        return {w["alias"]: w for w in self.stack.api("GET", "/api/v1/workers") if w["status"] != "DOWN"}

    def start_worker(self, role):
        node_id = self.node_up(role)["node_id"]
        self.stack.cli("node", "worker", "start", node_id, f"cpu-{role}")
        return wait_until(lambda: self.alive_workers().get(f"cpu-{role}"), timeout=60,
                          what=f"worker cpu-{role} up on node {role}")

    def workflow(self, name, item, pin=None):
        hint = f"\n  annotations:\n    schedule_hint: {{selected_worker: {pin}}}" if pin else ""
        return (f"apiVersion: flowmesh/v1\nkind: Workflow\nmetadata:\n  name: {name}{hint}\n"
                f"spec:\n  taskType: echo\n  data: {{type: list, items: [{json.dumps(item)}]}}\n"
                f"  echo: {{sleep_seconds: {SLEEP_S}}}\n")

    def test_node_killed_mid_run_work_moves_and_node_rejoins(self):
        s = self.stack
        s.up()
        for role in ("a", "b"):
            self.start_node(role)
        for role in ("a", "b"):
            node = wait_until(lambda: self.node_up(role), timeout=60, what=f"node {role} UP")
            self.assertEqual(node["address"], self.addr[role])
        self.assertEqual(self.nodes()["local"]["address"], self.addr["root"])
        worker_a = self.start_worker("a")
        worker_b = self.start_worker("b")
        node_a = worker_a["node_id"]
        self.assertNotEqual(node_a, worker_b["node_id"])

        ids = [s.submit(self.workflow(f"spread-{i}", f"m{i}"))["workflow_id"] for i in range(TASKS)]

        def running_on(worker_id):
            tasks = s.api("GET", "/api/v1/tasks?status=DISPATCHED")
            return [t for t in tasks if t.get("assigned_worker") == worker_id]
        # Work on both nodes at once, then node a dies whole while it runs some.
        wait_until(lambda: running_on(worker_a["worker_id"]) and running_on(worker_b["worker_id"]),
                   timeout=60, what="tasks running on both nodes")
        moved = {t["task_id"] for t in running_on(worker_a["worker_id"])}
        killed_at = time.monotonic()
        killed = self.kill_netns("a")
        self.assertGreaterEqual(len(killed), 2)  # its supervisor and its worker
        wait_until(lambda: self.nodes()["node-a"]["status"] == "DOWN", timeout=30, interval=0.1,
                   what="node a DOWN")
        detect_s = time.monotonic() - killed_at
        for wf in ids:
            self.assertEqual(s.wait_workflow(wf, timeout=240)["status"], "DONE", s.tasks(wf))
        recovery_s = time.monotonic() - killed_at
        print(f"\nRECOVERY_SECONDS={recovery_s:.1f} (kill -9 of a node running {len(moved)} of "
              f"{TASKS} tasks of {SLEEP_S} s -> all DONE; node DOWN after {detect_s:.1f} s; "
              f"worker grace {GRACE_S} s)", file=sys.stderr)
        if os.environ.get("FLOWMESH_BENCH_OUT"):
            with open(os.environ["FLOWMESH_BENCH_OUT"], "a") as f:
                f.write(json.dumps({"recovery_s": recovery_s, "detect_s": detect_s,
                                    "moved_tasks": len(moved),
                                    "tasks": TASKS, "task_s": SLEEP_S, "grace_s": GRACE_S}) + "\n")
        for task_id in moved:
            t = s.api("GET", f"/api/v1/tasks/{task_id}")
            self.assertEqual(t["status"], "DONE")
            self.assertEqual(t["assigned_worker"], worker_b["worker_id"], t)
            self.assertGreaterEqual(t["attempts"], 2)

        # The CLI's node list: a DOWN, b UP, each with its address.
        table = s.cli("node", "list").stdout
        rows = {line.split()[1]: line.split() for line in table.splitlines()[1:] if line.strip()}
        self.assertEqual(rows["node-a"][2:4], ["DOWN", self.addr["a"]], table)
        self.assertEqual(rows["node-b"][2:4], ["UP", self.addr["b"]], table)
        listed = {n["alias"]: n for n in json.loads(s.cli("--json", "node", "list").stdout)}
        self.assertEqual((listed["node-a"]["status"], listed["node-b"]["status"]), ("DOWN", "UP"))
        # A command to a DOWN node is refused at once.
        refused = s.cli("node", "worker", "start", node_a, "cpu-a", check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("DOWN", refused.stdout + refused.stderr)

        # Node a comes back: same node id, UP again, and it runs work.
        self.start_node("a")
        back = wait_until(lambda: self.node_up("a"), timeout=60, what="node a UP again")
        self.assertEqual(back["node_id"], node_a)
        again = self.start_worker("a")
        self.assertEqual(again["node_id"], node_a)
        wf = s.submit(self.workflow("pinned-a", "back", pin="cpu-a"))["workflow_id"]
        self.assertEqual(s.wait_workflow(wf, timeout=60)["status"], "DONE")
        [task] = s.tasks(wf)
        self.assertEqual(task["assigned_worker"], again["worker_id"])


if __name__ == "__main__":
    unittest.main()
