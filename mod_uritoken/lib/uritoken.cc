// SPDX-License-Identifier: Apache-2.0
// The C API of liburitoken over the core. Every entry point catches
// everything: a C caller must never see a C++ exception.
#include "uritoken.h"

#include <sodium.h>

#include <cstring>
#include <ctime>

#include "../core/host_name.h"
#include "../core/ipnet.h"
#include "../core/keyring.h"
#include "../core/request_path.h"
#include "../core/token.h"

using namespace uritoken;

namespace {

void fill_claims(uritoken_claims* out, const Claims& c) {
  std::memset(out, 0, sizeof *out);
  out->version = c.version;
  out->key_id = c.key_id;
  std::memcpy(out->client, c.client_buf.data(), c.client_len);
  out->client[c.client_len] = '\0';
  std::memcpy(out->session, c.session.data(), kSessionBytes);
  out->expires = c.expires;
  out->not_before = (c.flags & flag::kNotBefore) ? c.not_before : 0;
  out->has_scope = (c.flags & flag::kScope) ? 1 : 0;
  out->scope_segments = c.scope & 0x7f;
  out->scope_exact = (c.scope & kScopeExact) ? 1 : 0;
  out->network_family = (c.flags & flag::kIpv4) ? 4 : (c.flags & flag::kIpv6) ? 6 : 0;
  out->network_prefix = c.ip_prefix_len;
}

}  // namespace

extern "C" {

int uritoken_init(void) { return sodium_init() < 0 ? -1 : 0; }

void uritoken_keygen(unsigned char key[URITOKEN_KEYBYTES]) { randombytes_buf(key, URITOKEN_KEYBYTES); }

namespace {
int mint(char* token, size_t token_maxlen, const unsigned char key[URITOKEN_KEYBYTES], unsigned int key_id,
         const char* client, uint32_t expires, const uritoken_mint_options* options, const unsigned char* subscriber,
         uint32_t issued) {
  if (token == nullptr || key == nullptr || client == nullptr || key_id == 0 || key_id > 65535) {
    return -1;
  }
  KeyRing ring;
  std::string error;
  if (!ring.add(static_cast<std::uint16_t>(key_id), client, KeyState::sign, key, &error)) return -1;
  MintParams p;
  p.client = client;
  p.expires = expires;
  SessionId session;
  if (options != nullptr) {
    if (options->not_before != 0) p.not_before = options->not_before;
    if (options->scope != nullptr) p.scope = std::string_view(options->scope);
    if (options->network != nullptr) {
      p.network = parse_ip_prefix(options->network);
      if (!p.network) return -1;
    }
    if (options->session != nullptr) {
      std::memcpy(session.data(), options->session, kSessionBytes);
      p.session = session;
    }
  }
  if (subscriber != nullptr) {
    SubscriberId id;
    std::memcpy(id.data(), subscriber, id.size());
    p.subscriber = id;
    p.issued = issued;
  }
  const auto minted = mint_token(*ring.find(static_cast<std::uint16_t>(key_id)), p, &error);
  if (!minted || minted->size() + 1 > token_maxlen) return -1;
  std::memcpy(token, minted->c_str(), minted->size() + 1);
  return 0;
}
}  // namespace

int uritoken_mint(char* token, size_t token_maxlen, const unsigned char key[URITOKEN_KEYBYTES], unsigned int key_id,
                  const char* client, uint32_t expires, const uritoken_mint_options* options) try {
  return mint(token, token_maxlen, key, key_id, client, expires, options, nullptr, 0);
} catch (...) {
  return -1;
}

int uritoken_mint_subscriber(char* token, size_t token_maxlen, const unsigned char key[URITOKEN_KEYBYTES],
                             unsigned int key_id, const char* client, uint32_t expires,
                             const uritoken_mint_options* options,
                             const unsigned char subscriber[URITOKEN_SUBSCRIBERBYTES], uint32_t issued) try {
  if (subscriber == nullptr) return -1;
  return mint(token, token_maxlen, key, key_id, client, expires, options, subscriber, issued);
} catch (...) {
  return -1;
}

int uritoken_subscriber_id(unsigned char subscriber[URITOKEN_SUBSCRIBERBYTES],
                           const unsigned char secret[URITOKEN_SUBSCRIBER_SECRETBYTES], const char* client,
                           const char* account) try {
  if (subscriber == nullptr || secret == nullptr || client == nullptr || account == nullptr || !client_id_ok(client)) {
    return -1;
  }
  const SubscriberId id = uritoken::subscriber_id(secret, client, account);
  std::memcpy(subscriber, id.data(), id.size());
  return 0;
} catch (...) {
  return -1;
}

int uritoken_host_name(char* host, size_t host_maxlen, const char* address, const char* node_hash,
                       const char* zone) try {
  if (host == nullptr || address == nullptr || node_hash == nullptr || zone == nullptr) return -1;
  const auto ip = parse_ip_address(address);
  if (!ip) return -1;
  const auto name = server_host_name(*ip, node_hash, zone);
  if (!name || name->size() + 1 > host_maxlen) return -1;
  std::memcpy(host, name->c_str(), name->size() + 1);
  return 0;
} catch (...) {
  return -1;
}

int uritoken_inspect_subscriber(unsigned char subscriber[URITOKEN_SUBSCRIBERBYTES], uint32_t* issued,
                                const char* token) try {
  if (subscriber == nullptr || issued == nullptr || token == nullptr) return -1;
  Claims c;
  if (decode_token(token, &c) != Reason::ok) return -1;
  if ((c.flags & flag::kSubscriber) == 0) return 1;
  std::memcpy(subscriber, c.subscriber.data(), c.subscriber.size());
  *issued = c.issued;
  return 0;
} catch (...) {
  return -1;
}

int uritoken_inspect(uritoken_claims* claims, const char* token) try {
  if (claims == nullptr || token == nullptr) return -1;
  Claims c;
  if (decode_token(token, &c) != Reason::ok) return -1;
  fill_claims(claims, c);
  return 0;
} catch (...) {
  return -1;
}

int uritoken_verify(uritoken_claims* claims, const char** reason, const char* token,
                    const unsigned char key[URITOKEN_KEYBYTES], unsigned int key_id, const char* client,
                    const uritoken_verify_options* options) try {
  if (reason != nullptr) *reason = "bad-arguments";
  if (token == nullptr || key == nullptr || client == nullptr || key_id == 0 || key_id > 65535) {
    return URITOKEN_INVALID;
  }
  KeyRing ring;
  std::string error;
  if (!ring.add(static_cast<std::uint16_t>(key_id), client, KeyState::verify_only, key, &error)) {
    return URITOKEN_INVALID;
  }
  VerifyContext ctx;
  ctx.path = "/";
  ctx.now = std::time(nullptr);
  std::optional<IpAddress> addr;
  std::string decoded;
  if (options != nullptr) {
    if (options->path != nullptr) {
      if (decode_request_path(options->path, &decoded) != PathProblem::none) {
        if (reason != nullptr) *reason = "bad-path";
        return URITOKEN_INVALID;
      }
      ctx.path = decoded;
    }
    if (options->client_ip != nullptr) {
      addr = parse_ip_address(options->client_ip);
      if (!addr) return URITOKEN_INVALID;
      ctx.client_addr = &*addr;
    }
    if (options->now != 0) ctx.now = options->now;
    if (options->leeway_seconds != 0) ctx.leeway_seconds = options->leeway_seconds;
    if (options->max_ttl_seconds != 0) ctx.max_ttl_seconds = options->max_ttl_seconds;
  }
  const Verdict v = verify_token(ring, token, ctx);
  if (reason != nullptr) *reason = reason_name(v.reason);
  if (claims != nullptr) fill_claims(claims, v.claims);
  switch (v.status) {
    case Status::valid: return URITOKEN_VALID;
    case Status::expired: return URITOKEN_EXPIRED;
    case Status::invalid: return URITOKEN_INVALID;
  }
  return URITOKEN_INVALID;
} catch (...) {
  return URITOKEN_INVALID;
}

}  // extern "C"
