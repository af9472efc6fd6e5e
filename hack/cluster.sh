#!/usr/bin/env bash
# hack/cluster.sh - start/stop the local test Kubernetes API server (tests/apiserver/server.py).
#
# Usage:
#   hack/cluster.sh up [--port N] [--http-port N] [--state DIR] [--service-map MAP] [--continue-ttl S]
#                      [--shutdown-delay S] [--shutdown-grace S] [--verbose]
#   hack/cluster.sh down
#   hack/cluster.sh status
#   hack/cluster.sh restart [options as for up]   # down + up; same port, same CA, same token
#   hack/cluster.sh env                           # print the export line again
#   hack/cluster.sh token NS SA [SECONDS]         # print a bearer token for ServiceAccount NS/SA
#   hack/cluster.sh kubeconfig-sa NS SA [FILE]    # write a kubeconfig for NS/SA (default
#                                                 # $MM_LOCAL_DIR/kubeconfig-NS-SA), print its export line
#
#   --port N          HTTPS port on 127.0.0.1 (default: the previous port if free, else a free one)
#   --http-port N     also serve plain HTTP on this port (default: off)
#   --state DIR       keep objects across restarts in DIR/state.json (default: state is lost)
#   --service-map MAP webhook Services -> loopback, "ns/name:port=127.0.0.1:PORT,..." (port part
#                     of the key optional); also settable later with POST /_control/service-map
#   --continue-ttl S  seconds an older resourceVersion stays readable: continue tokens and exact
#                     lists older than that get 410 Expired, as after etcd compaction (default 300)
#   --shutdown-delay S / --shutdown-grace S
#                     on SIGTERM ("down"): /readyz fails for S seconds while requests are served,
#                     then new requests get 429 + Retry-After for S seconds (defaults 0 and 0)
#
# Files, all under $MM_LOCAL_DIR (default: <repo>/.local):
#   kubeconfig        certificate-authority-data + bearer token; context "meshmetric-local", ns default
#   apiserver.pid     pid of the server          apiserver.port   HTTPS port
#   apiserver.http-port  plain HTTP port (only with --http-port; same token required)
#   apiserver.log     server stderr              token            the bearer token
#   pki/              ca.crt, ca.key, apiserver.crt, apiserver.key (kept across restarts)
#   apiserver.args    the options of the last "up" (reused by "restart" when none are given)
#
# "up" prints `export KUBECONFIG=<path>` on stdout (everything else goes to stderr), so
#   eval "$(hack/cluster.sh up)"
# works. "up" when already running is a no-op that prints the same line. Exit status is
# non-zero when the server cannot be started. "status" exits 0 when running and answering, 3 when not.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCAL=${MM_LOCAL_DIR:-$ROOT/.local}
SERVER=$ROOT/tests/apiserver/server.py
PIDF=$LOCAL/apiserver.pid
PORTF=$LOCAL/apiserver.port
KCFG=$LOCAL/kubeconfig
LOG=$LOCAL/apiserver.log
TOKENF=$LOCAL/token
ARGSF=$LOCAL/apiserver.args

say() { printf '%s\n' "$*" >&2; }

running_pid() {
  [ -f "$PIDF" ] || return 1
  local pid
  pid=$(cat "$PIDF" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  # make sure the pid is really our server, not a recycled pid
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "tests/apiserver/server.py" || return 1
  echo "$pid"
}

answering() {
  local port
  port=$(cat "$PORTF" 2>/dev/null) || return 1
  [ -n "$port" ] || return 1
  curl -sf --max-time 2 --cacert "$LOCAL/pki/ca.crt" -H "Authorization: Bearer $(cat "$TOKENF")" \
    "https://127.0.0.1:$port/readyz" >/dev/null 2>&1
}

port_free() {
  python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
}

cmd_up() {
  mkdir -p "$LOCAL" "$LOCAL/pki"
  if pid=$(running_pid) && answering; then
    say "test apiserver already running (pid $pid, port $(cat "$PORTF"))"
    echo "export KUBECONFIG=$KCFG"
    return 0
  fi
  if pid=$(running_pid); then
    say "test apiserver pid $pid not answering; restarting it"
    cmd_down
  fi
  local port="" http_port="" state="" svcmap="" verbose="" ttl="" sdelay="" sgrace=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --port) port=$2; shift 2 ;;
      --http-port) http_port=$2; shift 2 ;;
      --state) state=$2; shift 2 ;;
      --service-map) svcmap=$2; shift 2 ;;
      --continue-ttl) ttl=$2; shift 2 ;;
      --shutdown-delay) sdelay=$2; shift 2 ;;
      --shutdown-grace) sgrace=$2; shift 2 ;;
      --verbose|-v) verbose=1; shift ;;
      *) say "unknown option: $1"; exit 2 ;;
    esac
  done
  local saved=()
  [ -n "$port" ] && saved+=(--port "$port")
  [ -n "$http_port" ] && saved+=(--http-port "$http_port")
  [ -n "$state" ] && saved+=(--state "$state")
  [ -n "$svcmap" ] && saved+=(--service-map "$svcmap")
  [ -n "$ttl" ] && saved+=(--continue-ttl "$ttl")
  [ -n "$sdelay" ] && saved+=(--shutdown-delay "$sdelay")
  [ -n "$sgrace" ] && saved+=(--shutdown-grace "$sgrace")
  [ -n "$verbose" ] && saved+=(--verbose)
  if [ ${#saved[@]} -gt 0 ]; then printf '%q ' "${saved[@]}" >"$ARGSF"; else : >"$ARGSF"; fi
  if [ -z "$port" ]; then
    port=0
    if [ -f "$PORTF" ] && old=$(cat "$PORTF") && [ -n "$old" ] && port_free "$old"; then port=$old; fi
  fi
  [ -s "$TOKENF" ] || { python3 -c 'import secrets; print("mm-" + secrets.token_hex(16))' >"$TOKENF"; chmod 600 "$TOKENF"; }
  rm -f "$PORTF"
  local args=(--cert-dir "$LOCAL/pki" --token-file "$TOKENF" --kubeconfig "$KCFG" --port-file "$PORTF" --port "$port")
  rm -f "$LOCAL/apiserver.http-port"
  [ -n "$http_port" ] && args+=(--http-port "$http_port" --http-port-file "$LOCAL/apiserver.http-port")
  [ -n "$state" ] && { mkdir -p "$state"; args+=(--state "$(cd "$state" && pwd)"); }
  [ -n "$svcmap" ] && args+=(--service-map "$svcmap")
  [ -n "$ttl" ] && args+=(--continue-ttl "$ttl")
  [ -n "$sdelay" ] && args+=(--shutdown-delay "$sdelay")
  [ -n "$sgrace" ] && args+=(--shutdown-grace "$sgrace")
  [ -n "$verbose" ] && args+=(--verbose)
  setsid python3 -B "$SERVER" "${args[@]}" </dev/null >>"$LOG" 2>&1 &
  echo $! >"$PIDF"
  local i
  for i in $(seq 1 150); do
    if ! kill -0 "$(cat "$PIDF")" 2>/dev/null; then
      say "test apiserver exited during start; last log lines:"; tail -n 20 "$LOG" >&2; exit 1
    fi
    if [ -s "$PORTF" ] && answering; then
      say "test apiserver running (pid $(cat "$PIDF"), https://127.0.0.1:$(cat "$PORTF"))"
      echo "export KUBECONFIG=$KCFG"
      return 0
    fi
    sleep 0.1
  done
  say "test apiserver did not answer within 15s; see $LOG"
  exit 1
}

cmd_down() {
  local pid waits
  if pid=$(running_pid); then
    kill -TERM "$pid" 2>/dev/null || true
    # 5 s, plus room for --shutdown-delay and --shutdown-grace
    waits=$(python3 -c 'import shlex, sys
a = shlex.split(open(sys.argv[1]).read())
print(50 + int(10 * sum(float(a[i + 1]) for i, x in enumerate(a[:-1]) if x in ("--shutdown-delay", "--shutdown-grace"))))' \
      "$ARGSF" 2>/dev/null || echo 50)
    for _ in $(seq 1 "$waits"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    say "test apiserver stopped (pid $pid)"
  else
    say "test apiserver not running"
  fi
  rm -f "$PIDF"
}

# sa_token NS SA [SECONDS]: POST /_control/token and print the token
sa_token() {
  local ns=$1 sa=$2 secs=${3:-3600} port out
  port=$(cat "$PORTF" 2>/dev/null) || { say "test apiserver not running"; return 3; }
  out=$(curl -sS --max-time 10 --cacert "$LOCAL/pki/ca.crt" -H "Authorization: Bearer $(cat "$TOKENF")" \
    -H 'Content-Type: application/json' -d "{\"namespace\":\"$ns\",\"serviceAccount\":\"$sa\",\"expirationSeconds\":$secs}" \
    "https://127.0.0.1:$port/_control/token") || return 1
  python3 -c 'import json, sys
d = json.load(sys.stdin)
if "token" not in d:
    sys.stderr.write(d.get("message", "no token") + "\n")
    sys.exit(1)
print(d["token"])' <<<"$out"
}

# kubeconfig for a ServiceAccount: same cluster and CA as the admin kubeconfig, the SA's token
cmd_kubeconfig_sa() {
  local ns=$1 sa=$2 file=${3:-$LOCAL/kubeconfig-$1-$2} tok port ca
  tok=$(sa_token "$ns" "$sa") || exit 1
  port=$(cat "$PORTF")
  ca=$(base64 -w0 <"$LOCAL/pki/ca.crt")
  (umask 077; printf '%s\n' "apiVersion: v1" "kind: Config" "clusters:" "- name: meshmetric-local" "  cluster:" \
    "    server: https://127.0.0.1:$port" "    certificate-authority-data: $ca" "users:" \
    "- name: system:serviceaccount:$ns:$sa" "  user:" "    token: $tok" "contexts:" \
    "- name: $sa@meshmetric-local" "  context:" "    cluster: meshmetric-local" \
    "    user: system:serviceaccount:$ns:$sa" "    namespace: $ns" "current-context: $sa@meshmetric-local" \
    "preferences: {}" >"$file.tmp")
  mv "$file.tmp" "$file"
  echo "export KUBECONFIG=$file"
}

cmd_status() {
  local pid
  if pid=$(running_pid) && answering; then
    say "test apiserver running (pid $pid, https://127.0.0.1:$(cat "$PORTF"), kubeconfig $KCFG)"
    return 0
  fi
  say "test apiserver not running"
  return 3
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  restart)
    shift
    if [ $# -eq 0 ] && [ -f "$ARGSF" ]; then eval "set -- $(cat "$ARGSF")"; fi
    cmd_down; cmd_up "$@" ;;
  env) echo "export KUBECONFIG=$KCFG" ;;
  token)
    [ $# -ge 3 ] || { say "usage: $0 token NAMESPACE SERVICEACCOUNT [SECONDS]"; exit 2; }
    sa_token "$2" "$3" "${4:-3600}" ;;
  kubeconfig-sa)
    [ $# -ge 3 ] || { say "usage: $0 kubeconfig-sa NAMESPACE SERVICEACCOUNT [FILE]"; exit 2; }
    cmd_kubeconfig_sa "$2" "$3" "${4:-}" ;;
  *) say "usage: $0 up|down|status|restart|env|token|kubeconfig-sa [--port N] [--http-port N] [--state DIR] [--service-map MAP] [--continue-ttl S] [--shutdown-delay S] [--shutdown-grace S]"; exit 2 ;;
esac
