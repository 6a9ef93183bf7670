// The sidecar: one process per httpd instance, forked by the parent after
// configuration, running as the httpd user. Its single thread
//   - drains the sightings ring that workers fill,
//   - classifies each client address into a network (proxy/CGNAT aware),
//   - hands the sighting to the gossip node, which routes it to the nodes
//     that own the token (possibly this one),
//   - runs the sharing rule on the sightings it owns and, on a verdict,
//     decides a revocation that gossip spreads to every node,
//   - writes every revocation change into shared memory and the journal.
#include <httpd.h>
#include <ap_listen.h>
#include <http_log.h>
#include <mpm_common.h>

#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <sodium.h>

#include "../../gossip/gossip.h"
#include "../../gossip/journal.h"
#include "../../gossip/udp_transport.h"
#include "../core/mix.h"
#include "../core/sharing.h"
#include "cluster.h"

APLOG_USE_MODULE(uritoken);

namespace uritoken::httpd {
namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_stop_signal(int) { g_stop = 1; }

std::uint64_t wall_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

// A node without peers still runs the sharing rule on its own sightings.
class NoNetwork : public gossip::Transport {
 public:
  void send(const gossip::Endpoint&, const std::uint8_t*, std::size_t) override {}
};

gossip::SightingReport to_report(const Sighting& s, const NetworkId& net, bool shared_network) {
  gossip::SightingReport r;
  r.token.key_id = s.key_id;
  r.token.session = s.session;
  r.token_expires = s.token_expires;
  r.network[0] = net.v6 ? 6 : 4;
  std::memcpy(r.network + 1, net.bytes, net.v6 ? 16 : 4);
  r.shared_network = shared_network;
  r.client_hash = s.client_hash;
  r.time_ms = s.time_ms;
  return r;
}

NetworkId network_of_report(const gossip::SightingReport& r) {
  NetworkId net;
  net.v6 = r.network[0] == 6;
  std::memcpy(net.bytes, r.network + 1, net.v6 ? 16 : 4);
  return net;
}

// A token seen again from the same network within a second is not
// reported again: a player fetching a segment every few seconds, or a page
// with fifty thumbnails, would otherwise send a sighting per request. Once
// a second still repeats it often enough to survive a lost packet.
class RecentSightings {
 public:
  static constexpr std::uint64_t kRepeatMs = 1000;
  bool fresh(std::uint64_t key, std::uint64_t now) {
    Slot& slot = slots_[key & (slots_.size() - 1)];
    if (slot.key == key && now - slot.time < kRepeatMs) return false;
    slot = Slot{key, now};
    return true;
  }

 private:
  struct Slot {
    std::uint64_t key = 0, time = 0;
  };
  std::vector<Slot> slots_ = std::vector<Slot>(1 << 16);  // 1 MiB; a collision only costs a repeat
};

// The likely cause of each kind of dropped gossip packet, for the drop report.
constexpr std::array<const char*, gossip::kDropKinds> kDropHints = {  // in gossip::DropKind order
    "larger than any gossip packet: not from a cluster member",
    "not a gossip packet: a scan, another program, or a peer with an incompatible version",
    "UriTokenClusterName differs",
    "wrong UriTokenClusterKeyFile, or forged",
    "the sender's clock is more than 30 s off, or replayed",
    "replayed, or the sender's clock is behind ours",
    "replayed, or duplicated by the network",
};

// Dropped gossip packets are summed up in one line at most this often.
// URITOKEN_TEST_DROP_REPORT_MS shortens it for the integration tests only;
// deliberately not a directive nor documented.
std::uint64_t drop_report_interval_ms() {
  constexpr std::uint64_t kDefault = 60000;
  const char* v = std::getenv("URITOKEN_TEST_DROP_REPORT_MS");
  if (v == nullptr) return kDefault;
  const unsigned long ms = std::strtoul(v, nullptr, 10);
  return ms >= 100 && ms <= kDefault ? ms : kDefault;
}

SharingPolicy policy_of(const ClusterConfig& c) {
  SharingPolicy p;
  p.max_networks = c.max_networks;
  p.window_s = c.window_seconds;
  p.concurrent_s = c.concurrent_seconds;
  p.shared_ranges = c.shared_networks;
  p.default_shared_ranges = c.default_shared_networks;
  p.max_sessions = c.tracked_sessions;
  return p;
}

class Sidecar : public gossip::Listener {
 public:
  Sidecar(server_rec* s, const ClusterConfig& conf, SharedState& shared)
      : server_(s), conf_(conf), shared_(shared), policy_(policy_of(conf)), classifier_(policy_), detector_(policy_) {}

  bool start() {
    // A sidecar killed mid-write (kill -9) may leave a slot half-written.
    shared_.repair();
    // Before the socket exists: the Node refuses packets sent before this
    // time (replays from before a restart), and none sent to this socket is.
    const std::uint64_t boot_ms = wall_ms();
    std::string error;
    gossip::Config gc;
    gc.name = conf_.node_name.empty() ? (conf_.gossip_listen.empty() ? std::string("local") : conf_.gossip_listen)
                                      : conf_.node_name;
    unsigned char id[8];
    crypto_generichash(id, sizeof id, reinterpret_cast<const unsigned char*>(gc.name.data()), gc.name.size(),
                       nullptr, 0);
    std::memcpy(&gc.node_id, id, sizeof id);
    node_id_ = gc.node_id;
    gc.cluster_key = conf_.cluster_key;
    gc.cluster_label = conf_.cluster_name;
    if (!conf_.gossip_listen.empty()) {
      const auto self = gossip::Endpoint::parse(conf_.gossip_listen);
      if (!self) return fail("UriTokenGossipListen " + conf_.gossip_listen + " is not ADDRESS:PORT");
      gc.self = *self;
      for (const std::string& peer : conf_.peers) {
        const auto ep = gossip::Endpoint::parse(peer);
        if (!ep) return fail("UriTokenGossipPeer " + peer + " is not ADDRESS:PORT");
        if (!(*ep == *self)) gc.seeds.push_back(*ep);
      }
      udp_ = gossip::UdpTransport::bind(gc.self, &error);
      if (!udp_) return fail("cannot bind gossip socket " + conf_.gossip_listen + ": " + error);
    }

    // The journal is ours: load it, compact it, append from now on.
    const std::string path = journal_path(conf_);
    auto entries = gossip::Journal::load(path, &error);
    if (!error.empty()) log(APLOG_WARNING, "UT00014: revocation journal: " + error);
    node_ = std::make_unique<gossip::Node>(gc, udp_ ? static_cast<gossip::Transport&>(*udp_) : no_network_, *this,
                                           boot_ms, randombytes_random() | (std::uint64_t{randombytes_random()} << 32));
    node_->load(entries);
    error.clear();
    if (!journal_.rewrite(path, node_->revocations(), &error) || !journal_.open_append(path, &error)) {
      return fail("UriTokenStateDir: cannot write the revocation journal: " + error);
    }
    // Entries the parent did not load (e.g. a journal written meanwhile).
    node_->revocations().for_each([this](const gossip::Revocation& r) { publish(r); });
    node_->start(wall_ms());
    drop_report_ms_ = drop_report_interval_ms();
    next_drop_report_ = boot_ms + drop_report_ms_;
    log(APLOG_NOTICE, "UT00011: sharing sidecar running as node '" + gc.name + "' with " +
                          std::to_string(gc.seeds.size()) + " peers, " + std::to_string(entries.size()) +
                          " journal entries");
    return true;
  }

  void run() {
    std::vector<Sighting> batch(1024);
    std::uint64_t next_housekeeping = 0;
    while (!g_stop) {
      const std::uint64_t now = wall_ms();
      // Workers never wait for us; draining often keeps the ring short.
      for (std::size_t n; (n = shared_.drain(batch.data(), batch.size())) > 0;) {
        for (std::size_t i = 0; i < n; ++i) report(batch[i], now);
        if (n < batch.size()) break;
      }
      node_->tick(now);
      flush_journal(now);
      shared_.set_sidecar_heartbeat(now);
      shared_.set_sidecar_ready(node_->ready());
      if (now >= next_drop_report_) {
        report_drops(now);
        next_drop_report_ = now + drop_report_ms_;
      }
      if (now >= next_housekeeping) {
        // expire() walks the whole detector table: every few seconds is plenty.
        detector_.expire(now);
        shared_.sweep(static_cast<std::uint32_t>(now / 1000));
        next_housekeeping = now + 5000;
      }
      if (getppid() == 1) break;  // the parent is gone (kill -9): so are we
      wait_for_packets(now);
    }
    flush_journal(0);
    report_drops(wall_ms());  // what the last interval saw, before a restart hides it
    node_->leave(wall_ms());
  }

  // gossip::Listener
  void revocation_changed(const gossip::Revocation& winner) override {
    publish(winner);
    unjournaled_.push_back(winner);
    if (winner.pardon) detector_.forget(winner.token.key_id, winner.token.session);
    // Fresh decisions are logged one by one; a catch-up of old entries
    // from peers (thousands at once) is summed up in one line.
    if (wall_ms() - winner.stamp_ms > kFreshDecisionMs) {
      ++caught_up_;
      return;
    }
    char session[17];
    std::snprintf(session, sizeof session, "%016llx", static_cast<unsigned long long>(winner.token.session));
    log(APLOG_NOTICE, std::string("UT00013: token ") +
                          (winner.pardon ? "pardoned" : winner.shadow ? "would be revoked (shadow mode)" : "revoked") +
                          ": key " + std::to_string(winner.token.key_id) + ", session " + session + ", " +
                          std::to_string(winner.networks) + " networks, decided by " + member_name(winner.origin));
  }

  void member_changed(std::uint64_t node_id, int state) override {
    if (!node_) return;
    std::string who = member_name(node_id);
    for (const gossip::Member& m : node_->members()) {
      if (m.node_id == node_id) who += " (" + m.endpoint.to_string() + ")";
    }
    const char* what = state == gossip::kAlive ? "alive" : state == gossip::kSuspect ? "suspect" : "dead";
    log(state == gossip::kAlive ? APLOG_NOTICE : APLOG_WARNING, "UT00018: cluster member " + who + " is " + what);
  }

  void owned_sighting(const gossip::SightingReport& r) override {
    const SharingVerdict v = detector_.observe(r.token.key_id, r.token.session, r.token_expires,
                                               network_of_report(r), r.shared_network, r.time_ms);
    // Judge again after a pardon (which cleared the detector's history),
    // but do not re-decide a revocation already in force.
    if (!v.shared || node_->revocations().in_force(r.token, static_cast<std::uint32_t>(r.time_ms / 1000))) return;
    gossip::Revocation rev;
    rev.token = r.token;
    rev.token_expires = r.token_expires;
    rev.stamp_ms = wall_ms();
    rev.shadow = conf_.mode == SharingMode::shadow;
    rev.origin = node_id_;
    rev.reason = 1;
    rev.networks = static_cast<std::uint8_t>(std::min(v.networks, 255u));
    node_->decide(rev, rev.stamp_ms);
  }

 private:
  bool fail(const std::string& why) {
    log(APLOG_CRIT, "UT00015: sharing sidecar cannot start: " + why);
    return false;
  }

  std::string member_name(std::uint64_t node_id) const {
    if (node_) {
      for (const gossip::Member& m : node_->members()) {
        if (m.node_id == node_id) return m.name;
      }
    }
    return "node " + std::to_string(node_id);
  }

  void log(int level, const std::string& text) { ap_log_error(APLOG_MARK, level, 0, server_, "%s", text.c_str()); }

  void report(const Sighting& s, std::uint64_t now) {
    const NetworkId net = classifier_.network_of(s.address);
    if (!recent_.fresh(splitmix64(s.session ^ splitmix64(s.key_id) ^ net.hash()), now)) return;
    bool shared_network = classifier_.in_shared_range(s.address);
    shared_network = classifier_.observe(net, s.session, s.client_hash, now) || shared_network;
    node_->report_sighting(to_report(s, net, shared_network), now);
  }

  // Appends what changed since the last flush, with one fdatasync, at most
  // every kJournalFlushMs (a crash loses at most that much, which peers
  // give back at the next push-pull); now == 0 flushes at once.
  void flush_journal(std::uint64_t now) {
    if (unjournaled_.empty() || (now != 0 && now < next_journal_flush_)) return;
    if (!journal_.append(unjournaled_)) log(APLOG_ERR, "UT00014: cannot append to the revocation journal");
    unjournaled_.clear();
    next_journal_flush_ = now + kJournalFlushMs;
    if (caught_up_ > 0) {
      log(APLOG_NOTICE, "UT00013: " + std::to_string(caught_up_) + " earlier revocation changes learnt from peers");
      caught_up_ = 0;
    }
  }

  // A peer with the wrong key or cluster name looks like a dead one, and an
  // attack leaves no other trace: one line per interval, only if anything
  // was dropped.
  void report_drops(std::uint64_t now) {
    const gossip::DropReport r = node_->take_drop_report(now);
    if (!r.empty()) log(APLOG_WARNING, "UT00021: gossip " + r.describe(kDropHints));
  }

  // The winning entry for a token, as workers see it.
  void publish(const gossip::Revocation& r) {
    const RevocationRecord rec = table_record(r);
    if (!shared_.set_revocation(rec) && rec.state != RevocationState::none) {
      log(APLOG_ERR, "UT00016: revocation table full; raise UriTokenRevocationSlots");
    }
  }

  void wait_for_packets(std::uint64_t now) {
    // Wake for the next gossip timer, but at least every 2 ms to drain the ring.
    const std::uint64_t deadline = node_->next_deadline_ms();
    const int timeout = deadline <= now ? 0 : static_cast<int>(std::min<std::uint64_t>(deadline - now, 2));
    if (!udp_) {
      poll(nullptr, 0, timeout);
      return;
    }
    pollfd pfd{udp_->fd(), POLLIN, 0};
    if (poll(&pfd, 1, timeout) > 0) {
      udp_->receive_all([this](const gossip::Endpoint& from, const std::uint8_t* data, std::size_t size) {
        node_->receive(from, data, size, wall_ms());
      });
    }
  }

  server_rec* server_;
  const ClusterConfig& conf_;
  SharedState& shared_;
  SharingPolicy policy_;
  NetworkClassifier classifier_;
  SharingDetector detector_;
  static constexpr std::uint64_t kFreshDecisionMs = 60000;
  static constexpr std::uint64_t kJournalFlushMs = 20;
  std::vector<gossip::Revocation> unjournaled_;
  std::uint64_t next_journal_flush_ = 0;
  std::size_t caught_up_ = 0;
  std::uint64_t drop_report_ms_ = 60000;
  std::uint64_t next_drop_report_ = 0;
  RecentSightings recent_;
  NoNetwork no_network_;
  std::unique_ptr<gossip::UdpTransport> udp_;
  std::unique_ptr<gossip::Node> node_;
  gossip::Journal journal_;
  std::uint64_t node_id_ = 0;
};

void write_pid_file(const ClusterConfig& conf) {
  const std::string path = sidecar_pid_path(conf);
  if (FILE* f = std::fopen(path.c_str(), "w")) {
    std::fprintf(f, "%ld\n", static_cast<long>(getpid()));
    std::fclose(f);
  }
}

}  // namespace

void run_sidecar(server_rec* s, const ClusterConfig& conf, SharedState& shared) {
  // Not a web server: leave the listening sockets to the workers.
  ap_close_listeners();
  // httpd's parent signal handlers and mask are not ours.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGHUP, on_stop_signal);
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGUSR1, on_stop_signal);
  std::signal(SIGWINCH, on_stop_signal);
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGCHLD, SIG_DFL);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  prctl(PR_SET_NAME, "uritoken-sidecar");
  // Workers serving requests come first; the sidecar's work can wait a
  // few milliseconds (and its ring absorbs bursts).
  if (setpriority(PRIO_PROCESS, 0, 5) != 0) {
    ap_log_error(APLOG_MARK, APLOG_DEBUG, errno, s, "sharing sidecar keeps its priority");
  }

  apr_pool_t* pool = nullptr;
  apr_pool_create(&pool, nullptr);
  if (ap_run_drop_privileges(pool, s) != 0) {
    ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "UT00015: sharing sidecar cannot drop privileges");
    _exit(APEXIT_CHILDFATAL);
  }
  write_pid_file(conf);
  int code = 0;
  try {
    Sidecar sidecar(s, conf, shared);
    if (sidecar.start()) {
      sidecar.run();
    } else {
      code = 1;
      sleep(5);  // the parent restarts us: keep a lasting problem to one log line per 5 s
    }
  } catch (const std::exception& e) {
    ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "UT00015: sharing sidecar stopped: %s", e.what());
    code = 1;
  }
  // _exit: the parent's atexit handlers and pool cleanups are not ours to run.
  _exit(code);
}

}  // namespace uritoken::httpd
