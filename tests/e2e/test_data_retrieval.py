"""The data_retrieval executor end to end, through the real server, scheduler, supervisor and
worker: a SQLite file under the worker's --data-dirs, a real PostgreSQL server (Debian's
binaries; initdb + postgres in a temp dir on a free port, stopped by pid) queried with
params taken from the SQLite node's result, an HTTP JSONL source (a tiny local HTTP server
started by the test), and an unsupported source (s3) failing clearly on its first attempt.
"""
import http.server
import json
import os
import pwd
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import unittest

from harness import TEMPLATES, Stack, free_port, wait_until

API = "/api/v1"
PG_BIN = "/usr/lib/postgresql/15/bin"
HAVE_PG = os.path.exists(os.path.join(PG_BIN, "postgres"))


class Postgres:
    """A private PostgreSQL server; as root it runs as the postgres user (initdb refuses root)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="fm-e2e-pg-")
        self.port = free_port()
        self.prefix = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.prefix = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
        data = os.path.join(self.dir, "data")
        subprocess.run(self.prefix + [f"{PG_BIN}/initdb", "-D", data, "-U", "fm", "--auth=trust",
                                      "-E", "UTF8", "--no-sync"],
                       check=True, capture_output=True)
        self.log = open(os.path.join(self.dir, "postgres.log"), "w")
        self.proc = subprocess.Popen(self.prefix + [f"{PG_BIN}/postgres", "-D", data, "-p", str(self.port),
                                                    "-k", self.dir, "-h", "127.0.0.1", "-F"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(lambda: self.psql("postgres", "SELECT 1", check=False).returncode == 0,
                   timeout=60, interval=0.1, what="postgres to accept connections")

    def psql(self, db, sql, check=True):
        return subprocess.run([f"{PG_BIN}/psql" if os.path.exists(f"{PG_BIN}/psql") else "psql",
                               "-h", "127.0.0.1", "-p", str(self.port), "-U", "fm", "-d", db,
                               "-v", "ON_ERROR_STOP=1", "-c", sql],
                              capture_output=True, text=True, check=check)

    def url(self, db):
        return f"postgresql://fm@127.0.0.1:{self.port}/{db}"

    def close(self):
        self.proc.send_signal(signal.SIGINT)  # fast shutdown
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@unittest.skipUnless(HAVE_PG, f"PostgreSQL binaries not found under {PG_BIN} (Debian package postgresql)")
class DataRetrievalTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.data = tempfile.mkdtemp(prefix="fm-e2e-data-")
        with sqlite3.connect(os.path.join(cls.data, "market.db")) as db:
            db.executescript("""
                CREATE TABLE watch(symbol TEXT, sector TEXT);
                INSERT INTO watch VALUES ('NVDA', 'chips'), ('AMD', 'chips'), ('KO', 'drinks');
            """)
        with open(os.path.join(cls.data, "news.jsonl"), "w") as f:
            for i, (sym, title) in enumerate([("NVDA", "record quarter"), ("KO", "new flavour"),
                                              ("AMD", "new chip")]):
                f.write(json.dumps({"id": i, "symbol": sym, "title": title}) + "\n")
        handler = lambda *a, **k: QuietHandler(*a, directory=cls.data, **k)  # noqa: E731
        cls.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=cls.http.serve_forever, daemon=True).start()
        cls.http_url = f"http://127.0.0.1:{cls.http.server_address[1]}"
        cls.pg = Postgres()
        cls.pg.psql("postgres", "CREATE DATABASE market")
        cls.pg.psql("market", """
            CREATE TABLE prices(symbol text, day date, close numeric);
            INSERT INTO prices VALUES ('NVDA', '2025-01-02', 138.31), ('NVDA', '2025-01-03', 144.47),
                                      ('AMD', '2025-01-02', 121.5), ('KO', '2025-01-02', 62.1);
        """)
        s = cls.stack = Stack()
        s.env["FLOWMESH_WORKER_DATA_DIRS"] = cls.data
        s.up()
        s.workers_up(1)

    @classmethod
    def tearDownClass(cls):
        cls.stack.close()
        cls.http.shutdown()
        cls.pg.close()
        shutil.rmtree(cls.data, ignore_errors=True)

    def by_name(self, wf_id):
        return {t["graph_node_name"]: t for t in self.stack.tasks(wf_id)}

    def result(self, task):
        return self.stack.api("GET", f"{API}/results/{task['task_id']}")

    def test_worker_advertises_data_retrieval(self):
        workers = self.stack.api("GET", f"{API}/workers")
        self.assertTrue(any("data_retrieval" in json.dumps(w) for w in workers), workers)

    def test_sqlite_then_postgres_with_upstream_params_and_http_jsonl(self):
        s = self.stack
        text = f"""apiVersion: flowmesh/v1
kind: Workflow
metadata: {{name: retrieval}}
spec:
  graph:
    nodes:
      - name: chips
        spec:
          taskType: data_retrieval
          data:
            type: sql
            connection_string: "sqlite:market.db"
            template: "SELECT symbol FROM watch WHERE sector = '{{sector}}' ORDER BY symbol"
            params:
              - label: sector
                data: {{type: list, items: [chips]}}
      - name: prices
        dependsOn: [chips]
        spec:
          taskType: data_retrieval
          data:
            type: sql
            connection_string: "{self.pg.url('market')}"
            template: "SELECT symbol, day, close FROM prices WHERE symbol = '{{symbol}}' ORDER BY day"
            params:
              - label: symbol
                node: chips
                path: items.0.table.symbol
            filters: [{{column: close, op: ">", value: 130}}]
            require_non_empty_rows: false
      - name: news
        spec:
          taskType: data_retrieval
          data:
            type: http
            url: "{self.http_url}/news.jsonl"
            columns: [symbol, title]
            filters: [{{column: title, op: contains, value: "new"}}]
"""
        wf_id = s.submit(text)["workflow_id"]
        wf = s.wait_workflow(wf_id, timeout=120)
        tasks = self.by_name(wf_id)
        self.assertEqual(wf["status"], "DONE", tasks)

        chips = self.result(tasks["chips"])
        self.assertEqual(chips["count"], 1)
        self.assertEqual(chips["items"][0]["table"], {"symbol": ["AMD", "NVDA"]})
        self.assertEqual(chips["items"][0]["params"], {"sector": "chips"})

        prices = self.result(tasks["prices"])
        # One query per symbol the SQLite node returned, in its order.
        self.assertEqual(prices["count"], 2)
        self.assertEqual([i["params"]["symbol"] for i in prices["items"]], ["AMD", "NVDA"])
        self.assertEqual(prices["items"][0]["rows"], 0)  # AMD never closed above 130
        self.assertEqual(prices["items"][1]["table"],
                         {"symbol": ["NVDA", "NVDA"], "day": ["2025-01-02", "2025-01-03"],
                          "close": [138.31, 144.47]})
        self.assertIn("$1", prices["items"][1]["query"])  # bound, not spliced
        self.assertNotIn("NVDA", prices["items"][1]["query"])

        news = self.result(tasks["news"])
        self.assertEqual(news["items"][0]["columns"], ["symbol", "title"])
        self.assertEqual(news["items"][0]["table"],
                         {"symbol": ["KO", "AMD"], "title": ["new flavour", "new chip"]})

    def test_unsupported_source_fails_clearly_without_retry(self):
        s = self.stack
        text = """apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: unsupported}
spec:
  taskType: data_retrieval
  max_attempts: 3
  data:
    type: s3
    connection_string: "s3://user:pass@minio.example:9000/bucket"
    template: "news/{id}.html"
    params: [{label: id, data: {type: list, items: [1]}}]
"""
        wf_id = s.submit(text)["workflow_id"]
        wf = s.wait_workflow(wf_id, timeout=60)
        self.assertEqual(wf["status"], "FAILED")
        task = s.tasks(wf_id)[0]
        self.assertEqual(task["attempts"], 1, task)
        self.assertIn("source type 's3' is not supported by this worker", task["error"])
        self.assertIn("supported sources: sql", task["error"])

    def test_file_outside_the_data_dirs_is_refused(self):
        s = self.stack
        text = """apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: outside}
spec:
  taskType: data_retrieval
  max_attempts: 3
  data: {type: file, path: /etc/passwd, format: csv}
"""
        wf_id = s.submit(text)["workflow_id"]
        wf = s.wait_workflow(wf_id, timeout=60)
        self.assertEqual(wf["status"], "FAILED")
        task = s.tasks(wf_id)[0]
        self.assertEqual(task["attempts"], 1, task)
        self.assertIn("outside the directories", task["error"])

    def test_example_template_runs(self):
        s = self.stack
        with open(os.path.join(TEMPLATES, "data_retrieval_sqlite.yaml")) as f:
            wf_id = s.submit(f.read())["workflow_id"]
        wf = s.wait_workflow(wf_id, timeout=60)
        tasks = self.by_name(wf_id)
        self.assertEqual(wf["status"], "DONE", tasks)
        closes = self.result(tasks["closes"])
        self.assertEqual(closes["items"][0]["table"]["close"], [144.47])
        self.assertEqual(closes["items"][1]["table"]["close"], [418.58, 423.35])
        report = self.result(tasks["report"])
        self.assertIn("2 tables; NVDA above 140 on", json.dumps(report))


if __name__ == "__main__":
    unittest.main()
