// SPDX-License-Identifier: Apache-2.0
#include <sodium.h>

#include <algorithm>
#include <arpa/inet.h>
#include <cstring>

#include "gossip.h"
#include "wire.h"
#include "../mod_uritoken/core/mix.h"

namespace uritoken::gossip {
namespace {

// Digest contribution of one entry: SipHash of its wire encoding (fixed key:
// peers must agree; the input comes from authenticated peers only). The
// encoding includes the evidence, on purpose: only the deciding node sets
// it (Node::decide stores the canonical form peers decode), so one (stamp,
// origin) never carries two evidences and equal winners hash equal. Were it
// to happen, the bucket would be re-sent on every push-pull without either
// side changing (evidence is not in wins_over): wasted traffic, never a
// wrong verdict.
std::uint64_t entry_hash(const Revocation& r) {
  static const unsigned char key[crypto_shorthash_KEYBYTES] = {'u', 'r', 'i', 't', 'o', 'k',
                                                               'e', 'n', '-', 'r', 'e', 'v'};
  std::vector<std::uint8_t> buf;
  buf.reserve(wire::kMaxRevocationSize);
  wire::encode_revocation(r, buf);
  unsigned char out[crypto_shorthash_BYTES];
  crypto_shorthash(out, buf.data(), buf.size(), key);
  std::uint64_t h;
  std::memcpy(&h, out, sizeof h);
  return h | 1;  // never 0, so an entry always changes its bucket's digest
}

auto tuple(const Revocation& r) {
  // Later stamp wins; at equal stamps a revoke beats a pardon (add-wins), then
  // the larger origin; the rest only makes the order total.
  return std::make_tuple(r.stamp_ms, !r.pardon, r.origin, !r.shadow, r.token_expires, r.reason, r.networks);
}

bool token_less(const Revocation& r, const TokenRef& t) { return r.token < t; }

}  // namespace

bool Evidence::Network::operator==(const Network& o) const {
  return v6 == o.v6 && prefix_len == o.prefix_len && std::memcmp(bytes, o.bytes, sizeof bytes) == 0;
}

bool Evidence::Place::operator==(const Place& o) const {
  return kind == o.kind && id == o.id && networks == o.networks && concurrent == o.concurrent &&
         weight_x10 == o.weight_x10 && first_s == o.first_s && last_s == o.last_s;
}

bool Evidence::operator==(const Evidence& o) const {
  return networks == o.networks && first_seen_s == o.first_seen_s && last_seen_s == o.last_seen_s &&
         operator_address == o.operator_address && user == o.user && comment == o.comment && places == o.places &&
         score_x100 == o.score_x100 && limit == o.limit && bulk_requests_per_min == o.bulk_requests_per_min &&
         bulk_bytes_per_min == o.bulk_bytes_per_min;
}

bool Revocation::operator==(const Revocation& o) const {
  return token == o.token && tuple(*this) == tuple(o) && evidence == o.evidence;
}

bool wins_over(const Revocation& a, const Revocation& b) { return tuple(a) > tuple(b); }

RevocationSet::RevocationSet() : buckets_(kBuckets), bucket_hash_(kBuckets, 0) {}

void RevocationSet::set_hash(std::size_t b, std::uint64_t delta) {
  bucket_hash_[b] ^= delta;
  group_hash_[b / kBucketsPerGroup] ^= delta;
}

bool RevocationSet::merge(const Revocation& r) {
  std::size_t b = bucket_of(r.token);
  auto& v = buckets_[b];
  auto it = std::lower_bound(v.begin(), v.end(), r.token, token_less);
  if (it != v.end() && it->token == r.token) {
    if (!wins_over(r, *it)) return false;
    set_hash(b, entry_hash(*it) ^ entry_hash(r));
    *it = r;
    return true;
  }
  v.insert(it, r);
  set_hash(b, entry_hash(r));
  ++size_;
  return true;
}

const Revocation* RevocationSet::find(const TokenRef& t) const {
  const auto& v = buckets_[bucket_of(t)];
  auto it = std::lower_bound(v.begin(), v.end(), t, token_less);
  return it != v.end() && it->token == t ? &*it : nullptr;
}

bool RevocationSet::in_force(const TokenRef& t, std::uint32_t now_s) const {
  const Revocation* r = find(t);
  return r && !r->pardon && now_s <= r->token_expires;
}

std::size_t RevocationSet::expire(std::uint32_t now_s) {
  std::size_t dropped = 0;
  for (std::size_t b = 0; b < kBuckets; ++b) {
    auto& v = buckets_[b];
    auto keep = std::remove_if(v.begin(), v.end(), [&](const Revocation& r) {
      if (now_s <= r.token_expires) return false;
      set_hash(b, entry_hash(r));
      return true;
    });
    dropped += static_cast<std::size_t>(v.end() - keep);
    v.erase(keep, v.end());
  }
  size_ -= dropped;
  return dropped;
}

std::vector<Revocation> RevocationSet::snapshot() const {
  std::vector<Revocation> out;
  out.reserve(size_);
  for_each([&](const Revocation& r) { out.push_back(r); });
  return out;
}

std::size_t RevocationSet::memory_bytes() const {
  // The buckets' own objects here, their contents in the loop below.
  std::size_t n = sizeof(*this) + buckets_.capacity() * sizeof(buckets_[0]) +  // NOLINT(bugprone-sizeof-container)
                  bucket_hash_.capacity() * sizeof(std::uint64_t);
  const std::size_t inline_chars = std::string().capacity();  // short strings live inside
  auto heap = [&](const std::string& str) { return str.capacity() > inline_chars ? str.capacity() + 1 : 0; };
  for (const auto& b : buckets_) {
    n += b.capacity() * sizeof(Revocation);
    for (const auto& r : b) {
      const Evidence& e = r.evidence;
      n += e.networks.capacity() * sizeof(Evidence::Network) + heap(e.operator_address) + heap(e.user) +
           heap(e.comment) + e.places.capacity() * sizeof(Evidence::Place);
    }
  }
  return n;
}

bool SightingReport::operator==(const SightingReport& o) const {
  return token == o.token && token_expires == o.token_expires && std::memcmp(network, o.network, sizeof network) == 0 &&
         shared_network == o.shared_network && client_hash == o.client_hash && time_ms == o.time_ms &&
         place_kind == o.place_kind && place_id == o.place_id && std::memcmp(country, o.country, 2) == 0 &&
         requests == o.requests && bytes == o.bytes;
}

std::optional<Endpoint> Endpoint::parse(std::string_view text) {
  Endpoint e;
  std::string host;
  std::string_view port;
  if (!text.empty() && text[0] == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return std::nullopt;
    host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
    e.v6 = true;
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5) return std::nullopt;
  unsigned p = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return std::nullopt;
    p = p * 10 + static_cast<unsigned>(c - '0');
  }
  if (p == 0 || p > 65535) return std::nullopt;
  e.port = static_cast<std::uint16_t>(p);
  if (inet_pton(e.v6 ? AF_INET6 : AF_INET, host.c_str(), e.addr) != 1) return std::nullopt;
  return e;
}

std::string Endpoint::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6 ? AF_INET6 : AF_INET, addr, buf, sizeof buf);
  return v6 ? "[" + std::string(buf) + "]:" + std::to_string(port) : std::string(buf) + ":" + std::to_string(port);
}

bool Endpoint::operator==(const Endpoint& o) const {
  return v6 == o.v6 && port == o.port && std::memcmp(addr, o.addr, v6 ? 16 : 4) == 0;
}

bool Endpoint::operator<(const Endpoint& o) const {
  if (v6 != o.v6) return !v6;
  if (int c = std::memcmp(addr, o.addr, v6 ? 16 : 4)) return c < 0;
  return port < o.port;
}

}  // namespace uritoken::gossip
