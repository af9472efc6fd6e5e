#!/usr/bin/env bash
# End-to-end test of the Kubernetes API client (src/k8s), the reflector and the
# Lease leader elector (src/operator/leader.c) against the local API server
# (tests/apiserver/), over real HTTPS with the kubeconfig it writes (CA data +
# bearer token). The checks themselves are in tests/k8s/k8s_e2e.c; this script
# starts its own server instance, derives the kubeconfig variants (a wrong CA,
# tls-server-name right and wrong, a wrong token) and runs each group:
#   client     get/list paging/create/update 409/patch json+merge/status/delete,
#              discovery, 429 + Retry-After for reads and writes
#   tls        wrong CA, tls-server-name, wrong token, client certificate (and a key that
#              does not match it): clear errors, no crash; in-cluster configuration
#   watch      events, bookmarks, timeoutSeconds, ERROR 410, cancellation
#   leader     one leader of two, release on stop, takeover after the lease
#              expires, a race of four and an injected 409, renew deadline
#   reflector  watch timeouts, killed watches, forced 410s, compaction, 500s
#              with backoff, 429 Retry-After, resync, 2000 objects, restarts
#              with state kept and lost
#
# Usage: tests/e2e/k8s_test.sh BUILD_DIR [group...]
# Prints "N passed, M failed" last; exits non-zero on any failure.
set -u

BUILD=$(cd "${1:-build}" && pwd) || exit 2
shift || true
GROUPS_TO_RUN=("$@")
[ ${#GROUPS_TO_RUN[@]} -eq 0 ] && GROUPS_TO_RUN=(client tls watch leader reflector)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=$BUILD/k8s_e2e

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   - $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $1"; [ $# -gt 1 ] && echo "       $2"; return 0; }

if [ ! -x "$BIN" ]; then
    echo "missing $BIN (build the k8s_e2e target)"
    echo "0 passed, 1 failed"
    exit 1
fi

WORK=$(mktemp -d /tmp/mm-k8s-e2e.XXXXXX)
export MM_LOCAL_DIR=$WORK/local
export PYTHONDONTWRITEBYTECODE=1
cleanup() {
    "$ROOT/hack/cluster.sh" down >/dev/null 2>&1
    if [ "$FAIL" -gt 0 ] && [ -f "$MM_LOCAL_DIR/apiserver.log" ]; then
        echo "# last API server log lines:"
        tail -n 20 "$MM_LOCAL_DIR/apiserver.log" | sed 's/^/#   /'
    fi
    if [ "${KEEP_WORK:-}" = 1 ]; then echo "# work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

if ! "$ROOT/hack/cluster.sh" up >"$WORK/up.out" 2>"$WORK/up.err"; then
    bad "start the local API server" "$(tail -n 5 "$WORK/up.err")"
    echo "$PASS passed, $FAIL failed"
    exit 1
fi
ok "local API server up on port $(cat "$MM_LOCAL_DIR/apiserver.port")"
KCFG=$MM_LOCAL_DIR/kubeconfig

# kubeconfig variants: a CA that did not sign the server certificate, tls-server-name right
# (localhost is a SAN of the server certificate) and wrong, a wrong token.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj "/CN=not-the-apiserver-ca" -keyout "$WORK/other-ca.key" -out "$WORK/other-ca.crt" \
    >/dev/null 2>&1 || bad "openssl: make another CA"
# a client certificate signed by the server's CA, and the same certificate with a key that is not its
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/O=system:masters/CN=e2e-admin" \
    -keyout "$WORK/client.key" -out "$WORK/client.csr" >/dev/null 2>&1 &&
openssl x509 -req -in "$WORK/client.csr" -CA "$MM_LOCAL_DIR/pki/ca.crt" -CAkey "$MM_LOCAL_DIR/pki/ca.key" \
    -CAcreateserial -days 1 -out "$WORK/client.crt" >/dev/null 2>&1 || bad "openssl: make a client certificate"
python3 - "$KCFG" "$WORK" <<'EOF'
import base64, sys
src, work = sys.argv[1], sys.argv[2]
text = open(src).read()
other = base64.b64encode(open(work + "/other-ca.crt", "rb").read()).decode()
def variant(name, fn):
    lines = [fn(l) for l in text.splitlines()]
    open("%s/%s" % (work, name), "w").write("\n".join(l for l in lines if l is not None) + "\n")
variant("bad-ca.kubeconfig", lambda l: "    certificate-authority-data: " + other
        if l.strip().startswith("certificate-authority-data:") else l)
def sni(value):
    return lambda l: l + "\n    tls-server-name: " + value if l.strip().startswith("server:") else l
variant("sni-ok.kubeconfig", sni("localhost"))
variant("sni-bad.kubeconfig", sni("other.example"))
variant("bad-token.kubeconfig", lambda l: "    token: not-the-token" if l.strip().startswith("token:") else l)
b64 = lambda f: base64.b64encode(open(work + "/" + f, "rb").read()).decode()
def cert(keyfile):
    return lambda l: (l + "\n    client-certificate-data: " + b64("client.crt") +
                      "\n    client-key-data: " + b64(keyfile)) if l.strip().startswith("token:") else l
variant("cert.kubeconfig", cert("client.key"))
variant("bad-key.kubeconfig", cert("other-ca.key"))
EOF
export MM_KUBECONFIG=$KCFG
export MM_BAD_CA_KUBECONFIG=$WORK/bad-ca.kubeconfig
export MM_SNI_OK_KUBECONFIG=$WORK/sni-ok.kubeconfig
export MM_SNI_BAD_KUBECONFIG=$WORK/sni-bad.kubeconfig
export MM_BAD_TOKEN_KUBECONFIG=$WORK/bad-token.kubeconfig
export MM_CERT_KUBECONFIG=$WORK/cert.kubeconfig
export MM_BAD_KEY_KUBECONFIG=$WORK/bad-key.kubeconfig
# in-cluster: the service-account files of a pod, pointing at the local server
export MM_INCLUSTER_HOST=127.0.0.1
export MM_INCLUSTER_PORT=$(cat "$MM_LOCAL_DIR/apiserver.port")
export MM_INCLUSTER_TOKEN=$MM_LOCAL_DIR/token
export MM_INCLUSTER_CA=$MM_LOCAL_DIR/pki/ca.crt

# Secrets never reach the logs: the token must not appear in anything the program prints.
TOKEN=$(cat "$MM_LOCAL_DIR/token")

for group in "${GROUPS_TO_RUN[@]}"; do
    echo "# group $group"
    start=$SECONDS
    "$BIN" "$group" >"$WORK/$group.out" 2>"$WORK/$group.err"
    rc=$?
    grep -E '^(ok  |FAIL) - ' "$WORK/$group.out"
    n_ok=$(grep -c '^ok   - ' "$WORK/$group.out")
    n_bad=$(grep -c '^FAIL - ' "$WORK/$group.out")
    PASS=$((PASS + n_ok))
    FAIL=$((FAIL + n_bad))
    if [ $rc -ne 0 ] && [ "$n_bad" -eq 0 ]; then
        bad "$group: k8s_e2e exited with status $rc" "$(tail -n 15 "$WORK/$group.err")"
    elif [ $rc -ne 0 ]; then
        echo "# $group stderr (last lines):"
        tail -n 15 "$WORK/$group.err" | sed 's/^/#   /'
    fi
    if grep -qF -- "$TOKEN" "$WORK/$group.out" "$WORK/$group.err"; then
        bad "$group: the bearer token appeared in the output or logs"
    else
        ok "$group: the bearer token never appears in the output or logs ($((SECONDS - start)) s)"
    fi
done

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
