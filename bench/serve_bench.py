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
ROUNDS interleaved rounds (the target order rotating), since the machine may be shared: the
best tokens/s of each, and the p50 over all rounds' requests. Standard library only (http.client).
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

REQUESTS_PER_CLIENT = int(os.environ.get("BENCH_SERVE_REQUESTS", "24"))
ROUNDS = int(os.environ.get("BENCH_SERVE_ROUNDS", "5"))
# One llama.cpp thread each: a step of the 64-dim model is microseconds of arithmetic, and
# with a thread per core (BENCH_THREADS=2 here) both engines' OpenMP threads spin at every
# barrier against the clients, the proxy and the HTTP threads, so the figures would mostly
# measure how the kernel shares 2 cores (worker CPU per token then moves 0.45-1.4 ms
# between runs).
THREADS = int(os.environ.get("BENCH_THREADS", "1"))
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
    """Where requests go, and the processes that serve them (name -> pid, for CPU time)."""

    def __init__(self, name, url, path, key, pids):
        parsed = urllib.parse.urlparse(url)
        self.name, self.host, self.port, self.path, self.key = name, parsed.hostname, parsed.port, path, key
        self.pids = pids


def one_request(target, model, prompt):
    """One streamed chat completion on a fresh connection: (ttft seconds, completion tokens,
    content chunks)."""
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
        ttft, tokens, chunks = None, None, 0
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
            if b'"content":"' in data and b'"content":""' not in data:
                chunks += 1
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
    return ttft, tokens, chunks


def cpu_seconds(pid):
    """utime + stime of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(target, model, clients, tag):
    """`clients` threads, REQUESTS_PER_CLIENT requests each: a dict of tokens/s, ttfts,
    tokens and chunks per request, and the CPU seconds each of the target's processes spent."""
    ttfts, counts, chunks, errors = [], [], [], []
    lock = threading.Lock()

    def client(c):
        try:
            for i in range(REQUESTS_PER_CLIENT):
                t, n, k = one_request(target, model, f"tell me a story ({tag} {c} {i})")
                with lock:
                    ttfts.append(t)
                    counts.append(n)
                    chunks.append(k)
        except Exception as e:  # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    cpu_before = {name: cpu_seconds(pid) for name, pid in target.pids.items()}
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in target.pids.items()}
    if errors:
        raise RuntimeError(errors[0])
    return {"tps": sum(counts) / elapsed, "ttfts": ttfts, "tokens": counts, "chunks": chunks, "cpu": cpu}


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
        worker_pid = next(w["pid"] for w in s.api("GET", "/api/v1/stack/workers") if w.get("pid"))
        targets = [
            Target("serve", s.url, f"/api/v1/serve/tasks/{tid}/v1/chat/completions", s.api_key,
                   {"server": s.pid("server"), "worker": worker_pid}),
            Target("direct", f"http://{endpoint['host']}:{endpoint['port']}", "/v1/chat/completions", DIRECT_KEY,
                   {"worker": worker_pid}),
            Target("llama", llama.url, "/v1/chat/completions", "unused", {"llama-server": llama.proc.pid}),
        ]
        # Every prompt is the target's own (same length for all): a prompt another target
        # just sent would find itself in the prefix cache and skip its prompt processing.
        for n, t in enumerate(targets):  # warm-up: the model loaded, the prompt prefix cached
            run(t, model, 1, f"{n} w")
        best_tps = {}  # (target, clients) -> best tokens/s
        ttfts = {}  # (target, clients) -> every time to first token, all rounds
        totals = {}  # (target, clients) -> tokens, chunks and CPU seconds per process, all rounds
        for r in range(ROUNDS):
            for k in range(len(targets)):
                n = (r + k) % len(targets)
                t = targets[n]
                for clients in (1, 8):
                    res = run(t, model, clients, f"{n} {r} {clients}")
                    if set(res["tokens"]) != {MAX_TOKENS}:
                        raise RuntimeError(f"{t.name}: completion token counts {sorted(set(res['tokens']))}, "
                                           f"not {MAX_TOKENS}")
                    key = (t.name, clients)
                    best_tps[key] = max(best_tps.get(key, 0.0), res["tps"])
                    ttfts.setdefault(key, []).extend(res["ttfts"])
                    tot = totals.setdefault(key, {"tokens": 0, "chunks": 0, "cpu": {}})
                    tot["tokens"] += sum(res["tokens"])
                    tot["chunks"] += sum(res["chunks"])
                    for name, sec in res["cpu"].items():
                        tot["cpu"][name] = tot["cpu"].get(name, 0.0) + sec
        # Over all rounds' requests (each target saw every round's load): a p50 of the
        # pooled samples is steadier than the best round's.
        p50 = {key: statistics.median(v) * 1000 for key, v in ttfts.items()}
        names = {"serve": "serve", "direct": "serve_direct", "llama": "llama_server"}
        for clients in (1, 8):
            for t in targets:
                print(f"{names[t.name]}_tokens_per_sec_c{clients}={best_tps[(t.name, clients)]:.1f}")
        print(f"serve_ratio_vs_llama_server={best_tps[('serve', 8)] / best_tps[('llama', 8)]:.3f}")
        print(f"serve_ratio_vs_llama_server_c1={best_tps[('serve', 1)] / best_tps[('llama', 1)]:.3f}")
        for clients in (1, 8):
            for t in targets:
                print(f"{names[t.name]}_ttft_p50_ms_c{clients}={p50[(t.name, clients)]:.2f}")
        # The proxy's own share of the time to first token: through the proxy minus straight
        # to the worker (the same rounds, so the same load).
        for clients, suffix in ((1, ""), (8, "_c8")):
            overhead = p50[("serve", clients)] - p50[("direct", clients)]
            print(f"serve_proxy_ttft_overhead_p50_ms{suffix}={overhead:.2f}")
        # Where the CPU goes, per generated token over all rounds (8 clients): the server
        # (the proxy), the worker (HTTP, the decode loop and llama.cpp's threads, spinning
        # included) and llama-server; and how many tokens each content chunk carried.
        tot = {t.name: totals[(t.name, 8)] for t in targets}
        per_token = lambda name, proc: 1000 * tot[name]["cpu"][proc] / tot[name]["tokens"]  # noqa: E731
        print(f"serve_proxy_cpu_ms_per_token_c8={per_token('serve', 'server'):.3f}")
        print(f"serve_worker_cpu_ms_per_token_c8={per_token('serve', 'worker'):.3f}")
        print(f"serve_direct_worker_cpu_ms_per_token_c8={per_token('direct', 'worker'):.3f}")
        print(f"llama_server_cpu_ms_per_token_c8={per_token('llama', 'llama-server'):.3f}")
        for t in targets:
            print(f"{names[t.name]}_tokens_per_chunk_c8={tot[t.name]['tokens'] / max(1, tot[t.name]['chunks']):.2f}")
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
