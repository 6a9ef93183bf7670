// SPDX-License-Identifier: Apache-2.0
// Refusals that lead back to the client site (UriTokenReturnURL) on a real
// httpd: a page navigation to an expired token lands on the client's URL
// with a signature the site can verify, in headless Chromium as with raw
// requests, while a <video>, an hls.js-style fetch, hls.js itself (which
// also follows a valid playlist's relative link to its segment), a Range
// request and a player without Fetch metadata keep the plain 410.
#include <gtest/gtest.h>
#include <unistd.h>

#include <ctime>
#include <fstream>
#include <sstream>
#include <map>
#include <memory>
#include <string>

#include "../../mod_uritoken/core/keyring.h"
#include "../../mod_uritoken/core/return_url.h"
#include "httpd_fixture.h"

using namespace uritoken::itest;

namespace {

const char* const kPython = "/usr/bin/python3";  // Debian's, which sees python3-selenium

// The query of a URL as name -> value (values still percent-encoded).
std::map<std::string, std::string> query_of(const std::string& url) {
  std::map<std::string, std::string> out;
  const auto q = url.find('?');
  if (q == std::string::npos) return out;
  std::string rest = url.substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string pair = rest.substr(0, amp);
    const auto eq = pair.find('=');
    out[pair.substr(0, eq)] = eq == std::string::npos ? "" : pair.substr(eq + 1);
    rest = amp == std::string::npos ? "" : rest.substr(amp + 1);
  }
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string percent_decode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

class ReturnUrlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpdOptions o;
    o.extra_conf =
        "UriTokenReturnURL site42 http://127.0.0.1:@PORT@/site/renew.html?from=media\n"
        "LogFormat \"%r %>s mode=%{Sec-Fetch-Mode}i dest=%{Sec-Fetch-Dest}i\" fetch\n"
        "CustomLog @ROOT@/logs/fetch.log fetch\n";
    h = std::make_unique<Httpd>(o);
    h->write_doc("site/renew.html", "<!doctype html><title>renew</title><p>Welcome back: here is a fresh link.");
    h->write_doc("gallery/12/index.html", "<!doctype html><title>gallery</title>");
    h->write_doc("media/clip/clip.mp4", std::string(4096, 'v'));
    h->write_doc("media/clip/index.m3u8", "#EXTM3U\n");
    h->expect_log("UT00003: token refused");
    ASSERT_TRUE(h->start()) << h->startup_output();
    std::string error;
    auto ring = uritoken::KeyRing::parse(kTestKeys, &error);
    ASSERT_TRUE(ring) << error;
    keys = std::make_unique<uritoken::KeyRing>(std::move(*ring));
    expired = h->mint("--client site42 --expires " + std::to_string(std::time(nullptr) - 120));
  }
  void TearDown() override {
    if (h) expect_server_clean(*h, {expired});
  }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(h->port()); }
  // The signature the site checks, over the Location's own fields.
  bool verifies(const std::string& location) const {
    auto q = query_of(location);
    const uritoken::Key* key = keys->find(static_cast<std::uint16_t>(std::stoul(q["uritoken_key"])));
    return key != nullptr &&
           q["uritoken_sig"] == uritoken::return_signature(*key, q["uritoken_reason"], q["uritoken_session"],
                                                           std::stoll(q["uritoken_time"]),
                                                           percent_decode(q["uritoken_path"]));
  }
  std::unique_ptr<Httpd> h;
  std::unique_ptr<uritoken::KeyRing> keys;
  std::string expired;
};

TEST_F(ReturnUrlTest, NavigationsGoBackSignedAndPlayersKeepTheir410) {
  const std::string page = "/_uk_" + expired + "/gallery/12/index.html";
  const Response nav = http_get(
      h->port(), page,
      {"Sec-Fetch-Mode: navigate", "Sec-Fetch-Dest: document", "Accept: text/html,application/xhtml+xml,*/*;q=0.8"});
  ASSERT_EQ(nav.status, 302) << nav.raw;
  const std::string location = nav.header("location");
  EXPECT_EQ(location.rfind(base() + "/site/renew.html?from=media&uritoken_reason=expired&uritoken_key=1&", 0), 0u)
      << location;
  EXPECT_TRUE(verifies(location)) << location;
  EXPECT_EQ(percent_decode(query_of(location)["uritoken_path"]), "/gallery/12/index.html");
  EXPECT_EQ(query_of(location)["uritoken_session"].size(), 16u);
  EXPECT_EQ(location.find(expired), std::string::npos) << "the token itself must not travel";
  EXPECT_EQ(nav.header("cache-control"), "no-store");
  EXPECT_NE(nav.header("vary").find("Sec-Fetch-Mode"), std::string::npos);
  // An older browser without Fetch metadata: by its Accept.
  EXPECT_EQ(http_get(h->port(), page, {"Accept: text/html,*/*"}).status, 302);
  // Media requests keep the plain answer.
  const std::string clip = "/_uk_" + expired + "/media/clip/clip.mp4";
  EXPECT_EQ(http_get(h->port(), clip, {"Sec-Fetch-Mode: no-cors", "Sec-Fetch-Dest: video", "Range: bytes=0-"}).status,
            410);
  EXPECT_EQ(http_get(h->port(), "/_uk_" + expired + "/media/clip/index.m3u8",
                     {"Sec-Fetch-Mode: cors", "Sec-Fetch-Dest: empty", "Accept: */*"})
                .status,
            410);  // hls.js
  EXPECT_EQ(http_get(h->port(), "/_uk_" + expired + "/media/clip/index.m3u8", {"User-Agent: Lavf/59.27.100"}).status,
            410);  // ffmpeg's HLS demuxer: no Fetch metadata, Accept */*
  EXPECT_EQ(http_get(h->port(), page, {"Accept: text/html", "Range: bytes=0-"}).status, 410);
  EXPECT_EQ(http_get(h->port(), page, {"Accept: text/html"}, "HEAD").status, 410);
  // A forged token is no customer of the site: the plain 403.
  std::string forged = expired;
  forged[forged.size() - 3] = forged[forged.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_EQ(http_get(h->port(), "/_uk_" + forged + "/gallery/12/index.html", {"Accept: text/html"}).status, 403);
}

TEST_F(ReturnUrlTest, OutOfScopeGoesBackWithoutASession) {
  const std::string scoped = h->mint("--client site42 --ttl 600 --scope /gallery/12/");
  const Response r = http_get(h->port(), "/_uk_" + scoped + "/gallery", {"Accept: text/html"});
  ASSERT_EQ(r.status, 302) << r.raw;
  const std::string location = r.header("location");
  EXPECT_NE(location.find("uritoken_reason=out-of-scope"), std::string::npos) << location;
  // Too few segments for the scope: the MAC could not be checked, so nothing of the token is vouched for.
  EXPECT_EQ(location.find("uritoken_session"), std::string::npos) << location;
  EXPECT_TRUE(verifies(location)) << location;
  expect_server_clean(*h, {scoped});
}

TEST_F(ReturnUrlTest, InHeadlessChromiumTheViewerLandsOnTheSiteWhileTheVideoAndHlsJsGet410) {
  for (const char* path : {kPython, "/usr/bin/chromium", "/usr/bin/chromedriver"}) {
    ASSERT_EQ(access(path, X_OK), 0) << path << " is missing: run bash scripts/install-deps.sh";
  }
  const std::string clip = base() + "/_uk_" + expired + "/media/clip/clip.mp4";
  const std::string playlist = base() + "/_uk_" + expired + "/media/clip/index.m3u8";
  h->write_doc(
      "site/player.html",
      "<!doctype html><title>loading</title><video id=v muted autoplay src=\"" + clip +
          "\"></video><script>\n"
          "let video = '', fetched = '';\n"
          "const done = () => { if (video && fetched) document.title = 'done ' + video + ' ' + fetched; };\n"
          "document.getElementById('v').onerror = (e) => { video = 'error=' + e.target.error.code; done(); };\n"
          "document.getElementById('v').onplaying = () => { video = 'played=1'; done(); };\n"
          "fetch('" +
          playlist +
          "').then((r) => { fetched = 'status=' + r.status; done(); },\n"
          "  () => { fetched = 'status=failed'; done(); });\n"
          "</script>");
  char dir[] = "/tmp/uritoken-browser-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  // hls.js itself, as sites embed it (scripts/fetch-test-assets.sh): an
  // expired playlist, and a valid one whose segment it fetches by the
  // playlist's relative link, through the token prefix.
  const std::string hls_js = read_file(std::string(BUILD_DIR) + "/vendor/hls.min.js");
  ASSERT_GT(hls_js.size(), 100000u) << "hls.js is missing: run bash scripts/fetch-test-assets.sh";
  h->write_doc("site/hls.min.js", hls_js);
  h->write_doc("media/hls/index.m3u8",
               "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:6.0,\nseg1.ts\n"
               "#EXT-X-ENDLIST\n");
  h->write_doc("media/hls/seg1.ts", std::string(188 * 20, '\x47'));
  const std::string valid = h->mint("--client site42 --ttl 600");
  h->write_doc("site/hls.html",
               "<!doctype html><title>loading</title><body><script src=\"/site/hls.min.js\"></script><script>\n"
               "const got = {};\n"
               "const done = () => { if (got.expired && got.valid) document.title = 'done expired=' + got.expired + "
               "' valid=' + got.valid; };\n"
               "function play(name, url) {\n"
               "  if (!Hls.isSupported()) { got[name] = 'unsupported'; return done(); }\n"
               "  const video = document.createElement('video'); video.muted = true; document.body.append(video);\n"
               "  const hls = new Hls();\n"
               "  hls.on(Hls.Events.FRAG_LOADED, () => { got[name] = got[name] || 'segment-loaded'; done(); });\n"
               "  hls.on(Hls.Events.ERROR, (e, d) => { if (d.fatal && !got[name]) { got[name] = d.details + ':' + "
               "(d.response ? d.response.code : 'none'); done(); } });\n"
               "  hls.loadSource(url); hls.attachMedia(video);\n"
               "}\n"
               "play('expired', '/_uk_" +
                   expired +
                   "/media/hls/index.m3u8');\n"
                   "play('valid', '/_uk_" +
                   valid +
                   "/media/hls/index.m3u8');\n"
                   "</script>");
  std::string out;
  const int rc =
      run_command(std::string(kPython) + " " + SOURCE_DIR + "/tests/browser/return_url.py --page " + base() + "/_uk_" +
                      expired + "/gallery/12/index.html --return-prefix " + base() + "/site/renew.html --player " +
                      base() + "/site/player.html --hls " + base() + "/site/hls.html --profile-root " + dir + " 2>&1",
                  &out);
  std::string rm;
  run_command(std::string("rm -rf ") + dir, &rm);
  ASSERT_EQ(rc, 0) << out;
  const auto at = out.find("landed: ");
  ASSERT_NE(at, std::string::npos) << out;
  const std::string landed = out.substr(at + 8, out.find('\n', at) - at - 8);
  EXPECT_TRUE(verifies(landed)) << landed;
  EXPECT_NE(out.find("video: error"), std::string::npos) << out;
  EXPECT_NE(out.find("fetch: 410"), std::string::npos) << out;
  EXPECT_NE(out.find("hls: expired=manifestLoadError:410 valid=segment-loaded"), std::string::npos) << out;
  // What Chromium sent, as the server logged it: the navigation 302, its
  // video element's Range requests and the script's fetch 410.
  const std::string log = read_file(h->root() + "/logs/fetch.log");
  EXPECT_NE(log.find("/gallery/12/index.html HTTP/1.1 302 mode=navigate dest=document"), std::string::npos) << log;
  EXPECT_NE(log.find("/media/clip/clip.mp4 HTTP/1.1 410 mode=no-cors dest=video"), std::string::npos) << log;
  EXPECT_NE(log.find("/media/clip/index.m3u8 HTTP/1.1 410 mode=cors dest=empty"), std::string::npos) << log;
  EXPECT_NE(log.find("/media/hls/index.m3u8 HTTP/1.1 410 mode=cors dest=empty"), std::string::npos) << log;
  EXPECT_NE(log.find("/media/hls/seg1.ts HTTP/1.1 200 mode=cors dest=empty"), std::string::npos) << log;
  EXPECT_EQ(log.find(valid), std::string::npos) << "a token in the access log";
  std::printf("%s", out.c_str());
}

}  // namespace
