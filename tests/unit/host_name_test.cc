// SPDX-License-Identifier: Apache-2.0
// A server's host name at an address (core/host_name.h), in the core, the
// C API and the C++ header, on tests/vectors/host-names.txt.
#include "../../mod_uritoken/core/host_name.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "../../mod_uritoken/lib/uritoken.h"
#include "../../mod_uritoken/lib/uritoken.hpp"
#include "test_helpers.h"

namespace {

TEST(HostName, EveryImplementationBuildsOrRefusesEachVector) {
  const auto blocks = uritoken::testing::read_vectors("host-names.txt");
  ASSERT_GE(blocks.size(), 16u);
  for (const auto& b : blocks) {
    const auto& f = b.fields;
    const std::string want = f.at("host");
    const auto ip = uritoken::parse_ip_address(f.at("address"));
    const auto core = ip ? uritoken::server_host_name(*ip, f.at("node_hash"), f.at("zone")) : std::nullopt;
    EXPECT_EQ(core.value_or("-"), want) << f.at("name");
    char host[URITOKEN_HOST_MAXBYTES];
    const int rc =
        uritoken_host_name(host, sizeof host, f.at("address").c_str(), f.at("node_hash").c_str(), f.at("zone").c_str());
    EXPECT_EQ(rc == 0 ? std::string(host) : "-", want) << f.at("name");
    std::string cpp;
    try {
      cpp = uritoken::host_name(f.at("address"), f.at("node_hash"), f.at("zone"));
    } catch (const std::invalid_argument&) {
      cpp = "-";
    }
    EXPECT_EQ(cpp, want) << f.at("name");
    if (want != "-") {  // a buffer one short is refused, never cut
      EXPECT_EQ(uritoken_host_name(host, want.size(), f.at("address").c_str(), f.at("node_hash").c_str(),
                                   f.at("zone").c_str()),
                -1);
    }
  }
}

TEST(HostName, TheNodeHashIsTheStartOfTheKeysSha256) {
  const std::uint8_t zero[32] = {};
  EXPECT_EQ(uritoken::node_hash(zero), "66687aadf862bd776c8fc18b8e9f8e20");  // sha256 of 32 zero bytes
  EXPECT_TRUE(uritoken::valid_node_hash(uritoken::node_hash(zero)));
  EXPECT_FALSE(uritoken::valid_node_hash("66687aadf862bd776c8fc18b8e9f8e2"));
  EXPECT_FALSE(uritoken::valid_node_hash("66687AADF862BD776C8FC18B8E9F8E20"));
}

TEST(HostName, ZonesAreFoldedAndCheckedLabelByLabel) {
  EXPECT_EQ(uritoken::normalized_zone("Media.Example.NET.").value_or("-"), "media.example.net");
  for (const char* bad : {"", ".", "net", "a..b", "a.-b", "a.b-", "a_b.net", "a.b c", "a.b..", "\xc3\xa9.net"}) {
    EXPECT_FALSE(uritoken::normalized_zone(bad)) << bad;
  }
  EXPECT_TRUE(uritoken::normalized_zone(std::string(63, 'a') + ".net"));
  EXPECT_FALSE(uritoken::normalized_zone(std::string(64, 'a') + ".net"));
}

}  // namespace
