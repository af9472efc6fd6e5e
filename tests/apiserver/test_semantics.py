#!/usr/bin/env python3
"""API-semantics checks that need several requests and exact inspection of status codes, headers
and bodies (kubectl cannot express them). Run by test.sh against the instance in $MM_LOCAL_DIR:

    python3 test_semantics.py GROUP     # lists | watch | errors | shutdown

Each check prints "PASS <name>" or "FAIL <name> :: <detail>"; every name says which upstream
source file the expected behaviour comes from.
"""
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
LOCAL = os.environ.get("MM_LOCAL_DIR", os.path.join(HERE, "..", "..", ".local"))


class Api:
    def __init__(self, port=None, token=None, local=LOCAL):
        self.port = int(port or open(os.path.join(local, "apiserver.port")).read().strip())
        self.token = token or open(os.path.join(local, "token")).read().strip()
        self.ctx = ssl.create_default_context(cafile=os.path.join(local, "pki", "ca.crt"))

    def conn(self, timeout=20):
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=timeout)

    def req(self, method, path, body=None, ctype="application/json", headers=None):
        """-> (status, headers dict (lower-case names), body bytes)"""
        c = self.conn()
        h = {"Authorization": "Bearer " + self.token, "Accept": "application/json"}
        if body is not None:
            if not isinstance(body, (bytes, str)):
                body = json.dumps(body)
            h["Content-Type"] = ctype
        h.update(headers or {})
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def json(self, method, path, body=None, ctype="application/json"):
        st, h, data = self.req(method, path, body, ctype)
        try:
            return st, json.loads(data)
        except ValueError:
            return st, data.decode("utf-8", "replace")

    def watch(self, path, until=None, seconds=5):
        """Read watch events (dicts) until `until(events)` is true or the stream ends."""
        c = self.conn(timeout=seconds + 5)
        c.request("GET", path, headers={"Authorization": "Bearer " + self.token})
        r = c.getresponse()
        events = []
        deadline = time.time() + seconds
        buf = b""
        try:
            while time.time() < deadline:
                chunk = r.read1(65536) if hasattr(r, "read1") else r.read(1)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        events.append(json.loads(line))
                if until and until(events):
                    break
        finally:
            c.close()
        return r.status, events


class Checks:
    def __init__(self):
        self.failed = 0

    def check(self, name, cond, detail=""):
        if cond:
            print("PASS %s" % name)
        else:
            self.failed += 1
            print("FAIL %s :: %s" % (name, str(detail)[:600].replace("\n", " ")))
        sys.stdout.flush()


def cm(name, labels=None, data=None):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": labels or {}}, "data": data or {}}


def control(api, what, body=None):
    return api.json("POST", "/_control/" + what, body or {})


NS = "semantics"


def setup_ns(api):
    """A fresh namespace per group, so that a group can run again against the same server."""
    global NS
    NS = "semantics-%x" % (int(time.time() * 1000) % 0xffffff)
    api.json("POST", "/api/v1/namespaces", {"metadata": {"name": NS}})


# ----------------------------------------------------------------------------- lists

def lists(api, t):
    src_store = "apiserver pkg/storage/etcd3/store.go"
    setup_ns(api)
    base = "/api/v1/namespaces/%s/configmaps" % NS
    for n in ("l-a", "l-b", "l-c"):
        api.json("POST", base, cm(n))
    st, lst = api.json("GET", base)
    rv1 = lst["metadata"]["resourceVersion"]
    api.json("POST", base, cm("l-d"))
    api.json("DELETE", base + "/l-a")
    st, exact = api.json("GET", base + "?resourceVersion=%s&limit=10" % rv1)
    names = [o["metadata"]["name"] for o in exact.get("items", [])]
    t.check("%s: resourceVersion=N with limit is an exact read at N (older state served)" % src_store,
            st == 200 and names == ["l-a", "l-b", "l-c"] and exact["metadata"]["resourceVersion"] == rv1, (st, names, exact.get("metadata")))
    st, exact2 = api.json("GET", base + "?resourceVersion=%s&resourceVersionMatch=Exact" % rv1)
    t.check("%s: resourceVersionMatch=Exact reads the state at N" % src_store,
            st == 200 and [o["metadata"]["name"] for o in exact2["items"]] == ["l-a", "l-b", "l-c"], exact2)
    st, newer = api.json("GET", base + "?resourceVersion=%s&resourceVersionMatch=NotOlderThan" % rv1)
    t.check("%s: NotOlderThan serves the latest state" % src_store,
            st == 200 and [o["metadata"]["name"] for o in newer["items"]] == ["l-b", "l-c", "l-d"]
            and int(newer["metadata"]["resourceVersion"]) > int(rv1), newer)
    # one consistent snapshot across pages
    st, p1 = api.json("GET", base + "?limit=1")
    tok = p1["metadata"].get("continue")
    api.json("DELETE", base + "/l-c")
    api.json("POST", base, cm("l-e"))
    names, rvs, cont = [o["metadata"]["name"] for o in p1["items"]], [p1["metadata"]["resourceVersion"]], tok
    while cont:
        st, p = api.json("GET", base + "?limit=1&continue=" + urllib.parse.quote(cont))
        names += [o["metadata"]["name"] for o in p.get("items", [])]
        rvs.append(p["metadata"]["resourceVersion"])
        cont = p["metadata"].get("continue")
    t.check("%s: a paged list is one snapshot (writes between pages are not seen)" % src_store,
            names == ["l-b", "l-c", "l-d"] and len(set(rvs)) == 1, (names, rvs))
    t.check("%s: remainingItemCount on a chunk" % src_store, p1["metadata"].get("remainingItemCount") == 2, p1["metadata"])
    # resourceVersion=0 is served from the watch cache, which ignores limit
    st, zero = api.json("GET", base + "?resourceVersion=0&limit=1")
    t.check("apiserver pkg/storage/cacher/cacher.go: resourceVersion=0 ignores limit (whole list, no continue)",
            st == 200 and len(zero["items"]) == 3 and "continue" not in zero["metadata"], zero.get("metadata"))
    # continue tokens expire: time-based compaction (--continue-ttl) and an explicit compaction
    st, p1 = api.json("GET", base + "?limit=1")
    tok = p1["metadata"]["continue"]
    control(api, "continue-ttl", {"seconds": 1})
    api.json("POST", base, cm("l-f"))
    time.sleep(1.3)
    api.json("POST", base, cm("l-g"))
    st, exp = api.json("GET", base + "?limit=1&continue=" + urllib.parse.quote(tok))
    t.check("apiserver pkg/storage/etcd3/errors.go: expired continue token -> 410 Expired with the real message",
            st == 410 and exp.get("reason") == "Expired" and exp.get("message", "").startswith(
                "The provided continue parameter is too old to display a consistent list result. You can start a new "
                "list without the continue parameter, or use the continue token in this response"), exp)
    newtok = (exp.get("metadata") or {}).get("continue") if isinstance(exp, dict) else None
    st, rest = api.json("GET", base + "?limit=10&continue=" + urllib.parse.quote(newtok or "x"))
    t.check("apiserver pkg/storage/etcd3/errors.go: the 410 carries a continue token for an inconsistent continuation",
            st == 200 and [o["metadata"]["name"] for o in rest.get("items", [])] == ["l-d", "l-e", "l-f", "l-g"], rest)
    st, old = api.json("GET", base + "?resourceVersion=%s&limit=5" % rv1)
    t.check("%s: an exact read of a compacted resourceVersion -> 410 Expired" % src_store,
            st == 410 and old.get("message") == "The resourceVersion for the provided list is too old.", old)
    control(api, "continue-ttl", {"seconds": 300})
    st, p1 = api.json("GET", base + "?limit=1")
    api.json("POST", base, cm("l-h"))
    control(api, "compact")
    st, exp2 = api.json("GET", base + "?limit=1&continue=" + urllib.parse.quote(p1["metadata"]["continue"]))
    t.check("%s: a continue token is expired by compaction (/_control/compact)" % src_store, st == 410, exp2)
    # option validation
    st, e = api.json("GET", base + "?resourceVersion=0&resourceVersionMatch=Exact")
    t.check("apimachinery pkg/apis/meta/internalversion/validation/validation.go: Exact with resourceVersion=0",
            st == 422 and e.get("message") == 'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
            'resourceVersionMatch "exact" is forbidden for resourceVersion "0"', e)
    st, e = api.json("GET", base + "?resourceVersionMatch=Bogus&continue=abc")
    t.check("apimachinery pkg/apis/meta/internalversion/validation/validation.go: all option errors aggregated",
            st == 422 and e.get("message", "").startswith('ListOptions.meta.k8s.io "" is invalid: [resourceVersionMatch: '
                                                          'Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided, ')
            and len(e["details"]["causes"]) == 3, e)
    st, e = api.json("GET", base + "?sendInitialEvents=true")
    t.check("apimachinery pkg/apis/meta/internalversion/validation/validation.go: sendInitialEvents is forbidden for list",
            st == 422 and "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list" in e.get("message", ""), e)
    st, p1 = api.json("GET", base + "?limit=1")
    st, e = api.json("GET", base + "?limit=1&resourceVersion=5&continue=" + urllib.parse.quote(p1["metadata"]["continue"]))
    t.check("%s: resourceVersion together with continue -> 400" % src_store,
            st == 400 and e.get("message") == "specifying resource version is not allowed when using continue", e)
    st, e = api.json("GET", base + "?limit=1&continue=bm90LWpzb24")
    t.check("apiserver pkg/storage/continue.go: a malformed continue token -> 400 invalid continue token",
            st == 400 and e.get("message", "").startswith("invalid continue token: continue key is not valid"), e)


# ----------------------------------------------------------------------------- watch

def watches(api, t):
    setup_ns(api)
    base = "/api/v1/namespaces/%s/configmaps" % NS
    api.json("POST", base, cm("w-1", {"app": "x"}, {"v": "1"}))
    done = []

    def later():
        time.sleep(0.4)
        st, o = api.json("PATCH", base + "/w-1", {"metadata": {"labels": {"app": "y"}}, "data": {"v": "2"}},
                         "application/merge-patch+json")
        done.append(o["metadata"]["resourceVersion"])
        st, o = api.json("PATCH", base + "/w-1", {"metadata": {"labels": {"app": "x"}}, "data": {"v": "3"}},
                         "application/merge-patch+json")
        done.append(o["metadata"]["resourceVersion"])
    import threading
    th = threading.Thread(target=later)
    th.start()
    st, evs = api.watch(base + "?watch=true&labelSelector=app%3Dx&timeoutSeconds=5", until=lambda e: len(e) >= 3)
    th.join()
    src = "apiserver pkg/storage/cacher/cache_watcher.go"
    got = [(e["type"], e["object"]["metadata"].get("labels", {}).get("app"), e["object"].get("data", {}).get("v"),
            e["object"]["metadata"]["resourceVersion"]) for e in evs]
    t.check("%s: leaving the selector is DELETED with the previous object and the update's resourceVersion" % src,
            len(got) >= 2 and got[1][:3] == ("DELETED", "x", "1") and got[1][3] == done[0], (got, done))
    t.check("%s: entering the selector is ADDED" % src,
            len(got) >= 3 and got[2][:3] == ("ADDED", "x", "3") and got[2][3] == done[1], (got, done))
    # WatchList: current state, then the initial-events-end bookmark, never history
    st, lst = api.json("GET", base)
    st, evs = api.watch(base + "?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
                        "&allowWatchBookmarks=true&resourceVersion=1&timeoutSeconds=2",
                        until=lambda e: any(x["type"] == "BOOKMARK" for x in e))
    types = [e["type"] for e in evs]
    bm = [e for e in evs if e["type"] == "BOOKMARK"]
    t.check("apiserver pkg/storage/cacher/cacher.go: sendInitialEvents=true sends the current state as ADDED, no history",
            types[:-1] == ["ADDED"] * len(lst["items"]) and types[-1] == "BOOKMARK", types)
    t.check("apiserver pkg/storage/cacher/cache_watcher.go: the BOOKMARK is annotated k8s.io/initial-events-end",
            bm and bm[0]["object"]["metadata"].get("annotations") == {"k8s.io/initial-events-end": "true"}
            and bm[0]["object"]["metadata"]["resourceVersion"] == lst["metadata"]["resourceVersion"], bm)
    st, e = api.json("GET", base + "?watch=true&sendInitialEvents=true&timeoutSeconds=1")
    t.check("apimachinery pkg/apis/meta/internalversion/validation/validation.go: sendInitialEvents needs NotOlderThan",
            st == 422 and "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan" in e.get("message", ""), e)


# ----------------------------------------------------------------------------- errors

def errors(api, t):
    setup_ns(api)
    base = "/api/v1/namespaces/%s/configmaps" % NS
    api.json("POST", base, cm("e-1"))
    control(api, "fail", {"verb": "get", "resource": "configmaps", "code": 429, "flowcontrol": True, "count": 1})
    st, h, body = api.req("GET", base + "/e-1")
    src = "apiserver pkg/server/filters/priority-and-fairness.go"
    t.check("%s: the APF rejection is a text/plain 429 'Too many requests, please try again later.'" % src,
            st == 429 and body == b"Too many requests, please try again later.\n"
            and h.get("content-type") == "text/plain; charset=utf-8", (st, h, body))
    t.check("%s: ... with Retry-After: 1" % src, h.get("retry-after") == "1", h)
    st, h, body = api.req("GET", base + "/e-1")
    t.check("%s: responses carry the X-Kubernetes-PF-* headers" % src,
            st == 200 and "x-kubernetes-pf-flowschema-uid" in h and "x-kubernetes-pf-prioritylevel-uid" in h, h)
    control(api, "fail", {"verb": "list", "resource": "configmaps", "code": 429, "count": 1})
    st, h, body = api.req("GET", base)
    js = json.loads(body)
    t.check("apiserver pkg/endpoints/handlers/responsewriters/status.go: Retry-After from details.retryAfterSeconds",
            st == 429 and h.get("retry-after") == "1" and js["details"]["retryAfterSeconds"] == 1, (st, h, body))
    st, h, body = api.req("GET", base + "?resourceVersion=999999999")
    t.check("apiserver pkg/storage/errors.go: 504 ResourceVersionTooLarge carries Retry-After",
            st == 504 and h.get("retry-after") == "1" and b"ResourceVersionTooLarge" in body, (st, h, body))
    st, h, body = api.req("GET", base + "/nope")
    t.check("apiserver pkg/endpoints/handlers/responsewriters/status.go: no Retry-After without retryAfterSeconds",
            st == 404 and "retry-after" not in h, h)
    # An early error answer must not leave the request body on a keep-alive connection.
    control(api, "fail", {"verb": "create", "resource": "configmaps", "code": 500, "count": 1})
    c = api.conn()
    hdr = {"Authorization": "Bearer " + api.token, "Content-Type": "application/json"}
    try:
        c.request("POST", base, body=json.dumps(cm("e-2")), headers=hdr)
        r1 = c.getresponse()
        r1.read()
        c.request("GET", base + "/e-1", headers=hdr)
        r2 = c.getresponse()
        r2.read()
        t.check("net/http server.go: a body the handler did not read is drained before the next "
                "request on the connection", r1.status == 500 and r2.status == 200,
                (r1.status, r2.status))
    finally:
        c.close()
    control(api, "restart", {"keepState": True, "downSeconds": 1.5})
    st, h, body = api.req("GET", base + "/e-1")
    src = "apiserver pkg/server/filters/with_retry_after.go"
    t.check("%s: during the restart window new requests get 429 'The apiserver is shutting down'" % src,
            st == 429 and body == b"The apiserver is shutting down, please try again later.\n", (st, body))
    t.check("%s: ... with Retry-After: 5 and Connection: close" % src,
            h.get("retry-after") == "5" and h.get("connection") == "close", h)
    st, h, body = api.req("GET", "/readyz")
    st2, _h, body2 = api.req("GET", "/livez")
    t.check("apiserver pkg/server/healthz: /readyz fails while shutting down, /livez is exempt and ok",
            st == 500 and b"[-]shutdown failed: reason withheld" in body and st2 == 200, (st, body, st2, body2))
    time.sleep(1.6)
    st, h, body = api.req("GET", base + "/e-1")
    t.check("%s: after the window requests are served again" % src, st == 200, (st, body))


def shutdown(api, t):
    """Starts its own server.py with --shutdown-delay/--shutdown-grace and sends SIGTERM."""
    import tempfile
    d = tempfile.mkdtemp(prefix="mm-shutdown-")
    pki_dir = os.path.join(LOCAL, "pki")
    portf = os.path.join(d, "port")
    p = subprocess.Popen([sys.executable, "-B", os.path.join(HERE, "server.py"), "--cert-dir", pki_dir,
                          "--token", "shutdown-test", "--port-file", portf, "--shutdown-delay", "2",
                          "--shutdown-grace", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if os.path.exists(portf):
                break
            time.sleep(0.05)
        a = Api(port=open(portf).read().strip(), token="shutdown-test")
        p.send_signal(15)
        t_term = time.time()
        time.sleep(0.3)
        st, _h, body = a.req("GET", "/readyz")
        st2, _h, _b = a.req("GET", "/api/v1/namespaces")
        src = "apiserver pkg/server/genericapiserver.go"
        t.check("%s: after SIGTERM /readyz fails while requests are still served (--shutdown-delay)" % src,
                st == 500 and st2 == 200, (st, body, st2))
        time.sleep(max(0.0, t_term + 2.3 - time.time()))
        st, h, body = a.req("GET", "/api/v1/namespaces")
        t.check("apiserver pkg/server/filters/with_retry_after.go: after the delay new requests get 429 + Retry-After: 5",
                st == 429 and h.get("retry-after") == "5" and b"shutting down" in body, (st, h, body))
        st, h, body = a.req("GET", "/livez")
        t.check("apiserver pkg/server/filters/with_retry_after.go: /livez is exempt from the 429", st == 200, st)
        p.wait(10)
        t.check("apiserver pkg/server/genericapiserver.go: the server exits after the drain (--shutdown-grace)", p.returncode is not None, p.returncode)
    finally:
        if p.poll() is None:
            p.kill()


def main():
    group = sys.argv[1] if len(sys.argv) > 1 else "all"
    api = Api()
    t = Checks()
    fns = {"lists": lists, "watch": watches, "errors": errors, "shutdown": shutdown}
    for name, fn in fns.items():
        if group in (name, "all"):
            try:
                fn(api, t)
            except (OSError, socket.error, ValueError, KeyError, TypeError, http.client.HTTPException) as e:
                t.check("%s: ran to the end" % name, False, repr(e))
    return 1 if t.failed else 0


if __name__ == "__main__":
    sys.exit(main())
