#!/usr/bin/env bash
# End-to-end test of `meshmetric-operator serve` over real HTTPS with real
# certificate verification: certificates from the binary's own `certs`,
# curl with --cacert against the Service name, patches applied with
# kubectl's json-patch (kubectl patch --local), policy reload, bad input,
# certificate rotation under load, graceful shutdown, the plain-HTTP
# health/metrics listener (--metrics-addr) and the Prometheus text
# (checked with promtool when it is installed).
#
# Usage: tests/e2e/webhook_test.sh BUILD_DIR
# Prints "N passed, M failed" last; exits non-zero on any failure.
set -u

BUILD=$(cd "${1:-build}" && pwd) || exit 2
BIN=$BUILD/meshmetric-operator
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
FIXTURE=$ROOT/tests/data/admission/kuma-pod.json
DATA=$ROOT/tests/data/webhook
H="python3 $HERE/webhook_helpers.py"

SVC=mm-webhook
NS=kuma-system
HOST=$SVC.$NS.svc

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   - $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $1"; [ $# -gt 1 ] && echo "       $2"; return 0; }
# check NAME GOT WANT
check() { if [ "$2" == "$3" ]; then ok "$1"; else bad "$1" "got [$2] want [$3]"; fi; }
# contains NAME HAYSTACK NEEDLE
contains() { case "$2" in *"$3"*) ok "$1" ;; *) bad "$1" "[$2] does not contain [$3]" ;; esac; }

for f in "$BIN" "$FIXTURE"; do
    [ -e "$f" ] || { echo "missing $f"; echo "0 passed, 1 failed"; exit 1; }
done
KUBECTL=$(dirname "$(readlink -f "$(command -v kubectl 2>/dev/null || echo /nonexistent)")")/kubectl.1.32
if [ ! -x "$KUBECTL" ]; then
    KUBECTL=$(command -v kubectl 2>/dev/null || true)
    echo "# kubectl.1.32 not found; using ${KUBECTL:-nothing} for patch application"
fi

TMP=$(mktemp -d /tmp/mm-webhook-e2e.XXXXXX)
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    jobs -p | xargs -r kill 2>/dev/null
    if [ "$FAIL" -gt 0 ] && [ -f "$TMP/serve.log" ]; then
        echo "# last server log lines:"
        tail -n 25 "$TMP/serve.log" | sed 's/^/#   /'
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
MPORT=$(free_port)
URL=https://$HOST:$PORT
PLAIN=http://127.0.0.1:$MPORT
TLS=(--cacert "$TMP/certs/ca.crt" --resolve "$HOST:$PORT:127.0.0.1")
CT=(-H 'Content-Type: application/json')

# post PATH FILE [curl args...]: body to $TMP/out, prints the HTTP status
post() {
    local path=$1 file=$2
    shift 2
    curl -sS -o "$TMP/out" -w '%{http_code}' "${TLS[@]}" "${CT[@]}" "$@" --data-binary @"$file" "$URL$path"
}
kpatch() { # kpatch POD PATCH -> patched pod JSON on stdout
    HOME=$TMP/home "$KUBECTL" patch --local -f "$1" --type=json -p "$2" -o json </dev/null
}

# ---------------------------------------------------------------- certificates
echo "# certs"
"$BIN" certs --service $SVC --namespace $NS --out "$TMP/certs" >"$TMP/cabundle" 2>"$TMP/certs.log"
check "certs exits 0" "$?" "0"
check "caBundle is the base64 of ca.crt" "$(base64 -d <"$TMP/cabundle" | sha256sum)" "$(sha256sum <"$TMP/certs/ca.crt")"
check "tls.key mode 0600" "$(stat -c %a "$TMP/certs/tls.key")" "600"
check "ca.key mode 0600" "$(stat -c %a "$TMP/certs/ca.key")" "600"
SANS=$(openssl x509 -in "$TMP/certs/tls.crt" -noout -ext subjectAltName 2>/dev/null | tail -n 1 | tr -d ' ')
check "SANs of the serving certificate" "$SANS" "DNS:$SVC,DNS:$SVC.$NS,DNS:$SVC.$NS.svc,DNS:$SVC.$NS.svc.cluster.local"
contains "ECDSA P-256 by default" "$(openssl x509 -in "$TMP/certs/tls.crt" -noout -text)" "prime256v1"
openssl verify -CAfile "$TMP/certs/ca.crt" -verify_hostname "$HOST" "$TMP/certs/tls.crt" >/dev/null 2>&1
check "openssl verifies tls.crt for $HOST" "$?" "0"
"$BIN" certs --service $SVC --out "$TMP/x" >/dev/null 2>&1
check "certs without --namespace is a usage error" "$?" "2"

# Mounted kubernetes.io/tls Secret layout: files are links through ..data.
SECRET=$TMP/secret
mkdir -p "$SECRET/..v0"
cp "$TMP/certs/tls.crt" "$TMP/certs/tls.key" "$SECRET/..v0/"
ln -s ..v0 "$SECRET/..data"
ln -s ..data/tls.crt "$SECRET/tls.crt"
ln -s ..data/tls.key "$SECRET/tls.key"
ROT=0
rotate() { # rotate CERT KEY: swap ..data atomically, as the kubelet does
    ROT=$((ROT + 1))
    mkdir "$SECRET/..v$ROT"
    cp "$1" "$SECRET/..v$ROT/tls.crt"
    cp "$2" "$SECRET/..v$ROT/tls.key"
    ln -s "..v$ROT" "$SECRET/..data_tmp"
    mv -T "$SECRET/..data_tmp" "$SECRET/..data"
}

# ---------------------------------------------------------------- start
POL=$TMP/policies
mkdir -p "$POL" "$TMP/home"
cp "$DATA/policies/"*.yaml "$POL/"
start_server() {
    "$BIN" serve --webhook-addr "127.0.0.1:$PORT" --metrics-addr "127.0.0.1:$MPORT" \
        --tls-cert-file "$SECRET/tls.crt" --tls-key-file "$SECRET/tls.key" \
        --policies-dir "$POL" --default-tls-secret metrics-tls \
        --reload-interval-ms 200 --shutdown-timeout 20 "$@" 2>>"$TMP/serve.log" &
    SERVER_PID=$!
    for _ in $(seq 100); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "${TLS[@]}" "$URL/readyz")" == 200 ] && return 0
        sleep 0.1
    done
    return 1
}
echo "# serve"
start_server
check "server becomes ready" "$?" "0"
check "healthz" "$(curl -sS "${TLS[@]}" "$URL/healthz")" "ok"
check "HEAD readyz" "$(curl -sS -o /dev/null -w '%{http_code}' -I "${TLS[@]}" "$URL/readyz")" "200"

# ---------------------------------------------------------------- /mutate
echo "# mutate"
check "mutate fixture (query string ignored)" "$(post '/mutate?timeout=10s' "$FIXTURE")" "200"
cp "$TMP/out" "$TMP/resp1.json"
check "apiVersion" "$($H jget "$TMP/resp1.json" 'd["apiVersion"]')" "admission.k8s.io/v1"
check "kind" "$($H jget "$TMP/resp1.json" 'd["kind"]')" "AdmissionReview"
check "uid echoed" "$($H jget "$TMP/resp1.json" 'd["response"]["uid"]')" "$($H jget "$FIXTURE" 'd["request"]["uid"]')"
check "allowed" "$($H jget "$TMP/resp1.json" 'd["response"]["allowed"]')" "true"
check "patchType" "$($H jget "$TMP/resp1.json" 'd["response"].get("patchType")')" "JSONPatch"
PATCH=$($H patch "$TMP/resp1.json")
check "patch is padded standard base64 of a JSON array" "$?" "0"
$H jget "$FIXTURE" 'd["request"]["object"]' >"$TMP/pod.json"
if [ -n "$KUBECTL" ]; then
    kpatch "$TMP/pod.json" "$PATCH" >"$TMP/patched.json" 2>"$TMP/kubectl.err"
    check "kubectl patch --local applies the patch" "$?" "0"
    SIDECAR='[c for c in d["spec"]["containers"] if c["name"]=="kuma-sidecar"][0]'
    check "sidecar exposes the metrics port" \
        "$($H jget "$TMP/patched.json" "[p['containerPort'] for p in $SIDECAR.get('ports',[])]")" "[5670]"
    check "sidecar has the TLS cert env" \
        "$($H jget "$TMP/patched.json" "[e['value'] for e in $SIDECAR['env'] if e['name']=='KUMA_DATAPLANE_RUNTIME_METRICS_CERT_PATH']")" \
        '["/var/run/secrets/meshmetric.kuma.io/tls/tls.crt"]'
    check "sidecar has the TLS key env" \
        "$($H jget "$TMP/patched.json" "len([e for e in $SIDECAR['env'] if e['name']=='KUMA_DATAPLANE_RUNTIME_METRICS_KEY_PATH'])")" "1"
    check "TLS secret volume from --default-tls-secret" \
        "$($H jget "$TMP/patched.json" '[v["secret"]["secretName"] for v in d["spec"]["volumes"] if "secret" in v and v["secret"].get("secretName")=="metrics-tls"]')" '["metrics-tls"]'
    check "app container untouched" \
        "$($H jget "$TMP/patched.json" '[c for c in d["spec"]["containers"] if c["name"]=="app"]==[c for c in json.load(open("'"$TMP/pod.json"'"))["spec"]["containers"] if c["name"]=="app"]')" "true"
    # Idempotent: the patched pod needs no further patch.
    $H mkreview "$TMP/patched.json" --uid again --ns shop-prod >"$TMP/again.json"
    post /mutate "$TMP/again.json" >/dev/null
    $H patch "$TMP/out" >/dev/null 2>&1
    check "patched pod gets no second patch" "$?" "3"
else
    bad "kubectl available for patch application"
fi

# generateName, no name, no labels, no annotations: the patch must create the maps.
$H edit "$TMP/pod.json" 'm=d["metadata"]; m.pop("labels",None); m.pop("annotations",None); m.pop("name",None)' >"$TMP/bare.json"
$H mkreview "$TMP/bare.json" --uid bare --ns shop-prod >"$TMP/bare-review.json"
check "pod without labels/annotations" "$(post /mutate "$TMP/bare-review.json")" "200"
BPATCH=$($H patch "$TMP/out")
if [ -n "$KUBECTL" ] && [ -n "$BPATCH" ]; then
    kpatch "$TMP/bare.json" "$BPATCH" >"$TMP/bare-patched.json" 2>"$TMP/kubectl.err"
    check "patch applies to a pod without annotations" "$?" "0"
    contains "annotation map created" "$($H jget "$TMP/bare-patched.json" 'sorted(d["metadata"]["annotations"])')" "meshmetric.kuma.io/config-hash"
else
    bad "patch for a pod without annotations" "$BPATCH"
fi

# dryRun: same answer, no side effects (the patches counter does not move).
patches() { curl -sS "${TLS[@]}" "$URL/metrics" | awk '$1=="meshmetric_webhook_patches_total"{print $2}'; }
P0=$(patches)
$H mkreview "$TMP/pod.json" --uid dry --ns shop-prod --dry-run >"$TMP/dry.json"
post /mutate "$TMP/dry.json" >/dev/null
check "dryRun gets the same patch" "$($H patch "$TMP/out")" "$PATCH"
check "dryRun is not counted as an applied patch" "$(patches)" "$P0"
post /mutate "$FIXTURE" >/dev/null
check "a real CREATE is counted" "$(patches)" "$((P0 + 1))"

# UPDATE and DELETE pass unchanged.
$H mkreview "$TMP/pod.json" --uid upd --op UPDATE --ns shop-prod >"$TMP/upd.json"
post /mutate "$TMP/upd.json" >/dev/null
$H patch "$TMP/out" >/dev/null 2>&1
check "UPDATE is allowed without a patch" "$?:$($H jget "$TMP/out" 'd["response"]["allowed"]')" "3:true"

# Annotation problems come back as warnings; the pod is still admitted.
$H edit "$TMP/pod.json" 'd["metadata"]["annotations"]["prometheus.metrics.kuma.io/port"]="abc"' >"$TMP/badann.json"
$H mkreview "$TMP/badann.json" --uid warn-1 --ns shop-prod >"$TMP/badann-review.json"
check "bad annotation still 200" "$(post /mutate "$TMP/badann-review.json")" "200"
check "bad annotation allowed" "$($H jget "$TMP/out" 'd["response"]["allowed"]')" "true"
contains "Kuma's parse error as a warning" "$($H jget "$TMP/out" 'd["response"].get("warnings",[])')" \
    'failed to parse annotation \"prometheus.metrics.kuma.io/port\": strconv.ParseUint: parsing \"abc\": invalid syntax'
check "uid echoed with warnings" "$($H jget "$TMP/out" 'd["response"]["uid"]')" "warn-1"

# A well-formed review with a broken pod: uid echoed, allowed, explained.
$H edit "$TMP/bare-review.json" 'd["request"]["uid"]="broken-1"; d["request"]["object"]["spec"]["containers"]="oops"' >"$TMP/broken.json"
check "broken pod: 200" "$(post /mutate "$TMP/broken.json")" "200"
check "broken pod: uid echoed, allowed" "$($H jget "$TMP/out" '[d["response"]["uid"], d["response"]["allowed"]]')" '["broken-1",true]'
check "broken pod: one warning, no patch" "$($H jget "$TMP/out" '[len(d["response"].get("warnings",[])), "patch" in d["response"]]')" "[1,false]"
$H edit "$TMP/bare-review.json" 'd["request"]["uid"]="broken-2"; d["request"]["object"]="not an object"' >"$TMP/broken2.json"
check "object of the wrong type: 200" "$(post /mutate "$TMP/broken2.json")" "200"
check "object of the wrong type: uid echoed, allowed" "$($H jget "$TMP/out" '[d["response"]["uid"], d["response"]["allowed"]]')" '["broken-2",true]'

# ---------------------------------------------------------------- /validate
echo "# validate"
$H mkreview "$DATA/invalid-meshmetric.json" --uid val-1 --kind MeshMetric --group kuma.io --resource meshmetrics --ns kuma-system >"$TMP/val.json"
check "invalid MeshMetric: 200" "$(post /validate "$TMP/val.json")" "200"
check "denied with 422 Invalid" "$($H jget "$TMP/out" '[d["response"]["uid"], d["response"]["allowed"], d["response"]["status"]["code"], d["response"]["status"]["reason"]]')" '["val-1",false,422,"Invalid"]'
check "Kuma's message" "$($H jget "$TMP/out" 'd["response"]["status"]["message"]')" \
    "spec.default.applications.application[0]: port must be a valid (1-65535); spec.default.backends.backend[0].port: port must be a valid (1-65535)"
check "one cause per violation" "$($H jget "$TMP/out" '[(c["type"],c["field"],c["message"]) for c in d["response"]["status"]["details"]["causes"]]')" \
    '[["FieldValueInvalid","spec.default.applications.application[0]","port must be a valid (1-65535)"],["FieldValueInvalid","spec.default.backends.backend[0].port","port must be a valid (1-65535)"]]'
check "details name the object, as Kuma's webhook does" "$($H jget "$TMP/out" '[d["response"]["status"]["details"].get(k) for k in ("kind","name")]')" \
    "[\"MeshMetric\",\"$($H jget "$DATA/invalid-meshmetric.json" 'd["metadata"]["name"]')\"]"
$H mkreview "$DATA/valid-meshmetric.json" --uid val-2 --kind MeshMetric --group kuma.io --resource meshmetrics --ns kuma-system >"$TMP/val2.json"
post /validate "$TMP/val2.json" >/dev/null
check "valid MeshMetric allowed" "$($H jget "$TMP/out" '[d["response"]["uid"], d["response"]["allowed"]]')" '["val-2",true]'
$H mkreview "$DATA/invalid-meshmetric.json" --uid val-3 --op DELETE --kind MeshMetric --group kuma.io --resource meshmetrics >"$TMP/val3.json"
post /validate "$TMP/val3.json" >/dev/null
check "DELETE allowed" "$($H jget "$TMP/out" '[d["response"]["uid"], d["response"]["allowed"]]')" '["val-3",true]'
$H mkreview "$TMP/pod.json" --uid val-4 >"$TMP/val4.json"
post /validate "$TMP/val4.json" >/dev/null
check "other kinds allowed" "$($H jget "$TMP/out" 'd["response"]["allowed"]')" "true"

# ---------------------------------------------------------------- bad input
echo "# bad input"
check "GET /mutate is 405" "$(curl -sS -o "$TMP/out" -D "$TMP/hdr" -w '%{http_code}' "${TLS[@]}" "$URL/mutate")" "405"
contains "405 carries Allow: POST" "$(tr -d '\r' <"$TMP/hdr")" "Allow: POST"
contains "405 JSON body" "$(cat "$TMP/out")" '"error":'
check "PUT /validate is 405" "$(curl -sS -o /dev/null -w '%{http_code}' -X PUT "${TLS[@]}" "${CT[@]}" -d '{}' "$URL/validate")" "405"
check "POST /metrics is 405" "$(curl -sS -o /dev/null -w '%{http_code}' -X POST "${TLS[@]}" -d x "$URL/metrics")" "405"
check "unknown path is 404" "$(post /nope "$FIXTURE")" "404"
contains "404 JSON body" "$(cat "$TMP/out")" '"field":"path"'
check "text/plain is 415" "$(curl -sS -o "$TMP/out" -w '%{http_code}' "${TLS[@]}" -H 'Content-Type: text/plain' --data-binary @"$FIXTURE" "$URL/mutate")" "415"
contains "415 JSON body" "$(cat "$TMP/out")" '"field":"Content-Type"'
check "no Content-Type is 415" "$(curl -sS -o /dev/null -w '%{http_code}' "${TLS[@]}" -H 'Content-Type:' --data-binary @"$FIXTURE" "$URL/mutate")" "415"
check "application/json; charset=utf-8 accepted" "$(curl -sS -o /dev/null -w '%{http_code}' "${TLS[@]}" -H 'Content-Type: application/json; charset=utf-8' --data-binary @"$FIXTURE" "$URL/mutate")" "200"
head -c $((7 * 1024 * 1024 + 1)) /dev/zero | tr '\0' ' ' >"$TMP/big.json"
check "body over 7 MiB is 413 (Content-Length)" "$(post /mutate "$TMP/big.json")" "413"
contains "413 JSON body" "$(cat "$TMP/out")" '"error":'
check "body over 7 MiB is 413 (chunked)" "$(post /mutate "$TMP/big.json" -H 'Transfer-Encoding: chunked')" "413"
printf '{"apiVersion":' >"$TMP/trunc.json"
check "malformed JSON is 400" "$(post /mutate "$TMP/trunc.json")" "400"
contains "400 says what is wrong" "$(cat "$TMP/out")" '"error":"invalid JSON'
echo '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"}}' >"$TMP/pod-only.json"
check "a Pod instead of a review is 400" "$(post /mutate "$TMP/pod-only.json")" "400"
check "400 names the field" "$($H jget "$TMP/out" 'd["field"]')" "apiVersion"
echo '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}' >"$TMP/nouid.json"
check "review without uid is 400" "$(post /validate "$TMP/nouid.json")" "400"
check "400 names request.uid" "$($H jget "$TMP/out" 'd["field"]')" "request.uid"
check "empty body is 400" "$(curl -sS -o /dev/null -w '%{http_code}' "${TLS[@]}" "${CT[@]}" -X POST "$URL/mutate")" "400"
grep -q '"code":"415"' "$TMP/serve.log"
check "rejected requests are logged with their code" "$?" "0"
grep '"uid":"broken-1"' "$TMP/serve.log" | grep -q '"level":"error"'
check "engine failure logged with the uid" "$?" "0"

# ---------------------------------------------------------------- TLS
echo "# tls"
curl -sS -o /dev/null --cacert "$TMP/certs/ca.crt" --resolve "other.$NS.svc:$PORT:127.0.0.1" "https://other.$NS.svc:$PORT/healthz" 2>/dev/null
RC=$?
if [ "$RC" == 60 ] || [ "$RC" == 51 ]; then ok "wrong name fails verification (curl $RC)"; else bad "wrong name fails verification" "curl exit $RC"; fi
curl -sS -o /dev/null --resolve "$HOST:$PORT:127.0.0.1" "$URL/healthz" 2>/dev/null
check "unknown CA fails verification" "$?" "60"
curl -sS -o /dev/null "${TLS[@]}" --tls-max 1.1 "$URL/healthz" 2>/dev/null
if [ $? -ne 0 ]; then ok "TLS 1.1 refused"; else bad "TLS 1.1 refused"; fi
check "TLS 1.2 accepted" "$(curl -sS -o /dev/null -w '%{http_code}' "${TLS[@]}" --tls-max 1.2 "$URL/healthz")" "200"
check "TLS 1.3 accepted" "$(curl -sS -o /dev/null -w '%{http_code}' "${TLS[@]}" --tlsv1.3 "$URL/healthz")" "200"
# Keep-alive: two requests, one connection, with an idle gap.
N=$(curl -sS -o /dev/null -o /dev/null -w '%{num_connects}\n' "${TLS[@]}" "$URL/healthz" "$URL/readyz" | awk '{s+=$1} END{print s}')
check "keep-alive reuses the connection" "$N" "1"

# ---------------------------------------------------------------- /metrics
echo "# metrics"
curl -sS "${TLS[@]}" "$URL/metrics" >"$TMP/metrics"
contains "requests by endpoint and code" "$(cat "$TMP/metrics")" 'meshmetric_webhook_requests_total{endpoint="mutate",code="415"}'
contains "latency histogram" "$(cat "$TMP/metrics")" 'meshmetric_webhook_admission_duration_seconds_bucket{endpoint="mutate",le="+Inf"}'
contains "denials" "$(cat "$TMP/metrics")" 'meshmetric_webhook_validation_denials_total{kind="MeshMetric"} 1'
contains "build info" "$(cat "$TMP/metrics")" 'meshmetric_build_info{version='
EXP=$(date -d "$(openssl x509 -in "$TMP/certs/tls.crt" -noout -enddate | cut -d= -f2)" +%s)
check "certificate expiry gauge" "$(awk '$1=="meshmetric_webhook_certificate_expiry_timestamp_seconds"{print $2}' "$TMP/metrics")" "$EXP"

metric() { awk -v k="$1" '$1==k{print $2}' "$TMP/metrics"; }
curl -sS "${TLS[@]}" "$URL/metrics" >"$TMP/metrics"
check "admissions by outcome: patched" "$([ "$(metric 'meshmetric_webhook_admissions_total{endpoint="mutate",outcome="patched"}')" -ge 5 ] && echo yes)" "yes"
check "admissions by outcome: mutate errors (broken pods, non-reviews)" "$([ "$(metric 'meshmetric_webhook_admissions_total{endpoint="mutate",outcome="error"}')" -ge 3 ] && echo yes)" "yes"
check "admissions by outcome: denied" "$(metric 'meshmetric_webhook_admissions_total{endpoint="validate",outcome="denied"}')" "1"
check "admissions by outcome: allowed" "$(metric 'meshmetric_webhook_admissions_total{endpoint="validate",outcome="allowed"}')" "3"
check "policy reloads counted" "$(metric 'meshmetric_policy_reloads_total{result="success"}')" "1"
LAST=$(metric meshmetric_policy_last_reload_success_timestamp_seconds)
check "last successful policy reload is recent" "$([ "${LAST:-0}" -gt $(($(date +%s) - 600)) ] && [ "${LAST:-0}" -le "$(date +%s)" ] && echo yes)" "yes"
check "certificate reloads counted" "$(metric 'meshmetric_webhook_certificate_reloads_total{result="success"}')" "1"
for m in process_cpu_seconds_total process_resident_memory_bytes process_virtual_memory_bytes \
    process_open_fds process_max_fds process_start_time_seconds; do
    contains "$m exported" "$(grep "^# TYPE $m " "$TMP/metrics")" "# TYPE $m"
done
check "process_max_fds is the open-file limit" "$(metric process_max_fds)" "$(awk '/^Max open files/{print $4}' "/proc/$SERVER_PID/limits")"
contains "connections closed by reason" "$(cat "$TMP/metrics")" 'meshmetric_webhook_connections_closed_total{reason="header_timeout"}'
if command -v promtool >/dev/null; then
    promtool check metrics <"$TMP/metrics" >"$TMP/promtool.out" 2>&1
    check "promtool check metrics accepts /metrics" "$?" "0"
    [ -s "$TMP/promtool.out" ] && sed 's/^/#   promtool: /' "$TMP/promtool.out" | head -n 5
else
    echo "# promtool not installed: the exposition format is not linted (Debian: prometheus)"
fi

# ---------------------------------------------------------------- plain-HTTP listener
echo "# plain-HTTP listener (--metrics-addr)"
check "plain /healthz" "$(curl -sS "$PLAIN/healthz")" "ok"
check "plain /readyz" "$(curl -sS "$PLAIN/readyz")" "ok"
contains "plain /readyz?verbose" "$(curl -sS "$PLAIN/readyz?verbose")" "readyz check passed"
check "plain HEAD /healthz" "$(curl -sS -o /dev/null -w '%{http_code}' -I "$PLAIN/healthz")" "200"
curl -sS "$PLAIN/metrics" >"$TMP/plain-metrics"
contains "plain /metrics has the webhook's families" "$(cat "$TMP/plain-metrics")" 'meshmetric_webhook_requests_total{endpoint="mutate",code="200"}'
contains "plain /metrics counts its own requests" "$(cat "$TMP/plain-metrics")" 'meshmetric_metrics_listener_requests_total{endpoint="healthz",code="200"} 2'
contains "plain /metrics has the process metrics" "$(cat "$TMP/plain-metrics")" "process_resident_memory_bytes"
check "plain port does not serve /mutate (404)" "$(curl -sS -o "$TMP/out" -w '%{http_code}' "${CT[@]}" --data-binary @"$FIXTURE" "$PLAIN/mutate")" "404"
contains "plain 404 JSON body" "$(cat "$TMP/out")" '"field":"path"'
check "plain POST /metrics is 405" "$(curl -sS -o /dev/null -D "$TMP/hdr" -w '%{http_code}' -X POST -d x "$PLAIN/metrics")" "405"
contains "plain 405 carries Allow: GET, HEAD" "$(tr -d '\r' <"$TMP/hdr")" "Allow: GET, HEAD"
check "plain port speaks no TLS" "$(curl -s -o /dev/null -w '%{http_code}' "${TLS[@]}" "https://127.0.0.1:$MPORT/healthz" 2>/dev/null || true)" "000"

# ---------------------------------------------------------------- policy reload
echo "# policy reload"
first_port() { post /mutate "$FIXTURE" >/dev/null; $H patch "$TMP/out" 2>/dev/null | python3 -c 'import json,sys; p=json.load(sys.stdin); print([o["value"] for o in p if o["path"].endswith("/ports")][0][0]["containerPort"])' 2>/dev/null; }
check "patch uses port 5670 before the change" "$(first_port)" "5670"
sed 's/port: 5670/port: 5680/' "$DATA/policies/meshmetric-tls.yaml" >"$POL/meshmetric-tls.yaml.tmp" && mv "$POL/meshmetric-tls.yaml.tmp" "$POL/meshmetric-tls.yaml"
GOT=
for _ in $(seq 50); do GOT=$(first_port); [ "$GOT" == 5680 ] && break; sleep 0.1; done
check "new policy picked up without restart" "$GOT" "5680"
printf 'apiVersion: kuma.io/v1alpha1\nkind: MeshMetric\nmetadata: [broken\n' >"$POL/zz-broken.yaml"
for _ in $(seq 50); do grep -q 'zz-broken.yaml' "$TMP/serve.log" && break; sleep 0.1; done
contains "broken file logged by name" "$(grep 'policy reload failed' "$TMP/serve.log" | tail -n 1)" "zz-broken.yaml"
check "last good policies kept" "$(first_port)" "5680"
printf 'kind: MeshMetric\nmetadata:\n  name: ok\n---\nkind: MeshMetric\nmetadata: {}\n' >"$POL/zz-broken.yaml"
for _ in $(seq 50); do grep -q 'document 2' "$TMP/serve.log" && break; sleep 0.1; done
contains "broken document logged by number" "$(grep 'policy reload failed' "$TMP/serve.log" | tail -n 1)" "zz-broken.yaml: document 2"
# A valid policy Kuma stamped with another zone (serve runs with the default zone "default").
printf 'apiVersion: kuma.io/v1alpha1\nkind: MeshMetric\nmetadata:\n  name: from-east\n  namespace: kuma-system\n  labels: {kuma.io/zone: east, kuma.io/origin: zone}\nspec:\n  targetRef: {kind: Mesh}\n  default: {}\n' >"$POL/zz-broken.yaml"
for _ in $(seq 50); do grep -q 'policy selects nothing here' "$TMP/serve.log" && break; sleep 0.1; done
contains "another zone's policy: logged" "$(grep 'policy selects nothing here' "$TMP/serve.log")" "kuma-system/from-east"
check "another zone's policy: logged once across reloads" "$(sleep 0.5; touch "$POL/zz-broken.yaml"; sleep 0.5; grep -c 'policy selects nothing here' "$TMP/serve.log")" "1"
contains "another zone's policy: /readyz?verbose lists it" "$(curl -sS "$PLAIN/readyz?verbose")" \
    $'[+]policy-notes ok: 1 valid policies select no data plane proxy here\n    kuma-system/from-east: it carries kuma.io/zone: east'
rm -f "$POL/zz-broken.yaml"
cp "$DATA/policies/meshmetric-tls.yaml" "$POL/"
for _ in $(seq 50); do GOT=$(first_port); [ "$GOT" == 5670 ] && break; sleep 0.1; done
check "recovers when the file is fixed" "$GOT" "5670"

# ---------------------------------------------------------------- rotation under load
echo "# certificate rotation under load"
serial_served() {
    openssl s_client -connect "127.0.0.1:$PORT" -servername "$HOST" </dev/null 2>/dev/null |
        openssl x509 -noout -serial 2>/dev/null | cut -d= -f2
}
check "serves the initial certificate" "$(serial_served)" "$(openssl x509 -in "$TMP/certs/tls.crt" -noout -serial | cut -d= -f2)"
for i in 1 2 3 4 5; do
    "$BIN" certs --service $SVC --namespace $NS --out "$TMP/rot$i" \
        --ca-cert "$TMP/certs/ca.crt" --ca-key "$TMP/certs/ca.key" >/dev/null 2>&1
done
# Fresh connection per request (a TLS handshake each) in two loops, plus keep-alive transfers.
loop() {
    for _ in $(seq "$1"); do
        curl -sS -o /dev/null -w '%{http_code}\n' "${TLS[@]}" "${CT[@]}" --data-binary @"$FIXTURE" "$URL/mutate" 2>&1 || echo curl-error
    done
}
: >"$TMP/par.cfg"
for i in $(seq 1000); do printf 'url = "%s/mutate?n=%d"\noutput = "/dev/null"\n' "$URL" "$i" >>"$TMP/par.cfg"; done
loop 500 >"$TMP/loadA" &
LA=$!
loop 500 >"$TMP/loadB" &
LB=$!
curl -sS --no-progress-meter --parallel --parallel-max 4 -w '%{http_code}\n' "${TLS[@]}" "${CT[@]}" --data-binary @"$FIXTURE" -K "$TMP/par.cfg" >"$TMP/loadC" 2>"$TMP/loadC.err" &
LC=$!
for i in 1 2 3 4 5; do
    sleep 1
    rotate "$TMP/rot$i/tls.crt" "$TMP/rot$i/tls.key"
done
wait $LA $LB $LC
TOTAL=$(cat "$TMP/loadA" "$TMP/loadB" "$TMP/loadC" | wc -l)
GOOD=$(cat "$TMP/loadA" "$TMP/loadB" "$TMP/loadC" | grep -c '^200$')
check "2000 requests during 5 rotations" "$TOTAL" "2000"
check "zero failures during rotation" "$((TOTAL - GOOD))" "0"
[ "$TOTAL" != "$GOOD" ] && cat "$TMP/loadA" "$TMP/loadB" "$TMP/loadC" | grep -v '^200$' | sort | uniq -c | head -n 5 | sed 's/^/#   /'
RELOADS=$(grep -c 'serving certificate reloaded' "$TMP/serve.log")
check "every rotation was loaded" "$RELOADS" "5"
WANT=$(openssl x509 -in "$TMP/rot5/tls.crt" -noout -serial | cut -d= -f2)
GOT=
for _ in $(seq 30); do GOT=$(serial_served); [ "$GOT" == "$WANT" ] && break; sleep 0.1; done
check "the newest certificate is served" "$GOT" "$WANT"
# A key that does not match is refused; the previous pair stays.
rotate "$TMP/certs/tls.crt" "$TMP/rot1/tls.key"
for _ in $(seq 30); do grep -q 'does not match' "$TMP/serve.log" && break; sleep 0.1; done
contains "mismatched key refused and logged" "$(grep 'certificate reload failed' "$TMP/serve.log" | tail -n 1)" "does not match"
check "previous certificate still served" "$(serial_served)" "$WANT"
check "requests still succeed" "$(post /mutate "$FIXTURE")" "200"

# ---------------------------------------------------------------- graceful shutdown
echo "# graceful shutdown"
# A slow upload (about 6 s) is in flight when SIGTERM arrives; it must still be answered.
curl -sS -o "$TMP/slow.out" -w '%{http_code}' --limit-rate 1000 "${TLS[@]}" "${CT[@]}" \
    --data-binary @"$FIXTURE" "$URL/mutate" >"$TMP/slow.code" 2>&1 &
SLOW=$!
sleep 1.5
kill -TERM "$SERVER_PID"
sleep 0.5
curl -sS -o /dev/null --connect-timeout 2 "${TLS[@]}" "$URL/healthz" 2>/dev/null
RC=$?
check "new connections refused while draining (curl exit 7)" "$RC" "7"
check "plain /readyz is 503 while draining" "$(curl -s -o /dev/null -w '%{http_code}' "$PLAIN/readyz")" "503"
check "plain /healthz still 200 while draining" "$(curl -s -o /dev/null -w '%{http_code}' "$PLAIN/healthz")" "200"
wait $SLOW
check "in-flight request answered" "$(cat "$TMP/slow.code")" "200"
check "in-flight request has its uid" "$($H jget "$TMP/slow.out" 'd["response"]["uid"]')" "$($H jget "$FIXTURE" 'd["request"]["uid"]')"
wait "$SERVER_PID"
check "server exits 0 after SIGTERM" "$?" "0"
SERVER_PID=
contains "shutdown logged" "$(grep '"server stopped","server":"webhook"' "$TMP/serve.log")" '"abandoned_requests":"0"'

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
