// SPDX-License-Identifier: Apache-2.0
// The C API of liburitoken agrees with the vectors and refuses bad input.
#include "../../mod_uritoken/lib/uritoken.h"

#include <gtest/gtest.h>

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
