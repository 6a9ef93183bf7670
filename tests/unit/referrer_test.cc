// SPDX-License-Identifier: Apache-2.0
// Referrer verification (core/referrer.h): host patterns, the host of a
// Referer, matching, and the verdict for a client's list.
#include "../../mod_uritoken/core/referrer.h"

#include <gtest/gtest.h>

#include <string>

#include "../../mod_uritoken/core/redact.h"

using namespace uritoken;

namespace {

std::string pattern(const std::string& p) {
  std::string error;
  const auto parsed = parse_referrer_pattern(p, &error);
  return parsed ? *parsed : "ERROR: " + error;
}

TEST(Referrer, PatternsAreHostNamesOrWildcardsLowerCased) {
  EXPECT_EQ(pattern("shop.example.com"), "shop.example.com");
  EXPECT_EQ(pattern("Shop.Example.COM"), "shop.example.com");
  EXPECT_EQ(pattern("shop.example.com."), "shop.example.com");
  EXPECT_EQ(pattern("*.Example.com"), "*.example.com");
  EXPECT_EQ(pattern("localhost"), "localhost");
  EXPECT_EQ(pattern("192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(pattern("xn--bcher-kva.example"), "xn--bcher-kva.example");
  for (const char* bad : {"", "*", "*.", "*.com", "a..b", ".example.com", "shop.*.com", "*shop.com", "**.a.com",
                          "shop example", "shöp.example"}) {
    EXPECT_EQ(pattern(bad).rfind("ERROR: ", 0), 0u) << bad;
  }
  EXPECT_NE(pattern("https://shop.example.com/").find("without scheme, port or path"), std::string::npos);
  EXPECT_NE(pattern("shop.example.com:443").find("without scheme, port or path"), std::string::npos);
  EXPECT_NE(pattern("*.com").find("top-level domain"), std::string::npos);
  EXPECT_EQ(pattern(std::string(64, 'a') + ".com").rfind("ERROR: ", 0), 0u) << "a label has at most 63 bytes";
}

TEST(Referrer, HostOfARefererIgnoresSchemeUserPortPathAndCase) {
  const auto host = [](const std::string& r) { return referer_host(r).value_or("NONE"); };
  EXPECT_EQ(host("https://shop.example.com/page.html"), "shop.example.com");
  EXPECT_EQ(host("https://Shop.Example.COM:8443/a?b#c"), "shop.example.com");
  EXPECT_EQ(host("http://shop.example.com"), "shop.example.com");
  EXPECT_EQ(host("http://shop.example.com?x=1"), "shop.example.com");
  EXPECT_EQ(host("http://shop.example.com#top"), "shop.example.com");
  EXPECT_EQ(host("http://shop.example.com./x"), "shop.example.com");
  EXPECT_EQ(host("https://user:pw@shop.example.com/x"), "shop.example.com");
  EXPECT_EQ(host("https://evil.example@shop.example.com/"), "shop.example.com");
  EXPECT_EQ(host("https://[2001:DB8::1]:443/x"), "2001:db8::1");
  EXPECT_EQ(host("https://192.0.2.7/x"), "192.0.2.7");
  EXPECT_EQ(host("android-app://com.example.player/"), "com.example.player");
  for (const char* bad : {"", "shop.example.com", "/relative/path", "//shop.example.com/", "https://", "https:///x",
                          "https://:443/", "about:blank", "https://shop example/", "https://sh%6Fp.example/",
                          "https://[zz::1]/", "1http://shop.example/"}) {
    EXPECT_EQ(host(bad), "NONE") << bad;
  }
}

TEST(Referrer, WildcardsMatchSubdomainsAtAnyDepthButNotTheDomainItself) {
  EXPECT_TRUE(referrer_host_matches("shop.example.com", "shop.example.com"));
  EXPECT_FALSE(referrer_host_matches("shop.example.com", "www.shop.example.com"));
  EXPECT_FALSE(referrer_host_matches("shop.example.com", "shop.example.com.evil.net"));
  EXPECT_TRUE(referrer_host_matches("*.example.com", "www.example.com"));
  EXPECT_TRUE(referrer_host_matches("*.example.com", "a.b.example.com"));
  EXPECT_FALSE(referrer_host_matches("*.example.com", "example.com"));
  EXPECT_FALSE(referrer_host_matches("*.example.com", "evilexample.com"));
  EXPECT_FALSE(referrer_host_matches("*.example.com", "example.com.evil.net"));
  EXPECT_FALSE(referrer_host_matches("*.example.com", ".example.com"));
}

TEST(Referrer, ListVerdicts) {
  ReferrerList list;
  list.patterns = {"shop.example.com", "*.cdn.example.net"};
  std::string host;
  EXPECT_EQ(list.check("https://SHOP.example.com:444/p", "media.test", &host), ReferrerVerdict::allowed);
  EXPECT_EQ(host, "shop.example.com");
  EXPECT_EQ(list.check("https://a.cdn.example.net/", "media.test", &host), ReferrerVerdict::allowed);
  EXPECT_EQ(list.check("https://evil.example/", "media.test", &host), ReferrerVerdict::bad_referrer);
  EXPECT_EQ(host, "evil.example");
  EXPECT_EQ(list.check("not a url", "media.test", &host), ReferrerVerdict::bad_referrer);
  EXPECT_EQ(host, "");
  // The media server's own pages (a tokenized page's relative links).
  EXPECT_EQ(list.check("https://Media.Test/_uk_x/a.html", "media.test", &host), ReferrerVerdict::allowed);
  EXPECT_EQ(list.check("https://media.test/", "", &host), ReferrerVerdict::bad_referrer);
  // Missing: allowed unless the client refuses it; an empty header is none.
  EXPECT_EQ(list.check(std::nullopt, "media.test", &host), ReferrerVerdict::allowed);
  EXPECT_EQ(list.check("", "media.test", &host), ReferrerVerdict::allowed);
  list.refuse_missing = true;
  EXPECT_EQ(list.check(std::nullopt, "media.test", &host), ReferrerVerdict::missing_referrer);
  EXPECT_EQ(list.check("", "media.test", &host), ReferrerVerdict::missing_referrer);
  EXPECT_EQ(list.check("https://shop.example.com/", "media.test", &host), ReferrerVerdict::allowed);
  EXPECT_STREQ(referrer_verdict_name(ReferrerVerdict::bad_referrer), "bad-referrer");
  EXPECT_STREQ(referrer_verdict_name(ReferrerVerdict::missing_referrer), "missing-referrer");
}

// The module redacts tokens from the Referer before anything is logged.
// Redaction leaves the host of an ordinary Referer alone, so the host in
// the logged (redacted) Referer is the one checked; but a host holding the
// marker is changed by it, which is why the check reads the Referer as
// received.
TEST(Referrer, RedactionKeepsOrdinaryHostsButNotHostsHoldingTheMarker) {
  const std::string tok = "AQIAB2sC_LSstB13FdzthAIGc2l0ZTQyI54Qxlr2VSZ5Jv4aaCqXiw";
  for (const std::string& r :
       {"https://shop.example.com/_uk_" + tok + "/page.html", "https://shop.example.com:8443/p?next=/_uk_" + tok + "/a",
        "https://u:_uk_" + tok + "@shop.example.com/x"}) {
    const std::string clean = redact_tokens(r);
    ASSERT_EQ(clean.find(tok), std::string::npos) << r;
    EXPECT_EQ(referer_host(clean).value_or("NONE"), "shop.example.com") << clean;
    EXPECT_EQ(referer_host(r).value_or("NONE"), "shop.example.com") << r;
  }
  const std::string odd = "https://my_uk_shop.example/page.html";
  EXPECT_EQ(referer_host(odd).value_or("NONE"), "my_uk_shop.example");
  EXPECT_NE(referer_host(redact_tokens(odd)).value_or("NONE"), "my_uk_shop.example") << redact_tokens(odd);
}

}  // namespace
