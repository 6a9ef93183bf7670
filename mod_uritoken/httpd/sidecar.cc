// SPDX-License-Identifier: Apache-2.0
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <sodium.h>

#include "../../gossip/gossip.h"
#include "../../gossip/udp_transport.h"
#include "../cluster/sharing_service.h"
#include "../cluster/control.h"
#include "../cluster/node_identity.h"
#include "../cluster/sharing.h"
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

// The likely cause of each kind of dropped gossip packet, for the drop report.
constexpr std::array<const char*, gossip::kDropKinds> kDropHints = {
    // in gossip::DropKind order
    "larger than any gossip packet: not from a cluster member",
    "not a gossip packet: a scan or another program",
    "UriTokenClusterName differs",
    "wrong UriTokenClusterKeyFile, or forged",
    "the sender's clock is more than 30 s off, or replayed",
    "replayed, or the sender's clock is behind ours",
    "replayed, or duplicated by the network",
    "the sender runs a mod_uritoken with another gossip wire version: upgrade it; rolling upgrades work from wire "
    "version 2 on",
};

// When the sidecar drains the sightings ring (see wait_for_packets): news
// (a token seen from a network for the first time) wakes it at once, but
// not sooner than kNewsGapMs after the last drain that found news;
// refreshes wait for a batch, at most kBatchWaitMs.
constexpr std::uint64_t kNewsGapMs = 10, kBatchWaitMs = 1000;

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
  p.max_places = c.max_places;
  p.window_s = c.window_seconds;
  p.concurrent_s = c.concurrent_seconds;
  p.shared_ranges = c.shared_networks;
  p.shared_ranges.insert(p.shared_ranges.end(), c.shared_file_ranges.begin(), c.shared_file_ranges.end());
  p.places_from_database = c.location != nullptr;
  p.default_shared_ranges = c.default_shared_networks;
  p.max_sessions = c.tracked_sessions;
  p.bulk.enabled = c.bulk_mode != SharingMode::off;
  p.bulk.requests_per_min = c.bulk_requests_per_min;
  p.bulk.bytes_per_min = c.bulk_bytes_per_min;
  for (const ClientSharing& cs : c.client_sharing) {
    p.client_limits.push_back({sharing_client_hash(cs.client), cs.places,
                               cs.window_seconds != 0 ? cs.window_seconds : c.window_seconds, cs.client});
  }
  for (const ClientSharing& cs : c.subscriber_sharing) {
    p.subscriber_limits.push_back({sharing_client_hash(cs.client), cs.places,
                                   cs.window_seconds != 0 ? cs.window_seconds : c.window_seconds, cs.client});
  }
  return p;
}

// This node's gossip id: random, made once and kept in the state
// directory, so it is unique even where configurations are copied and
// stable across restarts. Written to a temporary file and renamed, so a
// crash never leaves half an id.
std::optional<std::uint64_t> load_node_id(const std::string& path, std::string* error) {
  if (FILE* f = std::fopen(path.c_str(), "r")) {
    unsigned long long id = 0;
    const int got = std::fscanf(f, "%16llx", &id);
    std::fclose(f);
    if (got == 1 && id != 0) return static_cast<std::uint64_t>(id);
  }
  std::uint64_t id = 0;
  while (id == 0) randombytes_buf(&id, sizeof id);
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  bool ok = f != nullptr && std::fprintf(f, "%016llx\n", static_cast<unsigned long long>(id)) > 0 &&
            std::fflush(f) == 0 && fsync(fileno(f)) == 0;
  if (f != nullptr) ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    *error = "cannot write " + path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  return id;
}

// The process around the decision path (cluster::SharingService): the
// node id, the gossip socket, the loop that waits for packets and timers.
class Sidecar {
 public:
  Sidecar(server_rec* s, const ClusterConfig& conf, SharedState& shared, int doorbell_fd)
      : server_(s),
        conf_(conf),
        shared_(shared),
        doorbell_fd_(doorbell_fd),
        service_(service_config(s, conf), shared,
                 [this](cluster::LogLevel level, const std::string& text) { log(level, text); }) {}

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
    // The id, not the name, tells members apart: names are labels an admin
    // may copy from node to node.
    const auto id = load_node_id(conf_.state_dir + "/node-id", &error);
    if (!id) return fail("UriTokenStateDir: " + error);
    gc.node_id = *id;
    // The node's identity key names its zone and certificate (docs/https.md).
    const std::string identity_path = conf_.state_dir + "/" + cluster::kNodeKeyFile;
    const auto identity = cluster::load_node_identity(identity_path, true, &error);
    if (!identity) return fail("UriTokenStateDir: " + error);
    gc.identity = identity->hash;
    if (identity->created) {
      log(cluster::LogLevel::notice, "UT00065: this node's identity key was made: " + identity_path +
                                         " (keep it with the node), node hash " + identity->hash +
                                         ": its names and certificate are *." + identity->hash + ".<zone>");
    }
    if (!conf_.cluster_keys.empty()) {  // the first seals, every one opens
      gc.cluster_key = conf_.cluster_keys.front();
      gc.other_keys.assign(conf_.cluster_keys.begin() + 1, conf_.cluster_keys.end());
    }
    gc.cluster_label = conf_.cluster_name;
    gc.rehome_window_ms = conf_.window_seconds * 1000;
    gc.policy_digest = policy_of(conf_).digest();
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

    const auto entries = service_.load_journal(nullptr);
    node_ = std::make_unique<gossip::Node>(gc, udp_ ? static_cast<gossip::Transport&>(*udp_) : no_network_, service_,
                                           boot_ms, randombytes_random() | (std::uint64_t{randombytes_random()} << 32));
    service_.attach(node_.get());
    node_->load(entries);
    error.clear();
    if (!service_.open_journal(node_->revocations(), &error)) {
      return fail("UriTokenStateDir: cannot write the revocation journal: " + error);
    }
    // Entries the parent did not load (e.g. a journal written meanwhile).
    service_.publish_all();
    if (!open_control_socket(&error)) return fail("UriTokenStateDir: " + error);
    node_->start(wall_ms());
    drop_report_ms_ = drop_report_interval_ms();
    next_drop_report_ = boot_ms + drop_report_ms_;
    log(cluster::LogLevel::notice, "UT00024: sharing sidecar running as node '" + gc.name + "' with " +
                                       std::to_string(gc.seeds.size()) + " peers, " + std::to_string(entries.size()) +
                                       " journal entries");
    return true;
  }

  void run() {
    while (!g_stop) {
      const std::uint64_t now = wall_ms();
      // Cleared before the drain: news recorded from now on sets it again.
      if (shared_.take_news()) next_news_drain_ = now + kNewsGapMs;
      service_.drain(now);
      node_->tick(now);
      service_.flush_journal(now);
      shared_.set_sidecar_heartbeat(now);
      shared_.set_sidecar_ready(node_->ready());
      service_.housekeeping(now);
      if (now >= next_drop_report_) {
        report_drops(now);
        next_drop_report_ = now + drop_report_ms_;
      }
      // The parent is gone (kill -9): so are we. PR_SET_PDEATHSIG says so at
      // once; this catches a parent that died before it was set.
      if (now >= next_parent_check_) {
        if (getppid() == 1) break;
        next_parent_check_ = now + 1000;
      }
      wait_for_packets(now);
    }
    service_.flush_journal(0);
    report_drops(wall_ms());  // what the last interval saw, before a restart hides it
    node_->leave(wall_ms());
  }

 private:
  static cluster::ServiceConfig service_config(server_rec* s, const ClusterConfig& c) {
    cluster::ServiceConfig sc;
    sc.policy = policy_of(c);
    // The main server's: the key ring (UriTokenKeyFile) lives there.
    const ServerConfig* main = server_config(s);
    sc.longest_token_s = static_cast<std::uint32_t>(max_ttl_seconds(main) + clock_skew_seconds(main));
    sc.shadow = c.mode == SharingMode::shadow;
    sc.bulk_shadow = c.bulk_mode == SharingMode::shadow;
    sc.journal_path = journal_path(c);
    sc.location = c.location;
    return sc;
  }

  bool fail(const std::string& why) {
    log(cluster::LogLevel::error, "UT00015: sharing sidecar cannot start: " + why);
    return false;
  }

  void log(cluster::LogLevel level, const std::string& text) {
    const int apr_level = level == cluster::LogLevel::notice ? APLOG_NOTICE
                          : level == cluster::LogLevel::warn ? APLOG_WARNING
                                                             : APLOG_ERR;
    ap_log_error(APLOG_MARK, apr_level, 0, server_, "%s", text.c_str());
  }

  // One line for everything dropped since the last report, if anything
  // was dropped.
  void report_drops(std::uint64_t now) {
    const gossip::DropReport r = node_->take_drop_report(now);
    if (!r.empty()) log(cluster::LogLevel::warn, "UT00021: gossip " + r.describe(kDropHints));
  }

  // Wakes for the next gossip timer, a packet, a control request, and to
  // drain the ring. Each wakeup costs a context switch whatever it finds
  // (tens of microseconds on a busy VM), and under load most sightings are
  // refreshes of what the sidecar knows: the sidecar sleeps with the
  // doorbell armed, a worker that records news (or finds the ring a quarter
  // full) rings it, and refreshes are drained in one batch at least every
  // kBatchWaitMs. A flood of news (a crowd of new viewers) is drained every
  // kNewsGapMs, so news waits at most that long for a verdict.
  void wait_for_packets(std::uint64_t now) {
    std::uint64_t limit = kBatchWaitMs;
    bool armed = false;
    if (now < next_news_drain_) {
      limit = next_news_drain_ - now;  // the doorbell stays unarmed until then
    } else {
      shared_.arm_doorbell();
      if (shared_.news_pending()) {  // recorded since the drain: no sleep
        shared_.disarm_doorbell();
        limit = 0;
      } else {
        armed = true;
      }
    }
    const std::uint64_t deadline = node_->next_deadline_ms();
    const int timeout = deadline <= now ? 0 : static_cast<int>(std::min<std::uint64_t>(deadline - now, limit));
    pollfd pfd[3] = {{udp_ ? udp_->fd() : -1, POLLIN, 0}, {control_fd_, POLLIN, 0}, {doorbell_fd_, POLLIN, 0}};
    const int ready = poll(pfd, 3, timeout);
    if (armed) shared_.disarm_doorbell();
    if (ready <= 0) return;
    if (pfd[2].revents & POLLIN) {
      std::uint64_t rings = 0;
      (void)!read(doorbell_fd_, &rings, sizeof rings);  // resets the eventfd
    }
    if (pfd[0].revents & POLLIN) {
      udp_->receive_all([this](const gossip::Endpoint& from, const std::uint8_t* data, std::size_t size) {
        node_->receive(from, data, size, wall_ms());
      });
    }
    if (pfd[1].revents & POLLIN) serve_control();
  }

  // The control socket (docs/control-protocol.md): a Unix socket in the
  // state directory, mode 0660 and owned by the httpd user (the sidecar
  // runs as that user), so only root and that user can connect.
  bool open_control_socket(std::string* error) {
    const std::string path = conf_.state_dir + "/" + control::kSocketName;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) {
      *error = path + " is too long for a Unix socket path";
      return false;
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    unlink(path.c_str());  // a previous sidecar's
    control_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (control_fd_ < 0 || bind(control_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        chmod(path.c_str(), 0660) != 0 || listen(control_fd_, 16) != 0) {
      *error = "cannot listen on " + path + ": " + std::strerror(errno);
      return false;
    }
    return true;
  }

  // Answers every waiting client: one request line each. A client that
  // does not send its line within 200 ms is dropped, so a stuck client
  // delays gossip by that much at most.
  void serve_control() {
    for (;;) {
      const int client = accept4(control_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) return;
      std::string line;
      const std::uint64_t give_up = wall_ms() + 200;
      while (line.find('\n') == std::string::npos && line.size() < 4096) {
        const std::uint64_t now = wall_ms();
        pollfd p{client, POLLIN, 0};
        if (now >= give_up || poll(&p, 1, static_cast<int>(give_up - now)) <= 0) break;
        char buf[1024];
        const ssize_t n = read(client, buf, sizeof buf);
        if (n <= 0) break;
        line.append(buf, static_cast<std::size_t>(n));
      }
      const std::size_t nl = line.find('\n');
      const auto request =
          nl == std::string::npos ? std::nullopt : control::decode(std::string_view(line).substr(0, nl));
      std::vector<control::Record> response;
      if (request) {
        response = service_.handle(*request);
      } else {
        control::Record e;
        e.kind = "error";
        e.add("message", nl == std::string::npos ? "send one request line" : "malformed request line");
        response.push_back(e);
      }
      const std::string text = control::encode_all(response);
      std::size_t sent = 0;
      while (sent < text.size()) {
        pollfd p{client, POLLOUT, 0};
        if (poll(&p, 1, 200) <= 0) break;
        const ssize_t n = send(client, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<std::size_t>(n);
      }
      close(client);
    }
  }

  server_rec* server_;
  const ClusterConfig& conf_;
  SharedState& shared_;
  int doorbell_fd_ = -1;  // eventfd the workers write to wake us; start_cluster refuses to run without it
  cluster::SharingService service_;
  NoNetwork no_network_;
  std::unique_ptr<gossip::UdpTransport> udp_;
  std::unique_ptr<gossip::Node> node_;
  int control_fd_ = -1;
  std::uint64_t drop_report_ms_ = 60000;
  std::uint64_t next_drop_report_ = 0;
  std::uint64_t next_parent_check_ = 0;
  std::uint64_t next_news_drain_ = 0;  // the doorbell is armed again from then on
};

void write_pid_file(const ClusterConfig& conf) {
  const std::string path = sidecar_pid_path(conf);
  if (FILE* f = std::fopen(path.c_str(), "w")) {
    std::fprintf(f, "%ld\n", static_cast<long>(getpid()));
    std::fclose(f);
  }
}

}  // namespace

void run_sidecar(server_rec* s, const ClusterConfig& conf, SharedState& shared, int doorbell_fd) {
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
    ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "UT00029: sharing sidecar cannot drop privileges");
    _exit(APEXIT_CHILDFATAL);
  }
  write_pid_file(conf);
  int code = 0;
  char what[256] = "";  // copied: e.what() dies with the exception
  try {
    Sidecar sidecar(s, conf, shared, doorbell_fd);
    if (sidecar.start()) {
      sidecar.run();
    } else {
      code = 1;
      sleep(5);  // the parent restarts us: keep a lasting problem to one log line per 5 s
    }
  } catch (const std::exception& e) {
    std::snprintf(what, sizeof what, "%s", e.what());
    code = 1;
  } catch (...) {
    std::snprintf(what, sizeof what, "unknown exception");
    code = 1;
  }
  if (what[0] != '\0') ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "UT00030: sharing sidecar stopped: %s", what);
  // _exit: the parent's atexit handlers and pool cleanups are not ours to run.
  _exit(code);
}

}  // namespace uritoken::httpd
