#!/usr/bin/env python3
"""A tiny in-memory Qdrant over its REST API, for tests (standard library only).

Real HTTP on 127.0.0.1, port 0 (the chosen port is written to --port-file once it
listens). Routes, with Qdrant's JSON shapes ({"result": ..., "status": "ok", "time": t}):

  PUT    /collections/{c}                  {vectors: {size, distance: Cosine|Dot|Euclid}}
  DELETE /collections/{c}
  PUT    /collections/{c}/points           {points: [{id, vector, payload}]}
  POST   /collections/{c}/points/query     {query: [..], limit, filter?, score_threshold?, with_payload?}
  POST   /collections/{c}/points/search    {vector: [..], limit, filter?, score_threshold?, with_payload?}

Filters: must / should / must_not of {key, match: {value} | {any: [...]}} and
{key, range: {gt, gte, lt, lte}}. --legacy answers /points/query with 404 (a Qdrant before
1.10); --api-key makes every request need that `api-key` header.
"""
import argparse
import json
import math
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COLLECTIONS = {}


def condition(cond, payload):
    if "must" in cond or "should" in cond or "must_not" in cond:
        return matches(cond, payload)
    value = payload.get(cond.get("key"))
    if "match" in cond:
        m = cond["match"]
        if "value" in m:
            return value == m["value"]
        if "any" in m:
            return value in m["any"]
        return False
    if "range" in cond:
        if not isinstance(value, (int, float)):
            return False
        r = cond["range"]
        return all([r.get("gt") is None or value > r["gt"], r.get("gte") is None or value >= r["gte"],
                    r.get("lt") is None or value < r["lt"], r.get("lte") is None or value <= r["lte"]])
    return False


def matches(flt, payload):
    if not flt:
        return True
    if not all(condition(c, payload) for c in flt.get("must", [])):
        return False
    if any(condition(c, payload) for c in flt.get("must_not", [])):
        return False
    should = flt.get("should", [])
    return not should or any(condition(c, payload) for c in should)


def score(distance, a, b):
    if distance == "Cosine":
        na = math.sqrt(sum(x * x for x in a)) or 1.0
        nb = math.sqrt(sum(x * x for x in b)) or 1.0
        return sum(x * y for x, y in zip(a, b)) / (na * nb)
    if distance == "Euclid":
        return -math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))
    return sum(x * y for x, y in zip(a, b))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, result=None, error=None):
        body = {"time": 0.0001}
        if error is None:
            body.update({"result": result, "status": "ok"})
        else:
            body["status"] = {"error": error}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def route(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.server.api_key and self.headers.get("api-key") != self.server.api_key:
            return self.reply(401, error="Invalid api-key")
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        if len(parts) < 2 or parts[0] != "collections":
            return self.reply(404, error="Not found")
        name = parts[1]
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return self.reply(400, error="Format error in JSON body")
        if len(parts) == 2 and method == "PUT":
            vectors = body.get("vectors", {})
            COLLECTIONS[name] = {"size": vectors.get("size"), "distance": vectors.get("distance", "Cosine"),
                                 "points": {}}
            return self.reply(200, True)
        if len(parts) == 2 and method == "DELETE":
            return self.reply(200, COLLECTIONS.pop(name, None) is not None)
        coll = COLLECTIONS.get(name)
        if coll is None:
            return self.reply(404, error=f"Not found: Collection `{name}` doesn't exist!")
        if parts[2:] == ["points"] and method == "PUT":
            for p in body.get("points", []):
                if len(p["vector"]) != coll["size"]:
                    return self.reply(400, error="Wrong input: Vector dimension error")
                coll["points"][p["id"]] = p
            return self.reply(200, {"operation_id": 0, "status": "completed"})
        if parts[2:] in (["points", "query"], ["points", "search"]) and method == "POST":
            legacy = parts[3] == "search"
            if not legacy and self.server.legacy:
                data = b"404 page not found"
                self.send_response(404)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                return self.wfile.write(data)
            vector = body.get("vector" if legacy else "query")
            if not isinstance(vector, list) or len(vector) != coll["size"]:
                return self.reply(400, error="Wrong input: Vector dimension error")
            threshold = body.get("score_threshold")
            hits = []
            for p in coll["points"].values():
                if not matches(body.get("filter"), p.get("payload") or {}):
                    continue
                s = score(coll["distance"], vector, p["vector"])
                if threshold is not None and s < threshold:
                    continue
                hit = {"id": p["id"], "version": 0, "score": s}
                if body.get("with_payload"):
                    hit["payload"] = p.get("payload") or {}
                hits.append(hit)
            hits.sort(key=lambda h: -h["score"])
            hits = hits[: int(body.get("limit", 10))]
            self.server.searches += 1
            return self.reply(200, hits if legacy else {"points": hits})
        return self.reply(404, error="Not found")

    def do_PUT(self):
        self.route("PUT")

    def do_POST(self):
        self.route("POST")

    def do_DELETE(self):
        self.route("DELETE")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--legacy", action="store_true")
    ap.add_argument("--api-key", default="")
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.legacy = args.legacy
    server.api_key = args.api_key
    server.searches = 0
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(tmp, args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
