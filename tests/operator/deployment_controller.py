#!/usr/bin/env python3
"""A stand-in for kube-controller-manager's Deployment and ReplicaSet controllers and for
the kubelet's pod status, for the operator test (the local API server runs no controllers).

    deployment_controller.py --kubeconfig K --namespaces shop[,other] [--interval 0.5]
                             [--stats FILE] [--log FILE]

Every --interval seconds, for each namespace:

  Deployments (apps/v1, built-in or served by a stand-in CRD): the ReplicaSet for the
  current pod template is <deploy>-<pod-template-hash> (fnv32a of the template, encoded
  with apimachinery's SafeEncodeString alphabet, as pkg/controller/controller_utils.go's
  ComputeHash does), created with an ownerReference to the Deployment (controller: true)
  and the template's labels plus pod-template-hash. It keeps spec.replicas pods of that
  ReplicaSet, created through the API server (so admission runs) with generateName
  "<rs>-" (names <deploy>-<hash>-<5 random>), the template's labels, annotations and spec,
  and an ownerReference to the ReplicaSet. When the template changes (say the
  kubectl.kubernetes.io/restartedAt annotation of `kubectl rollout restart`), a new
  ReplicaSet is made, its pods are created first, then the old ReplicaSets are scaled to 0
  and their pods deleted (a surge rollout without waiting for readiness).
  Orphans go the way the garbage collector would send them: ReplicaSets whose Deployment
  is gone and pods whose ReplicaSet is gone are deleted.

  kubelet: pods without status.podIP get phase Running, a unique podIP in 10.244.0.0/16,
  hostIP and the PodScheduled/Initialized/ContainersReady/Ready conditions (a merge patch
  of /status), so a pod counts as available; bare pods included.

--stats is rewritten after every pass: {"passes", "created", "deleted", "rollouts",
"statusSet", "errors", "lastError"}. Actions are logged one JSON line each to --log.
"""
import argparse
import copy
import datetime
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kube import Kube, items, write_json_atomic  # noqa: E402

ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand


def fnv32a(data):
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def template_hash(template):
    """ComputeHash: fnv32a of the template (here: its canonical JSON), then SafeEncodeString
    of the decimal value."""
    h = fnv32a(json.dumps(template, sort_keys=True, separators=(",", ":")).encode())
    return "".join(ALPHANUMS[ord(c) % len(ALPHANUMS)] for c in str(h))


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def owned_by(obj, uid):
    return any(o.get("uid") == uid and o.get("controller") for o in (obj["metadata"].get("ownerReferences") or []))


def controller_of(obj):
    for o in obj["metadata"].get("ownerReferences") or []:
        if o.get("controller"):
            return o
    return None


class Controller:
    def __init__(self, kube, namespaces, stats_path, log_path):
        self.k = kube
        self.namespaces = namespaces
        self.stats_path = stats_path
        self.log_path = log_path
        self.stats = {"passes": 0, "created": 0, "deleted": 0, "rollouts": 0, "statusSet": 0,
                      "errors": 0, "lastError": ""}
        self.ip_seq = 0

    def log(self, **kw):
        kw["time"] = time.time()
        if self.log_path:
            with open(self.log_path, "a") as f:
                f.write(json.dumps(kw, sort_keys=True) + "\n")

    def err(self, what, resp):
        self.stats["errors"] += 1
        self.stats["lastError"] = "%s: %s %s" % (what, resp[0], str(resp[1])[:300])
        self.log(action="error", what=what, code=resp[0], body=str(resp[1])[:300])

    def call(self, what, method, path, body=None, ctype="application/json", ok=(200, 201)):
        r = self.k.request(method, path, body, ctype)
        if r[0] not in ok:
            self.err(what, r)
            return None
        return r[1]

    def list(self, path):
        r = self.k.get(path)
        if r[0] != 200:
            self.err("list " + path, r)
            return None
        return items(r)

    def run_pass(self):
        for ns in self.namespaces:
            deps = self.list("/apis/apps/v1/namespaces/%s/deployments" % ns)
            rss = self.list("/apis/apps/v1/namespaces/%s/replicasets" % ns)
            pods = self.list("/api/v1/namespaces/%s/pods" % ns)
            if deps is None or rss is None or pods is None:
                continue
            self.kubelet(ns, pods)
            for d in deps:
                if not d["metadata"].get("deletionTimestamp"):
                    self.deployment(ns, d, rss, pods)
            self.collect_garbage(ns, deps, rss, pods)
        self.stats["passes"] += 1
        if self.stats_path:
            write_json_atomic(self.stats_path, self.stats)

    # ---- kubelet: make pods Running and Ready -------------------------------------------
    def kubelet(self, ns, pods):
        for p in pods:
            st = p.get("status") or {}
            if st.get("podIP") or p["metadata"].get("deletionTimestamp"):
                continue
            self.ip_seq += 1
            ip = "10.244.%d.%d" % ((self.ip_seq // 250) % 250, self.ip_seq % 250 + 2)
            t = now()
            conds = [{"type": c, "status": "True", "lastProbeTime": None, "lastTransitionTime": t}
                     for c in ("PodScheduled", "Initialized", "ContainersReady", "Ready")]
            spec = p.get("spec") or {}

            def running(c):
                return {"name": c.get("name"), "image": c.get("image", ""), "imageID": "", "containerID": "",
                        "ready": True, "started": True, "restartCount": 0, "state": {"running": {"startedAt": t}}}

            inits = []
            for c in spec.get("initContainers") or []:
                if c.get("restartPolicy") == "Always":  # a native sidecar keeps running
                    inits.append(running(c))
                else:
                    inits.append({"name": c.get("name"), "image": c.get("image", ""), "imageID": "", "containerID": "",
                                  "ready": True, "restartCount": 0,
                                  "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": t,
                                                           "finishedAt": t}}})
            patch = {"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "172.18.0.2",
                                "hostIPs": [{"ip": "172.18.0.2"}], "startTime": t, "conditions": conds,
                                "initContainerStatuses": inits,
                                "containerStatuses": [running(c) for c in spec.get("containers") or []]}}
            if self.call("pod status", "PATCH", "/api/v1/namespaces/%s/pods/%s/status" % (ns, p["metadata"]["name"]),
                         patch, "application/merge-patch+json") is not None:
                self.stats["statusSet"] += 1

    # ---- Deployment -> ReplicaSet -> Pods -----------------------------------------------
    def deployment(self, ns, d, rss, pods):
        dm = d["metadata"]
        spec = d.get("spec") or {}
        template = spec.get("template") or {}
        replicas = spec.get("replicas", 1)
        h = template_hash(template)
        rs_name = "%s-%s" % (dm["name"], h)
        mine = [rs for rs in rss if owned_by(rs, dm["uid"])]
        cur = next((rs for rs in mine if rs["metadata"]["name"] == rs_name), None)
        if cur is None:
            labels = dict((template.get("metadata") or {}).get("labels") or {})
            labels["pod-template-hash"] = h
            tpl = copy.deepcopy(template)
            tpl.setdefault("metadata", {})["labels"] = labels
            sel = copy.deepcopy(spec.get("selector") or {"matchLabels": {}})
            sel.setdefault("matchLabels", {})["pod-template-hash"] = h
            rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                  "metadata": {"name": rs_name, "namespace": ns, "labels": labels,
                               "annotations": {"deployment.kubernetes.io/revision": str(len(mine) + 1)},
                               "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": dm["name"],
                                                    "uid": dm["uid"], "controller": True, "blockOwnerDeletion": True}]},
                  "spec": {"replicas": replicas, "selector": sel, "template": tpl}}
            cur = self.call("create replicaset", "POST", "/apis/apps/v1/namespaces/%s/replicasets" % ns, rs)
            if cur is None:
                return
            if mine:
                self.stats["rollouts"] += 1
            self.log(action="create-replicaset", namespace=ns, name=rs_name, rollout=bool(mine))
        elif (cur.get("spec") or {}).get("replicas") != replicas:
            self.call("scale replicaset", "PATCH", "/apis/apps/v1/namespaces/%s/replicasets/%s" % (ns, rs_name),
                      {"spec": {"replicas": replicas}}, "application/merge-patch+json")
        live = [p for p in pods if owned_by(p, cur["metadata"]["uid"]) and not p["metadata"].get("deletionTimestamp")]
        for _ in range(replicas - len(live)):
            self.create_pod(ns, cur)
        for p in sorted(live, key=lambda p: p["metadata"]["name"])[replicas:]:
            self.delete_pod(ns, p, "scale down")
        # old ReplicaSets: scale to 0, delete their pods once the new ones exist
        if len(live) < replicas:
            return
        for rs in mine:
            if rs["metadata"]["uid"] == cur["metadata"]["uid"]:
                continue
            if (rs.get("spec") or {}).get("replicas", 0) != 0:
                self.call("scale down old replicaset", "PATCH",
                          "/apis/apps/v1/namespaces/%s/replicasets/%s" % (ns, rs["metadata"]["name"]),
                          {"spec": {"replicas": 0}}, "application/merge-patch+json")
            for p in pods:
                if owned_by(p, rs["metadata"]["uid"]) and not p["metadata"].get("deletionTimestamp"):
                    self.delete_pod(ns, p, "rollout")

    def create_pod(self, ns, rs):
        tpl = (rs.get("spec") or {}).get("template") or {}
        tm = tpl.get("metadata") or {}
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"generateName": rs["metadata"]["name"] + "-", "namespace": ns,
                            "labels": copy.deepcopy(tm.get("labels") or {}),
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                 "name": rs["metadata"]["name"], "uid": rs["metadata"]["uid"],
                                                 "controller": True, "blockOwnerDeletion": True}]},
               "spec": copy.deepcopy(tpl.get("spec") or {})}
        if tm.get("annotations"):
            pod["metadata"]["annotations"] = copy.deepcopy(tm["annotations"])
        out = self.call("create pod", "POST", "/api/v1/namespaces/%s/pods" % ns, pod)
        if out is not None:
            self.stats["created"] += 1
            self.log(action="create-pod", namespace=ns, name=out["metadata"]["name"], replicaset=rs["metadata"]["name"])

    def delete_pod(self, ns, p, why):
        name = p["metadata"]["name"]
        if self.call("delete pod", "DELETE", "/api/v1/namespaces/%s/pods/%s" % (ns, name),
                     {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
                     ok=(200, 202, 404)) is not None:
            self.stats["deleted"] += 1
            self.log(action="delete-pod", namespace=ns, name=name, why=why)

    def collect_garbage(self, ns, deps, rss, pods):
        dep_uids = {d["metadata"]["uid"] for d in deps}
        rs_uids = {rs["metadata"]["uid"] for rs in rss}
        for rs in rss:
            o = controller_of(rs)
            if o and o.get("kind") == "Deployment" and o.get("uid") not in dep_uids:
                self.call("gc replicaset", "DELETE", "/apis/apps/v1/namespaces/%s/replicasets/%s" % (ns, rs["metadata"]["name"]),
                          ok=(200, 202, 404))
                self.log(action="gc-replicaset", namespace=ns, name=rs["metadata"]["name"])
        for p in pods:
            o = controller_of(p)
            if o and o.get("kind") == "ReplicaSet" and o.get("uid") not in rs_uids and \
                    not p["metadata"].get("deletionTimestamp"):
                self.delete_pod(ns, p, "orphan")


def main():
    ap = argparse.ArgumentParser(description="stand-in Deployment/ReplicaSet controller and kubelet status")
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--namespaces", default="shop")
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--stats")
    ap.add_argument("--log")
    ap.add_argument("--once", action="store_true", help="one pass, then exit")
    a = ap.parse_args()
    c = Controller(Kube(a.kubeconfig, "deployment-controller-standin"), a.namespaces.split(","), a.stats, a.log)
    while True:
        try:
            c.run_pass()
        except Exception as e:  # keep running through anything the API server throws at us
            c.err("pass", (0, "%s: %s" % (type(e).__name__, e)))
        if a.once:
            return 0
        time.sleep(a.interval)


if __name__ == "__main__":
    sys.exit(main())
