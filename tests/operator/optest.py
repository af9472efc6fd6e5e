#!/usr/bin/env python3
"""Helpers for tests/e2e/operator_test.sh: reading the cluster, the expected status (the
oracle), polling with deadlines, Events, the API server's request log, the Lease.

    optest.py --kubeconfig K CMD [args]

Every wait is a poll with a deadline; on failure the command prints what it saw last
(the object as read, the diff against the oracle) and exits 1.

Commands
  get PATH [--expr E]             GET PATH; print the JSON, or E evaluated with d = the body
  oracle --bin B                  the expected figures per MeshMetric and state per pod (JSON)
  converge --bin B --deadline S [--stable S] [--kuma-cp] [--metrics URL]
                                  wait until every MeshMetric's conditions are what the oracle
                                  computes (and, with --metrics, meshmetric_operator_dataplanes)
  cond NS/NAME TYPE STATUS REASON --deadline S [--contains TEXT]...
                                  wait until the MeshMetric carries that condition (REASON * = any)
  events [--ns NS] [--kind K] [--name N] [--reason R] [--since T]
                                  Events (events.k8s.io/v1) as compact summaries (JSON lines)
  expect-events --ns NS --kind K --names N1,N2 --reason R --type T --deadline S [--min-series C]
                                  wait until each named object has exactly one Event of that
                                  reason from the operator (and series.count >= C)
  requests --since T [--until T] [--method M[,M...]] [--path-re RE] [--ua-prefix P | --ua-not-prefix P]
                                  count the API server's logged requests that match (the lines
                                  go to stderr)
  lease [--ns NS] [--name N]      the Lease spec (JSON)
  wait-lease --deadline S (--holder H | --holder-not H | --holder-prefix P | --held)
                                  wait for the Lease holder; prints the holder and the seconds waited
  record PATH --out FILE          append every watch event of PATH to FILE (one JSON line each,
                                  with the local time), re-listing and re-watching forever
  lease-log FILE [--since T]      the holderIdentity sequence recorded by `record`
  events-by-leader --since T --lease-log FILE --ns NS[,NS]
                                  check every operator Event since T was reported by the replica
                                  holding the Lease at its eventTime (1 s tolerance)
  pods --ns NS [--selector S]     pods as summaries (name, uid, owner, hash, sidecar, phase)
  metric URL NAME [LABEL=VALUE ...] [--sum]
                                  the value of a metric on a Prometheus text endpoint ("absent");
                                  --sum adds up every series that has those labels
"""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kube import Kube, items  # noqa: E402

import yaml  # noqa: E402

IN_SYNC = "meshmetric.kuma.io/DataplanesInSync"
VALID = "meshmetric.kuma.io/Valid"
KUMA_COND = "BackendRefsResolved"
HASH = "meshmetric.kuma.io/config-hash"
CONTROLLER = "meshmetric.kuma.io/operator"
PHRASE = {"NotApplied": "created while the webhook was down", "Outdated": "config changed"}

K = None  # the Kube client


def die(msg, *details):
    print(msg)
    for d in details:
        for line in str(d).splitlines():
            print("       " + line)
    sys.exit(1)


def get(path):
    return K.get(path)


def strip_meta(o):
    o = json.loads(json.dumps(o))
    md = o.get("metadata") or {}
    for k in ("managedFields", "resourceVersion", "uid", "generation", "creationTimestamp"):
        md.pop(k, None)
    (md.get("annotations") or {}).pop("kubectl.kubernetes.io/last-applied-configuration", None)
    o.pop("status", None)
    return o


def has_sidecar(pod):
    spec = pod.get("spec") or {}
    return any(c.get("name") == "kuma-sidecar" for c in (spec.get("containers") or []) + (spec.get("initContainers") or []))


def parse_time(s):
    if not s:
        return 0.0
    s = s.replace("Z", "+00:00")
    try:
        return datetime.datetime.fromisoformat(s).timestamp()
    except ValueError:
        return 0.0


# ---------------------------------------------------------------- the oracle

def snapshot():
    """Everything the oracle reads, or raises RuntimeError."""
    out = {}
    for key, path, required in (("meshmetrics", "/apis/kuma.io/v1alpha1/meshmetrics", True),
                                ("meshes", "/apis/kuma.io/v1alpha1/meshes", False),
                                ("namespaces", "/api/v1/namespaces", True),
                                ("services", "/api/v1/services", True),
                                ("replicasets", "/apis/apps/v1/replicasets", False),
                                ("pods", "/api/v1/pods", True)):
        code, body = get(path)
        if code != 200:
            if required:
                raise RuntimeError("GET %s: %s %s" % (path, code, str(body)[:200]))
            out[key] = []
            continue
        out[key] = body.get("items") or []
    return out


def run_bin(binary, args, inp=None):
    p = subprocess.run([binary] + args, input=inp, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def json_stream(text):
    dec = json.JSONDecoder()
    i, out = 0, []
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return out
        obj, i = dec.raw_decode(text, i)
        out.append(obj)


def oracle(binary, sysns="kuma-system", zone="default", snap=None):
    """{"policies": {ns/name: {"valid", "errors", "members": {pod: state}}}, "pods": {...}}"""
    snap = snap or snapshot()
    tmp = tempfile.mkdtemp(prefix="mm-oracle.")
    try:
        policies, invalid = [], {}
        for mm in snap["meshmetrics"]:
            key = "%s/%s" % (mm["metadata"]["namespace"], mm["metadata"]["name"])
            doc = strip_meta(mm)
            f = os.path.join(tmp, "one.json")
            with open(f, "w") as fh:
                json.dump(doc, fh)
            rc, so, se = run_bin(binary, ["validate", "-f", f])
            if rc == 0:
                policies.append(doc)
            else:
                invalid[key] = (so + se).strip()
        docs = []
        for kind, av, lst in (("Namespace", "v1", snap["namespaces"]), ("Service", "v1", snap["services"]),
                              ("ReplicaSet", "apps/v1", snap["replicasets"]), ("Mesh", "kuma.io/v1alpha1", snap["meshes"])):
            for o in lst:
                d = strip_meta(o)
                d["apiVersion"], d["kind"] = av, kind
                docs.append(d)
        for d in policies:
            d["apiVersion"], d["kind"] = "kuma.io/v1alpha1", "MeshMetric"
        pfile = os.path.join(tmp, "policies.yaml")
        with open(pfile, "w") as fh:
            yaml.safe_dump_all(docs + policies, fh)
        pods = [p for p in snap["pods"] if has_sidecar(p) and not p["metadata"].get("deletionTimestamp")]
        pod_docs = []
        for p in pods:
            d = json.loads(json.dumps(p))
            for k in list((d["metadata"].get("annotations") or {})):
                if k.startswith("meshmetric.kuma.io/"):
                    del d["metadata"]["annotations"][k]
            d.pop("status", None)
            d["apiVersion"], d["kind"] = "v1", "Pod"
            pod_docs.append(d)
        result = {"policies": {}, "pods": {}, "invalid": invalid}
        for key in ["%s/%s" % (d["metadata"]["namespace"], d["metadata"]["name"]) for d in policies]:
            result["policies"][key] = {"members": {}}
        if pod_docs:
            ffile = os.path.join(tmp, "pods.yaml")
            with open(ffile, "w") as fh:
                yaml.safe_dump_all(pod_docs, fh)
            rc, so, se = run_bin(binary, ["explain", "-f", ffile, "-p", pfile, "-o", "json",
                                          "--system-namespace", sysns, "--zone", zone])
            if rc != 0:
                raise RuntimeError("explain failed (%d): %s" % (rc, se.strip()[:500]))
            answers = json_stream(so)
            if len(answers) != len(pods):
                raise RuntimeError("explain answered %d documents for %d pods" % (len(answers), len(pods)))
            for p, ans in zip(pods, answers):
                name = "%s/%s" % (p["metadata"]["namespace"], p["metadata"]["name"])
                want = None
                for op in ans.get("patch") or []:
                    if op.get("path") == "/metadata/annotations/meshmetric.kuma.io~1config-hash":
                        want = op.get("value")
                    elif op.get("path") == "/metadata/annotations" and isinstance(op.get("value"), dict):
                        want = op["value"].get(HASH, want)
                have = (p["metadata"].get("annotations") or {}).get(HASH)
                if want == have:
                    state = "InSync"
                elif have is None:
                    state = "NotApplied"
                else:
                    state = "Outdated"
                result["pods"][name] = {"state": state, "want": want, "have": have, "policies": ans.get("policies") or []}
                for pol in ans.get("policies") or []:
                    if pol in result["policies"]:
                        result["policies"][pol]["members"][name] = state
        return result
    finally:
        subprocess.run(["rm", "-rf", tmp])


def expected_conditions(entry):
    members = entry["members"]
    out_of_sync = sorted(n for n, s in members.items() if s != "InSync")
    n_in = len(members) - len(out_of_sync)
    return {"status": "False" if out_of_sync else "True",
            "reason": "InSync:%d,OutOfSync:%d" % (n_in, len(out_of_sync)),
            "prefix": ("no dataplane is selected by this policy" if not members else
                       "%d of %d dataplane" % (n_in, len(members))),
            "contains": ["%s (%s)" % (n, PHRASE[members[n]]) for n in out_of_sync]}


def cond_of(obj, ctype):
    for c in ((obj.get("status") or {}).get("conditions") or []):
        if c.get("type") == ctype:
            return c
    return None


def compare(snap, orc, kuma_cp):
    """A list of problems (empty when the cluster's statuses are what the oracle says)."""
    problems = []
    byname = {"%s/%s" % (m["metadata"]["namespace"], m["metadata"]["name"]): m for m in snap["meshmetrics"]}
    for key, mm in sorted(byname.items()):
        valid = cond_of(mm, VALID)
        insync = cond_of(mm, IN_SYNC)
        if key in orc["invalid"]:
            if not valid or valid.get("status") != "False" or valid.get("reason") != "Invalid":
                problems.append("%s: want %s False/Invalid, have %s" % (key, VALID, valid))
            if not insync or insync.get("status") != "Unknown":
                problems.append("%s: want %s Unknown, have %s" % (key, IN_SYNC, insync))
        else:
            if not valid or valid.get("status") != "True" or valid.get("reason") != "Valid":
                problems.append("%s: want %s True/Valid, have %s" % (key, VALID, valid))
            want = expected_conditions(orc["policies"][key])
            if not insync:
                problems.append("%s: no %s condition (want %s %s)" % (key, IN_SYNC, want["status"], want["reason"]))
            else:
                if insync.get("status") != want["status"] or insync.get("reason") != want["reason"]:
                    problems.append("%s: want %s %s, have %s %s" % (key, want["status"], want["reason"],
                                                                   insync.get("status"), insync.get("reason")))
                msg = insync.get("message") or ""
                if not msg.startswith(want["prefix"]):
                    problems.append("%s: message %r does not start with %r" % (key, msg, want["prefix"]))
                for c in want["contains"]:
                    if c not in msg:
                        problems.append("%s: message %r does not name %r" % (key, msg, c))
        # kuma-cp's writes to a policy Kuma rejects are denied by the validating webhook (UPDATE)
        if kuma_cp and key not in orc["invalid"] and not cond_of(mm, KUMA_COND):
            problems.append("%s: kuma-cp's %s condition is missing" % (key, KUMA_COND))
        extra = [c.get("type") for c in ((mm.get("status") or {}).get("conditions") or [])
                 if c.get("type") not in (VALID, IN_SYNC, KUMA_COND)]
        if extra:
            problems.append("%s: unexpected condition types %s" % (key, extra))
    return problems


def summary(snap):
    out = []
    for mm in sorted(snap["meshmetrics"], key=lambda m: (m["metadata"]["namespace"], m["metadata"]["name"])):
        c = cond_of(mm, IN_SYNC) or {}
        out.append("%s/%s=%s:%s" % (mm["metadata"]["namespace"], mm["metadata"]["name"], c.get("status"), c.get("reason")))
    return " ".join(out)


def metric_value(url, name, labels, total=False):
    """The value of the first series of name whose labels include labels (or, with total,
    the sum over all of them); "absent" when none, "unreachable (...)" on errors."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
    except Exception as e:  # noqa: BLE001
        return "unreachable (%s)" % e
    found = None
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)', line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            if not total:
                return m.group(4)
            found = (found or 0.0) + float(m.group(4))
    return "absent" if found is None else str(found)


def fmt_num(v):
    try:
        f = float(v)
        return str(int(f)) if f == int(f) else str(f)
    except ValueError:
        return v


def cmd_converge(a):
    deadline = time.time() + a.deadline
    last, snap, orc = ["never compared"], None, None
    matched_at = None
    while True:
        try:
            snap = snapshot()
            orc = oracle(a.bin, a.system_namespace, a.zone, snap)
            problems = compare(snap, orc, a.kuma_cp)
            if a.metrics and not problems:
                n_in = sum(1 for p in orc["pods"].values() if p["state"] == "InSync")
                n_out = len(orc["pods"]) - n_in
                for url in a.metrics:
                    for state, want in (("in_sync", n_in), ("out_of_sync", n_out)):
                        have = fmt_num(metric_value(url, "meshmetric_operator_dataplanes", {"state": state}))
                        if have != str(want):
                            problems.append("%s: meshmetric_operator_dataplanes{state=%r} is %s, want %d" % (url, state, have, want))
        except RuntimeError as e:
            problems = ["could not read the cluster: %s" % e]
        if not problems:
            if matched_at is None:
                matched_at = time.time()
            if time.time() - matched_at >= a.stable:
                print(summary(snap))
                return 0
        else:
            matched_at = None
            last = problems
        if time.time() > deadline:
            lines = ["not converged within %gs:" % a.deadline] + last
            if snap is not None:
                for mm in snap["meshmetrics"]:
                    lines.append("%s/%s generation %s status %s" % (mm["metadata"]["namespace"], mm["metadata"]["name"],
                                                                    mm["metadata"].get("generation"),
                                                                    json.dumps(mm.get("status"))))
            if orc is not None:
                for pod, st in sorted(orc["pods"].items()):
                    lines.append("pod %s: %s (have %s, want %s; policies %s)" % (pod, st["state"], st["have"], st["want"],
                                                                                ",".join(st["policies"])))
            die(lines[0], *lines[1:])
        time.sleep(0.5)


def cmd_oracle(a):
    print(json.dumps(oracle(a.bin, a.system_namespace, a.zone), indent=1, sort_keys=True))


def cmd_cond(a):
    ns, name = a.object.split("/")
    deadline = time.time() + a.deadline
    t0 = time.time()
    while True:
        code, mm = get("/apis/kuma.io/v1alpha1/namespaces/%s/meshmetrics/%s" % (ns, name))
        c = cond_of(mm, a.type) if code == 200 else None
        if c and c.get("status") == a.status and a.reason in ("*", c.get("reason")) and \
                all(t in (c.get("message") or "") for t in a.contains):
            print("%.1f" % (time.time() - t0))
            return 0
        if time.time() > deadline:
            die("%s: %s is not %s/%s%s within %gs" % (a.object, a.type, a.status, a.reason,
                                                       " containing %s" % a.contains if a.contains else "", a.deadline),
                "have: %s" % json.dumps(c), "status as read: %s" % json.dumps((mm or {}).get("status") if code == 200 else mm))
        time.sleep(0.25)


# ---------------------------------------------------------------- events

def list_events(ns):
    path = "/apis/events.k8s.io/v1/namespaces/%s/events" % ns if ns else "/apis/events.k8s.io/v1/events"
    return items(get(path))


def ev_summary(e):
    reg = e.get("regarding") or {}
    series = e.get("series") or {}
    return {"name": e["metadata"]["name"], "kind": reg.get("kind"), "object": reg.get("name"),
            "namespace": reg.get("namespace"), "reason": e.get("reason"), "type": e.get("type"),
            "note": e.get("note"), "count": series.get("count", 1), "controller": e.get("reportingController"),
            "instance": e.get("reportingInstance"), "eventTime": e.get("eventTime"),
            "lastObserved": series.get("lastObservedTime") or e.get("eventTime")}


def cmd_events(a):
    for ns in (a.ns or "").split(",") if a.ns else [None]:
        for e in list_events(ns):
            s = ev_summary(e)
            if a.kind and s["kind"] != a.kind or a.name and s["object"] != a.name or a.reason and s["reason"] != a.reason:
                continue
            if a.since and parse_time(s["lastObserved"]) < a.since:
                continue
            print(json.dumps(s, sort_keys=True))


def cmd_expect_events(a):
    names = [n for n in a.names.split(",") if n]
    deadline = time.time() + a.deadline
    while True:
        evs = [ev_summary(e) for e in list_events(a.ns)]
        problems = []
        for n in names:
            mine = [e for e in evs if e["kind"] == a.kind and e["object"] == n and e["reason"] == a.reason
                    and e["controller"] == CONTROLLER]
            if len(mine) != 1:
                problems.append("%s/%s: %d Events with reason %s from %s (want exactly 1)" % (a.ns, n, len(mine), a.reason, CONTROLLER))
            elif mine[0]["type"] != a.type:
                problems.append("%s/%s: %s is %s, want %s" % (a.ns, n, a.reason, mine[0]["type"], a.type))
            elif mine[0]["count"] < a.min_series:
                problems.append("%s/%s: %s series.count %s, want >= %d" % (a.ns, n, a.reason, mine[0]["count"], a.min_series))
        if not problems:
            return 0
        if time.time() > deadline:
            die(problems[0], *(problems[1:] + ["events in %s:" % a.ns] +
                               [json.dumps(e, sort_keys=True) for e in evs]))
        time.sleep(0.25)


def cmd_events_by_leader(a):
    hist = lease_history(a.lease_log)
    problems, n = [], 0
    for ns in a.ns.split(","):
        for e in list_events(ns):
            s = ev_summary(e)
            if s["controller"] != CONTROLLER:
                continue
            t = parse_time(s["eventTime"])
            if t < a.since:
                continue
            n += 1
            holders = {h for (ht, h) in hist if t - 1.0 <= ht <= t + 1.0} | {holder_at(hist, t)}
            if s["instance"] not in holders:
                problems.append("%s: Event %s (%s on %s) reported by %r, Lease held by %s at %s" % (
                    ns, s["name"], s["reason"], s["object"], s["instance"], sorted(h for h in holders if h is not None), s["eventTime"]))
    if problems:
        die(problems[0], *problems[1:])
    print(n)


# ---------------------------------------------------------------- request log

def cmd_requests(a):
    code, body = get("/_control/requests")
    if code != 200:
        die("GET /_control/requests: %s %s" % (code, body))
    n = 0
    for r in body.get("requests") or []:
        if r["time"] < a.since or (a.until and r["time"] > a.until):
            continue
        if a.method and r["method"] not in a.method.split(","):
            continue
        if a.path_re and not re.search(a.path_re, r["path"]):
            continue
        ua = r.get("userAgent") or ""
        if a.ua_prefix and not ua.startswith(a.ua_prefix):
            continue
        if a.ua_not_prefix and ua.startswith(a.ua_not_prefix):
            continue
        n += 1
        sys.stderr.write("%.3f %s %s [%s] %s\n" % (r["time"], r["method"], r["path"], ua, r.get("contentType", "")))
    print(n)


# ---------------------------------------------------------------- the Lease

def cmd_lease(a):
    code, body = get("/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s" % (a.ns, a.name))
    print(json.dumps(body.get("spec") if code == 200 else {"error": code}, sort_keys=True))


def cmd_wait_lease(a):
    t0 = time.time()
    deadline = t0 + a.deadline
    last = None
    while True:
        code, body = get("/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s" % (a.ns, a.name))
        holder = (body.get("spec") or {}).get("holderIdentity") if code == 200 else None
        last = body if code == 200 else (code, body)
        good = code == 200 and (
            (a.holder is not None and holder == a.holder) or
            (a.holder_not is not None and holder and holder != a.holder_not) or
            (a.holder_prefix is not None and holder and holder.startswith(a.holder_prefix)) or
            (a.held and holder))
        if good:
            print("%s %.1f" % (holder, time.time() - t0))
            return 0
        if time.time() > deadline:
            die("Lease %s/%s: holder not as wanted within %gs" % (a.ns, a.name, a.deadline), json.dumps(last, sort_keys=True))
        time.sleep(0.1)


def cmd_record(a):
    """Record every version of the objects at PATH (a list path) into FILE."""
    seen = {}

    def emit(kind, obj):
        md = obj.get("metadata") or {}
        rv = md.get("resourceVersion")
        if seen.get(md.get("name")) == rv and kind != "DELETED":
            return
        seen[md.get("name")] = rv
        with open(a.out, "a") as f:
            f.write(json.dumps({"time": time.time(), "type": kind, "object": obj}, sort_keys=True) + "\n")

    while True:
        code, body = get(a.path)
        if code != 200:
            time.sleep(0.2)
            continue
        for o in body.get("items") or []:
            emit("LISTED", o)
        rv = (body.get("metadata") or {}).get("resourceVersion", "")
        sep = "&" if "?" in a.path else "?"
        for ev in K.watch("%s%swatch=1&resourceVersion=%s&allowWatchBookmarks=false" % (a.path, sep, rv), 300):
            if ev.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                emit(ev["type"], ev["object"])
            else:
                break
        time.sleep(0.1)


def lease_history(path):
    hist = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                d = json.loads(line)
                if d["type"] == "DELETED":
                    hist.append((d["time"], None))
                else:
                    hist.append((d["time"], (d["object"].get("spec") or {}).get("holderIdentity", "")))
    return hist


def holder_at(hist, t):
    h = None
    for ht, holder in hist:
        if ht <= t:
            h = holder
    return h


def cmd_lease_log(a):
    out, prev = [], object()
    for t, h in lease_history(a.file):
        if t >= a.since and h != prev:
            out.append({"time": round(t, 3), "holder": h})
            prev = h
    print(json.dumps(out))


# ---------------------------------------------------------------- pods and metrics

def cmd_pods(a):
    path = "/api/v1/namespaces/%s/pods" % a.ns
    if a.selector:
        path += "?labelSelector=" + urllib.parse.quote(a.selector)
    out = []
    for p in items(get(path)):
        md = p["metadata"]
        owner = next((o for o in md.get("ownerReferences") or [] if o.get("controller")), {})
        sc = next((c for c in (p["spec"].get("initContainers") or []) + (p["spec"].get("containers") or [])
                   if c.get("name") == "kuma-sidecar"), None)
        out.append({"name": md["name"], "uid": md["uid"], "owner": "%s/%s" % (owner.get("kind"), owner.get("name")) if owner else "",
                    "hash": (md.get("annotations") or {}).get(HASH),
                    "injected": (md.get("annotations") or {}).get("kuma.io/sidecar-injected"),
                    "sidecar": None if sc is None else {
                        "init": any(c is sc for c in p["spec"].get("initContainers") or []),
                        "restartPolicy": sc.get("restartPolicy"),
                        "ports": [x.get("containerPort") for x in sc.get("ports") or []]},
                    "phase": (p.get("status") or {}).get("phase"), "podIP": (p.get("status") or {}).get("podIP"),
                    "deleting": bool(md.get("deletionTimestamp"))})
    print(json.dumps(sorted(out, key=lambda x: x["name"])))


def cmd_metric(a):
    labels = dict(x.split("=", 1) for x in a.labels)
    print(fmt_num(metric_value(a.url, a.name, labels, a.sum)))


def cmd_get(a):
    code, body = get(a.path)
    if a.expr:
        v = eval(a.expr, {"d": body, "code": code, "json": json})
        print(v if isinstance(v, str) else json.dumps(v, sort_keys=True))
    else:
        print(json.dumps(body, sort_keys=True))
    return 0 if code == 200 else 1


def main():
    global K
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("get")
    p.add_argument("path")
    p.add_argument("--expr")
    for name in ("oracle", "converge"):
        p = sub.add_parser(name)
        p.add_argument("--bin", required=True)
        p.add_argument("--system-namespace", default="kuma-system")
        p.add_argument("--zone", default="default")
        if name == "converge":
            p.add_argument("--deadline", type=float, required=True)
            p.add_argument("--stable", type=float, default=0.0)
            p.add_argument("--kuma-cp", action="store_true")
            p.add_argument("--metrics", action="append", default=[])
    p = sub.add_parser("cond")
    p.add_argument("object")
    p.add_argument("type")
    p.add_argument("status")
    p.add_argument("reason")
    p.add_argument("--deadline", type=float, required=True)
    p.add_argument("--contains", action="append", default=[])
    p = sub.add_parser("events")
    for o in ("--ns", "--kind", "--name", "--reason"):
        p.add_argument(o)
    p.add_argument("--since", type=float, default=0)
    p = sub.add_parser("expect-events")
    p.add_argument("--ns", required=True)
    p.add_argument("--kind", required=True)
    p.add_argument("--names", required=True)
    p.add_argument("--reason", required=True)
    p.add_argument("--type", required=True)
    p.add_argument("--deadline", type=float, required=True)
    p.add_argument("--min-series", type=int, default=1)
    p = sub.add_parser("events-by-leader")
    p.add_argument("--since", type=float, required=True)
    p.add_argument("--lease-log", required=True)
    p.add_argument("--ns", required=True)
    p = sub.add_parser("requests")
    p.add_argument("--since", type=float, default=0)
    p.add_argument("--until", type=float, default=0)
    p.add_argument("--method")
    p.add_argument("--path-re")
    p.add_argument("--ua-prefix")
    p.add_argument("--ua-not-prefix")
    for name in ("lease", "wait-lease"):
        p = sub.add_parser(name)
        p.add_argument("--ns", default="meshmetric-system")
        p.add_argument("--name", default="meshmetric-operator")
        if name == "wait-lease":
            p.add_argument("--deadline", type=float, required=True)
            p.add_argument("--holder")
            p.add_argument("--holder-not")
            p.add_argument("--holder-prefix")
            p.add_argument("--held", action="store_true")
    p = sub.add_parser("record")
    p.add_argument("path")
    p.add_argument("--out", required=True)
    p = sub.add_parser("lease-log")
    p.add_argument("file")
    p.add_argument("--since", type=float, default=0)
    p = sub.add_parser("pods")
    p.add_argument("--ns", required=True)
    p.add_argument("--selector")
    p = sub.add_parser("metric")
    p.add_argument("url")
    p.add_argument("name")
    p.add_argument("labels", nargs="*")
    p.add_argument("--sum", action="store_true", help="sum over every matching series")
    a = ap.parse_args()
    if a.cmd != "metric":
        K = Kube(a.kubeconfig, "mm-operator-test")
    fn = {"get": cmd_get, "oracle": cmd_oracle, "converge": cmd_converge, "cond": cmd_cond, "events": cmd_events,
          "expect-events": cmd_expect_events, "events-by-leader": cmd_events_by_leader, "requests": cmd_requests,
          "lease": cmd_lease, "wait-lease": cmd_wait_lease, "record": cmd_record, "lease-log": cmd_lease_log,
          "pods": cmd_pods, "metric": cmd_metric}[a.cmd]
    return fn(a) or 0


if __name__ == "__main__":
    sys.exit(main())
