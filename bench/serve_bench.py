"""bench/run.sh serve: a served tiny model through the server's serve proxy, beside
llama.cpp's own llama-server on the same model with the same options.

The model is the demo model's shape and weights (tools/gguf-gen, 64-dim, 2 layers, seed 1)
written with --text-output, so that greedy decoding emits printable text: llama-server
parses every streamed delta with its chat parser and ends a stream whose text is not valid
UTF-8 with an error, which the random demo model's byte tokens produce in most 32-token
answers.

Three targets, driven by the same client code:
  serve   the server's /api/v1/serve/tasks/{id}/ proxy (the fabric's serve route),
  direct  the serve task's worker endpoint itself (the host and port the task advertises,
          with the key the spec's apiKey adds: the same listener and key check the proxy
          goes through, minus the proxy),
  llama   llama-server (build/llama-tools, from the pinned source the worker's engine is
          built from), started on a free port and stopped by pid.
Both engines get the same options: context, 8 sequence slots, threads, batch sizes,
continuous batching, separate KV streams per slot, no flash attention. Every request is a
streaming chat completion, greedy, exactly MAX_TOKENS new tokens (min_tokens for the
fabric, ignore_eos for llama-server; both bodies carry both fields, each server ignores the
other's), and a prompt of its own: identical greedy requests would share one sequence in
the fabric's engine, which would not be the same work.

For 1 and 8 concurrent clients, each sending REQUESTS_PER_CLIENT requests one after another
on a fresh connection each: completion tokens per second over the run (from each stream's
usage chunk) and the p50 time to first token (first content chunk) as the client sees it.
ROUNDS interleaved rounds (the target order rotating), best tokens/s and lowest p50 of each,
since the machine may be shared. Standard library only (http.client).
"""
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
from harness import SOURCE_DIR, Stack, free_port, wait_until  # noqa: E402

REQUESTS_PER_CLIENT = int(os.environ.get("BENCH_SERVE_REQUESTS", "12"))
ROUNDS = int(os.environ.get("BENCH_SERVE_ROUNDS", "3"))
THREADS = int(os.environ.get("BENCH_THREADS", str(os.cpu_count() or 1)))
LLAMA_SERVER = os.environ.get("BENCH_LLAMA_SERVER",
                              os.path.join(SOURCE_DIR, "build", "llama-tools", "bin", "llama-server"))
MAX_TOKENS = 32
SLOTS = 8
# The engine options both get: 2048 cells per slot, the fabric engine's default per slot.
ENGINE = {"n_ctx": 2048 * SLOTS, "n_seq": SLOTS, "n_batch": 2048, "n_ubatch": 512, "threads": THREADS,
          "flash_attn": False, "kv_unified": False}
DIRECT_KEY = "serve-bench-direct-key"
MODEL = os.path.join(SOURCE_DIR, "build", "bench", "serve-64x2-text.gguf")


def ensure_model():
    if not os.path.exists(MODEL):
        os.makedirs(os.path.dirname(MODEL), exist_ok=True)
        subprocess.run([sys.executable, os.path.join(SOURCE_DIR, "tools", "gguf-gen"), MODEL + ".tmp",
                        "--dim", "64", "--layers", "2", "--seed", "1", "--text-output"], check=True)
        os.replace(MODEL + ".tmp", MODEL)
    return MODEL


class Target:
    def __init__(self, name, url, path, key):
        parsed = urllib.parse.urlparse(url)
        self.name, self.host, self.port, self.path, self.key = name, parsed.hostname, parsed.port, path, key


def one_request(target, model, prompt):
    """One streamed chat completion on a fresh connection: (ttft seconds, completion tokens)."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}],
                       "max_tokens": MAX_TOKENS, "min_tokens": MAX_TOKENS, "ignore_eos": True,
                       "temperature": 0, "stream": True, "stream_options": {"include_usage": True}})
    conn = http.client.HTTPConnection(target.host, target.port, timeout=120)
    try:
        start = time.perf_counter()
        conn.request("POST", target.path, body,
                     {"Authorization": f"Bearer {target.key}", "Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"{target.name}: {resp.status}: {resp.read()[:200]!r}")
        ttft, tokens = None, None
        while True:
            line = resp.readline()
            if not line:
                break
            if not line.startswith(b"data: "):
                continue
            data = line[6:].strip()
            if data == b"[DONE]":
                break
            # Parse only what is needed: the client shares the machine with both servers.
            if ttft is None:
                choices = json.loads(data).get("choices") or [{}]
                if choices[0].get("delta", {}).get("content"):
                    ttft = time.perf_counter() - start
            if b'"usage"' in data:
                usage = json.loads(data).get("usage")
                if usage:
                    tokens = usage["completion_tokens"]
        resp.read()
    finally:
        conn.close()
    if ttft is None or tokens is None:
        raise RuntimeError(f"{target.name}: a stream without content or usage")
    return ttft, tokens


def run(target, model, clients, tag):
    """`clients` threads, REQUESTS_PER_CLIENT requests each: (tokens/s, ttfts, tokens per request)."""
    ttfts, counts, errors = [], [], []
    lock = threading.Lock()

    def client(c):
        try:
            for i in range(REQUESTS_PER_CLIENT):
                t, n = one_request(target, model, f"tell me a story ({tag} client {c} request {i})")
                with lock:
                    ttfts.append(t)
                    counts.append(n)
        except Exception as e:  # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(errors[0])
    return sum(counts) / elapsed, ttfts, counts


class LlamaServer:
    """llama-server on a free port, started and stopped by pid."""

    def __init__(self, model):
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)
        cmd = [LLAMA_SERVER, "-m", model, "--host", "127.0.0.1", "--port", str(self.port),
               "-c", str(ENGINE["n_ctx"]), "-np", str(SLOTS), "-b", str(ENGINE["n_batch"]),
               "-ub", str(ENGINE["n_ubatch"]), "-t", str(THREADS), "-tb", str(THREADS),
               "-cb", "-no-kvu", "-fa", "off", "--no-webui"]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"

        def healthy():
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama-server exited {self.proc.returncode}; log: {self.log.name}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/health")
                ok = conn.getresponse().status == 200
                conn.close()
                return ok
            except OSError:
                return False
        wait_until(healthy, timeout=60, what="llama-server /health")

    def close(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        os.unlink(self.log.name)


def main():
    model = ensure_model()
    s = Stack()
    llama = None
    try:
        s.up()
        s.workers_up(1)
        wf = s.submit(json.dumps({
            "apiVersion": "flowmesh/v1", "kind": "Workflow", "metadata": {"name": "serve-bench"},
            "spec": {"taskType": "serve",
                     "model": {"source": {"type": "local", "identifier": model}, "llamacpp": ENGINE},
                     "ttlSeconds": 1800, "apiKey": DIRECT_KEY}}))["workflow_id"]
        [task] = s.tasks(wf)
        tid = task["task_id"]
        endpoint = wait_until(lambda: s.api("GET", f"/api/v1/tasks/{tid}").get("latest_update", {}).get("serve"),
                              timeout=120, what="the serve endpoint")
        llama = LlamaServer(model)
        targets = [
            Target("serve", s.url, f"/api/v1/serve/tasks/{tid}/v1/chat/completions", s.api_key),
            Target("direct", f"http://{endpoint['host']}:{endpoint['port']}", "/v1/chat/completions", DIRECT_KEY),
            Target("llama", llama.url, "/v1/chat/completions", "unused"),
        ]
        for t in targets:  # warm-up: the model loaded, the prompt prefix cached
            run(t, model, 1, "warm-up")
        best_tps = {}  # (target, clients) -> best tokens/s
        p50s = {}  # (target, clients) -> [p50 of each round]
        tokens = set()
        for r in range(ROUNDS):
            for k in range(len(targets)):
                t = targets[(r + k) % len(targets)]
                for clients in (1, 8):
                    tps, ttfts, counts = run(t, model, clients, f"round {r}")
                    tokens.update(counts)
                    key = (t.name, clients)
                    best_tps[key] = max(best_tps.get(key, 0.0), tps)
                    p50s.setdefault(key, []).append(statistics.median(ttfts) * 1000)
        if tokens != {MAX_TOKENS}:
            raise RuntimeError(f"completion token counts differ from {MAX_TOKENS}: {sorted(tokens)}")
        p50 = {key: min(v) for key, v in p50s.items()}
        for clients in (1, 8):
            print(f"serve_tokens_per_sec_c{clients}={best_tps[('serve', clients)]:.1f}")
            print(f"serve_direct_tokens_per_sec_c{clients}={best_tps[('direct', clients)]:.1f}")
            print(f"llama_server_tokens_per_sec_c{clients}={best_tps[('llama', clients)]:.1f}")
        print(f"serve_ratio_vs_llama_server={best_tps[('serve', 8)] / best_tps[('llama', 8)]:.3f}")
        print(f"serve_ratio_vs_llama_server_c1={best_tps[('serve', 1)] / best_tps[('llama', 1)]:.3f}")
        for clients in (1, 8):
            print(f"serve_ttft_p50_ms_c{clients}={p50[('serve', clients)]:.2f}")
            print(f"serve_direct_ttft_p50_ms_c{clients}={p50[('direct', clients)]:.2f}")
            print(f"llama_server_ttft_p50_ms_c{clients}={p50[('llama', clients)]:.2f}")
        # The proxy's own share of the time to first token: through the proxy minus straight
        # to the worker (the same rounds, so the same load), each at its best p50.
        for clients, suffix in ((1, ""), (8, "_c8")):
            overhead = p50[("serve", clients)] - p50[("direct", clients)]
            print(f"serve_proxy_ttft_overhead_p50_ms{suffix}={overhead:.2f}")
        print(f"serve_max_tokens={MAX_TOKENS}")
        print(f"serve_requests_per_client={REQUESTS_PER_CLIENT}")
        print(f"serve_rounds={ROUNDS}")
        print(f"serve_threads={THREADS}")
    finally:
        if llama:
            llama.close()
        s.close()


if __name__ == "__main__":
    main()
