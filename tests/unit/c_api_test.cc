// SPDX-License-Identifier: Apache-2.0
// The C API of liburitoken agrees with the vectors and refuses bad input.
#include "../../mod_uritoken/lib/uritoken.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include <cstdio>
#include <cstring>
#include <string>

#include "../../mod_uritoken/core/base64url.h"
#include "../../mod_uritoken/lib/uritoken.hpp"
#include "test_helpers.h"

TEST(CApi, MintMatchesTheTypicalVectorAndVerifies) {
  ASSERT_EQ(uritoken_init(), 0);
  const auto blocks = uritoken::testing::read_vectors();
  const auto& f = blocks.at(1).fields;
  ASSERT_EQ(f.at("name"), "typical");
  unsigned char key[URITOKEN_KEYBYTES];
  ASSERT_EQ(uritoken::base64url_decode(key, sizeof key, f.at("key")), 32);
  const unsigned char session[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
  uritoken_mint_options o{};
  o.scope = "/gallery/12/";
  o.session = session;
  char token[URITOKEN_TOKEN_MAXBYTES];
  ASSERT_EQ(uritoken_mint(token, sizeof token, key, 7, "site42", 1800000000, &o), 0);
  EXPECT_EQ(std::string(token), f.at("token"));

  uritoken_claims c;
  ASSERT_EQ(uritoken_inspect(&c, token), 0);
  EXPECT_EQ(c.key_id, 7u);
  EXPECT_STREQ(c.client, "site42");
  EXPECT_EQ(c.expires, 1800000000u);
  EXPECT_EQ(c.has_scope, 1);
  EXPECT_EQ(c.scope_segments, 2u);

  uritoken_verify_options vo{};
  vo.path = "/gallery/12/a%20b.jpg";
  vo.now = 1800000000 - 60;
  const char* reason = nullptr;
  EXPECT_EQ(uritoken_verify(&c, &reason, token, key, 7, "site42", &vo), URITOKEN_VALID);
  EXPECT_STREQ(reason, "ok");
  vo.path = "/gallery/13/a.jpg";
  EXPECT_EQ(uritoken_verify(&c, &reason, token, key, 7, "site42", &vo), URITOKEN_INVALID);
  EXPECT_STREQ(reason, "bad-mac");
  vo.path = "/gallery/12/a.jpg";
  vo.now = 1800000000 + 31;
  EXPECT_EQ(uritoken_verify(&c, &reason, token, key, 7, "site42", &vo), URITOKEN_EXPIRED);
  EXPECT_EQ(uritoken_verify(&c, &reason, token, key, 8, "site42", &vo), URITOKEN_INVALID);
  EXPECT_STREQ(reason, "unknown-key");
}

TEST(CApi, MintsTheSubscriberVectorAndInspectsItsField) {
  ASSERT_EQ(uritoken_init(), 0);
  const auto blocks = uritoken::testing::read_vectors();
  const auto it =
      std::find_if(blocks.begin(), blocks.end(), [](const auto& b) { return b.fields.at("name") == "subscriber"; });
  ASSERT_NE(it, blocks.end());
  const auto& f = it->fields;
  unsigned char key[URITOKEN_KEYBYTES], secret[URITOKEN_SUBSCRIBER_SECRETBYTES];
  ASSERT_EQ(uritoken::base64url_decode(key, sizeof key, f.at("key")), 32);
  ASSERT_EQ(uritoken::base64url_decode(secret, sizeof secret, f.at("subscriber_secret")), 32);
  unsigned char subscriber[URITOKEN_SUBSCRIBERBYTES];
  ASSERT_EQ(uritoken_subscriber_id(subscriber, secret, "site42", f.at("account").c_str()), 0);
  const unsigned char session[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
  uritoken_mint_options o{};
  o.scope = "/gallery/12/";
  o.session = session;
  const auto issued = static_cast<std::uint32_t>(std::stoul(f.at("issued")));
  char token[URITOKEN_TOKEN_MAXBYTES];
  ASSERT_EQ(uritoken_mint_subscriber(token, sizeof token, key, 7, "site42", 1800000000, &o, subscriber, issued), 0);
  EXPECT_EQ(std::string(token), f.at("token"));
  unsigned char read[URITOKEN_SUBSCRIBERBYTES];
  std::uint32_t read_issued = 0;
  ASSERT_EQ(uritoken_inspect_subscriber(read, &read_issued, token), 0);
  EXPECT_EQ(std::memcmp(read, subscriber, sizeof read), 0);
  EXPECT_EQ(read_issued, issued);
  EXPECT_EQ(uritoken_inspect_subscriber(read, &read_issued, blocks.at(1).fields.at("token").c_str()), 1);
  EXPECT_EQ(uritoken_inspect_subscriber(read, &read_issued, "garbage"), -1);
  EXPECT_EQ(uritoken_mint_subscriber(token, sizeof token, key, 7, "site42", 1800000000, &o, nullptr, issued), -1);
  EXPECT_EQ(uritoken_mint_subscriber(token, sizeof token, key, 7, "site42", 1800000000, &o, subscriber, 1800000001),
            -1);  // issued after the expiry
  // The longest token fits the documented buffer.
  const auto longest = std::find_if(blocks.begin(), blocks.end(),
                                    [](const auto& b) { return b.fields.at("name") == "subscriber-everything"; });
  ASSERT_NE(longest, blocks.end());
  EXPECT_EQ(longest->fields.at("token").size() + 1, URITOKEN_TOKEN_MAXBYTES);
}

TEST(CApi, RefusesBadArguments) {
  unsigned char key[URITOKEN_KEYBYTES] = {0};
  char token[URITOKEN_TOKEN_MAXBYTES];
  EXPECT_EQ(uritoken_mint(token, 10, key, 1, "c", 100, nullptr), -1);  // buffer too small
  EXPECT_EQ(uritoken_mint(token, sizeof token, key, 0, "c", 100, nullptr), -1);
  EXPECT_EQ(uritoken_mint(token, sizeof token, key, 1, "bad client", 100, nullptr), -1);
  uritoken_mint_options o{};
  o.network = "not-an-ip";
  EXPECT_EQ(uritoken_mint(token, sizeof token, key, 1, "c", 100, &o), -1);
  o.network = nullptr;
  o.scope = "../etc/";
  EXPECT_EQ(uritoken_mint(token, sizeof token, key, 1, "c", 100, &o), -1);
  uritoken_claims c;
  EXPECT_EQ(uritoken_inspect(&c, "not a token"), -1);
}

TEST(CppHeader, MintsVerifiableSegments) {
  std::array<unsigned char, URITOKEN_KEYBYTES> key{};
  uritoken_keygen(key.data());
  uritoken::Minter m(3, "site", key);
  const std::string seg = m.segment(uritoken::MintOptions{}.ttl(60).scope("/v/"));
  ASSERT_EQ(seg.rfind("_uk_", 0), 0u);
  uritoken_verify_options vo{};
  vo.path = "/v/x.ts";
  const char* reason = nullptr;
  EXPECT_EQ(uritoken_verify(nullptr, &reason, seg.c_str() + 4, key.data(), 3, "site", &vo), URITOKEN_VALID);
  EXPECT_THROW(m.mint(uritoken::MintOptions{}.scope("no-slash")), std::invalid_argument);
  // Bound to a subscriber: the field reads back, and the token verifies.
  const std::array<unsigned char, URITOKEN_SUBSCRIBER_SECRETBYTES> secret{7};
  const auto id = m.subscriber_id(secret, "alice");
  const std::string sub = m.mint(uritoken::MintOptions{}.ttl(60).scope("/v/").subscriber(id, 1000));
  unsigned char read[URITOKEN_SUBSCRIBERBYTES];
  std::uint32_t issued = 0;
  ASSERT_EQ(uritoken_inspect_subscriber(read, &issued, sub.c_str()), 0);
  EXPECT_TRUE(std::equal(id.begin(), id.end(), read));
  EXPECT_EQ(issued, 1000u);
  EXPECT_EQ(uritoken_verify(nullptr, &reason, sub.c_str(), key.data(), 3, "site", &vo), URITOKEN_VALID);
  EXPECT_NE(m.subscriber_id(secret, "bob"), id);
}

// liburitoken is the token library and the pure request logic (core/): the
// sidecar's world (cluster/: shared state, the sharing rule, bulk use, the
// control protocol, JSON) stays out of what client sites link.
TEST(Library, HoldsTheCoreAndNothingOfTheCluster) {
  const std::string command = std::string("nm -C --defined-only ") + BUILD_DIR + "/liburitoken.a 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string symbols;
  char buf[4096];
  for (std::size_t n; (n = fread(buf, 1, sizeof buf, pipe)) > 0;) symbols.append(buf, n);
  ASSERT_EQ(pclose(pipe), 0) << symbols;
  for (const char* core : {"uritoken::verify_token(", "uritoken::mint_token(", "uritoken::decide(", "uritoken_mint"}) {
    EXPECT_NE(symbols.find(core), std::string::npos) << core << " missing from liburitoken.a";
  }
  for (const char* cluster : {"SharedState::", "SharingDetector", "BulkDetector", "NetworkClassifier",
                              "uritoken::control::", "TableMemory", "json_string", "gossip::"}) {
    EXPECT_EQ(symbols.find(cluster), std::string::npos) << cluster << " is in liburitoken.a";
  }
}
