// SPDX-License-Identifier: Apache-2.0
// The link-sharing rule: when is one token used from too many places?
//
// Full rule, defaults and reasons: docs/sharing-rule.md. In short: a token
// (key_id + session) is shared when its weighted count of distinct *places*
// within window_s reaches max_places and, with the rest of its evidence,
// max_places + kTipWeight. A place is an autonomous system (from the
// location database: a dual-stack home, a carrier's NAT pool, a proxy farm
// are one place each) or, without one, an IPv4 /16 or IPv6 /32 with dual
// stack paired. A place weighs 1 when it was used within concurrent_s of
// another place's use, else sequential_weight (a phone moving from Wi-Fi to
// mobile). Further networks inside a place add network_weight each, at most
// place_extra_max per place; all shared networks (proxies, CGNAT, private
// ranges, detected proxies, the database's anonymous proxies and satellite
// providers) together weigh at most 1. Neither may carry a token over the
// line on its own: the places alone must reach max_places.
//
// Two parts:
//   NetworkClassifier  on the node that saw the request: address -> network,
//                      shared ranges, automatic proxy detection.
//   SharingDetector    on the nodes that own a token: windowed per-token
//                      state and the verdict.
// Both preallocate all their memory at construction and never grow; neither
// is thread-safe (the sidecar runs them on one thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bulk.h"
#include "../core/ipnet.h"
#include "table_memory.h"

namespace uritoken {

// A client network, e.g. 198.51.100.0/24 or 2001:db8:1::/48. Identity is
// the family and the masked bytes; prefix_len is for display only (0 =
// unknown, then format_network prints the bare address).
struct NetworkId {
  bool v6 = false;
  std::uint8_t bytes[16] = {};  // masked address
  std::uint8_t prefix_len = 0;
  bool operator==(const NetworkId& o) const;
  bool operator!=(const NetworkId& o) const { return !(*this == o); }
  std::uint64_t hash() const;
};

std::string format_network(const NetworkId& n);  // "198.51.100.0/24"

// Where a network is, as the sharing rule counts it. An autonomous system
// covers both address families (a dual-stack home is one place); the other
// kinds are one family's enclosing network, paired with the other family by
// the detector when a token alternates between them within seconds.
enum class PlaceKind : std::uint8_t {
  none = 0,        // unknown (a sighting from an older node): the owner takes the fallback
  as = 1,          // id = the AS number, from the location database
  db_network = 2,  // the database knows no AS: id = hash of its enclosing network
  fallback = 3,    // no database: id = hash of the IPv4 /16 or IPv6 /32
};
struct Place {
  PlaceKind kind = PlaceKind::none;
  std::uint32_t id = 0;      // never 0 for a known place
  char country[2] = {0, 0};  // ISO 3166-1 alpha-2 from the database, {0,0} unknown
  bool operator==(const Place& o) const { return kind == o.kind && id == o.id; }
};
// The documented fallback without a database: an IPv4 network's /16 (a
// carrier's NAT pool, a proxy farm's /19 stay one place), an IPv6
// network's /32 (a carrier's re-attach into another /48).
constexpr unsigned kFallbackPlaceV4 = 16, kFallbackPlaceV6 = 32;
Place fallback_place(const NetworkId& net);
// A 32-bit non-zero id for an enclosing network (db_network, fallback).
std::uint32_t network_place_id(bool v6, const std::uint8_t* bytes, unsigned prefix_len);
std::string format_place(const Place& p);  // "AS7922", "net 5f3a09c1"

// A token crosses the line at max_places + kTipWeight: half a place more
// than the limit (a fourth place used after the others, the shared group,
// further networks inside places), never a tenth of one.
constexpr double kTipWeight = 0.5;

// A client site whose audience is special (a school's, a hotel chain's):
// its own limit of places and a window no longer than the policy's
// (UriTokenClientSharing). client_hash is sharing_client_hash(client id).
struct ClientSharingLimit {
  std::uint32_t client_hash = 0;
  unsigned max_places = 3;
  std::uint32_t window_s = 600;
  std::string client;  // the client id itself: a subscriber verdict names it (its evidence's user)
};
// FNV-1a of a client id: what a worker puts in each sighting, and how a
// client's own limit is found. Distinct-client counting, not security.
std::uint32_t sharing_client_hash(std::string_view client);

// The defaults of the sharing rule's directives, here and in the server's
// configuration (httpd/config.h), which scripts/check-defaults.py reads.
constexpr unsigned kDefaultMaxPlaces = 3;                 // UriTokenSharingPlaces
constexpr std::uint32_t kDefaultWindowSeconds = 600;      // UriTokenSharingWindow
constexpr std::uint32_t kDefaultConcurrentSeconds = 120;  // UriTokenSharingConcurrency
constexpr std::size_t kDefaultTrackedSessions = 1000000;  // UriTokenTrackedSessions

struct SharingPolicy {
  unsigned max_places = kDefaultMaxPlaces;  // shared from max_places + kTipWeight, with max_places of them places
  std::uint32_t window_s = kDefaultWindowSeconds;          // sightings older than this are forgotten
  std::uint32_t concurrent_s = kDefaultConcurrentSeconds;  // networks used within this of each other: concurrent
  double sequential_weight = 0.5;  // weight of a place whose use does not overlap another's (handover)
  double network_weight = 0.1;     // each further network of one family inside a place ...
  double place_extra_max = 0.3;    // ... up to this much per place and in all (below kTipWeight: never tips)
  // The workers' repeat filter keys on these defaults (ipnet.h): a finer
  // prefix here would need it to key on that too.
  unsigned ipv4_prefix = kSharingPrefixV4, ipv6_prefix = kSharingPrefixV6;
  std::vector<IpPrefix> shared_ranges;  // configured proxy ranges
  bool default_shared_ranges = true;    // also the ranges of default_shared_ranges() below
  unsigned proxy_sessions = 50;         // a network seen with at least this many distinct sessions ...
  unsigned proxy_clients = 1;           // ... of at least this many distinct clients within window_s is a shared proxy
  bool places_from_database = false;    // places are autonomous systems (else the fallback prefixes)
  std::vector<ClientSharingLimit> client_limits;  // at most kMaxClientLimits; windows <= window_s
  // Account sharing (UriTokenSubscriberSharing): the limits of places per
  // subscriber, across all its tokens, of the clients that set one. A
  // client without one is never judged by subscriber. subscriber_policy().
  std::vector<ClientSharingLimit> subscriber_limits;
  BulkPolicy bulk;                                     // the bulk signal (bulk.h), off by default
  std::size_t max_sessions = kDefaultTrackedSessions;  // bound on tracked tokens (memory allocated up front)
  std::size_t proxy_networks = 8192;                   // bound on networks the proxy detector follows

  // A digest of everything above that changes a verdict (not the memory
  // bounds): nodes whose digests differ judge the same sightings
  // differently, so the sidecar warns when a peer's differs (UT00037).
  std::uint64_t digest() const;
};

// The rule a subscriber is judged by: this policy's, with the clients'
// subscriber limits as its only limits (a client without one is not
// judged) and a quarter of the tokens' table (a subscriber holds tokens).
SharingPolicy subscriber_policy(const SharingPolicy& tokens);
// The subscriber limit of a client (by sharing_client_hash), nullptr: none.
const ClientSharingLimit* subscriber_limit(const SharingPolicy& p, std::uint32_t client_hash);

// CGNAT 100.64.0.0/10, RFC 1918, loopback, link-local, IPv6 ULA fc00::/7,
// ::1 and fe80::/10: addresses that name no client on the internet. Seen as
// a client address (after mod_remoteip), they mean a NAT or proxy in front
// of the server, i.e. many users behind one address.
std::vector<IpPrefix> default_shared_ranges();

class NetworkClassifier {  // runs on the node that saw the request
 public:
  explicit NetworkClassifier(const SharingPolicy& policy);
  // Masked to ipv4_prefix/ipv6_prefix; an IPv4-mapped IPv6 address counts as IPv4.
  NetworkId network_of(const IpAddress& addr) const;
  bool in_shared_range(const IpAddress& addr) const;  // configured or default ranges
  // Feeds the automatic proxy detector; returns true if the network counts as a shared proxy now.
  bool observe(const NetworkId& net, std::uint64_t session, std::uint32_t client_hash, std::uint64_t now_ms);
  bool is_detected_proxy(const NetworkId& net, std::uint64_t now_ms) const;
  std::size_t detected_proxies(std::uint64_t now_ms) const;
  // The networks detected as proxies now (at most `max`), for the status page.
  std::vector<NetworkId> detected_proxy_networks(std::uint64_t now_ms, std::size_t max) const;
  std::size_t memory_bytes() const;

 private:
  // One network followed by the proxy detector: distinct sessions and
  // clients as linear-counting bitmaps, for the current and the previous
  // half window (so their union spans between half and a whole window).
  struct ProxyEntry {
    std::uint64_t net = 0;             // NetworkId::hash(), 0 = free
    NetworkId network;                 // the network itself, for the status page
    std::uint64_t epoch = 0;           // half window of bitmaps[epoch & 1]
    std::uint64_t proxy_until_ms = 0;  // a proxy until then (one window after it last qualified)
    std::uint64_t sessions[2][4] = {};
    std::uint64_t clients[2] = {};
  };
  ProxyEntry* find(std::uint64_t h);
  const ProxyEntry* find(std::uint64_t h) const;
  std::uint64_t epoch_of(std::uint64_t now_ms) const;

  SharingPolicy policy_;
  std::vector<IpPrefix> ranges_;
  std::vector<ProxyEntry> proxies_;  // sets of kProxyWays entries
  std::size_t proxy_sets_ = 0;
};

// Places remembered per token (the most recent ones): a 64-byte slot holds
// four. So a limit above 4 could never be reached, and at 4 only with half
// a place more from networks inside places or from shared networks.
constexpr unsigned kMaxTrackedPlaces = 4;
constexpr std::size_t kMaxClientLimits = 255;  // a slot names its client's limit in one byte

struct SharingVerdict {
  bool shared = false;
  unsigned limit = 0;     // the max_places applied (the token's client's own, or the policy's)
  double score = 0;       // weighted count in the window: places + networks inside them + shared group
  unsigned places = 0;    // distinct private places in the window
  unsigned networks = 0;  // distinct networks in the window (all shared ones count as one)
};

// One place of a token's evidence (SharingDetector::places_of).
struct PlaceEvidence {
  Place place;
  unsigned networks = 0;     // distinct networks inside it (an estimate past a few)
  std::uint32_t last_s = 0;  // its last use, unix s to the detector's tick
  bool concurrent = false;   // used within concurrent_s of another place
  double weight = 0;         // what it added to the score
};
// One network of a token's evidence (SharingDetector::networks_of).
struct NetworkEvidence {
  NetworkId network;
  Place place;
  std::uint32_t first_s = 0, last_s = 0;  // unix s
};

class SharingDetector {  // runs on the nodes that own a token
 public:
  explicit SharingDetector(const SharingPolicy& policy);
  ~SharingDetector();
  SharingDetector(const SharingDetector&) = delete;
  SharingDetector& operator=(const SharingDetector&) = delete;

  // One sighting; `shared_network` = the observing node classified the
  // network as a proxy/CGNAT/shared range. A place of kind none counts as
  // fallback_place(network).
  // `client_hash` (sharing_client_hash) selects the client's own limit.
  SharingVerdict observe(std::uint16_t key_id, std::uint64_t session, std::uint32_t token_expires,
                         const NetworkId& network, const Place& place, bool shared_network, std::uint64_t time_ms,
                         std::uint32_t client_hash = 0);
  SharingVerdict observe(std::uint16_t key_id, std::uint64_t session, std::uint32_t token_expires,
                         const NetworkId& network, bool shared_network, std::uint64_t time_ms) {
    return observe(key_id, session, token_expires, network, Place(), shared_network, time_ms);
  }
  // For a batch of sightings: observe() waits for two cache misses (the
  // token's fingerprint word, then its slot). prefetch_fingerprints() for
  // every token of the batch, then prefetch_slot() for every one, then
  // observe() them: the batch's misses overlap instead of adding up.
  void prefetch_fingerprints(std::uint16_t key_id, std::uint64_t session) const;
  void prefetch_slot(std::uint16_t key_id, std::uint64_t session) const;
  // The current verdict without a new sighting (all zero for an untracked token).
  SharingVerdict verdict(std::uint16_t key_id, std::uint64_t session) const;
  void forget(std::uint16_t key_id, std::uint64_t session);  // e.g. after a manual pardon
  void expire(std::uint64_t now_ms);                         // drop tokens past expiry or idle beyond window
  // The same for the next `slots` slots only, resuming where the last call
  // stopped: the table is tens of MiB, so the sidecar sweeps it in slices.
  void expire_some(std::uint64_t now_ms, std::size_t slots);
  // The token's places in the window, with what each weighed.
  std::vector<PlaceEvidence> places_of(std::uint16_t key_id, std::uint64_t session) const;
  // The token's non-shared networks in the window, as far as the bounded
  // network log still holds them (see docs/sharing-rule.md).
  std::vector<NetworkEvidence> networks_of(std::uint16_t key_id, std::uint64_t session) const;
  // The earliest and the latest of the last uses of the token's networks in
  // the window (unix s, to the detector's tick of window/120 s; {0, 0} if
  // unknown): the "first and last seen" of a verdict's evidence.
  std::pair<std::uint32_t, std::uint32_t> seen_span(std::uint16_t key_id, std::uint64_t session) const;
  std::size_t tracked() const { return tracked_; }
  std::size_t capacity() const { return slot_count_; }
  std::size_t memory_bytes() const;                       // what it really holds (allocated tables)
  std::uint64_t evictions() const { return evictions_; }  // live tokens dropped to make room

 private:
  struct Slot;
  struct LogEntry;
  Slot* find(std::uint16_t key_id, std::uint64_t session) const;
  static std::uint8_t fingerprint_of(std::uint16_t key_id, std::uint64_t session);
  void set_fingerprint(const Slot* s, std::uint8_t fingerprint);
  Slot* bucket_of(std::uint16_t key_id, std::uint64_t session, int which) const;
  Slot* claim(std::uint16_t key_id, std::uint64_t session, std::uint32_t now_s);
  SharingVerdict score(const Slot& s) const;
  std::uint8_t limit_index(std::uint32_t client_hash) const;  // 0: the policy's own
  std::uint32_t window_of(const Slot& s) const;               // the token's client's window
  double presence_weight(bool concurrent, unsigned live_total) const;
  double inside_weight(const Slot& s, int place) const;
  std::uint32_t newest_s(const Slot& s) const;
  bool stale(const Slot& s, std::uint32_t now_s) const;
  void rebase(Slot& s, std::uint32_t now_s) const;
  int place_index(Slot& s, const Place& place, bool v6, unsigned tick) const;
  void log_network(std::uint64_t token_hash, const NetworkId& net, const Place& place, std::uint32_t now_s);

  SharingPolicy policy_;
  std::uint32_t tick_s_ = 5;             // time resolution of per-network last-seen times
  std::unique_ptr<TableMemory> memory_;  // holds the three tables below
  Slot* slots_ = nullptr;
  std::uint8_t* fingerprints_ = nullptr;  // per slot: 0 free, else 1..255 from the token's hash
  std::size_t slot_count_ = 0;
  std::size_t bucket_count_ = 0;
  LogEntry* log_ = nullptr;  // recent networks of tokens, in buckets by token
  std::size_t log_buckets_ = 0;
  std::size_t tracked_ = 0;
  std::uint64_t evictions_ = 0;
  std::size_t expire_cursor_ = 0;  // where expire_some resumes
};

}  // namespace uritoken
