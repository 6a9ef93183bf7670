// SPDX-License-Identifier: Apache-2.0
// Real-cluster benchmark (make bench-cluster): 5 httpd nodes with
// mod_uritoken on loopback, gossiping over UDP. Prints
//   cluster revocation ms: median M p99 P
//       from the request that crosses the sharing threshold to the moment
//       the last node refuses the token, over BENCH_REVOCATIONS tokens;
//   catch-up ms after restart: C
//       a node stopped while tokens are revoked, started again: from its
//       port opening to it refusing every one of them;
//   catch-up ms after partition: C
//       (only as root with nft available: the benchmark runs in its own
//       network namespace and drops one node's gossip for 10 s with nftables)
//       from the partition being lifted to that node refusing every token
//       revoked during it.
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../integration/httpd_fixture.h"

using namespace uritoken::itest;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

struct Node {
  std::unique_ptr<Httpd> httpd;
  int gossip_port = 0;
};

class Bench {
 public:
  explicit Bench(int n) {
    char dir[] = "/tmp/uritoken-bench-cluster-XXXXXX";
    dir_ = mkdtemp(dir);
    chmod(dir_.c_str(), 0755);
    std::string key;
    run_command(std::string(BUILD_DIR) + "/uritoken cluster-keygen", &key);
    std::ofstream(dir_ + "/cluster.key") << key;
    chmod((dir_ + "/cluster.key").c_str(), 0600);
    for (int i = 0; i < n; ++i) nodes_.push_back(Node{nullptr, free_udp_port()});
    for (int i = 0; i < n; ++i) {
      HttpdOptions o;
      o.extra_conf = conf_for(i);
      nodes_[static_cast<std::size_t>(i)].httpd = std::make_unique<Httpd>(o);
      nodes_[static_cast<std::size_t>(i)].httpd->write_doc("media/seg.ts", std::string(1024, 'x'));
    }
  }
  ~Bench() {
    nodes_.clear();
    std::string out;
    run_command("rm -rf '" + dir_ + "'", &out);
  }
  bool start() {
    for (auto& n : nodes_) {
      if (!n.httpd->start()) {
        std::fprintf(stderr, "node did not start:\n%s\n", n.httpd->startup_output().c_str());
        return false;
      }
    }
    return true;
  }
  Httpd& node(std::size_t i) { return *nodes_[i].httpd; }
  int gossip_port(std::size_t i) const { return nodes_[i].gossip_port; }
  std::size_t size() const { return nodes_.size(); }
  std::string mint() { return node(0).mint("--client site42 --ttl 3600"); }
  int get(std::size_t i, const std::string& token, const std::string& ip) {
    return http_get(node(i).port(), "/_uk_" + token + "/media/seg.ts", {"X-Forwarded-For: " + ip}).status;
  }
  // Uses `token` from networks 0..count-1 of a per-token address plan.
  void use_from(const std::string& token, int first, int count, unsigned seed) {
    for (int k = first; k < first + count; ++k) {
      get(static_cast<std::size_t>(k) % size(), token, network_address(seed, k));
    }
  }
  static std::string network_address(unsigned seed, int k) {
    return std::to_string(11 + k * 17) + "." + std::to_string(seed % 200 + 1) + "." + std::to_string(seed / 200 % 250) +
           ".9";
  }
  // Shares 20 fresh tokens from 5 networks through every node but `away`
  // (the last one), and waits until those nodes refuse them; returns each
  // token with its address-plan seed (first_seed, first_seed + 1, ...).
  std::vector<std::pair<std::string, unsigned>> revoke_without(std::size_t away, unsigned first_seed) {
    std::vector<std::size_t> others;
    for (std::size_t i = 0; i < size(); ++i) {
      if (i != away) others.push_back(i);
    }
    std::vector<std::pair<std::string, unsigned>> revoked;
    for (unsigned t = 0; t < 20; ++t) {
      const std::string token = mint();
      const unsigned seed = first_seed + t;
      for (std::size_t k = 0; k < 5; ++k)
        get(others[k % others.size()], token, network_address(seed, static_cast<int>(k)));
      revoked.emplace_back(token, seed);
    }
    for (auto& [token, seed] : revoked) wait_refused(token, others, seed, Clock::now());
    return revoked;
  }

  // Polls the given nodes until each refuses `token`; ms until the last, or -1.
  double wait_refused(const std::string& token, const std::vector<std::size_t>& which, unsigned seed,
                      Clock::time_point t0, double timeout_ms = 10000) {
    std::vector<bool> done(size(), false);
    std::size_t left = which.size();
    while (left > 0) {
      if (ms_since(t0) > timeout_ms) return -1;
      for (std::size_t i : which) {
        if (!done[i] && get(i, token, network_address(seed, 0)) == 403) {
          done[i] = true;
          --left;
        }
      }
    }
    return ms_since(t0);
  }

 private:
  std::string conf_for(int i) const {
    std::ostringstream c;
    c << "RemoteIPHeader X-Forwarded-For\nRemoteIPInternalProxy 127.0.0.1\n"
      << "UriTokenSharing Enforce\n"
      << "UriTokenStateDir " << dir_ << "/state" << i << "\n"
      << "UriTokenClusterKeyFile " << dir_ << "/cluster.key\n"
      << "UriTokenNodeName node" << i << "\n"
      << "UriTokenGossipListen 127.0.0.1:" << nodes_[static_cast<std::size_t>(i)].gossip_port << "\n";
    for (std::size_t j = 0; j < nodes_.size(); ++j) {
      if (j != static_cast<std::size_t>(i)) c << "UriTokenGossipPeer 127.0.0.1:" << nodes_[j].gossip_port << "\n";
    }
    return c.str();
  }
  std::string dir_;
  std::vector<Node> nodes_;
};

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const auto idx = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(idx, v.size() - 1)];
}

std::vector<std::size_t> all_nodes(std::size_t n) {
  std::vector<std::size_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

bool nft(const std::string& args) {
  std::string out;
  return run_command("nft " + args + " 2>&1", &out) == 0;
}

// Runs the rest of the benchmark in a fresh network namespace (its own
// loopback), so nftables rules never touch the host's interfaces.
bool enter_private_network() {
  if (geteuid() != 0 || unshare(CLONE_NEWNET) != 0) return false;
  std::string out;
  if (run_command("ip link set lo up 2>&1", &out) != 0) return false;
  return nft("--version >/dev/null");
}

}  // namespace

int main() {
  const int revocations = std::getenv("BENCH_REVOCATIONS") ? std::atoi(std::getenv("BENCH_REVOCATIONS")) : 60;
  const bool private_net = enter_private_network();
  Bench b(5);
  if (!b.start()) return 1;
  std::this_thread::sleep_for(std::chrono::seconds(2));  // membership settles

  // 1. Time to refuse everywhere after the crossing request.
  std::vector<double> times;
  int failures = 0;
  for (int t = 0; t < revocations; ++t) {
    const std::string token = b.mint();
    const unsigned seed = static_cast<unsigned>(t + 1);
    b.use_from(token, 0, 3, seed);  // three networks: not shared yet (threshold: more than 3)
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    const auto t0 = Clock::now();
    b.get(static_cast<std::size_t>(t) % b.size(), token, Bench::network_address(seed, 3));  // the crossing request
    const double ms = b.wait_refused(token, all_nodes(b.size()), seed, t0);
    if (ms < 0) {
      ++failures;
    } else {
      times.push_back(ms);
    }
  }
  if (times.empty()) {
    std::printf("cluster revocation ms: none of %d tokens was revoked everywhere\n", revocations);
    return 1;
  }
  std::printf("cluster revocation ms: median %.1f p99 %.1f\n", percentile(times, 0.5), percentile(times, 0.99));
  std::printf("  (%zu revocations timed on 5 nodes, %d not refused everywhere within 10 s)\n", times.size(), failures);

  // 2. Catch-up after a restart: node 4 is down while 20 tokens are revoked.
  const std::size_t last = b.size() - 1;
  b.node(last).stop();
  auto missed = b.revoke_without(last, 1000);
  if (!b.node(last).start()) return 1;
  const auto back = Clock::now();
  double catch_up = 0;
  for (auto& [token, seed] : missed) catch_up = std::max(catch_up, b.wait_refused(token, {last}, seed, back));
  std::printf("catch-up ms after restart: %.1f\n", catch_up);

  // 3. Catch-up after a 10 s partition (nftables in our own namespace).
  if (!private_net) {
    std::printf("catch-up ms after partition: not measured (needs root, unshare and nft)\n");
    return 0;
  }
  const std::string port = std::to_string(b.gossip_port(last));
  nft("add table inet utbench");
  nft("'add chain inet utbench input { type filter hook input priority 0; }'");
  nft("add rule inet utbench input udp dport " + port + " drop");
  nft("add rule inet utbench input udp sport " + port + " drop");
  const auto cut = Clock::now();
  missed = b.revoke_without(last, 2000);
  int leaked = 0;
  for (auto& [token, seed] : missed) leaked += b.get(last, token, Bench::network_address(seed, 0)) == 403;
  std::this_thread::sleep_for(std::chrono::milliseconds(10000) - (Clock::now() - cut));
  nft("delete table inet utbench");
  const auto healed = Clock::now();
  double partition_catch_up = 0;
  for (auto& [token, seed] : missed) {
    partition_catch_up = std::max(partition_catch_up, b.wait_refused(token, {last}, seed, healed));
  }
  std::printf("catch-up ms after partition: %.1f\n", partition_catch_up);
  std::printf("  (%d of 20 tokens were refused by the cut-off node during the partition: should be 0)\n", leaked);
  return 0;
}
