#!/usr/bin/env bash
# End-to-end test of --manage-webhook-certs (src/operator/webhookcerts.c) against the local API
# server (tests/apiserver) with the real kubectl 1.32 and two real HTTPS webhook servers
# (`meshmetric-operator serve`), each fed by its own manager process (tests/operator/
# webhookcerts_run.c: "replica A" and "replica B"), running as the chart's ServiceAccount with the
# chart's RBAC. It shows:
#   - both managers start at once: one Secret (kubernetes.io/tls) with one certificate for
#     <svc>.<ns>.svc, no flapping; both stale caBundles replaced; the files appear in both
#     replicas and the servers load them without a restart;
#   - the API server trusts the result: the mutating webhook patches a pod, the validating
#     webhook (failurePolicy Fail) answers, curl --cacert <caBundle> verifies both replicas;
#   - serving rotations and a staged CA rotation (short validities) with no failed request
#     while a poller keeps calling both replicas directly and through the API server;
#   - a follower (--leader never) only mirrors the files;
#   - broken Secrets are repaired (bad key, wrong SANs, CA key gone), a deleted Secret is
#     recreated once, a restarted replica finds its files up to date.
#
# Usage: tests/e2e/webhookcerts_test.sh BUILD_DIR    (e.g. build-certs or build-certs-asan)
# Validities (seconds) can be changed with MM_WC_SERVING (40) and MM_WC_CA (100).
# Prints "N passed, M failed" last; exits non-zero on any failure.
set -u

BUILD=$(cd "${1:-build}" && pwd) || exit 2
BIN=$BUILD/meshmetric-operator
RUN=$BUILD/webhookcerts_run
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SERVING=${MM_WC_SERVING:-40}
CA_VALIDITY=${MM_WC_CA:-100}
PROPAGATION=3
OVERLAP=12

NS=meshmetric-system
SVC=meshmetric-operator
SECRET=meshmetric-operator-webhook-tls
WHC=meshmetric-operator
HOST=$SVC.$NS.svc

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   - $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $1"; [ $# -gt 1 ] && echo "       $2"; return 0; }
check() { if [ "$2" == "$3" ]; then ok "$1"; else bad "$1" "got [$2] want [$3]"; fi; }
contains() { case "$2" in *"$3"*) ok "$1" ;; *) bad "$1" "[$2] does not contain [$3]" ;; esac; }
wait_for() { # wait_for SECONDS COMMAND...: true once COMMAND succeeds
    local deadline=$((SECONDS + $1))
    shift
    while [ $SECONDS -lt $deadline ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.3; done
    return 1
}

for f in "$BIN" "$RUN"; do
    [ -x "$f" ] || { echo "missing $f"; echo "0 passed, 1 failed"; exit 1; }
done
KUBECTL=$(dirname "$(readlink -f "$(command -v kubectl 2>/dev/null || echo /nonexistent)")")/kubectl.1.32
[ -x "$KUBECTL" ] || KUBECTL=$(command -v kubectl 2>/dev/null || true)
[ -n "$KUBECTL" ] || { echo "no kubectl"; echo "0 passed, 1 failed"; exit 1; }

TMP=$(mktemp -d /tmp/mm-webhookcerts-e2e.XXXXXX)
export MM_LOCAL_DIR=$TMP/cluster
export HOME=$TMP/home
mkdir -p "$HOME" "$TMP/policies" "$TMP/a" "$TMP/b" "$TMP/c"
PIDS=()
POLLER=
cleanup() {
    [ -n "$POLLER" ] && kill "$POLLER" 2>/dev/null
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    "$ROOT/hack/cluster.sh" down >/dev/null 2>&1
    if [ "$FAIL" -gt 0 ]; then
        for f in "$TMP"/*.log; do
            echo "# last lines of $(basename "$f"):"
            tail -n 12 "$f" | cut -c1-400 | sed 's/^/#   /'
        done
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT_A=$(free_port)
PORT_B=$(free_port)
[ "$PORT_A" != "$PORT_B" ] || PORT_B=$(free_port)

# ---- the API server, the namespaces, the CRD, stale webhook configurations ----
"$ROOT/hack/cluster.sh" up --verbose --service-map "$NS/$SVC:443=127.0.0.1:$PORT_A" >/dev/null 2>"$TMP/cluster-up.log" ||
    { cat "$TMP/cluster-up.log"; echo "0 passed, 1 failed"; exit 1; }
ADMIN=$MM_LOCAL_DIR/kubeconfig
k() { "$KUBECTL" --kubeconfig "$ADMIN" "$@" </dev/null; }
kin() { "$KUBECTL" --kubeconfig "$ADMIN" "$@"; }

k create namespace "$NS" >/dev/null && k create namespace demo >/dev/null &&
    k apply -f "$ROOT/tests/apiserver/testdata/crd-meshmetrics.yaml" >/dev/null ||
    bad "cluster setup"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=stale-ca -days 2 \
    -keyout "$TMP/stale.key" -out "$TMP/stale.crt" 2>/dev/null
STALE=$(base64 -w0 <"$TMP/stale.crt")
sed "s|CA_BUNDLE|$STALE|" "$ROOT/manifests/webhook-configurations.yaml" | kin apply -f - >/dev/null ||
    bad "webhook configurations applied"

bundle_of() { # bundle_of mutating|validating: the decoded caBundle of webhooks[0]
    k get "${1}webhookconfiguration" "$WHC" -o jsonpath='{.webhooks[0].clientConfig.caBundle}' | base64 -d 2>/dev/null
}
check "the mutating caBundle starts stale" "$(bundle_of mutating)" "$(cat "$TMP/stale.crt")"

# ---- the chart's ServiceAccount and RBAC (rendered from the chart when helm-render is built) ----
k create serviceaccount "$SVC" -n "$NS" >/dev/null
HELM_RENDER=${MM_HELM_RENDER:-$ROOT/.local/chart-tools/helm-render}
if [ -x "$HELM_RENDER" ] &&
    "$HELM_RENDER" template meshmetric-operator "$ROOT/charts/meshmetric-operator" -n "$NS" \
        --set webhook.certificate.mode=operator -s templates/rbac.yaml >"$TMP/rbac.yaml" 2>/dev/null; then
    echo "# RBAC: rendered from charts/meshmetric-operator (webhook.certificate.mode=operator)"
else
    echo "# RBAC: the chart's operator-mode rules, copied (helm-render not built)"
    cat >"$TMP/rbac.yaml" <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: $SVC}
rules:
  - apiGroups: ["admissionregistration.k8s.io"]
    resources: ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"]
    resourceNames: ["$WHC"]
    verbs: ["get", "list", "watch", "update", "patch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: $SVC}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: $SVC}
subjects: [{kind: ServiceAccount, name: $SVC, namespace: $NS}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: $SVC, namespace: $NS}
rules:
  - apiGroups: [""]
    resources: ["secrets"]
    resourceNames: ["$SECRET"]
    verbs: ["get", "list", "watch", "update", "patch"]
  - apiGroups: [""]
    resources: ["secrets"]
    verbs: ["create"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: $SVC, namespace: $NS}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: $SVC}
subjects: [{kind: ServiceAccount, name: $SVC, namespace: $NS}]
EOF
fi
k apply -f "$TMP/rbac.yaml" >/dev/null || bad "RBAC applied"
SA_KC=$TMP/sa.kubeconfig
"$ROOT/hack/cluster.sh" kubeconfig-sa "$NS" "$SVC" "$SA_KC" >/dev/null || bad "ServiceAccount kubeconfig"
check "the ServiceAccount may not read other Secrets" \
    "$("$KUBECTL" --kubeconfig "$SA_KC" get secret other -n "$NS" </dev/null 2>&1 | grep -c Forbidden)" "1"

# ---- two replicas: a webhook server each, started before any certificate exists ----
cat >"$TMP/policies/meshmetric.yaml" <<'EOF'
apiVersion: kuma.io/v1alpha1
kind: MeshMetric
metadata:
  name: mesh-metrics
  namespace: kuma-system
  labels:
    kuma.io/mesh: default
spec:
  targetRef:
    kind: Mesh
  default:
    backends:
      - type: Prometheus
        prometheus:
          port: 5670
          path: /metrics
EOF
SERVE_EXTRA=()
# newer `serve` also listens on --metrics-addr (default :8080): two replicas on one host need it off
"$BIN" serve --help 2>/dev/null | grep -q -- --metrics-addr && SERVE_EXTRA=(--metrics-addr "")
serve() { # serve NAME PORT
    "$BIN" serve --policies-dir "$TMP/policies" --tls-cert-file "$TMP/$1/tls.crt" \
        --tls-key-file "$TMP/$1/tls.key" --webhook-addr "127.0.0.1:$2" --reload-interval-ms 200 \
        --log-format json "${SERVE_EXTRA[@]}" >"$TMP/serve-$1.log" 2>&1 &
    PIDS+=($!)
}
serve a "$PORT_A"
SERVE_A=${PIDS[-1]}
serve b "$PORT_B"
SERVE_B=${PIDS[-1]}
listening() { grep -q '"listening"' "$TMP/serve-a.log" && grep -q '"listening"' "$TMP/serve-b.log" &&
    kill -0 "$SERVE_A" && kill -0 "$SERVE_B"; }
if wait_for 20 listening; then ok "both webhook servers listen (no certificate yet)"; else bad "both webhook servers listen"; fi

manager() { # manager NAME [extra args]: a manager process writing $TMP/NAME/tls.{crt,key}
    local name=$1
    shift
    "$RUN" --kubeconfig "$SA_KC" --namespace "$NS" --cert-file "$TMP/$name/tls.crt" \
        --key-file "$TMP/$name/tls.key" --ca-validity "$CA_VALIDITY" --serving-validity "$SERVING" \
        --propagation "$PROPAGATION" --overlap "$OVERLAP" --resync-ms 2000 \
        --stats-file "$TMP/$name.stats" "$@" >"$TMP/$name.out" 2>>"$TMP/manager-$name.log" &
    PIDS+=($!)
}
stat_of() { # stat_of NAME FIELD
    python3 -c 'import json,sys
try: print(json.load(open(sys.argv[1]))[sys.argv[2]])
except Exception: print(0)' "$TMP/$1.stats" "$2"
}
sum_stat() { echo $(($(stat_of a "$1") + $(stat_of b "$1"))); } # sum_stat FIELD: replicas A and B
secret_key() { # secret_key KEY: the decoded value
    k get secret "$SECRET" -n "$NS" -o "jsonpath={.data.${1//./\\.}}" | base64 -d 2>/dev/null
}
secret_rv() { k get secret "$SECRET" -n "$NS" -o jsonpath='{.metadata.resourceVersion}'; }
files_match() { # files_match NAME: the replica's files hold the Secret's pair
    [ -s "$TMP/$1/tls.crt" ] && cmp -s "$TMP/$1/tls.crt" <(secret_key tls.crt) &&
        cmp -s "$TMP/$1/tls.key" <(secret_key tls.key)
}
both_match() { files_match a && files_match b; }
serial() { openssl x509 -noout -serial -in "$1" 2>/dev/null | cut -d= -f2; }
bundle_is() { # bundle_is PEMFILE: both caBundles hold exactly these certificates (in any order)
    local want got
    want=$(openssl crl2pkcs7 -nocrl -certfile "$1" 2>/dev/null | openssl pkcs7 -print_certs 2>/dev/null |
        grep -E '^(subject|issuer)' | sort | tr '\n' ' ')
    for kind in mutating validating; do
        bundle_of "$kind" >"$TMP/bundle.$kind.pem"
        got=$(openssl crl2pkcs7 -nocrl -certfile "$TMP/bundle.$kind.pem" 2>/dev/null |
            openssl pkcs7 -print_certs 2>/dev/null | grep -E '^(subject|issuer)' | sort | tr '\n' ' ')
        [ -n "$want" ] && [ "$got" == "$want" ] || return 1
    done
}
curl_replica() { # curl_replica PORT BUNDLEFILE: GET /healthz verified against the bundle and the Service name
    curl -sf --max-time 5 --cacert "$2" --resolve "$HOST:$1:127.0.0.1" "https://$HOST:$1/healthz"
}

cat >"$TMP/pod.json" <<'EOF'
{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"probe-","namespace":"demo","labels":{"app":"probe"}},
 "spec":{"containers":[{"name":"app","image":"nginx:1.25"},
  {"name":"kuma-sidecar","image":"docker.io/kumahq/kuma-dp:2.9.0","args":["run"],
   "env":[{"name":"KUMA_DATAPLANE_MESH","value":"default"}]}]}}
EOF
cat >"$TMP/mm-valid.yaml" <<'EOF'
apiVersion: kuma.io/v1alpha1
kind: MeshMetric
metadata: {name: probe, namespace: kuma-system, labels: {kuma.io/mesh: default}}
spec:
  targetRef: {kind: Mesh}
  default:
    backends: [{type: Prometheus, prometheus: {port: 5670, path: /metrics}}]
EOF
cat >"$TMP/mm-invalid.yaml" <<'EOF'
apiVersion: kuma.io/v1alpha1
kind: MeshMetric
metadata: {name: probe-bad, namespace: kuma-system, labels: {kuma.io/mesh: default}}
spec:
  targetRef: {kind: Mesh}
  default:
    backends: [{type: Prometheus, prometheus: {port: 70000, path: /metrics}}]
EOF
k create namespace kuma-system >/dev/null

# ---- 1. two managers at once ----
manager a
manager b
if wait_for 30 both_match; then ok "both replicas' files hold the Secret's pair"; else bad "both replicas' files hold the Secret's pair"; fi
# The stats files are rewritten once a second: wait for the creation to show up in them.
created() { [ "$(sum_stat creations)" -ge 1 ]; }
wait_for 5 created || true
check "one Secret created by the two managers" "$(sum_stat creations)" "1"
check "Secret type" "$(k get secret "$SECRET" -n "$NS" -o jsonpath='{.type}')" "kubernetes.io/tls"
secret_key ca.crt >"$TMP/ca1.crt"
secret_key tls.crt >"$TMP/leaf1.crt"
contains "serving certificate names the Service" \
    "$(openssl x509 -noout -ext subjectAltName -in "$TMP/leaf1.crt" 2>/dev/null | tr -d ' \n')" \
    "DNS:$SVC,DNS:$SVC.$NS,DNS:$HOST,DNS:$HOST.cluster.local"
contains "serving key is ECDSA P-256" "$(openssl x509 -noout -text -in "$TMP/leaf1.crt" | grep -m1 'NIST CURVE')" "P-256"
check "ca.crt verifies tls.crt for $HOST" \
    "$(openssl verify -CAfile "$TMP/ca1.crt" -verify_hostname "$HOST" "$TMP/leaf1.crt" 2>&1)" "$TMP/leaf1.crt: OK"
if wait_for 10 bundle_is "$TMP/ca1.crt"; then ok "both stale caBundles replaced by the CA"; else bad "both stale caBundles replaced by the CA"; fi
check "key file mode" "$(stat -c %a "$TMP/a/tls.key")" "600"
RV1=$(secret_rv)
MRV1=$(k get mutatingwebhookconfiguration "$WHC" -o jsonpath='{.metadata.resourceVersion}')
sleep 5
check "no flapping: the Secret is unchanged 5 s later" "$(secret_rv)" "$RV1"
check "no write loop: the caBundle is not rewritten" \
    "$(k get mutatingwebhookconfiguration "$WHC" -o jsonpath='{.metadata.resourceVersion}')" "$MRV1"
check "both managers see one certificate" "$(serial "$TMP/a/tls.crt")" "$(serial "$TMP/b/tls.crt")"

# the servers loaded the files without a restart, and the API server trusts them
bundle_of mutating >"$TMP/bundle.pem"
if wait_for 10 curl_replica "$PORT_A" "$TMP/bundle.pem"; then ok "replica A verified with the caBundle"; else bad "replica A verified with the caBundle"; fi
if wait_for 10 curl_replica "$PORT_B" "$TMP/bundle.pem"; then ok "replica B verified with the caBundle"; else bad "replica B verified with the caBundle"; fi
contains "server A reloaded the certificate (no restart)" "$(cat "$TMP/serve-a.log")" "serving certificate loaded"
out=$(k create -f "$TMP/pod.json" -o jsonpath='{.metadata.annotations.meshmetric\.kuma\.io/config}' 2>"$TMP/pod.err")
check "the mutating webhook patched a pod through the API server" "$out" "prometheus:5670/metrics"
out=$(k create --dry-run=server -f "$TMP/mm-valid.yaml" 2>&1)
contains "the validating webhook (failurePolicy Fail) admits a MeshMetric" "$out" "created (server dry run)"
out=$(k create --dry-run=server -f "$TMP/mm-invalid.yaml" 2>&1)
contains "the validating webhook denies a bad one (Kuma's message)" "$out" "port must be a valid (1-65535)"

# ---- a follower only mirrors the files ----
manager c --leader never
if wait_for 15 files_match c; then ok "follower wrote the Secret's pair"; else bad "follower wrote the Secret's pair"; fi

# ---- 2. rotations under load: serving rotations and a staged CA rotation ----
poller() { # until $TMP/stop-poll exists: both replicas and both webhooks, with the live caBundle
    local n=0
    while [ ! -e "$TMP/stop-poll" ]; do
        n=$((n + 1))
        bundle_of mutating >"$TMP/poll-bundle.pem"
        curl_replica "$PORT_A" "$TMP/poll-bundle.pem" >/dev/null || echo "$(date +%T.%N) curl A failed" >>"$TMP/poll-failures"
        curl_replica "$PORT_B" "$TMP/poll-bundle.pem" >/dev/null || echo "$(date +%T.%N) curl B failed" >>"$TMP/poll-failures"
        out=$(k create --dry-run=server -f "$TMP/pod.json" -o jsonpath='{.metadata.annotations.meshmetric\.kuma\.io/config}' 2>"$TMP/poll-pod.err")
        [ "$out" == "prometheus:5670/metrics" ] || echo "$(date +%T.%N) pod: $out $(cat "$TMP/poll-pod.err")" >>"$TMP/poll-failures"
        out=$(k create --dry-run=server -f "$TMP/mm-valid.yaml" 2>&1)
        case "$out" in *"created (server dry run)"*) ;; *) echo "$(date +%T.%N) meshmetric: $out" >>"$TMP/poll-failures" ;; esac
        echo "$n" >"$TMP/poll-count"
    done
}
start_poller() { rm -f "$TMP/stop-poll" "$TMP/poll-failures" "$TMP/poll-count"; poller & POLLER=$!; }
stop_poller() { touch "$TMP/stop-poll"; wait "$POLLER" 2>/dev/null; POLLER=; }
poll_report() { # poll_report WHAT
    local n failures
    n=$(cat "$TMP/poll-count" 2>/dev/null || echo 0)
    failures=$(wc -l <"$TMP/poll-failures" 2>/dev/null || echo 0)
    if [ "$failures" -eq 0 ] && [ "$n" -ge "${2:-5}" ]; then
        ok "$1: $n rounds of curl A, curl B, pod and MeshMetric dry runs, none failed"
    else
        bad "$1: $failures failures in $n rounds" "$(head -n 5 "$TMP/poll-failures" 2>/dev/null)"
    fi
}
ca_rotated() { [ "$(sum_stat ca_rotations)" -ge 1 ]; }
previous_dropped() { [ "$(sum_stat previous_dropped)" -ge 1 ]; }
start_poller
SERIAL1=$(serial "$TMP/a/tls.crt")
serving_rotated() { [ "$(sum_stat rotations)" -ge 1 ] && both_match && [ "$(serial "$TMP/a/tls.crt")" != "$SERIAL1" ]; }
if wait_for $((SERVING + 20)) serving_rotated; then ok "serving certificate rotated before expiry, files followed"; else bad "serving certificate rotated before expiry"; fi
check "same CA after a serving rotation" "$(secret_key ca.crt)" "$(cat "$TMP/ca1.crt")"
if wait_for $((CA_VALIDITY + 20)) ca_rotated; then ok "CA rotation started"; else bad "CA rotation started"; fi
secret_key ca.crt >"$TMP/ca2.crt"
check "the retired CA stays as ca-previous.crt" "$(secret_key ca-previous.crt)" "$(cat "$TMP/ca1.crt")"
cat "$TMP/ca1.crt" "$TMP/ca2.crt" >"$TMP/ca12.crt"
if wait_for 10 bundle_is "$TMP/ca12.crt"; then ok "both caBundles trust the old and the new CA"; else bad "both caBundles trust the old and the new CA"; fi
switched() { secret_key tls.crt >"$TMP/leaf.now" && openssl verify -CAfile "$TMP/ca2.crt" "$TMP/leaf.now" >/dev/null 2>&1 && both_match; }
if wait_for $((PROPAGATION + 15)) switched; then ok "serving certificate moved to the new CA after the caBundles trusted it"; else bad "serving certificate moved to the new CA"; fi
if wait_for $((OVERLAP + 20)) previous_dropped; then ok "the old CA is dropped after the overlap"; else bad "the old CA is dropped after the overlap"; fi
if wait_for 10 bundle_is "$TMP/ca2.crt"; then ok "caBundles trust only the new CA"; else bad "caBundles trust only the new CA"; fi
sleep 2
stop_poller
poll_report "rotations without a failed request" 10
check "server A was never restarted" "$(kill -0 "$SERVE_A" 2>/dev/null && echo up)" "up"
n=$(grep -c '"serving certificate reloaded"' "$TMP/serve-b.log")
if [ "$n" -ge 2 ]; then ok "server B reloaded $n times"; else bad "server B reloaded at least twice" "$n"; fi
check "the follower wrote nothing to the API" "$(stat_of c creations)$(stat_of c rotations)$(stat_of c bundle_updates)" "000"
if wait_for 10 files_match c; then ok "the follower followed every rotation"; else bad "the follower followed every rotation"; fi

# ---- 3. broken Secrets are repaired ----
start_poller
CA_NOW=$(secret_key ca.crt)
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TMP/other.key" 2>/dev/null
REPAIRS=$(sum_stat repairs)
k patch secret "$SECRET" -n "$NS" --type=merge -p "{\"data\":{\"tls.key\":\"$(base64 -w0 <"$TMP/other.key")\"}}" >/dev/null
repaired() { [ "$(sum_stat repairs)" -gt "$1" ] && both_match && [ -n "$(secret_key tls.key)" ] &&
    openssl x509 -noout -pubkey -in <(secret_key tls.crt) | cmp -s - <(secret_key tls.key | openssl pkey -pubout 2>/dev/null); }
if wait_for 15 repaired "$REPAIRS"; then ok "a key that does not match is repaired"; else bad "a key that does not match is repaired"; fi
check "the CA is kept when only the serving pair is broken" "$(secret_key ca.crt)" "$CA_NOW"
contains "the repair says why" "$(cat "$TMP"/manager-[ab].log)" "does not match the certificate"
if cmp -s "$TMP/a/tls.key" "$TMP/other.key" || cmp -s "$TMP/b/tls.key" "$TMP/other.key"; then
    bad "the broken key never reached the files"
else ok "the broken key never reached the files"; fi

# a certificate for another Service, signed by our own CA
secret_key ca.key >"$TMP/ca.key"
secret_key ca.crt >"$TMP/ca.crt"
openssl req -new -key "$TMP/other.key" -subj /CN=other -out "$TMP/other.csr" 2>/dev/null
printf 'subjectAltName=DNS:other.%s.svc\n' "$NS" >"$TMP/other.ext"
openssl x509 -req -in "$TMP/other.csr" -CA "$TMP/ca.crt" -CAkey "$TMP/ca.key" -CAcreateserial -days 1 \
    -extfile "$TMP/other.ext" -out "$TMP/other.crt" 2>/dev/null
REPAIRS=$(sum_stat repairs)
k patch secret "$SECRET" -n "$NS" --type=merge -p "{\"data\":{\"tls.crt\":\"$(base64 -w0 <"$TMP/other.crt")\",\"tls.key\":\"$(base64 -w0 <"$TMP/other.key")\"}}" >/dev/null
if wait_for 15 repaired "$REPAIRS"; then ok "a certificate for the wrong Service is repaired"; else bad "a certificate for the wrong Service is repaired"; fi
contains "the repair names the SANs" "$(cat "$TMP"/manager-[ab].log)" "DNS:other.$NS.svc"
if cmp -s "$TMP/a/tls.crt" "$TMP/other.crt"; then bad "the wrong certificate never reached the files"; else ok "the wrong certificate never reached the files"; fi
stop_poller
poll_report "serving repairs without a failed request" 3

# the CA key is gone: everything is regenerated and the caBundles follow
REPAIRS=$(sum_stat repairs)
k patch secret "$SECRET" -n "$NS" --type=json -p '[{"op":"remove","path":"/data/ca.key"}]' >/dev/null
ca_repaired() { [ "$(sum_stat repairs)" -gt "$REPAIRS" ] && secret_key ca.key | grep -q PRIVATE && both_match &&
    secret_key ca.crt >"$TMP/ca3.crt" && [ "$(cat "$TMP/ca3.crt")" != "$CA_NOW" ] && bundle_is "$TMP/ca3.crt"; }
if wait_for 15 ca_repaired; then ok "a Secret without ca.key gets a new CA, trusted by both caBundles"; else bad "a Secret without ca.key is repaired"; fi
trusted_again() { bundle_of mutating >"$TMP/b.pem" && curl_replica "$PORT_A" "$TMP/b.pem" && curl_replica "$PORT_B" "$TMP/b.pem" &&
    k create --dry-run=server -f "$TMP/mm-valid.yaml"; }
if wait_for 10 trusted_again; then ok "trusted again after the CA repair"; else bad "trusted again after the CA repair"; fi

# ---- 4. a deleted Secret is recreated once ----
CREATIONS=$(sum_stat creations)
k delete secret "$SECRET" -n "$NS" >/dev/null
recreated() { [ "$(sum_stat creations)" -gt "$CREATIONS" ] && both_match && secret_key ca.crt >"$TMP/ca4.crt" && bundle_is "$TMP/ca4.crt"; }
if wait_for 15 recreated; then ok "a deleted Secret is recreated and trusted"; else bad "a deleted Secret is recreated"; fi
sleep 3
check "recreated once by the two managers" "$(sum_stat creations)" "$((CREATIONS + 1))"
if wait_for 10 trusted_again; then ok "trusted again after the re-creation"; else bad "trusted again after the re-creation"; fi

# ---- 5. a restarted replica finds its files up to date; clean exits ----
kill -TERM "${PIDS[2]}" 2>/dev/null # manager a
wait "${PIDS[2]}"
check "manager A exits 0 on SIGTERM" "$?" "0"
RV=$(secret_rv)
manager a
if wait_for 15 grep -q '"ready":true' "$TMP/a.stats"; then ok "restarted manager A is ready"; else bad "restarted manager A is ready"; fi
check "restarted manager A rewrote nothing" "$(stat_of a file_writes)" "0"
check "restarting a replica does not touch the Secret" "$(secret_rv)" "$RV"
check "no manager counted an error it could not recover from" \
    "$(grep -h '"level":"error"' "$TMP"/manager-*.log | head -n 3)" ""
for i in "${!PIDS[@]}"; do
    p=${PIDS[$i]}
    kill -0 "$p" 2>/dev/null || continue
    kill -TERM "$p"
    wait "$p"
    rc=$?
    [ "$rc" -eq 0 ] || bad "process $i ($p) exited $rc"
done
PIDS=()
ok "every process exited cleanly"

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
