#!/usr/bin/env bash
# Engine throughput against a bare jansson parse+dump of the same pod,
# measured in the same run (see bench/engine_bench.c). Prints the ratio.
#   bench/engine.sh [seconds-per-side]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
./hack/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target engine_bench -- --no-print-directory >/dev/null
review=${MM_REVIEW:-tests/data/admission/kuma-pod.json}
for i in 1 2 3; do
  echo "--- run $i"
  ./build/engine_bench "$review" "${1:-3}"
done
