// SPDX-License-Identifier: Apache-2.0
// UriTokenCountries on a real httpd with a location database the test
// writes (libloc's writer): a client's territory is served, any other
// country refused 451 `country`, nested networks decided by the most
// specific one, other clients untouched; the status page counts the
// refusals by country; a bad code stops httpd -t naming the directive.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "../location_db.h"
#include "httpd_fixture.h"

using namespace uritoken::itest;

namespace {

class CountryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    h = std::make_unique<Httpd>(HttpdOptions{});
    db = h->root() + "/countries.db";
    ASSERT_EQ(uritoken::testdata::write_location_db(
                  db, {{64500, "Example Cable"}},
                  {{"198.51.100.0/24", 64500, "DE"},
                   {"198.51.100.128/25", 64500, "US"},  // nested: the more specific network decides
                   {"203.0.113.0/24", 0, "US"},
                   {"192.0.2.0/24", 0, "AT"},
                   {"2001:db8:100::/40", 64500, "DE"}}),
              "");
  }
  void start(const std::string& rules) {
    h->set_extra_conf(
        "RemoteIPHeader X-Forwarded-For\nRemoteIPInternalProxy 127.0.0.1\nUriTokenLocationDatabase " + db + "\n" +
        rules + "<Location /uritoken-status>\n  SetHandler uritoken-status\n  Require ip 127.0.0.1\n</Location>\n");
    h->expect_log("UT00063: token refused \\(country\\)");
    ASSERT_TRUE(h->start()) << h->startup_output();
  }
  int get(const std::string& token, const std::string& from) {
    return http_get(h->port(), "/_uk_" + token + "/a.txt", {"X-Forwarded-For: " + from}).status;
  }
  void TearDown() override {
    if (h) expect_server_clean(*h, tokens);
  }
  std::unique_ptr<Httpd> h;
  std::string db;
  std::vector<std::string> tokens;
};

TEST_F(CountryTest, ATerritoryIsServedAndEveryOtherCountryRefused451) {
  start("UriTokenCountries site42 Allow DE AT\nUriTokenCountries other Deny US\n");
  h->write_doc("a.txt", "media");
  const std::string mine = h->mint("--client site42 --ttl 600"), theirs = h->mint("--client other --ttl 600");
  tokens = {mine, theirs};
  EXPECT_EQ(get(mine, "198.51.100.7"), 200);  // DE
  EXPECT_EQ(get(mine, "192.0.2.9"), 200);     // AT
  EXPECT_EQ(get(mine, "2001:db8:100::1"), 200);
  EXPECT_EQ(get(mine, "198.51.100.200"), 451);  // the US /25 inside the DE /24
  EXPECT_EQ(get(mine, "203.0.113.5"), 451);     // US
  EXPECT_EQ(get(mine, "100.64.0.1"), 451);      // no country known: not inside the territory
  // A deny list: only the listed countries are refused.
  EXPECT_EQ(get(theirs, "203.0.113.5"), 451);
  EXPECT_EQ(get(theirs, "198.51.100.7"), 200);
  EXPECT_EQ(get(theirs, "100.64.0.1"), 200);
  const std::string log = h->error_log();
  EXPECT_NE(log.find("UT00063: token refused (country): client site42, key 1, session "), std::string::npos);
  EXPECT_NE(log.find(", from US, outside the client's UriTokenCountries"), std::string::npos) << log;
  EXPECT_NE(log.find(", from an address of no known country, outside"), std::string::npos) << log;
  const Response metrics = http_get(h->port(), "/uritoken-status?metrics");
  EXPECT_NE(metrics.body.find("uritoken_country_refusals_total{country=\"US\"} 3"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("uritoken_country_refusals_total{country=\"--\"} 1"), std::string::npos);
  EXPECT_NE(metrics.body.find("uritoken_refusals_total{reason=\"country\"} 4"), std::string::npos);
  const Response page = http_get(h->port(), "/uritoken-status");
  EXPECT_NE(page.body.find("<section id=\"countries\">"), std::string::npos);
  EXPECT_NE(page.body.find("<tr><td>US</td><td class=\"num\">3</td></tr>"), std::string::npos) << page.body;
}

TEST_F(CountryTest, ABadCountryCodeStopsTheConfigTestNamingTheDirective) {
  for (const std::string bad : {"UriTokenCountries site42 Allow de\n", "UriTokenCountries site42 Allow DEU\n",
                                "UriTokenCountries site42 Permit DE\n", "UriTokenCountries site42 Allow\n"}) {
    h->set_extra_conf("UriTokenLocationDatabase " + db + "\n" + bad);
    EXPECT_FALSE(h->start()) << bad;  // httpd -t refuses it
    EXPECT_NE(h->startup_output().find("UriTokenCountries"), std::string::npos) << h->startup_output();
  }
  h->set_extra_conf("UriTokenLocationDatabase " + h->root() + "/missing.db\nUriTokenCountries site42 Allow DE\n");
  EXPECT_FALSE(h->start());
  EXPECT_NE(h->startup_output().find("UT00062: UriTokenCountries needs the location database"), std::string::npos)
      << h->startup_output();
  h.reset();
}

}  // namespace
