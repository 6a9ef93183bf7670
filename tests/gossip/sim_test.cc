// SPDX-License-Identifier: Apache-2.0
// Many Nodes in one process over the simulated network: dissemination under
// loss, partitions, restarts and catch-up, failure detection, refutation,
// determinism and sighting ownership.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "../../gossip/testing.h"
#include "../../gossip/sim.h"
#include "../../gossip/wire.h"

using namespace uritoken::gossip;
using sim::Simulation;

namespace {

Config base_config() {
  Config c;
  c.cluster_key = doubles::pattern_key(7);
  c.cluster_label = "sim";
  return c;
}

// n nodes joining through the first three; runs until every node sees all
// others alive.
std::unique_ptr<Simulation> cluster(std::size_t n, double loss, std::uint64_t seed) {
  Simulation::Options o;
  o.seed = seed;
  o.loss = loss;
  o.base = base_config();
  auto s = std::make_unique<Simulation>(o);
  s->add_nodes(n);
  return s;
}

std::size_t alive_seen(Simulation& s, std::size_t i) {
  std::size_t n = 0;
  for (const auto& m : s.node(i)->members()) n += m.state == kAlive;
  return n;
}

bool converged(Simulation& s, std::size_t expected_alive) {
  for (std::size_t i = 0; i < s.size(); ++i)
    if (s.up(i) && alive_seen(s, i) != expected_alive) return false;
  return true;
}

Revocation make_rev(std::uint64_t session, std::uint64_t now_ms, std::uint64_t origin) {
  Revocation r;
  r.token = {1, session};
  r.token_expires = static_cast<std::uint32_t>(now_ms / 1000 + 3600);
  r.stamp_ms = now_ms;
  r.origin = origin;
  r.reason = uritoken::gossip::VerdictReason::shared;
  r.networks = 5;
  return r;
}

std::size_t holders(Simulation& s, const TokenRef& t) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (s.up(i) && s.node(i)->revocations().find(t)) ++n;
  return n;
}

std::size_t live(Simulation& s) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size(); ++i) n += s.up(i);
  return n;
}

// Time for a revocation decided on node 0 to reach every live node.
std::uint64_t spread_ms(Simulation& s, std::uint64_t session, std::uint64_t limit) {
  std::uint64_t t0 = s.now();
  s.decide(0, make_rev(session, t0, 1));
  TokenRef t{1, session};
  bool ok = s.run_until_true([&] { return holders(s, t) == live(s); }, limit, 1);
  return ok ? s.now() - t0 : UINT64_MAX;
}

}  // namespace

TEST(GossipSim, ClusterFormsAndNoSeedsMeansReady) {
  auto s = cluster(20, 0.0, 1);
  EXPECT_TRUE(s->run_until_true([&] { return converged(*s, 20); }, 10000));
  for (std::size_t i = 0; i < s->size(); ++i) EXPECT_TRUE(s->node(i)->ready()) << i;
}

struct SpreadCase {
  std::size_t n;
  double loss;
  std::uint64_t limit_ms;
};
class GossipSpread : public ::testing::TestWithParam<SpreadCase> {};

TEST_P(GossipSpread, RevocationReachesEveryLiveNode) {
  auto c = GetParam();
  auto s = cluster(c.n, 0.01, 7);
  ASSERT_TRUE(s->run_until_true([&] { return converged(*s, c.n); }, 20000));
  // Under heavy loss SWIM keeps raising (and refuting) false suspicions, so
  // the cluster forms first; dissemination does not depend on those views.
  s->set_loss(c.loss);
  s->run_for(2000);
  for (std::uint64_t k = 1; k <= 3; ++k) {
    std::uint64_t ms = spread_ms(*s, k, 5000);
    EXPECT_LE(ms, c.limit_ms) << "n=" << c.n << " loss=" << c.loss << " revocation " << k;
    s->run_for(500);
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, GossipSpread,
                         ::testing::Values(SpreadCase{50, 0.10, 250}, SpreadCase{50, 0.30, 1000},
                                           SpreadCase{200, 0.10, 250}, SpreadCase{200, 0.30, 1000}));

TEST(GossipSim, PartitionHealsAndAllConverge) {
  const std::size_t n = 30;
  auto s = cluster(n, 0.05, 11);
  ASSERT_TRUE(s->run_until_true([&] { return converged(*s, n); }, 20000));
  for (std::size_t i = n / 2; i < n; ++i) s->set_group(i, 1);
  s->decide(0, make_rev(100, s->now(), 1));
  s->decide(n - 1, make_rev(200, s->now(), n));
  // Each side declares the other dead (suspicion timeouts grow with loss
  // and Lifeguard's local health, so wait for it rather than a fixed time).
  EXPECT_TRUE(s->run_until_true([&] { return alive_seen(*s, 0) == n / 2 && alive_seen(*s, n - 1) == n / 2; }, 30000));
  EXPECT_EQ(holders(*s, {1, 100}), n / 2);
  EXPECT_EQ(holders(*s, {1, 200}), n / 2);
  for (std::size_t i = 0; i < n; ++i) s->set_group(i, 0);
  EXPECT_TRUE(s->run_until_true([&] { return holders(*s, {1, 100}) == n && holders(*s, {1, 200}) == n; }, 20000));
  EXPECT_TRUE(s->run_until_true([&] { return converged(*s, n); }, 60000));
}

TEST(GossipSim, NewAndRestartedNodesLearnTheFullSetBeforeReady) {
  const std::size_t n = 8;
  auto s = cluster(n, 0.05, 13);
  ASSERT_TRUE(s->run_until_true([&] { return converged(*s, n); }, 20000));
  // 5,000 revocations already held cluster-wide (as from their journals).
  std::vector<Revocation> journal;
  for (std::uint64_t k = 0; k < 5000; ++k) journal.push_back(make_rev(1000 + k, s->now(), 1));
  for (std::size_t i = 0; i < n; ++i) {
    s->crash(i);
    s->restart(i, journal);
  }
  s->run_for(3000);
  // Node 3 goes down; meanwhile 20 more revocations are decided.
  auto before = s->node(3)->revocations().snapshot();
  s->crash(3);
  for (std::uint64_t k = 0; k < 20; ++k) s->decide(k % 2, make_rev(9000 + k, s->now(), 1));
  s->run_for(2000);
  const std::size_t total = s->node(0)->revocations().size();
  ASSERT_EQ(total, 5020u);

  s->restart(3, before);
  std::size_t fresh = s->add_node({0, 1});
  EXPECT_FALSE(s->node(3)->ready());
  EXPECT_FALSE(s->node(fresh)->ready());
  // The first moment each claims ready, it holds the whole set.
  std::size_t size_at_ready[2] = {0, 0};
  bool ok = s->run_until_true(
      [&] {
        std::size_t idx[2] = {3, fresh};
        for (int j = 0; j < 2; ++j)
          if (!size_at_ready[j] && s->node(idx[j])->ready()) size_at_ready[j] = s->node(idx[j])->revocations().size();
        return size_at_ready[0] && size_at_ready[1];
      },
      15000, 1);
  ASSERT_TRUE(ok);
  EXPECT_EQ(size_at_ready[0], total);
  EXPECT_EQ(size_at_ready[1], total);
}

TEST(GossipSim, CrashedNodeIsDeclaredDeadAndOthersStayAlive) {
  const std::size_t n = 20;
  auto s = cluster(n, 0.10, 17);
  ASSERT_TRUE(s->run_until_true([&] { return converged(*s, n); }, 20000));
  s->crash(5);
  auto dead_everywhere = [&] {
    for (std::size_t i = 0; i < n; ++i) {
      if (!s->up(i)) continue;
      for (const auto& m : s->node(i)->members())
        if (m.node_id == 6 && m.state != kDead) return false;
    }
    return true;
  };
  EXPECT_TRUE(s->run_until_true(dead_everywhere, 20000));
  s->run_for(2000);
  // Loss causes false suspicions now and then, but every live node refutes.
  EXPECT_TRUE(s->run_until_true([&] { return converged(*s, n - 1); }, 10000));
}

TEST(GossipSim, SuspectedButAliveNodeRefutes) {
  const std::size_t n = 20;
  auto s = cluster(n, 0.0, 19);
  ASSERT_TRUE(s->run_until_true([&] { return converged(*s, n); }, 20000));
  std::uint64_t inc_before = 0;
  for (const auto& m : s->node(3)->members())
    if (m.node_id == 4) inc_before = m.incarnation;
  std::size_t suspected = 0, declared_dead = 0;
  s->on_member = [&](std::size_t, std::uint64_t id, int state) {
    if (id == 4 && state == kSuspect) ++suspected;
    if (id == 4 && state == kDead) ++declared_dead;
  };
  s->set_group(3, 1);  // unreachable for less than the suspicion timeout
  s->run_for(1800);
  s->set_group(3, 0);
  s->run_for(8000);
  EXPECT_GT(suspected, 0u);
  EXPECT_EQ(declared_dead, 0u);
  EXPECT_GE(s->node(3)->stats().refutations, 1u);
  EXPECT_TRUE(converged(*s, n));
  for (std::size_t i = 0; i < n; ++i)
    for (const auto& m : s->node(i)->members())
      if (m.node_id == 4) {
        EXPECT_GT(m.incarnation, inc_before) << "view of node " << i;
      }
}

namespace {
// A trace of one scenario: who learned what when, and every node's counters.
std::vector<std::uint64_t> run_trace(std::uint64_t seed) {
  auto s = cluster(30, 0.10, seed);
  std::vector<std::uint64_t> trace;
  s->on_revocation = [&](std::size_t i, const Revocation& r) {
    trace.insert(trace.end(), {s->now(), i, r.token.session});
  };
  s->run_for(3000);
  for (std::uint64_t k = 0; k < 5; ++k) {
    s->decide(k * 3, make_rev(k, s->now(), k + 1));
    s->run_for(300);
  }
  s->crash(7);
  s->run_for(5000);
  for (std::size_t i = 0; i < s->size(); ++i)
    if (s->up(i)) trace.insert(trace.end(), {s->node(i)->stats().packets_out, s->node(i)->stats().bytes_in});
  return trace;
}
}  // namespace

// Node 0 (no seeds of its own, so "ready" at once) restarts before anyone
// declares it dead, and has missed revocations decided meanwhile. Its
// incarnation jumped (a restart), so the members rendezvous hashing picks
// welcome it with a push-pull at once, not at the next periodic one.
TEST(GossipSim, RestartBeforeBeingDeclaredDeadIsWelcomedAtOnce) {
  const std::size_t n = 8;
  for (std::uint64_t seed : {41u, 42u, 43u, 44u, 45u}) {
    auto s = cluster(n, 0.0, seed);
    ASSERT_TRUE(s->run_until_true([&] { return converged(*s, n); }, 20000));
    s->run_for(5000);  // a cluster that has run a while: every member settled
    const auto journal = s->node(0)->revocations().snapshot();
    s->crash(0);
    for (std::uint64_t k = 0; k < 10; ++k) s->decide(1 + k % (n - 1), make_rev(500 + k, s->now(), 2 + k % (n - 1)));
    s->run_for(400);
    s->restart(0, journal);
    const std::uint64_t restarted = s->now();
    ASSERT_TRUE(s->run_until_true([&] { return s->node(0)->revocations().size() == 10; }, 5000))
        << "seed " << seed << ": node 0 holds " << s->node(0)->revocations().size() << ", node 1 "
        << s->node(1)->revocations().size();
    EXPECT_LE(s->now() - restarted, 1000u) << "seed " << seed;
  }
}

// Node 3 is cut off for less than the suspicion timeout while revocations
// are decided on the other side. When the partition heals, the members
// that suspect it tell it so at once, and it syncs with the one that told
// it (it refutes, and so knows it was cut off).
TEST(GossipSim, NodeCutOffBrieflyCatchesUpAtTheHeal) {
  const std::size_t n = 8;
  for (std::uint64_t seed : {51u, 52u, 53u, 54u, 55u}) {
    auto s = cluster(n, 0.0, seed);
    ASSERT_TRUE(s->run_until_true([&] { return converged(*s, n); }, 20000));
    s->set_group(3, 1);
    s->run_for(900);
    for (std::uint64_t k = 0; k < 10; ++k) s->decide(k % 3, make_rev(700 + k, s->now(), 1 + k % 3));
    s->run_for(900);
    s->set_group(3, 0);
    const std::uint64_t healed = s->now();
    ASSERT_TRUE(s->run_until_true([&] { return s->node(3)->revocations().size() == 10; }, 5000));
    EXPECT_LE(s->now() - healed, 400u) << "seed " << seed;
  }
}

TEST(GossipSim, SameSeedSameRun) {
  auto a = run_trace(23);
  auto b = run_trace(23);
  EXPECT_GT(a.size(), 30u * 5 * 3);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, run_trace(24));
}

TEST(GossipSim, SightingsOfATokenReachTheSameOwners) {
  const std::size_t n = 40;
  auto s = cluster(n, 0.0, 29);
  ASSERT_TRUE(s->run_until_true([&] { return converged(*s, n); }, 20000));
  std::map<std::uint64_t, std::map<std::size_t, int>> got;  // session -> node -> count
  s->on_sighting = [&](std::size_t i, const SightingReport& r) { ++got[r.token.session][i]; };
  std::set<std::vector<std::uint64_t>> owner_sets;
  for (std::uint64_t k = 0; k < 20; ++k) {
    TokenRef t{2, 5000 + k};
    for (std::size_t i = 0; i < n; ++i) {
      SightingReport r;
      r.token = t;
      r.network[0] = 4;
      r.network[1] = static_cast<std::uint8_t>(i);
      r.time_ms = s->now();
      s->report_sighting(i, r);
    }
    s->run_for(50);
    auto owners = s->node(0)->owners_of(t);
    ASSERT_EQ(owners.size(), 2u);
    owner_sets.insert(owners);
    auto& per_node = got[t.session];
    EXPECT_EQ(per_node.size(), 2u);
    for (std::uint64_t id : owners) EXPECT_EQ(per_node[id - 1], static_cast<int>(n)) << id;
    for (std::size_t i = 1; i < n; ++i) EXPECT_EQ(s->node(i)->owners_of(t), owners);
  }
  EXPECT_GT(owner_sets.size(), 10u);  // tokens spread over the cluster
}

// A token used from networks on both sides of a partition: each side's
// owners see only their side's networks. When the partition heals, the
// members that come alive again get the sightings they own from the other
// side, so the token's owners end up holding every network in the window.
TEST(GossipSim, SightingsFromBothSidesOfAPartitionReachTheOwnersAfterTheHeal) {
  const std::size_t n = 12;
  auto s = cluster(n, 0.0, 31);
  ASSERT_TRUE(s->run_until_true([&] { return converged(*s, n); }, 20000));
  for (std::size_t i = n / 2; i < n; ++i) s->set_group(i, 1);
  s->run_for(6000);  // each side declares the other dead
  ASSERT_EQ(alive_seen(*s, 0), n / 2);
  std::map<std::uint64_t, std::set<int>> networks_at;  // node id -> networks of the token seen
  std::map<std::uint64_t, std::uint64_t> requests_at;  // node id -> bulk counts received
  const TokenRef t{3, 777};
  s->on_sighting = [&](std::size_t i, const SightingReport& r) {
    if (r.token != t) return;
    networks_at[i + 1].insert(r.network[1]);
    requests_at[i + 1] += r.requests;
  };
  for (int net = 0; net < 5; ++net) {  // networks 0, 2, 4 on side 0; 1, 3 on side 1
    SightingReport r;
    r.token = t;
    r.token_expires = static_cast<std::uint32_t>(s->now() / 1000 + 3600);
    r.network[0] = 4;
    r.network[1] = static_cast<std::uint8_t>(net);
    r.time_ms = s->now();
    r.requests = 10;  // each sighting stands for 10 requests (the bulk signal's count)
    s->report_sighting(net % 2 == 0 ? 0 : n - 1, r);
  }
  s->run_for(500);  // every sighting delivered on its side
  for (const auto& [id, nets] : networks_at) EXPECT_LT(nets.size(), 5u) << "node " << id << " saw every network";
  const auto before_heal = requests_at;
  for (std::size_t i = 0; i < n; ++i) s->set_group(i, 0);
  ASSERT_TRUE(s->run_until_true([&] { return converged(*s, n); }, 60000));
  s->run_for(100);
  const auto owners = s->node(0)->owners_of(t);
  ASSERT_EQ(owners.size(), 2u);
  for (std::uint64_t id : owners) EXPECT_EQ(networks_at[id].size(), 5u) << "owner " << id;
  // Re-homed sightings carry no counts: an owner may have had them already,
  // and bulk volume must never be doubled.
  for (std::uint64_t id : owners) EXPECT_EQ(requests_at[id], before_heal.count(id) ? before_heal.at(id) : 0u) << id;
  std::uint64_t rehomed = 0;
  for (std::size_t i = 0; i < n; ++i) rehomed += s->node(i)->stats().sightings_rehomed;
  EXPECT_GT(rehomed, 0u);
}

// A restarted node refuses packets sent before it started. A peer whose clock
// is behind the restarted node's looks, for as long as the skew, as if it sent
// everything before that start; its packets are dropped for that long and no
// longer, and the node still catches up once the skew has passed.
TEST(GossipSim, RestartedNodeCatchesUpWhenPeerClocksAreBehind) {
  const std::size_t n = 10;
  auto s = cluster(n, 0.0, 31);
  ASSERT_TRUE(s->run_until_true([&] { return converged(*s, n); }, 20000));
  for (std::uint64_t k = 0; k < 50; ++k) s->decide(k % n, make_rev(100 + k, s->now(), k % n + 1));
  s->run_for(1000);
  ASSERT_EQ(holders(*s, {1, 149}), n);

  const std::size_t r = 5;  // joins through nodes 0-2
  const std::uint64_t skew = 3000;
  s->crash(r);
  s->run_for(1000);
  s->set_clock_offset(r, static_cast<std::int64_t>(skew));  // every peer's clock is 3 s behind its own
  s->restart(r, {});                                        // no journal: everything has to come from peers
  const std::uint64_t restarted = s->now();
  s->decide(2, make_rev(999, s->now(), 3));

  auto caught_up = [&] {
    return s->node(r)->ready() && alive_seen(*s, r) == n &&
           s->node(r)->revocations().size() == s->node(0)->revocations().size();
  };
  s->run_until(restarted + skew - 100);
  EXPECT_FALSE(s->node(r)->ready());
  EXPECT_GT(s->node(r)->stats().dropped_before_start, 0u);
  ASSERT_TRUE(s->run_until_true(caught_up, 10000)) << "after " << s->now() - restarted << " ms";
  EXPECT_GE(s->now() - restarted, skew);  // it heard nothing from its peers before
  EXPECT_EQ(s->node(r)->revocations().size(), 51u);
  // No drops once the skew has passed, and the others accept r's packets
  // (its clock is ahead of theirs).
  s->run_until(std::max(s->now(), restarted + skew + 200));
  const std::uint64_t dropped = s->node(r)->stats().dropped_before_start;
  s->run_for(3000);
  EXPECT_EQ(s->node(r)->stats().dropped_before_start, dropped);
  for (std::size_t i = 0; i < n; ++i) {
    if (i == r) continue;
    EXPECT_EQ(s->node(i)->stats().dropped_before_start, 0u) << i;
  }
  EXPECT_TRUE(converged(*s, n));
}

// Entries with evidence at every limit are three times the old record size:
// push-pull packs them by their encoded size and a joining node still pulls
// every one, evidence included, in packets no larger than max_packet.
TEST(GossipSim, PushPullCarriesEntriesWithLargeEvidence) {
  const std::size_t n = 4;
  auto s = cluster(n, 0.05, 37);
  ASSERT_TRUE(s->run_until_true([&] { return converged(*s, n); }, 20000));
  std::vector<Revocation> journal;
  for (std::uint64_t k = 0; k < 2000; ++k) {
    Revocation r = make_rev(20000 + k, s->now(), 1);
    Evidence& e = r.evidence;
    for (std::size_t i = 0; i < Evidence::kMaxNetworks; ++i) {
      Evidence::Network net;
      net.v6 = i % 2;
      net.prefix_len = net.v6 ? 48 : 24;
      net.bytes[0] = static_cast<std::uint8_t>(k);
      net.bytes[1] = static_cast<std::uint8_t>(k >> 8);
      net.bytes[2] = static_cast<std::uint8_t>(i);
      e.networks.push_back(net);
    }
    e.first_seen_s = static_cast<std::uint32_t>(s->now() / 1000 - 60);
    e.last_seen_s = static_cast<std::uint32_t>(s->now() / 1000);
    e.operator_address = std::string(Evidence::kMaxOperator, 'o');
    e.user = std::string(Evidence::kMaxUser, 'u');
    e.comment = std::to_string(k) + std::string(Evidence::kMaxComment, 'c');  // cut on the way
    journal.push_back(r);
  }
  // Node 0 alone holds them (from its journal); a new node joins through
  // node 1, which has none: everything reaches it by push-pull.
  s->crash(0);
  s->restart(0, journal);
  s->add_node({1});
  auto all_hold = [&] {
    for (std::size_t i = 0; i < s->size(); ++i)
      if (s->node(i)->revocations().size() != journal.size() || !s->node(i)->ready()) return false;
    return true;
  };
  ASSERT_TRUE(s->run_until_true(all_hold, 30000));
  std::uint64_t sent = 0;
  for (std::size_t i = 0; i < s->size(); ++i) {
    const Stats& st = s->node(i)->stats();
    EXPECT_EQ(st.dropped_oversized, 0u) << i;
    EXPECT_EQ(st.dropped_malformed, 0u) << i;
    sent += st.pushpull_entries_sent;
    for (const Revocation& r : journal) {
      const Revocation* got = s->node(i)->revocations().find(r.token);
      ASSERT_TRUE(got) << i;
      ASSERT_EQ(got->evidence, wire::canonical(r.evidence)) << i;
      ASSERT_EQ(got->evidence.comment.size(), Evidence::kMaxComment);
    }
  }
  // At least one whole copy went by push-pull streams: the members that
  // welcome the restarted node 0 pull everything from it at once, and pass
  // what they learn on by gossip too, so the others get entries either way.
  EXPECT_GE(sent, journal.size());
  // Converged means equal digests: once the streams under way when the last
  // node caught up have run out (a second), nothing is streamed any more.
  auto streamed = [&] {
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < s->size(); ++i) total += s->node(i)->stats().pushpull_entries_sent;
    return total;
  };
  s->run_for(1000);
  const std::uint64_t settled = streamed();
  s->run_for(3000);
  EXPECT_EQ(streamed(), settled);
}

// A rolling upgrade from this version (N) to one with a record type N does
// not know (N+1), one node at a time, each restarted from its journal: every
// revocation keeps reaching every node, decided on either version, and no
// packet is dropped for being new. N+1 is played by this build sending a
// record of type 60 in every packet (Config::test_extra_records).
TEST(GossipSim, RollingUpgradeKeepsRevocationsFlowing) {
  const std::size_t n = 12;
  auto s = cluster(n, 0.01, 17);
  ASSERT_TRUE(s->run_until_true([&] { return converged(*s, n); }, 20000));
  const std::vector<std::uint8_t> newer_record = {60, 0, 4, 'n', 'e', 'x', 't'};
  std::uint64_t malformed = 0, other_version = 0, skipped_by_old = 0, session = 100;
  auto collect = [&](std::size_t i) {
    malformed += s->node(i)->stats().dropped_malformed;
    other_version += s->node(i)->stats().dropped_version;
  };
  // A revocation decided on node `at` reaches every live node within 1 s.
  auto spreads_from = [&](std::size_t at) {
    const Revocation r = make_rev(++session, s->now(), at + 1);
    s->decide(at, r);
    return s->run_until_true([&] { return holders(*s, r.token) == live(*s); }, 1000, 1);
  };
  for (std::size_t i = 0; i < n; ++i) {
    const auto journal = s->node(i)->revocations().snapshot();
    collect(i);
    s->crash(i);
    s->config(i).test_extra_records = newer_record;
    s->run_for(500);  // the upgrade itself
    s->restart(i, journal);
    ASSERT_TRUE(s->run_until_true([&] { return s->node(i)->ready(); }, 5000)) << "node " << i;
    EXPECT_TRUE(spreads_from(i)) << "decided on upgraded node " << i;
    if (i + 1 < n) {
      EXPECT_TRUE(spreads_from(i + 1)) << "decided on old node " << i + 1;
      skipped_by_old = s->node(n - 1)->stats().records_skipped;
    }
    s->run_for(500);
  }
  ASSERT_TRUE(s->run_until_true([&] { return converged(*s, n); }, 20000));
  for (std::size_t i = 0; i < n; ++i) collect(i);
  EXPECT_EQ(malformed, 0u);
  EXPECT_EQ(other_version, 0u);
  EXPECT_GT(skipped_by_old, 0u);  // the last old node did receive the newer records
  EXPECT_EQ(holders(*s, TokenRef{1, session}), n);
  EXPECT_EQ(s->node(0)->revocations().size(), 2 * n - 1);
}
