#!/usr/bin/env bash
# Source checks (curl's checksrc in spirit): banned calls, each folder's
# dependency rules (which project folders and external libraries it may
# include; the table is below and in docs/architecture.md, "Libraries and their
# rules"), no I/O in core, and a self-contained repository.
set -euo pipefail
cd "$(dirname "$0")/.."
rc=0
fail() { echo "checksrc: $*" >&2; rc=1; }

if grep -rnE '\b(sprintf|vsprintf|strcpy|strcat|strtok|atoi|atol|gets)[[:space:]]*\(' src bench tests/unit tests/fuzz; then
  fail "banned call (use snprintf, strtok_r, strtol, bounded copies)"
fi

# Who may include whom: folder -> the project folders it may include.
declare -A allowed=(
  [util]="util"
  [core]="core util"
  [tls]="tls util"
  [k8s]="k8s util"
  [server]="server core tls util"
  [operator]="operator k8s core tls util"
  [cli]="cli server operator k8s core tls util"
)
for dir in "${!allowed[@]}"; do
  [ -d "src/$dir" ] || continue
  while IFS= read -r line; do
    inc=$(printf '%s' "$line" | sed -E 's/.*#include[[:space:]]*"([a-z0-9_]+)\/.*/\1/')
    case " ${allowed[$dir]} " in
      *" $inc "*) ;;
      *) fail "dependency rule broken: src/$dir may not include \"$inc/\": $line" ;;
    esac
  done < <(grep -rnE '#include[[:space:]]*"[a-z0-9_]+/' "src/$dir" || true)
done
if grep -rnE '#include[[:space:]]*"cli/' src --include=*.c --include=*.h | grep -v '^src/cli/\|^src/main.c'; then
  fail "only main.c and src/cli include cli/"
fi

# External libraries per folder: core/util never link I/O libraries, k8s uses
# libcurl but no HTTP server or TLS library of its own, tls has no HTTP.
if grep -rlE '#include[[:space:]]*<(curl/curl\.h|microhttpd\.h|openssl/|gnutls/)' src/core src/util; then
  fail "src/core and src/util must not include I/O libraries"
fi
if grep -rlE '#include[[:space:]]*<(microhttpd\.h|gnutls/)' src/k8s src/operator 2>/dev/null; then
  fail "src/k8s and src/operator do not serve HTTP (libmicrohttpd/GnuTLS belong to src/server)"
fi
if grep -rlE '#include[[:space:]]*<(curl/curl\.h|microhttpd\.h)' src/tls 2>/dev/null ||
   grep -rlE '#include[[:space:]]*<curl/curl\.h>' src/server 2>/dev/null; then
  fail "src/tls and src/server do not call the API server (libcurl belongs to src/k8s)"
fi
if grep -rnE '\b(printf|fprintf|puts|fopen|socket|getenv|time|clock_gettime|rand)[[:space:]]*\(' src/core; then
  fail "src/core does no I/O and reads no clock (no printf/fopen/getenv/time)"
fi

# A clone must build, test and run with nothing beside it.
if git ls-files -z | xargs -0 grep -lE '\.\./share[d]|/work/share[d]' 2>/dev/null; then
  fail "tracked files refer to the reference folder beside the clone; copy what you need into tests/data/"
fi
exit $rc
