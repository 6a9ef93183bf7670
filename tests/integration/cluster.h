// SPDX-License-Identifier: Apache-2.0
// A cluster of real httpd nodes with mod_uritoken on loopback, each with
// its sidecar, gossiping over UDP: shared by the cluster tests and the
// status page's browser test. Client networks are simulated through
// mod_remoteip: the test is a trusted proxy on 127.0.0.1 that sends
// X-Forwarded-For.
#pragma once

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "httpd_fixture.h"

namespace uritoken::itest {

using Clock = std::chrono::steady_clock;

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_text(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  chmod(path.c_str(), mode);
}

// Addresses in distinct /24 networks, none of them CGNAT or private.
inline const std::vector<std::string> kFiveNetworks = {"198.51.100.7", "203.0.113.9", "192.0.2.33", "45.33.12.8",
                                                       "151.101.1.5"};

// N nodes sharing a cluster key and the sample key ring, each with its own
// state directory and gossip port, all listing each other as peers.
class Cluster {
 public:
  explicit Cluster(int nodes, const std::string& mode = "Enforce", bool gossip = true)
      : Cluster(std::vector<std::string>(static_cast<std::size_t>(nodes), mode), gossip) {}
  // One UriTokenSharing mode per node; `same_name` gives every node one UriTokenNodeName.
  explicit Cluster(std::vector<std::string> modes, bool gossip = true, bool same_name = false)
      : modes_(std::move(modes)), same_name_(same_name) {
    const int nodes = static_cast<int>(modes_.size());
    char dir[] = "/tmp/uritoken-cluster-XXXXXX";
    dir_ = mkdtemp(dir);
    chmod(dir_.c_str(), 0755);  // the sidecar runs as www-data when we are root
    first_key_ = new_cluster_key();
    for (int i = 0; i < nodes; ++i) write_text(key_file(i), first_key_ + "\n", 0600);
    for (int i = 0; i < nodes; ++i) gossip_ports_.push_back(gossip ? free_udp_port() : 0);
    for (int i = 0; i < nodes; ++i) {
      HttpdOptions o;
      o.extra_conf = conf_for(i);
      nodes_.push_back(std::make_unique<Httpd>(o));
      nodes_.back()->write_doc("media/clip/seg1.ts", std::string(700, 'x'));
      nodes_.back()->write_doc("media/clip/seg2.ts", std::string(900, 'y'));
    }
  }
  ~Cluster() {
    nodes_.clear();
    if (std::getenv("URITOKEN_KEEP_TEST_DIRS") == nullptr) {
      std::string out;
      run_command("rm -rf '" + dir_ + "'", &out);
    }
  }

  // Starts every node and waits until each one's gossip sees all the
  // others alive (UT00018 lines), so sightings reach their owners at once.
  bool start_all(bool wait_for_members = true) {
    std::vector<std::size_t> marks;
    for (auto& n : nodes_) {
      marks.push_back(n->error_log().size());
      if (!n->start()) {
        startup_output_ = n->startup_output();
        return false;
      }
    }
    for (std::size_t i = 0; wait_for_members && i < nodes_.size(); ++i) {
      if (!sees_every_member(static_cast<int>(i), marks[i])) return false;
    }
    return true;
  }
  // Waits until node i's gossip, since its error log had `mark` bytes, has
  // seen every other member alive: until then it owns every token itself
  // (docs/design.md, "Membership first"), e.g. after its sidecar
  // restarted.
  bool sees_every_member(int i, std::size_t mark) {
    const auto k = static_cast<std::size_t>(i);
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (gossip_ports_[k] != 0 && alive_members(nodes_[k]->error_log().substr(mark)) < nodes_.size() - 1) {
      if (Clock::now() > deadline) {
        startup_output_ = "node " + std::to_string(i) + " never saw every member alive:\n" + nodes_[k]->error_log();
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
  }
  static std::size_t alive_members(const std::string& log) {
    std::set<std::string> alive;
    std::istringstream in(log);
    for (std::string line; std::getline(in, line);) {
      const auto at = line.find("UT00018: cluster member ");
      if (at == std::string::npos) continue;
      const std::string rest = line.substr(at + 24);
      const std::string name = rest.substr(0, rest.find(' '));
      if (rest.find(" is alive") != std::string::npos) {
        alive.insert(name);
      } else {
        alive.erase(name);
      }
    }
    return alive.size();
  }
  Httpd& node(int i) { return *nodes_[static_cast<std::size_t>(i)]; }
  int size() const { return static_cast<int>(nodes_.size()); }
  std::string state_dir(int i) const { return dir_ + "/state" + std::to_string(i); }
  const std::string& startup_output() const { return startup_output_; }

  std::string mint(const std::string& extra = "") { return node(0).mint("--client site42 --ttl 600 " + extra); }

  // GET of a tokenized segment on node i, as client `ip`.
  Response get(int i, const std::string& token, const std::string& ip, const std::string& file = "seg1.ts") {
    return http_get(node(i).port(), "/_uk_" + token + "/media/clip/" + file, {"X-Forwarded-For: " + ip});
  }

  // The token's session (16 hex digits), as the UT00010 lines name it.
  std::string session_of(const std::string& token) {
    std::string& session = sessions_[token];
    if (session.empty()) {
      std::string out;
      run_command(std::string(BUILD_DIR) + "/uritoken inspect " + token, &out);
      const auto at = out.find("session: ");
      session = at == std::string::npos ? "(no session: " + out + ")" : out.substr(at + 9, 16);
    }
    return session;
  }

  // True if every node serves `token` (from the network share_widely starts
  // with): checked before a token is shared, so that a later 403 is a change.
  bool served_everywhere(const std::string& token) {
    for (int i = 0; i < size(); ++i) {
      if (get(i, token, "198.51.100.7").status != 200) return false;
    }
    return true;
  }

  // True if node i refuses `token` because it is revoked: a 403 and, written
  // before that answer, the UT00010 line for the token's session. Any other
  // 403 (a bad token, a missing key ring) does not count.
  // `from`: the client address of the probe, itself a sighting: pick one
  // the token was already used from when the places matter.
  bool refuses_as_revoked(int i, const std::string& token, const std::string& from = "198.51.100.7") {
    const std::size_t mark = node(i).error_log().size();
    if (get(i, token, from).status != 403) return false;
    return node(i).error_log().find(
               "UT00010: token refused (revoked): client site42, key 1, session " + session_of(token) + " ", mark) !=
           std::string::npos;
  }

  // Waits until every node refuses `token` as revoked; returns the
  // milliseconds it took, or -1.
  long wait_refused_everywhere(const std::string& token, int timeout_ms = 10000,
                               const std::string& from = "198.51.100.7") {
    const auto start = Clock::now();
    std::vector<bool> refused(nodes_.size(), false);
    while (Clock::now() - start < std::chrono::milliseconds(timeout_ms)) {
      bool all = true;
      for (int i = 0; i < size(); ++i) {
        if (!refused[static_cast<std::size_t>(i)])
          refused[static_cast<std::size_t>(i)] = refuses_as_revoked(i, token, from);
        all = all && refused[static_cast<std::size_t>(i)];
      }
      if (all) {
        return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }

  // Uses `token` from five networks, one request each, round-robin over the nodes.
  void share_widely(const std::string& token) {
    for (std::size_t k = 0; k < kFiveNetworks.size(); ++k) {
      get(static_cast<int>(k % nodes_.size()), token, kFiveNetworks[k]);
    }
  }

  int gossip_port(int i) const { return gossip_ports_[static_cast<std::size_t>(i)]; }

  pid_t sidecar_pid(int i) const {
    return static_cast<pid_t>(std::atol(read_text(state_dir(i) + "/sidecar.pid").c_str()));
  }

  // One request line to node i's sidecar control socket; the raw answer.
  std::string control(int i, const std::string& line) {
    const std::string path = state_dir(i) + "/control.sock";
    const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    std::string out;
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && write(fd, line.data(), line.size()) > 0) {
      char buf[4096];
      for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
    }
    close(fd);
    return out;
  }

  void expect_log(const std::string& pattern) {
    for (auto& n : nodes_) n->expect_log(pattern);
  }

  // A fresh cluster key (64 hex digits), as 'uritoken cluster-keygen' prints it.
  static std::string new_cluster_key() {
    std::string key;
    run_command(std::string(BUILD_DIR) + "/uritoken cluster-keygen", &key);
    return key.substr(0, key.find_first_of("\r\n"));
  }
  const std::string& first_key() const { return first_key_; }
  std::string key_file(int i) const { return dir_ + "/cluster" + std::to_string(i) + ".key"; }
  // Rewrites node i's UriTokenClusterKeyFile (the first key seals) and
  // reloads it by graceful restart.
  bool set_cluster_keys(int i, const std::vector<std::string>& keys) {
    std::string text;
    for (const auto& k : keys) text += k + "\n";
    write_text(key_file(i), text, 0600);
    return node(i).graceful();
  }

  // More configuration for node i alone (before start_all, or then graceful()).
  void add_node_conf(int i, const std::string& conf) {
    extra_[i] += conf;
    node(i).set_extra_conf(conf_for(i));
  }

  // Switches node i to another UriTokenSharing mode by graceful restart.
  bool switch_mode(int i, const std::string& mode) {
    modes_[static_cast<std::size_t>(i)] = mode;
    node(i).set_extra_conf(conf_for(i));
    return node(i).graceful();
  }
  std::string access_log(int i) const { return read_text(dir_ + "/access" + std::to_string(i) + ".log"); }

 private:
  std::string conf_for(int i) const {
    std::ostringstream c;
    if (const auto it = extra_.find(i); it != extra_.end()) c << it->second;
    c << "RemoteIPHeader X-Forwarded-For\n"
      << "RemoteIPInternalProxy 127.0.0.1\n"
      << "LogLevel warn uritoken:notice\n"
      << "LogFormat \"%h %>s status=%{URITOKEN_STATUS}e shadow=%{URITOKEN_SHADOW}e\" sharing\n"
      << "CustomLog " << dir_ << "/access" << i << ".log sharing\n"
      << "<Location /uritoken-status>\n  SetHandler uritoken-status\n  Require ip 127.0.0.1\n</Location>\n"
      << "UriTokenSharing " << modes_[static_cast<std::size_t>(i)] << "\n"
      << "UriTokenStateDir " << state_dir(i) << "\n";
    if (gossip_ports_[static_cast<std::size_t>(i)] != 0) {
      c << "UriTokenClusterKeyFile " << key_file(i) << "\n"
        << "UriTokenNodeName node" << (same_name_ ? 0 : i) << "\n"
        << "UriTokenGossipListen 127.0.0.1:" << gossip_ports_[static_cast<std::size_t>(i)] << "\n";
      for (std::size_t j = 0; j < gossip_ports_.size(); ++j) {
        if (j != static_cast<std::size_t>(i)) c << "UriTokenGossipPeer 127.0.0.1:" << gossip_ports_[j] << "\n";
      }
    }
    return c.str();
  }

  std::vector<std::string> modes_;
  std::map<int, std::string> extra_;  // add_node_conf
  bool same_name_ = false;
  std::string dir_;
  std::string first_key_;
  std::vector<int> gossip_ports_;
  std::vector<std::unique_ptr<Httpd>> nodes_;
  std::string startup_output_;
  std::map<std::string, std::string> sessions_;
};

// After a cluster test: no child crashed, no warning nobody expected, no
// minted token in any node's error log.
inline void expect_nodes_clean(Cluster& c, const std::vector<std::string>& tokens) {
  for (int i = 0; i < c.size(); ++i) {
    EXPECT_EQ(c.node(i).crash_notice(), "") << "node " << i << " child crashed";
    EXPECT_EQ(c.node(i).unexpected_log_lines(), "") << "node " << i << ": warnings or errors not expected";
    for (const auto& t : tokens) {
      EXPECT_EQ(c.node(i).error_log().find(t), std::string::npos) << "token in error log of node " << i;
    }
  }
}

// Waits until node i answers `token` with `status` (as a client from a
// network it has seen); true if it did within the timeout.
inline bool wait_status(Cluster& c, int i, const std::string& token, int status, int timeout_ms = 5000) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < deadline) {
    if (c.get(i, token, "198.51.100.7").status == status) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace uritoken::itest
