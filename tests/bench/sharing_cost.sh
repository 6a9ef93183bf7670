#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# What link-sharing costs the request path, measured directly: two httpd
# servers on the same CPU, identical but for `UriTokenSharing Enforce`,
# take turns under the same tokenized load (10,000 tokens rotated by wrk)
# in groups of four adjacent rounds, off-on-on-off. Prints
#   sharing on/off ratio: M (median of G groups; pooled P; groups: ...)
# M is the on server's requests over the off server's in each group, the
# median over groups. Comparing adjacent rounds of two live servers, not
# two runs of `make bench` minutes apart, keeps this VM's drift (up to 30%
# between rounds, in steps) out of most groups: a step spoils one group,
# not the median. The on server's sidecar is pinned with it, so its CPU
# counts. Run by `make bench-cluster`; BENCH_GROUPS, BENCH_SECONDS set the
# size (default 6 groups of 4-second rounds).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
source scripts/lib.sh
httpd=$(config_value HTTPD)
GROUPS_OF_FOUR=${BENCH_GROUPS:-6}
SECONDS_PER_ROUND=${BENCH_SECONDS:-4}

pin_server=() pin_client=()
if [[ ${BENCH_PIN:-1} == 1 && $(nproc) -ge 2 ]]; then
  pin_server=(taskset -c 1) pin_client=(taskset -c 0)
fi
dirs=()
cleanup() {
  local d
  for d in "${dirs[@]}"; do
    [[ -f $d/httpd.pid ]] && kill "$(cat "$d/httpd.pid")" 2>/dev/null
  done
  sleep 1
  rm -rf "${dirs[@]}"
}
trap cleanup EXIT
declare -A dir_of port_of
start_server() {  # name extra-lines (@DIR@ stands for the server's directory)
  local d
  d=$(mktemp -d "/tmp/uritoken-sharing-cost-$1-XXXXXX")
  chmod 755 "$d"
  dirs+=("$d")
  bench_server "$d" event "StartServers 1
ServerLimit 1
ThreadsPerChild 32
MaxRequestWorkers 32
MinSpareThreads 1
MaxSpareThreads 32
$2"
  sed -i "s#@DIR@#$d#g" "$d/httpd.conf"
  build/mint_many "$d/keys" bench /bench/ 10000 > "$d/tokens.txt"
  "${pin_server[@]}" "$httpd" -f "$d/httpd.conf" -k start
  local tok
  tok=$(head -1 "$d/tokens.txt")
  for _ in $(seq 100); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/_uk_$tok/bench/1k.bin") == 200 ]] && break
    sleep 0.1
  done
  dir_of[$1]=$d port_of[$1]=$port
}
start_server off ""
start_server on "UriTokenSharing Enforce
UriTokenStateDir @DIR@/state"
round() {  # server -> requests served in one round
  local out
  out=$(URITOKEN_TOKENS="${dir_of[$1]}/tokens.txt" "${pin_client[@]}" wrk -t1 -c16 -d"${SECONDS_PER_ROUND}s" \
    -s tests/bench/rotate.lua "http://127.0.0.1:${port_of[$1]}/")
  if echo "$out" | grep -q "Non-2xx"; then echo "$1: non-2xx responses" >&2; echo "$out" >&2; exit 1; fi
  echo "$out" | awk '/requests in/ {print $1}'
}
echo "== link-sharing's cost: two servers, sharing off and on, ${GROUPS_OF_FOUR} groups of 4 adjacent ${SECONDS_PER_ROUND}s rounds"
round off > /dev/null; round on > /dev/null  # warm-up: the on server hears of every token
groups=()
for g in $(seq "$GROUPS_OF_FOUR"); do
  a=$(round off); b=$(round on); c=$(round on); d=$(round off)
  printf '  group %d: off %d on %d on %d off %d requests\n' "$g" "$a" "$b" "$c" "$d"
  groups+=("$((b + c)),$((a + d))")
done
python3 - "${groups[@]}" <<'PY'
import statistics
import sys
pairs = [tuple(map(int, g.split(","))) for g in sys.argv[1:]]
ratios = [on / off for on, off in pairs]
pooled = sum(on for on, _ in pairs) / sum(off for _, off in pairs)
print(f"sharing on/off ratio: {statistics.median(ratios):.3f} (median of {len(ratios)} groups; pooled {pooled:.3f};"
      f" groups: {' '.join(f'{r:.3f}' for r in ratios)})")
PY
for d in "${dirs[@]}"; do
  grep -E "AH00051|AH00052|exit signal" "$d/error.log" && { echo "httpd child crashed"; exit 1; }
done
exit 0
