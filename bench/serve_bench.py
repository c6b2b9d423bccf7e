"""bench/run.sh serve: a served tiny model through the server's serve proxy.

For 1 and 8 concurrent clients, each sending streaming chat completions (32 new tokens,
greedy) one after another for a fixed number of requests: requests per second over the
run and the p50 time to first token (first content chunk) as each client sees it.
Standard library only (http.client), so the client's own overhead is small and known.
"""
import http.client
import json
import os
import statistics
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
from harness import Stack, ensure_demo_model, wait_until  # noqa: E402

REQUESTS_PER_CLIENT = int(os.environ.get("BENCH_SERVE_REQUESTS", "12"))
MAX_TOKENS = 32


def one_request(conn, path, key, model):
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "tell me a story"}],
                       "max_tokens": MAX_TOKENS, "temperature": 0, "stream": True})
    start = time.perf_counter()
    conn.request("POST", path, body, {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"{resp.status}: {resp.read()[:200]!r}")
    ttft = None
    while True:
        line = resp.readline()
        if not line:
            break
        if not line.startswith(b"data: "):
            continue
        data = line[6:].strip()
        if data == b"[DONE]":
            break
        if ttft is None and json.loads(data)["choices"][0]["delta"].get("content"):
            ttft = time.perf_counter() - start
    resp.read()
    return ttft


def run(stack, path, key, model, clients):
    parsed = urllib.parse.urlparse(stack.url)
    ttfts, errors = [], []
    lock = threading.Lock()

    def client():
        try:
            for _ in range(REQUESTS_PER_CLIENT):
                # The server ends the connection with the stream: one connection per request
                # (its setup is part of the time to first token, as for any SSE client).
                conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
                try:
                    t = one_request(conn, path, key, model)
                finally:
                    conn.close()
                with lock:
                    ttfts.append(t if t is not None else float("nan"))
        except Exception as e:  # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(errors[0])
    return len(ttfts) / elapsed, statistics.median(ttfts) * 1000


def main():
    model = ensure_demo_model()
    s = Stack()
    try:
        s.up()
        s.workers_up(1)
        wf = s.submit(json.dumps({
            "apiVersion": "flowmesh/v1", "kind": "Workflow", "metadata": {"name": "serve-bench"},
            "spec": {"taskType": "serve", "model": {"source": {"type": "local", "identifier": model}},
                     "ttlSeconds": 900}}))["workflow_id"]
        [task] = s.tasks(wf)
        tid = task["task_id"]
        wait_until(lambda: s.api("GET", f"/api/v1/tasks/{tid}").get("latest_update", {}).get("serve"),
                   timeout=120, what="the serve endpoint")
        path = f"/api/v1/serve/tasks/{tid}/v1/chat/completions"
        run(s, path, s.api_key, model, 1)  # warm-up: the model loaded, the prompt cached
        for clients in (1, 8):
            rps, ttft = run(s, path, s.api_key, model, clients)
            print(f"serve_requests_per_sec_c{clients}={rps:.2f}")
            print(f"serve_ttft_p50_ms_c{clients}={ttft:.2f}")
        print(f"serve_max_tokens={MAX_TOKENS}")
    finally:
        s.close()


if __name__ == "__main__":
    main()
