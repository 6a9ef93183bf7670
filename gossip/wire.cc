// SPDX-License-Identifier: Apache-2.0
#include "wire.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>

namespace uritoken::gossip::wire {
namespace {

// A node hash (32 lower-case hex digits) as the 16 bytes MEMBER carries.
constexpr std::size_t kIdentityBytes = 16;
bool identity_bytes(const std::string& hex, std::uint8_t out[kIdentityBytes]) {
  if (hex.size() != 2 * kIdentityBytes) return false;
  auto nibble = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
  for (std::size_t i = 0; i < kIdentityBytes; ++i) {
    const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return true;
}

}  // namespace

namespace {

void put8(std::vector<std::uint8_t>& o, std::uint8_t v) { o.push_back(v); }
void put16(std::vector<std::uint8_t>& o, std::uint16_t v) {
  o.push_back(static_cast<std::uint8_t>(v >> 8));
  o.push_back(static_cast<std::uint8_t>(v));
}
void put32(std::vector<std::uint8_t>& o, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) o.push_back(static_cast<std::uint8_t>(v >> s));
}
void put64(std::vector<std::uint8_t>& o, std::uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) o.push_back(static_cast<std::uint8_t>(v >> s));
}
void put_endpoint(std::vector<std::uint8_t>& o, const Endpoint& e) {
  put8(o, e.v6 ? 6 : 4);
  o.insert(o.end(), e.addr, e.addr + (e.v6 ? 16 : 4));
  put16(o, e.port);
}

// A record: type(1), body_len(2) patched in by end_record once known, body.
std::size_t begin_record(std::vector<std::uint8_t>& o, Type type) {
  put8(o, static_cast<std::uint8_t>(type));
  put16(o, 0);
  return o.size();
}
void end_record(std::vector<std::uint8_t>& o, std::size_t body_start) {
  const std::size_t len = o.size() - body_start;  // < 64 KiB: records are packet-sized
  o[body_start - 2] = static_cast<std::uint8_t>(len >> 8);
  o[body_start - 1] = static_cast<std::uint8_t>(len);
}

// Bounds-checked reader: any overrun sets `bad` and yields zeros.
struct Reader {
  const std::uint8_t* p;
  std::size_t n;
  bool bad = false;
  bool take(std::size_t k) {
    if (bad || n < k) {
      bad = true;
      return false;
    }
    return true;
  }
  std::uint64_t uint(std::size_t bytes) {
    if (!take(bytes)) return 0;
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < bytes; ++i) v = v << 8 | p[i];
    p += bytes;
    n -= bytes;
    return v;
  }
  std::uint8_t u8() { return static_cast<std::uint8_t>(uint(1)); }
  std::uint16_t u16() { return static_cast<std::uint16_t>(uint(2)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(uint(4)); }
  std::uint64_t u64() { return uint(8); }
  void bytes(std::uint8_t* out, std::size_t k) {
    if (!take(k)) return;
    std::memcpy(out, p, k);
    p += k;
    n -= k;
  }
  Endpoint endpoint() {
    Endpoint e;
    std::uint8_t fam = u8();
    if (fam != 4 && fam != 6) {
      bad = true;
      return e;
    }
    e.v6 = fam == 6;
    bytes(e.addr, e.v6 ? 16 : 4);
    e.port = u16();
    return e;
  }
};

// Length of s cut to `limit` bytes, backed off to the start of a UTF-8
// sequence it would split: the status page shows these strings as text.
std::size_t cut(const std::string& s, std::size_t limit) {
  if (s.size() <= limit) return s.size();
  std::size_t n = limit;
  while (n > 0 && limit - n < 3 && (static_cast<std::uint8_t>(s[n]) & 0xc0) == 0x80) --n;
  return (static_cast<std::uint8_t>(s[n]) & 0xc0) == 0x80 ? limit : n;  // not UTF-8: bytes
}

void put_string(std::vector<std::uint8_t>& o, const std::string& s, std::size_t limit) {
  std::size_t len = cut(s, limit);
  put8(o, static_cast<std::uint8_t>(len));
  o.insert(o.end(), s.begin(), s.begin() + static_cast<std::ptrdiff_t>(len));
}

bool get_string(Reader& r, std::string& s, std::size_t limit) {
  std::size_t len = r.u8();
  if (len > limit || !r.take(len)) return false;
  s.assign(reinterpret_cast<const char*>(r.p), len);
  r.p += len;
  r.n -= len;
  return true;
}

}  // namespace

bool has_times_or_rate(const Evidence& e) {
  if (e.bulk_requests_per_min != 0 || e.bulk_bytes_per_min != 0) return true;
  const std::size_t n = std::min(e.places.size(), Evidence::kMaxPlaces);  // the places encode_places writes
  for (std::size_t i = 0; i < n; ++i)
    if (e.places[i].first_s != 0 || e.places[i].last_s != 0) return true;
  return false;
}

void encode_times_and_rate(const Evidence& e, std::vector<std::uint8_t>& o) {
  const std::size_t n = std::min(e.places.size(), Evidence::kMaxPlaces);
  put8(o, static_cast<std::uint8_t>(n));
  for (std::size_t i = 0; i < n; ++i) {
    put32(o, e.places[i].first_s);
    put32(o, e.places[i].last_s);
  }
  put32(o, e.bulk_requests_per_min);
  put64(o, e.bulk_bytes_per_min);
}

bool decode_times_and_rate(const std::uint8_t* data, std::size_t size, Evidence& e) {
  Reader r{data, size};
  const std::size_t n = r.u8();
  if (r.bad || n != e.places.size()) return false;
  for (Evidence::Place& p : e.places) {
    p.first_s = r.u32();
    p.last_s = r.u32();
  }
  e.bulk_requests_per_min = r.u32();
  e.bulk_bytes_per_min = r.u64();
  // Exactly one encoding, as for the evidence (a later version appends
  // after times_len's bytes, not inside them).
  return !r.bad && r.n == 0 && has_times_or_rate(e);
}

namespace {

void put_revocation_body(std::vector<std::uint8_t>& o, const Revocation& r) {
  put16(o, r.token.key_id);
  put64(o, r.token.session);
  put32(o, r.token_expires);
  put64(o, r.stamp_ms);
  put8(o, static_cast<std::uint8_t>((r.pardon ? 1 : 0) | (r.shadow ? 2 : 0)));
  put64(o, r.origin);
  put8(o, static_cast<std::uint8_t>(r.reason));
  put8(o, r.networks);
  // Extension: ext_len(2) then the evidence, patched in once its size is known.
  std::size_t at = o.size();
  put16(o, 0);
  encode_evidence(r.evidence, o);
  std::size_t len = o.size() - at - 2;
  o[at] = static_cast<std::uint8_t>(len >> 8);
  o[at + 1] = static_cast<std::uint8_t>(len);
  // Protocol 3: places_len(2) and the places (none: length 0), read past
  // by older nodes; a later version appends after them.
  at = o.size();
  put16(o, 0);
  encode_places(r.evidence, o);
  len = o.size() - at - 2;
  o[at] = static_cast<std::uint8_t>(len >> 8);
  o[at + 1] = static_cast<std::uint8_t>(len);
  // Protocol 4: times_len(2) and each place's first and last use, then
  // the bulk rate (none: length 0); a later version appends after them.
  at = o.size();
  put16(o, 0);
  if (has_times_or_rate(r.evidence)) encode_times_and_rate(r.evidence, o);
  len = o.size() - at - 2;
  o[at] = static_cast<std::uint8_t>(len >> 8);
  o[at + 1] = static_cast<std::uint8_t>(len);
}

std::size_t network_len(std::uint8_t family) { return family == 4 ? 4 : family == 6 ? 16 : 0; }

}  // namespace

namespace {
// The part encode_evidence writes (places, times and rate have their own).
bool base_empty(const Evidence& e) {
  return e.networks.empty() && e.first_seen_s == 0 && e.last_seen_s == 0 && e.operator_address.empty() &&
         e.user.empty() && e.comment.empty();
}
}  // namespace

void encode_evidence(const Evidence& e, std::vector<std::uint8_t>& o) {
  if (base_empty(e)) return;  // most revocations: no bytes at all
  std::size_t n = std::min(e.networks.size(), Evidence::kMaxNetworks);
  put8(o, static_cast<std::uint8_t>(n));
  for (std::size_t i = 0; i < n; ++i) {
    const Evidence::Network& net = e.networks[i];
    put8(o, net.v6 ? 6 : 4);
    put8(o, std::min<std::uint8_t>(net.prefix_len, net.v6 ? 128 : 32));
    o.insert(o.end(), net.bytes, net.bytes + (net.v6 ? 16 : 4));
  }
  put32(o, e.first_seen_s);
  put32(o, e.last_seen_s);
  put_string(o, e.operator_address, Evidence::kMaxOperator);
  put_string(o, e.user, Evidence::kMaxUser);
  put_string(o, e.comment, Evidence::kMaxComment);
}

bool decode_evidence(const std::uint8_t* data, std::size_t size, Evidence& e) {
  Reader r{data, size};
  e = Evidence{};
  if (size == 0) return true;
  std::size_t n = r.u8();
  if (n > Evidence::kMaxNetworks) return false;
  e.networks.resize(n);
  for (auto& net : e.networks) {
    std::uint8_t fam = r.u8();
    if (fam != 4 && fam != 6) return false;
    net.v6 = fam == 6;
    net.prefix_len = r.u8();
    if (net.prefix_len > (net.v6 ? 128 : 32)) return false;
    r.bytes(net.bytes, network_len(fam));
  }
  e.first_seen_s = r.u32();
  e.last_seen_s = r.u32();
  if (!get_string(r, e.operator_address, Evidence::kMaxOperator) || !get_string(r, e.user, Evidence::kMaxUser) ||
      !get_string(r, e.comment, Evidence::kMaxComment))
    return false;
  // Nothing missing, nothing left over, and empty evidence only as no
  // bytes: one encoding per value, so what decodes re-encodes the same.
  return !r.bad && r.n == 0 && !base_empty(e);
}

void encode_places(const Evidence& e, std::vector<std::uint8_t>& o) {
  if (e.places.empty()) return;
  const std::size_t n = std::min(e.places.size(), Evidence::kMaxPlaces);
  put8(o, static_cast<std::uint8_t>(n));
  for (std::size_t i = 0; i < n; ++i) {
    const Evidence::Place& p = e.places[i];
    put8(o, p.kind);
    put32(o, p.id);
    put8(o, p.networks);
    put8(o, p.concurrent ? 1 : 0);
    put8(o, p.weight_x10);
  }
  put16(o, e.score_x100);
  put8(o, e.limit);
}

bool decode_places(const std::uint8_t* data, std::size_t size, Evidence& e) {
  Reader r{data, size};
  e.places.clear();
  e.score_x100 = 0;
  e.limit = 0;
  if (size == 0) return true;
  const std::size_t n = r.u8();
  if (n == 0 || n > Evidence::kMaxPlaces) return false;
  e.places.resize(n);
  for (auto& p : e.places) {
    p.kind = r.u8();
    p.id = r.u32();
    p.networks = r.u8();
    const std::uint8_t flags = r.u8();
    if (flags > 1 || p.kind > 1) return false;
    p.concurrent = flags == 1;
    p.weight_x10 = r.u8();
  }
  e.score_x100 = r.u16();
  e.limit = r.u8();
  return !r.bad && r.n == 0;
}

Evidence canonical(const Evidence& e) {
  std::vector<std::uint8_t> bytes;
  encode_evidence(e, bytes);
  Evidence out;
  decode_evidence(bytes.data(), bytes.size(), out);  // cannot fail: the encoder writes valid bytes
  bytes.clear();
  encode_places(e, bytes);
  decode_places(bytes.data(), bytes.size(), out);
  if (has_times_or_rate(e)) {
    bytes.clear();
    encode_times_and_rate(e, bytes);
    decode_times_and_rate(bytes.data(), bytes.size(), out);
  }
  return out;
}

void encode_member(const Member& m, std::vector<std::uint8_t>& o) {
  const std::size_t body = begin_record(o, Type::kMember);
  put64(o, m.node_id);
  put64(o, m.incarnation);
  put8(o, static_cast<std::uint8_t>(m.state));
  put_endpoint(o, m.endpoint);
  std::size_t len = std::min(m.name.size(), kMaxName);
  put8(o, static_cast<std::uint8_t>(len));
  o.insert(o.end(), m.name.begin(), m.name.begin() + static_cast<std::ptrdiff_t>(len));
  put64(o, m.policy);
  put8(o, m.protocol_min);
  put8(o, m.protocol_max);
  std::uint8_t identity[kIdentityBytes];
  if (identity_bytes(m.identity, identity)) o.insert(o.end(), identity, identity + kIdentityBytes);  // protocol 5
  end_record(o, body);
}

void encode_revocation(const Revocation& r, std::vector<std::uint8_t>& o) {
  const std::size_t body = begin_record(o, Type::kRevoke);
  put_revocation_body(o, r);
  end_record(o, body);
}

void encode_sighting(const SightingReport& s, std::vector<std::uint8_t>& o) {
  const std::size_t body = begin_record(o, is_subscriber(s) ? Type::kSubscriberSighting : Type::kSighting);
  put16(o, s.token.key_id);
  put64(o, s.token.session);
  put32(o, s.token_expires);
  std::uint8_t fam = (s.network[0] == 4 || s.network[0] == 6) ? s.network[0] : 0;
  put8(o, fam);
  o.insert(o.end(), s.network + 1, s.network + 1 + network_len(fam));
  put8(o, s.shared_network ? 1 : 0);
  put32(o, s.client_hash);
  put64(o, s.time_ms);
  put8(o, s.place_kind);  // protocol 3
  put32(o, s.place_id);
  o.push_back(static_cast<std::uint8_t>(s.country[0]));
  o.push_back(static_cast<std::uint8_t>(s.country[1]));
  put32(o, s.requests);  // protocol 4
  put64(o, s.bytes);
  end_record(o, body);
}

void encode(const Message& m, std::vector<std::uint8_t>& o) {
  struct Visitor {
    std::vector<std::uint8_t>& o;
    void operator()(const Ping& p) {
      const std::size_t body = begin_record(o, Type::kPing);
      put32(o, p.seq);
      put64(o, p.target);
      end_record(o, body);
    }
    void operator()(const PingReq& p) {
      const std::size_t body = begin_record(o, Type::kPingReq);
      put32(o, p.seq);
      put64(o, p.target);
      put_endpoint(o, p.target_ep);
      end_record(o, body);
    }
    void operator()(const Ack& a) {
      const std::size_t body = begin_record(o, Type::kAck);
      put32(o, a.seq);
      end_record(o, body);
    }
    void operator()(const Member& m) { encode_member(m, o); }
    void operator()(const Revocation& r) { encode_revocation(r, o); }
    void operator()(const SightingReport& s) { encode_sighting(s, o); }
    void operator()(const PpRoot& r) {
      const std::size_t body = begin_record(o, Type::kPpRoot);
      put8(o, r.reply ? 1 : 0);
      put64(o, r.member_hash);
      put32(o, r.count);
      for (auto g : r.groups) put64(o, g);
      end_record(o, body);
    }
    void operator()(const PpGroup& g) {
      const std::size_t body = begin_record(o, Type::kPpGroup);
      put8(o, g.group);
      for (auto b : g.buckets) put64(o, b);
      end_record(o, body);
    }
  };
  std::visit(Visitor{o}, m.v);
}

std::size_t encoded_size(const Message& m) {
  std::vector<std::uint8_t> tmp;
  encode(m, tmp);
  return tmp.size();
}

namespace {

// REVOKE's body: the fixed fields, the evidence extension and (protocol 3)
// the places; false (and r.bad) if malformed.
bool decode_revocation_body(Reader& r, Revocation& v) {
  v.token.key_id = r.u16();
  v.token.session = r.u64();
  v.token_expires = r.u32();
  v.stamp_ms = r.u64();
  const std::uint8_t flags = r.u8();
  if (flags & ~3u) r.bad = true;
  v.pardon = flags & 1;
  v.shadow = flags & 2;
  v.origin = r.u64();
  v.reason = static_cast<VerdictReason>(r.u8());
  v.networks = r.u8();
  const std::size_t ext = r.u16();
  if (!r.take(ext)) return false;
  if (!decode_evidence(r.p, ext, v.evidence)) return !(r.bad = true);
  r.p += ext;
  r.n -= ext;
  if (r.n >= 2) {  // protocol 3: the places
    const std::size_t places = r.u16();
    if (!r.take(places)) return false;
    if (!decode_places(r.p, places, v.evidence)) return !(r.bad = true);
    r.p += places;
    r.n -= places;
  }
  if (r.n >= 2) {  // protocol 4: the places' times, the bulk rate
    const std::size_t when = r.u16();
    if (!r.take(when)) return false;
    if (when != 0 && !decode_times_and_rate(r.p, when, v.evidence)) return !(r.bad = true);
    r.p += when;
    r.n -= when;
  }
  return !r.bad;
}

SightingReport decode_sighting_body(Reader& r) {
  SightingReport s;
  s.token.key_id = r.u16();
  s.token.session = r.u64();
  s.token_expires = r.u32();
  const std::uint8_t fam = r.u8();
  if (fam != 0 && fam != 4 && fam != 6) r.bad = true;
  s.network[0] = fam;
  r.bytes(s.network + 1, network_len(fam));
  const std::uint8_t flags = r.u8();
  if (flags > 1) r.bad = true;
  s.shared_network = flags;
  s.client_hash = r.u32();
  s.time_ms = r.u64();
  if (r.n >= 7) {  // protocol 3: the place
    s.place_kind = r.u8();
    s.place_id = r.u32();
    std::uint8_t cc[2] = {0, 0};
    r.bytes(cc, 2);
    s.country[0] = static_cast<char>(cc[0]);
    s.country[1] = static_cast<char>(cc[1]);
    if (s.place_kind > 3) r.bad = true;
  }
  if (r.n >= 12) {  // protocol 4: the bulk signal's counts
    s.requests = r.u32();
    s.bytes = r.u64();
  }
  return s;
}

}  // namespace

// The bodies decode_payload reads; a malformed one sets r.bad.
Member decode_member_body(Reader& r) {
  Member m;
  m.node_id = r.u64();
  m.incarnation = r.u64();
  m.state = r.u8();
  if (m.state > kDead) r.bad = true;
  m.endpoint = r.endpoint();
  const std::size_t name_len = r.u8();
  if (name_len > kMaxName || !r.take(name_len)) {
    r.bad = true;
    return m;
  }
  m.name.assign(reinterpret_cast<const char*>(r.p), name_len);
  r.p += name_len;
  r.n -= name_len;
  m.policy = r.u64();
  m.protocol_min = r.u8();
  m.protocol_max = r.u8();
  if (m.protocol_min > m.protocol_max) r.bad = true;
  if (r.n >= kIdentityBytes) {  // protocol 5: the node hash
    static const char kHex[] = "0123456789abcdef";
    for (std::size_t i = 0; i < kIdentityBytes; ++i) {
      const std::uint8_t b = r.u8();
      m.identity += kHex[b >> 4];
      m.identity += kHex[b & 15];
    }
  }
  return m;
}

PpRoot decode_pp_root_body(Reader& r) {
  PpRoot p;
  const std::uint8_t flags = r.u8();
  if (flags > 1) r.bad = true;
  p.reply = flags;
  p.member_hash = r.u64();
  p.count = r.u32();
  for (auto& g : p.groups) g = r.u64();
  return p;
}

PpGroup decode_pp_group_body(Reader& r) {
  PpGroup g;
  g.group = r.u8();
  if (g.group >= RevocationSet::kGroups) r.bad = true;
  for (auto& b : g.buckets) b = r.u64();
  return g;
}

std::optional<Payload> decode_payload(const std::uint8_t* data, std::size_t size) {
  Reader whole{data, size};
  Payload payload;
  std::vector<Message>& out = payload.messages;
  while (whole.n > 0) {
    auto type = static_cast<Type>(whole.u8());
    const std::size_t len = whole.u16();
    if (!whole.take(len)) return std::nullopt;  // truncated
    // The body alone: fields a newer version appended after the ones this
    // build knows are left unread.
    Reader r{whole.p, len};
    whole.p += len;
    whole.n -= len;
    switch (type) {
      case Type::kPing: {
        Ping p;
        p.seq = r.u32();
        p.target = r.u64();
        out.push_back({p});
        break;
      }
      case Type::kPingReq: {
        PingReq p;
        p.seq = r.u32();
        p.target = r.u64();
        p.target_ep = r.endpoint();
        out.push_back({p});
        break;
      }
      case Type::kAck: {
        Ack a;
        a.seq = r.u32();
        out.push_back({a});
        break;
      }
      case Type::kMember: out.push_back({decode_member_body(r)}); break;
      case Type::kRevoke: {
        Revocation v;
        if (decode_revocation_body(r, v)) out.push_back({v});
        break;
      }
      case Type::kSighting:
      case Type::kSubscriberSighting: {
        SightingReport s = decode_sighting_body(r);
        // A token's key id is never 0, a subscriber's always is.
        if (is_subscriber(s) != (type == Type::kSubscriberSighting)) r.bad = true;
        out.push_back({s});
        break;
      }
      case Type::kPpRoot: out.push_back({decode_pp_root_body(r)}); break;
      case Type::kPpGroup: out.push_back({decode_pp_group_body(r)}); break;
      default: ++payload.skipped;  // a newer version's record type
    }
    if (r.bad) return std::nullopt;
  }
  return payload;
}

std::array<std::uint8_t, 4> label_tag(std::string_view label) {
  std::array<std::uint8_t, 4> tag{};
  std::uint8_t h[crypto_generichash_BYTES_MIN];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(label.data()), label.size(), nullptr, 0);
  std::memcpy(tag.data(), h, tag.size());
  return tag;
}

namespace {
// Associated data: the clear header followed by the full label.
std::vector<std::uint8_t> associated(const std::uint8_t* header, std::string_view label) {
  std::vector<std::uint8_t> ad(kHeaderSize + label.size());
  std::memcpy(ad.data(), header, kHeaderSize);
  if (!label.empty()) std::memcpy(ad.data() + kHeaderSize, label.data(), label.size());
  return ad;
}
}  // namespace

std::vector<std::uint8_t> seal(const Key& key, std::string_view label, const Header& h, const std::uint8_t* payload,
                               std::size_t size) {
  std::vector<std::uint8_t> pkt;
  pkt.reserve(kOverhead + size);
  put8(pkt, kVersion);
  auto tag = label_tag(label);
  pkt.insert(pkt.end(), tag.begin(), tag.end());
  put64(pkt, h.sender);
  put64(pkt, h.counter);
  put64(pkt, h.time_ms);
  std::uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
  randombytes_buf(nonce, sizeof nonce);
  pkt.insert(pkt.end(), nonce, nonce + sizeof nonce);
  auto ad = associated(pkt.data(), label);
  pkt.resize(kOverhead + size);
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(pkt.data() + kHeaderSize, &clen, payload, size, ad.data(), ad.size(),
                                             nullptr, nonce, key.data());
  pkt.resize(kHeaderSize + clen);
  return pkt;
}

OpenResult open(const std::vector<Key>& keys, std::string_view label, const std::uint8_t* data, std::size_t size,
                Header& h, std::vector<std::uint8_t>& payload, std::size_t* key_index) {
  if (size < kOverhead) return OpenResult::kMalformed;
  auto tag = label_tag(label);
  const bool our_label = std::memcmp(data + 1, tag.data(), tag.size()) == 0;
  // Every version so far starts version(1) label_tag(4): our label after
  // another version byte is a member running another version, not noise.
  if (data[0] != kVersion) return our_label ? OpenResult::kOtherVersion : OpenResult::kMalformed;
  if (!our_label) return OpenResult::kLabel;
  Reader r{data + 5, 24};
  h.sender = r.u64();
  h.counter = r.u64();
  h.time_ms = r.u64();
  const std::uint8_t* nonce = data + 29;
  auto ad = associated(data, label);
  payload.resize(size - kOverhead);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    unsigned long long plen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(payload.data(), &plen, nullptr, data + kHeaderSize,
                                                   size - kHeaderSize, ad.data(), ad.size(), nonce,
                                                   keys[i].data()) == 0) {
      payload.resize(plen);
      if (key_index != nullptr) *key_index = i;
      return OpenResult::kOk;
    }
  }
  return OpenResult::kAuth;
}

}  // namespace uritoken::gossip::wire
