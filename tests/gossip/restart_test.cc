// SPDX-License-Identifier: Apache-2.0
// Replay after a restart: the replay window lives in memory only, so a node
// that restarts forgets which packets it has seen. Packets captured before
// the restart must still be refused (they were sent before the new node
// started) and must not change its state; packets sent after it started are
// accepted as usual.
#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <vector>

#include "../../gossip/testing.h"
#include "../../gossip/gossip.h"

using namespace uritoken::gossip;

namespace {

constexpr std::uint64_t kT0 = 1'700'000'000'000ULL;

struct Packet {
  Endpoint from, to;
  std::vector<std::uint8_t> bytes;
};

// Every packet goes into one queue; the test delivers them.
struct Port : Transport {
  std::deque<Packet>* queue = nullptr;
  Endpoint self;
  void send(const Endpoint& to, const std::uint8_t* data, std::size_t size) override {
    queue->push_back(Packet{self, to, std::vector<std::uint8_t>(data, data + size)});
  }
};

struct Recorder : Listener {
  std::vector<Revocation> revocations;
  std::vector<SightingReport> sightings;
  std::vector<std::pair<std::uint64_t, int>> members;
  void revocation_changed(const Revocation& r) override { revocations.push_back(r); }
  void owned_sighting(const SightingReport& s) override { sightings.push_back(s); }
  void member_changed(std::uint64_t id, int state) override { members.emplace_back(id, state); }
  bool empty() const { return revocations.empty() && sightings.empty() && members.empty(); }
};

Revocation revocation(std::uint64_t session, std::uint64_t stamp_ms, bool pardon) {
  Revocation r;
  r.token = {1, session};
  r.token_expires = static_cast<std::uint32_t>(kT0 / 1000 + 3600);
  r.stamp_ms = stamp_ms;
  r.pardon = pardon;
  r.origin = 1;
  r.reason = pardon ? uritoken::gossip::VerdictReason::manual : uritoken::gossip::VerdictReason::shared;
  r.networks = 4;
  return r;
}

class GossipRestart : public ::testing::Test {
 protected:
  void SetUp() override {
    a_port.queue = b_port.queue = &queue;
    a_port.self = a_ep;
    b_port.self = b_ep;
    a = std::make_unique<Node>(config(1, a_ep, {b_ep}), a_port, a_seen, kT0, 1);
    b = std::make_unique<Node>(config(2, b_ep, {}), b_port, b_seen, kT0, 2);
    b->start(kT0);
    a->start(kT0);
  }

  Config config(std::uint64_t id, const Endpoint& self, std::vector<Endpoint> seeds) {
    Config c;
    c.node_id = id;
    c.name = "node" + std::to_string(id);
    c.self = self;
    c.seeds = std::move(seeds);
    c.cluster_key = doubles::pattern_key(1, 3);
    return c;
  }

  // Delivers every queued packet at `now`, noting those addressed to B.
  void pump(std::uint64_t now) {
    for (int guard = 0; guard < 100000 && !queue.empty(); ++guard) {
      Packet p = std::move(queue.front());
      queue.pop_front();
      if (p.to == b_ep) captured.push_back(p);
      Node* to = p.to == a_ep ? a.get() : p.to == b_ep ? b.get() : nullptr;
      if (to) to->receive(p.from, p.bytes.data(), p.bytes.size(), now);
    }
  }
  // Ticks both nodes every 10 ms from `from` to `to`, delivering as it goes.
  void run(std::uint64_t from, std::uint64_t to) {
    for (std::uint64_t t = from; t <= to; t += 10) {
      a->tick(t);
      b->tick(t);
      pump(t);
    }
  }
  static std::size_t alive(const Node& n) {
    std::size_t k = 0;
    for (const auto& m : n.members()) k += m.state == kAlive;
    return k;
  }

  Endpoint a_ep = *Endpoint::parse("10.0.0.1:7946");
  Endpoint b_ep = *Endpoint::parse("10.0.0.2:7946");
  std::deque<Packet> queue;
  std::vector<Packet> captured;  // genuine packets sent to B before its restart
  Port a_port, b_port;
  Recorder a_seen, b_seen;
  std::unique_ptr<Node> a, b;
};

TEST_F(GossipRestart, PacketsCapturedBeforeARestartAreRefusedAndChangeNothing) {
  run(kT0, kT0 + 3000);
  ASSERT_EQ(alive(*a), 2u);
  ASSERT_EQ(alive(*b), 2u);
  // State-changing news for B: a revocation, a revocation and its pardon,
  // and a sighting (with two nodes, both own every token).
  a->decide(revocation(0x51, kT0 + 3000, false), kT0 + 3000);
  a->decide(revocation(0x52, kT0 + 3001, false), kT0 + 3001);
  a->decide(revocation(0x52, kT0 + 3002, true), kT0 + 3002);
  SightingReport s;
  s.token = {1, 0x53};
  s.token_expires = static_cast<std::uint32_t>(kT0 / 1000 + 3600);
  s.network[0] = 4;
  s.network[1] = 198;
  s.time_ms = kT0 + 3003;
  a->report_sighting(s, kT0 + 3003);
  run(kT0 + 3010, kT0 + 4000);
  ASSERT_EQ(b->revocations().size(), 2u);
  ASSERT_EQ(b_seen.sightings.size(), 1u);
  ASSERT_GT(captured.size(), 10u);
  const std::size_t n = captured.size();

  // B restarts 10 s later (well within max_packet_age_ms) with the same id,
  // key and address, and an empty journal.
  const std::uint64_t t1 = kT0 + 10000;
  b.reset();
  b_seen = Recorder{};
  queue.clear();
  b = std::make_unique<Node>(config(2, b_ep, {}), b_port, b_seen, t1, 3);
  b->start(t1);
  for (const Packet& p : captured) b->receive(p.from, p.bytes.data(), p.bytes.size(), t1 + 5);

  EXPECT_EQ(b->stats().packets_in, n);
  EXPECT_EQ(b->stats().dropped_before_start, n);
  EXPECT_EQ(b->stats().dropped_replay, 0u);
  EXPECT_EQ(b->revocations().size(), 0u);
  EXPECT_EQ(b->members().size(), 1u) << "a replayed ALIVE was applied";
  EXPECT_TRUE(b_seen.empty()) << b_seen.revocations.size() << " revocations, " << b_seen.sightings.size()
                              << " sightings, " << b_seen.members.size() << " member changes";
  EXPECT_TRUE(queue.empty()) << "B answered a replayed packet";

  // A packet sent after B started is accepted: A gossips a new revocation to
  // B (still alive in its view) ...
  captured.clear();
  a->decide(revocation(0x54, t1 + 10, false), t1 + 10);
  pump(t1 + 11);
  EXPECT_NE(b->revocations().find({1, 0x54}), nullptr);
  // ... and from then on the two converge as usual: B learns A and, by
  // push-pull, the entries it lost with its state.
  run(t1 + 20, t1 + 8000);
  EXPECT_EQ(alive(*b), 2u);
  EXPECT_EQ(b->revocations().size(), a->revocations().size());
  EXPECT_EQ(b->revocations().size(), 3u);
  EXPECT_EQ(b->stats().dropped_before_start, n);  // nothing genuine was refused
  EXPECT_EQ(a->stats().dropped_before_start, 0u);
}

}  // namespace
