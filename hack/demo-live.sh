#!/usr/bin/env bash
# Live part of the demo: the whole product against the local API server (tests/apiserver),
# driven by the real kubectl. The operator runs as in a cluster: it watches the API server,
# manages its own webhook certificate (Secret + caBundle), admits pods from its caches, and
# keeps MeshMetric status and Events true.
#
# Interactive (a terminal): keeps running until Ctrl-C, then cleans up.
# Otherwise (or DEMO_WAIT=0): shows everything once and cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bin=$root/build/meshmetric-operator
export MM_LOCAL_DIR=$root/.local/demo
rm -rf "$MM_LOCAL_DIR"; mkdir -p "$MM_LOCAL_DIR/certs"
kubectl_bin=$(dirname "$(readlink -f "$(command -v kubectl)")")/kubectl.1.32
[ -x "$kubectl_bin" ] || kubectl_bin=$(command -v kubectl)
export HOME=$MM_LOCAL_DIR/home; mkdir -p "$HOME"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
mport=$(free_port)
op_pid=
cleanup() {
  if [ -n "$op_pid" ]; then
    kill "$op_pid" 2>/dev/null && wait "$op_pid" 2>/dev/null || true
  fi
  "$root/hack/cluster.sh" down >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'echo; echo "stopping"; exit 0' INT TERM
step() { printf '\n\033[1m-- %s\033[0m\n' "$*"; }
wait_for() { # wait_for SECONDS CMD...: poll until CMD succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

step "start the local API server; Service meshmetric-system/meshmetric-operator -> 127.0.0.1:$port"
eval "$("$root/hack/cluster.sh" up --service-map "meshmetric-system/meshmetric-operator:443=127.0.0.1:$port")"
k() { "$kubectl_bin" --kubeconfig "$KUBECONFIG" "$@" </dev/null; }

step "a cluster that already runs Kuma: the CRDs, MeshMetric policies, and a pod"
k apply --validate=false -f crds/
k create namespace meshmetric-system
k create namespace kuma-system
k apply --validate=false -f examples/policies.yaml
k create -f examples/pod.yaml -o name | tee "$MM_LOCAL_DIR/early.name"

step "install meshmetric-operator: the webhook registrations (no caBundle yet), then the operator"
sed 's|caBundle: CA_BUNDLE|caBundle: ""|' manifests/webhook-configurations.yaml >"$MM_LOCAL_DIR/webhooks.yaml"
k apply --validate=false -f "$MM_LOCAL_DIR/webhooks.yaml"

step "meshmetric-operator serve: watches the cluster, manages its certificate, leader election"
echo "(the pod above was created before the operator ran, so the webhook never saw it)"
"$bin" serve --kubeconfig "$KUBECONFIG" --namespace meshmetric-system \
  --webhook-addr "127.0.0.1:$port" --metrics-addr "127.0.0.1:$mport" \
  --manage-webhook-certs --tls-cert-file "$MM_LOCAL_DIR/certs/tls.crt" \
  --tls-key-file "$MM_LOCAL_DIR/certs/tls.key" --leader-elect --log-format logfmt \
  2>"$MM_LOCAL_DIR/operator.log" &
op_pid=$!
if ! wait_for 60 curl -fsS "http://127.0.0.1:$mport/readyz"; then
  echo "the operator did not get ready; its log:"; tail -n 30 "$MM_LOCAL_DIR/operator.log"; exit 1
fi
curl -fsS "http://127.0.0.1:$mport/readyz?verbose"
echo "certificate Secret: $(k get secret -n meshmetric-system meshmetric-operator-webhook-tls -o jsonpath='{.type}')"
echo "caBundle filled in: $(k get mutatingwebhookconfiguration meshmetric-operator -o jsonpath='{.webhooks[0].clientConfig.caBundle}' | head -c 24)..."
echo "Lease holder: $(k get lease -n meshmetric-system meshmetric-operator -o jsonpath='{.spec.holderIdentity}')"

step "kubectl apply an invalid MeshMetric: the validating webhook answers with Kuma's messages"
k apply -f examples/invalid-meshmetric.yaml 2>&1 || true

step "kubectl create the same pod again: the API server calls /mutate and stores it patched"
wait_for 30 sh -c "\"$kubectl_bin\" --kubeconfig \"$KUBECONFIG\" get mutatingwebhookconfiguration meshmetric-operator -o jsonpath='{.webhooks[0].clientConfig.caBundle}' </dev/null | grep -q ."
k create -f examples/pod.yaml -o name | tee "$MM_LOCAL_DIR/pod.name"
k get -n shop-prod "$(cat "$MM_LOCAL_DIR/pod.name")" -o json | python3 -c '
import json,sys
p=json.load(sys.stdin); c=[c for c in p["spec"]["containers"] if c["name"]=="kuma-sidecar"][0]
print("annotations:", json.dumps({k:v for k,v in p["metadata"]["annotations"].items() if k.startswith("meshmetric")}, indent=2))
print("kuma-sidecar ports:", json.dumps(c.get("ports"), indent=2))
print("kuma-sidecar TLS env:", json.dumps([e for e in c["env"] if "METRICS" in e["name"]], indent=2))
print("metrics volume:", json.dumps([v for v in p["spec"]["volumes"] if v["name"]=="meshmetric-tls"], indent=2))'

step "kubectl get meshmetrics -A: which dataplanes run the config their policies ask for"
status_ready() { k get meshmetric -n shop-prod checkout-app-metrics -o jsonpath='{.status.conditions[?(@.type=="meshmetric.kuma.io/DataplanesInSync")].reason}' | grep -q "InSync:1,OutOfSync:1"; }
wait_for 30 status_ready || true
k get meshmetrics -A
k get meshmetrics -A -o wide
k get meshmetric -n shop-prod checkout-app-metrics -o jsonpath='{range .status.conditions[*]}{.type}{"\t"}{.status}{"\t"}{.reason}{"\n   "}{.message}{"\n"}{end}'

step "Events: the pod created before the operator is reported out of sync"
k get events.events.k8s.io -A -o custom-columns='TYPE:.type,REASON:.reason,OBJECT:.regarding.kind,NAME:.regarding.name,COUNT:.series.count,NOTE:.note' | cut -c1-200

step "the operator's metrics"
curl -fsS "http://127.0.0.1:$mport/metrics" |
  grep -E '^meshmetric_(operator_(leader|dataplanes)|webhook_admissions_total|policy_reloads_total)' || true

if [ "${DEMO_WAIT:-}" != 0 ] && [ -t 0 ]; then
  step "running; try: KUBECONFIG=$KUBECONFIG $kubectl_bin get mm -A   (Ctrl-C stops and cleans up)"
  while kill -0 "$op_pid" 2>/dev/null; do sleep 1; done
fi
