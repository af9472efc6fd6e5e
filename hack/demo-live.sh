#!/usr/bin/env bash
# Live part of the demo: the local API server (tests/apiserver), the real
# webhook over HTTPS registered with it, and the real kubectl as the client.
# Called by hack/demo.sh after the build; leaves nothing running.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bin=$root/build/meshmetric-operator
export MM_LOCAL_DIR=$root/.local/demo
rm -rf "$MM_LOCAL_DIR"; mkdir -p "$MM_LOCAL_DIR/policies"
kubectl_bin=$(dirname "$(readlink -f "$(command -v kubectl)")")/kubectl.1.32
[ -x "$kubectl_bin" ] || kubectl_bin=$(command -v kubectl)
export HOME=$MM_LOCAL_DIR/home; mkdir -p "$HOME"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
serve_pid=
cleanup() {
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
  "$root/hack/cluster.sh" down >/dev/null 2>&1 || true
}
trap cleanup EXIT
step() { printf '\n\033[1m-- %s\033[0m\n' "$*"; }

step "start the local API server; webhook Service meshmetric-system/meshmetric-operator -> 127.0.0.1:$port"
eval "$("$root/hack/cluster.sh" up --service-map "meshmetric-system/meshmetric-operator:443=127.0.0.1:$port")"
k() { "$kubectl_bin" --kubeconfig "$KUBECONFIG" "$@" </dev/null; }

step "certs: CA and ECDSA serving certificate for meshmetric-operator.meshmetric-system.svc"
ca_bundle=$("$bin" certs --service meshmetric-operator --namespace meshmetric-system --out "$MM_LOCAL_DIR/certs" | tail -n 1)
ls "$MM_LOCAL_DIR/certs"

step "serve: the webhook, policies from a directory"
cp examples/policies.yaml "$MM_LOCAL_DIR/policies/"
"$bin" serve --webhook-addr "127.0.0.1:$port" --metrics-addr "" \
  --tls-cert-file "$MM_LOCAL_DIR/certs/tls.crt" --tls-key-file "$MM_LOCAL_DIR/certs/tls.key" \
  --policies-dir "$MM_LOCAL_DIR/policies" --log-level warn 2>"$MM_LOCAL_DIR/serve.log" &
serve_pid=$!
for _ in $(seq 50); do
  curl -fsS --cacert "$MM_LOCAL_DIR/certs/ca.crt" --resolve "meshmetric-operator.meshmetric-system.svc:$port:127.0.0.1" \
    "https://meshmetric-operator.meshmetric-system.svc:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

step "kubectl apply: CRDs, namespaces, webhook registrations"
k apply -f crds/
k create namespace meshmetric-system
sed "s|CA_BUNDLE|$ca_bundle|" manifests/webhook-configurations.yaml > "$MM_LOCAL_DIR/webhooks.yaml"
k apply -f "$MM_LOCAL_DIR/webhooks.yaml"
k create namespace kuma-system
k create namespace legacy
k apply -f examples/policies.yaml

step "kubectl apply an invalid MeshMetric: the validating webhook answers with Kuma's message"
k apply -f examples/invalid-meshmetric.yaml || true

step "kubectl create the pod: the API server calls /mutate and stores the patched pod"
k create -f examples/pod.yaml -o name | tee "$MM_LOCAL_DIR/pod.name"
k get -n shop-prod "$(cat "$MM_LOCAL_DIR/pod.name")" -o json | python3 -c '
import json,sys
p=json.load(sys.stdin); c=[c for c in p["spec"]["containers"] if c["name"]=="kuma-sidecar"][0]
print("annotations:", json.dumps({k:v for k,v in p["metadata"]["annotations"].items() if k.startswith("meshmetric")}, indent=2))
print("kuma-sidecar ports:", json.dumps(c.get("ports"), indent=2))
print("kuma-sidecar TLS env:", json.dumps([e for e in c["env"] if "METRICS" in e["name"]], indent=2))
print("metrics volume:", json.dumps([v for v in p["spec"]["volumes"] if v["name"]=="meshmetric-tls"], indent=2))'

step "a pod with a wrong annotation is created, and kubectl prints the webhook's warning"
k create -f examples/pod-annotations.yaml -o name 2>&1 || true

step "the webhook's own metrics"
curl -fsS --cacert "$MM_LOCAL_DIR/certs/ca.crt" --resolve "meshmetric-operator.meshmetric-system.svc:$port:127.0.0.1" \
  "https://meshmetric-operator.meshmetric-system.svc:$port/metrics" | grep -E '^meshmetric_(webhook_requests_total|patches|validation)' || true
