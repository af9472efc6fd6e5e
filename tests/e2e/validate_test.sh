#!/usr/bin/env bash
# `meshmetric-operator validate` end to end, and what the webhook's /validate and
# /mutate answer to the same objects: every document checked or named with the
# reason it was not, Lists expanded, the exit-code rule, --strict, Kuma's
# deprecation warnings (CLI and response.warnings), and numbers beyond int64
# answered with a review, never an HTTP 400.
#   tests/e2e/validate_test.sh BUILD_DIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd) || exit 2
bin=$build/meshmetric-operator
data=$root/tests/data/meshmetric/cli
ex=$root/examples
H="python3 $here/webhook_helpers.py"
tmp=$(mktemp -d /tmp/mm-validate-e2e.XXXXXX)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
ko() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && sed 's/^/     /' <<<"$2" | head -30; return 0; }
# run NAME WANT_RC CMD...: runs CMD, stdout in $out, stderr in $err; false (and FAIL) on a crash or
# another exit code
run() {
    local name=$1 want=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    out=$(cat "$tmp/out")
    err=$(cat "$tmp/err")
    if [ "$rc" -ge 128 ]; then ko "$name (crashed, rc $rc)" "$err"; return 1; fi
    if [ "$rc" -ne "$want" ]; then ko "$name (rc $rc, want $want)" "$out$err"; return 1; fi
    return 0
}
# has NAME TEXT NEEDLE...: every needle is a line substring of TEXT
has() {
    local name=$1 text=$2
    shift 2
    for n in "$@"; do
        grep -qF -- "$n" <<<"$text" || { ko "$name" "missing: $n"$'\n'"in:"$'\n'"$text"; return 0; }
    done
    ok "$name"
}
hasnt() {
    local name=$1 text=$2 n=$3
    grep -qF -- "$n" <<<"$text" && ko "$name" "unexpected: $n"$'\n'"$text" || ok "$name"
}
DEP_ENDPOINT="openTelemetry.endpoint is deprecated, use openTelemetry.backendRef with a MeshOpenTelemetryBackend resource instead"
DEP_SUBSET="MeshSubset value for 'targetRef.kind' is deprecated, use Dataplane with labels instead"

# ---------------------------------------------------------------- the CLI
echo "# validate: documents"
if run "policies file" 0 "$bin" validate -f "$ex/policies.yaml"; then
    has "MeshMetrics valid, Namespace and Service named as not checked" "$out$err" \
        "document 2: MeshMetric kuma-system/metrics-default: valid" \
        "document 1: Namespace shop-prod: not checked" "document 4: Service shop-prod/checkout-api: not checked" \
        "2 checked: 2 valid, 2 skipped"
fi

if run "kubectl get -o yaml List" 0 "$bin" validate -f "$data/kubectl-get-meshmetrics.yaml"; then
    has "List items named items[i], server metadata fine" "$out$err" \
        "document 1: items[0]: MeshMetric kuma-system/metrics-default: valid" \
        "document 1: items[1]: MeshMetric shop-prod/checkout-app-metrics: valid" \
        "document 1: items[1]: MeshMetric shop-prod/checkout-app-metrics: warning: $DEP_ENDPOINT"
fi
run "kubectl List --strict" 0 "$bin" validate --strict -f "$data/kubectl-get-meshmetrics.yaml" &&
    hasnt "--strict: no unknown field in kubectl's output" "$err" "unknown field"
run "kubectl List on stdin" 0 sh -c "cat '$data/kubectl-get-meshmetrics.yaml' | '$bin' validate -f -" &&
    has "-f - reads stdin" "$out" "-: document 1: items[1]: MeshMetric shop-prod/checkout-app-metrics: valid"
if run "raw MeshMetricList, managedFields, status" 0 "$bin" validate --strict -f "$data/raw-meshmetriclist.yaml"; then
    has "items without kind are MeshMetrics; managedFields/status known" "$out" \
        "items[0]: MeshMetric kuma-system/metrics-default: valid" "items[1]: MeshMetric shop-prod/checkout-app-metrics: valid"
fi

if run "List with invalid items" 1 "$bin" validate -f "$data/list-invalid-item.yaml"; then
    has "each item's problems name items[i]" "$out$err" \
        "document 1: items[0]: MeshMetric kuma-system/ok: valid" \
        "document 1: items[1]: spec.default.applications.application[0]: MeshMetric kuma-system/bad-port: port must be a valid (1-65535)" \
        "document 1: items[2]: spec.default.backends[0].type: MeshMetric kuma-system/bad-type: Unsupported value: \"Foo\": supported values: \"Prometheus\", \"OpenTelemetry\"" \
        "document 1: items[2]: spec.default.backends.backend[0]: MeshMetric kuma-system/bad-type: unrecognized type" \
        "3 checked: 1 valid, 2 invalid"
fi

echo "# validate: input it does not check (exit 2)"
printf 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n' >"$tmp/deploy.yaml"
run "unknown kind" 2 "$bin" validate -f "$tmp/deploy.yaml" &&
    has "names the kind and what validate checks" "$err" \
        'document 1: not checked: kind "Deployment" (apps/v1) is not one validate knows; validate checks MeshMetric and Mesh (kuma.io/v1alpha1) objects and Lists of them' \
        "nothing checked: 1 not understood"
cat "$tmp/deploy.yaml" >"$tmp/mixed.yaml"
printf -- '---\napiVersion: kuma.io/v1alpha1\nkind: MeshMetric\nmetadata: {name: m, namespace: kuma-system}\nspec: {default: {applications: [{port: 0}]}}\n' >>"$tmp/mixed.yaml"
run "unknown kind beside an invalid document: still 2" 2 "$bin" validate -f "$tmp/mixed.yaml" &&
    has "both reported" "$err" "not checked: kind \"Deployment\"" "port must be a valid (1-65535)" "1 checked: 1 invalid, 1 not understood"

if run "Universal format" 2 "$bin" validate -f "$data/universal.yaml"; then
    has "says Universal and shows the Kubernetes form" "$err" \
        "document 1: not checked: this is a Universal-format MeshMetric" \
        "validate checks the Kubernetes form: apiVersion kuma.io/v1alpha1, kind MeshMetric, metadata.name, metadata.namespace" \
        "  apiVersion: kuma.io/v1alpha1" "  kind: MeshMetric" "    name: metrics-1" "    namespace: kuma-system" \
        "      kuma.io/mesh: mesh-1" "  spec:" "      kind: MeshService"
    # The form it prints is one validate accepts.
    sed -n 's/^  //p' <<<"$err" | sed -n '/^apiVersion:/,$p' >"$tmp/converted.yaml"
    run "the printed Kubernetes form validates" 0 "$bin" validate -f "$tmp/converted.yaml" &&
        has "converted form valid, with Kuma's deprecations" "$out$err" "MeshMetric kuma-system/metrics-1: valid" \
            "warning: $DEP_ENDPOINT" "warning: MeshService value for 'targetRef.kind' is deprecated, use Dataplane with labels instead"
fi
# kumactl's own form keeps the policy under "spec": it must not be nested twice.
printf 'type: MeshMetric\nname: x\nmesh: default\ncreationTime: "2024-01-01T00:00:00Z"\nspec:\n  targetRef: {kind: Mesh}\n' >"$tmp/uspec.yaml"
run "Universal MeshMetric with spec" 2 "$bin" validate -f "$tmp/uspec.yaml" &&
    has "the policy body is the spec" "$err" "  spec:" "    targetRef:" "      kind: Mesh" &&
    hasnt "spec is not nested twice" "$err" "    spec:" &&
    hasnt "kumactl's creationTime is not spec" "$err" "creationTime"
printf 'type: Mesh\nname: default\nmetrics:\n  enabledBackend: p\n  backends: [{name: p, type: prometheus}]\n' >"$tmp/umesh.yaml"
run "Universal Mesh" 2 "$bin" validate -f "$tmp/umesh.yaml" &&
    has "Mesh form is cluster-scoped" "$err" "Universal-format Mesh" "(cluster-scoped: no namespace)" "  kind: Mesh" "    enabledBackend: p"

: >"$tmp/empty.yaml"
run "empty input" 2 "$bin" validate -f "$tmp/empty.yaml" && has "says there are no documents" "$err" "empty.yaml: not checked: no documents (empty input)" "nothing checked: 1 empty file"
printf -- '---\n# only a comment\n---\n' >"$tmp/comments.yaml"
run "only comments" 2 "$bin" validate -f "$tmp/comments.yaml" && has "no documents either" "$err" "no documents (empty input)"
printf -- '- a\n- b\n---\nplain text\n' >"$tmp/scalars.yaml"
run "documents that are not objects" 2 "$bin" validate -f "$tmp/scalars.yaml" &&
    has "each named" "$err" "document 1: not checked: the document is a list, not an object" "document 2: not checked: the document is a string, not an object"
printf 'metadata: {name: x}\nspec: {}\n' >"$tmp/nokind.yaml"
run "no kind" 2 "$bin" validate -f "$tmp/nokind.yaml" && has "says so" "$err" "not checked: the object has no kind"
printf 'apiVersion: kuma.io/v1beta1\nkind: MeshMetric\nmetadata: {name: x}\n' >"$tmp/v1beta1.yaml"
run "unserved apiVersion" 2 "$bin" validate -f "$tmp/v1beta1.yaml" && has "says which is served" "$err" 'apiVersion "kuma.io/v1beta1" is not served for MeshMetric'
printf 'apiVersion: v1\nkind: List\nitems: 5\n' >"$tmp/badlist.yaml"
run "List without items" 2 "$bin" validate -f "$tmp/badlist.yaml" && has "says so" "$err" "not checked: a List without an items list"

printf 'kind: MeshMetric\nmetadata: [\n' >"$tmp/bad.yaml"
if run "parse error" 2 "$bin" validate -f "$tmp/bad.yaml"; then
    has "names file and line" "$err" "bad.yaml: line" "nothing checked: 1 file not read"
    hasnt "no \"0 invalid\" summary" "$err" "0 invalid"
fi
run "missing file" 2 "$bin" validate -f "$tmp/nope.yaml" && has "names the file" "$err" "nope.yaml"
run "parse error beside a valid file: 2" 2 "$bin" validate -f "$tmp/bad.yaml" -f "$ex/policies.yaml" &&
    has "the valid one is still checked" "$err$out" "metrics-default: valid" "2 checked: 2 valid, 2 skipped, 1 file not read"

echo "# validate: messages"
mm() { printf 'apiVersion: kuma.io/v1alpha1\nkind: MeshMetric\nmetadata: {name: m, namespace: kuma-demo}\nspec: %s\n' "$1" >"$tmp/$2.yaml"; }
mm '{default: {backends: [{type: Prometheus, prometheus: {prot: 5671}}]}}' typo
run "unknown field, not strict" 0 "$bin" validate -f "$tmp/typo.yaml" &&
    has "a warning in the API server's words" "$err" 'warning: unknown field "spec.default.backends[0].prometheus.prot"'
run "unknown field, --strict" 1 "$bin" validate --strict -f "$tmp/typo.yaml" &&
    has "an error with a hint" "$err" 'spec.default.backends[0].prometheus.prot: MeshMetric kuma-demo/m: unknown field "prot" (did you mean "port"?)'
mm '{targetRef: {kind: MeshSubset, tags: {app: web}}, default: {backends: [{type: OpenTelemetry, openTelemetry: {endpoint: "otel:4317"}}]}}' deprecated
run "deprecations" 0 "$bin" validate -f "$tmp/deprecated.yaml" &&
    has "Kuma's deprecation texts" "$err" "warning: $DEP_ENDPOINT" "warning: $DEP_SUBSET"
mm '{targetRef: {kind: Mesh, proxyTypes: []}}' proxytypes
run "proxyTypes: []" 1 "$bin" validate -f "$tmp/proxytypes.yaml" &&
    has "Kuma's targetRef rule" "$err" "spec.targetRef.proxyTypes: MeshMetric kuma-demo/m: must be undefined or have at least one element"
mm '{targetRef: {kind: MeshService, labels: {app: web}, sectionName: http}}' section
run "sectionName with labels (no such rule in v2.14.3)" 0 "$bin" validate -f "$tmp/section.yaml"
mm '{default: {backends: [{type: Prometheus, prometheus: {tls: {mode: disabled}}}], sidecar: {profiles: {appendProfiles: [{name: basic}]}}}}' enums
run "enums" 1 "$bin" validate -f "$tmp/enums.yaml" &&
    has "API server's message, then Kuma's when it has one" "$err" \
        'spec.default.sidecar.profiles.appendProfiles[0].name: MeshMetric kuma-demo/m: Unsupported value: "basic": supported values: "All", "Basic", "None"' \
        "spec.default.sidecar.profiles.appendProfiles[0].name: MeshMetric kuma-demo/m: unrecognized profile name 'basic' - 'All', 'None', 'Basic' are supported" \
        'spec.default.backends[0].prometheus.tls.mode: MeshMetric kuma-demo/m: Unsupported value: "disabled": supported values: "Disabled", "ProvidedTLS", "ActiveMTLSBackend"'
mm '{default: {applications: [{port: 99999999999999999999}], backends: [{type: Prometheus, prometheus: {port: 4294967296}}]}}' huge
run "numbers beyond int64 and uint32" 1 "$bin" validate -f "$tmp/huge.yaml" &&
    has "the API server's type error" "$err" \
        'spec.default.applications[0].port: MeshMetric kuma-demo/m: Invalid value: "number": spec.default.applications[0].port in body must be of type integer: "number"'
mm '{default: {backends: [{type: Prometheus, prometheus: {port: 4294967296}}]}}' uint32
run "a port beyond uint32" 1 "$bin" validate -f "$tmp/uint32.yaml" &&
    has "Kuma's webhook decode error" "$err" \
        "spec.default.backends[0].prometheus.port: MeshMetric kuma-demo/m: json: cannot unmarshal number 4294967296 into Go struct field PrometheusBackend.spec.default.backends.prometheus.port of type uint32"
run "--help" 0 "$bin" validate --help && has "--help states the exit codes" "$out" "Exit status: 0 every document valid; 1 some document invalid; 2 some input not" "--strict"

# ---------------------------------------------------------------- the webhook
echo "# webhook"
svc=mm-webhook ns=kuma-system host=mm-webhook.kuma-system.svc
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url=https://$host:$port
tls=(--cacert "$tmp/certs/ca.crt" --resolve "$host:$port:127.0.0.1")
"$bin" certs --service $svc --namespace $ns --out "$tmp/certs" >/dev/null 2>&1
mkdir -p "$tmp/policies"
"$bin" serve --webhook-addr "127.0.0.1:$port" --metrics-addr "" --tls-cert-file "$tmp/certs/tls.crt" --tls-key-file "$tmp/certs/tls.key" \
    --policies-dir "$tmp/policies" --reload-interval-ms 200 2>"$tmp/serve.log" &
server_pid=$!
for _ in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "${tls[@]}" "$url/readyz")" == 200 ] && break
    sleep 0.1
done
# post PATH BODY_FILE: response in $tmp/resp, prints the HTTP status
post() { curl -sS -o "$tmp/resp" -w '%{http_code}' "${tls[@]}" -H 'Content-Type: application/json' --data-binary @"$2" "$url$1"; }
jget() { $H jget "$tmp/resp" "$1"; }
# review UID KIND OBJECT_JSON_TEXT: an AdmissionReview with the object spliced in as text
review() {
    local group=kuma.io version=v1alpha1 resource=meshmetrics
    [ "$2" == Pod ] && group= version=v1 resource=pods
    printf '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"%s","kind":{"group":"%s","version":"%s","kind":"%s"},"resource":{"group":"%s","version":"%s","resource":"%s"},"namespace":"kuma-demo","operation":"CREATE","userInfo":{"username":"e2e"},"object":%s,"oldObject":null,"dryRun":false}}' \
        "$1" "$group" "$version" "$2" "$group" "$version" "$resource" "$3"
}
MM='{"apiVersion":"kuma.io/v1alpha1","kind":"MeshMetric","metadata":{"name":"m","namespace":"kuma-demo"},"spec":%s}'

# shellcheck disable=SC2059
review dep-1 MeshMetric "$(printf "$MM" '{"targetRef":{"kind":"MeshSubset","tags":{"app":"web"}},"default":{"backends":[{"type":"OpenTelemetry","openTelemetry":{"endpoint":"otel:4317"}}]}}')" >"$tmp/dep.json"
if [ "$(post /validate "$tmp/dep.json")" == 200 ]; then
    [ "$(jget '[d["response"]["uid"], d["response"]["allowed"]]')" == '["dep-1",true]' ] && ok "deprecated MeshMetric allowed" || ko "deprecated MeshMetric allowed" "$(cat "$tmp/resp")"
    has "response.warnings relays Kuma's deprecations" "$(jget '"\n".join(d["response"].get("warnings", []))')" "$DEP_ENDPOINT" "$DEP_SUBSET"
else
    ko "deprecated MeshMetric: HTTP 200" "$(cat "$tmp/resp")"
fi

# shellcheck disable=SC2059
review huge-1 MeshMetric "$(printf "$MM" '{"default":{"backends":[{"type":"Prometheus","prometheus":{"port":99999999999999999999}}]}}')" >"$tmp/huge.json"
code=$(post /validate "$tmp/huge.json")
[ "$code" == 200 ] && ok "integer beyond int64: HTTP 200, not 400" || ko "integer beyond int64: HTTP $code" "$(cat "$tmp/resp")"
[ "$(jget '[d["response"]["uid"], d["response"]["allowed"], d["response"]["status"]["code"], d["response"]["status"]["reason"]]')" == '["huge-1",false,422,"Invalid"]' ] &&
    ok "denied 422 Invalid, uid echoed" || ko "denied 422 Invalid, uid echoed" "$(cat "$tmp/resp")"
[ "$(jget '[(c["field"], c["message"]) for c in d["response"]["status"]["details"]["causes"]]')" == \
    '[["spec.default.backends[0].prometheus.port","Invalid value: \"number\": spec.default.backends[0].prometheus.port in body must be of type integer: \"number\""]]' ] &&
    ok "one cause, the API server's message" || ko "one cause, the API server's message" "$(cat "$tmp/resp")"

# shellcheck disable=SC2059
review u32-1 MeshMetric "$(printf "$MM" '{"default":{"applications":[{"port":4294967296}]}}')" >"$tmp/u32.json"
post /validate "$tmp/u32.json" >/dev/null
[ "$(jget '[d["response"]["allowed"], d["response"]["status"]["code"], d["response"]["status"]["message"]]')" == \
    '[false,422,"spec.default.applications[0].port: json: cannot unmarshal number 4294967296 into Go struct field Application.spec.default.applications.port of type uint32"]' ] &&
    ok "port beyond uint32: Kuma's decode error, 422" || ko "port beyond uint32" "$(cat "$tmp/resp")"

# shellcheck disable=SC2059
review inf-1 MeshMetric "$(printf "$MM" '{"default":{"applications":[{"port":1e400}]}}')" >"$tmp/inf.json"
code=$(post /validate "$tmp/inf.json")
[ "$code" == 200 ] && ok "number beyond any double: HTTP 200" || ko "number beyond any double: HTTP $code" "$(cat "$tmp/resp")"
[ "$(jget '[d["response"]["uid"], d["response"]["allowed"], d["response"]["status"]["code"]]')" == '["inf-1",false,400]' ] &&
    ok "denied 400, uid echoed" || ko "denied 400, uid echoed" "$(cat "$tmp/resp")"

# shellcheck disable=SC2059
review pt-1 MeshMetric "$(printf "$MM" '{"targetRef":{"kind":"Mesh","proxyTypes":[]}}')" >"$tmp/pt.json"
post /validate "$tmp/pt.json" >/dev/null
[ "$(jget '[d["response"]["allowed"], d["response"]["status"]["message"]]')" == '[false,"spec.targetRef.proxyTypes: must be undefined or have at least one element"]' ] &&
    ok "proxyTypes: [] denied with Kuma's message" || ko "proxyTypes: [] denied" "$(cat "$tmp/resp")"

POD='{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"kuma-demo"},"spec":{"containers":[{"name":"kuma-sidecar","image":"kuma-dp","ports":[{"containerPort":%s}]}]}}'
# shellcheck disable=SC2059
review pod-1 Pod "$(printf "$POD" 99999999999999999999)" >"$tmp/pod.json"
code=$(post /mutate "$tmp/pod.json")
[ "$code" == 200 ] && [ "$(jget '[d["response"]["uid"], d["response"]["allowed"], "patch" in d["response"], len(d["response"].get("warnings", []))]')" == '["pod-1",true,false,1]' ] &&
    ok "/mutate: pod with an integer beyond int64 admitted unchanged with a warning" || ko "/mutate: integer beyond int64 (HTTP $code)" "$(cat "$tmp/resp")"
# shellcheck disable=SC2059
review pod-2 Pod "$(printf "$POD" 1e400)" >"$tmp/pod2.json"
code=$(post /mutate "$tmp/pod2.json")
[ "$code" == 200 ] && [ "$(jget '[d["response"]["uid"], d["response"]["allowed"], "patch" in d["response"], len(d["response"].get("warnings", []))]')" == '["pod-2",true,false,1]' ] &&
    ok "/mutate: pod that cannot be decoded admitted unchanged with a warning" || ko "/mutate: undecodable pod (HTTP $code)" "$(cat "$tmp/resp")"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
