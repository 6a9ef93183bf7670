// SPDX-License-Identifier: Apache-2.0
// Shared-range files (UriTokenSharedNetworkFile): plain CIDR lists and
// Apple's iCloud Private Relay egress CSV as published; strict on lines
// that hold no range.
#include "../../mod_uritoken/cluster/shared_ranges.h"

#include <gtest/gtest.h>

using namespace uritoken;

TEST(SharedRanges, PlainListWithCommentsAndBlankLines) {
  const auto r =
      parse_shared_ranges("# office proxies\n203.0.113.0/24\n\n  198.51.100.7  \r\n2001:db8:5::/48 # relay\n");
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.ranges.size(), 3u);
  EXPECT_EQ(format_ip_prefix(r.ranges[0]), "203.0.113.0/24");
  EXPECT_EQ(format_ip_prefix(r.ranges[1]), "198.51.100.7/32");
  EXPECT_EQ(format_ip_prefix(r.ranges[2]), "2001:db8:5::/48");
}

TEST(SharedRanges, ApplesEgressCsvAsPublished) {
  const auto r = parse_shared_ranges(
      "172.224.224.0/27,GB,GB-EN,London,\n"
      "2a02:26f7:b3c0:4000::/64,GB,GB-EN,London,\n"
      "104.28.0.12/31,US,US-CA,Los Angeles,\n");
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.ranges.size(), 3u);
  EXPECT_EQ(format_ip_prefix(r.ranges[1]), "2a02:26f7:b3c0:4000::/64");
  EXPECT_EQ(format_ip_prefix(r.ranges[2]), "104.28.0.12/31");
}

TEST(SharedRanges, ALineWithoutARangeIsAnErrorNamingIt) {
  for (const char* text : {"203.0.113.0/24\nhello\n", "203.0.113.0/24\n203.0.113.0/33\n", "203.0.113.0/24\n<html>\n",
                           "203.0.113.0/24\n,US\n"}) {
    const auto r = parse_shared_ranges(text);
    EXPECT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.error_line, 2u) << text;
    EXPECT_TRUE(r.ranges.empty()) << "nothing of a bad file is taken";
    EXPECT_NE(r.error.find("is not a CIDR range"), std::string::npos) << r.error;
  }
  EXPECT_TRUE(parse_shared_ranges("").ok());
  EXPECT_TRUE(parse_shared_ranges("# nothing yet\n").ok());
  const auto binary = parse_shared_ranges(std::string("\x01\x02\x7f", 3));
  EXPECT_FALSE(binary.ok());
  EXPECT_EQ(binary.error.find('\x01'), std::string::npos) << "control bytes are not echoed";
}
