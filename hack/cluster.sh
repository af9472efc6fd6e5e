#!/usr/bin/env bash
# hack/cluster.sh - start/stop the local test Kubernetes API server (tests/apiserver/server.py).
#
# Usage:
#   hack/cluster.sh up [--port N] [--http-port N] [--state DIR] [--service-map MAP] [--verbose]
#   hack/cluster.sh down
#   hack/cluster.sh status
#   hack/cluster.sh restart [options as for up]   # down + up; same port, same CA, same token
#   hack/cluster.sh env                           # print the export line again
#
#   --port N          HTTPS port on 127.0.0.1 (default: the previous port if free, else a free one)
#   --http-port N     also serve plain HTTP on this port (default: off)
#   --state DIR       keep objects across restarts in DIR/state.json (default: state is lost)
#   --service-map MAP webhook Services -> loopback, "ns/name:port=127.0.0.1:PORT,..." (port part
#                     of the key optional); also settable later with POST /_control/service-map
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
  local port="" http_port="" state="" svcmap="" verbose=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --port) port=$2; shift 2 ;;
      --http-port) http_port=$2; shift 2 ;;
      --state) state=$2; shift 2 ;;
      --service-map) svcmap=$2; shift 2 ;;
      --verbose|-v) verbose=1; shift ;;
      *) say "unknown option: $1"; exit 2 ;;
    esac
  done
  local saved=()
  [ -n "$port" ] && saved+=(--port "$port")
  [ -n "$http_port" ] && saved+=(--http-port "$http_port")
  [ -n "$state" ] && saved+=(--state "$state")
  [ -n "$svcmap" ] && saved+=(--service-map "$svcmap")
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
  local pid
  if pid=$(running_pid); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    say "test apiserver stopped (pid $pid)"
  else
    say "test apiserver not running"
  fi
  rm -f "$PIDF"
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
  *) say "usage: $0 up|down|status|restart|env [--port N] [--http-port N] [--state DIR] [--service-map MAP]"; exit 2 ;;
esac
