"""A minimal Kubernetes API client for the operator test's stand-ins and helpers.

Reads a kubeconfig (server, certificate-authority-data or -file, bearer token, the
current context), keeps one HTTPS connection and reconnects when it breaks. Every
call returns (HTTP status, decoded JSON body or text); transport errors come back as
status 0 with the error text, so callers poll and retry without try/except.

Standard library + python3-yaml only.
"""
import base64
import http.client
import json
import os
import ssl
import threading
import urllib.parse

import yaml


def load_kubeconfig(path, context=None):
    with open(path) as f:
        cfg = yaml.safe_load(f)
    ctx_name = context or cfg.get("current-context")
    ctx = next((c["context"] for c in cfg.get("contexts", []) if c["name"] == ctx_name), None)
    if ctx is None:
        raise SystemExit("%s: no context %r" % (path, ctx_name))
    cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
    user = next((u["user"] for u in cfg.get("users", []) if u["name"] == ctx.get("user")), {})
    return cluster, user, ctx.get("namespace", "default")


class Kube:
    def __init__(self, kubeconfig, user_agent="mm-operator-test", context=None, timeout=10.0):
        cluster, user, self.namespace = load_kubeconfig(kubeconfig, context)
        u = urllib.parse.urlsplit(cluster["server"])
        self.host, self.port = u.hostname, u.port or 443
        self.ctx = ssl.create_default_context()
        if cluster.get("certificate-authority-data"):
            self.ctx.load_verify_locations(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        elif cluster.get("certificate-authority"):
            self.ctx.load_verify_locations(cafile=cluster["certificate-authority"])
        token = user.get("token")
        if not token and user.get("tokenFile"):
            with open(user["tokenFile"]) as f:
                token = f.read().strip()
        self.headers = {"User-Agent": user_agent, "Accept": "application/json"}
        if token:
            self.headers["Authorization"] = "Bearer " + token
        self.timeout = timeout
        self.local = threading.local()

    def _conn(self, timeout):
        c = getattr(self.local, "conn", None)
        if c is None:
            c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)
            self.local.conn = c
        c.timeout = timeout
        if c.sock is not None:
            c.sock.settimeout(timeout)
        return c

    def _drop(self):
        c = getattr(self.local, "conn", None)
        if c is not None:
            c.close()
        self.local.conn = None

    def request(self, method, path, body=None, ctype="application/json", timeout=None):
        """(status, body): body is the decoded JSON, else the text. status 0: transport error."""
        data = None
        headers = dict(self.headers)
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            if isinstance(data, str):
                data = data.encode()
            headers["Content-Type"] = ctype
        for attempt in (1, 2):
            try:
                c = self._conn(timeout or self.timeout)
                c.request(method, path, body=data, headers=headers)
                r = c.getresponse()
                raw = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self._drop()
                break
            except (OSError, http.client.HTTPException) as e:
                self._drop()
                if attempt == 2:
                    return 0, "%s: %s" % (type(e).__name__, e)
        try:
            return r.status, json.loads(raw) if raw else None
        except ValueError:
            return r.status, raw.decode(errors="replace")

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def watch(self, path, timeout_seconds=60):
        """Yield watch events (dicts) of path (which must carry watch=1); ends with the stream.
        A transport or HTTP error yields {"type": "CLIENT-ERROR", ...} and ends."""
        sep = "&" if "?" in path else "?"
        path = "%s%stimeoutSeconds=%d" % (path, sep, timeout_seconds)
        try:
            c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout_seconds + 10)
            c.request("GET", path, headers=self.headers)
            r = c.getresponse()
            if r.status != 200:
                yield {"type": "CLIENT-ERROR", "code": r.status, "body": r.read().decode(errors="replace")}
                return
            while True:
                line = r.readline()
                if not line:
                    return
                line = line.strip()
                if line:
                    yield json.loads(line)
        except (OSError, http.client.HTTPException, ValueError) as e:
            yield {"type": "CLIENT-ERROR", "code": 0, "body": "%s: %s" % (type(e).__name__, e)}
        finally:
            try:
                c.close()
            except Exception:
                pass


def items(resp):
    """The items of a (status, list) pair, [] unless 200."""
    code, body = resp
    if code == 200 and isinstance(body, dict):
        return body.get("items") or []
    return []


def write_json_atomic(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
    os.replace(tmp, path)
