#!/usr/bin/env bash
# The main job on the bundled examples: builds meshmetric-operator, then
#  1. offline: `inject` and `explain` on examples/ (the same engine as the webhook);
#  2. validation of a broken MeshMetric with Kuma's messages;
#  3. live: the whole product against the local test API server (tests/apiserver):
#     the operator watches the cluster, manages its webhook certificate, patches a
#     pod at admission and reports, in MeshMetric status and Events, the pod that
#     was created before it ran (hack/demo-live.sh; Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
./hack/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" -- --no-print-directory >/dev/null
bin=$root/build/meshmetric-operator

banner() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

banner "inject: the pod from examples/pod.yaml, patched (only the kuma-sidecar container shown)"
$bin inject -f examples/pod.yaml -p examples/policies.yaml -o json |
  python3 -c 'import json,sys; p=json.load(sys.stdin); c=[c for c in p["spec"]["containers"] if c["name"]=="kuma-sidecar"][0];
print(json.dumps({"metadata.annotations": {k:v for k,v in p["metadata"]["annotations"].items() if "meshmetric" in k}, "kuma-sidecar": {k: c.get(k) for k in ("ports","env","volumeMounts")}, "volumes(meshmetric)": [v for v in p["spec"]["volumes"] if v["name"].startswith("meshmetric")]}, indent=2))'

banner "inject -o patch: the JSON Patch the webhook would return"
$bin inject -f examples/pod.yaml -p examples/policies.yaml -o patch

banner "explain: why the pod gets this config"
$bin explain -f examples/pod.yaml -p examples/policies.yaml

banner "inject: a Deployment with the native (initContainers) sidecar, YAML out"
$bin inject -f examples/deployment.yaml -p examples/policies.yaml

banner "explain: a pod configured only by annotations (one of them is wrong)"
$bin explain -f examples/pod-annotations.yaml || true

banner "validate: a broken MeshMetric (exit 1, Kuma's messages)"
$bin validate -f examples/invalid-meshmetric.yaml || echo "(validate exited $?)"

if [ -x hack/demo-live.sh ]; then
  banner "live: the operator against the local API server, with kubectl"
  ./hack/demo-live.sh
fi
