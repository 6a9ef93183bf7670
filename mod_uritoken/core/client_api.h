// SPDX-License-Identifier: Apache-2.0
// The client-site API's requests: how a client site signs a request with
// its own key, and how a node checks one and reads its body. Pure logic,
// shared by the handler (httpd/client_api.cc), the CLI and the vectors;
// normative description: docs/client-api.md.
//
//   signing input = "uritoken-client-v1\n" METHOD "\n" TARGET "\n"
//                   TIME "\n" NONCE "\n" BODY
//   signature     = base64url-nopad(HMAC-SHA256(key secret, signing input))
//
// sent as the headers X-UriToken-Key (key id), X-UriToken-Time (unix s),
// X-UriToken-Nonce and X-UriToken-Signature. TARGET is the request target
// exactly as sent (path and query), BODY the raw body bytes.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base64url.h"
#include "keyring.h"
#include "token.h"

namespace uritoken::client_api {

inline constexpr std::string_view kSigningLabel = "uritoken-client-v1";
inline constexpr std::int64_t kWindowSeconds = 60;  // a request older (or newer) than this is stale
inline constexpr std::size_t kMaxBodyBytes = 4096;
inline constexpr std::size_t kNonceMinChars = 16, kNonceMaxChars = 64;
inline constexpr unsigned kFeedDefaultLimit = 100, kFeedMaxLimit = 1000;
inline constexpr std::size_t kMaxCommentBytes = 120;
inline constexpr std::size_t kSignatureBytes = HmacSha256Key::kMacBytes;
inline constexpr std::size_t kSignatureChars = base64url_encoded_len(kSignatureBytes);  // 43

// Why a request was refused; names are stable (logs, the JSON answer).
enum class Problem {
  ok,
  missing_auth,    // 401: a signing header is absent
  bad_auth,        // 401: a signing header is malformed
  unknown_key,     // 401: the key id is not in this node's key ring
  retired_key,     // 401: the key is retired
  bad_signature,   // 401
  stale,           // 401: the time is more than kWindowSeconds from the node's clock
  replayed,        // 401: this nonce was seen already (the sidecar remembers them)
  too_large,       // 413: the body is over kMaxBodyBytes
  bad_request,     // 400: the body or query is malformed
  not_your_token,  // 403: the token's key belongs to another client
  expired_token,   // 400: the token to revoke has expired already
  plain_http,      // 403: the API is TLS-only (UriTokenClientApiPlainHTTP)
  superseded,      // 409: a later verdict on that subscriber holds (an operator's pardon after issued_before)
};
const char* problem_name(Problem p);
int problem_http_status(Problem p);

struct Auth {
  std::uint16_t key_id = 0;
  std::int64_t time = 0;
  std::string nonce;
  std::array<std::uint8_t, kSignatureBytes> signature{};
};

// Reads the four header values (nullptr: absent).
Problem parse_auth(const char* key_id, const char* time, const char* nonce, const char* signature, Auth* auth);

std::string signing_input(std::string_view method, std::string_view target, std::int64_t time, std::string_view nonce,
                          std::string_view body);
// The X-UriToken-Signature value for a request signed with `key`.
std::string sign(const Key& key, std::string_view method, std::string_view target, std::int64_t time,
                 std::string_view nonce, std::string_view body);

// Checks the key (its client is the requester), the signature (in
// constant time), then the time window; on ok, *key is the signing key.
Problem authenticate(const KeyRing& keys, const Auth& auth, std::string_view method, std::string_view target,
                     std::string_view body, std::int64_t now, const Key** key);

// POST: what to revoke. Either token=<token text>, or key=<id>,
// session=<16 hex digits> and expires=<unix s>, or subscriber=<16 hex
// digits> (every token of that subscriber issued until now: logout
// everywhere) with optionally issued_before=<unix s, not in the future>
// (only those issued before that second); optional comment=.
struct RevokeRequest {
  std::uint16_t key_id = 0;   // kSubscriberKeyId for a subscriber
  SessionId session{};        // for a subscriber: subscriber_ref(client, subscriber), big-endian
  std::uint32_t expires = 0;  // for a subscriber: 0, the handler sets it (the longest token life)
  std::optional<SubscriberId> subscriber;
  std::uint32_t issued_before = 0;  // for a subscriber: 0 = every token issued until now
  std::string comment;
};
// Parses an application/x-www-form-urlencoded body; checks that the token's
// key is one of `client`'s and that it has not expired. *why says what is wrong.
Problem parse_revoke(std::string_view body, const KeyRing& keys, std::string_view client, std::int64_t now,
                     RevokeRequest* out, std::string* why);

// GET: the feed's position and page size. after=<cursor>, limit=1..1000.
struct Cursor {
  std::uint64_t stamp_ms = 0;
  std::uint16_t key_id = 0;
  std::uint64_t session = 0;
  bool operator<(const Cursor& o) const;
};
std::string format_cursor(const Cursor& c);
std::optional<Cursor> parse_cursor(std::string_view text);
struct FeedQuery {
  Cursor after;  // zero: from the start
  unsigned limit = kFeedDefaultLimit;
};
Problem parse_feed_query(std::string_view query, FeedQuery* out, std::string* why);

}  // namespace uritoken::client_api
