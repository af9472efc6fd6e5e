#!/usr/bin/env bash
# End-to-end test of the operator's cluster mode (`meshmetric-operator serve --kubeconfig`)
# against the local Kubernetes API server (tests/apiserver), with stand-ins for what a
# real cluster would run next to it (tests/operator/): Kuma's sidecar injector (an HTTPS
# mutating webhook), kuma-cp's MeshMetric status writer, and the Deployment/ReplicaSet
# controllers plus the kubelet's pod status. Kuma's CRDs (v2.14.3, no status
# subresource on MeshMetric) come from tests/data/crds/. See docs/testing-operator.md.
#
#   tests/e2e/operator_test.sh BUILD_DIR
#
# Prints "N passed, M failed" last; exits non-zero on any failure. Every wait is a poll
# with a deadline that prints what it saw (the object as read, the operator's last log
# lines) when it gives up. Environment:
#   MM_OPERATOR_TEST_MODE=standins   check only the stand-ins and the harness (setup, the
#                                    injector in both orders with `serve --policies-dir`,
#                                    the Deployment controller, kuma-cp's writer, the oracle)
#   MM_OPERATOR_TEST_FAIL_SECONDS=N  length of the 500s outage (default 30; see the doc)
#   MM_OPERATOR_TEST_KEEP=1          keep the work directory (logs, stand-in stats)
set -u
export LC_ALL=C # EPOCHREALTIME and printf with a "." decimal point

BUILD=$(cd "${1:-build}" && pwd) || exit 2
BIN=$BUILD/meshmetric-operator
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OPD=$ROOT/tests/operator
DATA=$OPD/testdata
MODE=${MM_OPERATOR_TEST_MODE:-full}
FAIL_SECONDS=${MM_OPERATOR_TEST_FAIL_SECONDS:-30}

[ -x "$BIN" ] || { echo "missing $BIN"; echo "0 passed, 1 failed"; exit 1; }

PASS=0
FAIL=0
T_START=${EPOCHREALTIME}
ok() { PASS=$((PASS + 1)); echo "ok   - $1"; }
bad() {
    FAIL=$((FAIL + 1)); echo "FAIL - $1"
    shift
    local l
    for l in "$@"; do printf '%s\n' "$l" | sed 's/^/       /'; done
    return 0
}
check() { if [ "$2" == "$3" ]; then ok "$1"; else bad "$1" "got [$2] want [$3]"; fi; }
contains() { case "$2" in *"$3"*) ok "$1" ;; *) bad "$1" "[$2] does not contain [$3]" ;; esac; }
now() { echo "${EPOCHREALTIME}"; }
since() { awk -v a="$1" -v b="${EPOCHREALTIME}" 'BEGIN{printf "%.1f", b - a}'; }
left() { awk -v t0="$1" -v d="$2" -v n="${EPOCHREALTIME}" 'BEGIN{x = t0 + d - n; if (x < 0.5) x = 0.5; printf "%.1f", x}'; }
phase() { echo "# $1 (t=$(since "$T_START")s)"; }

TMP=$(mktemp -d /tmp/mm-operator-e2e.XXXXXX)
export MM_LOCAL_DIR=$TMP/cluster
KCFG=$MM_LOCAL_DIR/kubeconfig
mkdir -p "$TMP/home"
KUBECTL=$(dirname "$(readlink -f "$(command -v kubectl 2>/dev/null || echo /nonexistent)")")/kubectl.1.32
[ -x "$KUBECTL" ] || KUBECTL=$(command -v kubectl 2>/dev/null || echo kubectl)
k() { HOME=$TMP/home "$KUBECTL" --kubeconfig "$KCFG" "$@" </dev/null; }
kin() { HOME=$TMP/home "$KUBECTL" --kubeconfig "$KCFG" "$@"; } # reads stdin
H() { python3 "$OPD/optest.py" --kubeconfig "$KCFG" "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

declare -A OP_PID OP_LOG OP_MPORT OP_HPORT OP_EXIT
STANDIN_PIDS=()
cleanup() {
    local n i
    for n in "${!OP_PID[@]}"; do
        [ -n "${OP_PID[$n]}" ] && kill -TERM "${OP_PID[$n]}" 2>/dev/null
    done
    for n in "${!OP_PID[@]}"; do
        [ -n "${OP_PID[$n]}" ] || continue
        for i in $(seq 100); do kill -0 "${OP_PID[$n]}" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "${OP_PID[$n]}" 2>/dev/null
        wait "${OP_PID[$n]}" 2>/dev/null
    done
    for n in "${STANDIN_PIDS[@]}"; do kill -TERM "$n" 2>/dev/null; done
    hack_cluster down >/dev/null 2>&1
    if [ "$FINISHED" != 1 ]; then
        bad "the script ran to its end" "it stopped early (see above)"
        summary
        rm -rf "$TMP/home"
        exit 1
    fi
    keep || rm -rf "$TMP"
}
FINISHED=0
keep() { [ "$FAIL" -gt 0 ] || [ -n "${MM_OPERATOR_TEST_KEEP:-}" ]; }
# summary: the last lines; exit status 0 only without failures
summary() {
    FINISHED=1
    echo "# total $(since "$T_START")s"
    keep && echo "# work directory kept: $TMP (operator logs op-*.log, stand-in stats and logs, lease.log)"
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
}
trap cleanup EXIT
hack_cluster() { "$ROOT/hack/cluster.sh" "$@"; }

# ---------------------------------------------------------------- processes
# start_standin NAME CMD...: run in the background, output to $TMP/NAME.out
start_standin() {
    local name=$1
    shift
    "$@" >>"$TMP/$name.out" 2>&1 &
    STANDIN_PIDS+=($!)
    eval "PID_${name//-/_}=$!"
}

# op_tail NAME: the last log lines of an operator run, indented
op_tail() { [ -f "${OP_LOG[$1]:-/nonexistent}" ] && tail -n "${2:-15}" "${OP_LOG[$1]}" | cut -c1-400 | sed "s/^/[$1] /"; }
all_tails() { local n; for n in "${!OP_PID[@]}"; do [ -n "${OP_PID[$n]}" ] && op_tail "$n" 8; done; }

# start_op NAME WEBHOOK_PORT METRICS_PORT POD_NAME|- [flags...]
start_op() {
    local name=$1 hport=$2 mport=$3 podname=$4
    shift 4
    OP_LOG[$name]=$TMP/op-$name.log
    OP_MPORT[$name]=$mport
    OP_HPORT[$name]=$hport
    local envs=(env -u POD_NAME)
    [ "$podname" != - ] && envs=(env POD_NAME="$podname")
    "${envs[@]}" "$BIN" serve --kubeconfig "$KCFG" --namespace meshmetric-system \
        --webhook-addr "127.0.0.1:$hport" --metrics-addr "127.0.0.1:$mport" \
        --tls-cert-file "$TMP/certs/tls.crt" --tls-key-file "$TMP/certs/tls.key" \
        --leader-elect --leader-election-id meshmetric-operator \
        --system-namespace kuma-system --zone default --resync-period 10 --log-format json \
        "$@" >>"${OP_LOG[$name]}" 2>&1 &
    OP_PID[$name]=$!
}

# wait_ready NAME SECONDS: /readyz on the metrics port answers 200
wait_ready() {
    local name=$1 t0
    t0=$(now)
    while :; do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${OP_MPORT[$name]}/readyz")" == 200 ] && return 0
        if ! kill -0 "${OP_PID[$name]}" 2>/dev/null; then
            echo "operator $name exited"; op_tail "$name" 20; return 1
        fi
        if awk -v a="$(since "$t0")" -v b="$2" 'BEGIN{exit !(a > b)}'; then
            echo "/readyz of $name not 200 within $2 s"; op_tail "$name" 20; return 1
        fi
        sleep 0.2
    done
}

# stop_op NAME SIGNAL SECONDS: signal the run, wait for it; OP_EXIT[NAME] gets its exit code
stop_op() {
    local name=$1 sig=$2 secs=$3 pid=${OP_PID[$1]:-} i
    [ -n "$pid" ] || { OP_EXIT[$name]="not running"; return; }
    kill "-$sig" "$pid" 2>/dev/null
    for i in $(seq $((secs * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        OP_EXIT[$name]=timeout
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    local rc=$?
    [ "${OP_EXIT[$name]:-}" == timeout ] || OP_EXIT[$name]=$rc
    OP_PID[$name]=
}

# alive NAME: assert the run is still running and its log shows no crash
alive() {
    local name=$1 what=$2
    if kill -0 "${OP_PID[$name]}" 2>/dev/null; then ok "$what: operator $name still running"
    else bad "$what: operator $name still running" "$(op_tail "$name" 20)"; fi
    log_clean "$name" "$what"
}
log_clean() {
    local hits
    hits=$(grep -a -n -E 'panic|abort\(|[Aa]borting|SIGABRT|SIGSEGV|Sanitizer|runtime error:|Segmentation fault|double free|[Aa]ssertion .*failed' \
        "${OP_LOG[$1]}" 2>/dev/null | head -n 5)
    if [ -z "$hits" ]; then ok "$2: log of $1 has no panic/abort/sanitizer report"
    else bad "$2: log of $1 has no panic/abort/sanitizer report" "$hits"; fi
}

metric() { H metric "http://127.0.0.1:${OP_MPORT[$1]}/metrics" "${@:2}"; }
# wait_metric RUN METRIC VALUE SECONDS: poll until the (unlabelled) metric has that value
wait_metric() {
    local t0 v
    t0=$(now)
    while :; do
        v=$(metric "$1" "$2")
        [ "$v" == "$3" ] && return 0
        awk -v a="$(since "$t0")" -v b="$4" 'BEGIN{exit !(a > b)}' && { echo "$2 of $1 is $v, want $3"; return 1; }
        sleep 0.2
    done
}

# ---------------------------------------------------------------- API helpers
API=
TOKEN=
# api METHOD PATH [BODY [CONTENT-TYPE]]: body on stdout; status 0 for 2xx
api() {
    local args=(-sS -o "$TMP/api.out" -w '%{http_code}' --cacert "$MM_LOCAL_DIR/pki/ca.crt"
        -H "Authorization: Bearer $TOKEN" -H "Content-Type: ${4:-application/json}" -X "$1")
    [ $# -ge 3 ] && args+=(--data-binary "$3")
    local code
    code=$(curl "${args[@]}" "$API$2" 2>&1)
    cat "$TMP/api.out" 2>/dev/null
    [[ "$code" == 2* ]]
}
control() { # control WHAT [JSON]: POST /_control/WHAT; says so when it fails
    local out
    out=$(api POST "/_control/$1" "${2:-{\}}") || { echo "# /_control/$1 failed: $out"; return 1; }
}
merge_patch() { # merge_patch PATH JSON: retried for 5 s (429s while the API server "restarts")
    local i
    for i in $(seq 25); do
        api PATCH "$1" "$2" application/merge-patch+json >/dev/null && return 0
        sleep 0.2
    done
    echo "# PATCH $1 failed: $(cat "$TMP/api.out" 2>/dev/null)"
    return 1
}

# converge NAME SECONDS [extra converge args]: statuses = the oracle's
converge() {
    local name=$1 secs=$2 out
    shift 2
    if out=$(H converge --bin "$BIN" --deadline "$secs" --stable 0.5 "$@" 2>&1); then
        ok "$name ($out)"
    else
        bad "$name" "$out" "$(all_tails)"
    fi
}

# expect NAME CMD...: CMD prints its problem and exits non-zero on failure
expect() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then ok "$name${out:+ ($(printf '%s' "$out" | head -n 1 | cut -c1-120))}"
    else bad "$name" "$out" "$(all_tails)"; fi
}

pod_names() { H pods --ns shop --selector "$1" | python3 -c 'import json,sys; print(" ".join(p["name"] for p in json.load(sys.stdin) if not p["deleting"]))'; }
pod_uid() { H get "/api/v1/namespaces/shop/pods/$1" --expr 'd["metadata"]["uid"] if code == 200 else "absent"'; }

# wait_pods SELECTOR COUNT SECONDS: COUNT pods, each injected (kuma-sidecar) and not being deleted
wait_pods() {
    local sel=$1 n=$2 secs=$3 t0 got
    t0=$(now)
    while :; do
        got=$(H pods --ns shop --selector "$sel" | python3 -c '
import json, sys
ps = [p for p in json.load(sys.stdin) if not p["deleting"]]
print(len(ps) if all(p["sidecar"] and p["podIP"] for p in ps) else -1)')
        [ "$got" == "$n" ] && return 0
        awk -v a="$(since "$t0")" -v b="$secs" 'BEGIN{exit !(a > b)}' && { echo "pods $sel: $got, want $n"; H pods --ns shop; return 1; }
        sleep 0.2
    done
}

# ================================================================ 1. set-up
phase "set-up"
"$BIN" certs --service meshmetric-operator --namespace meshmetric-system --out "$TMP/certs" >"$TMP/cabundle" 2>"$TMP/certs.log"
check "certs for meshmetric-operator.meshmetric-system.svc" "$?" "0"
CA_BUNDLE=$(tail -n 1 "$TMP/cabundle")
python3 "$OPD/kuma_injector.py" certs --dir "$TMP/injector"
check "the Kuma injector stand-in has its own CA" "$?" "0"

HOOK_A=$(free_port) HOOK_B=$(free_port) INJ_PORT=$(free_port)
M1=$(free_port) M2=$(free_port) MA=$(free_port) MB=$(free_port)
hack_cluster up --service-map "meshmetric-system/meshmetric-operator:443=127.0.0.1:$HOOK_A,kuma-system/kuma-control-plane:443=127.0.0.1:$INJ_PORT" \
    >"$TMP/cluster-up.out" 2>&1
check "local API server up" "$?" "0"
API=https://127.0.0.1:$(cat "$MM_LOCAL_DIR/apiserver.port")
TOKEN=$(cat "$MM_LOCAL_DIR/token")
check "kubectl talks to it" "$(k version -o json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])')" "v1.32.0"

start_standin injector python3 "$OPD/kuma_injector.py" serve --dir "$TMP/injector" --port "$INJ_PORT" --log "$TMP/injector.log"

# apps/v1: built in, or served by stand-in CRDs (then strategic merge patches get 415).
APPS_BUILTIN=yes
api GET /apis/apps/v1 >/dev/null || APPS_BUILTIN=no
echo "# apps/v1 built into the API server: $APPS_BUILTIN"

# Our webhook configurations (manifests/ with the caBundle of `certs`) and the injector's.
sed "s|CA_BUNDLE|$CA_BUNDLE|" "$ROOT/manifests/webhook-configurations.yaml" >"$TMP/webhooks.yaml"
for n in a-kuma-injector z-kuma-injector; do python3 "$OPD/kuma_injector.py" config --dir "$TMP/injector" --name $n >"$TMP/$n.json"; done
APPS_CRDS=()
apply_base() { # what a state loss wipes (namespaces survive it): CRDs, Services
    k apply -f "$ROOT/tests/data/crds/" "${APPS_CRDS[@]}" -f "$DATA/cluster.yaml" >>"$TMP/apply.log" 2>&1 || return 1
    local i
    for i in $(seq 50); do # served at once by the local server; be safe anyway
        api GET /apis/kuma.io/v1alpha1/meshmetrics >/dev/null && api GET /apis/apps/v1/deployments >/dev/null && return 0
        sleep 0.1
    done
    return 1
}
register_webhooks() { k apply -f "$TMP/webhooks.yaml" -f "$TMP/$1.json" >>"$TMP/apply.log" 2>&1; }
[ "$APPS_BUILTIN" == no ] && APPS_CRDS=(-f "$DATA/apps-crds.yaml")
apply_base
check "Kuma's CRDs, namespaces and Services applied" "$?" "0"
check "MeshMetric CRD is Kuma's (no status subresource)" \
    "$(H get /apis/apiextensions.k8s.io/v1/customresourcedefinitions/meshmetrics.kuma.io --expr 'd["spec"]["versions"][0].get("subresources")')" "{}"
check "shop is labelled for injection" \
    "$(H get /api/v1/namespaces/shop --expr 'd["metadata"]["labels"].get("kuma.io/sidecar-injection")')" "enabled"
# Policies before the validating webhook: mm-broken is one Kuma rejects (a cluster where the
# webhook came later); the others are valid.
k apply -f "$DATA/policies.yaml" -f "$DATA/policy-invalid.yaml" >>"$TMP/apply.log" 2>&1
check "example MeshMetrics applied" "$?" "0"
register_webhooks z-kuma-injector
check "webhook configurations registered (ours, and the injector as z-kuma-injector)" "$?" "0"
check "our MutatingWebhookConfiguration reinvokes IfNeeded" \
    "$(H get /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/meshmetric-operator --expr 'd["webhooks"][0].get("reinvocationPolicy")')" "IfNeeded"
check "the injector's has no reinvocationPolicy (Never)" \
    "$(H get /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/z-kuma-injector --expr 'd["webhooks"][0].get("reinvocationPolicy")')" "Never"

if [ "$FAIL" -gt 0 ]; then
    echo "# set-up failed; stopping here. API server log:"
    tail -n 20 "$MM_LOCAL_DIR/apiserver.log" 2>/dev/null | sed 's/^/#   /'
    tail -n 20 "$TMP/apply.log" "$TMP/cluster-up.out" 2>/dev/null | sed 's/^/#   /'
    summary
    exit
fi
start_standin controller python3 "$OPD/deployment_controller.py" --kubeconfig "$KCFG" --namespaces shop \
    --interval 0.5 --stats "$TMP/controller.stats" --log "$TMP/controller.log"
start_standin kumacp python3 "$OPD/kuma_cp_status.py" --kubeconfig "$KCFG" --interval 2 \
    --stats "$TMP/kumacp.stats" --log "$TMP/kumacp.log"
start_standin leaselog python3 "$OPD/optest.py" --kubeconfig "$KCFG" record \
    "/apis/coordination.k8s.io/v1/namespaces/meshmetric-system/leases?fieldSelector=metadata.name%3Dmeshmetric-operator" \
    --out "$TMP/lease.log"

# ---------------------------------------------------------------- checks shared by both modes
# injected_and_patched POD WHAT: kuma-sidecar from the injector (native sidecar) + our patch
injected_and_patched() {
    local got
    got=$(H pods --ns shop | python3 -c '
import json, sys
p = [p for p in json.load(sys.stdin) if p["name"] == sys.argv[1]]
if not p: print("absent"); sys.exit()
p = p[0]
print(json.dumps([p["injected"], p["sidecar"], bool(p["hash"])], sort_keys=True))' "$1")
    check "$2: $1 has the native kuma-sidecar and our patch" "$got" \
        '["true", {"init": true, "ports": [5670], "restartPolicy": "Always"}, true]'
}

# injector_order NAME: register the injector as NAME, create a bare pod, check it
injector_order() {
    local cfg=$1 pod=order-${1%%-*}
    k delete mutatingwebhookconfiguration a-kuma-injector z-kuma-injector --ignore-not-found >>"$TMP/apply.log" 2>&1
    k apply -f "$TMP/$cfg.json" >>"$TMP/apply.log" 2>&1
    sed "s/name: solo/name: $pod/; s/app: solo/app: $pod/" "$DATA/pod-solo.yaml" | kin apply -f - >>"$TMP/apply.log" 2>&1
    check "injector as $cfg: pod $pod created" "$?" "0"
    injected_and_patched "$pod" "injector as $cfg"
}

if [ "$MODE" == standins ]; then
    # ============================================================ stand-ins and harness only
    phase "stand-ins (webhook from serve --policies-dir)"
    mkdir -p "$TMP/policies"
    cp "$DATA/policies.yaml" "$TMP/policies/"
    "$BIN" serve --webhook-addr "127.0.0.1:$HOOK_A" --metrics-addr "" --tls-cert-file "$TMP/certs/tls.crt" \
        --tls-key-file "$TMP/certs/tls.key" --policies-dir "$TMP/policies" --reload-interval-ms 200 \
        >>"$TMP/op-dir.log" 2>&1 &
    OP_PID[dir]=$!
    OP_LOG[dir]=$TMP/op-dir.log
    for _ in $(seq 50); do curl -sf --cacert "$TMP/certs/ca.crt" --resolve "meshmetric-operator.meshmetric-system.svc:$HOOK_A:127.0.0.1" \
        "https://meshmetric-operator.meshmetric-system.svc:$HOOK_A/readyz" >/dev/null && break; sleep 0.1; done
    injector_order z-kuma-injector
    injector_order a-kuma-injector
    check "the injector logged both admissions" "$(grep -c '"injected": true' "$TMP/injector.log")" "2"
    k apply -f "$DATA/deploy-web.yaml" >>"$TMP/apply.log" 2>&1
    expect "controller: web has 2 injected, running pods" wait_pods app=web 2 10
    WEB1=$(pod_names app=web)
    RS=$(H get /apis/apps/v1/namespaces/shop/replicasets --expr '" ".join(sorted(r["metadata"]["name"] + ">" + r["metadata"]["ownerReferences"][0]["kind"] + "/" + r["metadata"]["ownerReferences"][0]["name"] for r in d["items"]))')
    contains "controller: ReplicaSet owned by the Deployment" "$RS" ">Deployment/web"
    check "controller: pods named <deploy>-<hash>-<rand>, owned by the ReplicaSet, with pod-template-hash" \
        "$(H get '/api/v1/namespaces/shop/pods?labelSelector=app%3Dweb' --expr 'sorted({(p["metadata"]["name"].rsplit("-", 1)[0] == p["metadata"]["ownerReferences"][0]["name"] == "web-" + p["metadata"]["labels"]["pod-template-hash"], p["metadata"]["ownerReferences"][0]["kind"], len(p["metadata"]["name"].rsplit("-", 1)[1])) for p in d["items"]})')" \
        '[[true, "ReplicaSet", 5]]'
    merge_patch /apis/apps/v1/namespaces/shop/deployments/web \
        '{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-01-01T00:00:00Z"}}}}}'
    T=$(now)
    wait_until_new() {
        local t0 now_names
        t0=$(now)
        while :; do
            now_names=$(pod_names app=web)
            if [ -n "$now_names" ] && [ "$(wc -w <<<"$now_names")" == 2 ] && ! grep -qwF -f <(tr ' ' '\n' <<<"$WEB1") <<<"$now_names"; then
                echo "$now_names"; return 0; fi
            awk -v a="$(since "$t0")" 'BEGIN{exit !(a > 10)}' && { echo "web pods: $now_names (before: $WEB1)"; return 1; }
            sleep 0.2
        done
    }
    expect "controller: a template change replaces the pods" wait_until_new
    echo "# rollout took $(since "$T")s"
    if [ "$APPS_BUILTIN" == no ]; then
        code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$MM_LOCAL_DIR/pki/ca.crt" -H "Authorization: Bearer $TOKEN" \
            -X PATCH -H 'Content-Type: application/strategic-merge-patch+json' -d '{"spec":{"replicas":2}}' "$API/apis/apps/v1/namespaces/shop/deployments/web")
        check "known limit: the apps CRD stand-in refuses strategic merge patches" "$code" "415"
    fi
    merge_patch /apis/apps/v1/namespaces/shop/deployments/web '{"spec":{"replicas":3}}'
    expect "controller: scale to 3" wait_pods app=web 3 10
    expect "kuma-cp stand-in: BackendRefsResolved on every valid MeshMetric" \
        python3 -c 'import json, subprocess, sys, time
end = time.time() + 10
while True:
    d = json.loads(subprocess.check_output(sys.argv[1:] + ["get", "/apis/kuma.io/v1alpha1/meshmetrics"]))
    miss = [m["metadata"]["name"] for m in d["items"] if m["metadata"]["name"] != "mm-broken" and
            not any(c["type"] == "BackendRefsResolved" for c in (m.get("status") or {}).get("conditions") or [])]
    if not miss: break
    if time.time() > end: print("missing on", miss); sys.exit(1)
    time.sleep(0.3)' python3 "$OPD/optest.py" --kubeconfig "$KCFG"
    # A status write leaves the spec as it was: our validating webhook lets the UPDATE through
    # (denying it would block the very status that reports the policy invalid).
    contains "kuma-cp stand-in: its status write to the invalid mm-broken is allowed (spec unchanged)" \
        "$(grep '"shop/mm-broken"' "$TMP/kumacp.log" | tail -n 1)" '"action": "write"'
    W0=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["writes"])' "$TMP/kumacp.stats")
    # A condition of another writer (as ours will be) is kept by kuma-cp's writes.
    H get /apis/kuma.io/v1alpha1/namespaces/shop/meshmetrics/mm-web --expr \
        'json.dumps(dict(d, status={"conditions": d["status"]["conditions"] + [{"type": "meshmetric.kuma.io/Valid", "status": "True", "reason": "Valid", "message": "x"}]}))' >"$TMP/mm.json"
    api PUT /apis/kuma.io/v1alpha1/namespaces/shop/meshmetrics/mm-web "$(cat "$TMP/mm.json")" >/dev/null
    check "a foreign condition can be added" "$?" "0"
    sleep 6
    W1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["writes"])' "$TMP/kumacp.stats")
    check "kuma-cp stand-in: no writes once its condition is there (6 s)" "$((W1 - W0))" "0"
    check "kuma-cp stand-in: the foreign condition is kept" \
        "$(H get /apis/kuma.io/v1alpha1/namespaces/shop/meshmetrics/mm-web --expr 'sorted(c["type"] for c in d["status"]["conditions"])')" \
        '["BackendRefsResolved", "meshmetric.kuma.io/Valid"]'
    ORC=$(H oracle --bin "$BIN")
    check "oracle: pods patched by the webhook are in sync" \
        "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(sorted({v["state"] for v in d["pods"].values()}))' "$ORC")" "['InSync']"
    check "oracle: the invalid policy is recognised" \
        "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(list(d["invalid"]))' "$ORC")" "['shop/mm-broken']"
    merge_patch /apis/kuma.io/v1alpha1/namespaces/shop/meshmetrics/mm-web '{"spec":{"default":{"applications":[{"name":"web","port":9105,"path":"/metrics"}]}}}'
    check "oracle: a policy change makes its pods Outdated" \
        "$(H oracle --bin "$BIN" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sorted(set(d["policies"]["shop/mm-web"]["members"].values())))')" "['Outdated']"
    control service-map '{"meshmetric-system/meshmetric-operator:443":"127.0.0.1:1"}'
    k apply -f "$DATA/pod-solo.yaml" >>"$TMP/apply.log" 2>&1
    check "oracle: a pod created while the webhook is down is NotApplied" \
        "$(H oracle --bin "$BIN" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pods"]["shop/solo"]["state"])')" "NotApplied"
    check "lease recorder running" "$(kill -0 "$PID_leaselog" 2>/dev/null && echo yes)" "yes"
    summary
    exit
fi

# ================================================================ 2. pods created while the operator is down
phase "pods created while the operator is down"
k apply -f "$DATA/deploy-web.yaml" -f "$DATA/pod-solo.yaml" >>"$TMP/apply.log" 2>&1
check "web Deployment and bare pod solo created" "$?" "0"
expect "web's 2 pods and solo exist, injected by the Kuma stand-in" wait_pods 'app in (web,solo)' 3 15
WEB_DOWN=$(pod_names app=web)
SOLO_UID=$(pod_uid solo)
check "pods created while down carry no config-hash" \
    "$(H pods --ns shop | python3 -c 'import json,sys; print(sorted({p["hash"] for p in json.load(sys.stdin)}, key=str))')" "[None]"

# ================================================================ 3. first run: reporting (no repair)
phase "operator run 1: reporting"
T0=$(now)
start_op run1 "$HOOK_A" "$M1" - --lease-duration 15 --renew-deadline 10 --retry-period 2
expect "run 1 is ready (/readyz 200 after the caches synced)" wait_ready run1 15
HOST_PREFIX="$(hostname)_"
expect "run 1 holds the Lease as <hostname>_<random> (no POD_NAME)" H wait-lease --holder-prefix "$HOST_PREFIX" --deadline "$(left "$T0" 10)"
NAMED=()
for p in $WEB_DOWN; do NAMED+=(--contains "shop/$p (created while the webhook was down)"); done
expect "pods created while down: mm-web out of sync within 10 s of the start" \
    H cond shop/mm-web meshmetric.kuma.io/DataplanesInSync False InSync:0,OutOfSync:2 --deadline "$(left "$T0" 10)" \
    --contains "0 of 2 dataplanes run this config" "${NAMED[@]}"
expect "pods created while down: mm-mesh InSync:0,OutOfSync:3 within 10 s" \
    H cond kuma-system/mm-mesh meshmetric.kuma.io/DataplanesInSync False InSync:0,OutOfSync:3 --deadline "$(left "$T0" 10)" \
    --contains "shop/solo (created while the webhook was down)"
expect "Warning MetricsConfigNotApplied, one per pod, within 10 s" \
    H expect-events --ns shop --kind Pod --names "${WEB_DOWN// /,},solo" --reason MetricsConfigNotApplied --type Warning --deadline "$(left "$T0" 10)"
expect "Warning DataplanesOutOfSync on mm-web and mm-mesh" sh -c "
    python3 '$OPD/optest.py' --kubeconfig '$KCFG' expect-events --ns shop --kind MeshMetric --names mm-web --reason DataplanesOutOfSync --type Warning --deadline 5 &&
    python3 '$OPD/optest.py' --kubeconfig '$KCFG' expect-events --ns kuma-system --kind MeshMetric --names mm-mesh --reason DataplanesOutOfSync --type Warning --deadline 5"
# status_only_update NS/NAME: a dry-run PUT that changes only the status; prints why it is refused
status_only_update() {
    local body
    body=$(H get "/apis/kuma.io/v1alpha1/namespaces/${1%/*}/meshmetrics/${1#*/}" --expr \
        'json.dumps(dict(d, status={"conditions": ((d.get("status") or {}).get("conditions") or []) + [{"type": "Probe", "status": "True", "reason": "Probe", "message": ""}]}))')
    api PUT "/apis/kuma.io/v1alpha1/namespaces/${1%/*}/meshmetrics/${1#*/}?dryRun=All" "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("message", "allowed"))'
}
if out=$(H cond shop/mm-broken meshmetric.kuma.io/Valid False Invalid --deadline 5 --contains 'port must be a valid (1-65535)' 2>&1); then
    ok "the invalid policy: Valid False/Invalid with Kuma's text"
else
    bad "the invalid policy: Valid False/Invalid with Kuma's text" "$out" \
        "a status-only update of mm-broken (dry run) gets: $(status_only_update shop/mm-broken)" \
        "(manifests/webhook-configurations.yaml validates MeshMetric UPDATEs; without a status subresource a status write is an UPDATE)"
fi
expect "the invalid policy: DataplanesInSync Unknown" \
    H cond shop/mm-broken meshmetric.kuma.io/DataplanesInSync Unknown '*' --deadline 1
converge "run 1: every status is what the oracle computes" 10 --kuma-cp --metrics "http://127.0.0.1:$M1/metrics"
check "run 1: meshmetric_operator_leader 1" "$(metric run1 meshmetric_operator_leader)" "1"
k -n shop delete meshmetric mm-broken >>"$TMP/apply.log" 2>&1 # done with it
check "run 1: reconcile queue depth exported" "$(metric run1 meshmetric_operator_reconcile_queue_depth --sum | grep -c '^[0-9]')" "1"
expect "Events are events.k8s.io/v1 from meshmetric.kuma.io/operator, reportingInstance = the Lease holder" \
    H events-by-leader --since 0 --lease-log "$TMP/lease.log" --ns shop,kuma-system

phase "webhook with the Kuma injector before and after ours"
injector_order z-kuma-injector
injector_order a-kuma-injector
check "mutate admissions counted" "$(metric run1 meshmetric_webhook_admissions_total endpoint=mutate --sum | awk '{print ($1 > 0)}')" "1"

phase "policy change"
k apply -f "$DATA/deploy-api.yaml" >>"$TMP/apply.log" 2>&1
expect "api's pod created while the operator runs" wait_pods app=api 1 10
API_POD=$(pod_names app=api)
expect "api's pod is in sync" H cond shop/mm-api meshmetric.kuma.io/DataplanesInSync True InSync:1,OutOfSync:0 --deadline 10
set_api_port() { merge_patch /apis/kuma.io/v1alpha1/namespaces/shop/meshmetrics/mm-api \
    "{\"spec\":{\"default\":{\"applications\":[{\"name\":\"api\",\"port\":$1,\"path\":\"/metrics\"}]}}}"; }
set_api_port 9104
T1=$(now)
expect "changed policy: the affected pod is out of sync within 5 s" \
    H cond shop/mm-api meshmetric.kuma.io/DataplanesInSync False InSync:0,OutOfSync:1 --deadline 5 --contains "shop/$API_POD (config changed)"
expect "Warning MetricsConfigOutdated on the pod within 5 s" \
    H expect-events --ns shop --kind Pod --names "$API_POD" --reason MetricsConfigOutdated --type Warning --deadline "$(left "$T1" 5)"
check "pods the change does not touch stay as they were (mm-web)" \
    "$(H get /apis/kuma.io/v1alpha1/namespaces/shop/meshmetrics/mm-web --expr '[c["reason"] for c in d["status"]["conditions"] if c["type"] == "meshmetric.kuma.io/DataplanesInSync"]')" '["InSync:0,OutOfSync:2"]'
set_api_port 9103
T1=$(now)
expect "reverted policy: back in sync within 5 s" \
    H cond shop/mm-api meshmetric.kuma.io/DataplanesInSync True InSync:1,OutOfSync:0 --deadline 5
expect "Normal MetricsConfigApplied when the pod is back in sync" \
    H expect-events --ns shop --kind Pod --names "$API_POD" --reason MetricsConfigApplied --type Normal --deadline "$(left "$T1" 5)"
set_api_port 9104
expect "changed again: out of sync" \
    H cond shop/mm-api meshmetric.kuma.io/DataplanesInSync False InSync:0,OutOfSync:1 --deadline 5
expect "the repeat is a series of the same Event (series.count >= 2)" \
    H expect-events --ns shop --kind Pod --names "$API_POD" --reason MetricsConfigOutdated --type Warning --deadline 10 --min-series 2
expect "still one MetricsConfigNotApplied Event per pod after a resync period" \
    H expect-events --ns shop --kind Pod --names "${WEB_DOWN// /,},solo" --reason MetricsConfigNotApplied --type Warning --deadline 1
check "no repair without --restart-out-of-sync" \
    "$(H get /apis/apps/v1/namespaces/shop/deployments --expr '[x["metadata"]["name"] for x in d["items"] if "kubectl.kubernetes.io/restartedAt" in ((x["spec"]["template"].get("metadata") or {}).get("annotations") or {})]')" "[]"
alive run1 "run 1"

# ================================================================ 4. SIGTERM, second run with repair
phase "SIGTERM run 1; run 2 with --restart-out-of-sync"
HOLDER1=$(H lease | python3 -c 'import json,sys; print(json.load(sys.stdin).get("holderIdentity"))')
T2=$(now)
stop_op run1 TERM 20
check "run 1 exits 0 on SIGTERM" "${OP_EXIT[run1]}" "0"
check "SIGTERM released the Lease (holderIdentity \"\")" "$(H lease | python3 -c 'import json,sys; print(repr(json.load(sys.stdin).get("holderIdentity")))')" "''"
REQ_T=$(now)
ROLLOUTS0=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rollouts"])' "$TMP/controller.stats")
start_op run2 "$HOOK_A" "$M2" - --lease-duration 15 --renew-deadline 10 --retry-period 2 \
    --restart-out-of-sync --restart-rate 60 --restart-max-unavailable 100
expect "run 2 takes the released Lease at once (well under the 15 s lease duration)" \
    H wait-lease --holder-not "$HOLDER1" --deadline 10
expect "run 2 ready" wait_ready run2 15
HOLDER2=$(H lease | python3 -c 'import json,sys; print(json.load(sys.stdin).get("holderIdentity"))')
restarted_at() { # DEPLOYMENT: prints its restartedAt annotation or fails
    local v t0
    t0=$(now)
    while :; do
        v=$(H get "/apis/apps/v1/namespaces/shop/deployments/$1" --expr '((d["spec"]["template"].get("metadata") or {}).get("annotations") or {}).get("kubectl.kubernetes.io/restartedAt", "")')
        [ -n "$v" ] && { echo "$v"; return 0; }
        if awk -v a="$(since "$t0")" 'BEGIN{exit !(a > 20)}'; then
            echo "deployment $1 has no restartedAt after 20 s"
            echo "PATCH requests on deployments:"
            H requests --since "$REQ_T" --method PATCH --path-re '/deployments/' 2>&1 | tail -n 5
            return 1
        fi
        sleep 0.3
    done
}
expect "repair: web gets kubectl.kubernetes.io/restartedAt" restarted_at web
expect "repair: api gets kubectl.kubernetes.io/restartedAt" restarted_at api
check "repair: sent as a merge patch of the template annotation (kubectl rollout restart's annotation)" \
    "$(H requests --since "$REQ_T" --method PATCH --path-re '/apis/apps/v1/namespaces/shop/deployments/(web|api)([?].*)?$' --ua-prefix meshmetric-operator 2>&1 >/dev/null | awk '{print $NF}' | sort -u)" \
    "application/merge-patch+json"
expect "repair: the stand-in controller replaced web's pods" wait_pods app=web 2 20
check "repair: web's pods are new" "$(comm -12 <(tr ' ' '\n' <<<"$WEB_DOWN" | sort) <(pod_names app=web | tr ' ' '\n' | sort) | wc -l)" "0"
converge "repair: all Deployment pods back in sync (solo still out)" 25 --kuma-cp --metrics "http://127.0.0.1:$M2/metrics"
expect "repair: mm-web True InSync:2" H cond shop/mm-web meshmetric.kuma.io/DataplanesInSync True InSync:2,OutOfSync:0 --deadline 1
expect "Normal DataplanesInSync on mm-web once its figures are back" \
    H expect-events --ns shop --kind MeshMetric --names mm-web --reason DataplanesInSync --type Normal --deadline 5
sleep 2 # a little more than one repair pass: solo must still be the same pod
check "repair: the bare pod solo is never restarted (same uid, still there)" "$(pod_uid solo)" "$SOLO_UID"
check "repair: solo's out-of-sync state is reported instead" \
    "$(H get /apis/kuma.io/v1alpha1/namespaces/kuma-system/meshmetrics/mm-mesh --expr '[c["message"] for c in d["status"]["conditions"] if c["type"] == "meshmetric.kuma.io/DataplanesInSync"][0]' | grep -c 'shop/solo (created while the webhook was down)')" "1"
check "repair: one restart per Deployment, no restart storm (rollouts the stand-in controller saw)" \
    "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rollouts"] - int(sys.argv[2]))' "$TMP/controller.stats" "$ROLLOUTS0")" "2"
check "repair: nothing but Deployments was patched or deleted by the operator" \
    "$(H requests --since "$T2" --path-re '/api/v1/namespaces/shop/pods|/replicasets' --ua-prefix meshmetric-operator 2>&1 >/dev/null | awk '$2 != "GET"' | wc -l)" "0"
k -n shop delete pod solo >>"$TMP/apply.log" 2>&1 && k apply -f "$DATA/pod-solo.yaml" >>"$TMP/apply.log" 2>&1
check "solo re-created by hand while the webhook is up" "$?" "0"
converge "everything in sync" 15 --kuma-cp --metrics "http://127.0.0.1:$M2/metrics"
expect "mm-mesh True" H cond kuma-system/mm-mesh meshmetric.kuma.io/DataplanesInSync True InSync:6,OutOfSync:0 --deadline 1
alive run2 "repair"

# ================================================================ 5. kuma-cp's conditions next to ours
phase "kuma-cp's status writer next to ours"
k apply -f "$DATA/policy-otel.yaml" >>"$TMP/apply.log" 2>&1
check "mm-otel (an OpenTelemetry backendRef) created" "$?" "0"
expect "mm-otel: kuma-cp's BackendRefsResolved False/UnresolvedBackendRefs" \
    H cond shop/mm-otel BackendRefsResolved False UnresolvedBackendRefs --deadline 10 \
    --contains "Unresolved MeshOpenTelemetryBackend references: labels:backend=otel"
expect "mm-otel: ours next to it (no dataplane selected)" \
    H cond shop/mm-otel meshmetric.kuma.io/DataplanesInSync True InSync:0,OutOfSync:0 --deadline 10 \
    --contains "no dataplane is selected by this policy"
converge "every MeshMetric carries kuma-cp's condition and ours" 10 --kuma-cp
cp_writes() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["writes"])' "$TMP/kumacp.stats"; }
generations() { H get /apis/kuma.io/v1alpha1/meshmetrics --expr 'sum(m["metadata"]["generation"] for m in d["items"])'; }
cp_errors() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["errors"])' "$TMP/kumacp.stats"; }
W0=$(cp_writes) G0=$(generations) E0=$(cp_errors) TW=$(now)
sleep 20
W1=$(cp_writes) G1=$(generations) E1=$(cp_errors)
OPW=$(H requests --since "$TW" --method PUT,PATCH --path-re '^/apis/kuma.io/v1alpha1/namespaces/[^/]+/meshmetrics/' --ua-prefix meshmetric-operator 2>/dev/null)
echo "# 20 s window: kuma-cp stand-in wrote $((W1 - W0)), the operator wrote $OPW, generations grew by $((G1 - G0))"
if [ "$((W1 - W0))" -le 2 ]; then ok "no write loop: kuma-cp stand-in wrote $((W1 - W0)) times in 20 s"
else bad "no write loop: kuma-cp stand-in wrote $((W1 - W0)) times in 20 s" "$(tail -n 5 "$TMP/kumacp.log")"; fi
if [ "$OPW" -le 2 ]; then ok "no write loop: the operator wrote $OPW MeshMetric statuses in 20 s"
else bad "no write loop: the operator wrote $OPW MeshMetric statuses in 20 s" "$(H requests --since "$TW" --method PUT,PATCH --path-re meshmetrics --ua-prefix meshmetric-operator 2>&1 | tail -n 6)"; fi
if [ "$((G1 - G0))" -le 4 ]; then ok "MeshMetric generations grew by $((G1 - G0)) in 20 s (status writes bump them without a status subresource)"
else bad "MeshMetric generations grew by $((G1 - G0)) in 20 s"; fi
check "conditions hold only type, status, reason, message (Kuma's schema prunes the rest)" \
    "$(H get /apis/kuma.io/v1alpha1/meshmetrics --expr 'sorted({k for m in d["items"] for c in m["status"]["conditions"] for k in c})')" \
    '["message", "reason", "status", "type"]'
check "kuma-cp stand-in: no failed writes in the window" "$((E1 - E0))" "0"

# ================================================================ 6. faults
# settle NAME SECONDS: after a fault, the statuses converge and the operator is alive
settle() {
    converge "$1: converges to the right status" "$2" --kuma-cp --metrics "http://127.0.0.1:$M2/metrics"
    alive run2 "$1"
}
phase "fault: every watch closed"
control close-watches
merge_patch /apis/apps/v1/namespaces/shop/deployments/web '{"spec":{"replicas":3}}'
expect "web scaled to 3 by the stand-in" wait_pods app=web 3 10
settle "watches closed" 15

phase "fault: 410 Gone on the next watches"
control expire-next-watch '{"count":50}'
control close-watches
sed 's/name: solo/name: extra-1/; s/app: solo/app: extra/' "$DATA/pod-solo.yaml" | kin apply -f - >>"$TMP/apply.log" 2>&1
settle "expired watches" 15
control reset-faults

phase "fault: history compacted"
control compact
control close-watches
k -n shop delete pod extra-1 >>"$TMP/apply.log" 2>&1
settle "compaction (410 on re-watch, relist)" 15

phase "fault: ${FAIL_SECONDS} s of 500s on every request but Leases"
merge_patch /apis/apps/v1/namespaces/shop/deployments/web '{"spec":{"replicas":2}}'
sleep 1
for r in pods namespaces services meshmetrics meshes dataplanes replicasets jobs deployments statefulsets daemonsets \
    events secrets configmaps mutatingwebhookconfigurations validatingwebhookconfigurations customresourcedefinitions; do
    control fail "{\"verb\":\"*\",\"resource\":\"$r\",\"code\":500,\"count\":1000000,\"message\":\"injected by operator_test.sh\"}"
done
control close-watches
TF=$(now)
sleep "$FAIL_SECONDS"
control reset-faults
echo "# outage lasted $(since "$TF")s; operator requests during it: $(H requests --since "$TF" --ua-prefix meshmetric-operator 2>/dev/null)"
# After 30 s of failures each reflector's backoff is near its 30 s cap (client-go's), and
# decisions wait until every cache lists or watches again.
settle "500s" 75
check "the Lease stayed with run 2 through the 500s" "$(H lease | python3 -c 'import json,sys; print(json.load(sys.stdin).get("holderIdentity"))')" "$HOLDER2"

phase "fault: API server restart, state kept"
control restart '{"keepState":true,"downSeconds":2}'
merge_patch /apis/apps/v1/namespaces/shop/deployments/web '{"spec":{"replicas":3}}'
# While a reflector reconnects (with the backoff the 500s above built up, up to 30 s as in
# client-go) the operator holds status writes: it cannot tell a kept state from a lost one.
settle "restart (state kept)" 45
check "the same replica leads after the restart" "$(H lease | python3 -c 'import json,sys; print(json.load(sys.stdin).get("holderIdentity"))')" "$HOLDER2"

phase "fault: API server restart, state lost"
# Pods cannot be listed or watched for a while after the loss, so the operator's pod cache
# cannot re-sync: whatever it writes in that window is computed from a half-synced cache.
control fail '{"verb":"list","resource":"pods","code":500,"count":1000000,"message":"pods not listable yet"}'
control fail '{"verb":"watch","resource":"pods","code":500,"count":1000000,"message":"pods not listable yet"}'
TL=$(now)
control restart '{"keepState":false}'
apply_base
check "after the loss: CRDs, Services re-created" "$?" "0"
register_webhooks a-kuma-injector
check "after the loss: webhook configurations re-registered" "$?" "0"
k apply -f "$DATA/policies.yaml" -f "$DATA/policy-otel.yaml" -f "$DATA/deploy-web.yaml" -f "$DATA/deploy-api.yaml" \
    -f "$DATA/pod-solo.yaml" >>"$TMP/apply.log" 2>&1
check "after the loss: policies, Deployments and solo re-created" "$?" "0"
sleep 6
TE=$(now)
N_PUT=$(H requests --since "$TL" --until "${TE}" --method PUT,PATCH --path-re '^/apis/kuma.io/v1alpha1/namespaces/[^/]+/meshmetrics/' --ua-prefix meshmetric-operator 2>"$TMP/halfsync.txt")
if [ "$N_PUT" == 0 ]; then ok "no MeshMetric status written while the pod cache could not re-sync ($(since "$TL") s)"
else bad "no MeshMetric status written while the pod cache could not re-sync" "$(cat "$TMP/halfsync.txt")" \
    "$(H get /apis/kuma.io/v1alpha1/meshmetrics --expr '[(m["metadata"]["name"], m.get("status")) for m in d["items"]]')"; fi
control reset-faults
expect "after the loss: the Deployments' pods are back" wait_pods app=web 2 20
settle "restart (state lost)" 30
expect "after the loss: the Lease is held again" H wait-lease --held --deadline 10

# ================================================================ 7. two replicas
phase "two replicas"
stop_op run2 TERM 20
check "run 2 exits 0 on SIGTERM" "${OP_EXIT[run2]}" "0"
check "the Lease is released on SIGTERM" "$(H lease | python3 -c 'import json,sys; print(repr(json.load(sys.stdin).get("holderIdentity")))')" "''"
REPLICA_FLAGS=(--lease-duration 8 --renew-deadline 5 --retry-period 1 --restart-out-of-sync --restart-rate 60 --restart-max-unavailable 100)
TR=$(now)
start_op a "$HOOK_A" "$MA" replica-a "${REPLICA_FLAGS[@]}"
start_op b "$HOOK_B" "$MB" replica-b "${REPLICA_FLAGS[@]}"
expect "replica a ready" wait_ready a 15
expect "replica b ready" wait_ready b 15
expect "one of them holds the Lease (identity = POD_NAME)" H wait-lease --held --deadline 10
one_leader() { # prints the leader's name when Lease and metrics agree on exactly one
    local holder la lb
    holder=$(H lease | python3 -c 'import json,sys; print(json.load(sys.stdin).get("holderIdentity"))')
    la=$(metric a meshmetric_operator_leader) lb=$(metric b meshmetric_operator_leader)
    case "$holder:$la:$lb" in
        replica-a:1:0) echo a ;;
        replica-b:0:1) echo b ;;
        *) echo "holder=$holder leader(a)=$la leader(b)=$lb"; return 1 ;;
    esac
}
LEADER= PROBLEM=
T_L=$(now)
until LEADER=$(one_leader); do # the gauge may trail the Lease write a little
    awk -v a="$(since "$T_L")" 'BEGIN{exit !(a > 5)}' && { PROBLEM=$LEADER; LEADER=; break; }
    sleep 0.2
done
for i in 1 2 3 4; do
    [ -n "$PROBLEM" ] && break
    sleep 1
    if ! L=$(one_leader); then PROBLEM=$L
    elif [ "$L" != "$LEADER" ]; then PROBLEM="the leader changed from $LEADER to $L"; fi
done
if [ -z "$PROBLEM" ]; then ok "exactly one leader, stable over 4 s: replica-$LEADER (Lease holder and meshmetric_operator_leader agree)"
else bad "exactly one leader, stable over 4 s" "$PROBLEM" "$(all_tails)"; fi
if [ "$LEADER" == b ]; then OTHER=a; else LEADER=a OTHER=b; fi
converge "two replicas: statuses consistent" 15 --kuma-cp
# The webhook Service points at the leader, so kill -9 takes the webhook down with it.
control service-map "{\"meshmetric-system/meshmetric-operator:443\":\"127.0.0.1:${OP_HPORT[$LEADER]}\"}"
T_KILL=$(now)
kill -KILL "${OP_PID[$LEADER]}" 2>/dev/null
wait "${OP_PID[$LEADER]}" 2>/dev/null
OP_PID[$LEADER]=
# A pod created while no replica leads, and while the webhook Service still points at the
# dead one: it is admitted unpatched; only the new leader may report it.
sed 's/name: solo/name: gap/; s/app: solo/app: gap/' "$DATA/pod-solo.yaml" | kin apply -f - >>"$TMP/apply.log" 2>&1
expect "kill -9 the leader: replica-$OTHER takes over within 20 s" H wait-lease --holder "replica-$OTHER" --deadline "$(left "$T_KILL" 20)"
T_ACQ=$(now)
echo "# takeover after kill -9: $(since "$T_KILL")s"
N_GAP=$(H requests --since "$T_KILL" --until "$(awk -v t="$T_ACQ" 'BEGIN{printf "%.3f", t - 0.5}')" --method PUT,PATCH --path-re 'meshmetrics/' --ua-prefix meshmetric-operator 2>&1 >/dev/null | wc -l)
check "no status written while nobody leads" "$N_GAP" "0"
control service-map "{\"meshmetric-system/meshmetric-operator:443\":\"127.0.0.1:${OP_HPORT[$OTHER]}\"}"
expect "replica-$OTHER reports itself leader (meshmetric_operator_leader 1)" wait_metric "$OTHER" meshmetric_operator_leader 1 3
expect "the new leader reports the pod created in the gap" \
    H cond kuma-system/mm-mesh meshmetric.kuma.io/DataplanesInSync False '*' --deadline 10 --contains "shop/gap (created while the webhook was down)"
converge "after the takeover: statuses consistent" 20 --kuma-cp --metrics "http://127.0.0.1:${OP_MPORT[$OTHER]}/metrics"
k -n shop delete pod gap >>"$TMP/apply.log" 2>&1
start_op "$LEADER" "${OP_HPORT[$LEADER]}" "${OP_MPORT[$LEADER]}" "replica-$LEADER" "${REPLICA_FLAGS[@]}"
expect "the killed replica comes back (as the kubelet would restart it)" wait_ready "$LEADER" 15
check "it comes back as a follower" "$(metric "$LEADER" meshmetric_operator_leader)" "0"
T_TERM=$(now)
stop_op "$OTHER" TERM 20
check "SIGTERM on the leader: exits 0" "${OP_EXIT[$OTHER]}" "0"
expect "SIGTERM on the leader: replica-$LEADER takes over at once (< 4 s, lease duration 8 s)" \
    H wait-lease --holder "replica-$LEADER" --deadline "$(left "$T_TERM" 4)"
check "the Lease went through holderIdentity \"\" (released) to replica-$LEADER" \
    "$(H lease-log "$TMP/lease.log" --since "$T_TERM" | python3 -c '
import json, sys
hs = [h["holder"] for h in json.load(sys.stdin)]
while hs and hs[0] == sys.argv[1]:
    hs.pop(0)
print(hs[:2])' "replica-$OTHER")" "['', 'replica-$LEADER']"
control service-map "{\"meshmetric-system/meshmetric-operator:443\":\"127.0.0.1:${OP_HPORT[$LEADER]}\"}"
converge "after the hand-over: statuses consistent" 20 --kuma-cp --metrics "http://127.0.0.1:${OP_MPORT[$LEADER]}/metrics"
expect "only the leader reported Events during the replica phase" \
    H events-by-leader --since "$TR" --lease-log "$TMP/lease.log" --ns shop,kuma-system
alive "$LEADER" "two replicas"
for n in run1 run2 a b; do [ -f "${OP_LOG[$n]:-/nonexistent}" ] && log_clean "$n" "final"; done
check "reconcile queues drained" "$(metric "$LEADER" meshmetric_operator_reconcile_queue_depth --sum)" "0"

summary
