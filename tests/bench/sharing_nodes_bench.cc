// SPDX-License-Identifier: Apache-2.0
// make bench-sharing, second part: the model of tests/bench/viewer_model.h
// replayed against three real httpd nodes with mod_uritoken on loopback,
// every request a real HTTP GET whose client address arrives as
// X-Forwarded-For through mod_remoteip (RemoteIPInternalProxy 127.0.0.1),
// as behind a load balancer. Time is compressed (10x by default): the
// window and the concurrency time are divided by the same factor
// (UriTokenSharingWindow 60, UriTokenSharingConcurrency 12); the workers'
// 5 s repeat filter is not, so a network's last use is known to 5 real
// seconds. The bulk signal is off (its two-minute window is fixed; the
// simulated part measures it).
//
// Prints per honest behaviour the sessions revoked anywhere (target 0), and
// per sharing pattern the sessions revoked on all three nodes and how long
// after the strangers' third place node 1's status page lists them (real
// seconds, polled every 0.25 s).
// Nothing leaves loopback: the addresses are only header values.
// Arguments: [sessions per behaviour (3)] [seed (1)] [compression (10)].
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../integration/cluster.h"
#include "viewer_model.h"

using namespace uritoken;
using namespace uritoken::bench;
using namespace uritoken::itest;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * (v.size() - 1) + 0.5))];
}

// The sessions (16 hex digits) node i lists as blocked.
std::set<std::string> blocked_on(Cluster& c, int i) {
  std::set<std::string> out;
  const std::string body = http_get(c.node(i).port(), "/uritoken-status?json").body;
  const std::size_t start = body.find("\"blocked\":["), end = body.find("\"pardoned\":[");
  if (start == std::string::npos || end == std::string::npos) return out;
  for (std::size_t at = body.find("\"session\":\"", start); at != std::string::npos && at < end;
       at = body.find("\"session\":\"", at + 1)) {
    out.insert(body.substr(at + 11, 16));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t sessions = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 3;
  const std::uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1;
  const std::uint64_t squeeze = argc > 3 ? std::max(1ul, std::strtoul(argv[3], nullptr, 10)) : 10;
  World w;
  std::vector<IpPrefix> relay;
  std::string error;
  if (!build_world(cluster::kDebianLocationDatabase, w, relay, &error)) {
    std::fprintf(stderr, "bench-sharing (nodes): %s (install libloc-database)\n", error.c_str());
    return 2;
  }
  Cluster c(3);
  std::string ranges;
  for (const IpPrefix& p : relay) ranges += format_ip_prefix(p) + "\n";
  const std::string relay_file = c.node(0).root() + "/relay-egress.txt";  // Apple's list, as an admin installs it
  std::ofstream(relay_file) << ranges;
  for (int i = 0; i < 3; ++i) {
    c.add_node_conf(i, "UriTokenSharingWindow " + std::to_string(600 / squeeze) + "\nUriTokenSharingConcurrency " +
                           std::to_string(120 / squeeze) + "\nUriTokenSharedNetworkFile " + relay_file + "\n");
  }
  if (!c.start_all()) {
    std::fprintf(stderr, "bench-sharing (nodes): %s\n", c.startup_output().c_str());
    return 2;
  }

  // The scripts, all sessions of all behaviours at once, as one day's traffic.
  struct Run {
    const Behaviour* b;
    std::vector<std::uint64_t> sessions;
    std::map<std::uint64_t, std::uint64_t> third;  // session -> model time of the strangers' third place
  };
  const auto all = behaviours();
  std::vector<Run> runs;
  std::vector<Event> ev;
  std::mt19937_64 rng(seed * 7919 + 17);
  const std::uint64_t t0 = 1'000'000;
  std::uint64_t next_session = 1000;
  for (const Behaviour& b : all) {
    const std::string name = b.name;
    if (name.find("1000 strangers") != std::string::npos || name.find("bulk") != std::string::npos) continue;
    Run r{&b, {}, {}};
    for (std::size_t k = 0; k < sessions; ++k) {
      const std::uint64_t s = next_session++;
      r.sessions.push_back(s);
      r.third[s] = b.script(w, rng, s, t0 + (rng() % 120) * 1000, ev);
    }
    runs.push_back(std::move(r));
  }
  std::stable_sort(ev.begin(), ev.end(), [](const Event& a, const Event& z) { return a.t < z.t; });
  std::map<std::uint64_t, std::string> token_of;  // every session an event names (campus: others' too)
  for (const Event& e : ev) {
    if (token_of.count(e.session) == 0) token_of[e.session] = c.mint();
  }
  std::map<std::string, std::uint64_t> session_by_hex;
  for (const auto& [s, token] : token_of) session_by_hex[c.session_of(token)] = s;
  std::printf(
      "bench-sharing (nodes): 3 httpd nodes on loopback, %zu sessions per behaviour, seed %llu, time / %llu, "
      "%zu requests with X-Forwarded-For, %zu tokens\n",
      sessions, static_cast<unsigned long long>(seed), static_cast<unsigned long long>(squeeze), ev.size(),
      token_of.size());
  std::fflush(stdout);

  // Replay on schedule; a poller notes when each session is first blocked.
  const auto start = Clock::now();
  auto real_of = [&](std::uint64_t t) { return static_cast<double>(t - t0) / 1000.0 / static_cast<double>(squeeze); };
  std::atomic<bool> done{false};
  std::mutex m;
  std::map<std::uint64_t, double> blocked_at;  // session -> real s since start
  std::thread poller([&] {
    while (!done) {
      const auto seen = blocked_on(c, 1);
      const double now = seconds_since(start);
      std::lock_guard<std::mutex> lock(m);
      for (const auto& hex : seen) {
        if (const auto it = session_by_hex.find(hex); it != session_by_hex.end()) blocked_at.emplace(it->second, now);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  });
  double worst_lag = 0;
  std::size_t failed = 0;
  for (const Event& e : ev) {
    const double due = real_of(e.t);
    const double lag = seconds_since(start) - due;
    if (lag < 0) std::this_thread::sleep_for(std::chrono::duration<double>(-lag));
    worst_lag = std::max(worst_lag, lag);
    const int node = static_cast<int>(splitmix64(e.t ^ e.session) % 3);
    const int status = c.get(node, token_of[e.session], e.ip).status;
    if (status != 200 && status != 403) ++failed;
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  done = true;
  poller.join();
  std::set<std::uint64_t> anywhere, everywhere;
  {
    std::map<std::uint64_t, int> nodes;
    for (int i = 0; i < 3; ++i) {
      for (const auto& hex : blocked_on(c, i)) {
        if (const auto it = session_by_hex.find(hex); it != session_by_hex.end()) ++nodes[it->second];
      }
    }
    for (const auto& [s, n] : nodes) {
      anywhere.insert(s);
      if (n == 3) everywhere.insert(s);
    }
  }

  std::printf("replayed in %.0f s (schedule lag at most %.1f s), %zu requests answered neither 200 nor 403\n\n",
              seconds_since(start), worst_lag, failed);
  std::printf("%-48s %s\n", "honest behaviour", "revoked");
  std::size_t honest = 0, false_revoked = 0;
  std::vector<std::string> rows;
  for (const Run& r : runs) {
    std::size_t revoked = 0, all_nodes = 0;
    std::vector<double> latency;
    for (std::uint64_t s : r.sessions) {
      revoked += anywhere.count(s);
      all_nodes += everywhere.count(s);
      const auto it = blocked_at.find(s);
      if (r.b->sharing && it != blocked_at.end() && r.third.at(s) != 0) {
        latency.push_back(std::max(0.0, it->second - real_of(r.third.at(s))));
      }
    }
    if (!r.b->sharing) {
      honest += r.sessions.size();
      false_revoked += revoked;
      std::printf("%-48s %3zu of %zu\n", r.b->name, revoked, r.sessions.size());
      continue;
    }
    char row[200];
    std::snprintf(row, sizeof row, "%-48s %3zu/%zu   p50 %5.1f  max %5.1f", r.b->name, all_nodes, r.sessions.size(),
                  percentile(latency, 0.5), percentile(latency, 1.0));
    rows.push_back(row);
  }
  std::printf("%-48s %3zu of %zu\n\n", "false revocations, all honest behaviours", false_revoked, honest);
  std::printf("%-48s %s\n", "sharing pattern", "revoked on all 3 nodes; s from the third place to listed blocked");
  for (const auto& r : rows) std::printf("%s\n", r.c_str());
  std::printf(
      "\n(listed blocked: on node 1's status page, polled every 0.25 s; all 3 nodes checked after the replay. One "
      "friend: 2 places, never revoked by design; the re-streamer's time counts from its 3rd request)\n");
  return 0;
}
