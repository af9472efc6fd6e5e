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
# expect_out DESC PATTERN CMD...: whatever the exit status, the output contains PATTERN (fixed string)
expect_out() {
  local desc=$1 pat=$2 out rc
  shift 2
  out=$("$@" 2>&1); rc=$?
  if grep -Fq -- "$pat" <<<"$out"; then ok "$desc"; else ko "$desc (rc=$rc)" "$out"; fi
}
# expect_fail_lines DESC LINES CMD...: command fails and its output contains every line of LINES
expect_fail_lines() {
  local desc=$1 pat=$2 out rc l
  shift 2
  out=$("$@" 2>&1); rc=$?
  if [ $rc -eq 0 ]; then ko "$desc (rc=0)" "$out"; return; fi
  while IFS= read -r l; do
    grep -Fq -- "$l" <<<"$out" || { ko "$desc (missing: $l)" "$out"; return; }
  done <<<"$pat"
  ok "$desc"
}
# pycases GROUP: the checks of one test_semantics.py group, each PASS/FAIL line one test
pycases() {
  local line other=""
  while IFS= read -r line; do
    case "$line" in
      "PASS "*) ok "${line#PASS }" ;;
      "FAIL "*) line=${line#FAIL }; ko "${line%% :: *}" "${line#* :: }" ;;
      *) other+="$line"$'\n' ;;
    esac
  done < <(cd "$HERE" && python3 test_semantics.py "$1" 2>&1)
  [ -z "$other" ] || ko "test_semantics.py $1: unexpected output" "$other"
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

echo "# custom resources: structural schema (apiextensions-apiserver v0.32)"
expect "apply crd-gadgets.yaml (status subresource, defaults, enum, pattern, bounds, formats)" "created" k apply -f "$TD/crd-gadgets.yaml"
gadget() { # name spec-json [extra-metadata-json]
  printf '{"apiVersion":"example.com/v1","kind":"Gadget","metadata":{"name":"%s","namespace":"default"%s},"spec":%s}\n' \
    "$1" "${3:-}" "$2" >"$WORK/$1.json"
}
gadget g-unknown '{"size":1,"foo":1,"extra":{"any":{"deep":1}},"ports":[{"port":80,"bar":2}]}' ',"foo":"x"'
expect_fail "apiserver pkg/endpoints/handlers/create.go + apiextensions customresource_handler.go: kubectl apply (fieldValidation=Strict) -> 400 strict decoding error" \
  'Error from server (BadRequest): error when creating "'"$WORK"'/g-unknown.json": Gadget in version "v1" cannot be handled as a Gadget: strict decoding error: unknown field "metadata.foo", unknown field "spec.foo", unknown field "spec.ports[0].bar"' \
  k apply -f "$WORK/g-unknown.json"
OUT=$(k create --validate=warn -f "$WORK/g-unknown.json" 2>&1)
if grep -qx 'Warning: unknown field "spec.foo"' <<<"$OUT" && grep -qx 'Warning: unknown field "spec.ports\[0\].bar"' <<<"$OUT" && grep -q "created" <<<"$OUT"; then
  ok "apiserver pkg/endpoints/handlers/rest.go addStrictDecodingWarnings: fieldValidation=Warn -> one Warning per unknown field"
else ko "fieldValidation=Warn warnings" "$OUT"; fi
expect_eq "apiextensions pkg/apiserver/schema/pruning/algorithm.go: unknown fields pruned, metadata coerced, preserve-unknown-fields kept" \
  "$(k get gd g-unknown -o json | python3 -c 'import json,sys; o=json.load(sys.stdin); print(sorted(o["spec"]), "foo" in o["metadata"], o["spec"]["extra"], o["spec"]["ports"])')" \
  "['color', 'extra', 'mode', 'ports', 'size'] False {'any': {'deep': 1}} [{'port': 80, 'protocol': 'TCP'}]"
expect_eq "apiextensions pkg/apiserver/schema/defaulting/algorithm.go: defaults applied on create (also inside list items)" \
  "$(k get gd g-unknown -o jsonpath='{.spec.color}/{.spec.mode}/{.spec.ports[0].protocol}')" "blue/auto/TCP"
gadget g-ignore '{"size":2,"zzz":1}'
OUT=$(k create --validate=false -f "$WORK/g-ignore.json" 2>&1)
if [ $? -eq 0 ] && ! grep -q Warning <<<"$OUT"; then ok "apiserver pkg/endpoints/handlers/create.go: fieldValidation=Ignore -> pruned silently"; else ko "fieldValidation=Ignore" "$OUT"; fi
expect "apiserver pkg/endpoints/handlers/rest.go fieldValidation: no parameter means Warn (Warning header)" \
  '^< Warning: 299 - "unknown field \\"spec.x\\""' sh -c "$(printf '%q ' curl -sS -v --cacert "$MM_LOCAL_DIR/pki/ca.crt" -H "Authorization: Bearer $(TOKEN)" \
  -H 'Content-Type: application/json' -d '{"apiVersion":"example.com/v1","kind":"Gadget","metadata":{"name":"g-warn"},"spec":{"size":3,"x":1}}' \
  "https://127.0.0.1:$(PORT)/apis/example.com/v1/namespaces/default/gadgets") 2>&1 | tr -d '\r'"
expect "apimachinery pkg/apis/meta/v1/validation/validation.go ValidateFieldValidation: unknown fieldValidation -> 422" \
  'CreateOptions.meta.k8s.io \\"\\" is invalid: fieldValidation: Unsupported value: \\"Bogus\\": supported values: \\"\\", \\"Ignore\\", \\"Strict\\", \\"Warn\\"' \
  curlk POST '/apis/example.com/v1/namespaces/default/gadgets?fieldValidation=Bogus' -H 'Content-Type: application/json' -d '{"metadata":{"name":"g-x"},"spec":{"size":1}}'
expect "sigs.k8s.io/json UnmarshalStrict via handlers/create.go: a duplicate field with fieldValidation=Strict -> 400" \
  'strict decoding error: duplicate field \\"spec.size\\".*HTTP 400' sh -c "$(printf '%q ' curl -sS --cacert "$MM_LOCAL_DIR/pki/ca.crt" -H "Authorization: Bearer $(TOKEN)" \
  -H 'Content-Type: application/json' -w 'HTTP %{http_code}' -d '{"metadata":{"name":"g-dup"},"spec":{"size":1,"size":2}}' \
  "https://127.0.0.1:$(PORT)/apis/example.com/v1/namespaces/default/gadgets?fieldValidation=Strict")"
gadget g-bad '{"size":"big","color":"pink","name":"ABCDEFGHIJ","tags":["a","b","c"],"when":"yesterday"}'
OUT=$(k create -f "$WORK/g-bad.json" 2>&1)
want='The Gadget "g-bad" is invalid: 
* spec.color: Unsupported value: "pink": supported values: "red", "green", "blue"
* spec.name: Too long: may not be more than 8 bytes
* spec.size: Invalid value: "string": spec.size in body must be of type integer: "string"
* spec.tags: Too many: 3: must have at most 2 items
* spec.when: Invalid value: "yesterday": spec.when in body must be of type date-time: "yesterday"'
expect_eq "apiextensions pkg/apiserver/validation/validation.go + kube-openapi pkg/validation: enum, maxLength, type, maxItems, format" "$OUT" "$want"
gadget g-bad2 '{"size":11,"name":"a"}'
expect_fail_lines "kube-openapi pkg/validation/validate: minimum/maximum and minLength messages" \
  '* spec.name: Invalid value: "a": spec.name in body should be at least 2 chars long
* spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10' k create -f "$WORK/g-bad2.json"
gadget g-bad3 '{"name":"Abc"}'
expect "apiextensions pkg/apiserver/validation/validation.go: one cause per error, with the field.ErrorType reasons" \
  '"causes":\[\{"reason":"FieldValueInvalid","message":"Invalid value: \\"Abc\\": spec.name in body should match .\^\[a-z\]\+\$.","field":"spec.name"\},\{"reason":"FieldValueRequired","message":"Required value","field":"spec.size"\}\]' \
  curlk POST /apis/example.com/v1/namespaces/default/gadgets -H 'Content-Type: application/json' -d @"$WORK/g-bad3.json"
expect "apimachinery pkg/api/errors/errors.go NewInvalid: '<Kind>.<group> \"<name>\" is invalid: [<field>: <detail>, ...]'" \
  '"message":"Gadget.example.com \\"g-bad3\\" is invalid: \[spec.name: Invalid value: \\"Abc\\": spec.name in body should match .\^\[a-z\]\+\$., spec.size: Required value\]","reason":"Invalid","details":\{"name":"g-bad3","group":"example.com","kind":"Gadget"' \
  curlk POST /apis/example.com/v1/namespaces/default/gadgets -H 'Content-Type: application/json' -d @"$WORK/g-bad3.json"
COND='{"type":"Ready","status":"True","message":"","lastTransitionTime":"2025-01-01T00:00:00Z"'
expect_fail "apiextensions schema validation: a condition reason that does not match the metav1.Condition pattern -> 422" \
  "The Gadget \"g-unknown\" is invalid: status.conditions[0].reason: Invalid value: \"not valid!\": status.conditions[0].reason in body should match '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?\$'" \
  k patch gd g-unknown --subresource=status --type=merge -p "{\"status\":{\"conditions\":[$COND,\"reason\":\"not valid!\"}]}}"
expect_fail "apiextensions schema validation: a condition without reason -> 422 Required value" \
  'The Gadget "g-unknown" is invalid: status.conditions[0].reason: Required value' \
  k patch gd g-unknown --subresource=status --type=merge -p "{\"status\":{\"conditions\":[$COND}]}}"
expect "apiextensions schema validation: a valid metav1.Condition is accepted" "patched" k patch gd g-unknown --subresource=status --type=merge -p "{\"status\":{\"conditions\":[$COND,\"reason\":\"Reconciled\"}]}}"
expect_out "apiserver pkg/endpoints/handlers/patch.go: kubectl patch (fieldValidation unset = Warn) warns about an unknown field" \
  'Warning: unknown field "spec.bogus"' k patch gd g-unknown --type=merge -p '{"spec":{"bogus":1}}'
expect "apiserver pkg/endpoints/handlers/patch.go jsonPatcher: unknown field with fieldValidation=Strict -> 422 patch: Invalid value" \
  '"message":" \\"\\" is invalid: patch: Invalid value: .*strict decoding error: unknown field \\"spec.bogus\\"","reason":"Invalid".*"code":422' \
  curlk PATCH '/apis/example.com/v1/namespaces/default/gadgets/g-unknown?fieldValidation=Strict' -H 'Content-Type: application/merge-patch+json' -d '{"spec":{"bogus":1}}'
sed 's/"foo":1,//; s/,"bar":2//; s/,"foo":"x"//' "$WORK/g-unknown.json" | python3 -c 'import json,sys; o=json.load(sys.stdin); o["spec"]["typo"]=1; print(json.dumps(o))' >"$WORK/g-ssa.json"
expect_fail "apimachinery pkg/util/managedfields/internal/structuredmerge.go: server-side apply of an undeclared field -> 500 typed patch error" \
  'failed to create typed patch object (default/g-unknown; example.com/v1, Kind=Gadget): .spec.typo: field not declared in schema' \
  k apply --server-side -f "$WORK/g-ssa.json"
k patch crd gadgets.example.com --type=json -p '[{"op":"add","path":"/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/level","value":{"type":"integer","default":3}}]' >/dev/null 2>&1
expect_eq "apiextensions customresource_handler.go crdConversionRESTOptionsGetter: defaults are also applied on read" \
  "$(k get gd g-unknown -o jsonpath='{.spec.level}')" "3"
expect_fail "apiextensions pkg/apiserver/schema/defaulting/validation.go: a CRD default must match its schema" \
  'spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[color].default: Unsupported value: "blue": supported values: "red", "green"' \
  k patch crd gadgets.example.com --type=json -p '[{"op":"replace","path":"/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/color/enum","value":["red","green"]}]'
k patch crd gadgets.example.com --type=json -p '[{"op":"replace","path":"/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/color/enum","value":["red","green"]},{"op":"replace","path":"/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/color/default","value":"red"}]' >/dev/null 2>&1
expect "apiextensions pkg/apiserver/validation/ratcheting.go: an unchanged invalid value does not block other updates" \
  "patched" k patch gd g-unknown --type=merge -p '{"spec":{"size":4}}'
expect_fail "apiextensions pkg/apiserver/validation/ratcheting.go: a changed value is validated" \
  'spec.color: Unsupported value: "yellow": supported values: "red", "green"' k patch gd g-unknown --type=merge -p '{"spec":{"color":"yellow"}}'
expect_eq "apiextensions customresource_handler.go crConverter: selectableFields in field selectors" \
  "$(k get gd --field-selector spec.color=blue -o name | tr '\n' ' ')" "gadget.example.com/g-ignore gadget.example.com/g-unknown gadget.example.com/g-warn "
expect_fail "apiextensions customresource_handler.go crConverter: other fields -> field label not supported" \
  'field label not supported: spec.size' k get gd --field-selector spec.size=1

echo "# MicroTime and Time fields (apimachinery pkg/apis/meta/v1/micro_time.go, time.go)"
lease() { printf '{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"%s","namespace":"default"},"spec":{"holderIdentity":"a","leaseDurationSeconds":15%s}}\n' "$1" "$2" >"$WORK/$1.json"; }
lease lt-1 ',"renewTime":"2025-01-01T00:00:00Z"'
expect_fail "apimachinery micro_time.go UnmarshalJSON + handlers/rest.go transformDecodeError: seconds only -> 400" \
  'Error from server (BadRequest): error when creating "'"$WORK"'/lt-1.json": Lease in version "v1" cannot be handled as a Lease: parsing time "2025-01-01T00:00:00Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "Z" as ".000000"' \
  k create -f "$WORK/lt-1.json"
lease lt-2 ',"renewTime":"2025-01-01T00:00:00.1234567Z"'
expect_fail "Go time.Parse with RFC3339Micro: seven fractional digits -> 400" \
  'parsing time "2025-01-01T00:00:00.1234567Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "7Z" as "Z07:00"' k create -f "$WORK/lt-2.json"
lease lt-3 ',"renewTime":"2025-02-30T00:00:00.000000Z"'
expect_fail "Go time.Parse: day out of range -> 400" 'parsing time "2025-02-30T00:00:00.000000Z": day out of range' k create -f "$WORK/lt-3.json"
lease lt-4 ',"acquireTime":12'
expect_fail "encoding/json: a number for a MicroTime -> 400" \
  'json: cannot unmarshal number into Go struct field LeaseSpec.spec.acquireTime of type string' k create -f "$WORK/lt-4.json"
lease lt-ok ',"acquireTime":"2025-01-01T02:00:00.123456+02:00","renewTime":"2025-01-01T00:00:00.654321Z"'
expect "apimachinery micro_time.go: six digits with an offset are accepted" "created" k create -f "$WORK/lt-ok.json"
expect_eq "apimachinery micro_time.go MarshalJSON: returned in UTC with six digits" \
  "$(k get lease lt-ok -o jsonpath='{.spec.acquireTime}|{.spec.renewTime}')" "2025-01-01T00:00:00.123456Z|2025-01-01T00:00:00.654321Z"
expect "apiserver pkg/endpoints/handlers/patch.go: a bad MicroTime in a merge patch -> 422 patch: Invalid value" \
  'is invalid: patch: Invalid value: .*parsing time \\"tomorrow\\" as \\"2006-01-02T15:04:05.000000Z07:00\\": cannot parse \\"tomorrow\\" as \\"2006\\".*"code":422' \
  curlk PATCH /apis/coordination.k8s.io/v1/namespaces/default/leases/lt-ok -H 'Content-Type: application/merge-patch+json' -d '{"spec":{"renewTime":"tomorrow"}}'
printf '{"apiVersion":"v1","kind":"Event","metadata":{"name":"ev-time"},"involvedObject":{"kind":"Pod","name":"p","namespace":"default"},"reason":"R","message":"m","firstTimestamp":"2025-01-01T02:00:00.9+02:00"}\n' >"$WORK/ev-time.json"
expect "apimachinery time.go: metav1.Time accepts fractions and offsets" "created" k create -f "$WORK/ev-time.json"
expect_eq "apimachinery time.go MarshalJSON: written back in UTC, seconds precision" \
  "$(k get ev ev-time -o jsonpath='{.firstTimestamp}')" "2025-01-01T00:00:00Z"
gadget g-ts '{"size":1}' ',"creationTimestamp":"yesterday"'
expect "apiextensions pkg/apiserver/schema/objectmeta/coerce.go: metadata of a custom resource is decoded as ObjectMeta (kubectl would refuse it client-side)" \
  'Gadget in version \\"v1\\" cannot be handled as a Gadget: parsing time \\"yesterday\\" as \\"2006-01-02T15:04:05Z07:00\\": cannot parse \\"yesterday\\" as \\"2006\\"","reason":"BadRequest"' \
  curlk POST /apis/example.com/v1/namespaces/default/gadgets -H 'Content-Type: application/json' -d @"$WORK/g-ts.json"

echo "# Events (kubernetes pkg/apis/core/validation/events.go, pkg/apis/{core,events}/v1/conversion.go)"
cat >"$WORK/ev-new.yaml" <<EOF
apiVersion: events.k8s.io/v1
kind: Event
metadata:
  name: ev-new
regarding: {kind: Pod, name: p, namespace: default}
note: hello
EOF
expect_fail_lines "events.go ValidateEventCreate: events.k8s.io/v1 requires eventTime and a type" \
  'The Event "ev-new" is invalid: 
* eventTime: Required value
* type: Invalid value: "": has invalid value: ' k create -f "$WORK/ev-new.yaml"
cat >>"$WORK/ev-new.yaml" <<EOF
eventTime: "2025-01-01T00:00:00.000000Z"
type: Normal
EOF
expect_fail_lines "events.go legacyValidateEvent: with eventTime, reportingController/Instance, action and reason are required" \
  '* reportingController: Required value
* reportingController: Invalid value: "": name part must be non-empty
* reportingController: Invalid value: "": name part must consist of alphanumeric characters
* reportingInstance: Required value
* action: Required value
* reason: Required value' k create -f "$WORK/ev-new.yaml"
cat >>"$WORK/ev-new.yaml" <<EOF
reportingController: meshmetric.kuma.io/operator
reportingInstance: operator-0
action: Reconcile
reason: Reconciled
EOF
expect "events.go: a complete events.k8s.io/v1 Event is created" "created" k create -f "$WORK/ev-new.yaml"
python3 -c 'import sys; print(open(sys.argv[1]).read().replace("ev-new", "ev-long").replace("note: hello", "note: " + "x" * 1025))' "$WORK/ev-new.yaml" >"$WORK/ev-long.yaml"
expect_fail "events.go: note longer than 1 kB -> 422 (reported on the internal field message)" \
  'message: Invalid value: "": can have at most 1024 characters' k create -f "$WORK/ev-long.yaml"
expect_fail "events.go ValidateEventUpdate: note is immutable" \
  'The Event "ev-new" is invalid: message: Invalid value: "changed": field is immutable' \
  k patch events.v1.events.k8s.io ev-new --type=merge -p '{"note":"changed"}'
printf '{"apiVersion":"v1","kind":"Event","metadata":{"name":"ev-ns"},"involvedObject":{"kind":"Pod","name":"p","namespace":"other"},"reason":"R","message":"m"}\n' >"$WORK/ev-ns.json"
expect_fail "events.go legacyValidateEvent: core/v1 involvedObject.namespace must match the Event's namespace" \
  'The Event "ev-ns" is invalid: involvedObject.namespace: Invalid value: "other": does not match event.namespace' k create -f "$WORK/ev-ns.json"
expect_eq "core/v1 conversion.go field labels: involvedObject.name on core events" \
  "$(k get events --field-selector involvedObject.name=p,reason=Reconciled -o name)" "event/ev-new"
expect_eq "events/v1 conversion.go field labels: regarding.name and reportingController on events.k8s.io" \
  "$(k get events.v1.events.k8s.io --field-selector regarding.name=p,reportingController=meshmetric.kuma.io/operator -o name)" "event.events.k8s.io/ev-new"
expect_fail "events/v1 conversion.go: involvedObject.* on events.k8s.io -> 400 field label not supported" \
  'field label not supported: involvedObject.name' k get events.v1.events.k8s.io --field-selector involvedObject.name=p
expect_fail "core/v1 conversion.go: regarding.* on core events -> 400 field label not supported" \
  'field label not supported: regarding.name' k get events --field-selector regarding.name=p
expect_fail "apimachinery pkg/runtime DefaultMetaV1FieldSelectorConversion: configmaps only metadata.name/namespace" \
  '"data.a" is not a known field selector: only "metadata.name", "metadata.namespace"' k get cm --field-selector data.a=1

echo "# lists (apiserver pkg/storage/etcd3/store.go, errors.go, continue.go, cacher/cacher.go)"
pycases lists

echo "# watches (apiserver pkg/storage/cacher/cache_watcher.go, cacher.go)"
pycases watch
k create configmap wsel --from-literal=v=1 >/dev/null
k label cm wsel app=wsel >/dev/null
"$KUBECTL" --kubeconfig "$KCFG" --cache-dir "$WORK/cache" get cm -l app=wsel -w --output-watch-events -o json \
  --request-timeout=0 </dev/null >"$WORK/wsel.out" 2>&1 &
WPID=$!
PIDS+=("$WPID")
for _ in $(seq 1 50); do grep -q '"ADDED"' "$WORK/wsel.out" 2>/dev/null && break; sleep 0.1; done
k label cm wsel app=other --overwrite >/dev/null
for _ in $(seq 1 50); do grep -q '"DELETED"' "$WORK/wsel.out" 2>/dev/null && break; sleep 0.1; done
kill "$WPID" 2>/dev/null
expect_eq "cache_watcher.go via kubectl get -w: relabelling out of the selector is DELETED with the old labels" \
  "$(python3 -c 'import json,sys
d = json.JSONDecoder(); s = open(sys.argv[1]).read(); i = 0; out = []
while i < len(s):
    if s[i].isspace(): i += 1; continue
    e, i = d.raw_decode(s, i); out.append("%s:%s" % (e["type"], e["object"]["metadata"]["labels"]["app"]))
print(" ".join(out))' "$WORK/wsel.out")" "ADDED:wsel DELETED:wsel"
expect "WatchList via kubectl get --raw: initial ADDED then the initial-events-end BOOKMARK" \
  '"type":"BOOKMARK","object":\{"kind":"ConfigMap","apiVersion":"v1","metadata":\{"resourceVersion":"[0-9]+","annotations":\{"k8s.io/initial-events-end":"true"\}' \
  k get --raw '/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1'

echo "# errors (apiserver pkg/server/filters, pkg/endpoints/handlers/responsewriters)"
pycases errors
control fail '{"verb":"get","resource":"configmaps","code":429,"flowcontrol":true,"count":1}'
expect "apiserver filters/priority-and-fairness.go: kubectl (client-go) retries after Retry-After and succeeds" "configmap/wsel" k get cm wsel -o name
pycases shutdown

echo "# Table output (apiextensions tableconvertor.go, kubernetes pkg/printers/internalversion/printers.go)"
expect "apply crd-meshmetrics-columns.yaml (additionalPrinterColumns)" "configured" k apply -f "$TD/crd-meshmetrics-columns.yaml"
k patch mm mm-default --type=merge -p '{"status":{"conditions":[{"type":"Ready","status":"True","reason":"Reconciled","message":"","lastTransitionTime":"2025-01-01T00:00:00Z"},{"type":"InSync","status":"False","reason":"Pending","message":"","lastTransitionTime":"2025-01-01T00:00:00Z"}]}}' >/dev/null
expect "tableconvertor.go: kubectl get mm -A prints NAME first, then the CRD's printer columns" \
  '^NAMESPACE +NAME +TARGETREF +READY +IN SYNC +AGE$' sh -c "$(printf '%q ' "$KUBECTL" --kubeconfig "$KCFG" --cache-dir "$WORK/cache") get mm -A </dev/null | head -n 1"
expect "tableconvertor.go: JSONPath filter columns and a date column rendered as an age" \
  '^default +mm-default +MeshService +True +False +[0-9]+[smhd]' k get mm -A
expect "tableconvertor.go: priority > 0 columns only with -o wide" \
  '^NAME +TARGETREF +READY +IN SYNC +AGE +REASON +GENERATION$' k get mm -o wide
expect "customresource_handler.go: a CRD without printer columns gets NAME and AGE" '^NAME +AGE$' k get gd
expect "printers.go: pods" '^NAME +READY +STATUS +RESTARTS +AGE$' k get pods -n wh-ignore
expect "printers.go: pods -o wide" '^p1 +0/1 +Pending +0 +[0-9]+[smh].* +<none> +<none> +<none> +<none>$' k get pods -n wh-ignore -o wide
expect "printers.go: namespaces" '^default +Active +[0-9]+' k get ns default
expect "printers.go: core events (LAST SEEN TYPE REASON OBJECT MESSAGE)" '^LAST SEEN +TYPE +REASON +OBJECT +MESSAGE$' k get events
expect "printers.go: leases (NAME HOLDER AGE)" '^lt-ok +a +[0-9]+' k get leases
expect "response.go asTable: includeObject defaults to Metadata (PartialObjectMetadata rows)" \
  '"rows":\[\{"cells":\["mm-default","MeshService","True","False","[0-9a-z]+","Reconciled",[0-9]+\],"object":\{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":\{' \
  curlk GET /apis/kuma.io/v1alpha1/namespaces/default/meshmetrics -H 'Accept: application/json;as=Table;v=v1;g=meta.k8s.io'
expect "response.go asTable: includeObject=Object embeds the whole object" '"object":\{"apiVersion":"kuma.io/v1alpha1","kind":"MeshMetric"' \
  curlk GET '/apis/kuma.io/v1alpha1/namespaces/default/meshmetrics?includeObject=Object' -H 'Accept: application/json;as=Table;v=v1;g=meta.k8s.io'

echo "# RBAC (kubernetes plugin/pkg/auth/authorizer/rbac/rbac.go, apiserver responsewriters/errors.go)"
k create namespace rbac >/dev/null
k create serviceaccount op -n rbac >/dev/null
k create role mm-reader -n rbac --verb=get,list,watch --resource=meshmetrics.kuma.io >/dev/null
k create rolebinding op-mm-reader -n rbac --role=mm-reader --serviceaccount=rbac:op >/dev/null
k create role gadget-status -n rbac --verb=get,patch --resource=gadgets.example.com/status --resource-name=g1 >/dev/null
k create rolebinding op-gadget-status -n rbac --role=gadget-status --serviceaccount=rbac:op >/dev/null
k create role gadget-get -n rbac --verb=get --resource=gadgets.example.com >/dev/null
k create rolebinding op-gadget-get -n rbac --role=gadget-get --serviceaccount=rbac:op >/dev/null
k create clusterrole cm-all --verb='*' --resource=configmaps >/dev/null
k create clusterrolebinding op-cm-all --clusterrole=cm-all --serviceaccount=rbac:op >/dev/null
k create rolebinding op-missing -n rbac --role=does-not-exist --serviceaccount=rbac:op >/dev/null
sed 's/namespace: default/namespace: rbac/' "$TD/meshmetric.yaml" >"$WORK/mm-rbac.yaml"
k apply -f "$WORK/mm-rbac.yaml" >/dev/null
gadget g1 '{"size":1}'
sed -i 's/"namespace":"default"/"namespace":"rbac"/' "$WORK/g1.json"
k create -f "$WORK/g1.json" >/dev/null
SAKC=$WORK/kubeconfig-op
expect "hack/cluster.sh kubeconfig-sa writes a kubeconfig with a ServiceAccount token (apiserver pkg/authentication/serviceaccount/util.go user)" "^export KUBECONFIG=$SAKC\$" "$CLUSTER" kubeconfig-sa rbac op "$SAKC"
sa() { "$KUBECTL" --kubeconfig "$SAKC" --cache-dir "$WORK/cache-sa" "$@" </dev/null; }
expect "rbac.go: a RoleBinding grants list" "mm-default" sa get mm
expect "rbac.go: ... and watch" '"type":"ADDED"' sa get --raw '/apis/kuma.io/v1alpha1/namespaces/rbac/meshmetrics?watch=1&timeoutSeconds=1'
expect_fail "responsewriters/errors.go forbiddenMessage: namespaced resource without a name" \
  'Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:rbac:op" cannot list resource "pods" in API group "" in the namespace "rbac"' sa get pods
expect_fail "responsewriters/errors.go forbiddenMessage: with a name, a group, and the resolution error as reason" \
  'Error from server (Forbidden): meshmetrics.kuma.io "mm-default" is forbidden: User "system:serviceaccount:rbac:op" cannot delete resource "meshmetrics" in API group "kuma.io" in the namespace "rbac": RBAC: role.rbac.authorization.k8s.io "does-not-exist" not found' \
  sa delete mm mm-default
expect_fail "responsewriters/errors.go forbiddenMessage: cluster scope" \
  'namespaces is forbidden: User "system:serviceaccount:rbac:op" cannot list resource "namespaces" in API group "" at the cluster scope' sa get ns
expect_fail "requestinfo.go: a namespace is its own namespace in the message" \
  'namespaces "rbac" is forbidden: User "system:serviceaccount:rbac:op" cannot get resource "namespaces" in API group "" in the namespace "rbac"' sa get ns rbac
expect "evaluation_helpers.go ResourceMatches: gadgets/status with resourceNames allows the status subresource" "patched" \
  sa patch gd g1 --subresource=status --type=merge -p "{\"status\":{\"conditions\":[$COND,\"reason\":\"Ok\"}]}}"
expect_fail "evaluation_helpers.go: ... but not the main resource" \
  'gadgets.example.com "g1" is forbidden: User "system:serviceaccount:rbac:op" cannot patch resource "gadgets" in API group "example.com" in the namespace "rbac"' \
  sa patch gd g1 --type=merge -p '{"spec":{"size":2}}'
expect "evaluation_helpers.go VerbMatches '*': a ClusterRoleBinding grants configmaps everywhere" "configmap/by-sa created" sa create configmap by-sa -n default
expect "kubectl auth can-i (SelfSubjectAccessReview): yes" "^yes$" sa auth can-i list meshmetrics.kuma.io
expect_fail "kubectl auth can-i: no" "no" sa auth can-i delete meshmetrics.kuma.io
expect "kubectl auth can-i with resourceNames: yes for g1" "^yes$" sa auth can-i patch gadgets.example.com/g1 --subresource=status
expect_fail "kubectl auth can-i with resourceNames: no for g2" "no" sa auth can-i patch gadgets.example.com/g2 --subresource=status
expect "bootstrappolicy system:discovery and public-info-viewer: discovery and /version for any ServiceAccount" "Server Version: v1.32.0" sa version
expect_fail "rbac.go non-resource URLs: other paths are forbidden" 'forbidden: User "system:serviceaccount:rbac:op" cannot get path "/_control/state"' sa get --raw /_control/state
expect "kubectl auth can-i --list (SelfSubjectRulesReview)" 'meshmetrics.kuma.io +\[\] +\[\] +\[get list watch\]' sa auth can-i --list -n rbac
expect "apiserver authorizerfactory privileged group: the admin token (system:masters) keeps full access" "yes" k auth can-i delete meshmetrics.kuma.io -n rbac
expect "kubernetes pkg/registry/core/serviceaccount/storage/token.go: kubectl create token returns a usable token" "mm-default" sh -c \
  "$(printf '%q ' "$KUBECTL" --kubeconfig "$KCFG" --cache-dir "$WORK/cache") create token op -n rbac </dev/null >'$WORK/tok' && $(printf '%q ' "$KUBECTL" --kubeconfig "$SAKC" --cache-dir "$WORK/cache-sa") --token=\"\$(cat '$WORK/tok')\" get mm -n rbac </dev/null"
expect_fail "kubernetes pkg/apis/authentication/validation: TokenRequest expirationSeconds below 10 minutes -> 422" \
  'spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes' k create token op -n rbac --duration=1m
k delete serviceaccount op -n rbac >/dev/null
expect_fail "kubernetes pkg/serviceaccount/claims.go: tokens of a deleted ServiceAccount are rejected (401)" "You must be logged in to the server (Unauthorized)" sa get mm

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
