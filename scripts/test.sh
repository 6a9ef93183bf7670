#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this):
#   lint, unit tests, gossip tests (codec, CRDT, deterministic cluster
#   simulation), integration tests against real httpd (event and prefork,
#   and clusters of real nodes), unit and gossip tests under ASan+UBSan,
#   the token-parser and gossip-packet fuzzers for a bounded time each, and
#   the PHP/Python/Node minters against the vectors.
# Prints "tests: N passed, M failed" at the end; exits non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh || { echo "install-deps failed"; exit 1; }
bash scripts/build.sh || { echo "build failed"; exit 1; }

logdir=$(mktemp -d)
failed_steps=()
run_step() {
  local name=$1; shift
  echo "=== $name: $*"
  if "$@" 2>&1 | tee "$logdir/$name.log"; then
    echo "=== $name: ok"
  else
    echo "=== $name: FAILED"
    failed_steps+=("$name")
  fi
}

run_step lint make lint
run_step unit make check-unit
run_step gossip make check-gossip
run_step integration make check-integration
run_step asan make check-asan
run_step fuzz make fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
run_step fuzz-gossip make fuzz-gossip FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
run_step clients bash clients/run_tests.sh

# Sum up every test counted by GoogleTest and by the client test scripts
# (their closing "N passed, M failed" lines).
passed=0; failed=0
for f in "$logdir"/*.log; do
  read -r p q < <(awk '
    /^\[  PASSED  \] [0-9]+ test/ { p += $4 }
    /^\[  FAILED  \] [0-9]+ test/ { q += $4 }
    /^[0-9]+ passed, [0-9]+ failed$/ { p += $1; q += $3 }
    END { print p + 0, q + 0 }' "$f")
  passed=$((passed + p)); failed=$((failed + q))
done
failed=$((failed + ${#failed_steps[@]}))
rm -rf "$logdir"
if ((${#failed_steps[@]} > 0)); then echo "failed steps: ${failed_steps[*]}"; fi
echo "tests: $passed passed, $failed failed"
((${#failed_steps[@]} == 0))
