#!/usr/bin/env python3
"""A tiny HTTPS admission webhook for the test API server's acceptance tests.

Paths (the apiserver appends ?timeout=Ns, which is tolerated):
  /mutate      add label mutated-by=testhook (creating metadata.labels if absent), warn
  /mutate-reinvoke  the same under another path (to count reinvocations)
  /mutate-second    add label second=yes
  /validate    deny objects labelled deny=true (403, reason Forbidden)
  /unpadded    allowed, but the patch is unpadded base64 (must fail like Go)
  /wrong-uid   echoes a wrong uid
  /no-kind     response without apiVersion/kind
Every request is appended as one JSON line to --log.
"""
import argparse
import base64
import http.server
import json
import os
import socketserver
import ssl
import sys


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        review = json.loads(self.rfile.read(n))
        req = review["request"]
        path = self.path.split("?")[0]
        with open(self.server.logfile, "a") as f:
            f.write(json.dumps({"path": self.path, "contentType": self.headers.get("Content-Type"),
                                "request": req}) + "\n")
        obj = req.get("object") or {}
        labels = (obj.get("metadata") or {}).get("labels")
        resp = {"uid": req["uid"], "allowed": True}
        out = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}
        if path in ("/mutate", "/mutate-reinvoke"):
            if labels is None:
                ops = [{"op": "add", "path": "/metadata/labels", "value": {"mutated-by": "testhook"}}]
            else:
                ops = [{"op": "add", "path": "/metadata/labels/mutated-by", "value": "testhook"}]
            resp["patchType"] = "JSONPatch"
            resp["patch"] = base64.b64encode(json.dumps(ops).encode()).decode()
            resp["warnings"] = ["testhook mutated %s %s" % (req["kind"]["kind"], req.get("name") or "(generated)")]
        elif path == "/mutate-second":
            if labels is None:
                ops = [{"op": "add", "path": "/metadata/labels", "value": {"second": "yes"}}]
            else:
                ops = [{"op": "add", "path": "/metadata/labels/second", "value": "yes"}]
            resp["patchType"] = "JSONPatch"
            resp["patch"] = base64.b64encode(json.dumps(ops).encode()).decode()
        elif path == "/validate":
            if (labels or {}).get("deny") == "true":
                resp = {"uid": req["uid"], "allowed": False,
                        "status": {"code": 403, "reason": "Forbidden", "message": "label deny=true is not allowed"}}
        elif path == "/unpadded":
            ops = json.dumps([{"op": "add", "path": "/metadata/labels/x", "value": "y"}]).encode()
            resp["patchType"] = "JSONPatch"
            resp["patch"] = base64.b64encode(ops).decode().rstrip("=") + ("" if len(ops) % 3 else "QQ")
        elif path == "/wrong-uid":
            resp["uid"] = "not-" + req["uid"]
        elif path == "/no-kind":
            out = {}
        out["response"] = resp
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--log", default=os.devnull)
    a = p.parse_args()
    s = S(("127.0.0.1", a.port), H)
    s.logfile = a.log
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    s.socket = ctx.wrap_socket(s.socket, server_side=True)
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(str(s.server_address[1]))
        os.replace(a.port_file + ".tmp", a.port_file)
    s.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
