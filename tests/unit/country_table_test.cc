// SPDX-License-Identifier: Apache-2.0
// Address -> country: nested networks flattened (the more specific wins),
// the rules' allow and deny lists, the codes.
#include "../../mod_uritoken/core/country_table.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace uritoken {
namespace {

IpAddress ip(const char* text) { return *parse_ip_address(text); }
CountryCode cc(const char* s) { return country_code(s); }
CountryTable::Address net(const char* text) { return CountryTable::address_of(ip(text)); }

TEST(CountryTable, CodesAreTwoCapitalLetters) {
  EXPECT_EQ(cc("AA"), 0);
  EXPECT_EQ(cc("ZZ"), kCountryCodes - 1);
  char out[2];
  country_letters(cc("DE"), out);
  EXPECT_EQ(std::string(out, 2), "DE");
  for (const char* bad : {"de", "D", "DEU", "D1", "", "\x80Z"}) {
    EXPECT_EQ(country_code(bad, std::char_traits<char>::length(bad)), kNoCountry) << bad;
  }
  EXPECT_EQ(country_code(nullptr, 2), kNoCountry);
}

TEST(CountryTable, TheMostSpecificNetworkWins) {
  CountryTable::Builder b;
  // Given in any order: a DE /8 holding a US /16 holding a network of no
  // country, an FR /24 next to it, and IPv6.
  b.add(net("10.2.3.0"), 96 + 24, kNoCountry);
  b.add(net("10.0.0.0"), 96 + 8, cc("DE"));
  b.add(net("10.2.0.0"), 96 + 16, cc("US"));
  b.add(net("11.0.0.0"), 96 + 24, cc("FR"));
  b.add(net("2001:db8::"), 32, cc("NL"));
  b.add(net("2001:db8:1::"), 48, cc("BE"));
  const CountryTable t = b.build();
  EXPECT_EQ(t.lookup(ip("10.0.0.1")), cc("DE"));
  EXPECT_EQ(t.lookup(ip("10.1.255.255")), cc("DE"));
  EXPECT_EQ(t.lookup(ip("10.2.0.0")), cc("US"));
  EXPECT_EQ(t.lookup(ip("10.2.2.255")), cc("US"));
  EXPECT_EQ(t.lookup(ip("10.2.3.7")), kNoCountry);
  EXPECT_EQ(t.lookup(ip("10.2.4.0")), cc("US"));
  EXPECT_EQ(t.lookup(ip("10.3.0.0")), cc("DE"));
  EXPECT_EQ(t.lookup(ip("10.255.255.255")), cc("DE"));
  EXPECT_EQ(t.lookup(ip("11.0.0.9")), cc("FR"));
  EXPECT_EQ(t.lookup(ip("11.0.1.0")), kNoCountry);
  EXPECT_EQ(t.lookup(ip("9.255.255.255")), kNoCountry);
  EXPECT_EQ(t.lookup(ip("::ffff:10.2.0.1")), cc("US"));  // mapped, as httpd may report it
  EXPECT_EQ(t.lookup(ip("2001:db8:0:1::1")), cc("NL"));
  EXPECT_EQ(t.lookup(ip("2001:db8:1:ffff::1")), cc("BE"));
  EXPECT_EQ(t.lookup(ip("2001:db8:2::1")), cc("NL"));
  EXPECT_EQ(t.lookup(ip("2001:db9::1")), kNoCountry);
  EXPECT_EQ(t.lookup(ip("::")), kNoCountry);
}

// Against a plain "longest match over every network" on random nests.
TEST(CountryTable, AgreesWithALongestPrefixMatchOnRandomNetworks) {
  std::mt19937_64 rng(7);
  struct N {
    CountryTable::Address first;
    unsigned len;
    CountryCode code;
  };
  std::vector<N> all;
  CountryTable::Builder b;
  for (int i = 0; i < 400; ++i) {
    const unsigned len = 96 + 8 + static_cast<unsigned>(rng() % 17);  // IPv4 /8 .. /24
    const CountryTable::Address host = (~static_cast<CountryTable::Address>(0)) >> len;
    const CountryTable::Address first = (net("10.0.0.0") | (rng() & 0x00ffffff)) & ~host;
    const CountryCode code = rng() % 5 == 0 ? kNoCountry : static_cast<CountryCode>(rng() % 4);
    all.push_back({first, len, code});
    b.add(first, len, code);
  }
  const CountryTable t = b.build();
  for (int i = 0; i < 20000; ++i) {
    const CountryTable::Address a = net("10.0.0.0") | (rng() & 0x00ffffff);
    unsigned best = 0;
    CountryCode want = kNoCountry;
    for (const N& n : all) {
      const CountryTable::Address host = (~static_cast<CountryTable::Address>(0)) >> n.len;
      if ((a & ~host) == n.first && n.len > best) {
        best = n.len;
        want = n.code;
      }
    }
    // Two equal networks of different countries: either answer is right.
    bool tie = false;
    for (const N& n : all)
      tie = tie ||
            (n.len == best && n.code != want && (a & ~((~static_cast<CountryTable::Address>(0)) >> n.len)) == n.first);
    if (tie) continue;
    IpAddress addr;
    addr.v6 = false;
    for (int k = 0; k < 4; ++k) addr.bytes[k] = static_cast<std::uint8_t>(a >> (8 * (3 - k)));
    ASSERT_EQ(t.lookup(addr), want) << i;
  }
}

TEST(CountryTable, RulesAllowOrDeny) {
  CountryRule allow;
  allow.allow = true;
  allow.listed.set(cc("DE"));
  allow.listed.set(cc("AT"));
  EXPECT_TRUE(allow.permits(cc("DE")));
  EXPECT_FALSE(allow.permits(cc("US")));
  EXPECT_FALSE(allow.permits(kNoCountry)) << "an unplaced address is not inside the territory";
  CountryRule deny;
  deny.allow = false;
  deny.listed.set(cc("US"));
  EXPECT_FALSE(deny.permits(cc("US")));
  EXPECT_TRUE(deny.permits(cc("DE")));
  EXPECT_TRUE(deny.permits(kNoCountry));
}

}  // namespace
}  // namespace uritoken
