// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the gossip receive path. The first input byte picks
// the mode, the rest is the data:
//   0: raw packet into Node::receive (fixed key): expect drops, never crashes
//   1: plaintext payload into wire::decode_payload, re-encoded if it decodes
//   2: the data sealed as an authentic payload and fed to a started Node, so
//      every decoded record runs through the membership, CRDT, push-pull and
//      sighting handlers
// Seeds in tests/fuzz/gossip-seeds/ (written by tests/gossip/seeds_test.cc).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "../../gossip/testing.h"
#include "../../gossip/gossip.h"
#include "../../gossip/wire.h"

using namespace uritoken::gossip;

namespace {

constexpr std::uint64_t kNow = 1'700'000'000'000ULL;

struct Discard : Transport {
  void send(const Endpoint&, const std::uint8_t*, std::size_t size) override {
    if (size > 1200) std::abort();  // a Node must never build an oversized packet
  }
};
using Quiet = doubles::NullListener;

Config config() {
  Config c;
  c.node_id = 1;
  c.self = *Endpoint::parse("10.0.0.1:7946");
  c.seeds = {*Endpoint::parse("10.0.0.2:7946")};
  c.cluster_key = doubles::pattern_key();
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t mode = data[0] % 3;
  ++data, --size;
  if (mode == 1) {
    auto decoded = wire::decode_payload(data, size);
    if (decoded) {
      // What decodes re-encodes to bytes that decode to the same records
      // and re-encode to themselves (skipped records and fields appended by
      // a newer version are what re-encoding drops).
      std::vector<std::uint8_t> once;
      for (const auto& m : decoded->messages) wire::encode(m, once);
      auto again = wire::decode_payload(once.data(), once.size());
      if (!again || again->skipped != 0 || again->messages.size() != decoded->messages.size()) std::abort();
      std::vector<std::uint8_t> twice;
      for (const auto& m : again->messages) wire::encode(m, twice);
      if (twice != once) std::abort();
      // Re-encoding adds only what a protocol 2 record lacks: a SIGHTING's
      // place (7 bytes) and counts (12, protocol 4), a REVOKE's places_len
      // (2) and times_len (2, protocol 4).
      std::size_t added = 0;
      for (const auto& m : decoded->messages) {
        added += std::holds_alternative<SightingReport>(m.v) ? 7 + 12
                 : std::holds_alternative<Revocation>(m.v)   ? 2 + 2
                                                             : 0;
      }
      if (decoded->skipped == 0 && once.size() > size + added) std::abort();
    }
    return 0;
  }
  static Discard transport;
  static Quiet listener;
  Node node(config(), transport, listener, kNow, 7);
  node.start(kNow);
  const Endpoint from = *Endpoint::parse("10.0.0.2:7946");
  if (mode == 0) {
    node.receive(from, data, size, kNow);
  } else {
    auto pkt = wire::seal(config().cluster_key, config().cluster_label, wire::Header{2, 1, kNow}, data, size);
    node.receive(from, pkt.data(), pkt.size(), kNow);
    node.tick(kNow + 10'000);  // run the timers the records may have armed
    node.tick(kNow + 20'000);
  }
  return 0;
}
