#!/usr/bin/env bash
# The install path, checked: the Helm chart (charts/meshmetric-operator), manifests/, crds/, the
# image recipe, and the chart applied to the local API server with the real kubectl.
#
# Static part (always):
#   - hack/helm-render (Helm's engine: text/template + sprig + sigs.k8s.io/yaml): go vet, go test;
#     with a real helm on PATH, helm lint and helm template give the same output;
#   - every value set in tests/chart/values/: rendered twice with identical output (GitOps),
#     `helm-render lint` (strict: a reference to a missing value fails), every object validated
#     against the Kubernetes OpenAPI schemas strictly (tests/chart/validate.mjs), the values
#     against values.schema.json, and the issue's invariants + RBAC (tests/chart/check_render.py);
#   - every value set in tests/chart/values-invalid/ fails with its expected message;
#   - manifests/install.yaml, manifests/webhook-configurations.yaml, crds/ and the chart README's
#     values table are current (hack/chart-generate.sh --check);
#   - the CRDs carry Kuma 2.14.3's schema unchanged; the examples validate against them;
#   - the Dockerfile copies exactly the libraries `ldd` lists (hack/image.sh --check-libs);
#   - `kubectl apply --dry-run=server` of every value set's objects, then a real apply of
#     crds/ + manifests/install.yaml, and the ServiceAccount's RBAC asked of the server's
#     authorizer (SubjectAccessReview) when it has one.
# Live part (live_test, only when `meshmetric-operator serve --help` lists --kubeconfig): the
#   binary run as the Deployment runs it (its args and env, the ServiceAccount's token when the
#   server mints them), then a pod is patched and a MeshMetric gets status.
#
# Usage: tests/e2e/chart_test.sh [BUILD_DIR]    (hack/test.sh passes its build directory)
# Prints "N passed, N failed, N skipped" last; exits non-zero on any failure.
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" 2>/dev/null && pwd) || BUILD=${1:-$ROOT/build}
BIN=$BUILD/meshmetric-operator
CHART=$ROOT/charts/meshmetric-operator
NS=meshmetric-system
RELEASE=meshmetric-operator
cd "$ROOT" || exit 2

PASS=0
FAIL=0
SKIP=0
ok() { PASS=$((PASS + 1)); echo "ok   - $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $1"; [ $# -gt 1 ] && [ -n "$2" ] && printf '%s\n' "$2" | head -n 40 | sed 's/^/       /'; return 0; }
skip() { SKIP=$((SKIP + 1)); echo "skip - $1: $2"; }
# run NAME CMD...: ok when CMD exits 0; its output is shown when it fails
run() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$name"; else bad "$name" "$out"; fi
}
summary() {
  echo "$PASS passed, $FAIL failed, $SKIP skipped"
  [ "$FAIL" -eq 0 ]
  exit $?
}

TMP=$(mktemp -d)
OPERATOR_PID=
CLUSTER_UP=0
cleanup() {
  if [ -n "$OPERATOR_PID" ]; then kill "$OPERATOR_PID" 2>/dev/null; wait "$OPERATOR_PID" 2>/dev/null; fi
  [ $CLUSTER_UP -eq 1 ] && MM_LOCAL_DIR=$TMP/cluster "$ROOT/hack/cluster.sh" down >/dev/null 2>&1
  rm -rf "$TMP"
}
trap cleanup EXIT

# ---- tools --------------------------------------------------------------------------------------
echo "# tools"
# shellcheck source=hack/chart-tools.sh
if ! out=$(. "$ROOT/hack/chart-tools.sh" && chart_tools_setup && chart_tools_node 2>&1); then
  bad "chart tools (helm-render, npm ci in tests/chart)" "$out"
  summary
fi
. "$ROOT/hack/chart-tools.sh"
chart_tools_setup >/dev/null 2>&1
H=$HELM_RENDER
GOPATH_DEB=$(chart_tools_gopath)
ok "chart tools ready ($H)"

gotest() {
  cd "$ROOT/hack/helm-render" &&
    GO111MODULE=off GOPATH=$GOPATH_DEB GOCACHE=$MM_CHART_TOOLS/gocache GOFLAGS= go vet . &&
    GO111MODULE=off GOPATH=$GOPATH_DEB GOCACHE=$MM_CHART_TOOLS/gocache GOFLAGS= go test -count=1 . &&
    test -z "$(gofmt -l .)"
}
run "helm-render: go vet, go test (Helm's rendering rules), gofmt" gotest

# ---- value sets ----------------------------------------------------------------------------------
echo "# value sets"
render_args() { sed -n 's/^# args: //p' "$1"; }
VALIDATE_FILES=()
for vf in tests/chart/values/*.yaml; do
  set_name=$(basename "$vf" .yaml)
  # shellcheck disable=SC2046
  extra=($(render_args "$vf"))
  r=("$H" template "$RELEASE" "$CHART" --namespace "$NS" -f "$vf" "${extra[@]}")
  if ! "${r[@]}" --include-crds >"$TMP/$set_name.1.yaml" 2>"$TMP/$set_name.err"; then
    bad "$set_name: renders" "$(cat "$TMP/$set_name.err")"
    continue
  fi
  "${r[@]}" --include-crds >"$TMP/$set_name.2.yaml" 2>/dev/null
  if cmp -s "$TMP/$set_name.1.yaml" "$TMP/$set_name.2.yaml"; then
    ok "$set_name: renders, twice identically ($(grep -c '^kind:' "$TMP/$set_name.1.yaml") objects)"
  else
    bad "$set_name: two renders differ (Argo CD/Flux would see drift)" "$(diff "$TMP/$set_name.1.yaml" "$TMP/$set_name.2.yaml" | head -20)"
  fi
  run "$set_name: helm-render lint (strict)" "$H" lint "$CHART" -f "$vf" "${extra[@]}"
  "${r[@]}" -o json >"$TMP/$set_name.json"
  "${r[@]}" --include-crds -o json >"$TMP/$set_name.crds.json"
  VALIDATE_FILES+=("$TMP/$set_name.crds.json")
  "$H" values "$CHART" -f "$vf" >"$TMP/$set_name.values.json"
  if out=$(python3 tests/chart/check_render.py "$TMP/$set_name.json" "$TMP/$set_name.values.json" "$NS" "$RELEASE" 2>&1); then
    ok "$set_name: $(grep -c '^ok' <<<"$out") invariants (security, probes, webhooks, certificate mode, RBAC, monitoring)"
  else
    bad "$set_name: invariants" "$(grep -v '^ok' <<<"$out")"
  fi
  notes=$("${r[@]}" --notes 2>&1 | sed -n '/^NOTES:/,$p')
  case "$notes" in
    *"kubectl get meshmetrics -A"*"kubectl describe meshmetric"*) ok "$set_name: NOTES.txt gives the next steps" ;;
    *) bad "$set_name: NOTES.txt" "$notes" ;;
  esac
done
if out=$(node tests/chart/validate.mjs "${VALIDATE_FILES[@]}" 2>&1); then
  ok "every object of every value set valid against the Kubernetes OpenAPI schemas, unknown fields rejected ($(tail -1 <<<"$out"))"
else
  bad "Kubernetes OpenAPI schema validation" "$out"
fi

echo "# invalid values"
for vf in tests/chart/values-invalid/*.yaml; do
  want=$(sed -n 's/^# expect: //p' "$vf")
  if out=$("$H" template "$RELEASE" "$CHART" --namespace "$NS" -f "$vf" 2>&1); then
    bad "$(basename "$vf" .yaml): rendered, but must fail with: $want"
  elif grep -qF -- "$want" <<<"$out"; then
    ok "$(basename "$vf" .yaml): rejected ($want)"
  else
    bad "$(basename "$vf" .yaml): failed with another message than: $want" "$out"
  fi
done

echo "# the checkers catch what they are for"
python3 - "$TMP/default.crds.json" "$TMP/default.json" "$TMP" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
for e in d:
    o = e["object"]
    if o["kind"] == "Deployment":
        c = o["spec"]["template"]["spec"]["containers"][0]
        c["livenessProbes"] = c.pop("livenessProbe")      # a typo kubectl --validate=strict rejects
        o["spec"]["replicas"] = "2"                       # a wrong type
json.dump(d, open(sys.argv[3] + "/mutated.crds.json", "w"))
d = json.load(open(sys.argv[2]))
for e in d:
    o = e["object"]
    if o["kind"] == "Deployment":
        o["spec"]["template"]["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    if o["kind"] == "ClusterRole":
        o["rules"].append({"apiGroups": [""], "resources": ["pods"], "verbs": ["patch"]})
json.dump(d, open(sys.argv[3] + "/mutated.json", "w"))
EOF
out=$(node tests/chart/validate.mjs "$TMP/mutated.crds.json" 2>&1)
if grep -q 'unknown field "spec.template.spec.containers\[0\].livenessProbes"' <<<"$out" && grep -q "/spec/replicas must be integer" <<<"$out"; then
  ok "validate.mjs reports an unknown field and a wrong type"
else
  bad "validate.mjs missed a planted error" "$out"
fi
out=$(python3 tests/chart/check_render.py "$TMP/mutated.json" "$TMP/default.values.json" "$NS" "$RELEASE" 2>&1)
if grep -q "FAIL - no privilege escalation" <<<"$out" && grep -q "FAIL - RBAC denies" <<<"$out"; then
  ok "check_render.py reports privilege escalation and a pods patch right"
else
  bad "check_render.py missed a planted error" "$(grep FAIL <<<"$out")"
fi

# ---- a real helm, when there is one -----------------------------------------------------------------
if command -v helm >/dev/null 2>&1; then
  run "helm lint" helm lint "$CHART" --strict
  for vf in tests/chart/values/*.yaml; do
    set_name=$(basename "$vf" .yaml)
    # shellcheck disable=SC2046
    extra=($(render_args "$vf"))
    if helm template "$RELEASE" "$CHART" --namespace "$NS" --include-crds --kube-version 1.32.0 -f "$vf" "${extra[@]}" >"$TMP/$set_name.helm.yaml" 2>"$TMP/helm.err" &&
       diff -u "$TMP/$set_name.helm.yaml" "$TMP/$set_name.1.yaml" >"$TMP/helm.diff"; then
      ok "$set_name: helm template and helm-render give the same output"
    else
      bad "$set_name: helm template differs from helm-render" "$(cat "$TMP/helm.err" "$TMP/helm.diff")"
    fi
  done
else
  skip "helm lint, helm template == helm-render" "no helm on PATH (Debian has none)"
fi

# ---- generated files, CRDs, templates ----------------------------------------------------------------
echo "# generated files and CRDs"
run "manifests/install.yaml, manifests/webhook-configurations.yaml, crds/ and the values table are current" \
  "$ROOT/hack/chart-generate.sh" --check
"$H" yaml2json "$CHART"/crds/*.yaml >"$TMP/crds.json"
# Digests of the canonical JSON of Kuma's openAPIV3Schema, kumahq/kuma v2.14.3,
# deployments/charts/kuma/crds/kuma.io_{meshmetrics,meshes}.yaml (computed from those files).
if out=$(python3 - "$TMP/crds.json" <<'EOF'
import hashlib, json, sys
want = {"meshmetrics.kuma.io": "83fc20290e749c686cf6552c0dfd7a0e7a989baf4c0918a9cb7ea8736f434d0a",
        "meshes.kuma.io": "ae0d11e4bada254f0243ab4d02f5d197bd3f864ed56c3d7ff7669d6945256efd"}
crds = {e["object"]["metadata"]["name"]: e["object"] for e in json.load(open(sys.argv[1]))}
bad = []
for name, digest in want.items():
    v = crds[name]["spec"]["versions"]
    got = hashlib.sha256(json.dumps(v[0]["schema"]["openAPIV3Schema"], sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    if len(v) != 1 or got != digest:
        bad.append(f"{name}: schema digest {got}, Kuma 2.14.3's is {digest}")
mm = crds["meshmetrics.kuma.io"]
v = mm["spec"]["versions"][0]
if v.get("subresources") != {"status": {}}:
    bad.append("meshmetrics.kuma.io: no status subresource")
cols = [c["name"] for c in v.get("additionalPrinterColumns", []) if not c.get("priority")]
if cols != ["TargetRef", "Ready", "In Sync", "Age"]:
    bad.append(f"meshmetrics.kuma.io: default printer columns {cols}")
if mm["spec"]["names"].get("shortNames") != ["mm"] or mm["spec"]["scope"] != "Namespaced":
    bad.append("meshmetrics.kuma.io: names or scope differ from Kuma's")
print("\n".join(bad))
sys.exit(1 if bad else 0)
EOF
); then
  ok "CRDs: Kuma 2.14.3's schemas unchanged, plus the status subresource and TargetRef/Ready/In Sync/Age columns"
else
  bad "CRDs" "$out"
fi
"$H" yaml2json examples/policies.yaml >"$TMP/examples.json"
run "examples/policies.yaml validates against the chart's CRD schemas" node tests/chart/validate.mjs --crd "$TMP/crds.json" "$TMP/examples.json"
"$H" yaml2json examples/invalid-meshmetric.yaml >"$TMP/invalid-example.json"
if out=$(node tests/chart/validate.mjs --crd "$TMP/crds.json" "$TMP/invalid-example.json" 2>&1); then
  bad "examples/invalid-meshmetric.yaml should fail the CRD schema (appendProfiles name)" "$out"
else
  ok "examples/invalid-meshmetric.yaml fails the CRD schema, as the API server would reject it"
fi
if out=$(grep -noE '\{\{[^}]*\b(randAlphaNum|randAlpha|randNumeric|randAscii|randBytes|uuidv4|genCA|genPrivateKey|genSelfSignedCert|genSignedCert|now|lookup)\b[^}]*\}\}' "$CHART"/templates/*); then
  bad "templates use random, time or cluster-state functions (renders would drift)" "$out"
else
  ok "templates use no random, time or lookup functions"
fi

# ---- the binary and the image ----------------------------------------------------------------------
echo "# binary and image"
if [ -x "$BIN" ]; then
  help=$("$BIN" serve --help 2>&1)
  # Flags the operator adds with cluster mode (see check_render.py's KNOWN_FLAGS); any other flag
  # the chart sets must already be in `serve --help`.
  new_flags=" --zone --metrics-addr --kubeconfig --context --namespace --leader-elect --leader-election-id
    --leader-election-namespace --lease-duration --renew-deadline --retry-period --manage-webhook-certs
    --webhook-secret --webhook-service --mutating-webhook-configuration --validating-webhook-configuration
    --restart-out-of-sync --restart-rate --restart-max-unavailable --resync-period "
  new_flags=" $(echo $new_flags) "
  unexpected=()
  pending=()
  for f in $(grep -ho -- '--[a-z0-9-]*=' "$TMP"/*.1.yaml | sort -u | tr -d '='); do
    grep -q -- "$f " <<<"$help" && continue
    case "$new_flags" in
      *" $f "*) pending+=("$f") ;;
      *) unexpected+=("$f") ;;
    esac
  done
  note=""
  [ ${#pending[@]} -gt 0 ] && note=" or among the operator's new flags (not in this binary yet: ${pending[*]})"
  if [ ${#unexpected[@]} -eq 0 ]; then
    ok "every flag the chart sets is in 'serve --help'$note"
  else
    bad "flags the chart sets that 'serve --help' does not list" "${unexpected[*]}"
  fi
else
  bad "no binary at $BIN"
fi
# The image is a release build: check the release binary (hack/test.sh builds build/ first).
release_bin=$ROOT/build/meshmetric-operator
[ -x "$release_bin" ] || release_bin=$BIN
run "Dockerfile RUNTIME_LIBS = ldd of $(basename "$(dirname "$release_bin")")/meshmetric-operator beyond glibc" \
  "$ROOT/hack/image.sh" --check-libs "$release_bin"
dockerfile_facts() {
  local uid
  uid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["podSecurityContext"]["runAsUser"])' "$TMP/default.values.json")
  grep -q '^ARG BUILD_IMAGE=debian:bookworm$' Dockerfile || { echo "builder is not Debian bookworm"; return 1; }
  grep -q '^ARG RUNTIME_IMAGE=gcr.io/distroless/' Dockerfile || { echo "runtime is not distroless"; return 1; }
  [ "$(grep -c '^FROM ' Dockerfile)" -ge 2 ] || { echo "not multi-stage"; return 1; }
  grep -q "^USER $uid:$uid\$" Dockerfile || { echo "USER is not the chart's runAsUser $uid"; return 1; }
  grep -q '^ENTRYPOINT \["/usr/local/bin/meshmetric-operator"\]$' Dockerfile || { echo "ENTRYPOINT is not the binary"; return 1; }
  for p in .git 'build\*/' .local/ tests/chart/node_modules/; do
    grep -q "^$p\$" .dockerignore || { echo ".dockerignore lacks $p"; return 1; }
  done
}
run "Dockerfile: bookworm builder, distroless runtime, USER = the chart's runAsUser, ENTRYPOINT the binary" dockerfile_facts

# ---- the local API server, with the real kubectl -------------------------------------------------
echo "# kubectl against the local API server"
KUBECTL=$(dirname "$(readlink -f "$(command -v kubectl 2>/dev/null || echo /nonexistent)")")/kubectl.1.32
[ -x "$KUBECTL" ] || KUBECTL=$(command -v kubectl 2>/dev/null || true)
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
WEBHOOK_PORT=$(freeport)
METRICS_PORT=$(freeport)
export MM_LOCAL_DIR=$TMP/cluster
export HOME=$TMP/home
mkdir -p "$HOME"
if [ -z "$KUBECTL" ]; then
  skip "kubectl against the local API server" "no kubectl"
elif ! eval "$("$ROOT/hack/cluster.sh" up --service-map "$NS/$RELEASE:443=127.0.0.1:$WEBHOOK_PORT" 2>"$TMP/cluster.err")"; then
  bad "local API server starts" "$(cat "$TMP/cluster.err")"
else
  CLUSTER_UP=1
  KCFG=$KUBECONFIG
  k() { "$KUBECTL" --kubeconfig "$KCFG" "$@" </dev/null; }
  APISERVER=https://127.0.0.1:$(cat "$MM_LOCAL_DIR/apiserver.port")
  run "namespaces, cert-manager and Prometheus Operator stand-in CRDs" sh -c "
    '$KUBECTL' --kubeconfig '$KCFG' create namespace $NS </dev/null &&
    '$KUBECTL' --kubeconfig '$KCFG' create namespace monitoring </dev/null &&
    '$KUBECTL' --kubeconfig '$KCFG' create namespace grafana </dev/null &&
    '$KUBECTL' --kubeconfig '$KCFG' apply -f tests/chart/testdata/stub-crds.yaml </dev/null"
  # Built-in resources the chart renders (or the operator reads) that this local API server does
  # not serve get schema-less stand-ins, so that kubectl can send them; their schemas are checked
  # by validate.mjs above.
  k api-resources -o name >"$TMP/api-resources" 2>&1
  python3 - "$TMP/api-resources" >"$TMP/standins.yaml" <<'EOF'
import sys
have = set(open(sys.argv[1]).read().split())
wanted = [("apps", "deployments", "Deployment"), ("apps", "replicasets", "ReplicaSet"),
          ("apps", "statefulsets", "StatefulSet"), ("apps", "daemonsets", "DaemonSet"),
          ("batch", "jobs", "Job"), ("policy", "poddisruptionbudgets", "PodDisruptionBudget")]
for group, plural, kind in wanted:
    if f"{plural}.{group}" in have:
        continue
    print(f"""---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.{group}
spec:
  group: {group}
  names: {{kind: {kind}, listKind: {kind}List, plural: {plural}, singular: {kind.lower()}}}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      subresources: {{status: {{}}}}
      schema:
        openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}""")
EOF
  if [ -s "$TMP/standins.yaml" ]; then
    run "stand-ins for built-in resources the local API server does not serve: $(grep -o 'name: [a-z]*\.[a-z.]*' "$TMP/standins.yaml" | cut -d' ' -f2 | tr '\n' ' ')" \
      k apply -f "$TMP/standins.yaml"
  fi
  for vf in tests/chart/values/*.yaml; do
    set_name=$(basename "$vf" .yaml)
    [ -f "$TMP/$set_name.1.yaml" ] || continue
    if out=$(k apply --dry-run=server -f "$TMP/$set_name.1.yaml" 2>&1); then
      ok "$set_name: kubectl apply --dry-run=server accepts all $(grep -c '(server dry run)' <<<"$out") objects"
    else
      bad "$set_name: kubectl apply --dry-run=server" "$out"
    fi
  done
  # The real thing, as docs/install.md says to do it without Helm.
  run "kubectl create -f crds/" k create -f crds/
  # What `kubectl get mm` shows with the chart's CRD: status written through /status, as the
  # operator does with this CRD, read back through the printer columns (server-side Table).
  if k create namespace kuma-system >/dev/null 2>&1 && k apply -f examples/policies.yaml >/dev/null 2>&1 &&
     k -n shop-prod patch meshmetric checkout-app-metrics --subresource=status --type=merge -p \
       '{"status":{"conditions":[{"type":"meshmetric.kuma.io/Valid","status":"True","reason":"Valid","message":"ok"},{"type":"meshmetric.kuma.io/DataplanesInSync","status":"False","reason":"InSync:3,OutOfSync:1","message":"1 of 4 dataplanes out of sync"}]}}' >/dev/null 2>&1; then
    table=$(k get mm -A -o wide 2>&1)
    gen=$(k -n shop-prod get meshmetric checkout-app-metrics -o jsonpath='{.metadata.generation}' 2>&1)
    if head -1 <<<"$table" | grep -q "READY"; then
      if grep -qE '^shop-prod +checkout-app-metrics +Dataplane +True +False +InSync:3,OutOfSync:1 +1 of 4 dataplanes out of sync' <<<"$table" && [ "$gen" = 1 ]; then
        ok "kubectl get mm -A -o wide: TARGETREF READY IN SYNC DATAPLANES MESSAGE from the operator's conditions; a /status write keeps generation 1"
      else
        bad "kubectl get mm columns" "$table (generation $gen)"
      fi
    else
      skip "kubectl get mm columns" "the local API server serves no Table (kubectl prints: $(head -1 <<<"$table"))"
    fi
    echo "$table" | sed 's/^/#   /'
    k -n shop-prod delete meshmetric checkout-app-metrics >/dev/null 2>&1
    k -n kuma-system delete meshmetric metrics-default >/dev/null 2>&1
  else
    bad "MeshMetrics and a status write with the chart's CRD"
  fi
  run "kubectl apply -f manifests/install.yaml" k apply -f manifests/install.yaml
  run "the installed objects are there" k -n "$NS" get deployment/$RELEASE service/$RELEASE serviceaccount/$RELEASE \
    poddisruptionbudget/$RELEASE role/$RELEASE rolebinding/$RELEASE
  run "kubectl get meshmetrics -A works with the chart's CRD" k get meshmetrics -A
  # The ServiceAccount's RBAC, asked of the server's authorizer when it has one.
  code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$MM_LOCAL_DIR/pki/ca.crt" \
    -H "Authorization: Bearer $(cat "$MM_LOCAL_DIR/token")" -H 'Content-Type: application/json' -X POST \
    -d '{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"x","resourceAttributes":{"verb":"get","resource":"pods"}}}' \
    "$APISERVER/apis/authorization.k8s.io/v1/subjectaccessreviews")
  if [ "$code" = 201 ]; then
    if out=$(python3 tests/chart/check_render.py "$TMP/default.json" "$TMP/default.values.json" "$NS" "$RELEASE" \
        --sar "$APISERVER" "$MM_LOCAL_DIR/token" "$MM_LOCAL_DIR/pki/ca.crt" 2>&1) &&
       grep -q "ok   - the API server's RBAC authorizer denies" <<<"$out"; then
      ok "the applied RBAC, asked of the API server's authorizer: every operator call allowed, every forbidden one denied"
    else
      bad "RBAC through SubjectAccessReview" "$(grep -v '^ok' <<<"$out")"
    fi
  else
    skip "RBAC through the API server's authorizer" "the local API server has no SubjectAccessReview (HTTP $code); checked by reading (check_render.py)"
  fi
fi

# ---- live: the operator as the Deployment runs it ---------------------------------------------------
# The lead removes the guard below once `serve` has cluster mode (--kubeconfig & co.).
live_test() {
  local name="live: the operator, run as the Deployment runs it, patches a pod and writes MeshMetric status"
  if [ ! -x "$BIN" ] || ! "$BIN" serve --help 2>&1 | grep -q -- '--kubeconfig'; then
    skip "$name" "SKIPPED: operator cluster mode not built yet"
    return
  fi
  if [ $CLUSTER_UP -ne 1 ]; then
    skip "$name" "no local API server"
    return
  fi
  local live=$TMP/live
  mkdir -p "$live"
  # The ServiceAccount's own token when the server mints them (RBAC enforced), else the admin's.
  local kcfg=$KCFG rbac_mode="admin token: RBAC checked by reading"
  if "$ROOT/hack/cluster.sh" kubeconfig-sa "$NS" "$RELEASE" "$live/kubeconfig" >/dev/null 2>&1; then
    kcfg=$live/kubeconfig
    rbac_mode="the ServiceAccount's token: RBAC enforced by the server"
  elif curl -sf --cacert "$MM_LOCAL_DIR/pki/ca.crt" -H "Authorization: Bearer $(cat "$MM_LOCAL_DIR/token")" \
      -H 'Content-Type: application/json' -X POST -d "{\"namespace\":\"$NS\",\"serviceAccount\":\"$RELEASE\"}" \
      "$APISERVER/_control/token" >"$live/token.json" 2>/dev/null; then
    kcfg=$live/kubeconfig
    python3 - "$KCFG" "$live/token.json" "$kcfg" <<'EOF'
import json, sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
tok = json.load(open(sys.argv[2]))["token"]
for u in cfg["users"]:
    u["user"] = {"token": tok}
yaml.safe_dump(cfg, open(sys.argv[3], "w"))
EOF
    rbac_mode="the ServiceAccount's token: RBAC enforced by the server"
  fi
  # The container's args and env from the rendered Deployment; listen on loopback ports instead
  # of the pod's, and reach the API through a kubeconfig instead of the in-cluster config.
  python3 - "$TMP/default.json" "$live" "$NS" "$WEBHOOK_PORT" "$METRICS_PORT" "$kcfg" <<'EOF'
import json, sys
objs = [e["object"] for e in json.load(open(sys.argv[1]))]
live, ns, wport, mport, kcfg = sys.argv[2:7]
dep = next(o for o in objs if o["kind"] == "Deployment")
c = dep["spec"]["template"]["spec"]["containers"][0]
args = []
for a in c["args"]:
    if a.startswith("--webhook-addr="):
        a = f"--webhook-addr=127.0.0.1:{wport}"
    elif a.startswith("--metrics-addr="):
        a = f"--metrics-addr=127.0.0.1:{mport}"
    args.append(a)
args.append(f"--kubeconfig={kcfg}")
env = []
for e in c.get("env", []):
    if "value" in e:
        env.append(f"{e['name']}={e['value']}")
    elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name":
        env.append(f"{e['name']}={dep['metadata']['name']}-local-0")
    elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
        env.append(f"{e['name']}={ns}")
    else:
        sys.exit(f"env {e['name']}: unsupported valueFrom")
open(live + "/args", "w").write("\0".join(args))
open(live + "/env", "w").write("\0".join(env))
EOF
  local args=() envs=()
  mapfile -d '' args <"$live/args"
  mapfile -d '' envs <"$live/env"
  echo "# $BIN ${args[*]}"
  env -i PATH="$PATH" HOME="$HOME" ASAN_OPTIONS="${ASAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" "${envs[@]}" \
    "$BIN" "${args[@]}" >"$live/operator.log" 2>&1 &
  OPERATOR_PID=$!
  local i ready=0
  for i in $(seq 1 150); do
    curl -sf "http://127.0.0.1:$METRICS_PORT/readyz" >/dev/null 2>&1 && { ready=1; break; }
    kill -0 "$OPERATOR_PID" 2>/dev/null || break
    sleep 0.2
  done
  if [ $ready -eq 1 ]; then ok "live: /readyz on the metrics port ($rbac_mode)"; else
    bad "live: the operator became ready" "$(tail -n 30 "$live/operator.log")"; return; fi
  poll() { # poll SECONDS CMD...: until CMD succeeds
    local t=$(( $1 * 5 )); shift
    for _ in $(seq 1 "$t"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    "$@"
  }
  has_ca() { [ -n "$(k get "$1" "$RELEASE" -o jsonpath='{.webhooks[0].clientConfig.caBundle}' 2>/dev/null)" ]; }
  if poll 30 has_ca mutatingwebhookconfiguration && poll 10 has_ca validatingwebhookconfiguration &&
     k -n "$NS" get secret "$RELEASE-webhook-tls" >/dev/null 2>&1; then
    ok "live: the operator created its certificate Secret and filled both caBundles"
  else
    bad "live: managed webhook certificate" "$(tail -n 20 "$live/operator.log")"
  fi
  holder() { [ -n "$(k -n "$NS" get lease "$RELEASE" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null)" ]; }
  if poll 30 holder; then ok "live: leader Lease $NS/$RELEASE held"; else bad "live: leader election" "$(tail -n 20 "$live/operator.log")"; fi
  k create namespace kuma-system >/dev/null 2>&1
  if out=$(poll 20 k apply -f examples/policies.yaml 2>&1); then
    ok "live: MeshMetrics applied through the validating webhook"
  else
    bad "live: kubectl apply -f examples/policies.yaml" "$out"
  fi
  # Valid for the CRD schema (port is an int32 there), invalid for Kuma: only the webhook catches it.
  cat >"$live/invalid.yaml" <<'EOF'
apiVersion: kuma.io/v1alpha1
kind: MeshMetric
metadata:
  name: bad-port
  namespace: kuma-system
spec:
  default:
    backends:
      - type: Prometheus
        prometheus:
          port: 70000
EOF
  if out=$(k apply -f "$live/invalid.yaml" 2>&1); then
    bad "live: an invalid MeshMetric was accepted" "$out"
  else
    case "$out" in
      # kubectl's rendering of a 422 whose details name the object (Kuma's shape):
      *'The MeshMetric "bad-port" is invalid: spec.default.backends.backend[0].port: port must be a valid (1-65535)'*)
        ok "live: an invalid MeshMetric is denied with Kuma's message" ;;
      *) bad "live: invalid MeshMetric" "$out" ;;
    esac
  fi
  local pod
  pod=$(k create -f examples/pod.yaml -o name 2>"$live/create.err")
  if [ -n "$pod" ] && [ -n "$(k -n shop-prod get "$pod" -o jsonpath='{.metadata.annotations.meshmetric\.kuma\.io/config-hash}')" ]; then
    ok "live: the pod is patched ($pod carries meshmetric.kuma.io/config-hash)"
  else
    bad "live: pod patched" "$(cat "$live/create.err"; tail -n 20 "$live/operator.log")"
  fi
  has_status() { k -n shop-prod get meshmetric checkout-app-metrics -o jsonpath='{.status.conditions[*].type}' 2>/dev/null | grep -q 'meshmetric.kuma.io/DataplanesInSync'; }
  if poll 60 has_status; then
    ok "live: MeshMetric shop-prod/checkout-app-metrics has status ($(k -n shop-prod get meshmetric checkout-app-metrics -o jsonpath='{range .status.conditions[*]}{.type}={.status} {end}'))"
  else
    bad "live: MeshMetric status" "$(tail -n 20 "$live/operator.log")"
  fi
  echo "# kubectl get mm -A:"; k get mm -A | sed 's/^/#   /'
  if grep -qiE '"code":403|forbidden' "$live/operator.log"; then
    bad "live: the operator hit RBAC denials" "$(grep -iE '"code":403|forbidden' "$live/operator.log" | head -5)"
  else
    ok "live: no RBAC denials in the operator's log"
  fi
  metrics=$(curl -sf "http://127.0.0.1:$METRICS_PORT/metrics")
  case "$metrics" in *meshmetric_operator_leader*) ok "live: /metrics on the metrics port" ;; *) bad "live: /metrics lacks meshmetric_operator_leader" ;; esac
  kill -TERM "$OPERATOR_PID"
  local rc
  wait "$OPERATOR_PID"; rc=$?
  OPERATOR_PID=
  if [ $rc -eq 0 ]; then ok "live: SIGTERM, exit 0"; else bad "live: exit status $rc after SIGTERM" "$(tail -n 20 "$live/operator.log")"; fi
}
live_test

summary
