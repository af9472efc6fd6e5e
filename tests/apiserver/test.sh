#!/usr/bin/env bash
# Acceptance tests for the local test API server (tests/apiserver/), driven by the real
# kubectl 1.32. Starts its own server through hack/cluster.sh with MM_LOCAL_DIR pointing at
# a temporary directory, so it never touches a developer's .local/.
# Prints "N passed, M failed" last; exits non-zero on any failure.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
if [ -z "${KUBECTL:-}" ]; then
  KUBECTL=$(dirname "$(readlink -f "$(command -v kubectl)")")/kubectl.1.32
fi
[ -x "$KUBECTL" ] || { echo "kubectl 1.32 not found (set KUBECTL)"; echo "0 passed, 1 failed"; exit 1; }
export KUBECTL

WORK=$(mktemp -d /tmp/mm-apiserver-test.XXXXXX)
export MM_LOCAL_DIR=$WORK/local
export PYTHONDONTWRITEBYTECODE=1
export HOME=$WORK/home
mkdir -p "$HOME"
KCFG=$MM_LOCAL_DIR/kubeconfig
CLUSTER=$ROOT/hack/cluster.sh
TD=$HERE/testdata
PIDS=()

cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  "$CLUSTER" down >/dev/null 2>&1
  if [ "${KEEP_WORK:-}" = 1 ]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   - $1"; }
ko() { FAIL=$((FAIL + 1)); echo "FAIL - $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/       | /' | head -n 15; }

k() { "$KUBECTL" --kubeconfig "$KCFG" --cache-dir "$WORK/cache" "$@" </dev/null; }

# expect DESC PATTERN CMD...: command succeeds and its output (stdout+stderr) matches PATTERN (ERE; "" = any)
expect() {
  local desc=$1 pat=$2 out rc
  shift 2
  out=$("$@" 2>&1); rc=$?
  if [ $rc -eq 0 ] && { [ -z "$pat" ] || grep -Eq -- "$pat" <<<"$out"; }; then ok "$desc"; else ko "$desc (rc=$rc)" "$out"; fi
}
# expect_fail DESC PATTERN CMD...: command fails and its output matches PATTERN (fixed string)
expect_fail() {
  local desc=$1 pat=$2 out rc
  shift 2
  out=$("$@" 2>&1); rc=$?
  if [ $rc -ne 0 ] && grep -Fq -- "$pat" <<<"$out"; then ok "$desc"; else ko "$desc (rc=$rc)" "$out"; fi
}
# same-value check
expect_eq() {
  if [ "$2" = "$3" ]; then ok "$1"; else ko "$1" "expected [$3], got [$2]"; fi
}

PORT() { cat "$MM_LOCAL_DIR/apiserver.port"; }
TOKEN() { cat "$MM_LOCAL_DIR/token"; }
# raw API call: curlk METHOD PATH [curl args...] -> prints body, then "HTTP <code>" on the last line
curlk() {
  local m=$1 p=$2
  shift 2
  curl -sS --cacert "$MM_LOCAL_DIR/pki/ca.crt" -H "Authorization: Bearer $(TOKEN)" -X "$m" \
    -w '\nHTTP %{http_code}\n' "$@" "https://127.0.0.1:$(PORT)$p"
}
control() { curlk POST "/_control/$1" -H 'Content-Type: application/json' -d "${2:-{\}}" >/dev/null; }

echo "# python unit tests"
if out=$(cd "$HERE" && python3 -m unittest -q test_jsonpatch_v4 2>&1); then ok "json-patch v4 table and kubectl --local cross-check"; else ko "json-patch v4 unit tests" "$out"; fi

echo "# cluster.sh"
expect "cluster.sh up prints export line" "^export KUBECONFIG=$KCFG\$" "$CLUSTER" up --state "$WORK/state"
expect "cluster.sh up again is a no-op" "^export KUBECONFIG=" "$CLUSTER" up
expect "cluster.sh status" "running" "$CLUSTER" status
expect "kubeconfig has CA data and token" "token: mm-" grep -E 'certificate-authority-data|token' "$KCFG"
expect "version reports v1.32.0" "Server Version: v1.32.0" k version
expect "namespace label set by the server" "kubernetes.io/metadata.name=default" k get ns default --show-labels
expect_fail "wrong token is rejected with 401" "You must be logged in to the server (Unauthorized)" \
  "$KUBECTL" --kubeconfig "$KCFG" --cache-dir "$WORK/cache" --token=wrong get pods
expect "401 body is a Status" '"reason":"Unauthorized".*"code":401' \
  curl -sS --cacert "$MM_LOCAL_DIR/pki/ca.crt" -H "Authorization: Bearer wrong" "https://127.0.0.1:$(PORT)/api/v1/pods"

echo "# CRDs and discovery"
for f in crd-meshmetrics.yaml crd-meshes.yaml crd-widgets.yaml; do
  expect "apply $f (default validation)" "created" k apply -f "$TD/$f"
done
expect "discovery lists meshmetrics with shortName mm" "meshmetrics +mm +kuma.io/v1alpha1 +true +MeshMetric" k api-resources
expect "discovery lists cluster-scoped meshes" "meshes +kuma.io/v1alpha1 +false +Mesh" k api-resources
expect "widgets/status in discovery" '"widgets/status"' k get --raw /apis/example.com/v1
expect_fail "meshmetrics has no /status" "NotFound" k get --raw /apis/kuma.io/v1alpha1/namespaces/default/meshmetrics/x/status

echo "# custom resources"
expect "apply MeshMetric (client-side, default validation)" "meshmetric.kuma.io/mm-default created" k apply -f "$TD/meshmetric.yaml"
expect "apply cluster-scoped Mesh" "mesh.kuma.io/default created" k apply -f "$TD/mesh.yaml"
expect "get mm by shortName -o yaml" "generation: 1" k get mm mm-default -o yaml
sed 's/5670/5671/' "$TD/meshmetric.yaml" >"$WORK/mm2.yaml"
expect "client-side apply again (merge patch)" "configured" k apply -f "$WORK/mm2.yaml"
expect_eq "spec change bumps generation" "$(k get mm mm-default -o jsonpath='{.metadata.generation}')" "2"
rm -f "$WORK/watch.out"
"$KUBECTL" --kubeconfig "$KCFG" --cache-dir "$WORK/cache" get mm -w --output-watch-events -o json \
  --request-timeout=0 </dev/null >"$WORK/watch.out" 2>&1 &
WPID=$!
PIDS+=("$WPID")
for _ in $(seq 1 50); do grep -q '"ADDED"' "$WORK/watch.out" 2>/dev/null && break; sleep 0.1; done
expect "label" "labeled" k label mm mm-default team=obs
expect "annotate" "annotated" k annotate mm mm-default example.com/note=hello
for _ in $(seq 1 50); do [ "$(grep -c '"MODIFIED"' "$WORK/watch.out")" -ge 2 ] && break; sleep 0.1; done
kill "$WPID" 2>/dev/null
expect "get -w received ADDED then MODIFIED events" '"type":"MODIFIED"' tr -d ' \n' <"$WORK/watch.out"
expect_eq "labels/annotations do not bump generation" "$(k get mm mm-default -o jsonpath='{.metadata.generation}')" "2"
expect "patch --type=json on CR" "patched" k patch mm mm-default --type=json -p '[{"op":"replace","path":"/spec/targetRef/kind","value":"MeshService"},{"op":"add","path":"/spec/targetRef/name","value":"web"}]'
expect_eq "json patch applied" "$(k get mm mm-default -o jsonpath='{.spec.targetRef.kind}/{.spec.targetRef.name}')" "MeshService/web"
expect "json patch v4 quirk: replace creates missing key" "patched" k patch mm mm-default --type=json -p '[{"op":"replace","path":"/metadata/labels/quirk","value":"yes"}]'
expect_fail "failing json patch -> 422 Invalid" "is invalid: : error in remove for path: '/metadata/labels/nope': Unable to remove nonexistent key: nope: missing value" \
  k patch mm mm-default --type=json -p '[{"op":"remove","path":"/metadata/labels/nope"}]'
expect "patch --type=merge on CR" "patched" k patch mm mm-default --type=merge -p '{"metadata":{"labels":{"quirk":null}},"spec":{"targetRef":{"name":"api"}}}'
expect_eq "merge patch removed label and changed spec" "$(k get mm mm-default -o jsonpath='{.metadata.labels.quirk}{.spec.targetRef.name}')" "api"
expect_fail "strategic merge patch on CR -> 415" "the body of the request was in an unknown format" \
  k patch mm mm-default --type=strategic -p '{"spec":{"targetRef":{"name":"x"}}}'
G0=$(k get mm mm-default -o jsonpath='{.metadata.generation}')
expect "status write via main endpoint (no status subresource)" "patched" k patch mm mm-default --type=merge \
  -p '{"status":{"conditions":[{"type":"Ready","status":"True","reason":"Reconciled","message":"","lastTransitionTime":"2025-01-01T00:00:00Z"}]}}'
expect_eq "status change without subresource bumps generation" "$(k get mm mm-default -o jsonpath='{.metadata.generation}')" "$((G0 + 1))"
expect_fail "patch --subresource=status on MeshMetric -> NotFound" "NotFound" \
  k patch mm mm-default --subresource=status --type=merge -p '{"status":{}}'
expect "get cluster-scoped mesh" "default" k get meshes default -o name

echo "# status subresource, wait, server-side apply"
expect "create widget" "widget.example.com/w1 created" k create -f "$TD/widget.yaml"
expect "widget create drops status" "" test -z "$(k get wg w1 -o jsonpath='{.status}')"
WAITOUT=$WORK/wait.out
"$KUBECTL" --kubeconfig "$KCFG" --cache-dir "$WORK/cache" wait --for=condition=Ready widget/w1 --timeout=20s </dev/null >"$WAITOUT" 2>&1 &
WAITPID=$!
PIDS+=("$WAITPID")
sleep 1
expect "patch --subresource=status" "patched" k patch wg w1 --subresource=status --type=merge \
  -p '{"status":{"conditions":[{"type":"Ready","status":"True","reason":"Done","message":"ok","lastTransitionTime":"2025-01-01T00:00:00Z"}]}}'
wait "$WAITPID"; WRC=$?
if [ $WRC -eq 0 ] && grep -q "condition met" "$WAITOUT"; then ok "wait --for=condition=Ready"; else ko "wait --for=condition=Ready (rc=$WRC)" "$(cat "$WAITOUT")"; fi
expect_eq "status write does not bump generation" "$(k get wg w1 -o jsonpath='{.metadata.generation}')" "1"
k patch wg w1 --type=merge -p '{"status":{"phase":"ignored"},"spec":{"size":2}}' >/dev/null 2>&1
expect_eq "main endpoint ignores status, bumps generation on spec" \
  "$(k get wg w1 -o jsonpath='{.status.phase}|{.metadata.generation}|{.status.conditions[0].type}')" "|2|Ready"
sed 's/color: blue/color: red/; s/name: w1/name: w2/' "$TD/widget.yaml" >"$WORK/w2.yaml"
expect "server-side apply creates" "serverside-applied" k apply --server-side -f "$WORK/w2.yaml"
sed 's/color: blue/color: green/; s/name: w1/name: w2/' "$TD/widget.yaml" >"$WORK/w2.yaml"
expect "server-side apply updates" "serverside-applied" k apply --server-side -f "$WORK/w2.yaml"
expect_eq "server-side apply result" "$(k get wg w2 -o jsonpath='{.spec.color}')" "green"
expect "apply patch without fieldManager -> 422" '"fieldManager: Required value: is required for apply patch".*|HTTP 422' \
  curlk PATCH /apis/example.com/v1/namespaces/default/widgets/w2 -H 'Content-Type: application/apply-patch+yaml' \
  -d '{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w2"}}'
expect "PUT on CR without resourceVersion -> 422" 'metadata.resourceVersion: Invalid value: 0x0: must be specified for an update' \
  curlk PUT /apis/example.com/v1/namespaces/default/widgets/w2 -H 'Content-Type: application/json' \
  -d '{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w2","namespace":"default"},"spec":{}}'
expect "delete CR" 'widget.example.com "w2" deleted' k delete wg w2
expect_fail "deleted CR is NotFound" 'widgets.example.com "w2" not found' k get wg w2
expect "DELETE of a CR returns a Success Status" '"status":"Success"' curlk DELETE /apis/example.com/v1/namespaces/default/widgets/w1

echo "# built-ins: pods, configmaps, strategic merge, paging, conflicts"
expect "create pod" "pod/demo created" k create -f "$TD/pod.json"
expect_eq "pod defaults (phase, namespace, restartPolicy, uid, creationTimestamp)" \
  "$(k get pod demo -o jsonpath='{.status.phase}|{.metadata.namespace}|{.spec.restartPolicy}|' 2>&1)$(k get pod demo -o json | python3 -c 'import json,sys; m=json.load(sys.stdin)["metadata"]; print(len(m["uid"]) == 36 and m["creationTimestamp"].endswith("Z"))')" \
  "Pending|default|Always|True"
expect "strategic merge patch merges containers by name" "patched" k patch pod demo --type=strategic \
  -p '{"spec":{"containers":[{"name":"sidecar","image":"busybox"},{"name":"app","env":[{"name":"B","value":"2"}]}]}}'
expect_eq "containers merged" "$(k get pod demo -o jsonpath='{.spec.containers[*].name}|{.spec.containers[0].env[*].name}')" "app sidecar|A B"
expect "strategic \$patch: delete" "patched" k patch pod demo --type=strategic -p '{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}'
expect_eq "sidecar removed" "$(k get pod demo -o jsonpath='{.spec.containers[*].name}')" "app"
sed 's/nginx:1.25/nginx:1.26/' "$TD/pod.json" >"$WORK/pod2.json"
k delete pod demo >/dev/null 2>&1
expect "client-side apply creates pod" "pod/demo created" k apply -f "$TD/pod.json"
expect "client-side apply again (strategic merge patch)" "pod/demo configured" k apply -f "$WORK/pod2.json"
expect_eq "applied image" "$(k get pod demo -o jsonpath='{.spec.containers[0].image}')" "nginx:1.26"
expect "delete pod returns the object" '"kind":"Pod"' curlk DELETE /api/v1/namespaces/default/pods/demo
for i in 1 2 3; do k create configmap "page-$i" --from-literal=i=$i >/dev/null; k label cm "page-$i" i=$i >/dev/null; done
expect_eq "get --chunk-size=1 pages through all" "$(k get cm --chunk-size=1 -o name | grep -c page-)" "3"
expect "chunked list used limit=1 and continue" "limit=1.*continue=|continue=.*limit=1" \
  sh -c "curl -sS --cacert '$MM_LOCAL_DIR/pki/ca.crt' -H 'Authorization: Bearer $(TOKEN)' https://127.0.0.1:$(PORT)/_control/requests | tr ',' '\n' | grep configmaps"
RV1=$(k get --raw '/api/v1/namespaces/default/configmaps?limit=1' | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["metadata"]["resourceVersion"], d["metadata"]["continue"])')
k create configmap page-4 --from-literal=i=4 >/dev/null
RV2=$(k get --raw "/api/v1/namespaces/default/configmaps?limit=1&continue=${RV1#* }" | python3 -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["resourceVersion"])')
expect_eq "list pages keep the first page's resourceVersion" "$RV2" "${RV1%% *}"
expect_eq "label selector in/notin/!=/exists/!key" \
  "$(k get cm -l 'i in (1,2),i!=2,i,!nope,i notin (3)' -o name)" "configmap/page-1"
expect_eq "field selector metadata.name" "$(k get cm --field-selector metadata.name=page-3 -o name)" "configmap/page-3"
k get cm page-1 -o json >"$WORK/stale.json"
k label cm page-1 touched=yes >/dev/null
expect_fail "replace with stale resourceVersion -> 409" \
  'Operation cannot be fulfilled on configmaps "page-1": the object has been modified; please apply your changes to the latest version and try again' \
  k replace -f "$WORK/stale.json"
expect_fail "create existing -> AlreadyExists" 'configmaps "page-1" already exists' k create configmap page-1
expect "dry-run=server create" "created \\(server dry run\\)" k create configmap dry --from-literal=a=b --dry-run=server
expect_fail "dry-run persisted nothing" 'configmaps "dry" not found' k get cm dry
GEN=$(printf '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"gen-"}}' | \
  "$KUBECTL" --kubeconfig "$KCFG" --cache-dir "$WORK/cache" create -f - -o name 2>&1)
if [[ "$GEN" =~ ^configmap/gen-[a-z0-9]{5}$ ]]; then ok "generateName gives a random suffix"; else ko "generateName" "$GEN"; fi
expect "events.k8s.io view of core events" '"note":"hello"' sh -c \
  "$(printf '%q ' curl -sS --cacert "$MM_LOCAL_DIR/pki/ca.crt" -H "Authorization: Bearer $(TOKEN)" -H 'Content-Type: application/json' \
  -d '{"metadata":{"name":"ev1"},"involvedObject":{"kind":"Pod","name":"demo"},"reason":"Test","message":"hello","type":"Normal"}' \
  "https://127.0.0.1:$(PORT)/api/v1/namespaces/default/events") >/dev/null && $(printf '%q ' "$KUBECTL" --kubeconfig "$KCFG" --cache-dir "$WORK/cache") get --raw /apis/events.k8s.io/v1/namespaces/default/events/ev1"

echo "# leases"
LEASE='{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"mm-leader","namespace":"default"},"spec":{"holderIdentity":"a","leaseDurationSeconds":15}}'
expect "PUT creates a Lease (201)" "HTTP 201" curlk PUT /apis/coordination.k8s.io/v1/namespaces/default/leases/mm-leader -H 'Content-Type: application/json' -d "$LEASE"
expect "PUT Lease without resourceVersion -> 422" "HTTP 422" curlk PUT /apis/coordination.k8s.io/v1/namespaces/default/leases/mm-leader -H 'Content-Type: application/json' -d "$LEASE"
LRV=$(k get lease mm-leader -o jsonpath='{.metadata.resourceVersion}')
L2=${LEASE/\"namespace\":\"default\"/\"namespace\":\"default\",\"resourceVersion\":\"$LRV\"}
L2=${L2/\"holderIdentity\":\"a\"/\"holderIdentity\":\"b\"}
expect "PUT Lease with current resourceVersion" "HTTP 200" curlk PUT /apis/coordination.k8s.io/v1/namespaces/default/leases/mm-leader -H 'Content-Type: application/json' -d "$L2"
expect "PUT Lease with stale resourceVersion -> 409" '"reason":"Conflict".*|HTTP 409' curlk PUT /apis/coordination.k8s.io/v1/namespaces/default/leases/mm-leader -H 'Content-Type: application/json' -d "$L2"

echo "# watch semantics"
expect "watch=1 with resourceVersion=0 sends ADDED and ends at timeoutSeconds" '"type":"ADDED"' \
  k get --raw '/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=0&allowWatchBookmarks=true&timeoutSeconds=1'
expect "bookmark before the timeout ends the watch" '"type":"BOOKMARK","object":\{"kind":"ConfigMap","apiVersion":"v1","metadata":\{"resourceVersion":"[0-9]+"\}' \
  k get --raw '/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1&allowWatchBookmarks=true&timeoutSeconds=1'
CRV=$(k get --raw /api/v1/namespaces/default/configmaps | python3 -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["resourceVersion"])')
k label cm page-2 replay=yes >/dev/null
expect "watch from resourceVersion replays history" '"type":"MODIFIED".*"replay":"yes"' \
  k get --raw "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=$CRV&timeoutSeconds=1"
control compact
expect "too-old resourceVersion -> ERROR 410 Expired event" '"type":"ERROR".*too old resource version: 1 .*"reason":"Expired","code":410' \
  k get --raw '/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=1'
control expire-next-watch
expect "control: expire-next-watch" '"reason":"Expired"' k get --raw '/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=0'
control expire-next-watch
expect "kubectl get -w prints the expiry" "too old resource version" timeout 20 "$KUBECTL" --kubeconfig "$KCFG" --cache-dir "$WORK/cache" get cm -w
start=$(date +%s)
"$KUBECTL" --kubeconfig "$KCFG" --cache-dir "$WORK/cache" get --raw '/api/v1/namespaces/default/configmaps?watch=1' </dev/null >/dev/null 2>&1 &
WP=$!
PIDS+=("$WP")
sleep 1
control close-watches
wait "$WP"
expect_eq "control: close-watches ends streams" "$(( $(date +%s) - start < 5 ))" "1"
control fail '{"verb":"get","resource":"configmaps","code":503,"count":1}'
expect_fail "control: fail next get with 503" "ServiceUnavailable" k get cm page-1
expect "next get succeeds again" "page-1" k get cm page-1 -o name
control latency '{"verb":"list","resource":"configmaps","ms":700}'
t0=$(date +%s%N); k get cm -o name >/dev/null; t1=$(date +%s%N)
control latency '{"verb":"list","resource":"configmaps","ms":0}'
expect_eq "control: latency injection" "$(( (t1 - t0) >= 700000000 ))" "1"

echo "# admission webhooks"
PKI=$WORK/hookpki
python3 "$HERE/pki.py" "$PKI" hookca testhook DNS:testhook.webhooks.svc
python3 "$HERE/pki.py" "$PKI" otherca other DNS:testhook.webhooks.svc
HOOKLOG=$WORK/hook.log
python3 "$HERE/testwebhook.py" --cert "$PKI/testhook.crt" --key "$PKI/testhook.key" --port-file "$WORK/hook.port" --log "$HOOKLOG" &
PIDS+=("$!")
for _ in $(seq 1 50); do [ -s "$WORK/hook.port" ] && break; sleep 0.1; done
HP=$(cat "$WORK/hook.port")
FREEPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
control service-map "{\"webhooks/testhook:443\":\"127.0.0.1:$HP\",\"webhooks/wronghost:443\":\"127.0.0.1:$HP\",\"webhooks/refused\":\"127.0.0.1:$FREEPORT\"}"
CA_GOOD=$(base64 -w0 <"$PKI/hookca.crt")
CA_BAD=$(base64 -w0 <"$PKI/otherca.crt")
hookcfg() { # kind name svc path ca policy nslabel [resources-json] [sideEffects]
  local res=${8:-'"pods"'} side=${9:-None}
  cat <<EOF
{"apiVersion":"admissionregistration.k8s.io/v1","kind":"$1","metadata":{"name":"$2"},
 "webhooks":[{"name":"$2","admissionReviewVersions":["v1"],"sideEffects":"$side","failurePolicy":"$6",
   "clientConfig":{"service":{"namespace":"webhooks","name":"$3","path":"$4"},"caBundle":"$5"},
   "namespaceSelector":{"matchExpressions":[{"key":"hook","operator":"In","values":["$7"]}]},
   "rules":[{"operations":["CREATE","UPDATE"],"apiGroups":["","kuma.io"],"apiVersions":["v1","v1alpha1"],"resources":[$res]}]}]}
EOF
}
for ns in good badca badsan ignore unpadded dry reinv wronguid nokind refused; do
  k create namespace "wh-$ns" >/dev/null && k label namespace "wh-$ns" hook=$ns >/dev/null
done
hookcfg MutatingWebhookConfiguration a-mutate.test.io testhook /mutate "$CA_GOOD" Fail good >"$WORK/h1.json"
hookcfg MutatingWebhookConfiguration b-badca.test.io testhook /mutate "$CA_BAD" Fail badca >"$WORK/h2.json"
hookcfg MutatingWebhookConfiguration c-badsan.test.io wronghost /mutate "$CA_GOOD" Fail badsan >"$WORK/h3.json"
hookcfg MutatingWebhookConfiguration d-ignore.test.io testhook /mutate "$CA_BAD" Ignore ignore >"$WORK/h4.json"
hookcfg MutatingWebhookConfiguration e-unpadded.test.io testhook /unpadded "$CA_GOOD" Fail unpadded >"$WORK/h5.json"
hookcfg MutatingWebhookConfiguration f-dry.test.io testhook /mutate "$CA_GOOD" Fail dry '"pods"' Some >"$WORK/h6.json"
hookcfg ValidatingWebhookConfiguration deny.test.io testhook /validate "$CA_GOOD" Fail good '"pods","meshmetrics"' >"$WORK/h7.json"
hookcfg MutatingWebhookConfiguration g-reinv-a.test.io testhook /mutate-reinvoke "$CA_GOOD" Fail reinv | \
  sed 's/"failurePolicy":"Fail"/"failurePolicy":"Fail","reinvocationPolicy":"IfNeeded"/' >"$WORK/h8.json"
hookcfg MutatingWebhookConfiguration h-reinv-b.test.io testhook /mutate-second "$CA_GOOD" Fail reinv >"$WORK/h9.json"
hookcfg MutatingWebhookConfiguration i-wronguid.test.io testhook /wrong-uid "$CA_GOOD" Fail wronguid >"$WORK/h10.json"
hookcfg MutatingWebhookConfiguration j-nokind.test.io testhook /no-kind "$CA_GOOD" Fail nokind >"$WORK/h11.json"
hookcfg MutatingWebhookConfiguration k-refused.test.io refused /mutate "$CA_GOOD" Fail refused >"$WORK/h12.json"
for f in h1 h2 h3 h4 h5 h6 h7 h8 h9 h10 h11 h12; do k create -f "$WORK/$f.json" >/dev/null || ko "create webhook config $f"; done
sed 's/"caBundle":"[^"]*"/"caBundle":"CA_BUNDLE"/; s/a-mutate.test.io/placeholder.test.io/g' "$WORK/h1.json" >"$WORK/h0.json"
expect_fail "caBundle must be base64 (a []byte field)" "illegal base64 data at input byte 2" k create -f "$WORK/h0.json"
expect_eq "webhook defaults applied" "$(k get mutatingwebhookconfiguration a-mutate.test.io -o jsonpath='{.webhooks[0].timeoutSeconds}/{.webhooks[0].matchPolicy}/{.webhooks[0].reinvocationPolicy}/{.webhooks[0].clientConfig.service.port}')" "10/Equivalent/Never/443"
POD='{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p1"},"spec":{"containers":[{"name":"app","image":"nginx:1.25"}]}}'
printf '%s' "$POD" >"$WORK/p1.json"
OUT=$(k create -n wh-good -f "$WORK/p1.json" 2>&1); RC=$?
if [ $RC -eq 0 ] && grep -q "^Warning: testhook mutated Pod p1" <<<"$OUT"; then ok "webhook warning printed by kubectl"; else ko "webhook warning" "$OUT"; fi
expect_eq "pod mutated by webhook" "$(k get pod p1 -n wh-good -o jsonpath='{.metadata.labels.mutated-by}')" "testhook"
expect "webhook request: ?timeout=10s, CREATE, oldObject null, options, dryRun" \
  '"path": "/mutate\?timeout=10s".*"operation": "CREATE".*"oldObject": null, "dryRun": false, "options": \{"kind": "CreateOptions"' sh -c "grep '\"/mutate' '$HOOKLOG' | tail -n 1"
expect "mutating webhook sees creationTimestamp null, no uid/resourceVersion on CREATE" "^True$" python3 -c '
import json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if "/mutate" in l][-1]["request"]
m = r["object"]["metadata"]
print(m.get("creationTimestamp", "x") is None and "uid" not in m and "resourceVersion" not in m)' "$HOOKLOG"
expect_fail "wrong CA + failurePolicy Fail" \
  'Internal error occurred: failed calling webhook "b-badca.test.io": failed to call webhook: Post "https://testhook.webhooks.svc:443/mutate?timeout=10s": tls: failed to verify certificate: x509: certificate signed by unknown authority' \
  k create -n wh-badca -f "$WORK/p1.json"
expect_fail "wrong SAN + failurePolicy Fail" \
  'x509: certificate is valid for testhook.webhooks.svc, not wronghost.webhooks.svc' k create -n wh-badsan -f "$WORK/p1.json"
expect "wrong CA + failurePolicy Ignore is skipped" "pod/p1 created" k create -n wh-ignore -f "$WORK/p1.json"
expect_eq "skipped webhook did not mutate" "$(k get pod p1 -n wh-ignore -o jsonpath='{.metadata.labels.mutated-by}')" ""
expect_fail "unpadded base64 patch fails like Go" 'failed calling webhook "e-unpadded.test.io": failed to call webhook: illegal base64 data at input byte' \
  k create -n wh-unpadded -f "$WORK/p1.json"
expect_fail "sideEffects Some + dry run -> 400" 'admission webhook "f-dry.test.io" does not support dry run' \
  k create -n wh-dry -f "$WORK/p1.json" --dry-run=server
printf '%s' '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p2","labels":{"deny":"true"}},"spec":{"containers":[{"name":"app","image":"nginx:1.25"}]}}' >"$WORK/p2.json"
expect_fail "validating webhook denial" 'admission webhook "deny.test.io" denied the request: label deny=true is not allowed' \
  k create -n wh-good -f "$WORK/p2.json"
expect "update goes through mutating admission as UPDATE" "labeled" k label pod p1 -n wh-good extra=1
expect "webhook saw UPDATE with oldObject" '"operation": "UPDATE"' sh -c "grep '\"UPDATE\"' '$HOOKLOG' | grep -v '\"oldObject\": null' | tail -n 1"
sed 's/namespace: default/namespace: wh-good/; s/kuma.io\/mesh: default/deny: "true"/' "$TD/meshmetric.yaml" >"$WORK/mm-deny.yaml"
expect_fail "validating webhook on a custom resource" 'admission webhook "deny.test.io" denied the request: label deny=true is not allowed' \
  k apply -f "$WORK/mm-deny.yaml"

expect "reinvocationPolicy IfNeeded: both mutations applied" "mutated-by=testhook,second=yes" sh -c \
  "$(printf '%q ' "$KUBECTL" --kubeconfig "$KCFG" --cache-dir "$WORK/cache") create -n wh-reinv -f '$WORK/p1.json' >/dev/null 2>&1 </dev/null; $(printf '%q ' "$KUBECTL" --kubeconfig "$KCFG" --cache-dir "$WORK/cache") get pod p1 -n wh-reinv --show-labels </dev/null"
expect_eq "IfNeeded webhook was called again after a later webhook changed the object" "$(grep -c '/mutate-reinvoke' "$HOOKLOG")" "2"

expect_fail "response uid is checked first" \
  'failed calling webhook "i-wronguid.test.io": received invalid webhook response: expected response.uid="' k create -n wh-wronguid -f "$WORK/p1.json"
expect_fail "response without apiVersion/kind" \
  'received invalid webhook response: expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got /, Kind=' k create -n wh-nokind -f "$WORK/p1.json"
expect_fail "connection refused is a call failure" \
  "failed calling webhook \"k-refused.test.io\": failed to call webhook: Post \"https://refused.webhooks.svc:443/mutate?timeout=10s\": dial tcp 127.0.0.1:$FREEPORT: connect: connection refused" \
  k create -n wh-refused -f "$WORK/p1.json"

echo "# restart with state"
k create configmap persisted --from-literal=x=1 >/dev/null
sleep 1  # the snapshot is written within 0.5 s of a change
OLDPORT=$(PORT)
expect "cluster.sh restart keeps state" "export KUBECONFIG=" "$CLUSTER" restart
expect_eq "same port after restart" "$(PORT)" "$OLDPORT"
expect "object survived the restart" "configmap/persisted" k get cm persisted -o name
expect "CRD-backed resources served after restart" "mm-default" k get mm -o name
curlk POST /_control/restart -H 'Content-Type: application/json' -d '{"keepState":false}' >/dev/null
expect_fail "control restart without state loses objects" 'configmaps "persisted" not found' k get cm persisted

echo "# scale: 10,000 pods, paging, 5 watchers"
if out=$(python3 "$HERE/test_scale.py" --kubeconfig "$KCFG" 2>&1); then ok "scale test"; echo "$out" | sed 's/^/       /'; else ko "scale test" "$out"; fi

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
