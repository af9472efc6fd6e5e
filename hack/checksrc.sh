#!/usr/bin/env bash
# Source checks (curl's checksrc in spirit): banned calls, the core/util
# boundary (no I/O libraries), and no stray debugging output in core.
set -euo pipefail
cd "$(dirname "$0")/.."
rc=0
if grep -rnE '\b(sprintf|vsprintf|strcpy|strcat|strtok|atoi|atol|gets)[[:space:]]*\(' src bench tests/unit; then
  echo "checksrc: banned call (use snprintf, strtok_r, strtol, bounded copies)" >&2; rc=1
fi
if grep -rlE '#include[[:space:]]*<(curl/curl\.h|microhttpd\.h|openssl/|gnutls/)' src/core src/util; then
  echo "checksrc: src/core and src/util must not include I/O libraries" >&2; rc=1
fi
if grep -rnE '\b(printf|fprintf|puts|fopen|socket|getenv)[[:space:]]*\(' src/core; then
  echo "checksrc: src/core does no I/O (no printf/fopen/getenv)" >&2; rc=1
fi
if grep -rnE '#include[[:space:]]*"(k8s|operator|server)/' src/core src/util src/tls; then
  echo "checksrc: dependency rule broken (see STYLE: core/util/tls never include k8s, operator, server)" >&2; rc=1
fi
exit $rc
