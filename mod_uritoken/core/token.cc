// SPDX-License-Identifier: Apache-2.0
// Token minting, decoding and verification; layout in token.h.
#include "token.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "request_path.h"

namespace uritoken {
namespace {

void put_u16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
void put_u32(std::uint8_t* p, std::uint32_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 24);
  p[1] = static_cast<std::uint8_t>(v >> 16);
  p[2] = static_cast<std::uint8_t>(v >> 8);
  p[3] = static_cast<std::uint8_t>(v);
}
std::uint16_t get_u16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }
std::uint32_t get_u32(const std::uint8_t* p) {
  return (static_cast<std::uint32_t>(p[0]) << 24) | (static_cast<std::uint32_t>(p[1]) << 16) |
         (static_cast<std::uint32_t>(p[2]) << 8) | p[3];
}

// Serialises the payload; returns its length.
std::size_t encode_payload(const Claims& c, std::uint8_t* out) {
  std::size_t n = 0;
  out[n++] = c.version;
  out[n++] = c.flags;
  put_u16(out + n, c.key_id);
  n += 2;
  put_u32(out + n, c.expires);
  n += 4;
  std::memcpy(out + n, c.session.data(), kSessionBytes);
  n += kSessionBytes;
  if (c.flags & flag::kNotBefore) {
    put_u32(out + n, c.not_before);
    n += 4;
  }
  if (c.flags & flag::kScope) out[n++] = c.scope;
  if (c.flags & (flag::kIpv4 | flag::kIpv6)) out[n++] = c.ip_prefix_len;
  if (c.flags & flag::kSubscriber) {
    std::memcpy(out + n, c.subscriber.data(), kSubscriberBytes);
    put_u32(out + n + kSubscriberBytes, c.issued);
    n += kSubscriberBytes + 4;
  }
  out[n++] = c.client_len;
  std::memcpy(out + n, c.client_buf.data(), c.client_len);
  return n + c.client_len;
}

// Parses a payload; returns Reason::ok or why it is malformed.
Reason parse_payload(const std::uint8_t* p, std::size_t len, Claims* c) {
  if (len < kPayloadMinBytes) return Reason::bad_structure;
  c->version = p[0];
  if (c->version != kTokenVersion) return Reason::bad_version;
  c->flags = p[1];
  if ((c->flags & ~flag::kKnown) != 0) return Reason::bad_structure;
  if ((c->flags & flag::kIpv4) && (c->flags & flag::kIpv6)) return Reason::bad_structure;
  c->key_id = get_u16(p + 2);
  if (c->key_id == 0) return Reason::bad_structure;
  c->expires = get_u32(p + 4);
  std::memcpy(c->session.data(), p + 8, kSessionBytes);
  std::size_t n = 16;
  if (c->flags & flag::kNotBefore) {
    if (n + 4 > len) return Reason::bad_structure;
    c->not_before = get_u32(p + n);
    n += 4;
  }
  if (c->flags & flag::kScope) {
    if (n + 1 > len) return Reason::bad_structure;
    c->scope = p[n++];
    if ((c->scope & 0x7f) == 0) return Reason::bad_structure;
  }
  if (c->flags & (flag::kIpv4 | flag::kIpv6)) {
    if (n + 1 > len) return Reason::bad_structure;
    c->ip_prefix_len = p[n++];
    const unsigned max = (c->flags & flag::kIpv6) ? 128 : 32;
    if (c->ip_prefix_len == 0 || c->ip_prefix_len > max) return Reason::bad_structure;
  }
  if (c->flags & flag::kSubscriber) {
    if (n + kSubscriberBytes + 4 > len) return Reason::bad_structure;
    std::memcpy(c->subscriber.data(), p + n, kSubscriberBytes);
    c->issued = get_u32(p + n + kSubscriberBytes);
    n += kSubscriberBytes + 4;
    if (c->issued > c->expires) return Reason::bad_structure;  // minted after it expired: no minter does that
  }
  if (n + 1 > len) return Reason::bad_structure;
  c->client_len = p[n++];
  if (c->client_len == 0 || c->client_len > kClientIdMaxLen || n + c->client_len != len) {
    return Reason::bad_structure;
  }
  std::memcpy(c->client_buf.data(), p + n, c->client_len);
  if (!client_id_ok(c->client())) return Reason::bad_structure;
  return Reason::ok;
}

// MAC over payload and the bound request context (see token.h).
void compute_tag(const Key& key, const std::uint8_t* payload, std::size_t len, std::string_view scope_path,
                 const IpAddress* network, std::uint8_t tag[kTagBytes]) {
  auto mac = key.mac.start();
  mac.update(payload, len);
  const std::uint8_t flags = payload[1];
  if (flags & flag::kScope) {
    std::uint8_t scope_len[2];
    put_u16(scope_len, static_cast<std::uint16_t>(scope_path.size()));
    mac.update(scope_len, sizeof scope_len);
    mac.update(scope_path.data(), scope_path.size());
  }
  if (flags & (flag::kIpv4 | flag::kIpv6)) mac.update(network->bytes, network->size());
  std::uint8_t full[HmacSha256Key::kMacBytes];
  mac.finish(full);
  std::memcpy(tag, full, kTagBytes);
}

}  // namespace

SubscriberId subscriber_id(const std::uint8_t secret[32], std::string_view client, std::string_view account) {
  const HmacSha256Key key(secret);
  auto mac = key.start();
  static constexpr char kLabel[] = "uritoken-subscriber-v1\n";
  mac.update(kLabel, sizeof kLabel - 1);
  mac.update(client.data(), client.size());
  mac.update("\n", 1);
  mac.update(account.data(), account.size());
  std::uint8_t full[HmacSha256Key::kMacBytes];
  mac.finish(full);
  SubscriberId id;
  std::memcpy(id.data(), full, id.size());
  return id;
}

std::uint64_t subscriber_ref(std::string_view client, const SubscriberId& subscriber) {
  // Label, client (at most 32), LF, field: 68 bytes at most, on the stack.
  static constexpr char kLabel[] = "uritoken-subscriber-ref-v1\n";
  std::uint8_t input[sizeof kLabel - 1 + kClientIdMaxLen + 1 + kSubscriberBytes];
  std::size_t n = 0;
  std::memcpy(input, kLabel, sizeof kLabel - 1);
  n += sizeof kLabel - 1;
  const std::size_t client_len = std::min(client.size(), kClientIdMaxLen);
  std::memcpy(input + n, client.data(), client_len);
  n += client_len;
  input[n++] = '\n';
  std::memcpy(input + n, subscriber.data(), subscriber.size());
  n += subscriber.size();
  std::uint8_t digest[32];
  sha256(input, n, digest);
  std::uint64_t ref = 0;
  for (int i = 0; i < 8; ++i) ref = (ref << 8) | digest[i];
  return ref;
}

// Two hex digits per byte from one table: every request prints a session.
void session_hex(const SessionId& s, char out[2 * kSessionBytes + 1]) {
  static constexpr auto kPairs = [] {
    struct Table {
      char pair[256][2] = {};
    } t;
    constexpr char kHex[] = "0123456789abcdef";
    for (int b = 0; b < 256; ++b) {
      t.pair[b][0] = kHex[b >> 4];
      t.pair[b][1] = kHex[b & 15];
    }
    return t;
  }();
  for (std::size_t i = 0; i < kSessionBytes; ++i) std::memcpy(out + 2 * i, kPairs.pair[s[i]], 2);
  out[2 * kSessionBytes] = '\0';
}

std::string session_hex(const SessionId& s) {
  char out[2 * kSessionBytes + 1];
  session_hex(s, out);
  return out;
}

std::optional<std::string> mint_token(const Key& key, const MintParams& params, std::string* error) {
  if (key.state != KeyState::sign) {
    *error = "key " + std::to_string(key.id) + " is " + key_state_name(key.state) + ", not a sign key";
    return std::nullopt;
  }
  if (params.client != key.client) {
    *error = "key " + std::to_string(key.id) + " belongs to client '" + key.client + "', not '" +
             std::string(params.client) + "'";
    return std::nullopt;
  }
  Claims c;
  c.key_id = key.id;
  c.expires = params.expires;
  if (params.session) {
    c.session = *params.session;
  } else {
    randombytes_buf(c.session.data(), c.session.size());
  }
  if (params.not_before) {
    if (*params.not_before >= params.expires) {
      *error = "not-before must be earlier than the expiry";
      return std::nullopt;
    }
    c.flags |= flag::kNotBefore;
    c.not_before = *params.not_before;
  }
  std::string scope_path;
  if (params.scope) {
    const auto descriptor = scope_descriptor(*params.scope, &scope_path);
    if (!descriptor || scope_path.size() > 0xffff) {
      *error =
          "scope must be an absolute decoded path of 1 to 127 segments without '.', '..' "
          "or '%', e.g. /gallery/12/ (a directory) or /gallery/12/photo.jpg (one file)";
      return std::nullopt;
    }
    c.flags |= flag::kScope;
    c.scope = *descriptor;
  }
  IpAddress network;
  if (params.network) {
    c.flags |= params.network->addr.v6 ? flag::kIpv6 : flag::kIpv4;
    c.ip_prefix_len = static_cast<std::uint8_t>(params.network->length);
    network = mask_ip(params.network->addr, params.network->length);
  }
  if (params.subscriber) {
    c.flags |= flag::kSubscriber;
    c.subscriber = *params.subscriber;
    c.issued = params.issued != 0 ? params.issued : static_cast<std::uint32_t>(std::time(nullptr));
    if (c.issued > params.expires) {
      *error = "the issue time must not be later than the expiry";
      return std::nullopt;
    }
  }
  c.client_len = static_cast<std::uint8_t>(key.client.size());
  std::memcpy(c.client_buf.data(), key.client.data(), key.client.size());

  std::uint8_t raw[kPayloadMaxBytes + kTagBytes];
  const std::size_t len = encode_payload(c, raw);
  compute_tag(key, raw, len, scope_path, &network, raw + len);
  return base64url_encode(raw, len + kTagBytes);
}

const char* reason_name(Reason r) {
  switch (r) {
    case Reason::ok: return "ok";
    case Reason::too_short: return "too-short";
    case Reason::too_long: return "too-long";
    case Reason::bad_alphabet: return "bad-alphabet";
    case Reason::bad_encoding: return "bad-encoding";
    case Reason::bad_structure: return "bad-structure";
    case Reason::bad_version: return "bad-version";
    case Reason::unknown_key: return "unknown-key";
    case Reason::retired_key: return "retired-key";
    case Reason::client_mismatch: return "client-mismatch";
    case Reason::out_of_scope: return "out-of-scope";
    case Reason::wrong_network: return "wrong-network";
    case Reason::bad_mac: return "bad-mac";
    case Reason::expired: return "expired";
    case Reason::not_yet_valid: return "not-yet-valid";
    case Reason::ttl_too_long: return "ttl-too-long";
  }
  return "unknown";
}

const char* status_name(Status s) {
  switch (s) {
    case Status::valid: return "valid";
    case Status::invalid: return "invalid";
    case Status::expired: return "expired";
  }
  return "invalid";
}

namespace {

// Strict checks before any decoding, then the decode itself.
Reason decode_raw(std::string_view token, std::uint8_t* raw, std::size_t* raw_len, Claims* claims) {
  if (token.size() < kTokenMinChars) return Reason::too_short;
  if (token.size() > kTokenMaxChars) return Reason::too_long;
  if (!base64url_alphabet_ok(token)) return Reason::bad_alphabet;
  const long n = base64url_decode(raw, kPayloadMaxBytes + kTagBytes, token);
  if (n < 0) return Reason::bad_encoding;
  *raw_len = static_cast<std::size_t>(n);
  return parse_payload(raw, *raw_len - kTagBytes, claims);
}

}  // namespace

Reason decode_token(std::string_view token, Claims* claims) {
  std::uint8_t raw[kPayloadMaxBytes + kTagBytes];
  std::size_t raw_len = 0;
  return decode_raw(token, raw, &raw_len, claims);
}

Verdict verify_token(const KeyRing& keys, std::string_view token, const VerifyContext& ctx) {
  Verdict v;
  std::uint8_t raw[kPayloadMaxBytes + kTagBytes];
  std::size_t raw_len = 0;
  auto refuse = [&v](Reason r) {
    v.reason = r;
    v.status = Status::invalid;
    return v;
  };
  if (const Reason r = decode_raw(token, raw, &raw_len, &v.claims); r != Reason::ok) return refuse(r);
  const Claims& c = v.claims;
  const std::size_t payload_len = raw_len - kTagBytes;

  const Key* key = keys.find(c.key_id);
  if (key == nullptr) return refuse(Reason::unknown_key);
  if (key->state == KeyState::retired) return refuse(Reason::retired_key);
  if (key->client != c.client()) return refuse(Reason::client_mismatch);

  std::string scratch;
  std::string_view scope_path;
  if (c.flags & flag::kScope) {
    const auto scope = scope_of_path(ctx.path, c.scope, &scratch);
    if (!scope || scope->size() > 0xffff) return refuse(Reason::out_of_scope);  // length is a u16 in the MAC
    scope_path = *scope;
    v.directory_only = !scratch.empty();  // the slash was added: see scope_of_path
  }
  IpAddress network;
  if (c.flags & (flag::kIpv4 | flag::kIpv6)) {
    const bool want_v6 = (c.flags & flag::kIpv6) != 0;
    if (ctx.client_addr == nullptr || ctx.client_addr->v6 != want_v6) {
      return refuse(Reason::wrong_network);
    }
    network = mask_ip(*ctx.client_addr, c.ip_prefix_len);
  }
  std::uint8_t tag[kTagBytes];
  compute_tag(*key, raw, payload_len, scope_path, &network, tag);
  if (!equal_constant_time(tag, raw + payload_len, kTagBytes)) return refuse(Reason::bad_mac);
  v.authenticated = true;

  // Time checks only on authenticated fields: an attacker cannot make us
  // answer "expired" for a forged token.
  const std::int64_t leeway = ctx.leeway_seconds;
  if (ctx.now > static_cast<std::int64_t>(c.expires) + leeway) {
    v.status = Status::expired;
    v.reason = Reason::expired;
    return v;
  }
  if ((c.flags & flag::kNotBefore) && static_cast<std::int64_t>(c.not_before) > ctx.now + leeway) {
    return refuse(Reason::not_yet_valid);
  }
  if (static_cast<std::int64_t>(c.expires) > ctx.now + leeway + ctx.max_ttl_seconds) {
    return refuse(Reason::ttl_too_long);
  }
  v.status = Status::valid;
  v.reason = Reason::ok;
  return v;
}

}  // namespace uritoken
