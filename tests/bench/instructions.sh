#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Instructions per request, plain vs tokenized (part of make bench): httpd
# (prefork, one process, -X) under callgrind, the same 1 KiB file fetched
# N times plainly and N times through a token, keep-alive, one connection.
# Instruction counts do not depend on what else runs on this shared
# machine, unlike the wall-clock and CPU-time figures, so this is the
# stable measure of what the module adds. Prints:
#   instructions/request: plain P tokenized T added A (+R%)
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
source scripts/lib.sh
bash scripts/install-deps.sh --bench  # valgrind, when run on its own
httpd=$(config_value HTTPD)
N=${BENCH_REQUESTS:-2000}

dir=$(mktemp -d /tmp/uritoken-instr-XXXXXX)
chmod 755 "$dir"
trap '[[ -n "${vpid:-}" ]] && kill "$vpid" 2>/dev/null; sleep 1; [[ -n "${BENCH_KEEP:-}" ]] || rm -rf "$dir"' EXIT
bench_server "$dir" prefork "${BENCH_EXTRA_CONF:-}"
# Only instructions inside ap_process_connection are counted (reading,
# handling and answering requests), so server start-up is left out.
start_httpd() {
  (cd "$dir" && exec valgrind --tool=callgrind --collect-atstart=no --toggle-collect=ap_process_connection \
    --callgrind-out-file="$dir/cg.$1.%p" "$httpd" -X -f "$dir/httpd.conf" >"$dir/valgrind.log" 2>&1) &
  vpid=$!
  for _ in $(seq 300); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.2; done
  # callgrind created its profile as root; httpd, now www-data, writes it at exit.
  chmod 666 "$dir/cg.$1.$vpid"
}
stop_httpd() {
  kill "$vpid"; wait "$vpid" 2>/dev/null || true; vpid=""
}
# BENCH_MINT_ARGS adds mint options (e.g. a subscriber: the subscriber
# verdict's lookup on a cluster node); "@DIR@" is the bench's directory.
mint_args=${BENCH_MINT_ARGS:-}
# shellcheck disable=SC2086 # the options are words
tok=$(build/uritoken mint --key-file "$dir/keys" --client bench --ttl 3600 --scope /bench/ ${mint_args//@DIR@/$dir})
plain="http://127.0.0.1:$port/bench/1k.bin"
tokenized="http://127.0.0.1:$port/_uk_$tok/bench/1k.bin"
# One keep-alive connection of N requests per mode, each in a fresh httpd.
# BENCH_EXTRA_CONF adds directives (e.g. link-sharing) to both runs.
measure() {
  start_httpd "$2"
  [[ $(curl -s -o /dev/null -w '%{http_code}' "$1") == 200 ]] || { echo "refused: $1" >&2; exit 1; }
  ab -q -k -n "$N" "$1" > "$dir/ab.txt"
  grep -q "^Non-2xx responses" "$dir/ab.txt" && { echo "non-2xx answers for $1" >&2; exit 1; }
  local pid=$vpid  # the file of httpd itself, not of a sidecar it forks
  stop_httpd
  sed -n 's/^summary: //p' "$dir/cg.$2.$pid"
}
p=$(measure "$plain" plain)
t=$(measure "$tokenized" tokenized)
python3 - "$p" "$t" "$N" <<'PY'
import sys
p, t, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
print(f"instructions/request: plain {p/n:.0f} tokenized {t/n:.0f} added {(t-p)/n:.0f} (+{100*(t-p)/p:.1f}%)")
PY
