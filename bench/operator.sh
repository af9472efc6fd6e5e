#!/usr/bin/env bash
# The operator's informer caches at 1k, 5k and 10k meshed pods (bench/operator_bench.c) against
# the local API server (tests/apiserver), with 100 MeshMetrics of varied targetRefs, a Mesh,
# 10 namespaces with Services and ReplicaSets, and 10% of pods without a kuma-sidecar.
#
# For each size it runs `operator_bench sync` in a fresh process and prints: time until the
# caches are synced and the policy view is ready, RSS after sync, peak RSS, RSS per cached pod
# (RSS after sync minus the same program's RSS with no pods at all, measured first in the same
# run, divided by the cached pods), CPU seconds (user+sys) and CPU per pod. The baseline is the
# same program keeping whole jansson trees for pods (--full): the ratio is full / compact.
# Targets: < 2 KB RSS per cached pod; CPU per pod flat from 1k to 10k (linear).
#
#   bench/operator.sh                  # MM_BUILD_DIR=build by default
#   MM_BUILD_DIR=build-cache bench/operator.sh
#   bench/operator.sh --keep           # leave the server (10k pods) running for profiling;
#                                      # prints its kubeconfig; stop it with hack/cluster.sh down
set -euo pipefail
KEEP=0
[ "${1:-}" = --keep ] && KEEP=1
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${MM_BUILD_DIR:-build}
[ -d "$BUILD" ] || cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target operator_bench -- --no-print-directory >/dev/null
BENCH=$ROOT/$BUILD/operator_bench

export MM_LOCAL_DIR=${MM_LOCAL_DIR:-$(mktemp -d)}
WORK=$(mktemp -d)
cleanup() {
  if [ "$KEEP" = 1 ]; then
    echo "server kept: MM_LOCAL_DIR=$MM_LOCAL_DIR KUBECONFIG=$MM_LOCAL_DIR/kubeconfig" >&2
  else
    hack/cluster.sh down >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
eval "$(hack/cluster.sh up 2>/dev/null)"
KCFG=$MM_LOCAL_DIR/kubeconfig
PORT=$(cat "$MM_LOCAL_DIR/apiserver.port")
TOKEN=$(cat "$MM_LOCAL_DIR/token")
KUBECTL=${KUBECTL:-$(dirname "$(readlink -f "$(command -v kubectl)")")/kubectl.1.32}
export HOME=$WORK # kubectl's discovery cache is per host:port
k() { "$KUBECTL" --kubeconfig "$KCFG" "$@" </dev/null; }
api() { # api METHOD PATH [BODY-FILE]
  curl -sS --fail-with-body --cacert "$MM_LOCAL_DIR/pki/ca.crt" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -X "$1" ${3:+--data-binary @"$3"} "https://127.0.0.1:$PORT$2"
}

# ---- cluster contents ------------------------------------------------------------------------
# The local server serves neither apps/v1 nor batch/v1: ReplicaSets and Jobs are served through
# CRDs of the same group, version and plural (the caches only read their metadata).
python3 - "$WORK" "$ROOT" <<'EOF'
import copy, json, sys
work, root = sys.argv[1], sys.argv[2]
def crd(group, plural, kind, scope="Namespaced"):
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "%s.%s" % (plural, group)},
            "spec": {"group": group, "scope": scope,
                     "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "listKind": kind + "List"},
                     "versions": [{"name": "v1" if group in ("apps", "batch") else "v1alpha1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}
docs = [crd("apps", "replicasets", "ReplicaSet"), crd("batch", "jobs", "Job"), crd("kuma.io", "dataplanes", "Dataplane")]
import os
os.makedirs(work + "/crds", exist_ok=True)
for d in docs:
    json.dump(d, open("%s/crds/%s.json" % (work, d["metadata"]["name"]), "w"))

NS = ["bench-%d" % i for i in range(10)]
objs = {"namespaces": [{"metadata": {"name": n, "labels": {"kuma.io/sidecar-injection": "enabled"}}} for n in NS + ["kuma-system"]]}
objs["services"] = {n: [{"metadata": {"name": "app-%d" % a, "namespace": n, "labels": {"app": "app-%d" % a}},
                         "spec": {"selector": {"app.kubernetes.io/name": "app-%d" % a},
                                  "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
                                            {"name": "metrics", "port": 9102, "targetPort": 9102}]}} for a in range(10)] for n in NS}
objs["replicasets"] = {n: [{"metadata": {"name": "app-%d-7d9f8c6b5d" % a, "namespace": n, "labels": {"app.kubernetes.io/name": "app-%d" % a},
                                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "app-%d" % a,
                                                              "uid": "d-%s-%d" % (n, a), "controller": True}]},
                            "spec": {"replicas": 3}} for a in range(10)] for n in NS}
kinds = ["Mesh", "MeshSubset", "MeshService", "Dataplane", "MeshServiceSubset"]
mms = []
for i in range(100):
    kind = kinds[i % 5]
    ns = "kuma-system" if i % 3 == 0 else NS[i % 10]
    tr = {"kind": kind}
    if kind == "MeshSubset":
        tr["tags"] = {"team": "payments" if i % 2 else "x"}
    elif kind == "MeshService":
        tr["name"] = "app-%d_%s_svc_80" % (i % 10, NS[i % 10])
    elif kind == "MeshServiceSubset":
        tr["name"] = "app-%d_%s_svc_80" % (i % 10, NS[i % 10]); tr["tags"] = {"team": "payments"}
    elif kind == "Dataplane":
        tr["labels"] = {"app.kubernetes.io/name": "app-%d" % (i % 10)}
    mms.append({"apiVersion": "kuma.io/v1alpha1", "kind": "MeshMetric",
                "metadata": {"name": "policy-%03d" % i, "namespace": ns, "labels": {"kuma.io/mesh": "default"}},
                "spec": {"targetRef": tr, "default": {
                    "sidecar": {"profiles": {"appendProfiles": [{"name": "Basic" if i % 2 else "All"}]}, "includeUnused": bool(i % 2)},
                    "applications": [{"name": "app", "port": 9000 + i}],
                    "backends": [{"type": "Prometheus", "prometheus": {"port": 5670 + i % 4, "path": "/metrics"}}]}}})
objs["meshmetrics"] = mms
objs["meshes"] = [{"apiVersion": "kuma.io/v1alpha1", "kind": "Mesh", "metadata": {"name": "default"}, "spec": {}}]
json.dump(objs, open(work + "/objects.json", "w"))

# A meshed pod as a real cluster stores it: the project's reference pod (Kuma's sidecar
# injected) plus Kuma's annotations, managedFields and a running pod's status.
review = json.load(open(root + "/tests/data/admission/kuma-pod.json"))
pod = copy.deepcopy(review["request"]["object"])
md = pod["metadata"]
for k in ("generateName", "creationTimestamp", "uid"):
    md.pop(k, None)
md["annotations"].update({
    "kuma.io/envoy-admin-port": "9901", "kuma.io/mesh": "default", "kuma.io/sidecar-injected": "true",
    "kuma.io/sidecar-uid": "5678", "kuma.io/transparent-proxying": "enabled",
    "kuma.io/transparent-proxying-inbound-port": "15006", "kuma.io/transparent-proxying-outbound-port": "15001",
    "kuma.io/transparent-proxying-ip-family-mode": "dualstack", "kuma.io/virtual-probes": "enabled",
    "kuma.io/virtual-probes-port": "9000", "kuma.io/application-probe-proxy-port": "9000",
    "kubectl.kubernetes.io/default-container": "app",
    "prometheus.metrics.kuma.io/port": "5670",
    "meshmetric.kuma.io/config-hash": "sha256:4f9a1c2b3d4e5f60",
    "meshmetric.kuma.io/config": "backends: Prometheus:5670/metrics; sidecar: Basic"})
def fields(keys):
    return {"f:" + k: {} for k in keys}
md["managedFields"] = [
    {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1", "time": "2025-06-01T10:00:00Z",
     "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:generateName": {}, "f:labels": fields(md["labels"]),
                                                           "f:ownerReferences": {"k:{\"uid\":\"6b1c8f1e-2f7a-4f0a-9a43-0d6d5c3e2b17\"}": {}}},
                                            "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": fields(["args", "image", "imagePullPolicy", "name", "ports", "resources", "securityContext", "volumeMounts"])},
                                                       "f:volumes": {"k:{\"name\":\"config\"}": fields(["configMap", "name"])}}}},
    {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": "2025-06-01T10:00:09Z", "subresource": "status",
     "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:conditions": {"k:{\"type\":\"%s\"}" % t: fields(["lastProbeTime", "lastTransitionTime", "status", "type"])
                                                                          for t in ("ContainersReady", "Initialized", "PodReadyToStartContainers", "PodScheduled", "Ready")},
                                                         "f:containerStatuses": {}, "f:hostIP": {}, "f:phase": {}, "f:podIP": {}, "f:podIPs": {}, "f:startTime": {}}}}]
pod["spec"]["nodeName"] = "node-3"
pod["status"] = {"phase": "Running", "hostIP": "10.0.3.7", "hostIPs": [{"ip": "10.0.3.7"}], "podIP": "10.244.3.17",
                 "podIPs": [{"ip": "10.244.3.17"}], "startTime": "2025-06-01T10:00:01Z", "qosClass": "Burstable",
                 "conditions": [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": "2025-06-01T10:00:0%dZ" % i}
                                for i, t in enumerate(("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"))],
                 "containerStatuses": [{"name": c["name"], "ready": True, "restartCount": 0, "started": True, "image": c["image"],
                                        "imageID": "docker.io/library/x@sha256:" + "ab" * 32,
                                        "containerID": "containerd://" + "cd" * 32,
                                        "state": {"running": {"startedAt": "2025-06-01T10:00:05Z"}}} for c in pod["spec"]["containers"]]}
plain = copy.deepcopy(pod)
plain["spec"]["containers"] = [c for c in plain["spec"]["containers"] if c["name"] != "kuma-sidecar"]
json.dump({"meshed": pod, "plain": plain}, open(work + "/pods.json", "w"))

# The same objects as one List for the CLI, which computes what the webhook would have recorded
# on each pod shape (an app of a namespace): pods start in sync, as in a cluster where the
# webhook admitted them.
items = [dict(n, apiVersion="v1", kind="Namespace") for n in objs["namespaces"]]
for n in NS:
    items += [dict(s, apiVersion="v1", kind="Service") for s in objs["services"][n]]
    items += [dict(r, apiVersion="apps/v1", kind="ReplicaSet") for r in objs["replicasets"][n]]
items += objs["meshmetrics"] + objs["meshes"]
json.dump({"apiVersion": "v1", "kind": "List", "items": items}, open(work + "/cluster.json", "w"))
for i, n in enumerate(NS):
    for a in range(10):
        p = copy.deepcopy(pod)
        p["metadata"]["name"] = "app-%d-shape" % a
        p["metadata"]["namespace"] = n
        p["metadata"]["labels"]["app.kubernetes.io/name"] = "app-%d" % a
        p["metadata"]["labels"]["pod-template-hash"] = "7d9f8c6b5d"
        p["metadata"]["ownerReferences"][0]["name"] = "app-%d-7d9f8c6b5d" % a
        for k in ("meshmetric.kuma.io/config-hash", "meshmetric.kuma.io/config"):
            p["metadata"]["annotations"].pop(k)
        json.dump(p, open("%s/shape-%d-%d.json" % (work, i, a), "w"))
print("reference pod: %d bytes of JSON" % len(json.dumps(pod)), file=sys.stderr)
EOF

for i in $(seq 0 9); do
  for a in $(seq 0 9); do
    printf '%s %s ' "$i" "$a"
    "$ROOT/$BUILD/meshmetric-operator" explain -f "$WORK/shape-$i-$a.json" -p "$WORK/cluster.json" -o json 2>/dev/null |
      python3 -c 'import json, sys
ann = {o["path"].rsplit("~1", 1)[1]: o["value"] for o in json.load(sys.stdin)["patch"] if "meshmetric.kuma.io~1config" in o["path"]}
print(json.dumps([ann["config-hash"], ann["config"]]))'
  done
done >"$WORK/shapes.txt"
[ "$(wc -l <"$WORK/shapes.txt")" = 100 ] || { echo "bench/operator.sh: could not compute the pods' config" >&2; exit 1; }

k apply -f "$ROOT/crds/meshmetrics.kuma.io.yaml" -f "$ROOT/crds/meshes.kuma.io.yaml" -f "$WORK/crds" >/dev/null
bulk() { # bulk GROUP VERSION RESOURCE NAMESPACE JSON-OBJECTS-FILE
  python3 -c 'import json, sys; print(json.dumps({"group": sys.argv[1], "version": sys.argv[2], "resource": sys.argv[3], "namespace": sys.argv[4], "objects": json.load(open(sys.argv[5]))}))' \
    "$@" >"$WORK/bulk.json"
  api POST /_control/bulk "$WORK/bulk.json" >/dev/null
}
jq_py() { python3 -c "import json, sys; json.dump(eval(sys.argv[1], {'d': json.load(open(sys.argv[2]))}), open(sys.argv[3], 'w'))" "$@"; }
jq_py 'd["namespaces"]' "$WORK/objects.json" "$WORK/o.json"; bulk "" v1 namespaces "" "$WORK/o.json"
for i in $(seq 0 9); do
  jq_py "d['services']['bench-$i']" "$WORK/objects.json" "$WORK/o.json"; bulk "" v1 services "bench-$i" "$WORK/o.json"
  jq_py "d['replicasets']['bench-$i']" "$WORK/objects.json" "$WORK/o.json"; bulk apps v1 replicasets "bench-$i" "$WORK/o.json"
done
jq_py 'd["meshmetrics"]' "$WORK/objects.json" "$WORK/o.json"; bulk kuma.io v1alpha1 meshmetrics kuma-system "$WORK/o.json"
jq_py 'd["meshes"]' "$WORK/objects.json" "$WORK/o.json"; bulk kuma.io v1alpha1 meshes "" "$WORK/o.json"

# add_pods PREFIX MESHED-PER-NS PLAIN-PER-NS: bulk-create pods in each of the 10 namespaces
add_pods() {
  local prefix=$1 meshed=$2 plain=$3 i
  for i in $(seq 0 9); do
    python3 - "$WORK/pods.json" "$prefix" "$meshed" "$plain" "$i" "$WORK/shapes.txt" >"$WORK/bulk.json" <<'EOF'
import json, sys
pods = json.load(open(sys.argv[1]))
prefix, meshed, plain, i = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
shapes = {}
for line in open(sys.argv[6]):
    ns, app, rec = line.split(" ", 2)
    shapes[(int(ns), int(app))] = json.loads(rec)
out = []
for kind, n in (("meshed", meshed), ("plain", plain)):
    for j in range(n):
        p = json.loads(json.dumps(pods[kind]))
        app = "app-%d" % (j % 10)
        p["metadata"]["name"] = "%s-%s-%s-%05d" % (app, prefix, kind, j)
        p["metadata"]["namespace"] = "bench-%d" % i
        p["metadata"]["labels"]["app.kubernetes.io/name"] = app
        p["metadata"]["labels"]["pod-template-hash"] = "7d9f8c6b5d"
        p["metadata"]["ownerReferences"][0]["name"] = "%s-7d9f8c6b5d" % app
        p["status"]["podIP"] = "10.%d.%d.%d" % (i, j // 250, j % 250)
        if kind == "meshed": # what the webhook recorded at admission
            h, summary = shapes[(i, j % 10)]
            p["metadata"]["annotations"]["meshmetric.kuma.io/config-hash"] = h
            p["metadata"]["annotations"]["meshmetric.kuma.io/config"] = summary
        out.append(p)
print(json.dumps({"resource": "pods", "namespace": "bench-%d" % i, "objects": out}))
EOF
    api POST /_control/bulk "$WORK/bulk.json" >/dev/null
  done
}

run() { # run MODE-ARGS... -> one JSON line
  "$BENCH" sync --kubeconfig "$KCFG" "$@"
}

echo "operator caches: $(nproc) CPUs, $(uname -m); RSS from /proc/self/status, CPU from /proc/self/stat"
run >"$WORK/empty.json"
run --full >"$WORK/empty-full.json"
printf '%s\n' "$(cat "$WORK/empty.json")" >&2

total=0
for size in 1000 5000 10000; do
  add=$(((size - total) / 10))
  add_pods "p$size" "$add" $((add / 9))
  total=$size
  run >"$WORK/compact-$size.json"
  run >"$WORK/compact2-$size.json"
  run --full >"$WORK/full-$size.json"
  "$BENCH" converge --kubeconfig "$KCFG" >"$WORK/converge-$size.json"
done

python3 - "$WORK" <<'EOF'
import json, sys
w = sys.argv[1]
load = lambda n: json.load(open("%s/%s.json" % (w, n)))
empty, empty_full = load("empty"), load("empty-full")
print("baseline (no pods): RSS %.1f MB, view: %d MeshMetrics, %d Meshes, %d Services, %d owners; synced in %.2f s; "
      "a view build takes %.1f ms" % (
    empty["rss_synced_kb"] / 1024, empty["view"]["meshmetrics"], empty["view"]["meshes"], empty["view"]["services"],
    empty["view"]["owners"], empty["ready_s"], empty["view_build_ms"]))
print("%7s %8s %8s %9s %9s %10s %10s %8s %8s %9s %9s" % ("pods", "skipped", "sync_s", "rss_MB", "peak_MB", "KB/pod",
                                                         "full_KB/p", "full/cmp", "cpu_s", "cpu_us/p", "full_cpu"))
for size in (1000, 5000, 10000):
    a, b, f = load("compact-%d" % size), load("compact2-%d" % size), load("full-%d" % size)
    c = a if a["rss_synced_kb"] <= b["rss_synced_kb"] else b   # the lower of two runs
    pods = c["stores"]["pods"]["objects"]
    assert pods == size and f["stores"]["pods"]["objects"] == size, (pods, size)
    per = (c["rss_synced_kb"] - empty["rss_synced_kb"]) / pods
    per_full = (f["rss_synced_kb"] - empty_full["rss_synced_kb"]) / pods
    cpu = min(a["cpu_s"], b["cpu_s"])
    print("%7d %8d %8.2f %9.1f %9.1f %10.2f %10.2f %8.1f %8.2f %9.0f %9.2f" % (
        pods, c["stores"]["pods"]["skipped"], c["ready_s"], c["rss_synced_kb"] / 1024, c["hwm_kb"] / 1024, per,
        per_full, per_full / per if per > 0 else 0, cpu, (cpu - empty["cpu_s"]) / pods * 1e6, f["cpu_s"]))
print("store bytes per pod (entry + packed pod, without malloc overhead): %.0f" % (
    load("compact-10000")["stores"]["pods"]["bytes"] / 10000))
print()
print("reconcilers (caches + view + reconcilers, one process, the leader): start, then a mesh-wide")
print("MeshMetric's appendProfiles change, which puts every pod out of sync (initial: from start until")
print("every pod is evaluated and every status written; converge: from the change until every status")
print("counts no in-sync dataplane and the queues are empty; ratio: converge / initial, same run)")
print("%7s %8s %10s %11s %8s %12s %11s %9s %8s" % ("pods", "ready_s", "initial_s", "converge_s", "ratio",
                                                   "pods_evald", "out_of_sync", "writes", "cpu_s"))
for size in (1000, 5000, 10000):
    c = load("converge-%d" % size)
    assert c["converged"], c
    print("%7d %8.2f %10.2f %11.2f %8.2f %12d %11d %9d %8.2f" % (
        c["pods"], c["ready_s"], c["initial_s"], c["converge_s"], c["converge_s"] / c["initial_s"],
        c["pod_reconciles_change"], c["out_of_sync"], c["status_writes_change"], c["cpu_s"]))
print("target: converged < 10 s after a change at 10k pods")
EOF
