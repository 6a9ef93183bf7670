// SPDX-License-Identifier: Apache-2.0
// Cluster benchmark on the deterministic simulation (gossip/sim.h); not in
// CI. `make build/gossip_sim_bench && build/gossip_sim_bench [nodes]`, or
// `make bench-cluster`. Fixed seeds: the same binary prints the same figures.
// `nodes` (default 1,000) is only for quicker trial runs. SIM_SEED=N
// changes the seed of the 1,000-node cells (default 42): one seed cannot
// tell a regression from another draw in the noisy 30% loss cell.
//
// Lines a script parses:
//   sim nodes=1000 loss=L%: p999 X ms, all Y ms
//   sim dcs=3: p999 X ms, all Y ms   (3 data centres of 100 nodes: 1-5 ms inside, 30-40 ms and 10% loss between)
//     X: time from decide() on one node until 99.9% of the live nodes hold
//     the revocation; Y: until all of them do. One-way delay 1-5 ms uniform;
//     median over 7 revocations. The cluster forms once at 0% loss; each
//     cell then sets loss L on every packet (probes, membership gossip,
//     push-pull, revocations), runs 3 simulated s at that loss so SWIM's
//     false suspicions and refutations are in full swing, and only then
//     measures, with loss L still applied to every packet. All 1,000 nodes
//     are up throughout, so "all" means all 1,000.
//   gossip bytes/s/node nodes=100: A nodes=1000: B
//     average bytes sent per node per second over 20 simulated seconds
//     (after a 10 s warm-up) with 50 fresh tokens/s per node, each seen from
//     1 or 2 networks (so 75 sightings/s per node, each routed to its 2
//     owners), plus all membership and anti-entropy traffic (1% loss).
// Free format: memory of a Node holding 100,000 revocations, and the time a
// new node takes to pull them all before ready().
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <random>

#include "../../gossip/testing.h"
#include "../../gossip/sim.h"

using namespace uritoken::gossip;
using sim::Simulation;

namespace {

Config base_config() {
  Config c;
  c.cluster_key = doubles::pattern_key(1, 1);
  c.cluster_label = "bench";
  return c;
}

std::unique_ptr<Simulation> make_cluster(std::size_t n, double loss, std::uint64_t seed,
                                         std::function<int(std::size_t)> data_centre = {}) {
  Simulation::Options o;
  o.seed = seed;
  o.loss = loss;
  o.base = base_config();
  if (data_centre) {
    o.data_centre = std::move(data_centre);
    o.wan_loss = 0.10;  // 30-40 ms one way between sites, 10% lost; 1-5 ms inside
  }
  auto s = std::make_unique<Simulation>(o);
  s->add_nodes(n);
  // Until every node sees every other alive (or 60 s).
  s->run_until_true(
      [&] {
        for (std::size_t i = 0; i < n; ++i) {
          std::size_t alive = 0;
          for (const auto& m : s->node(i)->members()) alive += m.state == kAlive;
          if (alive != n) return false;
        }
        return true;
      },
      60000, 100);
  return s;
}

Revocation make_rev(std::uint64_t session, std::uint64_t now_ms) {
  Revocation r;
  r.token = {1, session};
  r.token_expires = static_cast<std::uint32_t>(now_ms / 1000 + 3600);
  r.stamp_ms = now_ms;
  r.origin = 1;
  r.reason = VerdictReason::shared;
  return r;
}

template <class T>
T median(std::vector<T> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void dissemination(Simulation& s, double loss, std::uint64_t first_session, const char* label = nullptr) {
  const std::size_t n = s.size();
  s.set_loss(loss);
  s.run_for(3000);  // let membership settle at this loss rate
  auto churn = [&] {
    Stats t{};
    for (std::size_t i = 0; i < n; ++i) {
      const Stats& x = s.node(i)->stats();
      t.suspicions += x.suspicions;
      t.refutations += x.refutations;
      t.deaths += x.deaths;
    }
    return t;
  };
  const Stats churn0 = churn();
  const std::uint64_t cell0 = s.now();
  const std::size_t p999_count = static_cast<std::size_t>(std::ceil(0.999 * n));
  std::map<std::uint64_t, std::size_t> holders;
  std::map<std::uint64_t, std::uint64_t> t_p999, t_all;
  std::uint64_t t0 = 0;
  s.on_revocation = [&](std::size_t, const Revocation& r) {
    std::size_t c = ++holders[r.token.session];
    if (c == p999_count) t_p999[r.token.session] = s.now() - t0;
    if (c == n) t_all[r.token.session] = s.now() - t0;
  };
  std::vector<std::uint64_t> p999, all;
  std::mt19937_64 rng(first_session);
  for (std::uint64_t k = 0; k < 7; ++k) {
    std::uint64_t session = first_session + k;
    t0 = s.now();
    s.decide(rng() % n, make_rev(session, t0));
    s.run_until_true([&] { return t_all.count(session) > 0; }, 10000, 5);
    p999.push_back(t_p999.count(session) ? t_p999[session] : 99999);
    all.push_back(t_all.count(session) ? t_all[session] : 99999);
    s.run_for(1000);
  }
  s.on_revocation = nullptr;
  if (label != nullptr) {
    std::printf("%s: p999 %llu ms, all %llu ms\n", label, static_cast<unsigned long long>(median(p999)),
                static_cast<unsigned long long>(median(all)));
  } else {
    std::printf("sim nodes=%zu loss=%d%%: p999 %llu ms, all %llu ms\n", n, static_cast<int>(std::lround(loss * 100)),
                static_cast<unsigned long long>(median(p999)), static_cast<unsigned long long>(median(all)));
  }
  // Free format: how much SWIM churned while this cell was measured.
  const Stats churn1 = churn();
  double secs = static_cast<double>(s.now() - cell0) / 1000.0, health = 0;
  for (std::size_t i = 0; i < n; ++i) health += s.node(i)->health();
  std::printf(
      "  membership during the measurement (%.1f s): %.0f suspicions/s, %.0f refutations/s, "
      "%llu member deaths summed over all views, mean local health score %.2f\n",
      secs, static_cast<double>(churn1.suspicions - churn0.suspicions) / secs,
      static_cast<double>(churn1.refutations - churn0.refutations) / secs,
      static_cast<unsigned long long>(churn1.deaths - churn0.deaths), health / static_cast<double>(n));
  std::fflush(stdout);
}

double bytes_per_node_second(std::size_t n) {
  auto s = make_cluster(n, 0.01, 5);
  s->run_for(10000);  // past the join traffic
  auto sent = [&] {
    std::uint64_t b = 0;
    for (std::size_t i = 0; i < n; ++i) b += s->node(i)->stats().bytes_out;
    return b;
  };
  std::uint64_t before = sent();
  const std::uint64_t start = s->now(), seconds = 20;
  std::mt19937_64 rng(99);
  std::uint64_t session = 1'000'000;
  // Every millisecond, the nodes whose turn it is (each every 20 ms) see a
  // fresh token from one network, half the time from a second one too.
  std::function<void()> step = [&] {
    std::uint64_t ms = s->now() - start;
    for (std::size_t i = ms % 20; i < n; i += 20) {
      SightingReport r;
      r.token = {1, ++session};
      r.token_expires = static_cast<std::uint32_t>(s->now() / 1000 + 600);
      r.network[0] = 4;
      r.network[1] = static_cast<std::uint8_t>(rng());
      r.time_ms = s->now();
      s->report_sighting(i, r);
      if (rng() % 2) {
        r.network[2] = 1;
        s->report_sighting(i, r);
      }
    }
    if (ms + 1 < seconds * 1000) s->at(s->now() + 1, step);
  };
  s->at(start, step);
  s->run_until(start + seconds * 1000);
  return static_cast<double>(sent() - before) / static_cast<double>(n * seconds);
}

using Discard = doubles::NullTransport;
using Quiet = doubles::NullListener;

void memory_and_catch_up() {
  std::vector<Revocation> entries;
  std::mt19937_64 rng(3);
  for (std::uint64_t k = 0; k < 100000; ++k) {
    Revocation r = make_rev(rng(), sim::kEpochMs);
    r.token.key_id = static_cast<std::uint16_t>(rng() % 4);
    entries.push_back(r);
  }
  Discard t;
  Quiet l;
  Config c = base_config();
  c.node_id = 1;
  std::size_t heap0 = mallinfo2().uordblks;
  auto node = std::make_unique<Node>(c, t, l, sim::kEpochMs, 1);
  node->load(entries);
  std::size_t heap1 = mallinfo2().uordblks;
  std::printf(
      "memory: a Node holding %zu revocations uses %.1f MB of heap (%.0f bytes/entry; "
      "sizeof(Revocation) = %zu)\n",
      node->revocations().size(), (heap1 - heap0) / 1e6, static_cast<double>(heap1 - heap0) / 100000.0,
      sizeof(Revocation));
  node.reset();

  for (double loss : {0.0, 0.10}) {
    Simulation::Options o;
    o.seed = 8;
    o.loss = loss;
    o.base = base_config();
    Simulation s(o);
    for (std::size_t i = 0; i < 3; ++i)
      s.add_node(i ? std::vector<std::size_t>{0} : std::vector<std::size_t>{}, entries);
    s.run_for(3000);
    std::size_t fresh = s.add_node({0, 1, 2});
    std::uint64_t t0 = s.now();
    s.run_until_true([&] { return s.node(fresh)->ready(); }, 60000, 5);
    std::printf(
        "catch-up: a new node pulls %zu revocations and is ready after %llu ms "
        "(loss %d%%)\n",
        s.node(fresh)->revocations().size(), static_cast<unsigned long long>(s.now() - t0),
        static_cast<int>(loss * 100));
  }
}

}  // namespace

void data_centres() {
  // Three data centres of 100 nodes (the nodes of each joined in turn).
  auto s = make_cluster(300, 0.0, 43, [](std::size_t i) { return static_cast<int>(i % 3); });
  dissemination(*s, 0.0, 400, "sim dcs=3");
}

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "dcs") {  // just the data-centre cell
    data_centres();
    return 0;
  }
  const std::size_t nodes = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1000;
  auto wall = std::chrono::steady_clock::now();
  {
    const char* seed = std::getenv("SIM_SEED");
    auto s = make_cluster(nodes, 0.0, seed != nullptr ? std::strtoull(seed, nullptr, 10) : 42);
    dissemination(*s, 0.0, 100);
    dissemination(*s, 0.10, 200);
    dissemination(*s, 0.30, 300);
  }
  data_centres();
  double a = bytes_per_node_second(100);
  double b = bytes_per_node_second(nodes);
  std::printf("gossip bytes/s/node nodes=100: %.0f nodes=%zu: %.0f\n", a, nodes, b);
  std::fflush(stdout);
  memory_and_catch_up();
  std::printf("(bench wall time %.1f s)\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - wall).count());
}
