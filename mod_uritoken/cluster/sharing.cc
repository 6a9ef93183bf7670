// SPDX-License-Identifier: Apache-2.0
// Link-sharing rule: network classification, proxy detection, per-token state.
#include "sharing.h"
#include "../core/mix.h"
#include "../core/token_id.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace uritoken {

namespace {

std::uint64_t token_hash(std::uint16_t key_id, std::uint64_t session) { return TokenId{key_id, session}.hash(); }

bool in_prefix(const IpAddress& a, const IpPrefix& p) {
  if (a.v6 != p.addr.v6) return false;
  const IpAddress m = mask_ip(a, p.length);
  return std::memcmp(m.bytes, p.addr.bytes, a.size()) == 0;
}

// Linear counting: distinct items estimated from the share of zero bits.
double linear_count(unsigned bits, unsigned zeros) {
  if (zeros == 0) return 1e18;  // saturated: more than this bitmap can tell
  return -static_cast<double>(bits) * std::log(static_cast<double>(zeros) / bits);
}

unsigned popcount64(std::uint64_t x) { return static_cast<unsigned>(__builtin_popcountll(x)); }

constexpr std::size_t kProxyWays = 4;
constexpr double kEpsilon = 1e-9;

}  // namespace

// ---------------------------------------------------------------- NetworkId

bool NetworkId::operator==(const NetworkId& o) const {
  return v6 == o.v6 && std::memcmp(bytes, o.bytes, sizeof bytes) == 0;
}

std::uint64_t NetworkId::hash() const {
  std::uint64_t w[2];
  std::memcpy(w, bytes, sizeof w);
  const std::uint64_t h = splitmix64(w[0] ^ splitmix64(w[1] ^ (v6 ? 0x6ull : 0x4ull)));
  return h == 0 ? 1 : h;  // 0 marks free slots
}

std::string format_network(const NetworkId& n) {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(n.v6 ? AF_INET6 : AF_INET, n.bytes, buf, sizeof buf);
  std::string out(buf);
  if (n.prefix_len != 0) out += "/" + std::to_string(n.prefix_len);
  return out;
}

std::vector<IpPrefix> default_shared_ranges() {
  std::vector<IpPrefix> out;
  for (const char* r : {"100.64.0.0/10", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8",
                        "169.254.0.0/16", "fc00::/7", "::1/128", "fe80::/10"}) {
    out.push_back(*parse_ip_prefix(r));
  }
  return out;
}

// ---------------------------------------------------------------- NetworkClassifier

NetworkClassifier::NetworkClassifier(const SharingPolicy& policy) : policy_(policy) {
  policy_.ipv4_prefix = std::clamp(policy_.ipv4_prefix, 1u, 32u);
  policy_.ipv6_prefix = std::clamp(policy_.ipv6_prefix, 1u, 128u);
  if (policy_.window_s == 0) policy_.window_s = 1;
  ranges_ = policy_.shared_ranges;
  if (policy_.default_shared_ranges) {
    const auto d = default_shared_ranges();
    ranges_.insert(ranges_.end(), d.begin(), d.end());
  }
  proxy_sets_ = std::max<std::size_t>(1, (policy_.proxy_networks + kProxyWays - 1) / kProxyWays);
  proxies_.assign(proxy_sets_ * kProxyWays, ProxyEntry());
}

NetworkId NetworkClassifier::network_of(const IpAddress& addr) const {
  const IpAddress a = unmapped_ip(addr);
  const unsigned len = a.v6 ? policy_.ipv6_prefix : policy_.ipv4_prefix;
  const IpAddress m = mask_ip(a, len);
  NetworkId n;
  n.v6 = m.v6;
  std::memcpy(n.bytes, m.bytes, sizeof n.bytes);
  n.prefix_len = static_cast<std::uint8_t>(len);
  return n;
}

bool NetworkClassifier::in_shared_range(const IpAddress& addr) const {
  const IpAddress a = unmapped_ip(addr);
  for (const auto& p : ranges_) {
    if (in_prefix(a, p)) return true;
  }
  return false;
}

std::uint64_t NetworkClassifier::epoch_of(std::uint64_t now_ms) const {
  const std::uint64_t half_ms = std::max<std::uint64_t>(1000, std::uint64_t{policy_.window_s} * 500);
  return now_ms / half_ms;
}

NetworkClassifier::ProxyEntry* NetworkClassifier::find(std::uint64_t h) {
  return const_cast<ProxyEntry*>(static_cast<const NetworkClassifier*>(this)->find(h));
}

const NetworkClassifier::ProxyEntry* NetworkClassifier::find(std::uint64_t h) const {
  const ProxyEntry* set = &proxies_[(h >> 17) % proxy_sets_ * kProxyWays];
  for (std::size_t i = 0; i < kProxyWays; ++i) {
    if (set[i].net == h) return &set[i];
  }
  return nullptr;
}

bool NetworkClassifier::observe(const NetworkId& net, std::uint64_t session, std::uint32_t client_hash,
                                std::uint64_t now_ms) {
  const std::uint64_t h = net.hash();
  const std::uint64_t epoch = epoch_of(now_ms);
  ProxyEntry* e = find(h);
  if (e == nullptr) {
    // Replace, in order: a free entry, one with nothing recent, else the
    // least busy non-proxy, so that real proxies (busy by definition) are
    // the last to be pushed out by a flood of small networks.
    ProxyEntry* set = &proxies_[(h >> 17) % proxy_sets_ * kProxyWays];
    auto busy = [&](const ProxyEntry& x) {
      if (x.net == 0 || x.epoch + 1 < epoch) return std::int64_t{-1};
      if (x.proxy_until_ms >= now_ms) return std::int64_t{1} << 40;
      unsigned bits = 0;
      for (int g = 0; g < 2; ++g)
        for (int w = 0; w < 4; ++w) bits += popcount64(x.sessions[g][w]);
      return std::int64_t{bits};
    };
    e = &set[0];
    for (std::size_t i = 1; i < kProxyWays; ++i) {
      if (busy(set[i]) < busy(*e)) e = &set[i];
    }
    *e = ProxyEntry();
    e->net = h;
    e->network = net;
    e->epoch = epoch;
  }
  if (epoch != e->epoch) {
    // Advance: the half window about to be reused is cleared; after a gap of
    // two or more, both are.
    if (epoch > e->epoch + 1) {
      std::memset(e->sessions, 0, sizeof e->sessions);
      std::memset(e->clients, 0, sizeof e->clients);
    } else if (epoch == e->epoch + 1) {
      std::memset(e->sessions[epoch & 1], 0, sizeof e->sessions[0]);
      e->clients[epoch & 1] = 0;
    }
    if (epoch > e->epoch) e->epoch = epoch;  // an older sighting lands in the current half
  }
  const std::uint64_t sbit = splitmix64(session) & 255, cbit = splitmix64(client_hash) & 63;
  auto& cur_sessions = e->sessions[e->epoch & 1];
  cur_sessions[sbit >> 6] |= std::uint64_t{1} << (sbit & 63);
  e->clients[e->epoch & 1] |= std::uint64_t{1} << cbit;

  unsigned session_zeros = 0;
  for (int w = 0; w < 4; ++w) session_zeros += 64 - popcount64(e->sessions[0][w] | e->sessions[1][w]);
  const unsigned client_zeros = 64 - popcount64(e->clients[0] | e->clients[1]);
  if (linear_count(256, session_zeros) + 0.5 >= policy_.proxy_sessions &&
      linear_count(64, client_zeros) + 0.5 >= policy_.proxy_clients) {
    e->proxy_until_ms = now_ms + std::uint64_t{policy_.window_s} * 1000;
  }
  return e->proxy_until_ms >= now_ms;
}

bool NetworkClassifier::is_detected_proxy(const NetworkId& net, std::uint64_t now_ms) const {
  const ProxyEntry* e = find(net.hash());
  return e != nullptr && e->proxy_until_ms >= now_ms;
}

std::vector<NetworkId> NetworkClassifier::detected_proxy_networks(std::uint64_t now_ms, std::size_t max) const {
  std::vector<NetworkId> out;
  for (const ProxyEntry& e : proxies_) {
    if (out.size() >= max) break;
    if (e.net != 0 && e.proxy_until_ms >= now_ms) out.push_back(e.network);
  }
  return out;
}

std::size_t NetworkClassifier::detected_proxies(std::uint64_t now_ms) const {
  std::size_t n = 0;
  for (const auto& e : proxies_) n += e.net != 0 && e.proxy_until_ms >= now_ms;
  return n;
}

std::size_t NetworkClassifier::memory_bytes() const {
  return sizeof *this + proxies_.capacity() * sizeof(ProxyEntry) + ranges_.capacity() * sizeof(IpPrefix);
}

// ---------------------------------------------------------------- Places

std::uint32_t network_place_id(bool v6, const std::uint8_t* bytes, unsigned prefix_len) {
  IpAddress a;
  a.v6 = v6;
  std::memcpy(a.bytes, bytes, v6 ? 16 : 4);
  const IpAddress m = mask_ip(a, prefix_len);
  std::uint64_t w[2];
  std::memcpy(w, m.bytes, sizeof w);
  const auto h = static_cast<std::uint32_t>(splitmix64(w[0] ^ splitmix64(w[1] ^ (prefix_len << 1 | (v6 ? 1u : 0u)))));
  return h == 0 ? 1 : h;
}

Place fallback_place(const NetworkId& net) {
  Place p;
  p.kind = PlaceKind::fallback;
  p.id = network_place_id(net.v6, net.bytes, net.v6 ? kFallbackPlaceV6 : kFallbackPlaceV4);
  return p;
}

std::string format_place(const Place& p) {
  if (p.kind == PlaceKind::as) return "AS" + std::to_string(p.id);
  char buf[16];
  std::snprintf(buf, sizeof buf, "net %08x", static_cast<unsigned>(p.id));
  return buf;
}

// ---------------------------------------------------------------- SharingDetector

namespace {
constexpr int kPlaces = static_cast<int>(kMaxTrackedPlaces);
constexpr std::size_t kBucket = 8;  // slots per bucket: a token lives in one bucket
constexpr std::uint8_t kUsed = 1, kSharedSeen = 2, kSharedConcurrent = 4;
// Slot::place_flags
constexpr std::uint8_t kPlaceAs = 1, kPlaceConcurrent = 2, kPlaceV4 = 4, kPlaceV6 = 8, kPlacePaired = 16;
// Dual stack is paired (fallback places) when the other family was used
// within this many ticks (10 s by default): Happy Eyeballs switches
// within one connection attempt, a player's next segment follows within
// seconds.
constexpr unsigned kPairTicks = 2;
constexpr std::size_t kLogWays = 8;
unsigned popcount8(std::uint8_t x) { return static_cast<unsigned>(__builtin_popcount(x)); }
std::uint16_t alias_of(std::uint32_t id) { return static_cast<std::uint16_t>(id | 1); }
}  // namespace

// 64 bytes per tracked token, one cache line. Times are 8-bit ticks of
// tick_s_ seconds after base_s, rebased as the token's use moves on. A
// place's networks are 8-bit maps per family (bit = 3 bits of the network's
// hash): distinct networks by popcount, collisions under-count.
struct SharingDetector::Slot {
  std::uint64_t session;
  std::uint32_t expires;
  std::uint32_t base_s;
  std::uint32_t place_id[kPlaces];  // 0 = none
  std::uint16_t key_id;
  std::uint16_t alias[kPlaces];  // the paired family's place id (low 16 bits | 1)
  std::uint8_t tick[kPlaces];    // last use of each place
  std::uint8_t nets4[kPlaces], nets6[kPlaces];
  std::uint8_t place_flags[kPlaces];
  std::uint8_t shared_tick;  // last use of any shared network
  std::uint8_t flags;
  std::uint8_t limit;  // 1 + index in policy.client_limits, 0: the policy's own
  std::uint8_t reserved[3];
};

// The network log: per bucket of tokens, the networks they were last seen
// from, for the evidence of a verdict (the slot keeps only counts).
struct SharingDetector::LogEntry {
  std::uint32_t owner;  // token hash, low 32 bits | 1; 0 = free
  std::uint32_t first_s, last_s;
  std::uint32_t place_id;
  NetworkId network;
  std::uint8_t place_kind;
  char country[2];
};

SharingDetector::SharingDetector(const SharingPolicy& policy) : policy_(policy) {
  static_assert(sizeof(Slot) == 64, "per-token state must stay one cache line");
  if (policy_.window_s == 0) policy_.window_s = 1;
  // A client's window can only be shorter: the slots forget at window_s.
  if (policy_.client_limits.size() > kMaxClientLimits) policy_.client_limits.resize(kMaxClientLimits);
  for (ClientSharingLimit& c : policy_.client_limits) {
    c.window_s = std::clamp<std::uint32_t>(c.window_s, 1, policy_.window_s);
    c.max_places = std::clamp(c.max_places, 1u, kMaxTrackedPlaces);
  }
  // 255 ticks must span the window with room to spare before a rebase.
  tick_s_ = std::max<std::uint32_t>(1, (policy_.window_s + 119) / 120);
  // One slot in thirteen spare, so buckets rarely overflow before
  // max_sessions (two candidate buckets of 8 slots; the test counts them).
  const std::size_t want = std::max<std::size_t>(policy_.max_sessions, 1);
  bucket_count_ = (want + want / 12 + kBucket - 1) / kBucket;
  slot_count_ = bucket_count_ * kBucket;
  log_buckets_ = std::max<std::size_t>(64, want / 128);
  // All three tables in one zeroed mapping on huge pages (table_memory.h):
  // the slots, then the fingerprints, then the network log. All-zero
  // bytes are free slots and empty entries.
  static_assert(sizeof(Slot) % alignof(LogEntry) == 0, "the log follows the slots' alignment");
  const std::size_t fingerprint_bytes = (slot_count_ + 63) / 64 * 64;
  memory_ = std::make_unique<TableMemory>(slot_count_ * sizeof(Slot) + fingerprint_bytes +
                                          log_buckets_ * kLogWays * sizeof(LogEntry));
  auto* base = static_cast<unsigned char*>(memory_->data());
  slots_ = reinterpret_cast<Slot*>(base);
  fingerprints_ = base + slot_count_ * sizeof(Slot);
  log_ = reinterpret_cast<LogEntry*>(fingerprints_ + fingerprint_bytes);
}

SharingDetector::~SharingDetector() = default;

std::size_t SharingDetector::memory_bytes() const { return sizeof *this + memory_->size(); }

// Two candidate buckets per token (the two halves of its hash): a newcomer
// takes a free slot in either, which keeps buckets from overflowing until
// the table is nearly full (one bucket alone loses ~10% at max_sessions).
SharingDetector::Slot* SharingDetector::bucket_of(std::uint16_t key_id, std::uint64_t session, int which) const {
  const std::uint64_t h = token_hash(key_id, session);
  const std::uint64_t half = which == 0 ? h >> 32 : h & 0xffffffffu;
  return slots_ + (half * bucket_count_ >> 32) * kBucket;  // multiply-shift range reduction
}

// A bucket is 8 slots of one cache line each: the fingerprints (one byte
// per slot, eight buckets to a cache line) say which slots can hold the
// token, so a lookup reads two fingerprint words and, almost always, one
// slot instead of up to sixteen lines.
std::uint8_t SharingDetector::fingerprint_of(std::uint16_t key_id, std::uint64_t session) {
  return static_cast<std::uint8_t>(1 + (token_hash(key_id, session) >> 8) % 255);  // 0 = free
}

void SharingDetector::set_fingerprint(const Slot* s, std::uint8_t fingerprint) {
  fingerprints_[s - slots_] = fingerprint;
}

SharingDetector::Slot* SharingDetector::find(std::uint16_t key_id, std::uint64_t session) const {
  const std::uint8_t fp = fingerprint_of(key_id, session);
  for (int which = 0; which < 2; ++which) {
    Slot* b = bucket_of(key_id, session, which);
    const std::uint8_t* t = fingerprints_ + (b - slots_);
    for (std::size_t i = 0; i < kBucket; ++i) {
      if (t[i] == fp && b[i].session == session && b[i].key_id == key_id) return &b[i];
    }
  }
  return nullptr;
}

void SharingDetector::prefetch_fingerprints(std::uint16_t key_id, std::uint64_t session) const {
  for (int which = 0; which < 2; ++which)
    __builtin_prefetch(fingerprints_ + (bucket_of(key_id, session, which) - slots_));
}

void SharingDetector::prefetch_slot(std::uint16_t key_id, std::uint64_t session) const {
  const std::uint8_t fp = fingerprint_of(key_id, session);
  for (int which = 0; which < 2; ++which) {
    const Slot* b = bucket_of(key_id, session, which);
    const std::uint8_t* t = fingerprints_ + (b - slots_);
    for (std::size_t i = 0; i < kBucket; ++i) {
      if (t[i] != fp) continue;
      __builtin_prefetch(&b[i], 1);  // one line: slots are 64 bytes, table page-aligned
      return;
    }
  }
}

std::uint32_t SharingDetector::newest_s(const Slot& s) const {
  unsigned t = 0;
  for (int i = 0; i < kPlaces; ++i)
    if (s.place_id[i] != 0) t = std::max<unsigned>(t, s.tick[i]);
  if (s.flags & kSharedSeen) t = std::max<unsigned>(t, s.shared_tick);
  return s.base_s + t * tick_s_;
}

bool SharingDetector::stale(const Slot& s, std::uint32_t now_s) const {
  return now_s > s.expires || newest_s(s) + policy_.window_s < now_s;
}

void SharingDetector::rebase(Slot& s, std::uint32_t now_s) const {
  // Move the base to one window before now, in whole ticks; uses that fall
  // before the new base are outside the window and forgotten.
  const std::uint32_t target = now_s > policy_.window_s ? now_s - policy_.window_s : 0;
  if (target <= s.base_s) return;
  const std::uint32_t shift = (target - s.base_s) / tick_s_;
  s.base_s += shift * tick_s_;
  for (int i = 0; i < kPlaces; ++i) {
    if (s.place_id[i] == 0) continue;
    if (s.tick[i] < shift) {
      s.place_id[i] = 0;
      s.alias[i] = 0;
      s.nets4[i] = s.nets6[i] = 0;
      s.place_flags[i] = 0;
    } else {
      s.tick[i] = static_cast<std::uint8_t>(s.tick[i] - shift);
    }
  }
  if (s.flags & kSharedSeen) {
    if (s.shared_tick < shift) {
      s.flags &= static_cast<std::uint8_t>(~(kSharedSeen | kSharedConcurrent));
    } else {
      s.shared_tick = static_cast<std::uint8_t>(s.shared_tick - shift);
    }
  }
}

// A place (or the shared group) weighs 1 when it met another within
// concurrent_s and something else is still in the window, or when it is
// alone; otherwise (a handover) sequential_weight.
double SharingDetector::presence_weight(bool concurrent, unsigned live_total) const {
  return (concurrent && live_total > 1) || live_total == 1 ? 1.0 : policy_.sequential_weight;
}

// Further networks inside place i; a dual-stack pair is one network's
// worth, so they are counted per family.
double SharingDetector::inside_weight(const Slot& s, int i) const {
  const unsigned inside = std::max(popcount8(s.nets4[i]), popcount8(s.nets6[i]));
  return inside > 1 ? std::min(policy_.place_extra_max, policy_.network_weight * (inside - 1)) : 0.0;
}

SharingVerdict SharingDetector::score(const Slot& s) const {
  // "Now" is the token's newest use, so the verdict does not depend on when
  // (or in which order) the sightings arrived.
  unsigned newest = 0;
  for (int i = 0; i < kPlaces; ++i)
    if (s.place_id[i] != 0) newest = std::max<unsigned>(newest, s.tick[i]);
  if (s.flags & kSharedSeen) newest = std::max<unsigned>(newest, s.shared_tick);
  const ClientSharingLimit* own = s.limit != 0 ? &policy_.client_limits[s.limit - 1] : nullptr;
  const unsigned max_places = own != nullptr ? own->max_places : policy_.max_places;
  const std::uint32_t window_s = window_of(s);
  auto live = [&](unsigned tick) { return (newest - tick) * tick_s_ <= window_s; };

  SharingVerdict v;
  v.limit = max_places;
  for (int i = 0; i < kPlaces; ++i) {
    if (s.place_id[i] == 0 || !live(s.tick[i])) continue;
    ++v.places;
    v.networks += std::max(1u, popcount8(s.nets4[i]) + popcount8(s.nets6[i]));
  }
  const bool shared_live = (s.flags & kSharedSeen) && live(s.shared_tick);
  const unsigned total = v.places + (shared_live ? 1 : 0);
  v.networks += shared_live ? 1 : 0;

  double places_score = 0, extra = 0;
  for (int i = 0; i < kPlaces; ++i) {
    if (s.place_id[i] == 0 || !live(s.tick[i])) continue;
    places_score += presence_weight((s.place_flags[i] & kPlaceConcurrent) != 0, total);
    extra += inside_weight(s, i);
  }
  // All places' further networks together add at most place_extra_max,
  // below kTipWeight: an honest commute (home, a carrier's NAT pool, an
  // office's proxy pool, each handover "concurrent") shows three places
  // with networks inside two of them, exactly as three strangers on busy
  // ISPs do. Only a further place or the shared group tips three places.
  extra = std::min(extra, policy_.place_extra_max);
  const double shared_score = shared_live ? presence_weight((s.flags & kSharedConcurrent) != 0, total) : 0;
  v.score = places_score + extra + shared_score;
  // The shared group and the networks inside places may tip a token over
  // the line but never carry it: the places alone must reach max_places.
  v.shared = places_score + kEpsilon >= max_places && v.score + kEpsilon >= max_places + kTipWeight;
  return v;
}

std::uint32_t SharingDetector::window_of(const Slot& s) const {
  return s.limit != 0 ? policy_.client_limits[s.limit - 1].window_s : policy_.window_s;
}

std::uint8_t SharingDetector::limit_index(std::uint32_t client_hash) const {
  for (std::size_t i = 0; i < policy_.client_limits.size(); ++i) {
    if (policy_.client_limits[i].client_hash == client_hash) return static_cast<std::uint8_t>(i + 1);
  }
  return 0;
}

std::uint32_t sharing_client_hash(std::string_view client) {
  std::uint32_t h = 2166136261u;
  for (const char c : client) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  return h;
}

// The place entry of this sighting's place, or -1. Fallback and
// database-network places are one family's: the other family's first
// place seen within kPairTicks of it becomes its alias (dual stack).
int SharingDetector::place_index(Slot& s, const Place& place, bool v6, unsigned tick) const {
  const bool as = place.kind == PlaceKind::as;
  for (int i = 0; i < kPlaces; ++i) {
    if (s.place_id[i] == 0) continue;
    const bool entry_as = s.place_flags[i] & kPlaceAs;
    if (entry_as != as) continue;
    if (s.place_id[i] == place.id) return i;
    if (!as && (s.place_flags[i] & kPlacePaired) && s.alias[i] == alias_of(place.id)) return i;
  }
  if (as) return -1;
  const std::uint8_t other = v6 ? kPlaceV4 : kPlaceV6, mine = v6 ? kPlaceV6 : kPlaceV4;
  for (int i = 0; i < kPlaces; ++i) {
    const std::uint8_t f = s.place_flags[i];
    if (s.place_id[i] == 0 || (f & (kPlaceAs | kPlacePaired | mine)) || !(f & other)) continue;
    const unsigned d = tick > s.tick[i] ? tick - s.tick[i] : s.tick[i] - tick;
    if (d > kPairTicks) continue;
    s.alias[i] = alias_of(place.id);
    s.place_flags[i] |= kPlacePaired;
    return i;
  }
  return -1;
}

void SharingDetector::log_network(std::uint64_t token_hash_value, const NetworkId& net, const Place& place,
                                  std::uint32_t now_s) {
  const auto owner = static_cast<std::uint32_t>(token_hash_value) | 1;
  LogEntry* set = log_ + (token_hash_value >> 32) % log_buckets_ * kLogWays;
  LogEntry* victim = &set[0];
  for (std::size_t i = 0; i < kLogWays; ++i) {
    LogEntry& e = set[i];
    if (e.owner == owner && e.network == net) {
      e.last_s = std::max(e.last_s, now_s);
      e.first_s = std::min(e.first_s, now_s);
      return;
    }
    if (e.owner == 0 || e.last_s < victim->last_s) victim = &e;
    if (victim->owner == 0) break;
  }
  victim->owner = owner;
  victim->first_s = victim->last_s = now_s;
  victim->network = net;
  victim->place_id = place.id;
  victim->place_kind = static_cast<std::uint8_t>(place.kind);
  std::memcpy(victim->country, place.country, 2);
}

// A slot for a token not tracked yet: a free slot in the emptier of its two
// buckets, else a stale one, else the one used least recently (counted).
SharingDetector::Slot* SharingDetector::claim(std::uint16_t key_id, std::uint64_t session, std::uint32_t now_s) {
  Slot* const buckets[2] = {bucket_of(key_id, session, 0), bucket_of(key_id, session, 1)};
  Slot* victim = nullptr;
  std::size_t most_free = 0;
  for (Slot* b : buckets) {
    std::size_t free_here = 0;
    Slot* first_free = nullptr;
    const std::uint8_t* fps = fingerprints_ + (b - slots_);
    for (std::size_t i = 0; i < kBucket; ++i) {
      if (fps[i] != 0) continue;  // used
      ++free_here;
      if (first_free == nullptr) first_free = &b[i];
    }
    if (free_here > most_free) {
      most_free = free_here;
      victim = first_free;
    }
  }
  for (Slot* b : buckets)
    for (std::size_t i = 0; i < kBucket && victim == nullptr; ++i)
      if (stale(b[i], now_s)) victim = &b[i];
  if (victim == nullptr) {
    victim = buckets[0];
    for (Slot* b : buckets)
      for (std::size_t i = 0; i < kBucket; ++i)
        if (newest_s(b[i]) < newest_s(*victim)) victim = &b[i];
    ++evictions_;
  }
  if (!(victim->flags & kUsed)) ++tracked_;
  *victim = Slot();
  victim->flags = kUsed;
  set_fingerprint(victim, fingerprint_of(key_id, session));
  victim->session = session;
  victim->key_id = key_id;
  victim->base_s = now_s > policy_.window_s ? now_s - policy_.window_s : 0;
  return victim;
}

SharingVerdict SharingDetector::observe(std::uint16_t key_id, std::uint64_t session, std::uint32_t token_expires,
                                        const NetworkId& network, const Place& given_place, bool shared_network,
                                        std::uint64_t time_ms, std::uint32_t client_hash) {
  const auto now_s = static_cast<std::uint32_t>(time_ms / 1000);
  Slot* s = find(key_id, session);
  if (s == nullptr) s = claim(key_id, session, now_s);
  // The latest expiry seen: a subscriber's slot outlives each of its tokens.
  s->expires = std::max(s->expires, token_expires);
  if (!policy_.client_limits.empty()) s->limit = limit_index(client_hash);

  // Older than anything kept, or than the token's window: already forgotten.
  if (now_s < s->base_s || now_s + policy_.window_s < newest_s(*s)) return score(*s);
  if ((now_s - s->base_s) / tick_s_ > 255) rebase(*s, now_s);
  const auto t = static_cast<std::uint8_t>((now_s - s->base_s) / tick_s_);
  auto near = [&](unsigned other) {
    const unsigned d = t > other ? t - other : other - t;
    return d * tick_s_ <= policy_.concurrent_s;
  };

  if (shared_network) {
    // Concurrency with every place used within concurrent_s of this use.
    for (int i = 0; i < kPlaces; ++i) {
      if (s->place_id[i] == 0 || !near(s->tick[i])) continue;
      s->place_flags[i] |= kPlaceConcurrent;
      s->flags |= kSharedConcurrent;
    }
    if (!(s->flags & kSharedSeen) || t > s->shared_tick) s->shared_tick = t;
    s->flags |= kSharedSeen;
    return score(*s);
  }

  const Place place =
      given_place.kind == PlaceKind::none || given_place.id == 0 ? fallback_place(network) : given_place;
  int me = place_index(*s, place, network.v6, t);
  if (me < 0) {
    // A free entry, else the least recently used place's.
    me = 0;
    for (int i = 0; i < kPlaces; ++i) {
      if (s->place_id[i] == 0) {
        me = i;
        break;
      }
      if (s->tick[i] < s->tick[me]) me = i;
    }
    s->place_id[me] = place.id;
    s->alias[me] = 0;
    s->tick[me] = t;
    s->nets4[me] = s->nets6[me] = 0;
    s->place_flags[me] = place.kind == PlaceKind::as ? kPlaceAs : 0;
  }
  s->place_flags[me] |= network.v6 ? kPlaceV6 : kPlaceV4;
  const auto bit = static_cast<std::uint8_t>(1u << (network.hash() >> 61));
  std::uint8_t& nets = network.v6 ? s->nets6[me] : s->nets4[me];
  const bool new_network = !(nets & bit);
  nets |= bit;
  // Concurrency with every other place (the shared group included) used
  // within concurrent_s of this use.
  for (int i = 0; i < kPlaces; ++i) {
    if (i == me || s->place_id[i] == 0 || !near(s->tick[i])) continue;
    s->place_flags[i] |= kPlaceConcurrent;
    s->place_flags[me] |= kPlaceConcurrent;
  }
  if ((s->flags & kSharedSeen) && near(s->shared_tick)) {
    s->place_flags[me] |= kPlaceConcurrent;
    s->flags |= kSharedConcurrent;
  }
  if (t > s->tick[me]) s->tick[me] = t;
  const SharingVerdict v = score(*s);
  // The log serves the evidence: a token's first sightings of each
  // network, and every sighting once it has more than one place.
  if (new_network || v.places > 1) log_network(token_hash(key_id, session), network, place, now_s);
  return v;
}

SharingVerdict SharingDetector::verdict(std::uint16_t key_id, std::uint64_t session) const {
  const Slot* s = find(key_id, session);
  return s ? score(*s) : SharingVerdict();
}

void SharingDetector::forget(std::uint16_t key_id, std::uint64_t session) {
  if (Slot* s = find(key_id, session)) {
    *s = Slot();
    set_fingerprint(s, 0);
    --tracked_;
  }
}

void SharingDetector::expire(std::uint64_t now_ms) {
  expire_cursor_ = 0;
  expire_some(now_ms, slot_count_);
}

void SharingDetector::expire_some(std::uint64_t now_ms, std::size_t slots) {
  const auto now_s = static_cast<std::uint32_t>(now_ms / 1000);
  for (std::size_t n = std::min(slots, slot_count_); n > 0; --n) {
    Slot& s = slots_[expire_cursor_];
    if (fingerprints_[expire_cursor_] != 0 && stale(s, now_s)) {  // free slots are not even read
      s = Slot();
      fingerprints_[expire_cursor_] = 0;
      --tracked_;
    }
    if (++expire_cursor_ == slot_count_) expire_cursor_ = 0;
  }
}

std::vector<PlaceEvidence> SharingDetector::places_of(std::uint16_t key_id, std::uint64_t session) const {
  std::vector<PlaceEvidence> out;
  const Slot* s = find(key_id, session);
  if (s == nullptr) return out;
  const std::uint32_t newest = newest_s(*s);
  const std::uint32_t window_s = window_of(*s);
  const bool shared_live = (s->flags & kSharedSeen) && newest - (s->base_s + s->shared_tick * tick_s_) <= window_s;
  const unsigned total = score(*s).places + (shared_live ? 1 : 0);
  for (int i = 0; i < kPlaces; ++i) {
    const std::uint32_t last = s->base_s + s->tick[i] * tick_s_;
    if (s->place_id[i] == 0 || newest - last > window_s) continue;
    PlaceEvidence e;
    e.place.kind = (s->place_flags[i] & kPlaceAs) ? PlaceKind::as : PlaceKind::fallback;
    e.place.id = s->place_id[i];
    e.networks = std::max(1u, popcount8(s->nets4[i]) + popcount8(s->nets6[i]));
    e.last_s = last;
    e.concurrent = (s->place_flags[i] & kPlaceConcurrent) && total > 1;
    e.weight = presence_weight(e.concurrent, total) + inside_weight(*s, i);
    out.push_back(e);
  }
  return out;
}

std::vector<NetworkEvidence> SharingDetector::networks_of(std::uint16_t key_id, std::uint64_t session) const {
  std::vector<NetworkEvidence> out;
  const Slot* s = find(key_id, session);
  if (s == nullptr) return out;
  const std::uint32_t newest = newest_s(*s);
  const std::uint64_t h = token_hash(key_id, session);
  const auto owner = static_cast<std::uint32_t>(h) | 1;
  const LogEntry* set = log_ + (h >> 32) % log_buckets_ * kLogWays;
  for (std::size_t i = 0; i < kLogWays; ++i) {
    const LogEntry& e = set[i];
    if (e.owner != owner || e.last_s + policy_.window_s < newest) continue;
    NetworkEvidence n;
    n.network = e.network;
    n.place.kind = static_cast<PlaceKind>(e.place_kind);
    n.place.id = e.place_id;
    std::memcpy(n.place.country, e.country, 2);
    n.first_s = e.first_s;
    n.last_s = e.last_s;
    out.push_back(n);
  }
  std::sort(out.begin(), out.end(),
            [](const NetworkEvidence& a, const NetworkEvidence& b) { return a.first_s < b.first_s; });
  return out;
}

std::pair<std::uint32_t, std::uint32_t> SharingDetector::seen_span(std::uint16_t key_id, std::uint64_t session) const {
  const Slot* s = find(key_id, session);
  if (s == nullptr) return {0, 0};
  std::uint32_t first = 0, last = 0;
  for (const NetworkEvidence& n : networks_of(key_id, session)) {
    first = first == 0 ? n.first_s : std::min(first, n.first_s);
    last = std::max(last, n.last_s);
  }
  for (const PlaceEvidence& p : places_of(key_id, session)) {
    first = first == 0 ? p.last_s : std::min(first, p.last_s);
    last = std::max(last, p.last_s);
  }
  return {first, last};
}

std::uint64_t SharingPolicy::digest() const {
  // Order-independent over the shared ranges; every field through splitmix64.
  std::uint64_t h = splitmix64(max_places);
  h = splitmix64(h ^ window_s);
  h = splitmix64(h ^ concurrent_s);
  h = splitmix64(h ^ static_cast<std::uint64_t>(sequential_weight * 1000));
  h = splitmix64(h ^ (static_cast<std::uint64_t>(network_weight * 1000) << 20 |
                      static_cast<std::uint64_t>(place_extra_max * 1000)));
  h = splitmix64(h ^ (ipv4_prefix << 8 | ipv6_prefix));
  h = splitmix64(h ^ (default_shared_ranges ? 1 : 2) ^ (places_from_database ? 4 : 0));
  h = splitmix64(h ^ (std::uint64_t{proxy_sessions} << 32 | proxy_clients));
  std::uint64_t ranges = 0;
  for (const IpPrefix& p : shared_ranges) {
    std::uint64_t r = splitmix64(p.length | (p.addr.v6 ? 0x100u : 0u));
    for (std::size_t i = 0; i < sizeof p.addr.bytes; ++i) r = splitmix64(r ^ p.addr.bytes[i]);
    ranges += r;
  }
  h = splitmix64(h ^ ranges);
  std::uint64_t clients = 0;  // order-independent too
  for (const ClientSharingLimit& c : client_limits) {
    clients += splitmix64(splitmix64(c.client_hash) ^ (std::uint64_t{c.max_places} << 32 | c.window_s));
  }
  h = splitmix64(h ^ clients);
  // Only when set: a node without account sharing keeps the digest it had.
  std::uint64_t subscribers = 0;
  for (const ClientSharingLimit& c : subscriber_limits) {
    subscribers += splitmix64(splitmix64(c.client_hash ^ 0x5ab5u) ^ (std::uint64_t{c.max_places} << 32 | c.window_s));
  }
  if (subscribers != 0) h = splitmix64(h ^ subscribers);
  // Only when on: a node without the bulk signal keeps the digest it had.
  if (bulk.enabled) h = splitmix64(h ^ splitmix64(bulk.requests_per_min) ^ (bulk.bytes_per_min * 3));
  return h == 0 ? 1 : h;
}

SharingPolicy subscriber_policy(const SharingPolicy& tokens) {
  SharingPolicy p = tokens;
  p.client_limits = tokens.subscriber_limits;
  p.subscriber_limits.clear();
  p.bulk.enabled = false;  // bulk use is a token's, never an account's
  p.max_sessions = std::max<std::size_t>(1024, tokens.max_sessions / 4);
  return p;
}

const ClientSharingLimit* subscriber_limit(const SharingPolicy& p, std::uint32_t client_hash) {
  for (const ClientSharingLimit& c : p.subscriber_limits) {
    if (c.client_hash == client_hash) return &c;
  }
  return nullptr;
}

}  // namespace uritoken
