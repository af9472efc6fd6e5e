#!/usr/bin/env bash
# Short libFuzzer runs (clang-14, ASan+UBSan) of the webhook path and the
# policy path, seeded with the test fixtures. A crash, a leak, a sanitizer
# report or an unparsable response fails the run. FUZZ_SECONDS per target
# (default 30). Longer runs: FUZZ_SECONDS=600 tests/e2e/fuzz_test.sh
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
secs=${FUZZ_SECONDS:-30}
cc=$(command -v clang-14 || command -v clang || true)
if [ -z "$cc" ]; then echo "fuzz: clang not found (hack/deps.sh installs clang-14)"; echo "0 passed, 1 failed"; exit 1; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags=(-std=c11 -g -O1 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I"$root/src"
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
libs=(-ljansson -lyaml -lpcre2-8 -lm)
srcs=("$root"/src/core/*.c "$root"/src/util/*.c)
pass=0 fail=0
run() { # run TARGET SEEDDIR...
  local t=$1; shift
  if ! "$cc" "${flags[@]}" "$root/tests/fuzz/$t.c" "${srcs[@]}" "${libs[@]}" -o "$work/$t" 2>"$work/$t.build"; then
    echo "FAIL $t: build"; cat "$work/$t.build"; fail=$((fail + 1)); return
  fi
  mkdir -p "$work/$t.corpus"
  for d in "$@"; do cp "$d" "$work/$t.corpus/" 2>/dev/null; done
  if (cd "$work" && "./$t" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 \
        -print_final_stats=1 "$work/$t.corpus" >"$work/$t.log" 2>&1); then
    echo "ok   $t: $(grep -E 'stat::number_of_executed_units' "$work/$t.log" | awk '{print $2}') runs in ${secs}s, no crash"
    pass=$((pass + 1))
  else
    echo "FAIL $t"; tail -40 "$work/$t.log"; fail=$((fail + 1))
  fi
}
run fuzz_admission "$root"/tests/data/admission/*.json
run fuzz_policies "$root"/examples/*.yaml "$root"/tests/data/meshmetric/*.yaml "$root"/tests/data/mesh/*.yaml
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
