// SPDX-License-Identifier: Apache-2.0
// Bypass attempts through configurations an admin adds on top of ours:
// mod_cache (both providers, quick handler on and off), `Satisfy Any` from
// mod_access_compat (also from .htaccess), MultiViews from mod_negotiation,
// and HTTP/2 (h2c by Upgrade and prior knowledge, h2 over TLS by ALPN).
// Each test also shows the configuration is live (a cache hit on a public
// file, a negotiated file served, HTTP/2 spoken), so it cannot pass because
// the module under attack was never in play.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <sstream>
#include <ctime>
#include <thread>
#include <fstream>
#include <memory>
#include <regex>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "httpd_fixture.h"

using namespace uritoken::itest;

namespace {

const std::string kMedia = "/media/gallery/12/photo.jpg";

// A server of its own per test, with checks after the test: no crash, no
// minted token in any log.
class Hardening : public ::testing::Test {
 protected:
  void TearDown() override {
    if (!h) return;
    expect_server_clean(*h, tokens_);
  }
  void make(HttpdOptions o) {
    h = std::make_unique<Httpd>(std::move(o));
    h->write_doc("open/photo.jpg", std::string(3000, 'o'));
    h->write_doc("media/gallery/12/photo.jpg", std::string(5000, 'p'));
    h->write_doc("media/gallery/12/index.html", "<html>gallery 12</html>\n");
  }
  void start() { ASSERT_TRUE(h->start()) << h->startup_output(); }
  void start(HttpdOptions o) {
    make(std::move(o));
    start();
  }
  std::string mint(const std::string& args) {
    tokens_.push_back(h->mint("--client site42 --ttl 600 " + args));
    EXPECT_EQ(tokens_.back().find("MINT-FAILED"), std::string::npos) << tokens_.back();
    return tokens_.back();
  }
  std::string expired_token() {
    tokens_.push_back(h->mint("--client site42 --expires " + std::to_string(std::time(nullptr) - 3600)));
    EXPECT_EQ(tokens_.back().find("MINT-FAILED"), std::string::npos) << tokens_.back();
    return tokens_.back();
  }
  // `curl` with the given options; returns "STATUS HTTPVERSION" and the body in `body`.
  std::string curl(const std::string& options, const std::string& url, std::string* body = nullptr) {
    const std::string out_file = h->root() + "/curl.out";
    std::string out;
    run_command("curl -s -o " + out_file + " -w '%{http_code} %{http_version}' " + options + " '" + url + "'", &out);
    if (body != nullptr) run_command("cat " + out_file, body);
    return out;
  }
  std::unique_ptr<Httpd> h;
  std::vector<std::string> tokens_;
};

// --- mod_cache ------------------------------------------------------------

class CacheBypass : public Hardening, public ::testing::WithParamInterface<std::tuple<std::string, bool>> {};

TEST_P(CacheBypass, NoCachedCopyOfAProtectedFileReachesARequestWithoutAValidToken) {
  const auto& [provider, quick] = GetParam();
  HttpdOptions o;
  o.modules = {"cache", provider == "disk" ? "cache_disk" : "cache_socache", "socache_shmcb"};
  o.extra_conf = std::string("CacheQuickHandler ") + (quick ? "On" : "Off") +
                 "\nCacheIgnoreNoLastMod On\nCacheDefaultExpire 600\nCacheHeader On\nCacheLock Off\n";
  if (provider == "disk") {
    o.extra_conf += "CacheEnable disk /\nCacheRoot @ROOT@/cache\n";
  } else {
    o.extra_conf += "CacheEnable socache /\nCacheSocache shmcb\n";
  }
  make(o);
  std::string ignored;
  // A day-old Last-Modified gives the responses a heuristic freshness (10%
  // of their age) that the cache honours.
  run_command("mkdir -p " + h->root() + "/cache && chmod 777 " + h->root() + "/cache && find " + h->root() +
                  "/htdocs -type f -exec touch -d '1 day ago' {} +",
              &ignored);
  start();

  h->expect_log(R"(UT00006: |UT00003: token refused \((expired|bad-mac)\))");
  // The cache is live: a public file is stored and then served from it.
  ASSERT_EQ(http_get(h->port(), "/open/photo.jpg").status, 200);
  const Response again = http_get(h->port(), "/open/photo.jpg");
  ASSERT_EQ(again.status, 200);
  ASSERT_NE(again.header("x-cache").find("HIT"), std::string::npos)
      << "the cache never served the public file, so this test would prove nothing: " << again.raw.substr(0, 400);

  const std::string tok = mint("--scope /media/gallery/12/");
  for (int i = 0; i < 2; ++i) {  // twice: the second would be a hit if the first was stored
    EXPECT_EQ(http_get(h->port(), "/_uk_" + tok + kMedia).status, 200);
    EXPECT_EQ(http_get(h->port(), "/_uk_" + tok + "/media/gallery/12/").status, 200);
  }
  for (const std::string& plain :
       {kMedia, std::string("/media/gallery/12/"), std::string("/media/gallery/12/index.html")}) {
    const Response r = http_get(h->port(), plain);
    EXPECT_EQ(r.status, 403) << plain << " served without a token: " << r.header("x-cache");
    EXPECT_EQ(r.body.find("pppp"), std::string::npos) << plain;
  }
  // Refused tokens never meet a cached copy either.
  EXPECT_EQ(http_get(h->port(), "/_uk_" + expired_token() + kMedia).status, 410);
  std::string forged = tok;
  forged.back() = forged.back() == 'A' ? 'Q' : 'A';
  EXPECT_EQ(http_get(h->port(), "/_uk_" + forged + kMedia).status, 403);
}

INSTANTIATE_TEST_SUITE_P(Providers, CacheBypass,
                         ::testing::Combine(::testing::Values("disk", "socache"), ::testing::Bool()),
                         [](const auto& param_info) {
                           return std::get<0>(param_info.param) +
                                  (std::get<1>(param_info.param) ? "_quick" : "_normal");
                         });

// --- Satisfy Any (mod_access_compat) ----------------------------------------

TEST_F(Hardening, SatisfyAnyDoesNotLiftUriTokenRequire) {
  HttpdOptions o;
  o.modules = {"access_compat"};
  o.extra_conf =
      "<Location /media/gallery>\n  Satisfy Any\n  Order allow,deny\n  Allow from all\n</Location>\n"
      "<Directory @ROOT@/htdocs/media/other>\n  AllowOverride AuthConfig\n</Directory>\n";
  start(o);
  h->write_doc("media/other/a.txt", "other\n");
  h->write_doc("media/other/.htaccess", "Satisfy Any\n");
  h->expect_log("UT00006: ");

  for (const std::string& plain : {kMedia, std::string("/media/other/a.txt")}) {
    const std::size_t mark = h->error_log().size();
    const Response r = http_get(h->port(), plain);
    EXPECT_EQ(r.status, 403) << plain;
    const std::string log = h->error_log().substr(mark);
    EXPECT_NE(log.find("UT00006: request refused (absent)"), std::string::npos) << log;
  }
  // A valid token still gets in.
  EXPECT_EQ(http_get(h->port(), "/_uk_" + mint("") + kMedia).status, 200);
  EXPECT_EQ(http_get(h->port(), "/_uk_" + mint("") + "/media/other/a.txt").status, 200);
}

// --- MultiViews (mod_negotiation) -------------------------------------------

TEST_F(Hardening, MultiViewsCannotLeadADirectoryScopeToAnotherFile) {
  HttpdOptions o;
  o.modules = {"negotiation"};
  o.extra_conf = "<Directory @ROOT@/htdocs/mv>\n  Options +MultiViews\n</Directory>\n";
  start(o);
  h->write_doc("mv/12.zip", "ZIP-OF-12");
  h->write_doc("mv/13.zip", "ZIP-OF-13");
  h->write_doc("mv/13/index.html", "thirteen\n");
  h->write_doc("mv/14/notes.txt", "notes\n");
  h->expect_log("UT00019: ");

  // MultiViews is live: the plain path negotiates to the .zip.
  ASSERT_EQ(http_get(h->port(), "/mv/14/notes").body, "notes\n");

  const std::string t12 = mint("--scope /mv/12/");
  const std::size_t mark = h->error_log().size();
  const Response r = http_get(h->port(), "/_uk_" + t12 + "/mv/12");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.body.find("ZIP-OF-12"), std::string::npos);
  EXPECT_NE(h->error_log().substr(mark).find("(out-of-scope)"), std::string::npos) << h->error_log().substr(mark);

  // The allowance still does its one job: the directory redirect.
  const std::string t13 = mint("--scope /mv/13/");
  const Response dir = http_get(h->port(), "/_uk_" + t13 + "/mv/13");
  EXPECT_EQ(dir.status, 301);
  EXPECT_NE(dir.header("location").find("/_uk_" + t13 + "/mv/13/"), std::string::npos);
  EXPECT_EQ(http_get(h->port(), "/_uk_" + t13 + "/mv/13/").body, "thirteen\n");
  // And negotiation inside a scope works as usual.
  const std::string t14 = mint("--scope /mv/14/");
  EXPECT_EQ(http_get(h->port(), "/_uk_" + t14 + "/mv/14/notes").body, "notes\n");
}

// --- HTTP/2 -------------------------------------------------------------------

TEST_F(Hardening, TokensWorkOverH2cByUpgradeAndByPriorKnowledge) {
  HttpdOptions o;
  o.modules = {"http2"};
  o.extra_conf = "Protocols h2c http/1.1\n";
  start(o);
  h->expect_log(R"(UT00006: |UT00003: token refused \(expired\))");
  const std::string base = "http://127.0.0.1:" + std::to_string(h->port());
  const std::string tok = mint("--scope /media/gallery/12/");
  std::string body;
  EXPECT_EQ(curl("--http2", base + "/_uk_" + tok + kMedia, &body), "200 2") << h->error_log();
  EXPECT_EQ(body.size(), 5000u);
  EXPECT_EQ(curl("--http2-prior-knowledge", base + "/_uk_" + tok + kMedia, &body), "200 2") << h->error_log();
  EXPECT_EQ(body.size(), 5000u);
  // Relative links after an upgrade: the directory redirect keeps the prefix.
  EXPECT_EQ(curl("--http2 -L", base + "/_uk_" + tok + "/media/gallery/12", &body), "200 2");
  EXPECT_EQ(body, "<html>gallery 12</html>\n");
  // Refusals hold over HTTP/2 too.
  // Refusals hold over HTTP/2 too (a refused Upgrade is answered in HTTP/1.1).
  EXPECT_EQ(curl("--http2", base + kMedia).substr(0, 3), "403");
  EXPECT_EQ(curl("--http2-prior-knowledge", base + kMedia), "403 2");
  EXPECT_EQ(curl("--http2", base + "/_uk_" + expired_token() + kMedia).substr(0, 3), "410");
  EXPECT_EQ(curl("--http2-prior-knowledge", base + "/_uk_" + expired_token() + kMedia), "410 2");
}

TEST_F(Hardening, TokensWorkOverH2WithTls) {
  HttpdOptions o;
  o.modules = {"socache_shmcb", "ssl", "http2"};
  o.extra_conf =
      "SSLEngine on\nSSLCertificateFile @ROOT@/tls.crt\nSSLCertificateKeyFile @ROOT@/tls.key\n"
      "SSLSessionCache shmcb:@ROOT@/ssl_scache(512000)\nProtocols h2 http/1.1\n";
  make(o);
  const std::string root = h->root();
  std::string out;
  ASSERT_EQ(
      run_command("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
                  "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -addext basicConstraints=critical,CA:FALSE "
                  "-keyout " +
                      root + "/tls.key -out " + root + "/tls.crt 2>&1",
                  &out),
      0)
      << out;
  start();
  // Debian's mod_ssl may be built against a newer OpenSSL patch release.
  h->expect_log("UT00006: |AH01882: ");
  const std::string base = "https://127.0.0.1:" + std::to_string(h->port());
  const std::string tok = mint("--scope /media/gallery/12/");
  std::string body;
  EXPECT_EQ(curl("--cacert " + root + "/tls.crt --http2", base + "/_uk_" + tok + kMedia, &body), "200 2")
      << h->error_log();
  EXPECT_EQ(body.size(), 5000u);
  EXPECT_EQ(curl("--cacert " + root + "/tls.crt --http2", base + kMedia), "403 2");
}

// --- No token in any log ---------------------------------------------------

// Requests httpd answers before any module hook runs, with a token in the
// request line: none may leave it in the access log, the error log or
// mod_status (also while the request is still being read).
TEST_F(Hardening, RequestsHttpdRefusesEarlyLogNoToken) {
  HttpdOptions o;
  o.modules = {"status"};
  o.extra_conf =
      "Timeout 2\nLimitRequestLine 1024\nLimitRequestFieldSize 512\nExtendedStatus On\nLogLevel info\n"
      "<Location /server-status>\n  SetHandler server-status\n</Location>\n";
  start(o);
  h->expect_log(R"(UT00004: request refused \(misplaced-token\))");
  const std::string tok = mint("--scope /media/gallery/12/");
  const std::string target = "/_uk_" + tok + kMedia;
  struct Early {
    std::string name;
    std::string request;
    int status;
  };
  const std::vector<Early> cases = {
      {"no Host", "GET " + target + " HTTP/1.1\r\nConnection: close\r\n\r\n", 400},
      {"# in target", "GET " + target + "#x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 400},
      {"oversized header",
       "GET " + target + " HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(600, 'x') + "\r\nConnection: close\r\n\r\n",
       400},
      {"too long", "GET " + target + "/" + std::string(1100, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
      {"bad Expect", "GET " + target + " HTTP/1.1\r\nHost: a\r\nExpect: tea\r\nConnection: close\r\n\r\n", 417},
      {"query token", "GET /open/photo.jpg?src=/_uk_" + tok + "/a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
       200},
      {"upper-case marker", "GET /_UK_" + tok + kMedia + " HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 403},
      {"encoded marker", "GET /%5Fuk_" + tok + kMedia + " HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 403},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(http_raw(h->port(), c.request).status, c.status) << c.name;
  }
  // A client that stalls after the request line: 408 after Timeout. While
  // it stalls, mod_status must not show its request line either.
  std::thread stall([&] { EXPECT_EQ(http_raw(h->port(), "GET " + target + " HTTP/1.1\r\nHost: a\r\n").status, 408); });
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  const Response during = http_get(h->port(), "/server-status");
  stall.join();
  const Response after = http_get(h->port(), "/server-status");
  ASSERT_EQ(after.status, 200);
  for (std::size_t i = 0; i + 12 <= tok.size(); i += 6) {
    const std::string piece = tok.substr(i, 12);
    EXPECT_EQ(during.body.find(piece), std::string::npos) << "token in mod_status during a stalled request";
    EXPECT_EQ(after.body.find(piece), std::string::npos) << "token in mod_status";
    EXPECT_EQ(h->access_log().find(piece), std::string::npos) << "token in the access log:\n" << h->access_log();
    EXPECT_EQ(h->error_log().find(piece), std::string::npos) << "token in the error log";
  }
  // The refused requests were logged, with their request lines redacted.
  const std::string access = h->access_log();
  for (const char* expect : {"\" 400 ", "\" 414 ", "\" 417 ", "\" 408 ", "?src=/_uk_[redacted]/a HTTP/1.1\" 200"}) {
    EXPECT_NE(access.find(expect), std::string::npos) << expect << "\n" << access;
  }
  EXPECT_NE(after.body.find("_uk_[redacted]"), std::string::npos) << "mod_status shows request lines";
  // mod_status also gains mod_uritoken's section (through its status hook).
  EXPECT_NE(after.body.find("<h2>mod_uritoken</h2>"), std::string::npos);
  const Response brief = http_get(h->port(), "/server-status?auto");
  EXPECT_NE(brief.body.find("UriTokenSharing: off\n"), std::string::npos) << brief.body;
  EXPECT_NE(brief.body.find("UriTokenRefusals: 2\n"), std::string::npos) << brief.body;  // the two misplaced markers
}

// A page under /_uk_T/ links to an absolute URL: the next request carries
// the token as its Referer, which httpd appends to request error-log lines.
// And tokenized responses tell browsers not to send it anywhere else.
TEST_F(Hardening, RefererIsRedactedAndTokenizedResponsesSetReferrerPolicy) {
  start(HttpdOptions{});
  h->expect_log("UT00006: |UT00002: ");
  const std::string tok = mint("--scope /media/gallery/12/");
  const std::string referer = "Referer: http://127.0.0.1/_uk_" + tok + "/media/gallery/12/index.html";
  const std::size_t mark = h->error_log().size();
  EXPECT_EQ(http_get(h->port(), kMedia, {referer}).status, 403);                                   // UT00006
  EXPECT_EQ(http_get(h->port(), "/_uk_" + tok + "/media/gallery/12/%zz", {referer}).status, 403);  // UT00002
  const std::string log = h->error_log().substr(mark);
  EXPECT_NE(log.find("UT00006"), std::string::npos) << log;
  EXPECT_NE(log.find("UT00002"), std::string::npos) << log;
  EXPECT_NE(log.find("referer: http://127.0.0.1/_uk_[redacted]/media/gallery/12/index.html"), std::string::npos) << log;

  const Response ok = http_get(h->port(), "/_uk_" + tok + kMedia);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.header("referrer-policy"), "no-referrer");
  EXPECT_EQ(http_get(h->port(), "/_uk_" + tok + "/media/gallery/12/nothing.jpg").header("referrer-policy"),
            "no-referrer");
  EXPECT_EQ(http_get(h->port(), "/open/photo.jpg").header("referrer-policy"), "");  // untokenized: not ours
}

TEST_F(Hardening, ReferrerPolicyIsConfigurableButNeverLeaky) {
  HttpdOptions o;
  o.extra_conf = "UriTokenReferrerPolicy same-origin\n";
  start(o);
  EXPECT_EQ(http_get(h->port(), "/_uk_" + mint("") + kMedia).header("referrer-policy"), "same-origin");
  for (const char* bad : {"unsafe-url", "no-referrer-when-downgrade", "nonsense"}) {
    HttpdOptions b;
    b.extra_conf = std::string("UriTokenReferrerPolicy ") + bad + "\n";
    Httpd hb(b);
    EXPECT_FALSE(hb.start()) << bad;
    EXPECT_NE(hb.startup_output().find(std::string("UriTokenReferrerPolicy: '") + bad + "' is not allowed"),
              std::string::npos)
        << hb.startup_output();
  }
}

// --- Log flooding -------------------------------------------------------------

// A flood of forged tokens with padded Referers, from several connections
// at once, on a prefork server (several processes share one limit): the
// error log gets at most the limit's lines a second, each short, plus one
// summary line with the count of the rest.
TEST_F(Hardening, RefusalLoggingIsRateLimitedAndBounded) {
  HttpdOptions o;
  o.mpm = "prefork";
  o.extra_conf = "UriTokenLogLimit 5\n";
  start(o);
  h->expect_log(R"(UT00003: token refused \(bad-mac\)|UT00020: )");
  std::string forged = mint("");
  forged.back() = forged.back() == 'A' ? 'Q' : 'A';
  const std::string referer = "Referer: http://elsewhere.example/" + std::string(6000, 'r');
  const std::size_t before = h->error_log().size();
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> clients;
  std::atomic<int> refused{0};
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      for (int i = 0; i < 100; ++i) refused += http_get(h->port(), "/_uk_" + forged + kMedia, {referer}).status == 403;
    });
  }
  for (auto& c : clients) c.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(refused.load(), 400);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(http_get(h->port(), "/_uk_" + forged + kMedia).status, 403);  // carries the last summary

  const std::string log = h->error_log().substr(before);
  std::size_t lines = 0, summaries = 0, longest = 0, reported = 0;
  std::map<std::string, std::size_t> lines_per_second;  // by the error log's own time stamp
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    longest = std::max(longest, line.size());
    if (line.find("UT00003: token refused (bad-mac)") != std::string::npos) {
      ++lines;
      ++lines_per_second[line.substr(0, line.find('.'))];  // "[Mon Dec 07 17:40:01"
    }
    if (const auto at = line.find("UT00020: "); at != std::string::npos) {
      ++summaries;
      reported += std::stoul(line.substr(at + 9));
    }
  }
  // The limit is per second of the clock: a flood of a few milliseconds
  // that crosses a second boundary may log 5 in each second.
  for (const auto& [second, n] : lines_per_second) EXPECT_LE(n, 5u) << second << "]: over " << seconds << " s";
  EXPECT_LE(lines_per_second.size(), static_cast<std::size_t>(seconds) + 3) << "the flood, then one request";
  EXPECT_GE(lines, 5u);
  EXPECT_GE(summaries, 1u);
  EXPECT_EQ(lines + reported, 401u) << "every refusal is either logged or counted in a summary";
  EXPECT_LT(longest, 700u) << "the Referer httpd appends is cut short";
  EXPECT_LT(log.size(), 100u * 700u);
}

// --- Billing counters on the status page --------------------------------------

// Requests and bytes per client, counted after each response, match what
// the client received; keys show when they last verified a token; the
// Prometheus text parses (one sample per line: name{labels} value).
TEST_F(Hardening, BillingCountersMatchWhatClientsReceived) {
  HttpdOptions o;
  o.extra_conf =
      "<Location /uritoken-status>\n  SetHandler uritoken-status\n  Require ip 127.0.0.1\n</Location>\n"
      "<Location /media/ops>\n  SetHandler uritoken-status\n  Require ip 127.0.0.1\n</Location>\n";
  start(o);
  h->expect_log("UT00006: ");
  // Under a token-required tree (UriTokenRequire On on /media) the page is
  // still reached without a token: its own Require guards it.
  EXPECT_EQ(http_get(h->port(), "/media/ops").status, 200);
  const std::string site = mint("--scope /media/gallery/12/");
  const std::string other = h->mint("--client other --ttl 600");
  tokens_.push_back(other);
  std::uint64_t site_bytes = 0, site_requests = 0;
  for (int i = 0; i < 5; ++i) {
    const Response r = http_get(h->port(), "/_uk_" + site + kMedia);
    ASSERT_EQ(r.status, 200);
    site_bytes += r.body.size();
    ++site_requests;
  }
  const Response range = http_get(h->port(), "/_uk_" + site + kMedia, {"Range: bytes=0-99"});
  ASSERT_EQ(range.status, 206);
  site_bytes += range.body.size();
  ++site_requests;
  const Response page = http_get(h->port(), "/_uk_" + site + "/media/gallery/12/");  // index.html via mod_dir
  ASSERT_EQ(page.status, 200);
  site_bytes += page.body.size();
  ++site_requests;
  const Response o1 = http_get(h->port(), "/_uk_" + other + "/open/photo.jpg");
  ASSERT_EQ(o1.status, 200);
  EXPECT_EQ(http_get(h->port(), kMedia).status, 403);  // no token: not billed

  std::string metrics;
  const std::string want = "uritoken_client_bytes_total{client=\"site42\"} " + std::to_string(site_bytes) + "\n";
  for (int i = 0; i < 50 && metrics.find(want) == std::string::npos; ++i) {  // logged after the response
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    metrics = http_get(h->port(), "/uritoken-status?metrics").body;
  }
  EXPECT_NE(metrics.find(want), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("uritoken_client_requests_total{client=\"site42\"} " + std::to_string(site_requests) + "\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("uritoken_client_bytes_total{client=\"other\"} " + std::to_string(o1.body.size()) + "\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("uritoken_key_last_used_seconds{key_id=\"1\",client=\"site42\"} "), std::string::npos);
  EXPECT_NE(metrics.find("uritoken_key_last_used_seconds{key_id=\"3\",client=\"site42\"} 0\n"), std::string::npos)
      << "the retired key was never used";
  // The exposition format: comments, or "name{labels} value" with a number.
  const std::regex sample(R"(^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9.e+]+$)");
  std::istringstream lines(metrics);
  int samples = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) continue;
    EXPECT_TRUE(std::regex_match(line, sample)) << line;
    ++samples;
  }
  EXPECT_GE(samples, 6);
  // One catalogue of refusals: each kind once, by its URITOKEN_REASON name,
  // counted whichever hook refused (the 403 without a token above).
  for (const char* reason : {"absent", "misplaced-token", "out-of-scope", "bad-mac", "plain-http", "bad-referrer",
                             "revoked", "bulk-use", "no-keys", "engine-off"}) {
    const std::string label = std::string("uritoken_refusals_total{reason=\"") + reason + "\"} ";
    const std::size_t at = metrics.find(label);
    EXPECT_NE(at, std::string::npos) << reason;
    EXPECT_EQ(metrics.find(label, at + 1), std::string::npos) << reason << " listed twice";
  }
  EXPECT_TRUE(std::regex_search(metrics, std::regex("uritoken_refusals_total\\{reason=\"absent\"\\} [1-9]")))
      << metrics;
  for (const char* old_name : {"misplaced-segment", "directory-only"}) {
    EXPECT_EQ(metrics.find(old_name), std::string::npos) << old_name;
  }
  // And Prometheus' own referee agrees (promtool from Debian's prometheus).
  {
    const std::string file = h->root() + "/metrics.txt";
    std::ofstream(file) << metrics;
    std::string out;
    EXPECT_EQ(run_command("promtool check metrics < " + file, &out), 0) << out;
  }
  const Response j = http_get(h->port(), "/uritoken-status?json");
  EXPECT_NE(j.body.find("\"sidecar\":\"off\""), std::string::npos) << j.body;
  EXPECT_NE(j.body.find("{\"client\":\"site42\",\"requests\":" + std::to_string(site_requests) +
                        ",\"bytes\":" + std::to_string(site_bytes) + "}"),
            std::string::npos)
      << j.body;
}

}  // namespace
