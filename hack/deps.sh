#!/usr/bin/env bash
# Installs the Debian packages meshmetric-operator needs to build, test and
# benchmark. Idempotent and quiet: does nothing when everything is present.
#   hack/deps.sh          build + test dependencies
#   hack/deps.sh --bench  also the benchmark tools (wrk, nginx-light)
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential cmake pkg-config git ca-certificates
      libmicrohttpd-dev libgnutls28-dev libssl-dev libjansson-dev libcurl4-openssl-dev
      libcmocka-dev libyaml-dev libpcre2-dev uthash-dev clang-14 libclang-rt-14-dev
      openssl curl python3 python3-yaml python3-jsonpatch procps
      golang-go golang-github-masterminds-sprig-dev golang-k8s-sigs-yaml-dev
      golang-github-xeipuuv-gojsonschema-dev prometheus)
if [ "${1:-}" = "--bench" ]; then
  pkgs+=(wrk nginx-light)
fi
if [ -f tests/apiserver/deps.txt ]; then
  while read -r p; do
    [ -n "$p" ] && [ "${p#\#}" = "$p" ] && pkgs+=("$p")
  done < tests/apiserver/deps.txt
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "hack/deps.sh: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
