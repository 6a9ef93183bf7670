// SPDX-License-Identifier: Apache-2.0
// Cluster gossip for mod_uritoken: SWIM-style membership, infection-style
// dissemination of revocations, push-pull anti-entropy over bucket digests,
// and routing of sightings to the few nodes that own each token.
//
// Pure C++17 + libsodium. The Node is a passive state machine: the caller
// feeds it packets (receive), time (tick) and local events (decide,
// report_sighting); it sends through a Transport and reports through a
// Listener. The same code runs over real UDP in the sidecar and over a
// simulated lossy network in the tests. Not thread-safe: one thread drives a
// Node. Protocol description: docs/gossip.md.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "../mod_uritoken/core/token_id.h"

namespace uritoken::gossip {

struct Endpoint {
  bool v6 = false;
  std::uint8_t addr[16] = {};  // network order; first 4 bytes for IPv4
  std::uint16_t port = 0;

  // "127.0.0.1:7946", "[::1]:7946".
  static std::optional<Endpoint> parse(std::string_view text);
  std::string to_string() const;
  bool operator==(const Endpoint& o) const;
  bool operator!=(const Endpoint& o) const { return !(*this == o); }
  bool operator<(const Endpoint& o) const;
};

// A token's identity (core/token_id.h): key id + session, one hash.
using TokenRef = TokenId;
using TokenRefHash = TokenIdHash;

// Why a token was revoked, shown on every node's status page, so it
// travels with the revocation (wire and journal). Bounded: at most
// kMaxNetworks networks, strings cut to their limits on encoding.
struct Evidence {
  static constexpr std::size_t kMaxNetworks = 8, kMaxOperator = 45, kMaxUser = 32, kMaxComment = 120;
  struct Network {
    bool v6 = false;
    std::uint8_t prefix_len = 0;  // 24 or 48 by default
    std::uint8_t bytes[16] = {};  // masked address
    bool operator==(const Network& o) const;
  };
  // Where the networks were (docs/sharing-rule.md): an autonomous system
  // or an enclosing network, with what it weighed in the verdict. Kept
  // small (REVOKE records spread faster the more fit a packet): a node
  // names the AS and each network's country from its own database.
  struct Place {
    static constexpr std::uint8_t kAs = 1;  // kind: id is an AS number (else a network hash)
    std::uint8_t kind = 0;
    std::uint32_t id = 0;
    std::uint8_t networks = 0;              // distinct networks inside it
    bool concurrent = false;                // used within the concurrency time of another place
    std::uint8_t weight_x10 = 0;            // its weight in the score, in tenths
    std::uint32_t first_s = 0, last_s = 0;  // protocol 4: its first and last use (unix s, 0 unknown)
    bool operator==(const Place& o) const;
  };
  static constexpr std::size_t kMaxPlaces = 4;
  std::vector<Network> networks;  // automatic: the client networks the owner saw
  std::uint32_t first_seen_s = 0, last_seen_s = 0;
  std::vector<Place> places;     // automatic: where those networks are
  std::uint16_t score_x100 = 0;  // the verdict's score, in hundredths ...
  std::uint8_t limit = 0;        // ... against this limit (max_places)
  // Protocol 4, a bulk verdict (reason 3): the token's rate over the bulk
  // window, per minute, that crossed UriTokenBulkLimit; places[0] is where
  // the latest requests came from.
  std::uint32_t bulk_requests_per_min = 0;
  std::uint64_t bulk_bytes_per_min = 0;
  std::string operator_address;  // manual: who revoked or pardoned (client address)
  std::string user;              // manual: r->user, when authenticated
  std::string comment;           // manual: free text
  bool empty() const {
    return networks.empty() && first_seen_s == 0 && last_seen_s == 0 && operator_address.empty() && user.empty() &&
           comment.empty() && places.empty() && bulk_requests_per_min == 0 && bulk_bytes_per_min == 0;
  }
  bool operator==(const Evidence& o) const;
};

// Why a verdict was reached: its byte on the wire and in the journal
// (a later reason from a newer node reads as its number).
// client: revoked by the client site that minted the token, through its
// signed API (docs/client-api.md).
enum class VerdictReason : std::uint8_t { unknown = 0, shared = 1, manual = 2, bulk = 3, client = 4 };

struct Revocation {
  TokenRef token;
  std::uint32_t token_expires = 0;  // unix s: the entry is dropped after this
  std::uint64_t stamp_ms = 0;       // when decided (wall clock ms)
  bool pardon = false;
  bool shadow = false;       // shadow-mode verdict: reported, not enforced
  std::uint64_t origin = 0;  // node id that decided
  VerdictReason reason = VerdictReason::unknown;
  std::uint8_t networks = 0;  // distinct networks seen (for ops)
  Evidence evidence;          // not part of the CRDT order (wins_over)
  bool operator==(const Revocation& o) const;
  bool operator!=(const Revocation& o) const { return !(*this == o); }
};

// True if `a` wins over `b` for the same token: greater stamp_ms, then a
// revoke beats a pardon (add-wins), then greater origin; the remaining fields
// only break ties between otherwise equal entries so the order is total.
bool wins_over(const Revocation& a, const Revocation& b);

// The revocation CRDT: per token, the entry that wins_over all others. merge
// is commutative, associative and idempotent. Entries live in a fixed number
// of buckets (by token hash) whose XOR-of-entry-hash digests let two nodes
// find their differences without sending the whole set.
class RevocationSet {
 public:
  static constexpr std::size_t kBuckets = 1024;
  static constexpr std::size_t kGroups = 32;  // digest level 1
  static constexpr std::size_t kBucketsPerGroup = kBuckets / kGroups;

  RevocationSet();
  bool merge(const Revocation& r);  // true if the winning entry for that token changed
  const Revocation* find(const TokenRef& t) const;
  // Winning entry is a revoke (shadow or not: the caller decides whether to
  // enforce shadow verdicts) and the token has not expired.
  bool in_force(const TokenRef& t, std::uint32_t now_s) const;
  std::size_t expire(std::uint32_t now_s);  // drops entries past token_expires
  std::size_t size() const { return size_; }
  template <class F>
  void for_each(F f) const {
    for (const auto& b : buckets_)
      for (const auto& r : b) f(r);
  }
  std::vector<Revocation> snapshot() const;

  static std::size_t bucket_of(const TokenRef& t) { return t.hash() % kBuckets; }
  const std::vector<Revocation>& bucket(std::size_t b) const { return buckets_[b]; }
  std::uint64_t bucket_hash(std::size_t b) const { return bucket_hash_[b]; }
  std::uint64_t group_hash(std::size_t g) const { return group_hash_[g]; }
  // Approximate heap bytes held (for the benchmark's memory figure).
  std::size_t memory_bytes() const;

 private:
  void set_hash(std::size_t b, std::uint64_t delta);
  std::vector<std::vector<Revocation>> buckets_;  // each sorted by token
  std::vector<std::uint64_t> bucket_hash_;
  std::array<std::uint64_t, kGroups> group_hash_{};
  std::size_t size_ = 0;
};

struct SightingReport {
  TokenRef token;
  std::uint32_t token_expires = 0;
  std::uint8_t network[17] = {};  // byte 0: 4 or 6, then 4 or 16 masked bytes
  bool shared_network = false;
  std::uint32_t client_hash = 0;
  std::uint64_t time_ms = 0;
  // Protocol 3: the network's place as the observing node's location
  // database (or fallback) saw it; place_kind 0 from older nodes.
  std::uint8_t place_kind = 0;
  std::uint32_t place_id = 0;
  char country[2] = {0, 0};
  // Protocol 4: the bulk signal's counts (Sighting::requests, ::bytes):
  // requests and bytes from this network since the node's previous
  // sighting of the token. 1 and 0 from older nodes.
  std::uint32_t requests = 1;
  std::uint64_t bytes = 0;
  bool operator==(const SightingReport& o) const;
};
// A sighting of a subscriber (key id 0, session its ref): counted per
// account by the ref's owners, on the wire as its own record type.
inline bool is_subscriber(const SightingReport& s) { return is_subscriber(s.token); }

class Transport {
 public:
  virtual ~Transport() = default;
  virtual void send(const Endpoint& to, const std::uint8_t* data, std::size_t size) = 0;
};

enum MemberState : int { kAlive = 0, kSuspect = 1, kDead = 2 };

class Listener {
 public:
  virtual ~Listener() = default;
  virtual void revocation_changed(const Revocation& winner) = 0;
  virtual void owned_sighting(const SightingReport& s) = 0;
  virtual void member_changed(std::uint64_t /*node_id*/, int /*state*/) {}
};

struct Config {
  std::uint64_t node_id = 0;
  std::string name;  // at most 64 bytes are sent
  Endpoint self;
  std::vector<Endpoint> seeds;
  std::array<std::uint8_t, 32> cluster_key{};  // seals every packet, and opens them
  // Further keys that open packets (not used to seal): during a cluster-key
  // rotation, the key being introduced or the one being retired.
  std::vector<std::array<std::uint8_t, 32>> other_keys;
  std::string cluster_label = "uritoken";
  std::uint32_t probe_interval_ms = 500, probe_timeout_ms = 150;
  unsigned indirect_probes = 3;
  unsigned suspicion_mult = 4;
  std::uint32_t gossip_interval_ms = 20;
  unsigned fanout = 3;
  unsigned retransmit_mult = 3;
  std::uint32_t pushpull_interval_ms = 2000;
  unsigned owners = 2;
  std::uint32_t sighting_flush_ms = 5;
  std::size_t max_packet = 1200;
  std::uint32_t max_packet_age_ms = 30000;
  // Added: push-pull entry streams are paced to this many packets per
  // gossip interval per peer (100,000 entries take ~3,000 packets).
  unsigned pushpull_packets_per_tick = 32;
  // Lifeguard's local health multiplier: a node whose own probes fail (or
  // that has to refute suspicions of itself) probes less often and waits
  // longer for ACKs, up to this factor (memberlist's AwarenessMaxMultiplier).
  unsigned health_max_mult = 8;
  // Sightings this node reported are remembered this long (at most this
  // many) and sent again to a member that becomes alive and owns their
  // token: an owner that restarts, rejoins or heals from a partition learns
  // the window it missed (set to the sharing window).
  std::uint32_t rehome_window_ms = 600000;
  std::size_t rehome_capacity = 8192;
  // Every probe interval, a push-pull with one member declared dead within
  // this window: when a partition heals or a node comes back, the sides
  // exchange revocations and members within about one interval instead of
  // waiting for the periodic push-pull to pick a dead member by chance.
  std::uint32_t reconnect_window_ms = 600000;
  // A digest of the settings that must agree across the cluster (the
  // sharing rule: a token's owners decide for everyone), carried in this
  // node's MEMBER record so peers can warn about a mismatch. 0: none.
  std::uint64_t policy_digest = 0;
  // This node's node hash (32 lower-case hex digits, its identity key's:
  // docs/https.md), carried in its MEMBER record; "" none.
  std::string identity;
  // Tests only: raw records appended to every packet this node sends, so a
  // simulation can play a newer protocol version (new record types, or
  // fields appended to known ones) next to this one.
  std::vector<std::uint8_t> test_extra_records;
};

struct Stats {
  std::uint64_t packets_in = 0, packets_out = 0, bytes_in = 0, bytes_out = 0;
  std::uint64_t dropped_malformed = 0, dropped_auth = 0, dropped_replay = 0, dropped_stale = 0, dropped_label = 0,
                dropped_oversized = 0;
  // Authentic, but sent before this Node was constructed: a packet captured
  // before a restart and replayed (the replay window died with the old
  // process), or from a peer whose clock is behind ours, for at most the skew.
  std::uint64_t dropped_before_start = 0;
  // Packets of another envelope version (kVersion), which no rolling
  // upgrade can cross; records of a newer type, skipped (packets kept).
  std::uint64_t dropped_version = 0, records_skipped = 0;
  // Packets opened with one of Config::other_keys: some peer still seals
  // with a key being rotated out (or already seals with the one coming in).
  std::uint64_t packets_other_key = 0;
  std::uint64_t revocations_learned = 0;  // winners changed by a peer's entry
  std::uint64_t sightings_sent = 0;       // sightings sent to other owners
  std::uint64_t sightings_owned = 0;      // owned_sighting calls
  // Added:
  std::uint64_t probes = 0, indirect_probes = 0, suspicions = 0, refutations = 0, deaths = 0;
  std::uint64_t pushpull_started = 0, pushpull_entries_sent = 0;
  std::uint64_t member_streams = 0;     // push-pulls that streamed our member list
  std::uint64_t reconnects = 0;         // push-pulls started with a dead member
  std::uint64_t welcome_syncs = 0;      // push-pulls started with a member that came alive
  std::uint64_t sightings_rehomed = 0;  // remembered sightings sent to a member that came alive
};

// Why a datagram was dropped; each kind is also counted in its Stats field.
enum class DropKind : std::uint8_t {
  kOversized,
  kMalformed,
  kLabel,
  kAuth,
  kStale,
  kBeforeStart,
  kReplay,
  kVersion,
};
constexpr std::size_t kDropKinds = 8;
// A few words for log lines: "failed authentication", "wrong cluster name".
const char* drop_kind_text(DropKind k);

// Datagrams dropped between since_ms and until_ms, by sender address and
// kind, so a misconfigured peer or an attack can be told from a dead peer.
struct DropReport {
  static constexpr std::size_t kMaxSenders = 16;
  struct Sender {
    Endpoint from;
    std::array<std::uint64_t, kDropKinds> count{};  // by DropKind
  };
  std::uint64_t since_ms = 0, until_ms = 0;
  std::vector<Sender> senders;                     // the first kMaxSenders, in order of first drop
  std::array<std::uint64_t, kDropKinds> others{};  // from any further sender ("other addresses")
  std::uint64_t total() const;
  std::uint64_t total(DropKind k) const;
  bool empty() const { return total() == 0; }
  // One line: "dropped 37 packets in the last 60 s: 30 failed authentication
  // (HINT) from 10.0.0.7:7946; 7 wrong cluster name (HINT) from ...", kinds
  // by count, each with its biggest senders; hints[kind] may be null.
  std::string describe(const std::array<const char*, kDropKinds>& hints) const;
};

struct Member {
  std::uint64_t node_id = 0;
  std::string name;
  Endpoint endpoint;
  int state = kAlive;  // 0 alive, 1 suspect, 2 dead
  std::uint64_t incarnation = 0;
  std::uint64_t policy = 0;                         // the member's Config::policy_digest (0: unknown)
  std::uint64_t last_heard_ms = 0;                  // local: when an authenticated packet of it last arrived (not sent)
  std::uint8_t protocol_min = 0, protocol_max = 0;  // the versions it speaks (0: unknown)
  std::string identity;  // protocol 5: its node hash (32 hex digits, docs/https.md); "" unknown
};

namespace wire {
struct Message;
struct PpRoot;
struct PpGroup;
}  // namespace wire

class Node {
 public:
  // Packets whose sender timestamp is older than `now_ms` are refused
  // (dropped_before_start): pass a time taken before the socket was bound.
  Node(Config config, Transport& transport, Listener& listener, std::uint64_t now_ms, std::uint64_t seed);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  void load(const std::vector<Revocation>& entries);  // before start(); no listener calls
  void start(std::uint64_t now_ms);                   // contacts seeds (join + push-pull)
  void receive(const Endpoint& from, const std::uint8_t* data, std::size_t size, std::uint64_t now_ms);
  void tick(std::uint64_t now_ms);         // runs due timers
  std::uint64_t next_deadline_ms() const;  // when tick() next has work
  void decide(const Revocation& r, std::uint64_t now_ms);
  void report_sighting(const SightingReport& s, std::uint64_t now_ms);
  void leave(std::uint64_t now_ms);  // graceful leave: announces itself dead
  bool ready() const { return ready_; }
  // Lifeguard local health score, 0 (healthy) .. health_max_mult - 1: probe
  // interval and probe timeout are multiplied by (score + 1).
  unsigned health() const { return health_; }

  const RevocationSet& revocations() const { return set_; }
  std::vector<Member> members() const;  // self first, then peers by node id
  const Stats& stats() const { return stats_; }
  // The drops since the last call (or since construction); starts afresh.
  DropReport take_drop_report(std::uint64_t now_ms);
  const Config& config() const { return cfg_; }
  // Added: the `owners` nodes that own a token in this node's current view
  // (rendezvous hashing over live members and self), best first.
  std::vector<std::uint64_t> owners_of(const TokenRef& t) const;

 private:
  struct Peer {
    Member m;
    std::uint64_t suspect_deadline = 0;  // when a suspect is declared dead
    std::uint64_t state_since = 0;
    std::uint64_t alive_since = 0;  // last change to kAlive (see welcomes)
  };
  struct Broadcast {
    std::uint64_t key;  // node id or token hash: a newer one replaces it
    std::vector<std::uint8_t> record;
  };
  // The broadcast queue: one FIFO per (transmissions so far, kind), read in
  // the order fewest transmissions first, revocations before membership
  // news. Sending moves an entry to the next level (a list splice, O(1)).
  using BroadcastList = std::list<Broadcast>;
  struct BroadcastQueue {
    std::vector<BroadcastList> level[2];  // [is_member][transmits]
    std::unordered_map<std::uint64_t, std::pair<unsigned, BroadcastList::iterator>> index[2];
    std::size_t size = 0;
    bool empty() const { return size == 0; }
    void clear() { *this = BroadcastQueue{}; }
  };
  struct ReplayWindow {
    std::uint64_t max = 0;
    std::uint64_t bits = 0;
  };
  struct IndirectRelay {
    Endpoint requester;
    std::uint32_t seq;
    std::uint64_t expires;
  };
  struct Stream {  // a paced push-pull transfer to one peer
    Endpoint to;
    std::deque<std::size_t> buckets;    // revocation buckets still to send
    std::size_t offset = 0;             // into the front bucket
    std::deque<std::uint64_t> members;  // member ids still to send
  };

  // Packets.
  void send_packet(const Endpoint& to, std::vector<std::uint8_t>& payload, bool piggyback);
  void piggyback(std::vector<std::uint8_t>& payload, std::size_t room);
  std::size_t payload_room() const;
  void drop(const Endpoint& from, DropKind kind);
  void handle(const Endpoint& from, std::uint64_t sender, const wire::Message& m, std::uint64_t now_ms, bool& learned);
  // Membership.
  void probe(std::uint64_t now_ms);
  void probe_timed_out(std::uint64_t now_ms);
  void probe_failed(std::uint64_t now_ms);
  void apply_member(const Member& m, std::uint64_t now_ms, const Endpoint& from, std::uint64_t sender);
  void set_state(Peer& p, int state, std::uint64_t incarnation, std::uint64_t now_ms);
  void refute(std::uint64_t incarnation, std::uint64_t now_ms, const Endpoint& told_by, std::uint64_t teller);
  void tell_if_suspected(std::uint64_t id, std::vector<std::uint8_t>& payload);
  void enqueue_member(const Member& m);
  void enqueue(std::uint64_t key, bool is_member, std::vector<std::uint8_t> record);
  void adjust_health(int delta);
  std::uint64_t scaled(std::uint32_t ms) const { return std::uint64_t{ms} * (health_ + 1); }
  Member self_member() const;
  const std::vector<const Peer*>& live_peers() const;
  std::uint64_t suspicion_timeout() const;
  std::uint64_t member_hash() const { return member_hash_; }
  void membership_changed();
  void live_changed(const Peer& p, bool live);
  // Dissemination.
  void enqueue_revocation(const Revocation& r);
  void gossip(std::size_t fanout, std::uint64_t exclude);
  unsigned retransmit_limit(bool member) const;
  // Anti-entropy.
  void start_pushpull(std::uint64_t now_ms);
  void send_root(const Endpoint& to, std::uint64_t peer_id, bool reply);
  void on_root(const Endpoint& from, std::uint64_t sender, const wire::PpRoot& r);
  void on_group(const Endpoint& from, const wire::PpGroup& g);
  Stream& stream_to(const Endpoint& to);
  void pump_streams();
  // Sightings.
  void flush_sightings();
  void send_sightings(std::uint64_t owner, std::vector<std::uint8_t>& records);
  void queue_sighting(std::uint64_t owner, const std::vector<std::uint8_t>& record, std::uint64_t now_ms);
  void remember_sighting(const SightingReport& s);
  void rehome_sightings(std::uint64_t member, std::uint64_t now_ms);
  bool welcomes(std::uint64_t member, std::uint64_t incarnation, std::uint64_t now_ms);
  void tell_suspects();
  void reconnect_dead(std::uint64_t now_ms);

  Config cfg_;
  Transport& transport_;
  Listener& listener_;
  std::mt19937_64 rng_;
  RevocationSet set_;
  Stats stats_;
  bool ready_ = false;
  std::uint64_t next_refute_sync_ = 0;  // see refute()
  std::size_t early_welcomes_ = 0;      // see welcomes()
  bool started_ = false;
  bool left_ = false;
  std::uint64_t now_ = 0;

  // Crypto / replay.
  std::uint64_t born_ms_ = 0;                       // construction time: older packets are refused
  std::vector<std::array<std::uint8_t, 32>> keys_;  // cluster_key, then other_keys
  std::array<std::uint8_t, 4> label_tag_{};
  std::uint64_t counter_ = 0;
  std::unordered_map<std::uint64_t, ReplayWindow> replay_;
  // Drops since the last report. Fixed size, so that a flood of junk from
  // many addresses costs a short scan per datagram and never an allocation.
  std::array<DropReport::Sender, DropReport::kMaxSenders> drop_senders_{};
  std::size_t drop_sender_count_ = 0;
  std::array<std::uint64_t, kDropKinds> drop_others_{};
  std::uint64_t drops_since_ms_ = 0;

  // Membership.
  std::uint64_t incarnation_ = 0;
  // By node id, excluding self. Hashed: a large cluster looks a member up for
  // every MEMBER record received, and a tree walk over 1,000 members was the
  // simulation's main cost. Nodes are stable, so live_ may point into it.
  std::unordered_map<std::uint64_t, Peer> peers_;
  std::vector<std::uint64_t> probe_order_;
  std::size_t probe_index_ = 0;
  std::uint32_t seq_ = 0;
  std::uint64_t probe_target_ = 0;  // 0: no probe outstanding
  std::uint32_t probe_seq_ = 0;
  bool probe_acked_ = false;
  bool probe_indirect_sent_ = false;
  std::uint64_t probe_sent_ms_ = 0;
  std::map<std::uint32_t, IndirectRelay> relays_;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> live_mixed_;  // (mixed id, id) for owners
  std::vector<const Peer*> live_;                                    // alive and suspect peers
  std::uint64_t member_hash_ = 0;                                    // of the live member ids, self included
  std::set<std::pair<std::uint64_t, std::uint64_t>> suspects_;       // (deadline, id)
  unsigned health_ = 0;                                              // Lifeguard local health score

  // Timers.
  std::uint64_t next_probe_ = 0, next_gossip_ = 0, next_pushpull_ = 0, next_expire_ = 0, next_reconnect_ = 0;
  std::uint64_t sighting_deadline_ = 0;  // 0: nothing pending
  std::uint64_t last_revocation_rx_ = 0;
  unsigned pushpull_rounds_ = 0;

  BroadcastQueue broadcasts_;
  std::vector<Stream> streams_;
  std::map<std::uint64_t, std::vector<std::uint8_t>> pending_sightings_;  // owner -> records
  std::vector<SightingReport> remembered_;  // ring of reported sightings, for rehome_sightings
  std::size_t remembered_next_ = 0;
};

}  // namespace uritoken::gossip
