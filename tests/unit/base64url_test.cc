// SPDX-License-Identifier: Apache-2.0
// Strict base64url: round trips, and every non-canonical form refused.
#include "../../mod_uritoken/core/base64url.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <random>
#include <vector>

using namespace uritoken;

TEST(Base64Url, RoundTripsEveryLengthAgainstLibsodium) {
  std::mt19937 rng(42);
  for (std::size_t len = 0; len < 80; ++len) {
    std::vector<std::uint8_t> data(len);
    for (auto& b : data) b = static_cast<std::uint8_t>(rng());
    const std::string enc = base64url_encode(data.data(), data.size());
    // libsodium is the reference encoder.
    std::vector<char> ref(sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING));
    sodium_bin2base64(ref.data(), ref.size(), data.data(), len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    EXPECT_EQ(enc, std::string(ref.data())) << len;
    EXPECT_EQ(enc.size(), base64url_encoded_len(len));
    std::vector<std::uint8_t> back(len + 3);
    ASSERT_EQ(base64url_decode(back.data(), back.size(), enc), static_cast<long>(len));
    back.resize(len);
    EXPECT_EQ(back, data);
  }
}

TEST(Base64Url, RefusesPaddingBadCharsImpossibleLengthsAndNonCanonicalBits) {
  std::uint8_t out[16];
  EXPECT_EQ(base64url_decode(out, sizeof out, "AAA="), -1);
  EXPECT_EQ(base64url_decode(out, sizeof out, "AA+A"), -1);
  EXPECT_EQ(base64url_decode(out, sizeof out, "AA/A"), -1);
  EXPECT_EQ(base64url_decode(out, sizeof out, "AAAAA"), -1);  // length 5: 5 % 4 == 1
  EXPECT_EQ(base64url_decode(out, sizeof out, "AB"), -1);     // trailing bits set
  EXPECT_EQ(base64url_decode(out, sizeof out, "AAB"), -1);
  EXPECT_EQ(base64url_decode(out, sizeof out, "AA"), 1);
  EXPECT_EQ(base64url_decode(out, sizeof out, "AAA"), 2);
  EXPECT_EQ(base64url_decode(out, 2, "AAAA"), -1);  // does not fit
  EXPECT_EQ(base64url_decode(out, sizeof out, std::string_view("AA\0A", 4)), -1);
  EXPECT_FALSE(base64url_alphabet_ok("abc%"));
  EXPECT_TRUE(base64url_alphabet_ok("az-_09AZ"));
}
