// SPDX-License-Identifier: Apache-2.0
// The token: its byte layout, minting, decoding and verification.
//
// Full specification with examples: docs/token-format.md. In short:
//
//   token   = base64url-nopad( payload || tag )            46..111 characters
//   payload = version    u8     = 1
//             flags      u8     bit0 NOT_BEFORE, bit1 SCOPE, bit2 IPV4, bit3 IPV6,
//                               bit4 SUBSCRIBER (IPV4 and IPV6 exclusive; bits 5-7 zero)
//             key_id     u16 BE 1..65535
//             expires    u32 BE unix seconds
//             session    8 random bytes
//             [not_before u32 BE]               if NOT_BEFORE
//             [scope      u8]                   if SCOPE: bit7 exact file,
//                                                 bits0-6 segments 1..127
//             [ip_prefix  u8]                   if IPV4 (1..32) or IPV6 (1..128)
//             [subscriber 8 bytes, issued u32 BE] if SUBSCRIBER: the site's keyed
//                                                 digest of its account id, and
//                                                 when the token was minted
//             client_len u8     1..32
//             client     client_len bytes of [A-Za-z0-9._-]
//   tag     = first 16 bytes of HMAC-SHA256(key, mac_input)
//   mac_input = payload
//             || u16 BE length || scope path     if SCOPE (derived from the
//                                                  request path, not carried)
//             || client network, masked          if IPV4 (4 bytes) / IPV6 (16)
//
// Scope and client network are bound by the MAC but never travel in clear:
// the verifier rebuilds them from the request, so a token used on another
// path or from another network simply fails its MAC.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "base64url.h"
#include "ipnet.h"
#include "keyring.h"
#include "token_id.h"

namespace uritoken {

constexpr std::uint8_t kTokenVersion = 1;
constexpr std::size_t kSessionBytes = 8;
constexpr std::size_t kTagBytes = 16;
constexpr std::size_t kPayloadMinBytes = 16 + 1 + 1;  // fixed part, client_len, 1-char client
constexpr std::size_t kSubscriberBytes = 8;
constexpr std::size_t kPayloadMaxBytes = 16 + 4 + 1 + 1 + kSubscriberBytes + 4 + 1 + kClientIdMaxLen;
constexpr std::size_t kTokenMinChars = base64url_encoded_len(kPayloadMinBytes + kTagBytes);
constexpr std::size_t kTokenMaxChars = base64url_encoded_len(kPayloadMaxBytes + kTagBytes);

namespace flag {
constexpr std::uint8_t kNotBefore = 0x01;
constexpr std::uint8_t kScope = 0x02;
constexpr std::uint8_t kIpv4 = 0x04;
constexpr std::uint8_t kIpv6 = 0x08;
constexpr std::uint8_t kSubscriber = 0x10;
constexpr std::uint8_t kKnown = 0x1f;
}  // namespace flag

using SessionId = std::array<std::uint8_t, kSessionBytes>;
// The same type as SessionId: session_hex prints either as 16 hex digits.
using SubscriberId = std::array<std::uint8_t, kSubscriberBytes>;
static_assert(std::is_same_v<SessionId, SubscriberId>);

// The subscriber field of a token for the site's account id `account`:
// the first 8 bytes of HMAC-SHA256(secret, "uritoken-subscriber-v1\n"
// client "\n" account). `secret` is 32 bytes the site keeps to itself
// (not a token key: it outlives key rotation, and media servers, which
// never see it, cannot test guesses of account names against a digest).
SubscriberId subscriber_id(const std::uint8_t secret[32], std::string_view client, std::string_view account);

// A subscriber verdict's place in the revocation set and table: key id
// kSubscriberKeyId (no token has it) and this 64-bit ref, one-way from the
// client and the field, so that one client can never name another's
// subscriber: the first 8 bytes of SHA-256("uritoken-subscriber-ref-v1\n"
// client "\n" subscriber), big-endian. (kSubscriberKeyId: token_id.h.)
std::uint64_t subscriber_ref(std::string_view client, const SubscriberId& subscriber);

std::string session_hex(const SessionId& s);
// The same into `out` (17 bytes: 16 hex digits and a NUL), without allocating.
void session_hex(const SessionId& s, char out[2 * kSessionBytes + 1]);

// The session id as one number (big-endian, so "%016llx" prints session_hex).
inline std::uint64_t session_number(const SessionId& s) {
  std::uint64_t n = 0;
  for (std::uint8_t b : s) n = (n << 8) | b;
  return n;
}

// The fields a token carries.
struct Claims {
  std::uint8_t version = kTokenVersion;
  std::uint8_t flags = 0;
  std::uint16_t key_id = 0;
  std::uint32_t expires = 0;
  SessionId session{};
  std::uint32_t not_before = 0;    // valid if flags & kNotBefore
  std::uint8_t scope = 0;          // valid if flags & kScope
  std::uint8_t ip_prefix_len = 0;  // valid if flags & (kIpv4 | kIpv6)
  SubscriberId subscriber{};       // valid if flags & kSubscriber
  std::uint32_t issued = 0;        // valid if flags & kSubscriber (issued <= expires)
  std::uint8_t client_len = 0;
  std::array<char, kClientIdMaxLen> client_buf{};

  std::string_view client() const { return {client_buf.data(), client_len}; }
};

// What a client site asks for when minting.
struct MintParams {
  std::string_view client;
  std::uint32_t expires = 0;
  std::optional<std::uint32_t> not_before;
  std::optional<std::string_view> scope;  // decoded path: "/gallery/12/" or "/a/b.jpg"
  std::optional<IpPrefix> network;
  std::optional<SessionId> session;        // random if not given
  std::optional<SubscriberId> subscriber;  // subscriber_id() of the site's account
  std::uint32_t issued = 0;                // with a subscriber: when minted (0: now)
};

// Mints a token with `key`. Returns nothing and sets `error` if a parameter
// is out of range (client not the key's, scope malformed, ...).
std::optional<std::string> mint_token(const Key& key, const MintParams& params, std::string* error);

// Why a token was accepted or refused. Names (reason_name) are stable: they
// appear in logs and in the URITOKEN_REASON environment variable.
enum class Reason {
  ok,
  too_short,
  too_long,
  bad_alphabet,
  bad_encoding,
  bad_structure,
  bad_version,
  unknown_key,
  retired_key,
  client_mismatch,
  out_of_scope,
  wrong_network,
  bad_mac,
  expired,
  not_yet_valid,
  ttl_too_long,
};

const char* reason_name(Reason r);

// Decodes a token's fields without checking its MAC (for `uritoken inspect`
// and as the first step of verify). Returns Reason::ok or why it is malformed.
Reason decode_token(std::string_view token, Claims* claims);

enum class Status { valid, invalid, expired };
const char* status_name(Status s);

struct VerifyContext {
  std::string_view path;                   // decoded request path after the token
  const IpAddress* client_addr = nullptr;  // the client's address, if known
  std::int64_t now = 0;                    // unix seconds
  std::uint32_t leeway_seconds = 30;       // tolerated clock skew
  std::uint32_t max_ttl_seconds = 7 * 86400;
};

struct Verdict {
  Status status = Status::invalid;
  Reason reason = Reason::bad_structure;
  bool authenticated = false;  // MAC checked and good: claims can be trusted
  // Valid only if the path names a directory: a directory scope "/a/b/"
  // matched "/a/b" without its slash, which may only ever redirect to
  // "/a/b/" (never reach a file such as MultiViews' "/a/b.zip").
  bool directory_only = false;
  Claims claims;
};

// Verifies a token (the characters after "_uk_") for a request.
// Cost: length and alphabet checks, one table-driven decode, two SHA-256
// compressions for a short scope; no allocation unless the scope is a
// directory requested without its trailing slash.
Verdict verify_token(const KeyRing& keys, std::string_view token, const VerifyContext& ctx);

}  // namespace uritoken
