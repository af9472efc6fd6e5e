#!/usr/bin/env bash
# End-to-end test: hostile clients cannot starve admissions.
#
#  1. flood: 1,100 TCP connections from one address that never start TLS
#     (reopened whenever the server closes one) for 15 s, against the default
#     --connection-limit of 1000. Meanwhile /healthz and a real admission
#     (curl --cacert, POST /mutate) must be answered within 1 s, ten times
#     each, the plain-HTTP /healthz too, and the server's threads and RSS stay
#     bounded. Afterwards /metrics shows the evictions and header timeouts.
#  2. slowloris: a TLS connection that trickles its request headers one byte
#     per second is cut at --header-timeout; one that trickles its body is cut
#     at --read-timeout.
#
# Usage: tests/e2e/hostile_test.sh BUILD_DIR
# Prints "N passed, M failed" last; exits non-zero on any failure.
set -u

BUILD=$(cd "${1:-build}" && pwd) || exit 2
BIN=$BUILD/meshmetric-operator
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
FIXTURE=$ROOT/tests/data/admission/kuma-pod.json
DATA=$ROOT/tests/data/webhook
HOSTILE="python3 $HERE/hostile_helpers.py"

SVC=mm-webhook
NS=kuma-system
HOST=$SVC.$NS.svc
FLOOD=1100
FLOOD_S=15
HEADER_TIMEOUT=3
READ_TIMEOUT=5

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   - $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $1"; [ $# -gt 1 ] && echo "       $2"; return 0; }
check() { if [ "$2" == "$3" ]; then ok "$1"; else bad "$1" "got [$2] want [$3]"; fi; }
# between NAME VALUE LOW HIGH (numbers, inclusive)
between() {
    if awk -v v="$2" -v lo="$3" -v hi="$4" 'BEGIN{exit !(v != "" && v+0 >= lo && v+0 <= hi)}'; then
        ok "$1 ($2)"
    else
        bad "$1" "got [$2] want within [$3, $4]"
    fi
}

for f in "$BIN" "$FIXTURE"; do
    [ -e "$f" ] || { echo "missing $f"; echo "0 passed, 1 failed"; exit 1; }
done
# 1,100 client sockets here plus as many on the server's side.
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 2600 ]; then
    echo "# the open-file limit $(ulimit -n) is too low for this test"
    echo "0 passed, 1 failed"
    exit 1
fi

TMP=$(mktemp -d /tmp/mm-hostile-e2e.XXXXXX)
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    jobs -p | xargs -r kill 2>/dev/null
    if [ "$FAIL" -gt 0 ] && [ -f "$TMP/serve.log" ]; then
        echo "# last server log lines:"
        tail -n 15 "$TMP/serve.log" | sed 's/^/#   /'
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
MPORT=$(free_port)
URL=https://$HOST:$PORT
TLS=(--cacert "$TMP/certs/ca.crt" --resolve "$HOST:$PORT:127.0.0.1")

"$BIN" certs --service $SVC --namespace $NS --out "$TMP/certs" >/dev/null 2>&1 || { echo "certs failed"; exit 1; }
mkdir -p "$TMP/policies"
cp "$DATA/policies/"*.yaml "$TMP/policies/"
"$BIN" serve --webhook-addr "127.0.0.1:$PORT" --metrics-addr "127.0.0.1:$MPORT" \
    --tls-cert-file "$TMP/certs/tls.crt" --tls-key-file "$TMP/certs/tls.key" \
    --policies-dir "$TMP/policies" --header-timeout $HEADER_TIMEOUT --read-timeout $READ_TIMEOUT \
    2>"$TMP/serve.log" &
SERVER_PID=$!
READY=1
for _ in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "${TLS[@]}" "$URL/readyz")" == 200 ] && { READY=0; break; }
    sleep 0.1
done
check "server becomes ready" "$READY" "0"

# probe NAME CURL_ARGS...: one request, at most 1 s; prints "CODE SECONDS"
probe() {
    local out
    out=$(curl -s -o /dev/null --max-time 1 -w '%{http_code} %{time_total}' "$@" 2>/dev/null)
    echo "${out:-000 1}"
}
metric() { curl -s "http://127.0.0.1:$MPORT/metrics" | awk -v k="$1" '$1==k{print $2}'; }

# ---------------------------------------------------------------- flood
echo "# flood: $FLOOD idle TCP connections for ${FLOOD_S}s"
$HOSTILE flood "$PORT" "$FLOOD" "$FLOOD_S" >"$TMP/flood.json" 2>"$TMP/flood.err" &
FLOODER=$!
sleep 2 # let it open them all (and the server make room)
: >"$TMP/probes"
MAX_THREADS=0
MAX_RSS=0
for i in $(seq 10); do
    probe "${TLS[@]}" "$URL/healthz" | sed 's/^/healthz /' >>"$TMP/probes"
    probe "${TLS[@]}" -H 'Content-Type: application/json' --data-binary @"$FIXTURE" "$URL/mutate?timeout=10s" |
        sed 's/^/mutate /' >>"$TMP/probes"
    probe "http://127.0.0.1:$MPORT/healthz" | sed 's/^/plain /' >>"$TMP/probes"
    T=$(awk '/^Threads:/{print $2}' "/proc/$SERVER_PID/status" 2>/dev/null || echo 0)
    R=$(awk '/^VmRSS:/{print $2}' "/proc/$SERVER_PID/status" 2>/dev/null || echo 0)
    [ "${T:-0}" -gt "$MAX_THREADS" ] && MAX_THREADS=$T
    [ "${R:-0}" -gt "$MAX_RSS" ] && MAX_RSS=$R
    sleep 1
done
OPEN_DURING=$(metric meshmetric_webhook_open_connections)
wait $FLOODER
awk '{n[$1]++; if ($3 > m[$1]) m[$1] = $3} END {for (k in n) printf "# %s: %d probes, slowest %.3f s\n", k, n[k], m[k]}' "$TMP/probes" | sort
echo "# server during the flood: at most $MAX_THREADS threads, $MAX_RSS kB RSS"
for what in healthz mutate plain; do
    check "$what answered 10 times with 200 during the flood" \
        "$(awk -v w=$what '$1==w && $2==200' "$TMP/probes" | wc -l)" "10"
    SLOW=$(awk -v w=$what '$1==w && $3+0 >= 1.0' "$TMP/probes" | wc -l)
    check "$what answered within 1 s every time" "$SLOW" "0"
done
echo "# flood: $(cat "$TMP/flood.json")"
REOPENED=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["reopened"])' "$TMP/flood.json" 2>/dev/null || echo 0)
between "the server closed idle connections to make room" "$REOPENED" 100 100000000
between "open connections stay under the connection limit + margin" "${OPEN_DURING:-0}" 0 1125
between "threads stay bounded (limit + margin + a few)" "$MAX_THREADS" 1 1160
# About 30 MB in a release build; the sanitizers' shadow memory and per-thread state for a
# thousand threads add about 0.5 GB (ASan) and 1 GB (TSan).
RSS_MAX_KB=262144
ldd "$BIN" 2>/dev/null | grep -q libasan && RSS_MAX_KB=1048576
ldd "$BIN" 2>/dev/null | grep -q libtsan && RSS_MAX_KB=4194304
between "RSS stays bounded (kB)" "$MAX_RSS" 1 "$RSS_MAX_KB"
between "evictions counted" "$(metric 'meshmetric_webhook_connections_closed_total{reason="evicted"}')" 1 100000000
OPEN=
for _ in $(seq 50); do
    OPEN=$(metric meshmetric_webhook_open_connections)
    [ "${OPEN:-99}" -le 2 ] && break
    sleep 0.1
done
between "the flood's connections are gone afterwards" "${OPEN:-99}" 0 2
grep -q '"closed slow, stalled or surplus connections"' "$TMP/serve.log"
check "a summary of the closed connections is logged" "$?" "0"
check "admissions still work after the flood" \
    "$(probe "${TLS[@]}" -H 'Content-Type: application/json' --data-binary @"$FIXTURE" "$URL/mutate" | cut -d' ' -f1)" "200"

# ---------------------------------------------------------------- slowloris
echo "# slowloris"
$HOSTILE slowloris "$PORT" "$TMP/certs/ca.crt" "$HOST" headers 30 >"$TMP/slow-headers.json" &
S1=$!
$HOSTILE slowloris "$PORT" "$TMP/certs/ca.crt" "$HOST" body 30 >"$TMP/slow-body.json" &
S2=$!
wait $S1 $S2
echo "# headers: $(cat "$TMP/slow-headers.json")  body: $(cat "$TMP/slow-body.json")"
jfield() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2" 2>/dev/null; }
between "trickled headers cut at --header-timeout ($HEADER_TIMEOUT s)" "$(jfield "$TMP/slow-headers.json" closed_after)" \
    "$((HEADER_TIMEOUT - 1))" "$((HEADER_TIMEOUT + 2))"
between "trickled body cut at --read-timeout ($READ_TIMEOUT s)" "$(jfield "$TMP/slow-body.json" closed_after)" \
    "$((READ_TIMEOUT - 1))" "$((READ_TIMEOUT + 2))"
between "header timeouts counted" "$(metric 'meshmetric_webhook_connections_closed_total{reason="header_timeout"}')" 1 100
between "read timeouts counted" "$(metric 'meshmetric_webhook_connections_closed_total{reason="read_timeout"}')" 1 100

kill -TERM "$SERVER_PID"
wait "$SERVER_PID"
check "server exits 0 after SIGTERM" "$?" "0"
SERVER_PID=

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
