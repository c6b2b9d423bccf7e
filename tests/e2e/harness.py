"""End-to-end test harness: drives the real flowmesh binaries in a private FLOWMESH_HOME.

Each Stack gets its own home directory, free ports for the server and Redis, and is torn
down by pid (every pid the stack recorded, plus workers named by the supervisor).
Standard library only.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

BIN_DIR = os.environ.get("FLOWMESH_BIN_DIR", os.path.join(os.path.dirname(__file__), "../../build/release/bin"))
SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
TEMPLATES = os.path.join(SOURCE_DIR, "examples", "templates")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); check its state.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(predicate, timeout=30.0, interval=0.05, what="condition"):
    """Polls `predicate` until it returns a truthy value; fails the test on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class HttpError(Exception):
    def __init__(self, status, body):
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


ADMIN = object()  # request(key=ADMIN): the installation's admin key from config.json


class Stack:
    """One private FlowMesh installation: home dir, ports, and the processes it started."""

    def __init__(self):
        self.home = tempfile.mkdtemp(prefix="fm-e2e-")
        self.port = free_port()
        self.redis_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ)
        self.env.update({
            "FLOWMESH_HOME": self.home,
            "FLOWMESH_PORT": str(self.port),
            "FLOWMESH_REDIS_PORT": str(self.redis_port),
            "FLOWMESH_URL": self.url,
        })
        self.seen_pids = set()

    # ---- processes
    def cli(self, *args, check=True, timeout=120, input=None):
        cmd = [os.path.join(BIN_DIR, "flowmesh"), *args]
        p = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout, input=input)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}\n"
                                 f"server log tail:\n{self.log_tail('server')}")
        self._collect_pids()
        return p

    def cli_popen(self, *args):
        return subprocess.Popen([os.path.join(BIN_DIR, "flowmesh"), *args], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def up(self):
        self.cli("stack", "up")
        wait_until(lambda: self.health().get("local_node"), timeout=30, what="local supervisor registration")

    def down(self):
        self._collect_pids()
        try:
            self.cli("stack", "down", check=False, timeout=60)
        finally:
            self._kill_leftovers()

    def close(self):
        self.down()
        shutil.rmtree(self.home, ignore_errors=True)

    def pid(self, name):
        path = os.path.join(self.home, "run", f"{name}.pid")
        try:
            with open(path) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def supervisor_pid(self):
        for path in (os.path.join(self.home, "state", "supervisor.pid"),):
            try:
                with open(path) as f:
                    return int(f.read().strip())
            except (OSError, ValueError):
                pass
        return None

    def _collect_pids(self):
        for name in ("server", "redis"):
            p = self.pid(name)
            if p:
                self.seen_pids.add(p)
        p = self.supervisor_pid()
        if p:
            self.seen_pids.add(p)
        try:
            for w in self.api("GET", "/api/v1/stack/workers", timeout=2):
                if w.get("pid"):
                    self.seen_pids.add(int(w["pid"]))
        except Exception:
            pass

    def alive_pids(self):
        return sorted(p for p in self.seen_pids if pid_alive(p))

    def _kill_leftovers(self):
        for p in self.alive_pids():
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def log_tail(self, name, lines=40):
        for path in (os.path.join(self.home, "logs", f"{name}.log"), os.path.join(self.home, "state", f"{name}.log")):
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    return "".join(f.readlines()[-lines:])
        return f"(no {name} log)"

    @property
    def api_key(self):
        """The admin key `stack up` stored in config.json (None before the first `stack up`)."""
        try:
            with open(os.path.join(self.home, "config.json")) as f:
                return json.load(f).get("api_key") or None
        except (OSError, ValueError):
            return None

    @property
    def redis_password(self):
        try:
            with open(os.path.join(self.home, "redis", "password")) as f:
                return f.read().strip()
        except OSError:
            return ""

    # ---- HTTP
    def request(self, method, path, body=None, headers=None, timeout=30, key=ADMIN):
        """key: ADMIN (default) sends the admin key, None sends no Authorization, a string sends it."""
        data = None
        hdrs = dict(headers or {})
        token = self.api_key if key is ADMIN else key
        if token and "Authorization" not in hdrs:
            hdrs["Authorization"] = f"Bearer {token}"
        if body is not None:
            if isinstance(body, (dict, list)):
                data = json.dumps(body).encode()
                hdrs.setdefault("Content-Type", "application/json")
            elif isinstance(body, str):
                data = body.encode()
                hdrs.setdefault("Content-Type", "text/plain")
            else:
                data = body
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def api(self, method, path, body=None, headers=None, timeout=30, expect=None, key=ADMIN):
        status, _, raw = self.request(method, path, body, headers, timeout, key=key)
        if expect is not None and status != expect:
            raise HttpError(status, raw.decode(errors="replace"))
        if status >= 400 and expect is None:
            raise HttpError(status, raw.decode(errors="replace"))
        return json.loads(raw) if raw else None

    def health(self):
        try:
            return self.api("GET", "/healthz", timeout=2)
        except Exception:
            return {}

    def submit(self, text):
        return self.api("POST", "/api/v1/workflows", text, expect=201)

    def workflow(self, wf_id):
        return self.api("GET", f"/api/v1/workflows/{wf_id}")

    def wait_workflow(self, wf_id, statuses=("DONE", "FAILED", "CANCELLED"), timeout=60):
        def check():
            wf = self.workflow(wf_id)
            total = len(wf["task_ids"])
            terminal = len(wf["completed_tasks"]) + len(wf["failed_tasks"]) + len(wf["cancelled_tasks"])
            return wf if wf["status"] in statuses and terminal == total else None
        return wait_until(check, timeout=timeout, what=f"workflow {wf_id} to reach {statuses}")

    def tasks(self, wf_id):
        return self.api("GET", f"/api/v1/tasks?workflow_id={wf_id}")

    def workers_up(self, n, timeout=30):
        self.cli("stack", "worker", "up", "cpu", str(n))
        return wait_until(lambda: [w for w in self.api("GET", "/api/v1/workers") if w["status"] != "DOWN"]
                          if len([w for w in self.api("GET", "/api/v1/workers") if w["status"] != "DOWN"]) >= n
                          else None, timeout=timeout, what=f"{n} workers up")


class StackTestCase(unittest.TestCase):
    """A test case with a fresh stack per test (started by the test when it needs one)."""

    def setUp(self):
        self.stack = Stack()

    def tearDown(self):
        self.stack.close()
        leftovers = self.stack.alive_pids()
        self.assertEqual(leftovers, [], "processes left behind after stack down")


def ensure_demo_model():
    """Writes the tiny GGUF model examples/templates/inference_local.yaml names."""
    subprocess.run([os.path.join(SOURCE_DIR, "scripts", "demo-model")], check=True)
    return "/tmp/flowmesh-models/tiny-llama-64.gguf"


def echo_workflow(name, sleep=0.0, items=("hello",), extra=""):
    items_yaml = ", ".join(json.dumps(i) for i in items)
    return f"""apiVersion: flowmesh/v1
kind: Workflow
metadata: {{name: {name}}}
spec:
  taskType: echo
  data: {{type: list, items: [{items_yaml}]}}
  echo: {{sleep_seconds: {sleep}}}
{extra}"""
