#!/usr/bin/env bash
# One loader, one answer: for every fixture that has policies and a pod
# (tests/data/seeds, tests/data/match, examples/), the JSON Patch the running
# webhook returns (and so the config hash it records) equals, byte for byte,
# what `meshmetric-operator inject -o patch` prints offline — including for
# policies the CLI normalises (an OpenTelemetry URL endpoint) and directories
# holding a policy Kuma would reject (the webhook leaves it out; the CLI
# refuses the file, so that case checks the webhook against the CLI run
# without the invalid policy).
#
# Usage: tests/e2e/oneanswer_test.sh BUILD_DIR
set -u
BUILD=$(cd "${1:-build}" && pwd) || exit 2
BIN=$BUILD/meshmetric-operator
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TMP=$(mktemp -d /tmp/mm-oneanswer.XXXXXX)
SERVER_PID=
PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   - $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $1"; [ $# -gt 1 ] && printf '       %s\n' "$2"; return 0; }
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

SVC=mm-webhook NS=kuma-system HOST=mm-webhook.kuma-system.svc
"$BIN" certs --service $SVC --namespace $NS --out "$TMP/certs" >/dev/null 2>&1 || { echo "certs failed"; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_server POLICY_DIR SYSTEM_NS: serve with that directory, wait until ready
start_server() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    PORT=$(free_port)
    "$BIN" serve --webhook-addr "127.0.0.1:$PORT" --metrics-addr "" \
        --tls-cert-file "$TMP/certs/tls.crt" --tls-key-file "$TMP/certs/tls.key" \
        --policies-dir "$1" --system-namespace "$2" --log-level warn >"$TMP/serve.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        curl -sf --cacert "$TMP/certs/ca.crt" --resolve "$HOST:$PORT:127.0.0.1" \
            "https://$HOST:$PORT/readyz" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "server did not get ready:"; cat "$TMP/serve.log"; return 1
}

# webhook_patch POD_FILE: the decoded patch of /mutate for the pod (compact JSON)
webhook_patch() {
    python3 - "$1" >"$TMP/review.json" <<'PY' || return 1
import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
pod = docs[0]
ns = (pod.get("metadata") or {}).get("namespace") or "default"
print(json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
  "request": {"uid": "0f0e0d0c-1111-2222-3333-444455556666",
    "kind": {"group": "", "version": "v1", "kind": "Pod"},
    "resource": {"group": "", "version": "v1", "resource": "pods"},
    "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
    "requestResource": {"group": "", "version": "v1", "resource": "pods"},
    "name": (pod.get("metadata") or {}).get("name", ""), "namespace": ns,
    "operation": "CREATE", "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
    "object": pod, "oldObject": None, "dryRun": False,
    "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}}}))
PY
    curl -sS --cacert "$TMP/certs/ca.crt" --resolve "$HOST:$PORT:127.0.0.1" \
        -H 'Content-Type: application/json' --data-binary @"$TMP/review.json" \
        "https://$HOST:$PORT/mutate?timeout=10s" |
        python3 -c '
import base64, json, sys
r = json.load(sys.stdin)["response"]
assert r["uid"] == "0f0e0d0c-1111-2222-3333-444455556666", r
print(base64.b64decode(r["patch"]).decode() if "patch" in r else "[]")'
}

# compare NAME POLICIES POD SYSTEM_NS
compare() {
    local name=$1 policies=$2 pod=$3 sysns=$4
    rm -rf "$TMP/pol"; mkdir -p "$TMP/pol"
    [ -n "$policies" ] && cp "$policies" "$TMP/pol/policies.yaml"
    local cli_args=()
    [ -n "$policies" ] && cli_args=(-p "$policies")
    local cli
    if ! cli=$("$BIN" inject -f "$pod" "${cli_args[@]}" -o patch --system-namespace "$sysns" 2>"$TMP/cli.err"); then
        bad "$name: inject failed" "$(head -3 "$TMP/cli.err")"; return
    fi
    start_server "$TMP/pol" "$sysns" || { bad "$name: server"; return; }
    local hook
    hook=$(webhook_patch "$pod") || { bad "$name: webhook call failed"; return; }
    if [ "$cli" == "$hook" ]; then
        ok "$name ($(printf '%s' "$cli" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))') ops)"
    else
        bad "$name: webhook and inject differ" "cli:  $cli"
        printf '       hook: %s\n' "$hook"
    fi
}

n=0
for dir in "$ROOT"/tests/data/seeds/*/ "$ROOT"/tests/data/match/*/; do
    [ -f "$dir/pod.yaml" ] || continue
    pol=""; [ -f "$dir/policies.yaml" ] && pol="$dir/policies.yaml"
    sysns=kuma-system
    [ -f "$dir/expected.json" ] && s=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("systemNamespace",""))' "$dir/expected.json") && [ -n "$s" ] && sysns=$s
    compare "$(basename "$(dirname "$dir")")/$(basename "$dir")" "$pol" "$dir/pod.yaml" "$sysns"
    n=$((n + 1))
done
for pod in "$ROOT"/examples/pod.yaml "$ROOT"/examples/pod-annotations.yaml; do
    compare "examples/$(basename "$pod")" "$ROOT/examples/policies.yaml" "$pod" kuma-system
done

# An invalid policy beside valid ones: the webhook leaves it out and answers as the CLI does
# without it (the CLI refuses to run with a policy Kuma would reject).
cat >"$TMP/valid.yaml" <<'Y'
apiVersion: kuma.io/v1alpha1
kind: MeshMetric
metadata: {name: ok, namespace: kuma-system}
spec:
  default:
    backends: [{type: Prometheus, prometheus: {port: 5671}}]
Y
cp "$TMP/valid.yaml" "$TMP/mixed.yaml"
cat >>"$TMP/mixed.yaml" <<'Y'
---
apiVersion: kuma.io/v1alpha1
kind: MeshMetric
metadata: {name: broken, namespace: kuma-system}
spec:
  targetRef: {kind: Mesh}
  default:
    backends: [{type: Prometheus, prometheus: {port: 0}}]
Y
if "$BIN" inject -f "$ROOT/examples/pod.yaml" -p "$TMP/mixed.yaml" -o patch >/dev/null 2>"$TMP/cli.err"; then
    bad "inject refuses a policy Kuma would reject"
else
    ok "inject refuses a policy Kuma would reject"
fi
cli=$("$BIN" inject -f "$ROOT/examples/pod.yaml" -p "$TMP/valid.yaml" -o patch 2>/dev/null)
rm -rf "$TMP/pol"; mkdir -p "$TMP/pol"; cp "$TMP/mixed.yaml" "$TMP/pol/"
start_server "$TMP/pol" kuma-system
hook=$(webhook_patch "$ROOT/examples/pod.yaml")
if [ "$cli" == "$hook" ]; then ok "webhook leaves the invalid policy out"; else bad "webhook leaves the invalid policy out" "cli $cli / hook $hook"; fi
verbose=$(curl -s --cacert "$TMP/certs/ca.crt" --resolve "$HOST:$PORT:127.0.0.1" "https://$HOST:$PORT/readyz?verbose")
case "$verbose" in *"MeshMetric kuma-system/broken: spec.default.backends.backend[0].port: port must be a valid (1-65535)"*) ok "/readyz?verbose names the invalid policy" ;; *) bad "/readyz?verbose names the invalid policy" "$verbose" ;; esac
metrics=$(curl -s --cacert "$TMP/certs/ca.crt" --resolve "$HOST:$PORT:127.0.0.1" "https://$HOST:$PORT/metrics")
case "$metrics" in *"meshmetric_policy_invalid 1"*) ok "/metrics counts it" ;; *) bad "/metrics counts it" ;; esac
logged=$(grep -c 'invalid policy left out' "$TMP/serve.log")
[ "$logged" == 1 ] && ok "logged once" || bad "logged once" "logged $logged times"
for _ in 1 2 3; do webhook_patch "$ROOT/examples/pod.yaml" >/dev/null; done
logged=$(grep -c 'invalid policy left out' "$TMP/serve.log")
[ "$logged" == 1 ] && ok "not logged again per admission" || bad "not logged again per admission" "logged $logged times"

echo "$n fixtures compared"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
