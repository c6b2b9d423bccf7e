#!/usr/bin/env python3
"""A small HTTP server the api executor tests call (standard library only).

Usage: api_stub_server.py PORT_FILE. Listens on 127.0.0.1 port 0 and writes the port to
PORT_FILE (atomically) once it accepts connections.

Routes:
  POST /v1/chat/completions, /v1/completions  OpenAI wire; the reply text is
        "echo: <last message / prompt>"; SSE when the body says "stream": true.
  ANY  /echo                 {method, path, query, headers, body} plus a usage object.
  ANY  /flaky/KEY/N[/CODE]   the first N calls per KEY answer CODE (default 503), then /echo.
  ANY  /ratelimit/KEY/N/S    the first N calls per KEY answer 429 with Retry-After: S.
  ANY  /slow?ms=M            answers /echo after M ms (counts requests in flight).
  ANY  /status/CODE          answers CODE with a short JSON body.
  GET  /stats                {hits: {KEY: n}, max_in_flight, total}
"""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

LOCK = threading.Lock()
STATE = {"hits": {}, "in_flight": 0, "max_in_flight": 0, "total": 0}


def usage_for(text):
    prompt = max(1, len(text.split()))
    return {"prompt_tokens": prompt, "completion_tokens": prompt + 1,
            "total_tokens": 2 * prompt + 1}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def _send(self, code, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n).decode("utf-8", "replace") if n else ""

    def _echo(self, url, body):
        self._send(200, {"method": self.command, "path": url.path,
                         "query": parse_qs(url.query),
                         "headers": {k.lower(): v for k, v in self.headers.items()},
                         "body": body, "usage": usage_for(body)})

    def _count(self, key):
        with LOCK:
            STATE["hits"][key] = STATE["hits"].get(key, 0) + 1
            return STATE["hits"][key]

    def _openai(self, url, body):
        req = json.loads(body or "{}")
        if "messages" in req:
            msgs = req["messages"]
            prompt = msgs[-1]["content"] if msgs else ""
        else:
            prompt = req.get("prompt", "")
        text = "echo: " + str(prompt)
        chat = url.path.endswith("chat/completions")
        if not req.get("stream"):
            choice = ({"index": 0, "message": {"role": "assistant", "content": text},
                       "finish_reason": "stop"} if chat else
                      {"index": 0, "text": text, "finish_reason": "stop"})
            auth = self.headers.get("Authorization", "")
            self._send(200, {"id": "cmpl-1", "object": "chat.completion" if chat else
                             "text_completion", "model": req.get("model", "stub"),
                             "choices": [choice], "usage": usage_for(str(prompt)),
                             "auth_seen": auth != ""})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        for i, word in enumerate(text.split(" ")):
            piece = word if i == 0 else " " + word
            delta = ({"delta": {"content": piece}} if chat else {"text": piece})
            chunk = {"id": "cmpl-1", "choices": [dict(index=0, **delta)]}
            self.wfile.write(("data: " + json.dumps(chunk) + "\n\n").encode())
            self.wfile.flush()
        final = {"id": "cmpl-1", "choices": [], "usage": usage_for(str(prompt))}
        self.wfile.write(("data: " + json.dumps(final) + "\n\ndata: [DONE]\n\n").encode())
        self.wfile.flush()
        self.close_connection = True

    def _handle(self):
        url = urlparse(self.path)
        body = self._body()
        parts = [p for p in url.path.split("/") if p]
        with LOCK:
            STATE["total"] += 1
        if url.path == "/stats":
            with LOCK:
                self._send(200, dict(STATE))
            return
        if url.path in ("/v1/chat/completions", "/v1/completions"):
            self._count(url.path)
            self._openai(url, body)
            return
        if parts and parts[0] == "flaky" and len(parts) >= 3:
            n = self._count(parts[1])
            code = int(parts[3]) if len(parts) > 3 else 503
            if n <= int(parts[2]):
                self._send(code, {"error": "flaky", "call": n})
                return
            self._echo(url, body)
            return
        if parts and parts[0] == "ratelimit" and len(parts) == 4:
            n = self._count(parts[1])
            if n <= int(parts[2]):
                self._send(429, {"error": "slow down"}, {"Retry-After": parts[3]})
                return
            self._echo(url, body)
            return
        if parts and parts[0] == "slow":
            ms = int(parse_qs(url.query).get("ms", ["100"])[0])
            with LOCK:
                STATE["in_flight"] += 1
                STATE["max_in_flight"] = max(STATE["max_in_flight"], STATE["in_flight"])
            try:
                time.sleep(ms / 1000.0)
            finally:
                # Out of flight before the reply goes: once the client has it, it may send
                # the next request, which must not be counted beside this one.
                with LOCK:
                    STATE["in_flight"] -= 1
            self._echo(url, body)
            return
        if parts and parts[0] == "status" and len(parts) == 2:
            self._count("status")
            self._send(int(parts[1]), {"error": "as asked"})
            return
        if url.path == "/echo":
            self._count("echo")
            self._echo(url, body)
            return
        self._send(404, {"error": "no route " + url.path})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    tmp = sys.argv[1] + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(tmp, sys.argv[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
