#!/usr/bin/env bash
# End-to-end test of the operator's informer caches and live policy view
# (src/operator/cache.c, policycache.c) against the local API server
# (tests/apiserver) and its fault injection: `operator_bench watch` runs every
# cache and the policy view and writes what they hold to a state file; after
# each step the caches must converge to the server's objects (every kind:
# same keys, same resourceVersions; pods only with a kuma-sidecar), compared
# with the server's own lists:
#   - the first sync, then creates, updates and deletes;
#   - every watch closed, then changes;
#   - forced 410s (expired watches, compacted history), then changes;
#   - a period of 500s on every list and watch, with changes meanwhile;
#   - the API server restarted with its state kept, and with its state lost
#     (the Kuma, apps and batch kinds disappear with their CRDs, then come back);
#   - the view: its generation advances when a MeshMetric changes, invalid
#     MeshMetrics and Meshes are left out and listed, fixing one brings it in.
# The local server serves neither apps/v1 nor batch/v1: ReplicaSets and Jobs
# are served through CRDs of the same group, version and plural.
#
# Usage: tests/e2e/caches_test.sh BUILD_DIR
# Prints "N passed, M failed" last; exits non-zero on any failure.
set -u

BUILD=$(cd "${1:-build}" && pwd) || exit 2
BENCH=$BUILD/operator_bench
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
[ -x "$BENCH" ] || { echo "missing $BENCH (cmake --build $BUILD --target operator_bench)"; echo "0 passed, 1 failed"; exit 1; }
KUBECTL=${KUBECTL:-$(dirname "$(readlink -f "$(command -v kubectl)")")/kubectl.1.32}

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   - $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $1"; [ $# -gt 1 ] && echo "$2" | sed 's/^/       /'; return 0; }

WORK=$(mktemp -d)
export MM_LOCAL_DIR=$WORK/local
export HOME=$WORK # kubectl's discovery cache is per host:port
WATCH_PID=
cleanup() {
    [ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null && wait "$WATCH_PID" 2>/dev/null
    (cd "$ROOT" && hack/cluster.sh down >/dev/null 2>&1)
    rm -rf "$WORK"
}
trap cleanup EXIT
(cd "$ROOT" && hack/cluster.sh up >/dev/null 2>"$WORK/up.log") || { cat "$WORK/up.log"; echo "0 passed, 1 failed"; exit 1; }
KCFG=$MM_LOCAL_DIR/kubeconfig
k() { "$KUBECTL" --kubeconfig "$KCFG" "$@" </dev/null; }
ka() { "$KUBECTL" --kubeconfig "$KCFG" apply -f - >/dev/null; } # apply stdin
control() { # control WHAT [JSON]
    curl -sS --fail-with-body --max-time 30 --cacert "$MM_LOCAL_DIR/pki/ca.crt" \
        -H "Authorization: Bearer $(cat "$MM_LOCAL_DIR/token")" -H 'Content-Type: application/json' \
        -d "${2:-{\}}" "https://127.0.0.1:$(cat "$MM_LOCAL_DIR/apiserver.port")/_control/$1" >/dev/null
}

# ---- the comparison ------------------------------------------------------------------------
cat >"$WORK/check.py" <<'EOF'
"""check.py STATE LOCALDIR [--kinds a,b] [--timeout S] [--min-generation N] [--policy ID]...
[--no-policy ID]... [--rejected ID]... [--min-relists KIND=N]...: wait until the caches' state
equals the server's lists (and the other conditions hold); print the differences otherwise."""
import json, os, ssl, sys, time, urllib.error, urllib.request

PATHS = {"meshmetrics": "/apis/kuma.io/v1alpha1/meshmetrics", "meshes": "/apis/kuma.io/v1alpha1/meshes",
         "namespaces": "/api/v1/namespaces", "services": "/api/v1/services", "pods": "/api/v1/pods",
         "replicasets": "/apis/apps/v1/replicasets", "jobs": "/apis/batch/v1/jobs",
         "dataplanes": "/apis/kuma.io/v1alpha1/dataplanes"}
CLUSTER = {"meshes", "namespaces"}
state_file, local = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
opt = {"kinds": ",".join(PATHS), "timeout": "30"}
multi = {"policy": [], "no-policy": [], "rejected": [], "min-relists": []}
while args:
    key, val = args[0][2:], args[1]
    args = args[2:]
    if key in multi:
        multi[key].append(val)
    else:
        opt[key] = val
ctx = ssl.create_default_context(cafile=os.path.join(local, "pki/ca.crt"))
token = open(os.path.join(local, "token")).read().strip()
port = open(os.path.join(local, "apiserver.port")).read().strip()

def server(kind):
    req = urllib.request.Request("https://127.0.0.1:%s%s" % (port, PATHS[kind]), headers={"Authorization": "Bearer " + token})
    try:
        items = json.load(urllib.request.urlopen(req, context=ctx, timeout=10))["items"]
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return {}
        raise
    out = {}
    for o in items:
        md = o["metadata"]
        if kind == "pods":
            spec = o.get("spec") or {}
            if not any(c.get("name") == "kuma-sidecar" for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])):
                continue
        key = md["name"] if kind in CLUSTER else "%s/%s" % (md.get("namespace", ""), md["name"])
        out[key] = md.get("resourceVersion", "")
    return out

def problems():
    try:
        st = json.load(open(state_file))
    except (OSError, ValueError) as e:
        return ["no state yet: %s" % e]
    out = []
    if not st.get("ready"):
        out.append("the policy view is not ready")
    for kind in opt["kinds"].split(","):
        try:
            want = server(kind)
        except Exception as e:  # the server restarting
            return ["cannot list %s: %s" % (kind, e)]
        got = st["stores"][kind]["objects"]
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        stale = sorted(k for k in set(want) & set(got) if want[k] != got[k])
        if missing or extra or stale:
            out.append("%s: %d cached, %d on the server; missing %s; extra %s; stale %s" % (
                kind, len(got), len(want), missing[:5], extra[:5], ["%s %s!=%s" % (k, got[k], want[k]) for k in stale[:5]]))
    if "min-generation" in opt and st["generation"] < int(opt["min-generation"]):
        out.append("view generation %d, want at least %s" % (st["generation"], opt["min-generation"]))
    for p in multi["policy"]:
        if p not in st["policies"]:
            out.append("policy %s not in the view %s" % (p, st["policies"]))
    for p in multi["no-policy"]:
        if p in st["policies"]:
            out.append("policy %s in the view" % p)
    rejected = {r["id"]: r["errors"] for r in st["rejections"]}
    for p in multi["rejected"]:
        if p not in rejected:
            out.append("%s not listed as rejected (rejections: %s)" % (p, rejected))
    for p in multi["min-relists"]:
        kind, n = p.split("=")
        if st["reflectors"][kind]["lists"] < int(n):
            out.append("%s: %d lists, want at least %s" % (kind, st["reflectors"][kind]["lists"], n))
    return out

deadline = time.time() + float(opt["timeout"])
while True:
    p = problems()
    if not p:
        st = json.load(open(state_file))
        print("generation %d, %s" % (st["generation"], ", ".join("%s %d" % (k, len(v["objects"])) for k, v in sorted(st["stores"].items()))))
        sys.exit(0)
    if time.time() > deadline:
        print("\n".join(p))
        sys.exit(1)
    time.sleep(0.2)
EOF
# converge NAME [check.py options]
converge() {
    local name=$1 out
    shift
    if out=$(python3 "$WORK/check.py" "$WORK/state.json" "$MM_LOCAL_DIR" "$@" 2>&1); then
        ok "$name ($out)"
    else
        bad "$name" "$out"
    fi
}
state() { python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$WORK/state.json" "$1"; }

# ---- objects ---------------------------------------------------------------------------------
crds() {
    python3 - "$WORK/crds" <<'EOF'
import json, os, sys
os.makedirs(sys.argv[1], exist_ok=True)
for group, version, plural, kind in (("apps", "v1", "replicasets", "ReplicaSet"), ("batch", "v1", "jobs", "Job"),
                                     ("kuma.io", "v1alpha1", "dataplanes", "Dataplane")):
    json.dump({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
               "metadata": {"name": "%s.%s" % (plural, group)},
               "spec": {"group": group, "scope": "Namespaced",
                        "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "listKind": kind + "List"},
                        "versions": [{"name": version, "served": True, "storage": True,
                                      "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}},
              open("%s/%s.json" % (sys.argv[1], plural), "w"))
EOF
    k apply -f "$ROOT/crds/meshmetrics.kuma.io.yaml" -f "$ROOT/crds/meshes.kuma.io.yaml" -f "$WORK/crds" >/dev/null &&
        for i in $(seq 1 50); do k get dataplanes.kuma.io >/dev/null 2>&1 && k get jobs.batch >/dev/null 2>&1 && return 0; sleep 0.1; done
}

mm() { # mm NAME NAMESPACE PORT -> a MeshMetric
    printf 'apiVersion: kuma.io/v1alpha1\nkind: MeshMetric\nmetadata: {name: %s, namespace: %s}\nspec:\n  targetRef: {kind: Mesh}\n  default:\n    backends: [{type: Prometheus, prometheus: {port: %s}}]\n---\n' "$1" "$2" "$3"
}

pod() { # pod NAME NAMESPACE APP SIDECAR(yes|no)
    local sidecar=""
    [ "$4" = yes ] && sidecar=", {name: kuma-sidecar, image: kuma-dp}"
    printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: %s\n  labels: {app: %s}\n  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: %s-5f7b9, uid: rs-%s, controller: true}]\nspec:\n  containers: [{name: app, image: web, ports: [{name: http, containerPort: 8080}]}%s]\n---\n' "$1" "$2" "$3" "$3" "$3" "$sidecar"
}

objects() { # every object of the test, as YAML
    for ns in shop pay; do printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: %s, labels: {kuma.io/sidecar-injection: enabled}}\n---\n' "$ns"; done
    printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: kuma-system}\n---\n'
    for ns in shop pay; do
        for app in web api; do
            printf 'apiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: %s}\nspec: {selector: {app: %s}, ports: [{port: 80, targetPort: http}]}\n---\n' "$app" "$ns" "$app"
            printf 'apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: %s-5f7b9\n  namespace: %s\n  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: %s, uid: d-%s, controller: true}]\nspec: {replicas: 3}\n---\n' "$app" "$ns" "$app" "$app"
            for i in 1 2 3; do pod "$app-5f7b9-m$i" "$ns" "$app" yes; done
            pod "$app-5f7b9-plain" "$ns" "$app" no
        done
        printf 'apiVersion: batch/v1\nkind: Job\nmetadata: {name: migrate, namespace: %s}\nspec: {}\n---\n' "$ns"
        printf 'apiVersion: kuma.io/v1alpha1\nkind: Dataplane\nmesh: default\nmetadata: {name: web-5f7b9-m1, namespace: %s}\nspec: {networking: {address: 10.0.0.1}}\n---\n' "$ns"
    done
    printf 'apiVersion: kuma.io/v1alpha1\nkind: Mesh\nmetadata: {name: default}\nspec: {}\n---\n'
    mm base kuma-system 5670
    mm shop-metrics shop 5671
    mm broken pay 0 # Kuma rejects port 0
}

# ---- run -------------------------------------------------------------------------------------
if crds && objects >"$WORK/objects.yaml" && k apply -f "$WORK/objects.yaml" >"$WORK/apply.log" 2>&1; then
    ok "CRDs and objects created ($(grep -c . "$WORK/apply.log") objects)"
else
    bad "CRDs and objects created" "$(tail -5 "$WORK/apply.log" 2>/dev/null)"
fi
"$BENCH" watch --kubeconfig "$KCFG" --state "$WORK/state.json" --interval-ms 100 --backoff-max-ms 1000 \
    2>"$WORK/watch.log" &
WATCH_PID=$!

converge "first sync: every cache equals the server" --policy kuma-system/base --policy shop/shop-metrics \
    --policy Mesh/default --no-policy pay/broken --rejected pay/broken

# changes through the watches
g=$(state 'd["generation"]')
k delete pod -n shop web-5f7b9-m2 >/dev/null
pod web-5f7b9-m4 shop web yes | ka
k label pod -n pay api-5f7b9-m1 team=payments >/dev/null
k label namespace shop team=shop >/dev/null
ka <<<"$(mm shop-metrics shop 5690)"
converge "creates, updates and deletes arrive through the watches; a MeshMetric change makes a new view" \
    --min-generation $((g + 1))
ka <<<"$(mm broken pay 5699)"
converge "fixing an invalid MeshMetric brings it into the view" --policy pay/broken
ka <<<"$(mm broken pay 70000)"
converge "breaking it again leaves it out and lists it" --no-policy pay/broken --rejected pay/broken
ka <<'EOF'
apiVersion: kuma.io/v1alpha1
kind: Mesh
metadata: {name: legacy}
spec: {metrics: {enabledBackend: nope, backends: [{name: prom, type: prometheus}]}}
EOF
converge "an invalid Mesh is left out and listed" --policy Mesh/default --rejected Mesh/legacy
k delete mesh.kuma.io legacy >/dev/null

# every watch closed
control close-watches
k delete pod -n pay api-5f7b9-m3 >/dev/null
pod api-5f7b9-m5 pay api yes | ka
k delete service -n pay web >/dev/null
converge "every watch closed: the reflectors watch again and miss nothing"

# forced 410s: expired watches and a compacted history, with changes while the watches are down
before=$(state 'd["reflectors"]["pods"]["lists"]')
control expire-next-watch '{"count":40}'
control compact
control close-watches
k delete pod -n shop api-5f7b9-m1 >/dev/null
pod web-5f7b9-m6 shop web yes | ka
ka <<<"$(mm late pay 5680)"
converge "forced 410s: the reflectors list again and the caches converge" --min-relists "pods=$((before + 1))" \
    --policy pay/late

# a period of 500s on every list and watch (the brief's 30 s, shortened), changes meanwhile
control fail '{"verb":"list","resource":"*","code":500,"count":1000000}'
control fail '{"verb":"watch","resource":"*","code":500,"count":1000000}'
control close-watches
sleep 1
k delete pod -n shop web-5f7b9-m3 >/dev/null
k delete meshmetric -n pay late >/dev/null
pod api-5f7b9-m7 shop api yes | ka
sleep 4
errors=$(state 'sum(r["errors"] for r in d["reflectors"].values())')
control reset-faults
if [ "$errors" -gt 0 ]; then ok "500s: the reflectors saw them and backed off ($errors errors)"; else bad "500s seen" "no reflector error"; fi
converge "after the 500s the caches converge" --no-policy pay/late

# the API server restarted with its state kept
control restart '{"keepState":true,"downSeconds":1}'
sleep 1.5
pod web-5f7b9-m8 pay web yes | ka
converge "API server restarted with its state kept"

# the API server restarted with its state lost: every object but the namespaces goes, CRDs too.
# The local server keeps counting resourceVersions across the loss, so a watch from an old
# resourceVersion stays valid and no deletion is ever sent; a real server (a fresh etcd) answers
# such a watch with 410 Expired or "too large resource version". Force that answer.
g=$(state 'd["generation"]')
control restart '{"keepState":false}'
control expire-next-watch '{"count":40}'
control close-watches
converge "API server restarted with its state lost: the core kinds converge to what is left" \
    --kinds namespaces,services,pods
if crds && k apply -f "$WORK/objects.yaml" >"$WORK/apply2.log" 2>&1; then
    ok "CRDs and objects created again"
else
    bad "CRDs and objects created again" "$(tail -5 "$WORK/apply2.log")"
fi
converge "every cache converges once the CRDs and objects are back" --timeout 60 \
    --policy kuma-system/base --rejected pay/broken --min-generation $((g + 1))

# the watcher stops cleanly
kill -TERM "$WATCH_PID"
if wait "$WATCH_PID"; then ok "the caches stop on SIGTERM"; else bad "the caches stop on SIGTERM" "exit $?"; fi
WATCH_PID=
if grep -qiE "sanitizer|data race|leak" "$WORK/watch.log"; then bad "no sanitizer report" "$(grep -iE -m5 "sanitizer|race|leak" "$WORK/watch.log")"; fi
[ "$FAIL" -gt 0 ] && { echo "--- watch log (last 30 lines)"; tail -30 "$WORK/watch.log"; }
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
