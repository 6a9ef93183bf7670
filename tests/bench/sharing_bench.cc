// SPDX-License-Identifier: Apache-2.0
// make bench-sharing: a seeded model of how honest viewers' and sharers'
// addresses behave, replayed through the real decision path (three
// simulated nodes, each a cluster::SharingService over its own shared
// state and the workers' repeat filter, gossiping in virtual time), with
// the location database and with the fallback places. Prints, per honest
// behaviour, how many sessions were revoked (the target is none), and per
// sharing pattern how many were revoked on every node and how soon after
// strangers first used a third place (the first request from a third
// distinct AS among them).
//
// The addresses are real public networks of real autonomous systems, taken
// from the database itself (Debian's libloc-database); nothing is sent
// anywhere: the simulation is in memory. Arguments: [sessions per
// behaviour (20)] [seed (1)] [database path].
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../gossip/service_cluster.h"
#include "viewer_model.h"

using namespace uritoken;
using namespace uritoken::cluster;
using namespace uritoken::cluster::simtest;

namespace {

using namespace uritoken::bench;

struct Outcome {
  std::size_t sessions = 0, revoked = 0, everywhere = 0, bulk = 0;  // bulk: of the revoked, for bulk use
  std::vector<double> latency_s;  // after the strangers' third place, revoked on every node
};

Outcome run(const Behaviour& b, const World& w, std::size_t sessions, std::uint64_t seed,
            std::shared_ptr<const LocationDatabase> db, const std::vector<IpPrefix>& relay_ranges) {
  ServiceCluster c(3, seed, 0.0, {}, [&](ServiceConfig& sc) {
    sc.location = db;
    sc.policy.shared_ranges = relay_ranges;  // Apple's egress list, as UriTokenSharedNetworkFile loads it
    sc.policy.places_from_database = db != nullptr;
    sc.policy.bulk.enabled = true;  // UriTokenBulk Enforce with the default UriTokenBulkLimit
  });
  c.sim->run_until_true([&] { return all_alive(c); }, 20000);
  std::mt19937_64 rng(seed * 7919 + 17);
  std::vector<Event> ev;
  std::map<std::uint64_t, std::uint64_t> third;  // session -> strangers' third place
  const std::uint64_t t0 = c.sim->now() + kSec;
  for (std::size_t k = 0; k < sessions; ++k) {
    const std::uint64_t s = 1000 + k;
    const std::uint64_t start = t0 + (rng() % 120) * kSec;
    third[s] = b.script(w, rng, s, start, ev);
  }
  std::stable_sort(ev.begin(), ev.end(), [](const Event& a, const Event& z) { return a.t < z.t; });
  std::map<std::uint64_t, std::uint64_t> revoked_at;
  std::size_t next = 0;
  auto check = [&] {
    for (std::size_t k = 0; k < sessions; ++k) {
      const std::uint64_t s = 1000 + k;
      if (revoked_at.count(s) == 0 && c.revoked_count(s) == c.up_count()) revoked_at[s] = c.sim->now();
    }
  };
  std::uint64_t last_check = 0;
  while (next < ev.size()) {
    const std::uint64_t t = ev[next].t;
    if (t > c.sim->now()) c.sim->run_for(t - c.sim->now());
    for (; next < ev.size() && ev[next].t <= c.sim->now(); ++next) {
      c.use(splitmix64(ev[next].t ^ ev[next].session) % 3, ev[next].session, ev[next].ip, ev[next].bytes);
    }
    if (c.sim->now() - last_check >= 500) {
      check();
      last_check = c.sim->now();
    }
  }
  c.sim->run_for(2000);
  check();
  Outcome o;
  o.sessions = sessions;
  for (std::size_t k = 0; k < sessions; ++k) {
    const std::uint64_t s = 1000 + k;
    if (c.revoked_count(s) > 0) ++o.revoked;
    for (std::size_t i = 0; i < c.services.size(); ++i) {
      if (c.states[i]->state->lookup(1, s, static_cast<std::uint32_t>(c.sim->now() / 1000)) == RevocationState::bulk) {
        ++o.bulk;
        break;
      }
    }
    const auto it = revoked_at.find(s);
    if (it == revoked_at.end()) continue;
    ++o.everywhere;
    if (third[s] != 0) o.latency_s.push_back(it->second > third[s] ? (it->second - third[s]) / 1000.0 : 0.0);
  }
  return o;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * (v.size() - 1) + 0.5))];
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t sessions = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 20;
  const std::uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1;
  const std::string path = argc > 3 ? argv[3] : kDebianLocationDatabase;
  std::string error;
  std::shared_ptr<const LocationDatabase> db = LocationDatabase::open(path, &error);
  if (!db) {
    std::fprintf(stderr, "bench-sharing: %s (install libloc-database)\n", error.c_str());
    return 2;
  }
  World w;
  std::vector<IpPrefix> relay;
  if (!build_world(path, w, relay, &error)) {
    std::fprintf(stderr, "bench-sharing: %s\n", error.c_str());
    return 2;
  }
  for (const auto& [role, a] : w.as) {
    std::printf("  %-10s AS%-6u %-40s %zu IPv4 and %zu IPv6 networks\n", role.c_str(), a.asn, a.name.c_str(),
                a.v4.size(), a.v6.size());
  }
  std::printf(
      "bench-sharing: %zu sessions per behaviour, seed %llu, 3 simulated nodes, database %s (%s), "
      "%zu stranger ASes\n\n",
      sessions, static_cast<unsigned long long>(seed), path.c_str(),
      describe_age(db->created_at(), std::time(nullptr)).c_str(), w.strangers.size());
  std::printf("%-48s %14s %14s %14s\n", "honest behaviour", "revoked (db)", "revoked (fb)", "of them bulk");
  std::size_t false_db = 0, false_fb = 0, false_bulk = 0, honest = 0;
  const auto all = behaviours();
  std::vector<std::string> sharing_rows;
  for (const Behaviour& b : all) {
    const Outcome with = run(b, w, sessions, seed, db, relay);
    const Outcome without = run(b, w, sessions, seed, nullptr, relay);
    if (!b.sharing) {
      false_db += with.revoked;
      false_fb += without.revoked;
      false_bulk += with.bulk + without.bulk;
      honest += sessions;
      std::printf("%-48s %8zu of %-3zu %8zu of %-3zu %14zu\n", b.name, with.revoked, with.sessions, without.revoked,
                  without.sessions, with.bulk + without.bulk);
      continue;
    }
    char row[256];
    std::snprintf(row, sizeof row, "%-48s %5zu/%-3zu  p50 %5.1f  p99 %5.1f    %5zu/%-3zu  p50 %5.1f  p99 %5.1f", b.name,
                  with.everywhere, with.sessions, percentile(with.latency_s, 0.5), percentile(with.latency_s, 0.99),
                  without.everywhere, without.sessions, percentile(without.latency_s, 0.5),
                  percentile(without.latency_s, 0.99));
    sharing_rows.push_back(row);
  }
  std::printf("%-48s %8zu of %-3zu %8zu of %-3zu %14zu\n\n", "false revocations, all honest behaviours", false_db,
              honest, false_fb, honest, false_bulk);
  std::printf("%-48s %-31s %s\n", "sharing pattern", "revoked everywhere (db), s", "(fallback), s");
  for (const auto& r : sharing_rows) std::printf("%s\n", r.c_str());
  std::printf(
      "\n(latency: seconds from the strangers' first request from a third AS other than the owner's, or "
      "the scraper's first request, to revoked on all 3 nodes, checked every 0.5 s of virtual time; -1: none. "
      "UriTokenBulk on with the default UriTokenBulkLimit: requests=600 bytes=500M a minute over two "
      "minutes)\n");
  return 0;
}
