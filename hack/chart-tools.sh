#!/usr/bin/env bash
# The tools the chart checks use, installed and built idempotently (nothing is done when they are
# current), for hack/chart-generate.sh and tests/e2e/chart_test.sh:
#   - hack/helm-render (Go, GOPATH mode, offline) built into $MM_CHART_TOOLS/helm-render;
#   - tests/chart/node_modules from the committed package-lock.json (`npm ci`), redone only when
#     the lock file changes.
# Debian packages (installed when missing, as root): golang-go golang-github-masterminds-sprig-dev
# golang-k8s-sigs-yaml-dev golang-github-xeipuuv-gojsonschema-dev, and nodejs npm when there is
# no node >= 18 on PATH.
#
#   hack/chart-tools.sh            build/install, then print the helm-render path
#   . hack/chart-tools.sh; chart_tools_setup   (from other scripts: sets HELM_RENDER; sourcing
#                                               changes no shell options)

chart_tools_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MM_CHART_TOOLS=${MM_CHART_TOOLS:-$chart_tools_root/.local/chart-tools}

chart_tools_apt() { # chart_tools_apt PKG...: install the missing ones
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "chart-tools: installing ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >/dev/null
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

chart_tools_gopath() { # the Debian Go source tree that holds sigs.k8s.io/yaml
  local d
  d=$(dpkg -L golang-k8s-sigs-yaml-dev | grep -m1 '/src/sigs.k8s.io/yaml$')
  echo "${d%/src/sigs.k8s.io/yaml}"
}

chart_tools_setup() {
  chart_tools_apt golang-go golang-github-masterminds-sprig-dev golang-k8s-sigs-yaml-dev \
    golang-github-xeipuuv-gojsonschema-dev
  mkdir -p "$MM_CHART_TOOLS"
  HELM_RENDER=$MM_CHART_TOOLS/helm-render
  local gopath
  gopath=$(chart_tools_gopath)
  # go build is incremental (GOCACHE): about a second when nothing changed.
  (cd "$chart_tools_root/hack/helm-render" &&
    GO111MODULE=off GOPATH=$gopath GOCACHE=$MM_CHART_TOOLS/gocache GOFLAGS= \
      go build -o "$HELM_RENDER" .)
  export HELM_RENDER
}

chart_tools_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1 ||
     [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -lt 18 ]; then
    chart_tools_apt nodejs npm
  fi
  local dir=$chart_tools_root/tests/chart stamp want
  stamp=$dir/node_modules/.meshmetric-lock.sha256
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  echo "chart-tools: npm ci in tests/chart" >&2
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error 2>&1 | grep -v EBADENGINE >&2 || true)
  [ -f "$dir/node_modules/kubernetes-models/package.json" ] || { echo "chart-tools: npm ci failed" >&2; return 1; }
  echo "$want" >"$stamp"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  chart_tools_setup
  chart_tools_node
  echo "$HELM_RENDER"
fi
