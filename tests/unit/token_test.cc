// SPDX-License-Identifier: Apache-2.0
// Token minting and verification: known-answer vectors, every byte flipped,
// time edges, scope, network binding and key rotation.
#include "../../mod_uritoken/core/token.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <cstring>
#include <sstream>

#include "../../mod_uritoken/core/base64url.h"
#include "../../mod_uritoken/core/request_path.h"
#include "test_helpers.h"

using namespace uritoken;

namespace {

KeyRing ring_with(std::uint16_t id, const std::string& client, KeyState state, std::uint8_t fill) {
  std::uint8_t secret[32];
  std::memset(secret, fill, sizeof secret);
  KeyRing ring;
  std::string error;
  EXPECT_TRUE(ring.add(id, client, state, secret, &error)) << error;
  return ring;
}

Verdict verify_at(const KeyRing& ring, const std::string& token, std::string_view path, std::int64_t now,
                  const IpAddress* ip = nullptr) {
  VerifyContext ctx;
  std::string decoded;
  EXPECT_EQ(decode_request_path(path, &decoded), PathProblem::none);
  ctx.path = decoded;
  ctx.now = now;
  ctx.client_addr = ip;
  return verify_token(ring, token, ctx);
}

constexpr std::uint32_t kT = 1800000000;

}  // namespace

TEST(TokenVectors, MintReproducesEveryVectorAndEveryCheckHolds) {
  const auto blocks = uritoken::testing::read_vectors();
  ASSERT_GE(blocks.size(), 7u);
  int checks = 0;
  for (const auto& b : blocks) {
    const auto& f = b.fields;
    SCOPED_TRACE(f.at("name"));
    std::uint8_t secret[32];
    ASSERT_EQ(base64url_decode(secret, sizeof secret, f.at("key")), 32);
    KeyRing ring;
    std::string error;
    const auto id = static_cast<std::uint16_t>(std::stoul(f.at("key_id")));
    ASSERT_TRUE(ring.add(id, f.at("client"), KeyState::sign, secret, &error));
    MintParams p;
    p.client = f.at("client");
    p.expires = static_cast<std::uint32_t>(std::stoul(f.at("expires")));
    SessionId s;
    for (std::size_t i = 0; i < s.size(); ++i)
      s[i] = static_cast<std::uint8_t>(std::stoi(f.at("session").substr(2 * i, 2), nullptr, 16));
    p.session = s;
    if (f.at("not_before") != "-") p.not_before = static_cast<std::uint32_t>(std::stoul(f.at("not_before")));
    if (f.at("scope") != "-") p.scope = std::string_view(f.at("scope"));
    if (f.at("network") != "-") p.network = parse_ip_prefix(f.at("network"));
    if (f.at("account") != "-") {
      std::uint8_t site_secret[32];
      ASSERT_EQ(base64url_decode(site_secret, sizeof site_secret, f.at("subscriber_secret")), 32);
      p.subscriber = subscriber_id(site_secret, f.at("client"), f.at("account"));
      char hex[17];
      session_hex(*p.subscriber, hex);
      EXPECT_EQ(std::string(hex), f.at("subscriber"));
      p.issued = static_cast<std::uint32_t>(std::stoul(f.at("issued")));
    }
    const auto token = mint_token(*ring.find(id), p, &error);
    ASSERT_TRUE(token) << error;
    EXPECT_EQ(*token, f.at("token"));
    Claims decoded;
    ASSERT_EQ(decode_token(*token, &decoded), Reason::ok);
    EXPECT_EQ((decoded.flags & flag::kSubscriber) != 0, f.at("account") != "-");
    if (p.subscriber) {
      EXPECT_EQ(decoded.subscriber, *p.subscriber);
      EXPECT_EQ(decoded.issued, p.issued);
    }

    for (const auto& c : b.checks) {
      std::istringstream in(c);
      std::string path, ip, arrow, status, reason;
      long long now = 0;
      in >> path >> ip >> now >> arrow >> status >> reason;
      std::optional<IpAddress> addr;
      if (ip != "-") addr = parse_ip_address(ip);
      const Verdict v = verify_at(ring, f.at("token"), path, now, addr ? &*addr : nullptr);
      EXPECT_EQ(status_name(v.status), status) << c;
      EXPECT_EQ(reason_name(v.reason), reason) << c;
      ++checks;
    }
  }
  EXPECT_GE(checks, 20);
}

TEST(Token, ASubscriberFieldOfTheWrongSizeOrTimeIsMalformed) {
  const KeyRing ring = ring_with(7, "site42", KeyState::sign, 1);
  MintParams p;
  p.client = "site42";
  p.expires = kT;
  std::uint8_t site_secret[32] = {1};
  p.subscriber = subscriber_id(site_secret, "site42", "alice");
  p.issued = kT - 60;
  std::string error;
  const auto token = mint_token(*ring.find(7), p, &error);
  ASSERT_TRUE(token) << error;
  std::uint8_t raw[kPayloadMaxBytes + kTagBytes];
  const long n = base64url_decode(raw, sizeof raw, *token);
  ASSERT_GT(n, 0);
  auto reencode = [&](std::size_t len) { return base64url_encode(raw, len); };
  // The payload without one byte of the field (the client shifted into it): bad-structure.
  std::uint8_t cut[kPayloadMaxBytes + kTagBytes];
  std::memcpy(cut, raw, 16);
  std::memcpy(cut + 16, raw + 17, static_cast<std::size_t>(n) - 17);
  Claims c;
  EXPECT_EQ(decode_token(base64url_encode(cut, static_cast<std::size_t>(n) - 1), &c), Reason::bad_structure);
  // The flag without the field.
  std::uint8_t no_field[kPayloadMaxBytes + kTagBytes];
  std::memcpy(no_field, raw, 16);
  std::memcpy(no_field + 16, raw + 28, static_cast<std::size_t>(n) - 28);
  EXPECT_EQ(decode_token(base64url_encode(no_field, static_cast<std::size_t>(n) - 12), &c), Reason::bad_structure);
  // Issued after the expiry.
  raw[24] = 0xff;
  EXPECT_EQ(decode_token(reencode(static_cast<std::size_t>(n)), &c), Reason::bad_structure);
  // An unknown flag (bit 5).
  raw[24] = 0;
  raw[1] |= 0x20;
  EXPECT_EQ(decode_token(reencode(static_cast<std::size_t>(n)), &c), Reason::bad_structure);
  // A minter refuses an issue time after the expiry.
  p.issued = kT + 1;
  EXPECT_FALSE(mint_token(*ring.find(7), p, &error));
  // And the field is bound by the MAC: another subscriber, another tag.
  p.issued = kT - 60;
  p.subscriber = subscriber_id(site_secret, "site42", "bob");
  const auto other = mint_token(*ring.find(7), p, &error);
  ASSERT_TRUE(other);
  EXPECT_NE(other->substr(other->size() - 22), token->substr(token->size() - 22));
}

TEST(Token, TypicalTokenIsShort) {
  const KeyRing ring = ring_with(7, "site42", KeyState::sign, 1);
  MintParams p;
  p.client = "site42";
  p.expires = kT;
  p.scope = std::string_view("/gallery/12/");
  std::string error;
  const auto token = mint_token(*ring.find(7), p, &error);
  ASSERT_TRUE(token);
  EXPECT_LE(token->size(), 64u);
  EXPECT_TRUE(base64url_alphabet_ok(*token));
}

TEST(Token, EveryFlippedByteIsRefused) {
  const KeyRing ring = ring_with(7, "site42", KeyState::sign, 1);
  MintParams p;
  p.client = "site42";
  p.expires = kT;
  p.scope = std::string_view("/g/");
  p.not_before = kT - 100;
  p.network = parse_ip_prefix("192.0.2.0/24");
  std::string error;
  const auto token = mint_token(*ring.find(7), p, &error);
  ASSERT_TRUE(token);
  const auto ip = parse_ip_address("192.0.2.9");
  ASSERT_EQ(verify_at(ring, *token, "/g/x", kT - 50, &*ip).status, Status::valid);

  std::uint8_t raw[128];
  const long n = base64url_decode(raw, sizeof raw, *token);
  ASSERT_GT(n, 0);
  for (long i = 0; i < n; ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::uint8_t copy[128];
      std::memcpy(copy, raw, static_cast<std::size_t>(n));
      copy[i] ^= static_cast<std::uint8_t>(1 << bit);
      const std::string forged = base64url_encode(copy, static_cast<std::size_t>(n));
      const Verdict v = verify_at(ring, forged, "/g/x", kT - 50, &*ip);
      EXPECT_NE(v.status, Status::valid) << "byte " << i << " bit " << bit;
      EXPECT_FALSE(v.authenticated) << "byte " << i << " bit " << bit;
    }
  }
  // Truncated and extended tokens too.
  for (std::size_t len = 0; len < token->size(); ++len) {
    EXPECT_NE(verify_at(ring, token->substr(0, len), "/g/x", kT - 50, &*ip).status, Status::valid);
  }
  EXPECT_NE(verify_at(ring, *token + "A", "/g/x", kT - 50, &*ip).status, Status::valid);
}

TEST(Token, ExpiryAndSkewEdges) {
  const KeyRing ring = ring_with(1, "c", KeyState::sign, 2);
  MintParams p;
  p.client = "c";
  p.expires = kT;
  p.not_before = kT - 1000;
  std::string error;
  const auto token = *mint_token(*ring.find(1), p, &error);
  auto at = [&](std::int64_t now, std::uint32_t leeway) {
    VerifyContext ctx;
    ctx.path = "/";
    ctx.now = now;
    ctx.leeway_seconds = leeway;
    return verify_token(ring, token, ctx);
  };
  EXPECT_EQ(at(kT, 0).status, Status::valid);
  EXPECT_EQ(at(kT + 1, 0).status, Status::expired);
  EXPECT_EQ(at(kT + 30, 30).status, Status::valid);
  EXPECT_EQ(at(kT + 31, 30).status, Status::expired);
  EXPECT_EQ(at(kT - 1000, 0).status, Status::valid);
  EXPECT_EQ(at(kT - 1001, 0).reason, Reason::not_yet_valid);
  EXPECT_EQ(at(kT - 1030, 30).status, Status::valid);
  EXPECT_EQ(at(kT - 1031, 30).reason, Reason::not_yet_valid);
  // Expired tokens are still authenticated: ops see whose token it was.
  EXPECT_TRUE(at(kT + 100, 0).authenticated);
}

TEST(Token, MaxTtlRefusesFarFutureExpiry) {
  const KeyRing ring = ring_with(1, "c", KeyState::sign, 2);
  MintParams p;
  p.client = "c";
  p.expires = kT;
  std::string error;
  const auto token = *mint_token(*ring.find(1), p, &error);
  VerifyContext ctx;
  ctx.path = "/";
  ctx.leeway_seconds = 0;
  ctx.max_ttl_seconds = 3600;
  ctx.now = kT - 3600;
  EXPECT_EQ(verify_token(ring, token, ctx).status, Status::valid);
  ctx.now = kT - 3601;
  EXPECT_EQ(verify_token(ring, token, ctx).reason, Reason::ttl_too_long);
  // The leeway widens the limit as it widens expiry: exactly 30 s more.
  ctx.leeway_seconds = 30;
  ctx.now = kT - 3630;
  EXPECT_EQ(verify_token(ring, token, ctx).status, Status::valid);
  ctx.now = kT - 3631;
  EXPECT_EQ(verify_token(ring, token, ctx).reason, Reason::ttl_too_long);
}

TEST(Token, ScopeDirectoryAndExactFile) {
  const KeyRing ring = ring_with(1, "c", KeyState::sign, 3);
  std::string error;
  MintParams dir;
  dir.client = "c";
  dir.expires = kT;
  dir.scope = std::string_view("//media//films/");  // canonicalised to /media/films/
  const auto dtok = *mint_token(*ring.find(1), dir, &error);
  EXPECT_EQ(verify_at(ring, dtok, "/media/films/a.mp4", kT).status, Status::valid);
  EXPECT_EQ(verify_at(ring, dtok, "/media/films/deep/er/a.ts", kT).status, Status::valid);
  EXPECT_EQ(verify_at(ring, dtok, "/media//films/a.mp4", kT).status, Status::valid);
  EXPECT_EQ(verify_at(ring, dtok, "/media/films", kT).status, Status::valid);
  // Only the slash-less directory name is limited to a directory: the glue
  // refuses it unless it maps to one (MultiViews would find films.zip).
  EXPECT_TRUE(verify_at(ring, dtok, "/media/films", kT).directory_only);
  EXPECT_FALSE(verify_at(ring, dtok, "/media/films/", kT).directory_only);
  EXPECT_FALSE(verify_at(ring, dtok, "/media/films/a.mp4", kT).directory_only);
  EXPECT_EQ(verify_at(ring, dtok, "/media/films2/a.mp4", kT).reason, Reason::bad_mac);
  EXPECT_EQ(verify_at(ring, dtok, "/media/a.mp4", kT).reason, Reason::bad_mac);
  EXPECT_EQ(verify_at(ring, dtok, "/media/", kT).reason, Reason::out_of_scope);
  EXPECT_EQ(verify_at(ring, dtok, "/", kT).reason, Reason::out_of_scope);

  MintParams file = dir;
  file.scope = std::string_view("/media/films/a.mp4");
  const auto ftok = *mint_token(*ring.find(1), file, &error);
  EXPECT_EQ(verify_at(ring, ftok, "/media/films/a.mp4", kT).status, Status::valid);
  EXPECT_EQ(verify_at(ring, ftok, "/media/films/b.mp4", kT).reason, Reason::bad_mac);
  EXPECT_EQ(verify_at(ring, ftok, "/media/films/a.mp4/", kT).reason, Reason::out_of_scope);
  EXPECT_EQ(verify_at(ring, ftok, "/media/films/a.mp4/x", kT).reason, Reason::out_of_scope);

  for (const char* bad : {"", "relative/", "/a/../b/", "/./", "/a/%2e/", "/", "/_uk_x/", "/a/_UK_x/"}) {
    MintParams b = dir;
    b.scope = std::string_view(bad);
    EXPECT_FALSE(mint_token(*ring.find(1), b, &error)) << bad;
  }
}

TEST(Token, NetworkBindingIpv4AndIpv6) {
  const KeyRing ring = ring_with(1, "c", KeyState::sign, 4);
  std::string error;
  MintParams p;
  p.client = "c";
  p.expires = kT;
  p.network = parse_ip_prefix("203.0.113.200/24");  // host bits ignored
  const auto v4 = *mint_token(*ring.find(1), p, &error);
  p.network = parse_ip_prefix("2001:db8:1234:5678::1/48");
  const auto v6 = *mint_token(*ring.find(1), p, &error);
  auto ip = [](const char* s) { return *parse_ip_address(s); };
  const auto in4 = ip("203.0.113.1"), out4 = ip("203.0.114.1"), mapped = ip("::ffff:203.0.113.9");
  const auto in6 = ip("2001:db8:1234:ffff::9"), out6 = ip("2001:db8:1235::1");
  EXPECT_EQ(verify_at(ring, v4, "/", kT, &in4).status, Status::valid);
  EXPECT_EQ(verify_at(ring, v4, "/", kT, &mapped).status, Status::valid);
  EXPECT_EQ(verify_at(ring, v4, "/", kT, &out4).reason, Reason::bad_mac);
  EXPECT_EQ(verify_at(ring, v4, "/", kT, &in6).reason, Reason::wrong_network);
  EXPECT_EQ(verify_at(ring, v4, "/", kT, nullptr).reason, Reason::wrong_network);
  EXPECT_EQ(verify_at(ring, v6, "/", kT, &in6).status, Status::valid);
  EXPECT_EQ(verify_at(ring, v6, "/", kT, &out6).reason, Reason::bad_mac);
  EXPECT_EQ(verify_at(ring, v6, "/", kT, &in4).reason, Reason::wrong_network);
}

TEST(Token, KeyRotationAndClientBinding) {
  std::uint8_t k1[32], k2[32], k3[32];
  std::memset(k1, 1, 32);
  std::memset(k2, 2, 32);
  std::memset(k3, 3, 32);
  KeyRing minting;  // the client site's view
  std::string error;
  ASSERT_TRUE(minting.add(1, "siteA", KeyState::sign, k1, &error));
  ASSERT_TRUE(minting.add(2, "siteA", KeyState::sign, k2, &error));
  ASSERT_TRUE(minting.add(3, "siteB", KeyState::sign, k3, &error));
  MintParams p;
  p.client = "siteA";
  p.expires = kT;
  const auto old_tok = *mint_token(*minting.find(1), p, &error);
  const auto new_tok = *mint_token(*minting.find(2), p, &error);
  EXPECT_EQ(minting.signing_key("siteA", std::nullopt)->id, 2);  // highest sign key
  EXPECT_EQ(minting.signing_key("siteA", 1)->id, 1);
  EXPECT_EQ(minting.signing_key("siteC", std::nullopt), nullptr);

  // Stage 1: server knows key 1 (sign) and key 2 (verify-only): both verify.
  KeyRing server;
  ASSERT_TRUE(server.add(1, "siteA", KeyState::sign, k1, &error));
  ASSERT_TRUE(server.add(2, "siteA", KeyState::verify_only, k2, &error));
  EXPECT_EQ(verify_at(server, old_tok, "/", kT).status, Status::valid);
  EXPECT_EQ(verify_at(server, new_tok, "/", kT).status, Status::valid);
  // Stage 2: key 1 retired: old tokens refused, new ones still good.
  KeyRing later;
  ASSERT_TRUE(later.add(1, "siteA", KeyState::retired, k1, &error));
  ASSERT_TRUE(later.add(2, "siteA", KeyState::sign, k2, &error));
  EXPECT_EQ(verify_at(later, old_tok, "/", kT).reason, Reason::retired_key);
  EXPECT_EQ(verify_at(later, new_tok, "/", kT).status, Status::valid);
  // Unknown key id.
  KeyRing other;
  ASSERT_TRUE(other.add(9, "siteA", KeyState::sign, k1, &error));
  EXPECT_EQ(verify_at(other, old_tok, "/", kT).reason, Reason::unknown_key);

  // siteB's key cannot mint for siteA...
  EXPECT_FALSE(mint_token(*minting.find(3), p, &error));
  // ...and a token that names siteA but is keyed with siteB's key id fails.
  KeyRing forged_ring;
  ASSERT_TRUE(forged_ring.add(3, "siteA", KeyState::sign, k3, &error));
  const auto forged = *mint_token(*forged_ring.find(3), p, &error);
  KeyRing real;
  ASSERT_TRUE(real.add(3, "siteB", KeyState::sign, k3, &error));
  EXPECT_EQ(verify_at(real, forged, "/", kT).reason, Reason::client_mismatch);
}

TEST(Token, DecodeRefusesMalformed) {
  Claims c;
  EXPECT_EQ(decode_token("", &c), Reason::too_short);
  EXPECT_EQ(decode_token(std::string(200, 'A'), &c), Reason::too_long);
  EXPECT_EQ(decode_token(std::string(50, '.'), &c), Reason::bad_alphabet);
  EXPECT_EQ(decode_token(std::string(49, 'A'), &c), Reason::bad_encoding);  // 49 % 4 == 1
  EXPECT_EQ(decode_token(std::string(48, 'A'), &c), Reason::bad_version);   // version byte 0
  // Version 1, unknown flag bit.
  std::uint8_t raw[36] = {1, 0x10, 0, 1};
  EXPECT_EQ(decode_token(base64url_encode(raw, sizeof raw), &c), Reason::bad_structure);
}
