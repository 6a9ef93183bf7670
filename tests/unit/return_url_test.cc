// SPDX-License-Identifier: Apache-2.0
// Refusals that lead back to the client site: which refusals, which
// requests count as page navigations, and the signed Location.
#include "../../mod_uritoken/core/return_url.h"

#include <gtest/gtest.h>

#include <string>

namespace uritoken {
namespace {

TEST(ReturnUrl, OnlyRefusalsAnHonestViewerCanMeetLeadBack) {
  for (Refusal r : {Refusal::expired, Refusal::revoked, Refusal::bulk_use, Refusal::out_of_scope}) {
    EXPECT_TRUE(leads_back(r)) << refusal_name(r);
  }
  for (Refusal r :
       {Refusal::bad_mac, Refusal::unknown_key, Refusal::client_mismatch, Refusal::wrong_network, Refusal::plain_http,
        Refusal::bad_referrer, Refusal::not_yet_valid, Refusal::misplaced_token, Refusal::none, Refusal::client_api}) {
    EXPECT_FALSE(leads_back(r)) << refusal_name(r);
  }
}

NavigationHints hints(const char* mode, const char* dest, const char* accept, bool range = false,
                      std::string_view method = "GET") {
  NavigationHints h;
  h.method = method;
  h.sec_fetch_mode = mode;
  h.sec_fetch_dest = dest;
  h.accept = accept;
  h.range = range;
  return h;
}

TEST(ReturnUrl, TellsPageNavigationsFromPlayersAndElements) {
  const char* html = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
  // Chromium and Firefox navigating, top level or in a frame.
  EXPECT_TRUE(is_page_navigation(hints("navigate", "document", html)));
  EXPECT_TRUE(is_page_navigation(hints("navigate", "iframe", html)));
  EXPECT_TRUE(is_page_navigation(hints("Navigate", nullptr, "*/*")));
  // The same browser's <video>, <img>, hls.js (fetch, cors), a prefetch.
  EXPECT_FALSE(is_page_navigation(hints("no-cors", "video", "*/*", true)));
  EXPECT_FALSE(is_page_navigation(hints("no-cors", "image", "image/avif,image/webp,*/*")));
  EXPECT_FALSE(is_page_navigation(hints("cors", "empty", "*/*")));
  EXPECT_FALSE(is_page_navigation(hints("navigate", "object", html)));
  // Without Fetch metadata: an older browser's page load, and players
  // (ffmpeg, VLC, AVPlayer, ExoPlayer send */* or media types).
  EXPECT_TRUE(is_page_navigation(hints(nullptr, nullptr, html)));
  EXPECT_TRUE(is_page_navigation(hints(nullptr, nullptr, " TEXT/HTML ; q=1")));
  EXPECT_FALSE(is_page_navigation(hints(nullptr, nullptr, "*/*")));
  EXPECT_FALSE(is_page_navigation(hints(nullptr, nullptr, nullptr)));
  EXPECT_FALSE(is_page_navigation(hints(nullptr, nullptr, "application/vnd.apple.mpegurl, text/htmlx")));
  // Never a Range request, never anything but GET.
  EXPECT_FALSE(is_page_navigation(hints("navigate", "document", html, true)));
  EXPECT_FALSE(is_page_navigation(hints(nullptr, nullptr, html, true)));
  EXPECT_FALSE(is_page_navigation(hints("navigate", "document", html, false, "POST")));
  EXPECT_FALSE(is_page_navigation(hints("navigate", "document", html, false, "HEAD")));
}

TEST(ReturnUrl, TheLocationIsSignedWithTheTokensKey) {
  std::uint8_t secret[32];
  for (int i = 0; i < 32; ++i) secret[i] = static_cast<std::uint8_t>(i);
  KeyRing ring;
  std::string error;
  ASSERT_TRUE(ring.add(7, "site42", KeyState::sign, secret, &error));
  const Key& key = *ring.find(7);
  const std::string loc = return_location("https://shop.example/renew?from=media", key, "expired", "0123456789abcdef",
                                          1800000000, "/gallery/12/a%20b.jpg");
  const std::string sig = return_signature(key, "expired", "0123456789abcdef", 1800000000, "/gallery/12/a%20b.jpg");
  EXPECT_EQ(loc,
            "https://shop.example/renew?from=media&uritoken_reason=expired&uritoken_key=7&uritoken_session="
            "0123456789abcdef&uritoken_time=1800000000&uritoken_path=%2Fgallery%2F12%2Fa%2520b.jpg&uritoken_sig=" +
                sig);
  // The known answer, as tests/vectors/return-urls.txt holds it for the clients.
  EXPECT_EQ(sig, "yla3M9Twd5BeH4zT_p2wG84gC65vSWhQkEwQIUUlZ1Q");
  // Every signed part changes it; no session for a token not authenticated.
  EXPECT_NE(return_signature(key, "revoked", "0123456789abcdef", 1800000000, "/gallery/12/a%20b.jpg"), sig);
  EXPECT_NE(return_signature(key, "expired", "", 1800000000, "/gallery/12/a%20b.jpg"), sig);
  EXPECT_NE(return_signature(key, "expired", "0123456789abcdef", 1800000001, "/gallery/12/a%20b.jpg"), sig);
  EXPECT_NE(return_signature(key, "expired", "0123456789abcdef", 1800000000, "/gallery/12/a.jpg"), sig);
  EXPECT_EQ(return_location("https://shop.example/renew", key, "out-of-scope", "", 1, "/x").find("uritoken_session"),
            std::string::npos);
  EXPECT_NE(return_location("https://shop.example/renew", key, "out-of-scope", "", 1, "/x").find("/renew?uritoken_"),
            std::string::npos);
}

TEST(ReturnUrl, TheDirectiveTakesAbsoluteHttpUrlsOnly) {
  EXPECT_TRUE(return_url_ok("https://shop.example/renew"));
  EXPECT_TRUE(return_url_ok("http://127.0.0.1:8080/renew?x=1"));
  for (const char* bad : {"", "/renew", "shop.example/renew", "ftp://shop.example/", "https://", "https:///x",
                          "https://shop.example/#top", "https://shop.example/a b", "javascript:alert(1)",
                          "https://shop.example/\r\nSet-Cookie: x"}) {
    EXPECT_FALSE(return_url_ok(bad)) << bad;
  }
}

}  // namespace
}  // namespace uritoken
