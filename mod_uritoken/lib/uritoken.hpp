// SPDX-License-Identifier: Apache-2.0
// C++ convenience over the C API of liburitoken (uritoken.h): strings in,
// strings out, exceptions for errors. Header-only, so it adds no ABI.
//
//     uritoken::Minter minter(7, "site42", key);   // key: 32 bytes
//     std::string url = "https://media.example.net/" + minter.segment(
//         uritoken::MintOptions{}.ttl(3600).scope("/gallery/12/")) + "/gallery/12/a.jpg";
#ifndef URITOKEN_HPP
#define URITOKEN_HPP

#include <array>
#include <cstdint>
#include <ctime>
#include <optional>
#include <stdexcept>
#include <string>

#include "uritoken.h"

namespace uritoken {

struct MintOptions {
  std::uint32_t expires_at = 0;  // absolute expiry; wins over ttl_seconds
  std::uint32_t ttl_seconds = 300;
  std::uint32_t not_before_at = 0;
  std::optional<std::string> scope_path;
  std::optional<std::string> network_cidr;
  std::optional<std::array<unsigned char, URITOKEN_SUBSCRIBERBYTES>> subscriber_field;
  std::uint32_t issued_at = 0;  // with a subscriber; 0: now

  MintOptions& ttl(std::uint32_t s) {
    ttl_seconds = s;
    return *this;
  }
  MintOptions& expires(std::uint32_t t) {
    expires_at = t;
    return *this;
  }
  MintOptions& not_before(std::uint32_t t) {
    not_before_at = t;
    return *this;
  }
  MintOptions& scope(std::string s) {
    scope_path = std::move(s);
    return *this;
  }
  MintOptions& network(std::string s) {
    network_cidr = std::move(s);
    return *this;
  }
  // Binds the token to a subscriber: subscriber_id(secret, client, account).
  MintOptions& subscriber(const std::array<unsigned char, URITOKEN_SUBSCRIBERBYTES>& id, std::uint32_t issued = 0) {
    subscriber_field = id;
    issued_at = issued;
    return *this;
  }
};

class Minter {
 public:
  Minter(unsigned key_id, std::string client, const std::array<unsigned char, URITOKEN_KEYBYTES>& key)
      : key_id_(key_id), client_(std::move(client)), key_(key) {
    if (uritoken_init() != 0) throw std::runtime_error("uritoken_init failed");
  }

  // The token alone.
  std::string mint(const MintOptions& o = {}) const {
    const auto expires =
        o.expires_at != 0 ? o.expires_at : static_cast<std::uint32_t>(std::time(nullptr)) + o.ttl_seconds;
    uritoken_mint_options c{};
    c.not_before = o.not_before_at;
    c.scope = o.scope_path ? o.scope_path->c_str() : nullptr;
    c.network = o.network_cidr ? o.network_cidr->c_str() : nullptr;
    char token[URITOKEN_TOKEN_MAXBYTES];
    const int rc = o.subscriber_field
                       ? uritoken_mint_subscriber(token, sizeof token, key_.data(), key_id_, client_.c_str(), expires,
                                                  &c, o.subscriber_field->data(), o.issued_at)
                       : uritoken_mint(token, sizeof token, key_.data(), key_id_, client_.c_str(), expires, &c);
    if (rc != 0) {
      throw std::invalid_argument("uritoken: cannot mint with these options");
    }
    return token;
  }

  // The subscriber field for the site's account id (secret: the site's own 32 bytes).
  std::array<unsigned char, URITOKEN_SUBSCRIBERBYTES> subscriber_id(
      const std::array<unsigned char, URITOKEN_SUBSCRIBER_SECRETBYTES>& secret, const std::string& account) const {
    std::array<unsigned char, URITOKEN_SUBSCRIBERBYTES> id{};
    if (uritoken_subscriber_id(id.data(), secret.data(), client_.c_str(), account.c_str()) != 0) {
      throw std::invalid_argument("uritoken: cannot make a subscriber id");
    }
    return id;
  }

  // The first path segment: "_uk_" + token.
  std::string segment(const MintOptions& o = {}) const { return std::string(URITOKEN_PREFIX) + mint(o); }

 private:
  unsigned key_id_;
  std::string client_;
  std::array<unsigned char, URITOKEN_KEYBYTES> key_;
};

// The host name of one media server at `address` (uritoken_host_name):
// URLs minted for that server verify against its own wildcard certificate.
inline std::string host_name(const std::string& address, const std::string& node_hash, const std::string& zone) {
  char host[URITOKEN_HOST_MAXBYTES];
  if (uritoken_host_name(host, sizeof host, address.c_str(), node_hash.c_str(), zone.c_str()) != 0) {
    throw std::invalid_argument("uritoken: not an address, a node hash (32 hex digits) and a zone");
  }
  return host;
}

}  // namespace uritoken

#endif  // URITOKEN_HPP
