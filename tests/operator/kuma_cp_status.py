#!/usr/bin/env python3
"""A stand-in for kuma-cp's status writer on MeshMetrics (Kuma v2.14.3,
pkg/core/resources/apis/meshopentelemetrybackend/status_updater.go).

    kuma_cp_status.py --kubeconfig K [--interval 2] [--stats FILE] [--log FILE]

Every --interval seconds (the first round after a random delay of up to one interval,
as util_time.SleepUpTo does) it lists every MeshMetric and computes Kuma's
BackendRefsResolved condition (type, status, reason, message; Kuma's common_api.Condition
has no other field):
  - no backends[].openTelemetry.backendRef: True, AllBackendRefsResolved,
    "No MeshOpenTelemetryBackend references configured";
  - backendRefs: there are no MeshOpenTelemetryBackends in the test, so every ref is
    unresolved: False, UnresolvedBackendRefs,
    "Unresolved MeshOpenTelemetryBackend references: labels:k=v, ...".
When the object has no condition of that type, or one that differs in status, reason or
message (conditionEquals), the condition is replaced in place or appended
(updateConditions) and the whole object is PUT with the resourceVersion it was read with
(resManager.Update). Kuma converts the object through its own types on the way, so every
condition is written back as {type, status, reason, message} only. A 409 Conflict is
logged and retried in the next round ("will retry next interval").

--stats is rewritten after every round: {"rounds", "writes", "writesByObject",
"conflicts", "errors", "errorsByObject", "lastError", "lastRound"}; each write, conflict
and error is one JSON line in --log. (A status write leaves the spec unchanged, so a
validating webhook that checks only spec changes, as ours does, lets it through even for a
MeshMetric Kuma's validator rejects.)
"""
import argparse
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kube import Kube, write_json_atomic  # noqa: E402

COND = "BackendRefsResolved"
KEYS = ("type", "status", "reason", "message")


def backend_refs(mm):
    out = []
    for b in (((mm.get("spec") or {}).get("default") or {}).get("backends") or []):
        ref = (b.get("openTelemetry") or {}).get("backendRef")
        if ref is not None:
            out.append(ref)
    return out


def wanted_condition(mm):
    refs = backend_refs(mm)
    if not refs:
        return {"type": COND, "status": "True", "reason": "AllBackendRefsResolved",
                "message": "No MeshOpenTelemetryBackend references configured"}
    keys = sorted({"labels:" + ",".join("%s=%s" % (k, v) for k, v in sorted((r.get("labels") or {}).items()))
                   for r in refs})
    return {"type": COND, "status": "False", "reason": "UnresolvedBackendRefs",
            "message": "Unresolved MeshOpenTelemetryBackend references: " + ", ".join(keys)}


def condition_equals(conds, new):
    for c in conds:
        if c.get("type") == new["type"]:
            return all(c.get(k) == new[k] for k in ("status", "reason", "message"))
    return False


def update_conditions(conds, new):
    out = [{k: c[k] for k in KEYS if k in c} for c in conds]  # through Kuma's Condition type
    for i, c in enumerate(out):
        if c.get("type") == new["type"]:
            out[i] = dict(new)
            return out
    return out + [dict(new)]


class Writer:
    def __init__(self, kube, stats_path, log_path):
        self.k = kube
        self.stats_path, self.log_path = stats_path, log_path
        self.stats = {"rounds": 0, "writes": 0, "writesByObject": {}, "conflicts": 0, "errors": 0,
                      "errorsByObject": {}, "lastError": "", "lastRound": 0}

    def log(self, **kw):
        kw["time"] = time.time()
        if self.log_path:
            with open(self.log_path, "a") as f:
                f.write(json.dumps(kw, sort_keys=True) + "\n")

    def round(self):
        code, body = self.k.get("/apis/kuma.io/v1alpha1/meshmetrics")
        if code != 200:
            self.stats["errors"] += 1
            self.stats["lastError"] = "list: %s %s" % (code, str(body)[:200])
        else:
            for mm in body.get("items") or []:
                self.one(mm)
        self.stats["rounds"] += 1
        self.stats["lastRound"] = time.time()
        if self.stats_path:
            write_json_atomic(self.stats_path, self.stats)

    def one(self, mm):
        md = mm["metadata"]
        key = "%s/%s" % (md["namespace"], md["name"])
        conds = (mm.get("status") or {}).get("conditions") or []
        want = wanted_condition(mm)
        if condition_equals(conds, want):
            return
        mm.setdefault("status", {})["conditions"] = update_conditions(conds, want)
        code, body = self.k.request("PUT", "/apis/kuma.io/v1alpha1/namespaces/%s/meshmetrics/%s" % (md["namespace"], md["name"]), mm)
        if code == 200:
            self.stats["writes"] += 1
            self.stats["writesByObject"][key] = self.stats["writesByObject"].get(key, 0) + 1
            self.log(action="write", object=key, fromResourceVersion=md.get("resourceVersion"),
                     toResourceVersion=(body.get("metadata") or {}).get("resourceVersion"))
        elif code == 409:
            self.stats["conflicts"] += 1
            self.log(action="conflict", object=key)
        else:
            self.stats["errors"] += 1
            self.stats["errorsByObject"][key] = self.stats["errorsByObject"].get(key, 0) + 1
            self.stats["lastError"] = "put %s: %s %s" % (key, code, str(body)[:200])
            self.log(action="error", object=key, code=code, body=str(body)[:300])


def main():
    ap = argparse.ArgumentParser(description="stand-in for kuma-cp's MeshMetric status writer")
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--interval", type=float, default=2.0)
    ap.add_argument("--stats")
    ap.add_argument("--log")
    a = ap.parse_args()
    w = Writer(Kube(a.kubeconfig, "kuma-cp-status-standin"), a.stats, a.log)
    time.sleep(random.uniform(0, a.interval))
    while True:
        start = time.time()
        try:
            w.round()
        except Exception as e:
            w.stats["errors"] += 1
            w.stats["lastError"] = "%s: %s" % (type(e).__name__, e)
        time.sleep(max(0.0, a.interval - (time.time() - start)))


if __name__ == "__main__":
    sys.exit(main())
