// SPDX-License-Identifier: Apache-2.0
// The drop report: dropped datagrams by sender address and kind, as the
// sidecar logs them once a minute (UT00021); bounded, and reset by each take.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "../../gossip/testing.h"
#include "../../gossip/gossip.h"
#include "../../gossip/wire.h"

using namespace uritoken::gossip;

namespace {

constexpr std::uint64_t kNow = 1'700'000'000'000ULL;

struct NullListener : Listener {
  void revocation_changed(const Revocation&) override {}
  void owned_sighting(const SightingReport&) override {}
};
using doubles::NullTransport;

std::size_t index(DropKind k) { return static_cast<std::size_t>(k); }

class GossipDrops : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg.node_id = 1;
    cfg.self = *Endpoint::parse("127.0.0.1:7001");
    cfg.cluster_key = doubles::pattern_key();
    node = std::make_unique<Node>(cfg, transport, listener, kNow, 1);
    node->start(kNow);
  }
  std::vector<std::uint8_t> packet(std::uint64_t counter, std::uint64_t time_ms, const wire::Key& key,
                                   const std::string& label) {
    std::vector<std::uint8_t> payload;
    wire::encode({wire::Ack{1}}, payload);
    return wire::seal(key, label, wire::Header{2, counter, time_ms}, payload.data(), payload.size());
  }
  std::vector<std::uint8_t> good(std::uint64_t counter) {
    return packet(counter, kNow, cfg.cluster_key, cfg.cluster_label);
  }
  void feed(const std::string& from, const std::vector<std::uint8_t>& p) {
    node->receive(*Endpoint::parse(from), p.data(), p.size(), kNow);
  }
  static const DropReport::Sender* sender(const DropReport& r, const std::string& from) {
    for (const auto& s : r.senders)
      if (s.from == *Endpoint::parse(from)) return &s;
    return nullptr;
  }

  Config cfg;
  NullTransport transport;
  NullListener listener;
  std::unique_ptr<Node> node;
};

TEST_F(GossipDrops, EachKindIsReportedPerSenderAndMatchesTheStats) {
  const std::string a = "10.0.0.7:7946", b = "10.0.0.8:7946", c = "[2001:db8::9]:7946", d = "10.0.0.9:7946";
  wire::Key other_key = cfg.cluster_key;
  other_key[0] ^= 1;
  feed(a, std::vector<std::uint8_t>(10, 0xab));  // junk
  for (int i = 0; i < 3; ++i) feed(a, packet(100 + i, kNow, other_key, cfg.cluster_label));
  auto version = good(110);
  version[0] = wire::kVersion + 1;
  feed(a, version);
  feed(b, packet(120, kNow, cfg.cluster_key, "other-cluster"));
  feed(b, packet(121, kNow, cfg.cluster_key, "other-cluster"));
  feed(c, std::vector<std::uint8_t>(cfg.max_packet + 1, 0));
  feed(b, packet(130, kNow - cfg.max_packet_age_ms - 1, cfg.cluster_key, cfg.cluster_label));
  feed(b, packet(131, kNow - 1, cfg.cluster_key, cfg.cluster_label));  // before the node started
  feed(d, good(140));                                                  // accepted: not in the report
  feed(c, good(140));                                                  // the same counter again from another address
  feed(d, good(141));

  DropReport r = node->take_drop_report(kNow + 60000);
  EXPECT_EQ(r.since_ms, kNow);
  EXPECT_EQ(r.until_ms, kNow + 60000);
  ASSERT_EQ(r.senders.size(), 3u);  // a, b, c in order of their first drop; d sent only good packets
  EXPECT_EQ(r.senders[0].from, *Endpoint::parse(a));
  EXPECT_EQ(r.senders[1].from, *Endpoint::parse(b));
  EXPECT_EQ(r.senders[2].from, *Endpoint::parse(c));
  const auto* sa = sender(r, a);
  const auto* sb = sender(r, b);
  const auto* sc = sender(r, c);
  EXPECT_EQ(sa->count[index(DropKind::kMalformed)], 1u);
  EXPECT_EQ(sa->count[index(DropKind::kVersion)], 1u);
  EXPECT_EQ(sa->count[index(DropKind::kAuth)], 3u);
  EXPECT_EQ(sb->count[index(DropKind::kLabel)], 2u);
  EXPECT_EQ(sb->count[index(DropKind::kStale)], 1u);
  EXPECT_EQ(sb->count[index(DropKind::kBeforeStart)], 1u);
  EXPECT_EQ(sc->count[index(DropKind::kOversized)], 1u);
  EXPECT_EQ(sc->count[index(DropKind::kReplay)], 1u);
  EXPECT_EQ(r.total(), 11u);
  EXPECT_EQ(r.others, (std::array<std::uint64_t, kDropKinds>{}));

  const Stats& s = node->stats();
  EXPECT_EQ(r.total(DropKind::kOversized), s.dropped_oversized);
  EXPECT_EQ(r.total(DropKind::kMalformed), s.dropped_malformed);
  EXPECT_EQ(r.total(DropKind::kLabel), s.dropped_label);
  EXPECT_EQ(r.total(DropKind::kAuth), s.dropped_auth);
  EXPECT_EQ(r.total(DropKind::kStale), s.dropped_stale);
  EXPECT_EQ(r.total(DropKind::kBeforeStart), s.dropped_before_start);
  EXPECT_EQ(r.total(DropKind::kReplay), s.dropped_replay);
  EXPECT_EQ(s.packets_in, 13u);
}

TEST_F(GossipDrops, AtMostSixteenAddressesTheRestSummed) {
  for (int i = 0; i < 20; ++i) feed("10.1.0." + std::to_string(i) + ":7946", {1, 2, 3});
  feed("10.1.0.19:7946", {1, 2, 3});
  feed("10.1.0.3:7946", {1, 2, 3});
  DropReport r = node->take_drop_report(kNow + 1000);
  ASSERT_EQ(r.senders.size(), DropReport::kMaxSenders);
  for (std::size_t i = 0; i < r.senders.size(); ++i)
    EXPECT_EQ(r.senders[i].from.to_string(), "10.1.0." + std::to_string(i) + ":7946");
  EXPECT_EQ(sender(r, "10.1.0.3:7946")->count[index(DropKind::kMalformed)], 2u);
  EXPECT_EQ(r.others[index(DropKind::kMalformed)], 5u);  // .16 to .19, and .19 again
  EXPECT_EQ(r.total(), 22u);
}

TEST_F(GossipDrops, TakingStartsAFreshReport) {
  feed("10.0.0.7:7946", {1});
  EXPECT_EQ(node->take_drop_report(kNow + 60000).total(), 1u);
  DropReport empty = node->take_drop_report(kNow + 120000);
  EXPECT_TRUE(empty.empty());
  EXPECT_TRUE(empty.senders.empty());
  EXPECT_EQ(empty.since_ms, kNow + 60000);
  feed("10.0.0.9:7946", good(5));  // only an accepted packet: still nothing
  EXPECT_TRUE(node->take_drop_report(kNow + 180000).empty());
  feed("10.0.0.8:7946", {2});
  DropReport r = node->take_drop_report(kNow + 240000);
  ASSERT_EQ(r.senders.size(), 1u);
  EXPECT_EQ(r.senders[0].from.to_string(), "10.0.0.8:7946");
  EXPECT_EQ(r.since_ms, kNow + 180000);
}

TEST(GossipDropReport, DescribesKindsByCountWithHintsAndSenders) {
  std::array<const char*, kDropKinds> hints{};
  hints[index(DropKind::kAuth)] = "wrong key?";
  hints[index(DropKind::kLabel)] = "name differs";
  DropReport r;
  r.since_ms = kNow;
  r.until_ms = kNow + 60000;
  EXPECT_EQ(r.describe(hints), "dropped 0 packets in the last 60 s");
  r.senders.resize(2);
  r.senders[0].from = *Endpoint::parse("10.0.0.8:7946");
  r.senders[0].count[index(DropKind::kLabel)] = 7;
  r.senders[1].from = *Endpoint::parse("10.0.0.7:7946");
  r.senders[1].count[index(DropKind::kAuth)] = 30;
  EXPECT_EQ(r.describe(hints),
            "dropped 37 packets in the last 60 s: 30 failed authentication (wrong key?) from 10.0.0.7:7946; "
            "7 wrong cluster name (name differs) from 10.0.0.8:7946");

  // Several senders of a kind: each with its count, the biggest four by
  // name, the others summed.
  DropReport many;
  many.since_ms = kNow;
  many.until_ms = kNow + 1400;
  for (int i = 0; i < 6; ++i) {
    DropReport::Sender s;
    s.from = *Endpoint::parse("10.0.0." + std::to_string(i + 1) + ":7946");
    s.count[index(DropKind::kMalformed)] = static_cast<std::uint64_t>(i + 1);
    many.senders.push_back(s);
  }
  many.others[index(DropKind::kMalformed)] = 4;
  many.others[index(DropKind::kReplay)] = 1;
  EXPECT_EQ(many.describe(hints),
            "dropped 26 packets in the last 1 s: 25 malformed from 10.0.0.6:7946 (6), 10.0.0.5:7946 (5), "
            "10.0.0.4:7946 (4), 10.0.0.3:7946 (3), other addresses (7); 1 replayed from other addresses");

  DropReport one;
  one.senders.resize(1);
  one.senders[0].from = *Endpoint::parse("[::1]:9");
  one.senders[0].count[index(DropKind::kBeforeStart)] = 1;
  EXPECT_EQ(one.describe(hints), "dropped 1 packet in the last 1 s: 1 sent before this node started from [::1]:9");
}

}  // namespace
