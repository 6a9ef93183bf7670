// SPDX-License-Identifier: Apache-2.0
// Client-site API requests: signing, checking, bodies; see client_api.h.
#include "client_api.h"

#include <cctype>
#include <charconv>
#include <cstring>
#include <map>
#include <tuple>

#include "base64url.h"
#include "hmac.h"
#include "request_path.h"

namespace uritoken::client_api {
namespace {

bool decimal(std::string_view s, std::uint64_t max, std::uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size() && *out <= max && (s.size() == 1 || s[0] != '0');
}

bool hex64(std::string_view s, std::uint64_t* out) {
  if (s.size() != 16) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;  // lower case, as logged
  }
  std::from_chars(s.data(), s.data() + s.size(), *out, 16);
  return true;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded, strictly: name=value pairs joined by
// '&', '+' a space, %XX escapes; a name given twice, a bad escape or a
// name not in `allowed` makes it malformed.
bool parse_form(std::string_view text, std::initializer_list<std::string_view> allowed,
                std::map<std::string, std::string, std::less<>>* out, std::string* why) {
  auto decode = [](std::string_view s, std::string* d) {
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '+') {
        d->push_back(' ');
      } else if (s[i] != '%') {
        d->push_back(s[i]);
      } else {
        if (i + 2 >= s.size()) return false;
        const int hi = hex_digit(s[i + 1]), lo = hex_digit(s[i + 2]);
        if (hi < 0 || lo < 0) return false;
        d->push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
      }
    }
    return true;
  };
  while (!text.empty()) {
    const std::size_t amp = text.find('&');
    const std::string_view pair = text.substr(0, amp);
    text = amp == std::string_view::npos ? std::string_view() : text.substr(amp + 1);
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    std::string name, value;
    if (eq == std::string_view::npos || !decode(pair.substr(0, eq), &name) || !decode(pair.substr(eq + 1), &value)) {
      *why = "malformed form field";
      return false;
    }
    bool known = false;
    for (std::string_view a : allowed) known = known || a == name;
    if (!known) {
      // Quoted into a log line: only harmless characters, and short.
      std::string shown;
      for (char c : name.substr(0, 32)) shown += std::isalnum(static_cast<unsigned char>(c)) || c == '_' ? c : '?';
      *why = "unknown field '" + shown + "'";
      return false;
    }
    if (!out->emplace(name, std::move(value)).second) {
      *why = "field '" + name + "' given twice";
      return false;
    }
  }
  return true;
}

}  // namespace

const char* problem_name(Problem p) {
  switch (p) {
    case Problem::ok: return "ok";
    case Problem::missing_auth: return "missing-auth";
    case Problem::bad_auth: return "bad-auth";
    case Problem::unknown_key: return "unknown-key";
    case Problem::retired_key: return "retired-key";
    case Problem::bad_signature: return "bad-signature";
    case Problem::stale: return "stale";
    case Problem::replayed: return "replayed";
    case Problem::too_large: return "too-large";
    case Problem::bad_request: return "bad-request";
    case Problem::not_your_token: return "not-your-token";
    case Problem::expired_token: return "expired-token";
    case Problem::plain_http: return "plain-http";
    case Problem::superseded: return "superseded";
  }
  return "bad-request";
}

int problem_http_status(Problem p) {
  switch (p) {
    case Problem::ok: return 200;
    case Problem::too_large: return 413;
    case Problem::bad_request:
    case Problem::expired_token: return 400;
    case Problem::not_your_token:
    case Problem::plain_http: return 403;
    case Problem::superseded: return 409;
    default: return 401;
  }
}

Problem parse_auth(const char* key_id, const char* time, const char* nonce, const char* signature, Auth* auth) {
  if (key_id == nullptr || time == nullptr || nonce == nullptr || signature == nullptr) return Problem::missing_auth;
  std::uint64_t id = 0, t = 0;
  if (!decimal(key_id, 0xffff, &id) || id == 0 || !decimal(time, 0xffffffffULL, &t)) return Problem::bad_auth;
  const std::string_view n = nonce;
  if (n.size() < kNonceMinChars || n.size() > kNonceMaxChars || !base64url_alphabet_ok(n)) return Problem::bad_auth;
  const std::string_view s = signature;
  if (s.size() != kSignatureChars || !base64url_alphabet_ok(s) ||
      base64url_decode(auth->signature.data(), auth->signature.size(), s) != static_cast<long>(kSignatureBytes)) {
    return Problem::bad_auth;
  }
  auth->key_id = static_cast<std::uint16_t>(id);
  auth->time = static_cast<std::int64_t>(t);
  auth->nonce = n;
  return Problem::ok;
}

std::string signing_input(std::string_view method, std::string_view target, std::int64_t time, std::string_view nonce,
                          std::string_view body) {
  std::string s;
  s.reserve(kSigningLabel.size() + method.size() + target.size() + nonce.size() + body.size() + 32);
  s.append(kSigningLabel).append("\n").append(method).append("\n").append(target).append("\n");
  s.append(std::to_string(time)).append("\n").append(nonce).append("\n").append(body);
  return s;
}

namespace {
void mac_of(const Key& key, std::string_view method, std::string_view target, std::int64_t time, std::string_view nonce,
            std::string_view body, std::uint8_t out[HmacSha256Key::kMacBytes]) {
  const std::string input = signing_input(method, target, time, nonce, body);
  auto mac = key.mac.start();
  mac.update(input.data(), input.size());
  mac.finish(out);
}
}  // namespace

std::string sign(const Key& key, std::string_view method, std::string_view target, std::int64_t time,
                 std::string_view nonce, std::string_view body) {
  std::uint8_t mac[HmacSha256Key::kMacBytes];
  mac_of(key, method, target, time, nonce, body, mac);
  return base64url_encode(mac, sizeof mac);
}

Problem authenticate(const KeyRing& keys, const Auth& auth, std::string_view method, std::string_view target,
                     std::string_view body, std::int64_t now, const Key** key) {
  const Key* k = keys.find(auth.key_id);
  if (k == nullptr) return Problem::unknown_key;
  if (k->state == KeyState::retired) return Problem::retired_key;
  std::uint8_t mac[HmacSha256Key::kMacBytes];
  mac_of(*k, method, target, auth.time, auth.nonce, body, mac);
  if (!equal_constant_time(mac, auth.signature.data(), sizeof mac)) return Problem::bad_signature;
  if (auth.time < now - kWindowSeconds || auth.time > now + kWindowSeconds) return Problem::stale;
  *key = k;
  return Problem::ok;
}

namespace {

// subscriber= and issued_before=: the subscriber's entry under the
// requesting client's name, so one client never reaches another's.
bool parse_subscriber(const std::string& hex, const std::string* before, std::string_view client, std::int64_t now,
                      RevokeRequest* out, std::string* why) {
  std::uint64_t bits = 0;
  if (!hex64(hex, &bits)) return false;
  if (before != nullptr) {
    std::uint64_t t = 0;
    // Not in the future: a cut-off ahead of the node's clock would refuse
    // tokens not minted yet, and outlast any pardon until then.
    if (!decimal(*before, 0xffffffffULL, &t) || t == 0 || static_cast<std::int64_t>(t) > now) {
      *why = "issued_before= is a unix time in seconds, not after now (leave it out for now)";
      return false;
    }
    out->issued_before = static_cast<std::uint32_t>(t);
  }
  SubscriberId id;
  for (int i = 7; i >= 0; --i, bits >>= 8) id[static_cast<std::size_t>(i)] = bits & 0xff;
  out->subscriber = id;
  out->key_id = kSubscriberKeyId;
  std::uint64_t ref = subscriber_ref(client, id);
  for (int i = 7; i >= 0; --i, ref >>= 8) out->session[static_cast<std::size_t>(i)] = ref & 0xff;
  return true;
}

}  // namespace

Problem parse_revoke(std::string_view body, const KeyRing& keys, std::string_view client, std::int64_t now,
                     RevokeRequest* out, std::string* why) {
  if (body.size() > kMaxBodyBytes) return Problem::too_large;
  std::map<std::string, std::string, std::less<>> form;
  if (!parse_form(body, {"token", "key", "session", "expires", "subscriber", "issued_before", "comment"}, &form, why)) {
    return Problem::bad_request;
  }
  auto field = [&](std::string_view name) -> const std::string* {
    const auto it = form.find(name);
    return it == form.end() ? nullptr : &it->second;
  };
  if (const std::string* subscriber = field("subscriber")) {
    if (field("token") || field("key") || field("session") || field("expires") ||
        !parse_subscriber(*subscriber, field("issued_before"), client, now, out, why)) {
      if (why->empty())
        *why = "subscriber= is 16 hex digits (URITOKEN_SUBSCRIBER), alone or with issued_before= and comment=";
      return Problem::bad_request;
    }
  } else if (field("issued_before")) {
    *why = "issued_before= goes with subscriber= only";
    return Problem::bad_request;
  } else if (const std::string* token = field("token")) {
    if (field("key") || field("session") || field("expires")) {
      *why = "give token= or key=, session= and expires=, not both";
      return Problem::bad_request;
    }
    Claims claims;
    // The text of a URL or the token alone.
    const std::string_view text = token_of_url(*token).value_or(*token);
    if (decode_token(text, &claims) != Reason::ok) {
      *why = "token= is not a token (or a URL holding one)";
      return Problem::bad_request;
    }
    out->key_id = claims.key_id;
    out->session = claims.session;
    out->expires = claims.expires;
  } else {
    std::uint64_t key = 0, session = 0, expires = 0;
    if (!field("key") || !field("session") || !field("expires") || !decimal(*field("key"), 0xffff, &key) || key == 0 ||
        !hex64(*field("session"), &session) || !decimal(*field("expires"), 0xffffffffULL, &expires)) {
      *why = "give token=<token or URL>, or key=<key id>, session=<16 hex digits> and expires=<unix seconds>";
      return Problem::bad_request;
    }
    out->key_id = static_cast<std::uint16_t>(key);
    for (int i = 7; i >= 0; --i, session >>= 8) out->session[static_cast<std::size_t>(i)] = session & 0xff;
    out->expires = static_cast<std::uint32_t>(expires);
  }
  if (const std::string* comment = field("comment")) {
    if (comment->size() > kMaxCommentBytes) {
      *why = "comment= is longer than " + std::to_string(kMaxCommentBytes) + " bytes";
      return Problem::bad_request;
    }
    out->comment = *comment;
  }
  if (out->subscriber) return Problem::ok;
  // Another client's key, or one this node does not know: the same answer,
  // so a client learns nothing of other clients' key ids.
  const Key* owner = keys.find(out->key_id);
  if (owner == nullptr || owner->client != client) {
    *why = "that token was not minted with one of your keys";
    return Problem::not_your_token;
  }
  if (static_cast<std::int64_t>(out->expires) < now) {
    *why = "that token has expired already";
    return Problem::expired_token;
  }
  return Problem::ok;
}

bool Cursor::operator<(const Cursor& o) const {
  return std::tie(stamp_ms, key_id, session) < std::tie(o.stamp_ms, o.key_id, o.session);
}

std::string format_cursor(const Cursor& c) {
  char s[17];
  SessionId id;
  std::uint64_t v = c.session;
  for (int i = 7; i >= 0; --i, v >>= 8) id[static_cast<std::size_t>(i)] = v & 0xff;
  session_hex(id, s);
  return std::to_string(c.stamp_ms) + "-" + std::to_string(c.key_id) + "-" + s;
}

std::optional<Cursor> parse_cursor(std::string_view text) {
  const std::size_t a = text.find('-');
  const std::size_t b = a == std::string_view::npos ? a : text.find('-', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  std::uint64_t stamp = 0, key = 0;
  Cursor c;
  if (!decimal(text.substr(0, a), ~0ULL, &stamp) || !decimal(text.substr(a + 1, b - a - 1), 0xffff, &key) ||
      !hex64(text.substr(b + 1), &c.session)) {
    return std::nullopt;
  }
  c.stamp_ms = stamp;
  c.key_id = static_cast<std::uint16_t>(key);
  return c;
}

Problem parse_feed_query(std::string_view query, FeedQuery* out, std::string* why) {
  if (query.size() > kMaxBodyBytes) return Problem::too_large;
  std::map<std::string, std::string, std::less<>> form;
  if (!parse_form(query, {"after", "limit"}, &form, why)) return Problem::bad_request;
  if (const auto it = form.find("after"); it != form.end() && !it->second.empty()) {
    const auto c = parse_cursor(it->second);
    if (!c) {
      *why = "after= is not a cursor this API gave (next)";
      return Problem::bad_request;
    }
    out->after = *c;
  }
  if (const auto it = form.find("limit"); it != form.end()) {
    std::uint64_t n = 0;
    if (!decimal(it->second, kFeedMaxLimit, &n) || n == 0) {
      *why = "limit= is 1 to " + std::to_string(kFeedMaxLimit);
      return Problem::bad_request;
    }
    out->limit = static_cast<unsigned>(n);
  }
  return Problem::ok;
}

}  // namespace uritoken::client_api
