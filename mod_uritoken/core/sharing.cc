// Link-sharing rule: network classification, proxy detection, per-token state.
#include "sharing.h"
#include "mix.h"
#include "token_id.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
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

// ---------------------------------------------------------------- SharingDetector

namespace {
constexpr int kNets = 7;               // networks remembered per token
constexpr std::size_t kBucket = 8;     // slots per bucket: a token lives in one bucket
constexpr std::uint8_t kUsed = 1, kSharedSeen = 2;
constexpr std::uint8_t kSharedBit = 0x80;  // in Slot::concurrent: the shared group
}  // namespace

// 56 bytes per tracked token. Times are 8-bit ticks of tick_s_ seconds after
// base_s, rebased as the token's use moves on; networks are 32-bit hashes
// (two networks of one token colliding merge into one: an under-count).
struct SharingDetector::Slot {
  std::uint64_t session;
  std::uint32_t expires;
  std::uint32_t base_s;
  std::uint32_t net[kNets];      // 0 = none
  std::uint16_t key_id;
  std::uint8_t tick[kNets];
  std::uint8_t shared_tick;      // last use of any shared network
  std::uint8_t concurrent;       // bit i: net[i] was used near another network's use; bit 7: shared group
  std::uint8_t flags;
};

struct SharingDetector::NameEntry {
  std::uint32_t hash;
  NetworkId id;
};

SharingDetector::SharingDetector(const SharingPolicy& policy) : policy_(policy) {
  static_assert(sizeof(Slot) == 56, "per-token state must stay compact");
  if (policy_.window_s == 0) policy_.window_s = 1;
  // 255 ticks must span the window with room to spare before a rebase.
  tick_s_ = std::max<std::uint32_t>(1, (policy_.window_s + 119) / 120);
  // One slot in thirteen spare, so buckets rarely overflow before
  // max_sessions (two candidate buckets of 8 slots; the test counts them).
  const std::size_t want = std::max<std::size_t>(policy_.max_sessions, 1);
  bucket_count_ = (want + want / 12 + kBucket - 1) / kBucket;
  slot_count_ = bucket_count_ * kBucket;
  std::size_t names = 1024;
  while (names * 32 < want) names <<= 1;
  name_mask_ = names - 1;
  // All three tables in one zeroed mapping on huge pages (table_memory.h):
  // the slots, then the fingerprints, then the network names. All-zero
  // bytes are free slots and empty entries.
  static_assert(sizeof(Slot) % alignof(NameEntry) == 0, "names follow the slots' alignment");
  const std::size_t fingerprint_bytes = (slot_count_ + 63) / 64 * 64;
  memory_ = std::make_unique<TableMemory>(slot_count_ * sizeof(Slot) + fingerprint_bytes + names * sizeof(NameEntry));
  auto* base = static_cast<unsigned char*>(memory_->data());
  slots_ = reinterpret_cast<Slot*>(base);
  fingerprints_ = base + slot_count_ * sizeof(Slot);
  names_ = reinterpret_cast<NameEntry*>(fingerprints_ + fingerprint_bytes);
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

// A bucket is 8 slots of 56 bytes, seven cache lines: the fingerprints (one byte
// per slot, eight buckets to a cache line) say which slots can hold the
// token, so a lookup reads two fingerprint words and, almost always, one slot
// instead of up to fourteen lines (a quarter of the sidecar's time went
// into such misses).
std::uint8_t SharingDetector::fingerprint_of(std::uint16_t key_id, std::uint64_t session) {
  return static_cast<std::uint8_t>(1 + (token_hash(key_id, session) >> 8) % 255);  // 0 = free
}

void SharingDetector::set_fingerprint(const Slot* s, std::uint8_t fingerprint) { fingerprints_[s - slots_] = fingerprint; }

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
  for (int which = 0; which < 2; ++which) __builtin_prefetch(fingerprints_ + (bucket_of(key_id, session, which) - slots_));
}

void SharingDetector::prefetch_slot(std::uint16_t key_id, std::uint64_t session) const {
  const std::uint8_t fp = fingerprint_of(key_id, session);
  for (int which = 0; which < 2; ++which) {
    const Slot* b = bucket_of(key_id, session, which);
    const std::uint8_t* t = fingerprints_ + (b - slots_);
    for (std::size_t i = 0; i < kBucket; ++i) {
      if (t[i] != fp) continue;
      // A slot of 56 bytes spans two cache lines more often than not.
      const char* slot = reinterpret_cast<const char*>(&b[i]);
      __builtin_prefetch(slot, 1);
      __builtin_prefetch(slot + sizeof(Slot) - 1, 1);
      return;
    }
  }
}

std::uint32_t SharingDetector::newest_s(const Slot& s) const {
  unsigned t = 0;
  for (int i = 0; i < kNets; ++i)
    if (s.net[i] != 0) t = std::max<unsigned>(t, s.tick[i]);
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
  for (int i = 0; i < kNets; ++i) {
    if (s.net[i] == 0) continue;
    if (s.tick[i] < shift) {
      s.net[i] = 0;
      s.concurrent &= static_cast<std::uint8_t>(~(1u << i));
    } else {
      s.tick[i] = static_cast<std::uint8_t>(s.tick[i] - shift);
    }
  }
  if (s.flags & kSharedSeen) {
    if (s.shared_tick < shift) {
      s.flags &= static_cast<std::uint8_t>(~kSharedSeen);
      s.concurrent &= static_cast<std::uint8_t>(~kSharedBit);
    } else {
      s.shared_tick = static_cast<std::uint8_t>(s.shared_tick - shift);
    }
  }
}

SharingVerdict SharingDetector::score(const Slot& s) const {
  // "Now" is the token's newest use, so the verdict does not depend on when
  // (or in which order) the sightings arrived.
  unsigned newest = 0;
  for (int i = 0; i < kNets; ++i)
    if (s.net[i] != 0) newest = std::max<unsigned>(newest, s.tick[i]);
  if (s.flags & kSharedSeen) newest = std::max<unsigned>(newest, s.shared_tick);
  auto live = [&](unsigned tick) { return (newest - tick) * tick_s_ <= policy_.window_s; };

  unsigned live_count = 0;
  for (int i = 0; i < kNets; ++i) live_count += s.net[i] != 0 && live(s.tick[i]);
  const bool shared_live = (s.flags & kSharedSeen) && live(s.shared_tick);
  const unsigned total = live_count + (shared_live ? 1 : 0);

  // A network is concurrent if it met another one and something else is
  // still in the window (otherwise it is a lone network: weight 1 anyway).
  double private_score = 0;
  for (int i = 0; i < kNets; ++i) {
    if (s.net[i] == 0 || !live(s.tick[i])) continue;
    const bool concurrent = (s.concurrent & (1u << i)) && total > 1;
    private_score += concurrent || total == 1 ? 1.0 : policy_.sequential_weight;
  }
  double shared_score = 0;
  if (shared_live) {
    const bool concurrent = (s.concurrent & kSharedBit) && total > 1;
    shared_score = concurrent || total == 1 ? 1.0 : policy_.sequential_weight;
  }
  SharingVerdict v;
  v.networks = total;
  v.score = private_score + shared_score;
  // Shared networks may tip a token over the line but never carry it: the
  // private networks alone must reach max_networks.
  v.shared = private_score + kEpsilon >= policy_.max_networks && v.score > policy_.max_networks + kEpsilon;
  return v;
}

SharingVerdict SharingDetector::observe(std::uint16_t key_id, std::uint64_t session, std::uint32_t token_expires,
                                        const NetworkId& network, bool shared_network, std::uint64_t time_ms) {
  const auto now_s = static_cast<std::uint32_t>(time_ms / 1000);
  Slot* s = find(key_id, session);
  if (s == nullptr) {
    Slot* const buckets[2] = {bucket_of(key_id, session, 0), bucket_of(key_id, session, 1)};
    // A free slot in the emptier bucket, else a stale one, else the one used
    // least recently.
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
    s = victim;
    s->flags = kUsed;
    set_fingerprint(s, fingerprint_of(key_id, session));
    s->session = session;
    s->key_id = key_id;
    s->base_s = now_s > policy_.window_s ? now_s - policy_.window_s : 0;
  }
  s->expires = token_expires;

  if (now_s < s->base_s) return score(*s);  // older than anything kept: already forgotten
  if ((now_s - s->base_s) / tick_s_ > 255) rebase(*s, now_s);
  const auto t = static_cast<std::uint8_t>((now_s - s->base_s) / tick_s_);
  auto near = [&](unsigned other) {
    const unsigned d = t > other ? t - other : other - t;
    return d * tick_s_ <= policy_.concurrent_s;
  };

  const std::uint32_t h = static_cast<std::uint32_t>(network.hash()) | 1;  // never 0 (free)
  int me = -1;  // index in net[], or -1 for the shared group
  if (!shared_network) {
    for (int i = 0; i < kNets; ++i)
      if (s->net[i] == h) me = i;
    if (me < 0) {
      // A free entry, else the least recently used network's.
      me = 0;
      for (int i = 0; i < kNets; ++i) {
        if (s->net[i] == 0) {
          me = i;
          break;
        }
        if (s->tick[i] < s->tick[me]) me = i;
      }
      s->net[me] = h;
      s->tick[me] = t;
      s->concurrent &= static_cast<std::uint8_t>(~(1u << me));
    }
    NameEntry& name = names_[h & name_mask_];
    name.hash = h;
    name.id = network;
  }
  // Concurrency with every other network (the shared group included) used
  // within concurrent_s of this use.
  const std::uint8_t my_bit = me < 0 ? kSharedBit : static_cast<std::uint8_t>(1u << me);
  for (int i = 0; i < kNets; ++i) {
    if (i == me || s->net[i] == 0 || !near(s->tick[i])) continue;
    s->concurrent |= static_cast<std::uint8_t>(my_bit | (1u << i));
  }
  if (me >= 0 && (s->flags & kSharedSeen) && near(s->shared_tick)) s->concurrent |= my_bit | kSharedBit;

  if (me < 0) {
    if (!(s->flags & kSharedSeen) || t > s->shared_tick) s->shared_tick = t;
    s->flags |= kSharedSeen;
  } else if (t > s->tick[me]) {
    s->tick[me] = t;
  }
  return score(*s);
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

std::vector<NetworkId> SharingDetector::networks_of(std::uint16_t key_id, std::uint64_t session) const {
  std::vector<NetworkId> out;
  const Slot* s = find(key_id, session);
  if (s == nullptr) return out;
  const std::uint32_t newest = newest_s(*s);
  for (int i = 0; i < kNets; ++i) {
    if (s->net[i] == 0 || newest - (s->base_s + s->tick[i] * tick_s_) > policy_.window_s) continue;
    const NameEntry& name = names_[s->net[i] & name_mask_];
    if (name.hash == s->net[i]) out.push_back(name.id);
  }
  return out;
}

std::pair<std::uint32_t, std::uint32_t> SharingDetector::seen_span(std::uint16_t key_id,
                                                                    std::uint64_t session) const {
  const Slot* s = find(key_id, session);
  if (s == nullptr) return {0, 0};
  const std::uint32_t newest = newest_s(*s);
  std::uint32_t first = 0, last = 0;
  for (int i = 0; i < kNets; ++i) {
    if (s->net[i] == 0) continue;
    const std::uint32_t t = s->base_s + s->tick[i] * tick_s_;
    if (newest - t > policy_.window_s) continue;
    first = first == 0 ? t : std::min(first, t);
    last = std::max(last, t);
  }
  return {first, last};
}

std::uint64_t SharingPolicy::digest() const {
  // Order-independent over the shared ranges; every field through splitmix64.
  std::uint64_t h = splitmix64(max_networks);
  h = splitmix64(h ^ window_s);
  h = splitmix64(h ^ concurrent_s);
  h = splitmix64(h ^ static_cast<std::uint64_t>(sequential_weight * 1000));
  h = splitmix64(h ^ (ipv4_prefix << 8 | ipv6_prefix));
  h = splitmix64(h ^ (default_shared_ranges ? 1 : 2));
  h = splitmix64(h ^ (std::uint64_t{proxy_sessions} << 32 | proxy_clients));
  std::uint64_t ranges = 0;
  for (const IpPrefix& p : shared_ranges) {
    std::uint64_t r = splitmix64(p.length | (p.addr.v6 ? 0x100u : 0u));
    for (std::size_t i = 0; i < sizeof p.addr.bytes; ++i) r = splitmix64(r ^ p.addr.bytes[i]);
    ranges += r;
  }
  h = splitmix64(h ^ ranges);
  return h == 0 ? 1 : h;
}

}  // namespace uritoken
