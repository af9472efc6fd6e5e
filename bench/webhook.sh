#!/usr/bin/env bash
# Benchmark of the admission webhook against two baselines measured in the
# same run with the same certificate:
#   webhook  meshmetric-operator serve, 100 MeshMetric policies, the 5.8 KB
#            admissionreview-kuma.json fixture
#   bare     bench/bare_webhook.c: bare libmicrohttpd HTTPS + jansson parse +
#            fixed AdmissionReview, same threading mode as the webhook
#   nginx    nginx-light, `return 200` of a fixed ~700-byte JSON
# Measures (wrk, keep-alive HTTPS, -t2): throughput and p50/p99 at 16 and 64
# connections; p50/p99 at about 1,000 requests/s (wrk with a Lua delay() per
# connection: 10 connections x 10 ms); new-connection (full TLS handshake)
# rate with 'Connection: close' for ECDSA P-256 and RSA-2048 certificates;
# the webhook's RSS across 1M requests (100k with BENCH_QUICK=1); the
# thread-per-connection (the default) vs thread pool modes.
#
# Usage: bench/webhook.sh BUILD_DIR    (loopback only; takes about 5 minutes)
# Environment: BENCH_QUICK=1, BENCH_DURATION=seconds per wrk run (default 10),
#              MM_REVIEW=AdmissionReview to send (default tests/data/admission/kuma-pod.json).
set -euo pipefail

BUILD=$(cd "${1:-build}" && pwd)
BIN=$BUILD/meshmetric-operator
BARE=$BUILD/bare_webhook
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
export BODY_FILE=${MM_REVIEW:-$ROOT/tests/data/admission/kuma-pod.json}
DUR=${BENCH_DURATION:-10}
QUICK=${BENCH_QUICK:-0}
RSS_TARGET=$([ "$QUICK" == 1 ] && echo 100000 || echo 1000000)
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
for t in "$BIN" "$BARE" "$BODY_FILE" "$NGINX" "$(command -v wrk)"; do
    [ -e "$t" ] || { echo "missing: $t" >&2; exit 2; }
done

TMP=$(mktemp -d /tmp/mm-bench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P_WH=$(free_port)
P_BARE=$(free_port)
P_NGX=$(free_port)
P_MET=$(free_port)

# ---------------------------------------------------------------- fixtures
for kind in ecdsa rsa; do
    "$BIN" certs --service mm-webhook --namespace kuma-system --extra-san 127.0.0.1 \
        --out "$TMP/$kind" $([ $kind == rsa ] && echo --rsa) >/dev/null 2>&1
done
mkdir -p "$TMP/policies"
# 100 MeshMetrics in the fixture pod's mix: mesh-wide ones in kuma-system,
# namespace-scoped ones in the pod's namespace (shop-prod) and elsewhere,
# Dataplane/MeshSubset label selectors that match it or not.
python3 - "$TMP/policies" <<'EOF'
import json, sys
out = sys.argv[1]
docs = []
for i in range(100):
    mesh = "default" if i % 5 else "other-mesh"
    ns = ["kuma-system", "shop-prod", "shop-prod", "payments", "kuma-system"][i % 5]
    kind = ["Mesh", "Dataplane", "MeshSubset", "Dataplane", "Mesh"][(i // 5) % 5]
    tref = {"kind": kind}
    if kind == "Dataplane":
        tref["labels"] = {"app.kubernetes.io/name": "checkout-api" if i % 3 else "cart"}
    if kind == "MeshSubset":
        tref["tags"] = {"team": "payments" if i % 2 else "search"}
    backends = [{"type": "Prometheus", "prometheus": {
        "port": 5670 + (i % 7), "path": "/metrics",
        "tls": {"mode": "ProvidedTLS" if i % 4 == 0 else "Disabled"}}}]
    default = {"backends": backends,
               "sidecar": {"includeUnused": i % 2 == 0,
                           "profiles": {"appendProfiles": [{"name": "Basic"}]}}}
    if i % 6 == 0:
        default["applications"] = [{"name": "app-%d" % i, "port": 9100 + i, "path": "/metrics"}]
    docs.append({"apiVersion": "kuma.io/v1alpha1", "kind": "MeshMetric",
                 "metadata": {"name": "bench-%03d" % i, "namespace": ns,
                              "labels": {"kuma.io/mesh": mesh}},
                 "spec": {"targetRef": tref, "default": default}})
with open(out + "/bench.json", "w") as f:
    json.dump({"apiVersion": "v1", "kind": "List", "items": docs}, f)
EOF
# A fixed answer of about 700 bytes for nginx (an AdmissionReview with a patch).
NGX_BODY=$(python3 -c '
import base64, json
patch = base64.b64encode(json.dumps([{"op": "add", "path": "/spec/containers/0/ports", "value": [{"name": "metrics", "containerPort": 5670, "protocol": "TCP"}]}] * 4).encode()).decode()
print(json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": True, "patchType": "JSONPatch", "patch": patch[:560]}}, separators=(",", ":")))')

# ---------------------------------------------------------------- servers
start_webhook() { # start_webhook CERTDIR [serve flags...]
    local dir=$1
    shift
    "$BIN" serve --webhook-addr "127.0.0.1:$P_WH" --metrics-addr "127.0.0.1:$P_MET" \
        --tls-cert-file "$dir/tls.crt" \
        --tls-key-file "$dir/tls.key" --policies-dir "$TMP/policies" --log-level warn "$@" \
        2>>"$TMP/webhook.log" &
    WH_PID=$!
    PIDS+=("$WH_PID")
    wait_ready "https://127.0.0.1:$P_WH/readyz" "$dir"
}
start_bare() {
    "$BARE" "$P_BARE" "$1/tls.crt" "$1/tls.key" 2>>"$TMP/bare.log" &
    BARE_PID=$!
    PIDS+=("$BARE_PID")
    wait_ready "https://127.0.0.1:$P_BARE/" "$1"
}
start_nginx() {
    local user=""
    [ "$(id -u)" == 0 ] && user="user root;"
    mkdir -p "$TMP/nginx-body"
    sed -e "s|@TMP@|$TMP|g" -e "s|@PORT@|$P_NGX|g" -e "s|@CERT@|$1/tls.crt|g" \
        -e "s|@KEY@|$1/tls.key|g" -e "s|@USER@|$user|g" -e "s|@BODY@|$NGX_BODY|g" \
        "$HERE/nginx-bench.conf" >"$TMP/nginx.conf"
    "$NGINX" -c "$TMP/nginx.conf" -p "$TMP" -g 'daemon off;' 2>>"$TMP/nginx.log" &
    NGX_PID=$!
    PIDS+=("$NGX_PID")
    wait_ready "https://127.0.0.1:$P_NGX/" "$1"
}
wait_ready() {
    for _ in $(seq 100); do
        curl -s -o /dev/null --cacert "$2/ca.crt" "$1" && return 0
        sleep 0.1
    done
    echo "server at $1 did not start" >&2
    exit 1
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# ---------------------------------------------------------------- wrk
# run_wrk KEY URL CONNS DURATION [wrk args...]: stores R_rps, R_p50, R_p99, R_err for KEY
to_ms() { awk -v v="$1" 'BEGIN{ if (v ~ /us$/) print v/1000; else if (v ~ /ms$/) print v+0; else if (v ~ /s$/) print v*1000; else print v }'; }
declare -A RPS P50 P99 ERR
run_wrk() {
    local key=$1 url=$2 conns=$3 dur=$4
    shift 4
    wrk -t2 -c"$conns" -d"${dur}s" --latency -s "$HERE/post.lua" "$@" "$url" >"$TMP/wrk.out" 2>&1 || true
    RPS[$key]=$(awk '/^Requests\/sec:/{printf "%.0f", $2}' "$TMP/wrk.out")
    P50[$key]=$(to_ms "$(awk '$1=="50%"{print $2}' "$TMP/wrk.out")")
    P99[$key]=$(to_ms "$(awk '$1=="99%"{print $2}' "$TMP/wrk.out")")
    ERR[$key]=$(awk '/Non-2xx/{n+=$NF} /Socket errors/{gsub(",","");n+=$4+$6+$8+$10} END{print n+0}' "$TMP/wrk.out")
    REQS=$(awk '/requests in/{print $1}' "$TMP/wrk.out")
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "n/a" }'; }
rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }

echo "# meshmetric-operator webhook benchmark ($(nproc) CPUs, wrk -t2, ${DUR}s per run, loopback HTTPS)"
start_webhook "$TMP/ecdsa"
start_bare "$TMP/ecdsa"
start_nginx "$TMP/ecdsa"
URL_WH="https://127.0.0.1:$P_WH/mutate?timeout=10s"
URL_BARE="https://127.0.0.1:$P_BARE/mutate"
URL_NGX="https://127.0.0.1:$P_NGX/mutate"
curl -s --cacert "$TMP/ecdsa/ca.crt" -H 'Content-Type: application/json' --data-binary @"$BODY_FILE" "$URL_WH" |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["response"]; assert r["allowed"] and r.get("patch"), r; print("# webhook answers with a %d-byte patch" % len(r["patch"]))'

# Warm up every server once.
for u in "$URL_WH" "$URL_BARE" "$URL_NGX"; do run_wrk warm "$u" 16 2; done

for c in 16 64; do
    run_wrk "webhook/$c" "$URL_WH" "$c" "$DUR"
    run_wrk "bare/$c" "$URL_BARE" "$c" "$DUR"
    run_wrk "nginx/$c" "$URL_NGX" "$c" "$DUR"
done
# Every request a different pod: nothing can be replayed (server/replay.h).
for c in 16 64; do
    UNIQUE=1 run_wrk "webhook/u$c" "$URL_WH" "$c" "$DUR"
    UNIQUE=1 run_wrk "bare/u$c" "$URL_BARE" "$c" "$DUR"
done
# ~1,000 requests/s: 10 connections, each waiting 10 ms before every request.
for s in webhook bare nginx; do
    u=URL_WH
    [ $s == bare ] && u=URL_BARE
    [ $s == nginx ] && u=URL_NGX
    DELAY_MS=10 run_wrk "$s/1k" "${!u}" 10 "$DUR"
done
# New connections per second: a full TLS handshake per request.
for s in webhook nginx bare; do
    u=URL_WH
    [ $s == bare ] && u=URL_BARE
    [ $s == nginx ] && u=URL_NGX
    run_wrk "$s/hs-ecdsa" "${!u}" 16 "$DUR" -H 'Connection: close'
done

# RSS across RSS_TARGET requests on the webhook (keep-alive, 64 connections).
run_wrk rsswarm "$URL_WH" 64 3
RSS0=$(rss_kb "$WH_PID")
RSS_MAX=$RSS0
TOTAL=0
while [ "$TOTAL" -lt "$RSS_TARGET" ]; do
    run_wrk rss "$URL_WH" 64 5
    TOTAL=$((TOTAL + REQS))
    r=$(rss_kb "$WH_PID")
    [ "$r" -gt "$RSS_MAX" ] && RSS_MAX=$r
done
RSS1=$(rss_kb "$WH_PID")

# RSA certificates for the handshake comparison.
stop "$WH_PID"
stop "$NGX_PID"
stop "$BARE_PID"
start_webhook "$TMP/rsa"
start_nginx "$TMP/rsa"
start_bare "$TMP/rsa"
for s in webhook nginx bare; do
    u=URL_WH
    [ $s == bare ] && u=URL_BARE
    [ $s == nginx ] && u=URL_NGX
    run_wrk "$s/hs-rsa" "${!u}" 16 "$DUR" -H 'Connection: close'
done
stop "$WH_PID"

# Threading modes of the webhook (same ECDSA certificate).
start_webhook "$TMP/ecdsa" --thread-pool "$(nproc)"
for c in 4 16 64; do run_wrk "pool/$c" "$URL_WH" "$c" "$DUR"; done
stop "$WH_PID"
start_webhook "$TMP/ecdsa"
run_wrk "webhook/4" "$URL_WH" 4 "$DUR"
stop "$WH_PID"

# ---------------------------------------------------------------- report
echo
echo "## Keep-alive throughput and latency (POST 5.8 KB AdmissionReview)"
printf '%-8s %5s %10s %9s %9s %7s\n' server conns "req/s" "p50 ms" "p99 ms" errors
for c in 16 64; do
    for s in webhook bare nginx; do
        k="$s/$c"
        printf '%-8s %5s %10s %9s %9s %7s\n' "$s" "$c" "${RPS[$k]}" "${P50[$k]}" "${P99[$k]}" "${ERR[$k]}"
    done
done
for c in 16 64; do
    echo "ratio c=$c: webhook/bare $(ratio "${RPS[webhook/$c]}" "${RPS[bare/$c]}")  webhook/nginx $(ratio "${RPS[webhook/$c]}" "${RPS[nginx/$c]}")  (target webhook/bare >= 0.80)"
done
echo
echo "## Every request a different pod (no replay: full parse + engine), keep-alive"
printf '%-8s %5s %10s %9s %9s %7s\n' server conns "req/s" "p50 ms" "p99 ms" errors
for c in 16 64; do
    for s in webhook bare; do
        k="$s/u$c"
        printf '%-8s %5s %10s %9s %9s %7s\n' "$s" "$c" "${RPS[$k]}" "${P50[$k]}" "${P99[$k]}" "${ERR[$k]}"
    done
    echo "ratio c=$c (distinct pods): webhook/bare $(ratio "${RPS[webhook/u$c]}" "${RPS[bare/u$c]}")"
done
echo
echo "## Latency at about 1,000 requests/s (wrk, 10 connections x delay() 10 ms)"
printf '%-8s %10s %9s %9s\n' server "req/s" "p50 ms" "p99 ms"
for s in webhook bare nginx; do
    printf '%-8s %10s %9s %9s\n' "$s" "${RPS[$s/1k]}" "${P50[$s/1k]}" "${P99[$s/1k]}"
done
echo "webhook p99 at ~1k req/s: ${P99[webhook/1k]} ms (target < 5 ms)"
echo
echo "## New connections per second (TLS handshake per request, 16 connections)"
printf '%-8s %10s %10s\n' server "ECDSA" "RSA-2048"
for s in webhook bare nginx; do
    printf '%-8s %10s %10s\n' "$s" "${RPS[$s/hs-ecdsa]}" "${RPS[$s/hs-rsa]}"
done
echo "ratio webhook/nginx: ECDSA $(ratio "${RPS[webhook/hs-ecdsa]}" "${RPS[nginx/hs-ecdsa]}")  RSA $(ratio "${RPS[webhook/hs-rsa]}" "${RPS[nginx/hs-rsa]}")"
echo "webhook ECDSA/RSA handshake rate: $(ratio "${RPS[webhook/hs-ecdsa]}" "${RPS[webhook/hs-rsa]}") (the chart uses ECDSA P-256)"
echo
echo "## Threading mode of the webhook (keep-alive req/s)"
printf '%-30s %8s %8s %8s\n' mode "c=4" "c=16" "c=64"
printf '%-30s %8s %8s %8s\n' "thread per connection (default)" "${RPS[webhook/4]}" "${RPS[webhook/16]}" "${RPS[webhook/64]}"
printf '%-30s %8s %8s %8s\n' "epoll pool of $(nproc) threads" "${RPS[pool/4]}" "${RPS[pool/16]}" "${RPS[pool/64]}"
echo
echo "## Memory across $TOTAL requests"
echo "RSS after warm-up ${RSS0} kB, at the end ${RSS1} kB, peak ${RSS_MAX} kB, end/warm-up $(ratio "$RSS1" "$RSS0") (target within 10%)"
