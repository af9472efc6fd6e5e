#!/usr/bin/env bash
# The test command: installs dependencies, builds (release and ASan/UBSan),
# runs every unit test under both, then the end-to-end suites (real HTTPS,
# real kubectl, the local API server). Exits non-zero on any failure and
# ends with one line "N passed, N failed" counting the suites.
#   ./hack/test.sh            everything
#   ./hack/test.sh --quick    skip the sanitizer build
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
quick=0
[ "${1:-}" = "--quick" ] && quick=1

./hack/deps.sh || { echo "hack/test.sh: dependency installation failed" >&2; exit 2; }

passed=0
failed=0
failures=()
step() { # step NAME CMD...
  local name=$1; shift
  echo "=== $name"
  local t0=$SECONDS
  if "$@"; then
    passed=$((passed + 1)); echo "=== $name: ok ($((SECONDS - t0))s)"
  else
    failed=$((failed + 1)); failures+=("$name"); echo "=== $name: FAILED ($((SECONDS - t0))s)"
  fi
}

build() { # build DIR [cmake args]
  local dir=$1; shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null &&
    cmake --build "$dir" -j"$(nproc)" -- --no-print-directory
}
build_targets() { # build_targets DIR "TARGETS" [cmake args]: only what a step needs
  local dir=$1 targets=$2; shift 2
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null &&
    cmake --build "$dir" -j"$(nproc)" --target $targets -- --no-print-directory
}

step "checksrc" ./hack/checksrc.sh
step "build (release)" build build
step "unit tests (release)" ctest --test-dir build --output-on-failure -j"$(nproc)"
step "docs (README flags table, named flags and metrics, links)" ./hack/docs-check.sh build
if [ $quick -eq 0 ]; then
  step "build (ASan+UBSan)" build build-asan -DSANITIZE=address,undefined
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  step "unit tests (ASan+UBSan)" ctest --test-dir build-asan --output-on-failure -j"$(nproc)"
  # Everything threads share, under ThreadSanitizer with stress tests: the HTTPS server while
  # policy views are swapped and certificates rotate, the operator's caches and work queue.
  tsan_tests="test_app_http test_app_stress test_k8s_client test_operator_workqueue test_operator_cache test_operator_policycache"
  step "build (TSan)" build_targets build-tsan "$tsan_tests" -DSANITIZE=thread
  step "unit tests (TSan)" env TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$root/tests/tsan.supp" \
    ctest --test-dir build-tsan --output-on-failure -R "^($(echo $tsan_tests | tr ' ' '|'))\$"
  e2e_build=build-asan
else
  e2e_build=build
fi
for t in tests/e2e/*_test.sh; do
  [ -f "$t" ] || continue
  step "e2e $(basename "$t" .sh)" bash "$t" "$root/$e2e_build"
done
if [ -x tests/apiserver/test.sh ] || [ -f tests/apiserver/test.sh ]; then
  step "apiserver (kubectl)" bash tests/apiserver/test.sh
fi

echo
if [ $failed -gt 0 ]; then
  printf 'failed: %s\n' "${failures[@]}"
fi
echo "suites: $passed passed, $failed failed"
[ $failed -eq 0 ]
