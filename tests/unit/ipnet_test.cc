// SPDX-License-Identifier: Apache-2.0
// IP address and prefix parsing.
#include "../../mod_uritoken/core/ipnet.h"

#include <gtest/gtest.h>

using namespace uritoken;

TEST(IpNet, ParsesAndMasks) {
  auto p = parse_ip_prefix("192.0.2.77/24");
  ASSERT_TRUE(p);
  EXPECT_EQ(format_ip_prefix(*p), "192.0.2.0/24");
  p = parse_ip_prefix("2001:db8:abcd:1234::1/50");
  ASSERT_TRUE(p);
  EXPECT_EQ(format_ip_prefix(*p), "2001:db8:abcd::/50");
  EXPECT_EQ(parse_ip_prefix("10.0.0.1")->length, 32u);
  EXPECT_EQ(parse_ip_prefix("::1")->length, 128u);
  for (const char* bad : {"", "10.0.0.1/33", "10.0.0.1/0", "10.0.0.1/", "::1/129", "10.0.0/8", "x", "10.0.0.1/2a"}) {
    EXPECT_FALSE(parse_ip_prefix(bad)) << bad;
  }
}

TEST(IpNet, MappedIpv4IsIpv4) {
  const auto a = parse_ip_address("::ffff:198.51.100.3");
  ASSERT_TRUE(a);
  EXPECT_FALSE(a->v6);
  EXPECT_EQ(a->bytes[0], 198);
  EXPECT_EQ(a->bytes[3], 3);
}
