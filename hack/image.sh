#!/usr/bin/env bash
# Builds the meshmetric-operator container image from the Dockerfile and, when asked, loads it
# into a local cluster. Needs a container engine (docker, podman, nerdctl or buildah); without one
# it says so and exits 3, and only --check-libs works.
#
#   hack/image.sh [--tag IMAGE] [--engine NAME] [--load kind|k3d|minikube] [--cluster NAME] [--push]
#       default tag: meshmetric-operator:<appVersion of charts/meshmetric-operator>, the image the
#       chart's default values name (image.repository=meshmetric-operator)
#   hack/image.sh --check-libs BINARY
#       no engine needed: check that the Dockerfile's RUNTIME_LIBS are exactly the sonames `ldd
#       BINARY` lists beyond glibc (the runtime image has glibc); prints the line to paste when not
set -euo pipefail
cd "$(dirname "$0")/.."

dockerfile_arg() { # dockerfile_arg NAME: the default of ARG NAME="..." in the Dockerfile
  sed -n "s/^ARG $1=\"\(.*\)\"$/\1/p" Dockerfile
}

check_libs() {
  local bin=$1
  [ -x "$bin" ] || { echo "image.sh: $bin is not an executable" >&2; return 2; }
  local tmp rc=0
  tmp=$(mktemp -d)
  ldd "$bin" | awk '{print $1}' | sed 's|.*/||' | sort -u >"$tmp/ldd"
  # Sanitizer builds link their runtimes too; the image is a release build.
  grep -Ev '^lib(asan|ubsan|tsan|lsan)\.so' "$tmp/ldd" >"$tmp/ldd2" || true
  printf '%s\n' $(dockerfile_arg GLIBC_LIBS) | sort -u >"$tmp/glibc"
  comm -23 "$tmp/ldd2" "$tmp/glibc" >"$tmp/linked"
  printf '%s\n' $(dockerfile_arg RUNTIME_LIBS) | sort -u >"$tmp/listed"
  if [ ! -s "$tmp/listed" ]; then
    echo "image.sh: no ARG RUNTIME_LIBS=\"...\" in the Dockerfile" >&2; rc=1
  elif diff "$tmp/listed" "$tmp/linked" >"$tmp/diff"; then
    echo "image.sh: the Dockerfile copies exactly the $(wc -l <"$tmp/listed") libraries $bin links beyond glibc"
  else
    echo "image.sh: Dockerfile RUNTIME_LIBS differs from ldd $bin (< only in the Dockerfile, > only linked):" >&2
    cat "$tmp/diff" >&2
    echo "use: ARG RUNTIME_LIBS=\"$(tr '\n' ' ' <"$tmp/linked" | sed 's/ $//')\"" >&2
    rc=1
  fi
  rm -rf "$tmp"
  return $rc
}

tag="" engine="" load="" cluster="" push=0
while [ $# -gt 0 ]; do
  case "$1" in
    --check-libs) check_libs "${2:?--check-libs needs a binary}"; exit $? ;;
    --tag) tag=$2; shift 2 ;;
    --engine) engine=$2; shift 2 ;;
    --load) load=$2; shift 2 ;;
    --cluster) cluster=$2; shift 2 ;;
    --push) push=1; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "image.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' charts/meshmetric-operator/Chart.yaml)
tag=${tag:-meshmetric-operator:$version}
usable() { # an engine whose CLI is there and whose daemon (if any) answers
  command -v "$1" >/dev/null 2>&1 || return 1
  case "$1" in
    buildah) buildah version >/dev/null 2>&1 ;;
    *) "$1" info >/dev/null 2>&1 ;;
  esac
}
if [ -z "$engine" ]; then
  for e in docker podman nerdctl buildah; do
    if usable "$e"; then engine=$e; break; fi
  done
elif ! usable "$engine"; then
  echo "image.sh: $engine is not usable here (not installed, or its daemon does not answer)" >&2
  exit 3
fi
if [ -z "$engine" ]; then
  echo "image.sh: no usable container engine (docker, podman, nerdctl, buildah) on this machine; nothing built" >&2
  exit 3
fi

echo "image.sh: building $tag with $engine" >&2
case "$engine" in
  buildah) buildah bud -t "$tag" -f Dockerfile . ;;
  *) "$engine" build -t "$tag" -f Dockerfile . ;;
esac

case "$load" in
  "") ;;
  kind) kind load docker-image "$tag" ${cluster:+--name "$cluster"} ;;
  k3d) k3d image import "$tag" ${cluster:+--cluster "$cluster"} ;;
  minikube) minikube image load "$tag" ${cluster:+--profile "$cluster"} ;;
  *) echo "image.sh: --load kind|k3d|minikube" >&2; exit 2 ;;
esac
if [ $push -eq 1 ]; then
  case "$engine" in
    buildah) buildah push "$tag" ;;
    *) "$engine" push "$tag" ;;
  esac
fi
echo "image.sh: $tag ready; install with --set image.repository=${tag%:*},image.tag=${tag##*:}" >&2
