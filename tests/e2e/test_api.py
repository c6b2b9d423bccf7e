"""The REST API contract (API.md) end to end: results and artifacts, logs paging and SSE,
lists and filters, workers/nodes/stack, system routes and submission body forms."""
import io
import json
import os
import socket
import tarfile
import time
import unittest

from harness import SOURCE_DIR, TEMPLATES, StackTestCase, echo_workflow, pid_alive, wait_until

API = "/api/v1"
TERMINAL = ("DONE", "FAILED", "CANCELLED")


def multipart(files, boundary="fmE2eBoundary7MA4YWxkTrZu0gW"):
    """Builds a multipart/form-data body by hand; `files` is [(field_name, filename, bytes)]."""
    body = b""
    for field, filename, data in files:
        body += (f"--{boundary}\r\n"
                 f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
                 f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def read_sse(port, path, headers=None, timeout=30, key=None):
    """GETs an SSE stream over a raw socket until the server closes it.

    Returns (status line, header dict with lower-case keys, [frame dicts]); each frame maps
    field name to value (comments are dropped)."""
    c = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    headers = dict(headers or {})
    if key:
        headers.setdefault("Authorization", f"Bearer {key}")
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    c.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n{extra}\r\n".encode())
    raw = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = c.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        raw += chunk
        if b"event: eos" in raw and raw.endswith(b"\n\n"):
            break
    c.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    if hdrs.get("transfer-encoding", "").lower() == "chunked":
        body = dechunk(body)
    frames = []
    for block in body.decode().split("\n\n"):
        frame = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            k, _, v = line.partition(":")
            frame[k] = v[1:] if v.startswith(" ") else v
        if frame:
            frames.append(frame)
    return lines[0], hdrs, frames


def dechunk(data):
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2:]
    return out


class ApiTest(StackTestCase):
    def start(self, workers=1):
        s = self.stack
        s.up()
        if workers:
            s.workers_up(workers)
        return s

    def run_echo(self, name, items=("hello",)):
        s = self.stack
        wf_id = s.submit(echo_workflow(name, items=items))["workflow_id"]
        wf = s.wait_workflow(wf_id)
        self.assertEqual(wf["status"], "DONE", s.tasks(wf_id))
        return wf

    def test_results_artifacts_bundles(self):
        s = self.start()
        wf = self.run_echo("results", items=("alpha", "beta"))
        task_id = wf["task_ids"][0]

        result = s.api("GET", f"{API}/results/{task_id}")
        self.assertEqual([i["output"] for i in result["items"]], ["alpha", "beta"], result)

        body, hdrs = multipart([("file", "report.txt", b"plain report\n"),
                                ("file", "sub/dir/data.bin", bytes(range(256)))])
        status, _, raw = s.request("POST", f"{API}/results/{task_id}/files", body, hdrs)
        self.assertEqual(status, 201, raw)
        self.assertEqual(sorted(f["path"] for f in json.loads(raw)["files"]), ["report.txt", "sub/dir/data.bin"])
        status, _, raw = s.request("GET", f"{API}/results/{task_id}/files/report.txt")
        self.assertEqual((status, raw), (200, b"plain report\n"))
        status, _, raw = s.request("GET", f"{API}/results/{task_id}/files/sub/dir/data.bin")
        self.assertEqual((status, raw), (200, bytes(range(256))))
        for missing in ("missing.txt", "sub", "%2E%2E/report.txt", "sub/%2e%2e/%2e%2e/report.txt"):
            status, _, _ = s.request("GET", f"{API}/results/{task_id}/files/{missing}")
            self.assertTrue(400 <= status < 500, f"{missing}: {status}")
        body, hdrs = multipart([("file", "a.txt", b"a")])
        status, _, _ = s.request("POST", f"{API}/results/tsk-nope/files", body, hdrs)
        self.assertEqual(status, 404)

        # Names leaving the task's directory are refused and the whole upload is dropped.
        for bad in ("../evil", "/abs", "sub/../../evil"):
            body, hdrs = multipart([("file", "innocent.txt", b"x"), ("file", bad, b"evil")])
            status, _, raw = s.request("POST", f"{API}/results/{task_id}/files", body, hdrs)
            self.assertTrue(400 <= status < 500, f"{bad}: {status} {raw!r}")
            self.assertIn("detail", json.loads(raw))
        status, _, _ = s.request("GET", f"{API}/results/{task_id}/files/innocent.txt")
        self.assertEqual(status, 404, "a rejected upload must write nothing")
        status, _, _ = s.request("POST", f"{API}/results/{task_id}/files", b"not multipart",
                                 {"Content-Type": "text/plain"})
        self.assertTrue(400 <= status < 500, status)

        # Bundles: results + artifacts by default, logs with include=all.
        status, hdrs, raw = s.request("GET", f"{API}/results/{task_id}/bundle")
        self.assertEqual(status, 200, raw[:200])
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
            names = sorted(m.name for m in tar.getmembers() if m.isfile())
            self.assertEqual(names, sorted([f"{task_id}/results.json", f"{task_id}/artifacts/report.txt",
                                            f"{task_id}/artifacts/sub/dir/data.bin"]), names)
            envelope = json.load(tar.extractfile(f"{task_id}/results.json"))
            self.assertEqual(envelope["task_id"], task_id)
            self.assertEqual(envelope["result"].pop("_artifacts")["base_dir"], "artifacts")
            self.assertEqual(envelope["result"], result)
            self.assertEqual(tar.extractfile(f"{task_id}/artifacts/sub/dir/data.bin").read(), bytes(range(256)))
            for m in tar.getmembers():
                self.assertFalse(m.name.startswith("/") or ".." in m.name.split("/"), m.name)
        status, _, raw = s.request("GET", f"{API}/results/{task_id}/bundle?include=all")
        self.assertEqual(status, 200)
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
            names = tar.getnames()
            self.assertIn(f"{task_id}/logs/logs.jsonl", names)
            self.assertIn(f"{task_id}/results.json", names)
            self.assertIn(f"{task_id}/artifacts/report.txt", names)
            bundle_log = [json.loads(l) for l in tar.extractfile(f"{task_id}/logs/logs.jsonl").read().splitlines()]
        self.assertIn("TASK_SUCCEEDED", [e["type"] for e in bundle_log])
        status, _, raw = s.request("GET", f"{API}/results/{task_id}/bundle?include=logs")
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
            self.assertEqual([m.name for m in tar.getmembers() if m.isfile()], [f"{task_id}/logs/logs.jsonl"])
        status, _, raw = s.request("GET", f"{API}/results/{task_id}/bundle?include=results,bogus")
        self.assertEqual(status, 422, raw[:200])
        self.assertIn("bogus", json.loads(raw)["detail"])

        # The archived log: JSON lines, each an event of this task.
        status, hdrs, raw = s.request("GET", f"{API}/results/{task_id}/logs")
        self.assertEqual(status, 200)
        events = [json.loads(l) for l in raw.decode().splitlines() if l.strip()]
        types = [e["type"] for e in events]
        self.assertEqual(types[0], "TASK_SUBMITTED", types)
        self.assertIn("TASK_SUCCEEDED", types)
        self.assertTrue(all(e["task_id"] == task_id for e in events), events)
        self.assertEqual(bundle_log, events)

        # A task still running has no bundle yet.
        running = s.submit(echo_workflow("sleeper", sleep=30))
        sleeper = running["tasks"][0]["task_id"]
        wait_until(lambda: s.api("GET", f"{API}/tasks/{sleeper}")["status"] == "DISPATCHED",
                   what="the sleeper to be dispatched")
        status, _, raw = s.request("GET", f"{API}/results/{sleeper}/bundle")
        self.assertEqual(status, 409, raw)
        self.assertIn("detail", json.loads(raw))
        status, _, _ = s.request("GET", f"{API}/results/{sleeper}")
        self.assertEqual(status, 404)
        s.api("POST", f"{API}/workflows/{running['workflow_id']}/cancel")
        self.assertEqual(s.wait_workflow(running["workflow_id"])["status"], "CANCELLED")

    def test_logs_paging_and_sse(self):
        s = self.start()
        wf = self.run_echo("logs", items=("one", "two", "three"))
        wf_id = wf["workflow_id"]
        task_id = wf["task_ids"][0]
        everything = s.api("GET", f"{API}/workflows/{wf_id}/logs?limit=10000")["entries"]
        all_cursors = [int(e["cursor"]) for e in everything]  # opaque strings; ours are decimal
        self.assertGreaterEqual(len(all_cursors), 4)
        self.assertEqual(all_cursors, sorted(set(all_cursors)))

        # Forward paging with limit=2 visits every entry exactly once.
        seen, after = [], None
        for _ in range(len(all_cursors) + 2):
            page = s.api("GET", f"{API}/workflows/{wf_id}/logs?limit=2" + (f"&after={after}" if after else ""))
            self.assertLessEqual(len(page["entries"]), 2)
            if not page["entries"]:
                break
            seen += [int(e["cursor"]) for e in page["entries"]]
            self.assertEqual(page["next_cursor"], page["entries"][-1]["cursor"])
            after = page["next_cursor"]
        self.assertEqual(seen, all_cursors)
        # before= gives the entries just before a cursor.
        cut = all_cursors[3]
        page = s.api("GET", f"{API}/workflows/{wf_id}/logs?before={cut}&limit=2")
        self.assertEqual(sorted(int(e["cursor"]) for e in page["entries"]), all_cursors[1:3])
        page = s.api("GET", f"{API}/workflows/{wf_id}/logs?before={cut}")
        self.assertEqual(sorted(int(e["cursor"]) for e in page["entries"]), all_cursors[:3])
        for bad in ("limit=0", "limit=10001", "limit=-1", "after=abc", "before=-3"):
            status, _, raw = s.request("GET", f"{API}/workflows/{wf_id}/logs?{bad}")
            self.assertIn(status, (400, 422), bad)
            self.assertIn("detail", json.loads(raw))
        status, _, _ = s.request("GET", f"{API}/workflows/{wf_id}/logs?limit=0")
        self.assertEqual(status, 422)
        status, _, _ = s.request("GET", f"{API}/workflows/{wf_id}/logs?limit=10001")
        self.assertEqual(status, 422)
        # Task logs: only this task's events.
        tlogs = s.api("GET", f"{API}/tasks/{task_id}/logs")["entries"]
        self.assertTrue(tlogs and all(e["event"]["task_id"] == task_id for e in tlogs))
        self.assertIn("TASK_LOG", [e["event"]["type"] for e in tlogs])

        # SSE: the whole history, then eos.
        status_line, hdrs, frames = read_sse(s.port, f"{API}/workflows/{wf_id}/logs/stream", key=s.api_key)
        self.assertIn("200", status_line)
        self.assertIn("text/event-stream", hdrs.get("content-type", ""))
        self.assertEqual(hdrs.get("x-accel-buffering"), "no")
        self.assertEqual(frames[-1].get("event"), "eos", frames[-3:])
        logs = frames[:-1]
        self.assertTrue(all(f.get("event") == "log" for f in logs), logs)
        self.assertEqual([int(f["id"]) for f in logs], [c for c, e in zip(all_cursors, everything)
                                                        if e["event"]["type"] != "LOG_STREAM_CLOSED"])
        for f in logs:
            event = json.loads(f["data"])
            self.assertEqual(event["workflow_id"], wf_id)
            self.assertIn(event["type"], ("TASK_SUBMITTED", "TASK_DISPATCHED", "TASK_STARTED", "TASK_UPDATE",
                                          "TASK_LOG", "TASK_SUCCEEDED"))
        # Resume: ?cursor=N, Last-Event-ID: N, and the header wins over the query.
        n = int(logs[2]["id"])
        want = [int(f["id"]) for f in logs if int(f["id"]) > n]
        _, _, frames = read_sse(s.port, f"{API}/workflows/{wf_id}/logs/stream?cursor={n}", key=s.api_key)
        self.assertEqual([int(f["id"]) for f in frames if f.get("event") == "log"], want)
        self.assertEqual(frames[-1].get("event"), "eos")
        _, _, frames = read_sse(s.port, f"{API}/workflows/{wf_id}/logs/stream", {"Last-Event-ID": str(n)}, key=s.api_key)
        self.assertEqual([int(f["id"]) for f in frames if f.get("event") == "log"], want)
        _, _, frames = read_sse(s.port, f"{API}/workflows/{wf_id}/logs/stream?cursor=0", {"Last-Event-ID": str(n)}, key=s.api_key)
        self.assertEqual([int(f["id"]) for f in frames if f.get("event") == "log"], want)
        _, _, frames = read_sse(s.port, f"{API}/workflows/{wf_id}/logs/stream?cursor={all_cursors[-1]}", key=s.api_key)
        self.assertEqual([f.get("event") for f in frames], ["eos"])
        status, _, _ = s.request("GET", f"{API}/workflows/{wf_id}/logs/stream?cursor=abc")
        self.assertIn(status, (400, 422))
        # Task stream: the task's events, ending with eos since it is terminal.
        _, hdrs, frames = read_sse(s.port, f"{API}/tasks/{task_id}/logs/stream", key=s.api_key)
        self.assertEqual(hdrs.get("x-accel-buffering"), "no")
        self.assertEqual(frames[-1].get("event"), "eos", frames)
        task_events = [json.loads(f["data"]) for f in frames if f.get("event") == "log"]
        self.assertTrue(task_events and all(e["task_id"] == task_id for e in task_events))
        self.assertEqual(task_events[-1]["type"], "TASK_SUCCEEDED")

        # A stream opened while the workflow runs gets every event (backlog, then live), then eos.
        live = s.submit(echo_workflow("live", sleep=0.5))["workflow_id"]
        _, _, frames = read_sse(s.port, f"{API}/workflows/{live}/logs/stream", key=s.api_key)
        types = [json.loads(f["data"])["type"] for f in frames if f.get("event") == "log"]
        self.assertEqual(frames[-1].get("event"), "eos")
        self.assertEqual(types[0], "TASK_SUBMITTED")
        self.assertEqual(types[-1], "TASK_SUCCEEDED")

    def test_lists_filters_submission_forms_and_system(self):
        s = self.start()
        text = echo_workflow("forms", items=("x",))
        submissions = [
            s.request("POST", f"{API}/workflows", text, {"Content-Type": "text/plain"}),
            s.request("POST", f"{API}/workflows", {"yaml": text}),
            s.request("POST", f"{API}/workflows", json.dumps(text), {"Content-Type": "application/json"}),
            s.request("POST", f"{API}/workflows", {
                "apiVersion": "flowmesh/v1", "kind": "Workflow", "metadata": {"name": "json-doc"},
                "spec": {"taskType": "echo", "data": {"type": "list", "items": ["j"]}}}),
            s.request("POST", f"{API}/workflows", json.dumps({"yaml": text}), {"Content-Type": "text/plain"}),
        ]
        ids = []
        for i, (status, _, raw) in enumerate(submissions):
            self.assertEqual(status, 201, f"form {i}: {raw!r}")
            reply = json.loads(raw)
            self.assertTrue(reply["ok"])
            self.assertEqual(reply["count"], 1)
            t = reply["tasks"][0]
            for key in ("task_id", "status", "assigned_worker", "topic", "waiting_on", "depends_on",
                        "attempts", "max_attempts", "load"):
                self.assertIn(key, t, f"form {i}")
            ids.append(reply["workflow_id"])
        status, _, raw = s.request("POST", f"{API}/workflows", {"yaml": 42})
        self.assertEqual(status, 422, raw)
        for wf_id in ids:
            self.assertEqual(s.wait_workflow(wf_id)["status"], "DONE")

        with open(os.path.join(TEMPLATES, "echo_graph.yaml")) as f:
            graph = s.submit(f.read())
        gid = graph["workflow_id"]
        g = s.wait_workflow(gid)
        self.assertEqual(g["status"], "DONE")
        for key in ("workflow_id", "task_ids", "submitted_at", "updated_at", "status", "dispatched_tasks",
                    "completed_tasks", "failed_tasks", "cancelled_tasks"):
            self.assertIn(key, g)
        self.assertEqual((len(g["completed_tasks"]), len(g["failed_tasks"]), len(g["cancelled_tasks"]),
                          len(g["dispatched_tasks"])), (4, 0, 0, 0))
        self.assertEqual(sorted(g["completed_tasks"]), sorted(g["task_ids"]))
        self.assertEqual(len(g["task_ids"]), 4)
        self.assertGreaterEqual(g["updated_at"], g["submitted_at"])

        done = s.api("GET", f"{API}/workflows?status=DONE")
        self.assertEqual(sorted(w["workflow_id"] for w in done), sorted(ids + [gid]))
        self.assertEqual(s.api("GET", f"{API}/workflows?status=FAILED"), [])
        self.assertEqual([w["workflow_id"] for w in s.api("GET", f"{API}/workflows?workflow_id={gid}")], [gid])

        tasks = s.api("GET", f"{API}/tasks?workflow_id={gid}&status=DONE")
        self.assertEqual(sorted(t["task_id"] for t in tasks), sorted(g["task_ids"]))
        self.assertEqual(s.api("GET", f"{API}/tasks?workflow_id={gid}&status=FAILED"), [])
        by_name = {t["graph_node_name"]: t for t in tasks}
        self.assertEqual(sorted(by_name), ["a", "b", "c", "d"])
        d = s.api("GET", f"{API}/tasks/{by_name['d']['task_id']}")
        for key in ("task_id", "workflow_id", "owner_id", "org_id", "supplier_id", "task_type", "category", "status",
                    "assigned_worker", "submitted_at", "dispatched_ts", "started_ts", "finished_ts", "attempts",
                    "max_attempts", "failed_workers", "last_error", "error", "graph_node_name", "depends_on",
                    "dependents", "merged_children", "merged_parent_id", "merge_key", "latest_update", "usages"):
            self.assertIn(key, d)
        self.assertEqual(d["workflow_id"], gid)
        self.assertEqual(d["status"], "DONE")
        self.assertEqual(d["task_type"], "echo")
        self.assertIn(d["category"], ("inference", "training", "other"))
        self.assertEqual(d["attempts"], 1)
        self.assertEqual(d["max_attempts"], 3)
        self.assertEqual(sorted(d["depends_on"]), sorted([by_name["b"]["task_id"], by_name["c"]["task_id"]]))
        self.assertEqual(d["dependents"], [])
        self.assertEqual(sorted(by_name["a"]["dependents"]), sorted([by_name["b"]["task_id"], by_name["c"]["task_id"]]))
        self.assertTrue(d["owner_id"] and d["org_id"])
        self.assertTrue(d["assigned_worker"])
        self.assertLessEqual(d["dispatched_ts"], d["started_ts"])
        self.assertLessEqual(d["started_ts"], d["finished_ts"])
        self.assertFalse([k for k in d["latest_update"] if k.startswith("_")], d["latest_update"])
        self.assertEqual(len(d["usages"]), 1, d["usages"])
        for key in ("started_at", "finished_at", "runtime_sec", "hardware", "cost_per_hour", "total_cost", "status"):
            self.assertIn(key, d["usages"][0])
        self.assertEqual([t["task_id"] for t in s.api("GET", f"{API}/tasks?graph_node_name=d&workflow_id={gid}")],
                         [d["task_id"]])
        self.assertEqual(len(s.api("GET", f"{API}/tasks?completed=true&workflow_id={gid}")), 4)
        self.assertEqual(s.api("GET", f"{API}/tasks?failed=true"), [])

        # System routes.
        status, _, raw = s.request("GET", "/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(raw)["status"], "ok")
        version = s.api("GET", f"{API}/system/version")
        self.assertTrue(version["version"])
        # The workflow JSON Schema served for editors is the one kept in docs/.
        schema = s.api("GET", f"{API}/schema/workflow")
        with open(os.path.join(SOURCE_DIR, "docs", "workflow.schema.json")) as f:
            self.assertEqual(schema, json.load(f))
        self.assertEqual(schema["properties"]["apiVersion"]["const"], "flowmesh/v1")
        metrics = s.api("GET", f"{API}/system/metrics")
        numeric = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        self.assertTrue(numeric, metrics)
        self.assertGreaterEqual(metrics.get("workers_alive", 0), 1)
        status, hdrs, raw = s.request("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertIn("text/plain", hdrs.get("Content-Type", ""))
        text = raw.decode()
        samples = {}
        types = {}
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split()
                types[name] = kind
            elif line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        self.assertTrue(samples)
        for name in samples:
            self.assertTrue(name.startswith("flowmesh_"), name)
            # A sample's family: its name without labels or a histogram's suffix.
            family = name.split("{")[0]
            if family not in types:
                family = family.rsplit("_", 1)[0]
            self.assertIn(family, types, f"{name} has no # TYPE line")
        self.assertIn("flowmesh_tasks_succeeded_total", samples, sorted(samples))
        self.assertGreaterEqual(samples["flowmesh_tasks_succeeded_total"], 9)
        self.assertEqual(types["flowmesh_tasks_succeeded_total"], "counter")

    def test_cordon_nodes_and_stack_workers(self):
        s = self.start()
        workers = s.api("GET", f"{API}/workers")
        self.assertEqual(len(workers), 1)
        w = workers[0]
        wid = w["worker_id"]
        self.assertIs(w["cordoned"], False)
        self.assertIn("stale", w)
        self.assertEqual(s.api("GET", f"{API}/workers/{wid}")["worker_id"], wid)
        self.assertEqual(s.api("GET", f"{API}/workers/cordoned"), [])

        # Nodes: the local node and its worker.
        nodes = s.api("GET", f"{API}/nodes")
        self.assertEqual(len(nodes), 1)
        node = nodes[0]
        self.assertIs(node["local"], True)
        self.assertEqual(node["node_id"], s.health()["local_node"])
        self.assertEqual(s.api("GET", f"{API}/nodes/{node['node_id']}")["node_id"], node["node_id"])
        self.assertEqual([x["worker_id"] for x in s.api("GET", f"{API}/nodes/{node['node_id']}/workers")], [wid])
        self.assertEqual(s.api("GET", f"{API}/workers?node_id={node['node_id']}")[0]["worker_id"], wid)
        self.assertEqual(s.api("GET", f"{API}/workers?node_id=nod-elsewhere"), [])

        # Cordon: nothing is dispatched while the only worker is cordoned.
        s.api("POST", f"{API}/workers/{wid}/cordon")
        self.assertIs(s.api("GET", f"{API}/workers/{wid}")["cordoned"], True)
        self.assertEqual([x["worker_id"] for x in s.api("GET", f"{API}/workers/cordoned")], [wid])
        self.assertEqual([x["worker_id"] for x in s.api("GET", f"{API}/workers?cordoned=true")], [wid])
        wf_id = s.submit(echo_workflow("held"))["workflow_id"]
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            t = s.tasks(wf_id)[0]
            self.assertEqual(t["status"], "PENDING", t)
            self.assertIsNone(t["assigned_worker"])
            time.sleep(0.1)
        s.api("POST", f"{API}/workers/{wid}/uncordon")
        self.assertEqual(s.wait_workflow(wf_id)["status"], "DONE")
        self.assertEqual(s.api("GET", f"{API}/workers/cordoned"), [])

        # DELETE /workers/cordoned/{node_alias}/{alias} also uncordons.
        s.api("POST", f"{API}/workers/{wid}/cordon")
        w = s.api("GET", f"{API}/workers/{wid}")
        alias = w.get("alias") or w.get("name")
        status, _, raw = s.request("DELETE", f"{API}/workers/cordoned/{node['alias']}/{alias}")
        self.assertEqual(status, 200, raw)
        self.assertIs(s.api("GET", f"{API}/workers/{wid}")["cordoned"], False)
        # Removing a cordon that is not there changes nothing (published: 200, changed false).
        again = s.api("DELETE", f"{API}/workers/cordoned/{node['alias']}/{alias}")
        self.assertEqual((again["cordoned"], again["changed"]), (False, False))
        status, _, _ = s.request("DELETE", f"{API}/workers/cordoned/{node['alias']}/nobody")
        self.assertEqual(status, 404)
        status, _, _ = s.request("POST", f"{API}/workers/wkr-nope/cordon")
        self.assertEqual(status, 404)

        # The local node's worker processes: stop, start, remove.
        procs = s.api("GET", f"{API}/stack/workers")
        self.assertEqual(len(procs), 1, procs)
        proc = procs[0]
        name, pid = proc["name"], proc["pid"]
        self.assertTrue(pid)
        self.assertIn("status", proc)
        self.assertEqual(s.api("GET", f"{API}/stack/workers/{name}")["name"], name)
        s.api("POST", f"{API}/stack/workers/{name}/stop")
        wait_until(lambda: not pid_alive(pid), what="the worker process to stop")
        wait_until(lambda: s.api("GET", f"{API}/workers/{wid}")["status"] == "DOWN", what="the worker to be DOWN")
        s.api("POST", f"{API}/stack/workers/{name}/start")
        new_pid = wait_until(lambda: s.api("GET", f"{API}/stack/workers/{name}").get("pid") not in (None, 0, pid)
                             and s.api("GET", f"{API}/stack/workers/{name}")["pid"], what="a new worker process")
        s.seen_pids.add(int(new_pid))
        self.assertEqual(self.run_echo("after-restart")["status"], "DONE")
        status, _, raw = s.request("DELETE", f"{API}/stack/workers/{name}")
        self.assertEqual(status, 200, raw)
        wait_until(lambda: not pid_alive(int(new_pid)), what="the removed worker to exit")
        wait_until(lambda: s.api("GET", f"{API}/stack/workers") == [], what="the worker to leave the stack list")
        status, _, _ = s.request("POST", f"{API}/stack/workers/{name}/start")
        self.assertEqual(status, 404)

        # A worker registered over HTTP by a supervisor of another kind shows on its node.
        reg = s.api("POST", f"{API}/nodes/{node['node_id']}/workers/register",
                    {"name": "external-1", "task_types": ["echo"], "slots": 1}, expect=201)
        self.assertTrue(reg["worker_id"].startswith("wkr-"))
        listed = s.api("GET", f"{API}/nodes/{node['node_id']}/workers")
        self.assertIn(reg["worker_id"], [x["worker_id"] for x in listed])
        status, _, _ = s.request("POST", f"{API}/nodes/{node['node_id']}/workers/register", {"name": "x"})
        self.assertEqual(status, 422)
        status, _, _ = s.request("POST", f"{API}/nodes/nod-nope/workers/register", {"task_types": ["echo"]})
        self.assertEqual(status, 404)


if __name__ == "__main__":
    unittest.main()
