// SPDX-License-Identifier: Apache-2.0
// Writes tests/vectors/tokens.txt: known-answer vectors for the token format.
// Run once when the format changes (make vectors); the file is committed and
// every implementation (C++ core, C API, PHP, Python, Node) is tested
// against it, so a change that alters any token is caught everywhere.
#include <cstdio>
#include <string>
#include <vector>

#include "../../mod_uritoken/core/base64url.h"
#include "../../mod_uritoken/core/keyring.h"
#include "../../mod_uritoken/core/token.h"

using namespace uritoken;

namespace {

struct Check {
  const char* path;
  const char* ip;
  long now;
  const char* expect;  // "status reason"
};

struct Vector {
  const char* name;
  std::uint16_t key_id;
  const char* client;
  const char* session_hex;
  std::uint32_t expires;
  long not_before;  // -1: none
  const char* scope;
  const char* network;
  std::vector<Check> checks;
  const char* account = nullptr;  // with a subscriber: the site's account id
  std::uint32_t issued = 0;
};

SessionId parse_hex(const char* hex) {
  SessionId s{};
  for (std::size_t i = 0; i < s.size(); ++i)
    s[i] = static_cast<std::uint8_t>(std::stoi(std::string(hex + 2 * i, 2), nullptr, 16));
  return s;
}

}  // namespace

int main() {
  // Fixed test key: bytes 0x00..0x1f. Never use it for anything real.
  std::uint8_t secret[32];
  for (int i = 0; i < 32; ++i) secret[i] = static_cast<std::uint8_t>(i);
  const std::string key_b64 = base64url_encode(secret, sizeof secret);

  const std::uint32_t t = 1800000000;  // 2027-01-15T08:00:00Z
  const std::vector<Vector> vectors = {
      {"minimal",
       1,
       "a",
       "0000000000000000",
       t,
       -1,
       nullptr,
       nullptr,
       {{"/x.jpg", "-", t - 10, "valid ok"},
        {"/x.jpg", "-", t + 31, "expired expired"},
        {"/x.jpg", "-", t + 30, "valid ok"}}},
      {"typical",
       7,
       "site42",
       "0123456789abcdef",
       t,
       -1,
       "/gallery/12/",
       nullptr,
       {{"/gallery/12/photo.jpg", "-", t - 3600, "valid ok"},
        {"/gallery/12/sub/seg1.ts", "-", t - 3600, "valid ok"},
        {"/gallery/12", "-", t - 3600, "valid ok"},
        {"/gallery/13/photo.jpg", "-", t - 3600, "invalid bad-mac"},
        {"/gallery", "-", t - 3600, "invalid out-of-scope"},
        {"/gallery/12/photo.jpg", "-", t - 8 * 86400, "invalid ttl-too-long"}}},
      {"exact-file",
       7,
       "site42",
       "fedcba9876543210",
       t,
       -1,
       "/video/film.mp4",
       nullptr,
       {{"/video/film.mp4", "-", t - 60, "valid ok"},
        {"/video/film.mp4/x", "-", t - 60, "invalid out-of-scope"},
        {"/video/other.mp4", "-", t - 60, "invalid bad-mac"}}},
      {"not-before",
       300,
       "client.example-01",
       "1111111111111111",
       t,
       t - 600,
       nullptr,
       nullptr,
       {{"/a", "-", t - 300, "valid ok"},
        {"/a", "-", t - 700, "invalid not-yet-valid"},
        {"/a", "-", t - 630, "valid ok"}}},
      {"ipv4-24",
       9,
       "shop_9",
       "2222222222222222",
       t,
       -1,
       nullptr,
       "192.0.2.0/24",
       {{"/a.jpg", "192.0.2.77", t - 60, "valid ok"},
        {"/a.jpg", "192.0.3.77", t - 60, "invalid bad-mac"},
        {"/a.jpg", "2001:db8::1", t - 60, "invalid wrong-network"},
        {"/a.jpg", "::ffff:192.0.2.1", t - 60, "valid ok"}}},
      {"ipv6-48",
       9,
       "shop_9",
       "3333333333333333",
       t,
       -1,
       nullptr,
       "2001:db8:abcd::/48",
       {{"/a.jpg", "2001:db8:abcd:12::1", t - 60, "valid ok"},
        {"/a.jpg", "2001:db8:abce::1", t - 60, "invalid bad-mac"},
        {"/a.jpg", "192.0.2.1", t - 60, "invalid wrong-network"}}},
      {"everything",
       65535,
       "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef",
       "ffffffffffffffff",
       4294967295U,
       4294960000,
       "/a/b/c/",
       "198.51.100.7/32",
       {{"/a/b/c/d.ts", "198.51.100.7", 4294967000L, "valid ok"},
        {"/a/b/c/d.ts", "198.51.100.8", 4294967000L, "invalid bad-mac"}}},
      {"subscriber",
       7,
       "site42",
       "0123456789abcdef",
       t,
       -1,
       "/gallery/12/",
       nullptr,
       {{"/gallery/12/photo.jpg", "-", t - 3600, "valid ok"},
        {"/gallery/13/photo.jpg", "-", t - 3600, "invalid bad-mac"}},
       "customer-8812@example.com",
       t - 3600},
      {"subscriber-everything",
       65535,
       "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef",
       "ffffffffffffffff",
       4294967295U,
       4294960000,
       "/a/b/c/",
       "2001:db8:abcd::/48",
       {{"/a/b/c/d.ts", "2001:db8:abcd::9", 4294967000L, "valid ok"}},
       "K\xc3\xb6nig",  // UTF-8 bytes, as the site stores the id
       4294960000},
  };
  // The site's subscriber secret for the vectors: bytes 0x20..0x3f.
  std::uint8_t subscriber_secret[32];
  for (int i = 0; i < 32; ++i) subscriber_secret[i] = static_cast<std::uint8_t>(0x20 + i);
  const std::string subscriber_secret_b64 = base64url_encode(subscriber_secret, sizeof subscriber_secret);

  std::printf(
      "# mod_uritoken token format v1: known-answer vectors (docs/token-format.md).\n"
      "# Generated by tests/vectors/make_vectors.cc; do not edit by hand.\n"
      "# key is base64url (no padding) of the 32 bytes 00 01 02 .. 1f.\n"
      "# A block lists the mint inputs and the token; each 'check' line is a\n"
      "# verification: path, client ip ('-' = none), now -> status reason,\n"
      "# with leeway 30 s and max TTL 604800 s. A subscriber block gives the site's\n"
      "# secret (base64url), the account id (UTF-8) and the subscriber field (hex)\n"
      "# that subscriber_id makes of them, and the issue time.\n");
  for (const auto& v : vectors) {
    KeyRing ring;
    std::string error;
    if (!ring.add(v.key_id, v.client, KeyState::sign, secret, &error)) {
      std::fprintf(stderr, "%s: %s\n", v.name, error.c_str());
      return 1;
    }
    MintParams p;
    p.client = v.client;
    p.expires = v.expires;
    p.session = parse_hex(v.session_hex);
    if (v.not_before >= 0) p.not_before = static_cast<std::uint32_t>(v.not_before);
    if (v.scope) p.scope = std::string_view(v.scope);
    if (v.network) p.network = parse_ip_prefix(v.network);
    SubscriberId subscriber{};
    if (v.account) {
      subscriber = subscriber_id(subscriber_secret, v.client, v.account);
      p.subscriber = subscriber;
      p.issued = v.issued;
    }
    const auto token = mint_token(*ring.find(v.key_id), p, &error);
    if (!token) {
      std::fprintf(stderr, "%s: %s\n", v.name, error.c_str());
      return 1;
    }
    std::printf("\nname: %s\nkey: %s\nkey_id: %u\nclient: %s\nsession: %s\nexpires: %u\n", v.name, key_b64.c_str(),
                v.key_id, v.client, v.session_hex, v.expires);
    std::printf("not_before: %s\n", v.not_before >= 0 ? std::to_string(v.not_before).c_str() : "-");
    std::printf("scope: %s\nnetwork: %s\n", v.scope ? v.scope : "-", v.network ? v.network : "-");
    if (v.account) {
      std::string hex;
      for (std::uint8_t b : subscriber) hex += "0123456789abcdef"[b >> 4], hex += "0123456789abcdef"[b & 15];
      std::printf("subscriber_secret: %s\naccount: %s\nsubscriber: %s\nissued: %u\n", subscriber_secret_b64.c_str(),
                  v.account, hex.c_str(), v.issued);
    } else {
      std::printf("subscriber_secret: -\naccount: -\nsubscriber: -\nissued: -\n");
    }
    std::printf("token: %s\n", token->c_str());
    for (const auto& c : v.checks) {
      std::printf("check: %s %s %ld -> %s\n", c.path, c.ip, c.now, c.expect);
    }
  }
  return 0;
}
