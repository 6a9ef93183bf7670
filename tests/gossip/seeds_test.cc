// SPDX-License-Identifier: Apache-2.0
// The fuzz seeds in tests/fuzz/gossip-seeds/ are valid payloads of every
// record type (mode byte 1 or 2 first, see tests/fuzz/fuzz_gossip.cc). This
// test checks they are what the codec encodes today and still decode;
// GOSSIP_WRITE_SEEDS=1 rewrites them after a wire change (the test then
// reports itself skipped, naming the files it rewrote).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

#include "../../gossip/wire.h"

using namespace uritoken::gossip;

namespace {

std::vector<std::pair<std::string, std::vector<std::uint8_t>>> seeds() {
  Endpoint ep = *Endpoint::parse("10.0.0.3:7946");
  Revocation r;
  r.token = {4, 0x0102030405060708ULL};
  r.token_expires = 1'700'003'600;
  r.stamp_ms = 1'700'000'000'000ULL;
  r.origin = 3;
  r.reason = uritoken::gossip::VerdictReason::shared;
  r.networks = 6;
  // With evidence: a v4 and a v6 network, the operator's fields.
  Revocation with = r;
  with.stamp_ms += 1;
  Evidence::Network v4, v6;
  v4.prefix_len = 24;
  v4.bytes[0] = 192, v4.bytes[2] = 2;
  v6.v6 = true;
  v6.prefix_len = 48;
  v6.bytes[0] = 0x20, v6.bytes[1] = 0x01, v6.bytes[2] = 0x0d, v6.bytes[3] = 0xb8;
  with.evidence.networks = {v4, v6};
  with.evidence.first_seen_s = 1'700'000'000;
  with.evidence.last_seen_s = 1'700'000'060;
  with.evidence.operator_address = "192.0.2.9";
  with.evidence.user = "alice";
  with.evidence.comment = "shared";
  SightingReport s;
  s.token = r.token;
  s.token_expires = r.token_expires;
  s.network[0] = 6;
  s.network[1] = 0x20;
  s.time_ms = r.stamp_ms;
  wire::PpRoot root;
  root.groups[3] = 77;
  root.count = 1;
  wire::PpGroup group;
  group.group = 3;
  group.buckets[5] = 77;
  Member m{3, "node3", ep, kSuspect, 1'700'000'000'000ULL};
  std::vector<std::pair<std::string, std::vector<wire::Message>>> sets = {
      {"probe", {{wire::Ping{1, 1}}, {wire::PingReq{2, 9, ep}}, {wire::Ack{3}}}},
      {"member", {{m}}},
      {"revoke", {{r}}},
      {"revoke-evidence", {{with}}},
      {"sighting", {{s}}},
      {"pushpull", {{root}, {group}}},
  };
  std::vector<std::pair<std::string, std::vector<std::uint8_t>>> out;
  for (const auto& [name, msgs] : sets) {
    for (std::uint8_t mode : {1, 2}) {
      std::vector<std::uint8_t> bytes{mode};
      for (const auto& msg : msgs) wire::encode(msg, bytes);
      out.emplace_back(name + (mode == 1 ? "-decode" : "-node"), bytes);
    }
  }
  return out;
}

}  // namespace

TEST(GossipFuzzSeeds, CommittedSeedsDecode) {
  // The source tree from this file's path (relative when built by make from
  // the top directory, where the tests run).
  std::string here = __FILE__;
  const std::string dir = here.substr(0, here.rfind("tests/gossip/")) + "tests/fuzz/gossip-seeds/";
  const bool write = std::getenv("GOSSIP_WRITE_SEEDS") != nullptr;
  std::string rewritten;
  for (const auto& [name, bytes] : seeds()) {
    EXPECT_TRUE(wire::decode_payload(bytes.data() + 1, bytes.size() - 1)) << name;
    // The committed file, read before anything is written: comparing bytes
    // just written with themselves would prove nothing.
    std::ifstream in(dir + name, std::ios::binary);
    const std::vector<std::uint8_t> committed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (write) {
      if (!in || committed != bytes) {
        std::ofstream(dir + name, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        rewritten += " " + name;
      }
      continue;
    }
    ASSERT_TRUE(in) << dir + name << " missing: regenerate with GOSSIP_WRITE_SEEDS=1";
    EXPECT_EQ(committed, bytes) << name << " differs from what the codec encodes: regenerate with GOSSIP_WRITE_SEEDS=1";
    ASSERT_FALSE(committed.empty());
    EXPECT_TRUE(wire::decode_payload(committed.data() + 1, committed.size() - 1)) << name;
  }
  // Rewriting is not checking: say so, and what changed.
  if (write) {
    GTEST_SKIP() << "GOSSIP_WRITE_SEEDS: rewrote" << (rewritten.empty() ? " nothing" : rewritten)
                 << "; run again without it to check the committed seeds";
  }
}
