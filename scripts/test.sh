#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole test suite, as CI runs it (.ci/run calls exactly this):
#   lint, unit tests, gossip tests (codec, CRDT, deterministic cluster
#   simulation), integration tests against real httpd (event and prefork,
#   and clusters of real nodes), unit and gossip tests under ASan+UBSan,
#   the lock-free shared-memory, log-limit and usage tests under TSan,
#   the token-parser, gossip-packet, range-file and client-API fuzzers for a bounded
#   time each, and
#   the PHP/Python/Node minters against the vectors, the nodes' DNS and
#   DNS-01 hook on a real PowerDNS (tests/dns/pdns_test.sh), three nodes
#   getting certificates from Pebble through mod_md (tests/dns/acme_test.sh),
#   and (as root) the
#   Debian packages built, installed into Debian's apache2 and purged.
# Prints "tests: N passed, M failed, K skipped" at the end (naming the
# skipped tests); exits non-zero on failure. N, M and K count distinct tests:
# the ASan step re-runs tests already counted and is reported on its own
# line. M also counts one for each failed step in which no test failed
# (lint, a fuzzer, a test program that crashed or ran fewer tests than it
# has), so "0 failed" always means the run passed.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh || { echo "install-deps failed"; exit 1; }
bash scripts/build.sh || { echo "build failed"; exit 1; }
bash scripts/fetch-test-assets.sh || { echo "fetch-test-assets failed (hls.js from the npm registry)"; exit 1; }

# GoogleTest output as parsed below: plain text, one result line per test.
export GTEST_COLOR=no GTEST_BRIEF=0

logdir=$(mktemp -d)
failed_steps=()
problems=()          # what made a step fail besides failed tests
passed=0 failed=0 skipped=0
skipped_names=()
declare -A step_failed_tests=()
rerun_summary=""

run_step() {
  local name=$1; shift
  echo "=== $name: $*"
  if "$@" 2>&1 | tee "$logdir/$name.log"; then
    echo "=== $name: ok"
    return 0
  fi
  echo "=== $name: FAILED"
  failed_steps+=("$name")
  return 1
}

fail_step() {  # fail_step NAME PROBLEM: why the step fails, even if its command exited 0
  problems+=("$1: $2")
  local s
  for s in "${failed_steps[@]}"; do [[ $s == "$1" ]] && return; done
  failed_steps+=("$1")
}

# Tests a GoogleTest program has, as the step should run them: without any
# filter, and without disabled tests (which never run unless asked for).
listed_tests() {
  env -u GTEST_FILTER "$1" --gtest_list_tests 2>/dev/null | awk '
    /^[^ ]/ { suite = $1 }
    /^  / { if (suite !~ /(^|\/)DISABLED_/ && $1 !~ /^DISABLED_/) n++ }
    END { print n + 0 }'
}

# A step that runs GoogleTest programs: BINARIES (space-separated, in the
# order the step runs them) and COUNTED (yes, or no for a re-run of tests
# already counted). Reads each program's part of the log: its per-test
# result lines up to its "N tests from M test suites ran." line (after it
# comes the summary, which repeats names). A program without that line
# stopped early: the test it was running counts as failed and the rest did
# not run. A program that ran fewer tests than it lists fails the step.
run_gtest_step() {
  local name=$1 counted=$2 bins=$3; shift 3
  run_step "$name" "$@"
  local -a seg_pass=() seg_fail=() seg_skip=() seg_done=() seg_running=()
  local kind seg a b c d e
  local p=0 q=0 s=0
  while read -r kind seg a b c d e; do
    case $kind in
      seg) seg_pass[seg]=$a seg_fail[seg]=$b seg_skip[seg]=$c seg_done[seg]=$d seg_running[seg]=$e ;;
      skip) [[ $counted == yes ]] && skipped_names+=("$a") ;;
    esac
  done < <(awk '
    /^\[==========\] Running [0-9]+ tests? from/ { seg++; next }
    seg == 0 || done[seg] { next }
    /^\[==========\] [0-9]+ tests? from .* ran\./ { done[seg] = 1; running[seg] = ""; next }
    /^\[ RUN      \] / { running[seg] = $4; next }
    /^\[       OK \] / { p[seg]++; running[seg] = ""; next }
    /^\[  FAILED  \] / { q[seg]++; running[seg] = ""; next }
    /^\[  SKIPPED \] / { s[seg]++; running[seg] = ""; n = $4; sub(/,$/, "", n); print "skip", seg, n; next }
    END {
      for (i = 1; i <= seg; i++)
        print "seg", i, p[i] + 0, q[i] + 0, s[i] + 0, done[i] + 0, (running[i] == "" ? "-" : running[i])
    }' "$logdir/$name.log")
  local i=0 bin listed ran
  for bin in $bins; do
    i=$((i + 1))
    if [[ ! -x $bin ]]; then
      fail_step "$name" "$bin was not built"
      continue
    fi
    listed=$(listed_tests "$bin")
    if [[ -z ${seg_done[i]:-} ]]; then
      fail_step "$name" "$bin shows no test run in the log (it did not run, died before its first test, or its output was cut down, e.g. by --gtest_brief): its $listed tests count as not run"
      continue
    fi
    p=$((p + seg_pass[i])); q=$((q + seg_fail[i])); s=$((s + seg_skip[i]))
    ran=$((seg_pass[i] + seg_fail[i] + seg_skip[i]))
    if ((seg_done[i] == 0)); then
      if [[ ${seg_running[i]} != - ]]; then
        q=$((q + 1)); ran=$((ran + 1))
        fail_step "$name" "$bin crashed or was killed in ${seg_running[i]}; its remaining $((listed - ran)) of $listed tests did not run"
      else
        fail_step "$name" "$bin stopped early after $ran of its $listed tests"
      fi
    elif ((ran < listed)); then
      fail_step "$name" "$bin ran $ran of its $listed tests (is GTEST_FILTER or GTEST_ARGS set?)"
    fi
  done
  echo "=== $name: $p passed, $q failed, $s skipped"
  if [[ $counted == yes ]]; then
    passed=$((passed + p)); failed=$((failed + q)); skipped=$((skipped + s))
    step_failed_tests[$name]=$q
  else
    rerun_summary="$name (re-run, not counted above): $p passed, $q failed, $s skipped"
  fi
}

run_step lint make lint
run_gtest_step unit yes build/unit_tests make check-unit
run_gtest_step gossip yes build/gossip_tests make check-gossip
run_gtest_step integration yes build/integration_tests make check-integration
run_gtest_step asan no "build/asan/unit_tests build/asan/gossip_tests" make check-asan
run_step tsan make check-tsan
run_step fuzz make fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
run_step fuzz-gossip make fuzz-gossip FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
run_step fuzz-ranges make fuzz-ranges FUZZ_SECONDS="${FUZZ_RANGES_SECONDS:-20}"
run_step fuzz-client-api make fuzz-client-api FUZZ_SECONDS="${FUZZ_RANGES_SECONDS:-20}"
run_step clients bash clients/run_tests.sh
# The client test scripts end each language with "N passed, M failed".
read -r p q < <(awk '/^[0-9]+ passed, [0-9]+ failed$/ { p += $1; q += $3 } END { print p + 0, q + 0 }' \
  "$logdir/clients.log")
passed=$((passed + p)); failed=$((failed + q)); step_failed_tests[clients]=$q
# The nodes' DNS on a real PowerDNS (tests/dns/pdns_test.sh): one
# "PASS"/"FAIL" line per check, then "N passed, M failed".
run_step dns bash tests/dns/pdns_test.sh
read -r p q < <(awk '/^[0-9]+ passed, [0-9]+ failed$/ { p += $1; q += $3 } END { print p + 0, q + 0 }' \
  "$logdir/dns.log")
passed=$((passed + p)); failed=$((failed + q)); step_failed_tests[dns]=$q
# Zero-touch HTTPS (tests/dns/acme_test.sh): Pebble, PowerDNS and three
# httpd nodes whose mod_md gets each one's certificate by DNS-01.
run_step acme bash tests/dns/acme_test.sh
read -r p q < <(awk '/^[0-9]+ passed, [0-9]+ failed$/ { p += $1; q += $3 } END { print p + 0, q + 0 }' \
  "$logdir/acme.log")
passed=$((passed + p)); failed=$((failed + q)); step_failed_tests[acme]=$q
# The Debian packages (tests/package/deb_test.sh): built from a copy of the
# tree, installed, tried in Debian's own apache2, purged. It installs
# packages and edits /etc/apache2, so it runs as root only (as CI does) and
# is named as skipped otherwise. Each of its PASS/FAIL lines is one test.
if [[ $(id -u) -eq 0 ]]; then
  run_step package bash tests/package/deb_test.sh
  if read -r p q < <(awk '/^deb_test: [0-9]+ passed, [0-9]+ failed$/ { print $2, $4; found = 1 }
                          END { if (!found) exit 1 }' "$logdir/package.log"); then
    passed=$((passed + p)); failed=$((failed + q)); step_failed_tests[package]=$q
  else
    fail_step package "tests/package/deb_test.sh printed no 'deb_test: N passed, M failed' line"
  fi
else
  skipped=$((skipped + 1))
  skipped_names+=("package (tests/package/deb_test.sh needs root)")
fi

# A failed step with no failed test of its own counts as one failure.
for s in "${failed_steps[@]}"; do
  if ((${step_failed_tests[$s]:-0} == 0)); then failed=$((failed + 1)); fi
done
# CI shows only the end of this output: repeat each failed test's own
# lines (from its RUN line to its FAILED line; at most 30 lines for each
# of the first 10 failed tests of a step) there.
for s in "${failed_steps[@]}"; do
  [[ -f $logdir/$s.log ]] || continue
  awk -v step="$s" '
    /^\[ RUN      \] / { name = $4; n = 0; delete buf; next }
    name != "" && /^\[  FAILED  \] / && $4 == name && ++shown <= 10 {
      print "=== failure in " step ": " name
      for (i = 1; i <= n && i <= 30; i++) print buf[i]
      if (n > 30) print "... (" n - 30 " more lines in the step log above)"
      name = ""; next
    }
    /^\[       OK \] |^\[  SKIPPED \] / { name = ""; next }
    name != "" { buf[++n] = $0 }' "$logdir/$s.log"
done
rm -rf "$logdir"
for problem in "${problems[@]}"; do echo "problem: $problem"; done
if [[ -n $rerun_summary ]]; then echo "$rerun_summary"; fi
if ((${#failed_steps[@]} > 0)); then echo "failed steps: ${failed_steps[*]}"; fi
skipped_list=""
if ((${#skipped_names[@]} > 0)); then skipped_list=": $(printf '%s, ' "${skipped_names[@]}")"; skipped_list=${skipped_list%, }; fi
echo "tests: $passed passed, $failed failed, $skipped skipped$skipped_list"
((${#failed_steps[@]} == 0))
