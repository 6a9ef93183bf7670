// SPDX-License-Identifier: Apache-2.0
// The pre-keyed HMAC must equal a reference HMAC-SHA256 (libsodium's).
#include "../../mod_uritoken/core/hmac.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <random>
#include <vector>

using namespace uritoken;

TEST(Hmac, MatchesLibsodiumForManyLengthsAndSplits) {
  ASSERT_GE(sodium_init(), 0);
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::uint8_t key[32];
    for (auto& b : key) b = static_cast<std::uint8_t>(rng());
    std::vector<std::uint8_t> msg(static_cast<std::size_t>(rng() % 300));
    for (auto& b : msg) b = static_cast<std::uint8_t>(rng());
    const HmacSha256Key k(key);
    auto s = k.start();
    const std::size_t split = msg.empty() ? 0 : rng() % msg.size();
    s.update(msg.data(), split);
    s.update(msg.data() + split, msg.size() - split);
    std::uint8_t mine[32], ref[32];
    s.finish(mine);
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, sizeof key);
    crypto_auth_hmacsha256_update(&st, msg.data(), msg.size());
    crypto_auth_hmacsha256_final(&st, ref);
    ASSERT_EQ(0, memcmp(mine, ref, 32)) << "round " << round;
  }
}

TEST(Hmac, Rfc4231TestCase2) {
  // RFC 4231 case 2 uses a 4-byte key; ours are 32 bytes, so pad per HMAC's
  // rule (keys shorter than the block are zero-padded): same result.
  std::uint8_t key[32] = {'J', 'e', 'f', 'e'};
  const std::string msg = "what do ya want for nothing?";
  auto s = HmacSha256Key(key).start();
  s.update(msg.data(), msg.size());
  std::uint8_t mac[32];
  s.finish(mac);
  const std::uint8_t expect[8] = {0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e};
  EXPECT_EQ(0, memcmp(mac, expect, sizeof expect));
}

TEST(Hmac, ConstantTimeEqual) {
  const std::uint8_t a[4] = {1, 2, 3, 4}, b[4] = {1, 2, 3, 5};
  EXPECT_TRUE(equal_constant_time(a, a, 4));
  EXPECT_FALSE(equal_constant_time(a, b, 4));
}
