"""The published clients (flowmesh-sdk / flowmesh-cli 0.1.x from PyPI) against our server.

Run by the python of a venv made by scripts/install-compat (run_compat.sh does both): that
python imports the published SDK, and the venv's `flowmesh` is the published CLI. One real
stack (redis-server, flowmesh-server, a CPU worker) on free ports in a temp FLOWMESH_HOME
serves the whole class. Every public method of every SDK resource is driven, through the
sync and the async client (the last test checks that none was missed), and every CLI verb
that does not need an ssh session; each response is validated by the SDK's own models.
"""
import asyncio
import importlib.metadata
import inspect
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "e2e"))

from harness import Stack, echo_workflow, wait_until  # noqa: E402

import flowmesh  # noqa: E402
from flowmesh import AsyncFlowMesh, FlowMesh  # noqa: E402
from flowmesh.exceptions import APIError, FlowMeshError, NotFoundError, ValidationError  # noqa: E402

SDK_VERSION = importlib.metadata.version("flowmesh-sdk")
CLI = os.path.join(os.path.dirname(sys.executable), "flowmesh")
RESOURCES = ("workflows", "tasks", "results", "workers", "nodes", "ssh", "system", "traces")
SSH_INFO = {"mode": "direct", "host": "localhost", "port": 2222, "username": "root"}

GRAPH_YAML = """apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: compat-graph}
spec:
  taskType: echo
  graph:
    nodes:
      - name: first
        spec: {data: {type: list, items: ["one", "two"]}}
      - name: second
        dependsOn: [first]
        spec: {data: {type: list, items: ["three"]}}
"""

# The same kind of document as JSON text (JSON is YAML): a single echo task.
JSON_DOC = {
    "apiVersion": "flowmesh/v1",
    "kind": "Workflow",
    "metadata": {"name": "compat-json"},
    "spec": {"taskType": "echo", "data": {"type": "list", "items": ["from json"]}},
}


def n8n_doc(url):
    """A two-node n8n export: a manual trigger, then an HTTP request (an `api` task)."""
    return {
        "name": "compat n8n",
        "nodes": [
            {"parameters": {}, "id": "a1", "name": "Start", "type": "n8n-nodes-base.manualTrigger",
             "typeVersion": 1, "position": [0, 0]},
            {"parameters": {"url": url, "options": {}}, "id": "b2", "name": "Ping",
             "type": "n8n-nodes-base.httpRequest", "typeVersion": 4.2, "position": [200, 0]},
        ],
        "connections": {"Start": {"main": [[{"node": "Ping", "type": "main", "index": 0}]]}},
    }


class Recorder:
    """Wraps a client; records (kind, resource, method) for every resource method looked up."""

    def __init__(self, client, kind, log):
        self._client, self._kind, self._log = client, kind, log

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if name not in RESOURCES:
            return attr
        kind, log = self._kind, self._log

        class Resource:
            def __getattr__(self, method):
                log.add((kind, name, method))
                return getattr(attr, method)

        return Resource()


def public_methods(client):
    out = set()
    for res in RESOURCES:
        obj = getattr(client, res)
        for name, _ in inspect.getmembers(type(obj), inspect.isfunction):
            if not name.startswith("_"):
                out.add((res, name))
    return out


class CompatTest(unittest.TestCase):
    called = set()

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack()
        try:
            cls.stack.up()
            cls.stack.workers_up(1)
        except Exception:
            cls.stack.close()
            raise
        cls.key = cls.stack.api_key
        cls.home = tempfile.mkdtemp(prefix="fm-compat-home-")
        cls.raw_sync = FlowMesh(base_url=cls.stack.url, api_key=cls.key)
        cls.sdk = Recorder(cls.raw_sync, "sync", cls.called)
        cls.done_task = None

    @classmethod
    def tearDownClass(cls):
        cls.raw_sync.close()
        cls.stack.close()

    # ---- helpers
    def cli(self, *args, check=True, env=None, timeout=120):
        e = {k: v for k, v in os.environ.items() if not k.startswith("FLOWMESH_")}
        e.update({"HOME": self.home, "FLOWMESH_BASE_URL": self.stack.url, "FLOWMESH_API_KEY": self.key,
                  "COLUMNS": "200", "NO_COLOR": "1"})
        if env is not None:
            e.update(env)
            for k in [k for k, v in e.items() if v is None]:
                del e[k]
        p = subprocess.run([CLI, *args], env=e, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"flowmesh {' '.join(args)} exited {p.returncode}\nstdout:\n{p.stdout}\n"
                                 f"stderr:\n{p.stderr}\nserver log:\n{self.stack.log_tail('server')}")
        return p

    def cli_json(self, *args):
        return json.loads(self.cli(*args).stdout)

    def run_async(self, coro_fn):
        async def main():
            async with AsyncFlowMesh(base_url=self.stack.url, api_key=self.key) as client:
                return await coro_fn(Recorder(client, "async", self.called))
        return asyncio.run(main())

    def finished_task(self):
        """A DONE echo task with two uploaded artifact files (made once)."""
        if CompatTest.done_task is None:
            sub = self.sdk.workflows.submit(echo_workflow("compat-artifacts", items=("alpha", "beta")))
            wf = self.sdk.workflows.wait(sub.workflow_id, interval=0.1)
            self.assertEqual(wf.status, "DONE")
            task_id = wf.task_ids[0]
            boundary = "compatBoundary123"
            body = b""
            for name, data in (("report.txt", b"hello report\n"), ("sub/data.bin", bytes(range(64)))):
                body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
                         f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
            body += f"--{boundary}--\r\n".encode()
            status, _, raw = self.stack.request("POST", f"/api/v1/results/{task_id}/files", body,
                                                {"Content-Type": f"multipart/form-data; boundary={boundary}"})
            self.assertEqual(status, 201, raw)
            CompatTest.done_task = task_id
        return CompatTest.done_task

    def local_node(self):
        return self.stack.health()["local_node"]

    def worker(self):
        """The stack's own CPU worker (other tests register extra nodes and workers)."""
        [w] = [w for w in self.sdk.workers.list(query_params=[("node_id", self.local_node())])
               if w.status != "DOWN"]
        return w

    # ---- SDK, sync client
    def test_sdk_workflows(self):
        wf = self.sdk.workflows
        v = wf.validate(GRAPH_YAML)
        self.assertTrue(v.ok)
        self.assertEqual((v.count, [t.graph_node_name for t in v.tasks]), (2, ["first", "second"]))
        with self.assertRaises(ValidationError):
            wf.validate("apiVersion: flowmesh/v1\nkind: Workflow\nspec: {taskType: 3}\n")
        sub = wf.submit(GRAPH_YAML)
        self.assertEqual((sub.ok, sub.count), (True, 2))
        done = wf.wait(sub.workflow_id, interval=0.1)
        self.assertEqual(done.status, "DONE")
        self.assertEqual(sorted(done.completed_tasks), sorted(done.task_ids))
        self.assertEqual(done.failed_tasks + done.cancelled_tasks + done.dispatched_tasks, [])
        got = wf.retrieve(sub.workflow_id)
        self.assertEqual(got.task_ids, [t.task_id for t in sub.tasks])
        self.assertIn(sub.workflow_id, [w.workflow_id for w in wf.list()])
        self.assertEqual([w.workflow_id for w in wf.list(workflow_id=sub.workflow_id)], [sub.workflow_id])
        self.assertIn(sub.workflow_id, [w.workflow_id for w in wf.list(status=["DONE", "FAILED"])])
        self.assertEqual(wf.list(status="CANCELLED", workflow_id=sub.workflow_id), [])
        self.assertEqual([w.workflow_id for w in wf.list(task_ids=sub.tasks[1].task_id)], [sub.workflow_id])
        if hasattr(wf, "status"):
            view = wf.status(sub.workflow_id)
            self.assertEqual((view.status, view.task_count, view.completed_count), ("DONE", 2, 2))
            self.assertEqual(wf.wait_status(sub.workflow_id, interval=0.1).status, "DONE")
            self.assertTrue(all(s.task_count >= 1 for s in wf.list_statuses(limit=2)))
            self.assertEqual(len(wf.list(limit=1)), 1)
        # JSON text, a mapping (the SDK sends YAML), and n8n.
        j = wf.submit(json.dumps(JSON_DOC))
        self.assertEqual(wf.wait(j.workflow_id, interval=0.1).status, "DONE")
        m = wf.submit(JSON_DOC)
        self.assertEqual(wf.wait(m.workflow_id, interval=0.1).status, "DONE")
        n8n = n8n_doc(self.stack.url + "/healthz")
        self.assertEqual(wf.validate(n8n, workflow_format="n8n").count, 1)
        n = wf.submit(n8n, workflow_format="n8n")
        # Its HTTP request node is an `api` task calling the stack's own /healthz.
        self.assertEqual(wf.wait(n.workflow_id, interval=0.1).status, "DONE")
        sleeper = dict(JSON_DOC, spec=dict(JSON_DOC["spec"], echo={"sleep_seconds": 60}))
        z = wf.submit(sleeper)
        cancelled = wf.cancel(z.workflow_id)
        self.assertEqual(cancelled.workflow_id, z.workflow_id)
        self.assertEqual(wf.wait(z.workflow_id, interval=0.1).status, "CANCELLED")
        with self.assertRaises(NotFoundError):
            wf.retrieve("wfl-doesnotexist")
        # Logs: pages, cursors, SSE, downloads.
        page = wf.get_logs(sub.workflow_id, limit=3)
        self.assertEqual(len(page.entries), 3)
        rest = wf.get_logs(sub.workflow_id, after=page.next_cursor)
        self.assertTrue(rest.entries and all(int(e.cursor) > int(page.next_cursor) for e in rest.entries))
        before = wf.get_logs(sub.workflow_id, before=rest.entries[0].cursor, limit=2)
        self.assertEqual([e.cursor for e in before.entries], [e.cursor for e in page.entries[1:]])
        self.assertTrue(all(e.event.ts and e.event.message for e in page.entries))
        streamed = list(wf.stream_logs(sub.workflow_id))
        self.assertIn("TASK_SUCCEEDED", [e.event.message.split()[0] for e in streamed])
        resumed = list(wf.stream_logs(sub.workflow_id, cursor=streamed[1].cursor))
        self.assertEqual([e.cursor for e in resumed], [e.cursor for e in streamed[2:]])
        out = Path(tempfile.mkdtemp(prefix="fm-compat-logs-"))
        paths = list(wf.download_logs(sub.workflow_id, out))
        self.assertEqual(len(paths), 2)
        self.assertTrue(all(p.read_text().strip() for p in paths))

    def test_sdk_tasks(self):
        tasks = self.sdk.tasks
        sub = self.sdk.workflows.submit(GRAPH_YAML)
        first, second = [t.task_id for t in sub.tasks]
        info = tasks.wait(second, interval=0.1)
        self.assertEqual((info.status, info.completed, info.failed), ("DONE", True, False))
        got = tasks.retrieve(first)
        self.assertEqual((got.workflow_id, got.graph_node_name, got.task_type), (sub.workflow_id, "first", "echo"))
        self.assertIsInstance(got.supplier_id, str)
        self.assertEqual(tasks.retrieve(second).depends_on, [first])
        listed = tasks.list(workflow_id=sub.workflow_id)
        self.assertEqual([t.task_id for t in listed], [first, second])
        self.assertEqual([t.task_id for t in tasks.list(task_id=first)], [first])
        self.assertEqual(len(tasks.list(workflow_id=sub.workflow_id, status=["DONE"], completed=True,
                                        task_type="echo", category="other")), 2)
        self.assertEqual([t.task_id for t in tasks.list(workflow_id=sub.workflow_id, graph_node_name="second")],
                         [second])
        self.assertEqual(tasks.list(workflow_id=sub.workflow_id, failed=True), [])
        self.assertEqual(tasks.list(assigned_worker="wkr-nobody"), [])
        if hasattr(tasks, "status"):
            self.assertEqual(tasks.status(first).status, "DONE")
            self.assertEqual(tasks.wait_status(first, interval=0.1).status, "DONE")
            self.assertEqual(len(tasks.list_statuses(workflow_id=sub.workflow_id)), 2)
            self.assertEqual(len(tasks.list(workflow_id=sub.workflow_id, limit=1)), 1)
        page = tasks.get_logs(first)
        self.assertTrue(page.entries and all(e.event.task_id == first for e in page.entries))
        self.assertTrue(tasks.get_logs(first, limit=1, after=page.entries[0].cursor).entries)
        self.assertTrue(tasks.get_logs(first, before=page.entries[-1].cursor).entries)
        self.assertTrue(list(tasks.stream_logs(first)))
        self.assertTrue(list(tasks.stream_logs(first, cursor=page.entries[0].cursor)))
        out = Path(tempfile.mkdtemp(prefix="fm-compat-tlogs-")) / "t.jsonl"
        tasks.download_logs(first, out)
        self.assertIn("TASK_SUCCEEDED", out.read_text())
        self.assertIsNone(tasks.ssh_info(first))
        # stop: a running task is interrupted and ends CANCELLED; a finished one is a 409.
        slow = self.sdk.workflows.submit(echo_workflow("compat-stop", sleep=30))
        tid = slow.tasks[0].task_id
        wait_until(lambda: tasks.retrieve(tid).status == "DISPATCHED", timeout=30, what="the slow task to run")
        self.assertTrue(tasks.stop(tid).ok)
        self.assertEqual(tasks.wait(tid, interval=0.1).status, "CANCELLED")
        with self.assertRaises(APIError) as ctx:
            tasks.stop(first)
        self.assertEqual(ctx.exception.status_code, 409)
        # A finished task without ssh info: wait_for_ssh says so at once.
        with self.assertRaises(FlowMeshError):
            tasks.wait_for_ssh(first, interval=0.05)

    def test_sdk_results(self):
        res = self.sdk.results
        task_id = self.finished_task()
        result = res.retrieve(task_id)
        items = result["items"] if isinstance(result, dict) else result.model_dump()["items"]
        self.assertEqual([i["output"] for i in items], ["alpha", "beta"])
        out = Path(tempfile.mkdtemp(prefix="fm-compat-res-"))
        res.download_file(task_id, "report.txt", out / "r.txt")
        self.assertEqual((out / "r.txt").read_text(), "hello report\n")
        got = list(res.download_files(task_id, ["report.txt", "sub/data.bin"], out / "many"))
        self.assertEqual([p.name for p in got], ["report.txt", "data.bin"])
        self.assertEqual((out / "many" / "data.bin").read_bytes(), bytes(range(64)))
        res.download_logs(task_id, out / "logs.jsonl")
        self.assertIn("TASK_SUCCEEDED", (out / "logs.jsonl").read_text())
        res.get_bundle(task_id, out / "b.tar.gz", include=["all"])
        with tarfile.open(out / "b.tar.gz") as tar:
            names = tar.getnames()
        for want in ("results.json", "artifacts/report.txt", "artifacts/sub/data.bin", "logs/logs.jsonl"):
            self.assertIn(f"{task_id}/{want}", names)
        payload, json_path, extracted = res.materialize(task_id, out / "m")
        self.assertEqual(payload["task_id"], task_id)
        self.assertTrue(json_path.is_file())
        self.assertIn((out / "m" / task_id / "artifacts" / "report.txt").resolve(), extracted)
        payload, _, _ = res.materialize(task_id, out / "m2", include=["results", "logs"])
        self.assertEqual(payload["task_id"], task_id)
        with self.assertRaises(NotFoundError):
            res.retrieve("tsk-doesnotexist")

    def test_sdk_workers_nodes_system(self):
        w = self.worker()
        workers = self.sdk.workers
        self.assertEqual(workers.retrieve(w.id).id, w.id)
        self.assertEqual([x.id for x in workers.list(worker_id=w.id)], [w.id])
        self.assertEqual([x.id for x in workers.list(alias=w.alias, namespace=w.namespace, cluster=w.cluster,
                                                     status=[w.status, "BUSY", "IDLE"], stale=False)], [w.id])
        self.assertEqual(workers.list(tags="no-such-tag"), [])
        if hasattr(workers, "cordon"):
            r = workers.cordon(w.id)
            self.assertEqual((r.cordoned, r.changed, r.worker_ids), (True, True, [w.id]))
            self.assertEqual([(c.node_alias, c.alias) for c in workers.list_cordons()], [(w.node_alias, w.alias)])
            self.assertTrue(workers.retrieve(w.id).cordoned)
            self.assertTrue(workers.uncordon(w.id).changed)
            by_alias = workers.cordon_alias(w.node_alias, w.alias)  # every worker of that alias
            self.assertTrue(by_alias.cordoned)
            self.assertIn(w.id, by_alias.worker_ids)
            self.assertTrue(workers.retrieve(w.id).cordoned)
            self.assertFalse(workers.uncordon_alias(w.node_alias, w.alias).cordoned)
            self.assertEqual(workers.list_cordons(), [])
        nodes = self.sdk.nodes
        [node] = nodes.list(node_id=self.local_node())
        self.assertEqual(nodes.retrieve(node.id).alias, node.alias)
        self.assertEqual([n.id for n in nodes.list(node_id=node.id, namespace=node.namespace, cluster=node.cluster,
                                                   alias=node.alias)], [node.id])
        on_node = nodes.list_workers(node.id)  # a worker restarted by another test is listed DOWN too
        self.assertIn(w.id, [x.id for x in on_node])
        self.assertEqual({x.node_id for x in on_node}, {node.id})
        self.assertIn(w.id, [x.id for x in nodes.list_all_workers()])
        self.assertEqual(nodes.list_all_workers(query_params=[("provider", "docker")]), [])
        extra = nodes.register(namespace="compat", cluster="lab", alias="compat-node",
                               started_at="2026-01-01T00:00:00+00:00", tags=["a", "b"])
        self.assertTrue(extra.node_id.startswith("nod-"))
        registered = nodes.retrieve(extra.node_id)
        self.assertEqual((registered.namespace, registered.cluster, registered.tags), ("compat", "lab", ["a", "b"]))
        # A worker that only runs ssh tasks (none are submitted here), on the extra node.
        wr = nodes.register_worker(extra.node_id, {"alias": "compat-worker", "task_types": ["ssh"]})
        self.assertTrue(wr.worker_id.startswith("wkr-"))
        self.assertIn(wr.worker_id, [x.id for x in nodes.list_workers(extra.node_id)])
        for verb in (nodes.start_worker, nodes.stop_worker):  # that node is not managed by this server
            with self.assertRaises(NotFoundError):
                verb(extra.node_id, "compat-worker")
        sysres = self.sdk.system
        self.assertTrue(sysres.health().ok)
        self.assertGreaterEqual(sysres.metrics()["workers_alive"], 1)
        if hasattr(sysres, "version"):
            self.assertTrue(sysres.version().version)
        self.assertEqual(self.sdk.ssh.list(), [])

    def test_sdk_traces_and_ssh_helpers(self):
        sub = self.sdk.workflows.submit(GRAPH_YAML)
        self.sdk.workflows.wait(sub.workflow_id, interval=0.1)
        traces = self.sdk.traces
        for kind in ("spans", "assets", "lineage"):
            rows = list(traces.fetch(sub.workflow_id, kind))
            self.assertTrue(rows, kind)
        lineage = list(traces.fetch(sub.workflow_id, "lineage"))
        self.assertEqual([r["node"] for r in lineage], ["first", "second"])
        summary = traces.analyze(sub.workflow_id)
        self.assertEqual(summary.workflow_id, sub.workflow_id)
        self.assertEqual(summary.data_ids, [t.task_id for t in sub.tasks])
        self.assertEqual([(e.data_id, e.source_data_id) for e in summary.lineage],
                         [(sub.tasks[1].task_id, sub.tasks[0].task_id)])
        self.assertEqual(summary.critical_path.path, [t.task_id for t in sub.tasks])
        ssh = self.sdk.ssh
        text = ssh.build_task_yaml(name="compat-ssh", public_key="ssh-ed25519 AAAA test", user="root",
                                   mode="interactive", ttl=60, idle_timeout=30, gpu=None, gpu_memory=None,
                                   cpu=1, memory=None, image=None, worker=None, env_pairs=None)
        self.assertIn("ssh", text)
        try:
            ssh.detect_public_key()
        except FlowMeshError:
            pass  # no key in this HOME: the documented error
        self.assertIn("/ssh/tasks/tsk-x/proxy", ssh.proxy_url("tsk-x"))
        self.assertTrue(ssh.connection_commands("tsk-x", SSH_INFO))
        # The ssh proxy needs an ssh executor: the route answers the published error shape.
        status, _, raw = self.stack.request("GET", f"/api/v1/ssh/tasks/{sub.tasks[0].task_id}/proxy")
        self.assertEqual(status, 501)
        self.assertIn("ssh executor", json.loads(raw)["detail"])

    # ---- SDK, async client: every method once more
    def test_sdk_async(self):
        task_id = self.finished_task()
        out = Path(tempfile.mkdtemp(prefix="fm-compat-async-"))

        async def drive(c):
            v = await c.workflows.validate(GRAPH_YAML)
            self.assertEqual(v.count, 2)
            sub = await c.workflows.submit(GRAPH_YAML)
            wf = await c.workflows.wait(sub.workflow_id, interval=0.1)
            self.assertEqual(wf.status, "DONE")
            self.assertEqual((await c.workflows.retrieve(sub.workflow_id)).workflow_id, sub.workflow_id)
            self.assertIn(sub.workflow_id, [w.workflow_id for w in await c.workflows.list(status="DONE")])
            if hasattr(c.workflows, "status"):
                self.assertEqual((await c.workflows.status(sub.workflow_id)).completed_count, 2)
                self.assertEqual((await c.workflows.wait_status(sub.workflow_id, interval=0.1)).status, "DONE")
                self.assertTrue(await c.workflows.list_statuses(limit=1))
            page = await c.workflows.get_logs(sub.workflow_id, limit=2)
            self.assertEqual(len(page.entries), 2)
            self.assertTrue([e async for e in c.workflows.stream_logs(sub.workflow_id)])
            self.assertEqual(len([p async for p in c.workflows.download_logs(sub.workflow_id, out / "wl")]), 2)
            n = await c.workflows.submit(n8n_doc(self.stack.url + "/healthz"), workflow_format="n8n")
            self.assertEqual((await c.workflows.cancel(n.workflow_id)).workflow_id, n.workflow_id)

            first = sub.tasks[0].task_id
            self.assertEqual((await c.tasks.retrieve(first)).status, "DONE")
            self.assertEqual((await c.tasks.wait(first, interval=0.1)).status, "DONE")
            self.assertEqual(len(await c.tasks.list(workflow_id=sub.workflow_id)), 2)
            if hasattr(c.tasks, "status"):
                self.assertEqual((await c.tasks.status(first)).status, "DONE")
                self.assertEqual((await c.tasks.wait_status(first, interval=0.1)).status, "DONE")
                self.assertEqual(len(await c.tasks.list_statuses(workflow_id=sub.workflow_id)), 2)
            self.assertTrue((await c.tasks.get_logs(first)).entries)
            self.assertTrue([e async for e in c.tasks.stream_logs(first)])
            await c.tasks.download_logs(first, out / "t.jsonl")
            self.assertIsNone(await c.tasks.ssh_info(first))
            with self.assertRaises(APIError):
                await c.tasks.stop(first)
            with self.assertRaises(FlowMeshError):
                await c.tasks.wait_for_ssh(first, interval=0.05)

            r = await c.results.retrieve(task_id)
            self.assertIsNotNone(r)
            await c.results.get_bundle(task_id, out / "b.tgz")
            await c.results.download_file(task_id, "report.txt", out / "r.txt")
            self.assertEqual([p.name async for p in c.results.download_files(task_id, ["report.txt"], out / "f")],
                             ["report.txt"])
            await c.results.download_logs(task_id, out / "rl.jsonl")
            payload, _, _ = await c.results.materialize(task_id, out / "mat")
            self.assertEqual(payload["task_id"], task_id)

            [w] = [w for w in await c.workers.list(query_params=[("node_id", self.local_node())])
                   if w.status != "DOWN"]
            self.assertEqual((await c.workers.retrieve(w.id)).id, w.id)
            if hasattr(c.workers, "cordon"):
                self.assertTrue((await c.workers.cordon(w.id)).cordoned)
                self.assertEqual(len(await c.workers.list_cordons()), 1)
                self.assertFalse((await c.workers.uncordon(w.id)).cordoned)
                self.assertTrue((await c.workers.cordon_alias(w.node_alias, w.alias)).cordoned)
                self.assertFalse((await c.workers.uncordon_alias(w.node_alias, w.alias)).cordoned)
            nodes = await c.nodes.list(alias=w.node_alias)
            self.assertEqual(len(nodes), 1)
            self.assertEqual((await c.nodes.retrieve(nodes[0].id)).id, nodes[0].id)
            self.assertTrue(await c.nodes.list_workers(nodes[0].id))
            self.assertTrue(await c.nodes.list_all_workers())
            reg = await c.nodes.register(namespace="compat", cluster="lab", alias="compat-async",
                                         started_at="2026-01-01T00:00:00+00:00")
            wr = await c.nodes.register_worker(reg.node_id, {"alias": "a", "task_types": ["ssh"]})
            self.assertTrue(wr.worker_id)
            for verb in (c.nodes.start_worker, c.nodes.stop_worker):
                with self.assertRaises(NotFoundError):
                    await verb(reg.node_id, "a")

            self.assertTrue((await c.system.health()).ok)
            self.assertIn("tasks_succeeded_total", await c.system.metrics())
            if hasattr(c.system, "version"):
                self.assertTrue((await c.system.version()).version)
            self.assertEqual(await c.ssh.list(), [])
            self.assertIn("ssh", await c.ssh.build_task_yaml(
                name="x", public_key="ssh-ed25519 AAAA t", user="root", mode="interactive", ttl=60,
                idle_timeout=30, gpu=None, gpu_memory=None, cpu=None, memory=None, image=None, worker=None,
                env_pairs=None))
            try:
                await c.ssh.detect_public_key()
            except FlowMeshError:
                pass
            self.assertTrue(await c.ssh.proxy_url("tsk-x"))
            self.assertTrue(await c.ssh.connection_commands("tsk-x", SSH_INFO))

            self.assertTrue([row async for row in c.traces.fetch(sub.workflow_id, "spans")])
            self.assertEqual((await c.traces.analyze(sub.workflow_id)).workflow_id, sub.workflow_id)

        self.run_async(drive)

    # ---- the published CLI
    def test_cli_verbs(self):
        cfg = Path(self.home) / "cfg.toml"
        self.cli("init", self.stack.url, "--api-key", self.key, "--config", str(cfg), "--force")
        self.assertIn(self.stack.url, cfg.read_text())
        shown = self.cli_json("config", "--config", str(cfg), "--source", "file")
        self.assertEqual(shown["base_url"], self.stack.url)
        self.assertNotIn(self.key, self.cli("config", "--config", str(cfg)).stdout)
        # The default config file (HOME/.flowmesh/config.toml) without the environment variables.
        self.cli("init", self.stack.url, "--api-key", self.key, "--force")
        no_env = {"FLOWMESH_BASE_URL": None, "FLOWMESH_API_KEY": None}
        info = self.cli_json_env(no_env, "info")  # 0.1.13: versions and health; 0.1.0: {ok}
        self.assertTrue(info.get("server_healthy", info.get("ok")))
        self.cli("deinit", "--config", str(cfg))
        self.cli("health")

        d = Path(tempfile.mkdtemp(prefix="fm-compat-cli-"))
        (d / "graph.yaml").write_text(GRAPH_YAML)
        (d / "one.json").write_text(json.dumps(JSON_DOC))
        (d / "flow.n8n.json").write_text(json.dumps(n8n_doc(self.stack.url + "/healthz")))
        self.assertEqual(self.cli_json("workflow", "validate", str(d / "graph.yaml"))["count"], 2)
        self.assertEqual(self.cli_json("workflow", "validate", str(d / "flow.n8n.json"), "--format", "n8n")["count"], 1)
        sub = self.cli_json("workflow", "submit", str(d / "graph.yaml"))
        wf_id = sub["workflow_id"]
        watched = self.cli("workflow", "watch", wf_id, "--interval", "0.1").stdout
        self.assertIn("DONE", watched)
        self.assertEqual(self.cli_json("workflow", "info", wf_id)["workflow_id"], wf_id)
        listed = self.cli_json("workflow", "list", "--status", "DONE", "--status", "FAILED")
        self.assertIn(wf_id, [w["workflow_id"] for w in listed])
        self.assertEqual([w["workflow_id"] for w in self.cli_json("workflow", "list", "--id", wf_id, "-q", "status=DONE")],
                         [wf_id])
        j = self.cli_json("workflow", "submit", str(d / "one.json"))
        self.assertIn("DONE", self.cli("workflow", "watch", j["workflow_id"], "--interval", "0.1").stdout)
        n = self.cli_json("workflow", "submit", str(d / "flow.n8n.json"), "--format", "n8n")
        self.assertEqual(self.cli_json("workflow", "cancel", n["workflow_id"])["workflow_id"], n["workflow_id"])
        logs = self.cli_json("workflow", "logs", "show", wf_id, "--limit", "3", "--json")
        self.assertEqual(len(logs["entries"]), 3)
        self.assertTrue(self.cli("workflow", "logs", "show", wf_id, "--after", logs["next_cursor"]).stdout.strip())
        self.assertIn("TASK_SUCCEEDED", self.cli("workflow", "logs", "stream", wf_id).stdout)
        self.assertIn("Downloaded logs", self.cli("workflow", "logs", "download", wf_id, "-o", str(d / "wl")).stdout)

        first, second = [t["task_id"] for t in sub["tasks"]]
        self.assertEqual(self.cli_json("task", "info", first)["task_id"], first)
        self.assertEqual(len(self.cli_json("task", "list", "--workflow-id", wf_id)), 2)
        self.assertIn("DONE", self.cli("task", "watch", second, "--interval", "0.1").stdout)
        self.assertIn("TASK_SUCCEEDED", self.cli("task", "logs", "show", first).stdout)
        self.assertTrue(self.cli("task", "logs", "stream", first).stdout.strip())
        self.cli("task", "logs", "download", first, "-o", str(d / "tl.jsonl"))
        self.assertTrue((d / "tl.jsonl").read_text())
        slow = self.cli_json("workflow", "submit", str(self.write(d, "slow.yaml", echo_workflow("cli-stop", sleep=30))))
        tid = slow["tasks"][0]["task_id"]
        wait_until(lambda: self.sdk.tasks.retrieve(tid).status == "DISPATCHED", timeout=30, what="slow task running")
        self.cli("task", "stop", tid, "--no-wait")
        self.assertEqual(self.sdk.tasks.wait(tid, interval=0.1).status, "CANCELLED")
        self.assertNotEqual(self.cli("task", "stop", first, check=False).returncode, 0)  # not running: 409

        task_id = self.finished_task()
        fetched = json.loads(self.cli("result", "fetch", task_id).stdout)
        self.assertEqual([i["output"] for i in fetched["items"]], ["alpha", "beta"])
        self.assertIn("Wrote result", self.cli("result", "fetch", task_id, "-o", str(d / "res")).stdout)
        self.assertTrue((d / "res" / task_id / "results.json").is_file())
        self.cli("result", "download", task_id, "report.txt", "sub/data.bin", "-o", str(d / "files"))
        self.assertEqual((d / "files" / "report.txt").read_text(), "hello report\n")

        w = self.worker()
        self.assertEqual(self.cli_json("worker", "info", w.id)["id"], w.id)
        self.assertEqual([x["id"] for x in self.cli_json("worker", "list", "--id", w.id)], [w.id])
        if "cordon" in self.cli("worker", "--help").stdout:
            self.assertTrue(self.cli_json("worker", "cordon", w.id)["cordoned"])
            self.assertEqual(len(self.cli_json("worker", "cordons")), 1)
            self.assertFalse(self.cli_json("worker", "uncordon", "--node-alias", w.node_alias,
                                           "--alias", w.alias)["cordoned"])
        [node] = [n for n in self.cli_json("node", "list", "--alias", w.node_alias)]
        self.assertEqual(self.cli_json("node", "info", node["id"])["id"], node["id"])
        self.assertIn(w.id, [x["id"] for x in self.cli_json("node", "worker", "list", node["id"])])
        self.assertIn(w.id, [x["id"] for x in self.cli_json("node", "worker", "list")])
        self.assertIn("workers_alive", self.cli_json("system", "metrics"))
        self.assertEqual(self.cli_json("ssh", "connections"), [])
        spans = self.cli("trace", "fetch", "spans", wf_id).stdout.splitlines()
        self.assertTrue(spans and all(json.loads(s) for s in spans))
        self.assertIn("Wrote", self.cli("trace", "fetch", "lineage", wf_id, "-o", str(d / "l.jsonl")).stdout)
        self.assertIn(first[:12], self.cli("trace", "analyze", wf_id).stdout)  # rich view: short ids
        self.assertIn(wf_id, self.cli("trace", "analyze", wf_id, "--format", "json").stdout)
        # node worker stop/start act on this server's own supervisor: last, on the real worker.
        stack_name = self.stack.api("GET", "/api/v1/stack/workers")[0]["name"]
        self.cli("node", "worker", "stop", node["id"], stack_name)
        wait_until(lambda: self.sdk.workers.retrieve(w.id).status == "DOWN", timeout=30, what="worker stopped")
        self.cli("node", "worker", "start", node["id"], stack_name)
        wait_until(lambda: [x for x in self.sdk.workers.list(query_params=[("node_id", node["id"])])
                            if x.status != "DOWN"], timeout=30, what="worker back")

    def cli_json_env(self, env, *args):
        return json.loads(self.cli(*args, env=env).stdout)

    @staticmethod
    def write(d, name, text):
        (d / name).write_text(text)
        return d / name

    # ---- last: nothing was skipped
    def test_zz_every_sdk_method_driven(self):
        want = public_methods(self.raw_sync)
        for kind in ("sync", "async"):
            seen = {(r, m) for k, r, m in self.called if k == kind}
            self.assertEqual(sorted(want - seen), [], f"{kind} SDK methods never driven (sdk {SDK_VERSION})")


if __name__ == "__main__":
    unittest.main()
