#!/bin/sh
# Replays every patch the podpatch unit tests produce through
# `kubectl patch --local --type=json`, which applies JSON Patch with the same
# library as the 1.32 API server (evanphx/json-patch v4.12.0,
# kubernetes-api.md §2.6), and checks that kubectl
#   - accepts the patch (exit status 0), and
#   - produces exactly the object the unit test's strict RFC 6902 applier
#     expected (<case>.want.json), compared as parsed JSON with types kept
#     (key order is ignored; array order, true vs 1, 1 vs 1.0 are not).
# Idempotency (rebuilding on the patched pod gives []) is checked in C.
#
# Usage: tests/e2e/kubectl_patch_test.sh BUILD_DIR
# Prints "N passed, 0 failed" and exits non-zero on any failure.
set -u

build=${1:?usage: $0 BUILD_DIR}
build=$(cd "$build" && pwd) || exit 2
src=$(cd "$(dirname "$0")/../.." && pwd)
bin="$build/test_podpatch"
if [ ! -x "$bin" ]; then
    echo "missing $bin: build the test_podpatch target first" >&2
    exit 2
fi

# A fixed-version kubectl, not the version dispatcher (tooling.md).
k=""
if command -v kubectl >/dev/null 2>&1; then
    real=$(readlink -f "$(command -v kubectl)")
    k="$(dirname "$real")/kubectl.1.32"
    [ -x "$k" ] || k=$(command -v kubectl)
fi
if [ -z "$k" ]; then
    echo "kubectl not found" >&2
    exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir -p "$tmp/dump" "$tmp/home"

kubectl_local() { # FILE PATCH -> stdout JSON
    HOME="$tmp/home" KUBECONFIG=/dev/null "$k" patch --local -f "$1" --type=json -p "$2" \
        -o json </dev/null
}

version=$(HOME="$tmp/home" "$k" version --client -o json </dev/null 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])' \
        2>/dev/null)
echo "kubectl: $k (${version:-unknown version})"

if ! MM_TESTDATA="$src/tests/data" MM_PATCH_DUMP="$tmp/dump" "$bin" >"$tmp/unit.log" 2>&1; then
    cat "$tmp/unit.log"
    echo "test_podpatch failed; 0 passed, 1 failed"
    exit 1
fi

# Strict JSON equality: same types (bool is not int, int is not float), same values.
cat >"$tmp/cmp.py" <<'EOF'
import json, sys

def same(a, b, path="$"):
    if type(a) is not type(b):
        return "%s: %s %r vs %s %r" % (path, type(a).__name__, a, type(b).__name__, b)
    if isinstance(a, dict):
        if set(a) != set(b):
            return "%s: keys %s vs %s" % (path, sorted(a), sorted(b))
        for k in a:
            d = same(a[k], b[k], path + "." + k)
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return "%s: length %d vs %d" % (path, len(a), len(b))
        for i, (x, y) in enumerate(zip(a, b)):
            d = same(x, y, "%s[%d]" % (path, i))
            if d:
                return d
        return None
    return None if a == b else "%s: %r vs %r" % (path, a, b)

with open(sys.argv[1]) as f:
    got = json.load(f)
with open(sys.argv[2]) as f:
    want = json.load(f)
d = same(got, want)
if d:
    print("kubectl result differs from want: " + d)
    sys.exit(1)
EOF

pass=0
fail=0
n=0
for pod in "$tmp"/dump/*.pod.json; do
    [ -e "$pod" ] || break
    n=$((n + 1))
    case=$(basename "$pod" .pod.json)
    patch="$tmp/dump/$case.patch.json"
    want="$tmp/dump/$case.want.json"
    out="$tmp/$case.out.json"
    if ! kubectl_local "$pod" "$(cat "$patch")" >"$out" 2>"$tmp/$case.err"; then
        echo "FAIL $case: kubectl rejected the patch: $(cat "$tmp/$case.err")"
        fail=$((fail + 1))
        continue
    fi
    if ! msg=$(python3 "$tmp/cmp.py" "$out" "$want"); then
        echo "FAIL $case: $msg"
        fail=$((fail + 1))
        continue
    fi
    ops=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$patch")
    echo "ok   $case ($ops ops)"
    pass=$((pass + 1))
done

if [ "$n" -lt 30 ]; then
    echo "FAIL: only $n cases were dumped (expected at least 30)"
    fail=$((fail + 1))
fi

# Controls: the oracle must be live. kubectl must reject an add under a
# missing map, and the comparison must notice a changed value.
ctl="$tmp/dump/kuma-sample.pod.json"
if [ -e "$ctl" ]; then
    if kubectl_local "$ctl" '[{"op":"add","path":"/metadata/nope/x","value":"1"}]' \
        >/dev/null 2>&1; then
        echo "FAIL control: kubectl accepted an add under a missing map"
        fail=$((fail + 1))
    else
        echo "ok   control: kubectl rejects an add under a missing map"
        pass=$((pass + 1))
    fi
    kubectl_local "$ctl" '[{"op":"add","path":"/metadata/annotations/x","value":true}]' \
        >"$tmp/ctl.out.json" 2>/dev/null
    python3 - "$tmp/dump/kuma-sample.pod.json" "$tmp/ctl.want.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["metadata"]["annotations"]["x"] = 1  # 1, not true: must be reported
json.dump(d, open(sys.argv[2], "w"))
EOF
    if python3 "$tmp/cmp.py" "$tmp/ctl.out.json" "$tmp/ctl.want.json" >/dev/null; then
        echo "FAIL control: the comparison did not tell true from 1"
        fail=$((fail + 1))
    else
        echo "ok   control: the comparison tells true from 1"
        pass=$((pass + 1))
    fi
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
