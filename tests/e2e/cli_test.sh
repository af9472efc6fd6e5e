#!/usr/bin/env bash
# The offline CLI end to end: the real binary on files. Checks outputs, exit
# codes and that bad input gives a clear error (exit 2) and never a crash.
#   tests/e2e/cli_test.sh BUILD_DIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
bin=$build/meshmetric-operator
ex=$root/examples
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
ko() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && sed 's/^/     /' <<<"$2" | head -20; }
# expect NAME WANT_RC CMD... : runs CMD, captures stdout/stderr in $out/$err
expect() {
  local name=$1 want=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  out=$(cat "$tmp/out"); err=$(cat "$tmp/err")
  if [ "$rc" -ge 128 ]; then ko "$name (crashed, rc $rc)" "$err"; return 1; fi
  if [ "$rc" -ne "$want" ]; then ko "$name (rc $rc, want $want)" "$err"; return 1; fi
  return 0
}
pyjson() { python3 -c "import json,sys; d=json.load(open('$tmp/out')); $1"; }

# inject -o json on the example pod: port, TLS env, secret volume, hash annotation
if expect "inject json" 0 "$bin" inject -f "$ex/pod.yaml" -p "$ex/policies.yaml" -o json; then
  if pyjson '
c=[c for c in d["spec"]["containers"] if c["name"]=="kuma-sidecar"][0]
assert any(p["containerPort"]==5670 and p.get("protocol","TCP")=="TCP" for p in c["ports"]), c.get("ports")
env={e["name"]:e.get("value") for e in c["env"]}
assert env["KUMA_DATAPLANE_RUNTIME_METRICS_CERT_PATH"].endswith("/tls.crt"), env
assert env["KUMA_DATAPLANE_RUNTIME_METRICS_KEY_PATH"].endswith("/tls.key"), env
vols={v["name"]:v for v in d["spec"]["volumes"]}
sec=[v for v in vols.values() if "secret" in v]
assert sec and sec[0]["secret"]["secretName"]=="checkout-metrics-tls", sec
m=[m for m in c["volumeMounts"] if m["name"]==sec[0]["name"]][0]
assert m.get("readOnly") is True and "subPath" not in m, m
assert d["metadata"]["annotations"]["meshmetric.kuma.io/config-hash"].startswith("sha256:")
assert d["metadata"]["annotations"]["prometheus.io/port"]=="9102"  # user value untouched
'; then ok "inject json: port, TLS env, secret mount, hash"; else ko "inject json content" "$out"; fi
fi

# idempotent: injecting the injected pod gives an empty patch
"$bin" inject -f "$ex/pod.yaml" -p "$ex/policies.yaml" -o json >"$tmp/once.json" 2>/dev/null
if expect "inject twice" 0 "$bin" inject -f "$tmp/once.json" -p "$ex/policies.yaml" -o patch; then
  [ "$(tr -d ' \n' <"$tmp/out")" = "[]" ] && ok "second inject yields []" || ko "second inject yields []" "$out"
fi

# stdin and YAML output
if expect "inject stdin" 0 sh -c "cat '$ex/pod.yaml' | '$bin' inject -f - -p '$ex/policies.yaml'"; then
  grep -q 'KUMA_DATAPLANE_RUNTIME_METRICS_CERT_PATH' "$tmp/out" && grep -q '^kind: Pod' "$tmp/out" &&
    ok "inject -f - prints YAML" || ko "inject -f - prints YAML" "$out"
fi

# Deployment with the native sidecar: patch under /spec/template, initContainers
if expect "inject deployment" 0 "$bin" inject -f "$ex/deployment.yaml" -p "$ex/policies.yaml" -o patch; then
  if pyjson '
assert d and all(op["path"].startswith("/spec/template/") for op in d), d
assert any("/initContainers/0/" in op["path"] or op["path"].endswith("/initContainers/0/ports") for op in d), d'; then
    ok "deployment patch targets the template's initContainers"; else ko "deployment patch" "$out"; fi
fi

# explain -o json has the documented keys
if expect "explain json" 0 "$bin" explain -f "$ex/pod.yaml" -p "$ex/policies.yaml" -o json; then
  if pyjson '
for k,t in [("mesh",str),("mode",str),("policies",list),("effective",dict),("origins",dict),("warnings",list),("patch",list)]:
    assert isinstance(d[k],t),k
assert d["mode"]=="MeshMetric" and d["mesh"]=="default"
assert d["policies"]==["kuma-system/metrics-default","shop-prod/checkout-app-metrics"], d["policies"]
assert d["effective"]["backends"][0]["prometheus"]["tls"]["mode"]=="ProvidedTLS"
assert d["effective"]["applications"][0]["port"]==9102
assert d["origins"]["/applications"]=="shop-prod/checkout-app-metrics", d["origins"]
'; then ok "explain -o json keys and values"; else ko "explain -o json" "$out"; fi
fi

# annotations-only pod: mode Annotations, the bad value is a warning, not an error
if expect "explain annotations" 0 "$bin" explain -f "$ex/pod-annotations.yaml" -o json; then
  if pyjson '
assert d["mode"]=="Annotations", d["mode"]
assert d["effective"]["backends"][0]["prometheus"]["port"]==5671
assert any("aggregate-debug-enabled" in w and "has wrong value" in w for w in d["warnings"]), d["warnings"]
'; then ok "annotations mode with a warning"; else ko "annotations mode" "$out"; fi
fi

# validate: exit 1 with Kuma's messages naming file, document, field
if expect "validate invalid" 1 "$bin" validate -f "$ex/invalid-meshmetric.yaml"; then
  grep -q 'invalid-meshmetric.yaml: document 1: spec.default.sidecar.profiles.appendProfiles\[0\].name: MeshMetric kuma-system/broken-schema: Unsupported value: "Everything": supported values: "All", "Basic", "None"' "$tmp/err" &&
  grep -q "invalid-meshmetric.yaml: document 2: spec.default.backends.backend\[0\].port: .*port must be a valid (1-65535)" "$tmp/err" &&
  grep -q "document 2: spec.default.applications.application\[0\]: .*port must be a valid (1-65535)" "$tmp/err" &&
  grep -q "document 2: spec.default.sidecar.profiles.include\[0\].match: .*invalid regex" "$tmp/err" &&
    ok "validate reports every problem" || ko "validate messages" "$err"
fi
expect "validate valid" 0 "$bin" validate -f "$ex/policies.yaml" && ok "validate valid policies exits 0"

# bad input: exit 2 with file and position, never a crash
printf 'kind: Pod\nmetadata: [\n' >"$tmp/bad.yaml"
expect "malformed yaml" 2 "$bin" inject -f "$tmp/bad.yaml" && grep -q "bad.yaml: .*line" "$tmp/err" &&
  ok "malformed YAML: exit 2 naming the file and line" || ko "malformed YAML message" "$err"
expect "missing file" 2 "$bin" inject -f "$tmp/nope.yaml" && grep -q "nope.yaml" "$tmp/err" && ok "missing file: exit 2"
python3 -c "print('['*100000)" >"$tmp/deep.json"
expect "deep nesting" 2 "$bin" inject -f "$tmp/deep.json" && ok "deep nesting: exit 2, no crash"
python3 -c "
import sys
sys.stdout.write('kind: Pod\nmetadata:\n  annotations:\n')
i=0
while i < 170000: sys.stdout.write('    k%d: \"%s\"\n' % (i, 'x'*100)); i+=1" >"$tmp/huge.yaml"
expect "too big" 2 "$bin" inject -f "$tmp/huge.yaml" && grep -q "larger than the limit" "$tmp/err" && ok "17 MB input: exit 2 (size cap)"
python3 -c "print('kind: Pod\nmetadata:\n  annotations:\n' + ''.join('    k%d: \"%s\"\n' % (i, 'x'*100) for i in range(90000)) + 'spec:\n  containers: [{name: kuma-sidecar}]')" >"$tmp/big.yaml"
expect "10MB doc" 0 "$bin" inject -f "$tmp/big.yaml" -o patch && ok "10 MB document handled"
printf 'kind: Pod\nspec:\n  containers: 7\n---\n- a\n---\nkind: [x]\n' >"$tmp/types.yaml"
expect "wrong types" 2 "$bin" inject -f "$tmp/types.yaml" -o patch && grep -q "types.yaml: document 1: spec.containers: must be an array" "$tmp/err" &&
  ok "wrong types: exit 2 naming the field" || ko "wrong types message" "$err"
printf 'apiVersion: kuma.io/v1alpha1\nkind: MeshMetric\nmetadata: {name: x, namespace: kuma-system}\nspec: {default: {backends: [{type: Prometheus, prometheus: {port: "abc"}}]}}\n' >"$tmp/badpol.yaml"
expect "invalid policy" 2 "$bin" inject -f "$ex/pod.yaml" -p "$tmp/badpol.yaml" && grep -q "badpol.yaml: document 1: spec.default.backends" "$tmp/err" &&
  ok "invalid policy file: exit 2 naming file, document, field" || ko "invalid policy message" "$err"
expect "bad flag" 2 "$bin" inject --bogus && grep -q -- "--bogus" "$tmp/err" && ok "unknown flag: exit 2"
expect "bad output" 2 "$bin" inject -f "$ex/pod.yaml" -o xml && ok "unknown -o: exit 2"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
