#!/usr/bin/env python3
"""Scale check for the test API server: 10,000 pods, paged list, 5 watchers.

Prints timings. The only hard bound is a generous 30 s per step, so slow CI
machines do not flake. Usage: test_scale.py --kubeconfig PATH [--pods N]
"""
import argparse
import base64
import http.client
import json
import ssl
import sys
import tempfile
import threading
import time
import urllib.parse

import yaml

BOUND = 30.0


class Client:
    def __init__(self, kubeconfig):
        with open(kubeconfig) as f:
            kc = yaml.safe_load(f)
        cluster = kc["clusters"][0]["cluster"]
        u = urllib.parse.urlsplit(cluster["server"])
        self.host, self.port = u.hostname, u.port
        self.token = kc["users"][0]["user"]["token"]
        self.ca = tempfile.NamedTemporaryFile("wb", suffix=".crt", delete=False)
        self.ca.write(base64.b64decode(cluster["certificate-authority-data"]))
        self.ca.flush()
        self.ctx = ssl.create_default_context(cafile=self.ca.name)

    def conn(self, timeout=60):
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)

    def req(self, method, path, body=None, ctype="application/json"):
        c = self.conn()
        headers = {"Authorization": "Bearer " + self.token}
        if body is not None:
            body = json.dumps(body).encode()
            headers["Content-Type"] = ctype
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, json.loads(data) if data else None


def check(cond, msg):
    if not cond:
        print("FAILED: " + msg)
        sys.exit(1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--pods", type=int, default=10000)
    p.add_argument("--watchers", type=int, default=5)
    a = p.parse_args()
    cl = Client(a.kubeconfig)
    ns = "scale"
    st, _ = cl.req("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    check(st in (201, 409), "create namespace: %s" % st)

    t = time.time()
    tpl = {"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"app": "scale"}},
           "spec": {"containers": [{"name": "app", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]}}
    st, out = cl.req("POST", "/_control/bulk", {"resource": "pods", "namespace": ns, "count": a.pods,
                                                 "prefix": "pod-", "template": tpl})
    check(st == 201 and out["created"] == a.pods, "bulk load: %s %s" % (st, out))
    print("bulk-loaded %d pods in %.2fs" % (a.pods, time.time() - t))

    t = time.time()
    items, cont, rvs, pages = 0, None, set(), 0
    while True:
        path = "/api/v1/namespaces/%s/pods?limit=500" % ns + ("&continue=" + urllib.parse.quote(cont) if cont else "")
        st, out = cl.req("GET", path)
        check(st == 200, "list page: %s" % st)
        items += len(out["items"])
        rvs.add(out["metadata"]["resourceVersion"])
        pages += 1
        cont = out["metadata"].get("continue")
        if not cont:
            break
    dt = time.time() - t
    check(items == a.pods, "paged list saw %d items" % items)
    check(len(rvs) == 1, "resourceVersion changed across pages: %s" % rvs)
    check(dt < BOUND, "paged list took %.1fs" % dt)
    print("paged list: %d items in %d pages, one resourceVersion, %.2fs" % (items, pages, dt))

    t = time.time()
    st, out = cl.req("GET", "/api/v1/namespaces/%s/pods" % ns)
    list_rv = out["metadata"]["resourceVersion"]
    check(len(out["items"]) == a.pods, "full list")
    print("full list (no limit): %.2fs" % (time.time() - t))

    got = {}
    ready = threading.Barrier(a.watchers + 1)
    conns = []

    def watcher(i):
        c = cl.conn(timeout=BOUND + 10)
        conns.append(c)
        c.request("GET", "/api/v1/namespaces/%s/pods?watch=true&resourceVersion=%s&allowWatchBookmarks=true&timeoutSeconds=60" % (ns, list_rv),
                  headers={"Authorization": "Bearer " + cl.token})
        r = c.getresponse()
        ready.wait()
        while True:
            line = r.readline()
            if not line:
                return
            ev = json.loads(line)
            if ev["type"] == "ADDED" and ev["object"]["metadata"]["name"] == "probe":
                got[i] = time.time()
                return

    threads = [threading.Thread(target=watcher, args=(i,), daemon=True) for i in range(a.watchers)]
    for th in threads:
        th.start()
    ready.wait()
    time.sleep(0.2)
    t = time.time()
    st, _ = cl.req("POST", "/api/v1/namespaces/%s/pods" % ns, dict(tpl, metadata={"name": "probe"}))
    check(st == 201, "create probe: %s" % st)
    t_create = time.time() - t
    for th in threads:
        th.join(BOUND)
    check(len(got) == a.watchers, "only %d of %d watchers saw the event" % (len(got), a.watchers))
    lat = [got[i] - t for i in sorted(got)]
    print("create during watch: %.3fs; %d watchers got the event after %s s" % (
        t_create, a.watchers, ", ".join("%.3f" % x for x in lat)))
    check(max(lat) < BOUND, "watch fan-out too slow")
    for c in conns:
        c.close()

    t = time.time()
    st, _ = cl.req("GET", "/api/v1/namespaces/%s/pods/pod-00042" % ns)
    check(st == 200, "get: %s" % st)
    print("single get with 10k pods stored: %.3fs" % (time.time() - t))
    t = time.time()
    st, _ = cl.req("DELETE", "/api/v1/namespaces/%s" % ns)
    check(st == 200, "delete namespace: %s" % st)
    print("namespace with %d pods deleted in %.2fs" % (a.pods + 1, time.time() - t))
    return 0


if __name__ == "__main__":
    sys.exit(main())
