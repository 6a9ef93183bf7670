// SPDX-License-Identifier: Apache-2.0
// Per-node state for 1,000,000 live sessions with sightings and 100,000
// revocations (make bench-cluster): the shared-memory region the workers
// and the sidecar map, plus what the sidecar's own structures hold (the
// sharing detector, the proxy detector, the gossip node's revocation set),
// measured as the growth of this process's private resident memory while
// they are built and filled exactly as the sidecar builds and fills them.
//
// Prints: state MiB for 1M sessions: M. With the argument "bulk", as with
// UriTokenBulk on (the repeat filter's count words and the bulk table).
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <string>

#include "../../gossip/gossip.h"
#include "../../gossip/testing.h"
#include "../../mod_uritoken/cluster/shared_state.h"
#include "../../mod_uritoken/cluster/sharing.h"

using namespace uritoken;

namespace {

// Private resident memory (RssAnon): the sidecar's own structures. The
// shared region is counted once, by its size: its touched pages are
// RssShmem, which an RSS total would count a second time (the revocation
// table's 8 MiB, written while filling it).
double private_resident_mib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("RssAnon:", 0) == 0) return std::strtod(line.c_str() + 8, nullptr) / 1024.0;  // kB
  }
  return 0;
}

}  // namespace

namespace {}  // namespace

int main(int argc, char** argv) {
  const bool bulk_on = argc > 1 && std::string(argv[1]) == "bulk";
  constexpr std::size_t kSessions = 1000000;
  constexpr std::size_t kRevocations = 100000;
  const std::uint64_t now_ms = 1790000000000ULL;

  // Shared memory as the module sizes it for this load.
  SharedStateLayout layout;
  layout.ring_slots = 16384;
  layout.table_slots = 262144;        // 100,000 revocations at under 40% load
  layout.repeat_slots = 1000000 / 4;  // as the module sizes it for UriTokenTrackedSessions
  layout.repeat_counts = bulk_on;
  const std::size_t shm_bytes = shared_state_bytes(layout);
  void* region = mmap(nullptr, shm_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) return 1;
  auto shared = SharedState::format(region, shm_bytes, layout);
  if (!shared) return 1;

  const double before = private_resident_mib();
  SharingPolicy policy;
  policy.max_sessions = kSessions;
  auto detector = std::make_unique<SharingDetector>(policy);
  auto classifier = std::make_unique<NetworkClassifier>(policy);
  policy.bulk.enabled = bulk_on;  // its table only when on
  auto bulk = std::make_unique<BulkDetector>(policy.bulk);
  gossip::doubles::NullTransport no_network;
  gossip::doubles::NullListener no_listener;
  gossip::Config gc;
  gc.node_id = 1;
  gc.name = "bench";
  auto node = std::make_unique<gossip::Node>(gc, no_network, no_listener, now_ms, 42);

  std::mt19937_64 rng(7);
  for (std::size_t i = 0; i < kSessions; ++i) {
    const std::uint64_t session = rng();
    const auto key_id = static_cast<std::uint16_t>(1 + i % 50);
    // One or two networks per session, as most real viewers show.
    for (int k = 0; k < 1 + static_cast<int>(i % 2); ++k) {
      IpAddress a;
      a.bytes[0] = static_cast<std::uint8_t>(11 + (rng() % 200));
      a.bytes[1] = static_cast<std::uint8_t>(rng());
      a.bytes[2] = static_cast<std::uint8_t>(rng());
      a.bytes[3] = 7;
      const NetworkId net = classifier->network_of(a);
      const bool shared_net = classifier->observe(net, session, key_id, now_ms + i / 2000);
      detector->observe(key_id, session, static_cast<std::uint32_t>(now_ms / 1000 + 3600), net, shared_net,
                        now_ms + i / 2000);
      bulk->observe(key_id, session, 1, 3'750'000, now_ms + i / 2000);
    }
  }
  for (std::size_t i = 0; i < kRevocations; ++i) {
    gossip::Revocation r;
    r.token.key_id = static_cast<std::uint16_t>(1 + i % 50);
    r.token.session = rng();
    r.token_expires = static_cast<std::uint32_t>(now_ms / 1000 + 3600);
    r.stamp_ms = now_ms;
    r.origin = 1;
    r.reason = uritoken::gossip::VerdictReason::shared;
    r.networks = 5;
    node->decide(r, now_ms);
    RevocationRecord rec;
    rec.session = r.token.session;
    rec.key_id = r.token.key_id;
    rec.token_expires = r.token_expires;
    rec.since = static_cast<std::uint32_t>(now_ms / 1000);
    rec.state = RevocationState::revoked;
    shared->set_revocation(rec);
  }
  const double sidecar = private_resident_mib() - before;
  const double shm = static_cast<double>(shm_bytes) / (1024.0 * 1024.0);
  std::printf(
      "  shared memory %.1f MiB (ring %u slots, table %u slots, repeat filter %u slots), sidecar structures %.1f MiB "
      "(detector tracks %zu sessions, reports %.1f MiB; bulk table %.1f MiB; %zu revocations)\n",
      shm, layout.ring_slots, layout.table_slots, layout.repeat_slots, sidecar, detector->tracked(),
      static_cast<double>(detector->memory_bytes()) / (1024.0 * 1024.0),
      static_cast<double>(bulk->memory_bytes()) / (1024.0 * 1024.0), node->revocations().size());
  std::printf("state MiB for 1M sessions%s: %.1f\n", bulk_on ? " (UriTokenBulk on)" : "", shm + sidecar);
  return 0;
}
