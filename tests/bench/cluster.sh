#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make bench-cluster: the cluster figures, one script-readable line each:
#   sim nodes=1000 loss=L%: p999 X ms, all Y ms      (build/gossip_sim_bench)
#   sim dcs=3: p999 X ms, all Y ms                    (the same, 3 data centres of 100 nodes)
#   gossip bytes/s/node nodes=100: A nodes=1000: B   (build/gossip_sim_bench)
#   sim chaos: K/N shared tokens revoked, max ms after heal X   (build/chaos_bench)
#   state MiB for 1M sessions: M                     (build/state_memory)
#   cluster revocation ms: median M p99 P            (build/cluster_bench, 5 real httpd nodes)
#   catch-up ms after restart: C / after partition: C
#   tokenized/plain ratio: R                         (tests/bench/run.sh with sharing on)
#   sharing on/off ratio: M                          (tests/bench/sharing_cost.sh: two servers, adjacent rounds)
# Not part of CI: it takes a few minutes and wants a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/install-deps.sh --bench   # nft and ip, for the partition measurement
echo "== simulation (1,000 nodes, 1-5 ms one-way delay)"
build/gossip_sim_bench
echo "== seeded chaos (7 simulated nodes with the real decision path, 40 seeds x 20 phases)"
build/chaos_bench 40 20 || true
echo "== memory"
build/state_memory
build/state_memory bulk
echo "== real cluster (5 httpd nodes on loopback)"
build/cluster_bench
echo "== request path with link-sharing on (ring write + revocation lookup per request)"
BENCH_SHARING=1 bash tests/bench/run.sh
bash tests/bench/sharing_cost.sh
state=$(mktemp -d /tmp/uritoken-bench-state-XXXXXX); chmod 777 "$state"
BENCH_EXTRA_CONF="UriTokenSharing Enforce
UriTokenStateDir $state/state" bash tests/bench/instructions.sh
rm -rf "$state"
