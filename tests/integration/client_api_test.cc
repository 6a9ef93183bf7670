// SPDX-License-Identifier: Apache-2.0
// The client-site API on three real nodes: a client-signed revocation is
// honoured by every node within a second, a forged, stale, replayed or
// foreign one by none; the feed returns exactly the client's verdicts, in
// pages, from any node; plain HTTP is refused unless allowed.
#include <gtest/gtest.h>

#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../../mod_uritoken/core/base64url.h"
#include "../../mod_uritoken/core/client_api.h"
#include "../../mod_uritoken/core/keyring.h"
#include "../../mod_uritoken/core/token.h"
#include "cluster.h"
#include "httpd_fixture.h"

using namespace uritoken::itest;

namespace {

constexpr const char* kApi = "/uritoken/client";
const std::string kApiConf = std::string("<Location ") + kApi +
                             ">\n  SetHandler uritoken-client-api\n</Location>\nUriTokenClientApiPlainHTTP Allow\n"
                             "UriTokenReturnURL site42 https://shop.example/renew\n";

std::string fresh_nonce() {
  std::uint8_t raw[16];
  randombytes_buf(raw, sizeof raw);
  return uritoken::base64url_encode(raw, sizeof raw);
}

// A request as a client site signs it, with its parts open to the test.
struct Signed {
  std::string method = "POST", target = kApi, nonce = fresh_nonce(), body;
  std::int64_t time = std::time(nullptr);
  std::uint16_t key_id = 1;
  std::string signature;
  std::string raw() const {
    std::string r = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
                    "X-UriToken-Key: " + std::to_string(key_id) + "\r\nX-UriToken-Time: " + std::to_string(time) +
                    "\r\nX-UriToken-Nonce: " + nonce + "\r\nX-UriToken-Signature: " + signature + "\r\n";
    if (method == "POST") {
      r += "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    }
    return r + "\r\n" + body;
  }
};

class ClientApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(sodium_init() >= 0, true);
    std::string error;
    auto ring = uritoken::KeyRing::parse(kTestKeys, &error);
    ASSERT_TRUE(ring) << error;
    keys = std::make_unique<uritoken::KeyRing>(std::move(*ring));
  }
  void TearDown() override {
    if (cluster) expect_nodes_clean(*cluster, tokens);
  }
  void start(int nodes) {
    cluster = std::make_unique<Cluster>(nodes);
    for (int i = 0; i < nodes; ++i) cluster->add_node_conf(i, kApiConf);
    cluster->expect_log("UT00059: client-site API request refused");
    cluster->expect_log("UT00010: token refused \\(revoked\\)");
    ASSERT_TRUE(cluster->start_all()) << cluster->startup_output();
  }
  std::string mint(const std::string& client = "site42") {
    tokens.push_back(cluster->node(0).mint("--client " + client + " --ttl 600"));
    return tokens.back();
  }
  Signed sign(Signed s) const {
    s.signature = uritoken::client_api::sign(*keys->find(s.key_id), s.method, s.target, s.time, s.nonce, s.body);
    return s;
  }
  Response send(int node, const Signed& s) { return http_raw(cluster->node(node).port(), s.raw()); }
  Response revoke(int node, const std::string& token, std::uint16_t key_id = 1) {
    Signed s;
    s.key_id = key_id;
    s.body = "token=" + token;
    return send(node, sign(s));
  }
  Response feed(int node, const std::string& query, std::uint16_t key_id = 1) {
    Signed s;
    s.method = "GET";
    s.key_id = key_id;
    s.target = std::string(kApi) + (query.empty() ? "" : "?" + query);
    return send(node, sign(s));
  }
  std::unique_ptr<uritoken::KeyRing> keys;
  std::unique_ptr<Cluster> cluster;
  std::vector<std::string> tokens;
};

int count(const std::string& s, const std::string& what) {
  int n = 0;
  for (std::size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

TEST_F(ClientApiTest, ALogoutIsHonouredEverywhereWithinASecondAndAForgeryNowhere) {
  start(3);
  const std::string out = mint(), kept = mint();
  ASSERT_TRUE(cluster->served_everywhere(out));
  ASSERT_TRUE(cluster->served_everywhere(kept));

  // Forged, stale, foreign, malformed: refused, and nothing changes.
  Signed forged;
  forged.body = "token=" + kept;
  forged = sign(forged);
  forged.body = "token=" + out;  // signed for another body
  EXPECT_EQ(send(1, forged).status, 401);
  EXPECT_NE(send(1, forged).body.find("\"error\":\"bad-signature\""), std::string::npos);
  Signed stale;
  stale.body = "token=" + kept;
  stale.time -= 120;
  EXPECT_EQ(send(1, sign(stale)).status, 401);
  EXPECT_NE(send(1, sign(stale)).body.find("\"error\":\"stale\""), std::string::npos);
  const Response foreign = revoke(1, kept, 4);  // client "other", signing well, for site42's token
  EXPECT_EQ(foreign.status, 403);
  EXPECT_NE(foreign.body.find("not-your-token"), std::string::npos);
  EXPECT_EQ(revoke(1, kept, 3).status, 401);  // a retired key of site42
  Signed unsigned_request;
  unsigned_request.body = "token=" + kept;
  EXPECT_EQ(send(1, unsigned_request).status, 401);
  Signed bad_body;
  bad_body.body = "token=" + kept + "&admin=1";
  EXPECT_EQ(send(1, sign(bad_body)).status, 400);
  Signed huge;
  huge.body = "comment=" + std::string(5000, 'x');
  EXPECT_EQ(send(1, sign(huge)).status, 413);

  // The logout: node 1 takes it, every node refuses the token.
  Signed logout;
  logout.body = "token=" + out + "&comment=logout";
  logout = sign(logout);
  const auto t0 = Clock::now();
  const Response ok = send(1, logout);
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_NE(ok.body.find("\"session\":\"" + cluster->session_of(out) + "\""), std::string::npos) << ok.body;
  const long waited = cluster->wait_refused_everywhere(out, 3000);
  const long ms = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
  ASSERT_GE(waited, 0) << "not refused on every node";
  EXPECT_LT(ms, 1000) << "refused everywhere " << ms << " ms after the request";
  std::printf("client logout refused on 3 nodes %ld ms after the request\n", ms);

  // A viewer's page navigation to it goes back to the site, revoked; a player's request stays a 403.
  const Response nav = http_get(cluster->node(2).port(), "/_uk_" + out + "/media/clip/seg1.ts",
                                {"X-Forwarded-For: 198.51.100.7", "Sec-Fetch-Mode: navigate", "Accept: text/html"});
  EXPECT_EQ(nav.status, 302);
  EXPECT_EQ(nav.header("location").rfind("https://shop.example/renew?uritoken_reason=revoked&uritoken_key=1&", 0), 0u)
      << nav.header("location");
  EXPECT_EQ(cluster->get(2, out, "198.51.100.7").status, 403);

  // The same request again, on the same node: a replay.
  const Response replay = send(1, logout);
  EXPECT_EQ(replay.status, 401);
  EXPECT_NE(replay.body.find("\"error\":\"replayed\""), std::string::npos) << replay.body;

  // None of the refused requests touched the other token.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(cluster->served_everywhere(kept));

  // The status page says who revoked it.
  const Response page = http_get(cluster->node(2).port(), "/uritoken-status?json");
  EXPECT_NE(page.body.find("\"reason\":\"client\""), std::string::npos) << page.body;
  const Response html = http_get(cluster->node(2).port(), "/uritoken-status");
  EXPECT_NE(html.body.find("revoked by the client site"), std::string::npos);
}

TEST_F(ClientApiTest, TheFeedHoldsExactlyTheClientsVerdictsInPagesFromAnyNode) {
  start(3);
  std::vector<std::string> mine;
  for (int i = 0; i < 3; ++i) mine.push_back(mint());
  const std::string theirs = mint("other");
  for (const auto& t : mine) ASSERT_EQ(revoke(0, t).status, 200);
  ASSERT_EQ(revoke(0, theirs, 4).status, 200);
  // Every verdict reaches node 2 (each token is then refused there).
  for (const auto& t : mine) ASSERT_GE(cluster->wait_refused_everywhere(t, 3000), 0);

  const Response first = feed(2, "limit=2");
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(count(first.body, "\"session\":"), 2) << first.body;
  EXPECT_NE(first.body.find("\"more\":true"), std::string::npos);
  EXPECT_EQ(first.body.find(cluster->session_of(theirs)), std::string::npos) << "another client's verdict";
  const auto at = first.body.find("\"next\":\"");
  ASSERT_NE(at, std::string::npos);
  const std::string next = first.body.substr(at + 8, first.body.find('"', at + 8) - at - 8);
  const Response second = feed(2, "after=" + next + "&limit=2");
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_EQ(count(second.body, "\"session\":"), 1) << second.body;
  EXPECT_NE(second.body.find("\"more\":false"), std::string::npos);
  // The pages together: each of the client's tokens once, in order of decision.
  for (const auto& t : mine) {
    EXPECT_EQ(count(first.body + second.body, "\"session\":\"" + cluster->session_of(t) + "\""), 1) << t;
  }
  // In order of decision: stamps never go back across the pages (two
  // revocations in one millisecond are ordered by key and session).
  std::vector<unsigned long long> stamps;
  const std::string both = first.body + second.body;
  for (auto pos = both.find("\"since_ms\":"); pos != std::string::npos; pos = both.find("\"since_ms\":", pos + 1)) {
    stamps.push_back(std::stoull(both.substr(pos + 11)));
  }
  ASSERT_EQ(stamps.size(), 3u);
  EXPECT_TRUE(std::is_sorted(stamps.begin(), stamps.end())) << both;
  EXPECT_NE(first.body.find("\"reason\":\"client\""), std::string::npos);

  // The other client sees its own one verdict and nothing of site42.
  const Response other = feed(1, "", 4);
  ASSERT_EQ(other.status, 200) << other.body;
  EXPECT_EQ(count(other.body, "\"session\":"), 1) << other.body;
  EXPECT_NE(other.body.find(cluster->session_of(theirs)), std::string::npos);
  for (const auto& t : mine) EXPECT_EQ(other.body.find(cluster->session_of(t)), std::string::npos);
  EXPECT_EQ(feed(1, "after=garbage").status, 400);
}

TEST_F(ClientApiTest, TheCliRevokesAndReadsTheFeed) {
  start(2);
  const std::string token = mint();
  const std::string cli = std::string(BUILD_DIR) + "/uritoken ";
  const std::string url = "http://127.0.0.1:" + std::to_string(cluster->node(1).port()) + kApi;
  const std::string common = " --key-file " + cluster->node(0).key_file() + " --client site42";
  std::string out;
  ASSERT_EQ(run_command(cli + "client-revoke " + url + common + " --token " + token + " 2>&1", &out), 0) << out;
  EXPECT_NE(out.find("\"revoked\""), std::string::npos) << out;
  ASSERT_GE(cluster->wait_refused_everywhere(token, 3000), 0);
  ASSERT_EQ(run_command(cli + "client-feed " + url + common + " --limit 10 2>&1", &out), 0) << out;
  EXPECT_NE(out.find(cluster->session_of(token)), std::string::npos) << out;
  // A refusal is exit status 1 and the node's answer on stderr.
  EXPECT_EQ(run_command(cli + "client-feed " + url + common + " --after nonsense 2>&1", &out), 1) << out;
  EXPECT_NE(out.find("bad-request"), std::string::npos) << out;
}

// Logout everywhere: one signed request refuses every token of a
// subscriber minted until then, on every node, and nothing else.
TEST_F(ClientApiTest, ALogoutEverywhereRefusesEveryTokenOfTheSubscriberIssuedUntilThen) {
  start(3);
  std::string secret;
  ASSERT_EQ(run_command(std::string(BUILD_DIR) + "/uritoken subscriber-keygen", &secret), 0);
  secret = secret.substr(0, 43);
  const std::string secret_file = cluster->node(0).root() + "/subscriber.secret";
  write_text(secret_file, secret + "\n", 0600);
  const auto for_account = [&](const std::string& account, long issued) {
    tokens.push_back(cluster->node(0).mint("--client site42 --ttl 600 --subscriber " + account +
                                           " --subscriber-secret-file " + secret_file + " --issued " +
                                           std::to_string(issued)));
    return tokens.back();
  };
  const long now = static_cast<long>(std::time(nullptr));
  const std::string phone = for_account("alice", now - 60), tv = for_account("alice", now - 5),
                    other = for_account("bob", now - 5), later = for_account("alice", now + 5);
  for (const auto& t : {phone, tv, other, later}) ASSERT_TRUE(cluster->served_everywhere(t));
  std::uint8_t raw[32];
  ASSERT_EQ(uritoken::base64url_decode(raw, sizeof raw, secret), 32);
  const auto hex_of = [](const uritoken::SubscriberId& id) { return uritoken::session_hex(id); };
  const std::string alice = hex_of(uritoken::subscriber_id(raw, "site42", "alice"));
  const std::string bob = hex_of(uritoken::subscriber_id(raw, "site42", "bob"));
  // Another client naming site42's subscriber reaches nothing of site42's.
  Signed foreign;
  foreign.key_id = 4;
  foreign.body = "subscriber=" + bob;
  ASSERT_EQ(send(0, sign(foreign)).status, 200);

  Signed logout;
  logout.body = "subscriber=" + alice + "&comment=logout+everywhere";
  const auto t0 = Clock::now();
  const Response ok = send(1, sign(logout));
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_NE(ok.body.find("\"subscriber\":\"" + alice + "\""), std::string::npos) << ok.body;
  ASSERT_GE(cluster->wait_refused_everywhere(phone, 3000), 0);
  ASSERT_GE(cluster->wait_refused_everywhere(tv, 3000), 0);
  const long ms = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
  EXPECT_LT(ms, 1000);
  std::printf("logout everywhere: both tokens refused on 3 nodes %ld ms after the request\n", ms);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(cluster->served_everywhere(other)) << "another subscriber";
  EXPECT_TRUE(cluster->served_everywhere(later)) << "a token issued after the logout";
  // The feed holds the subscriber verdict as the client's own.
  const Response f = feed(2, "");
  EXPECT_NE(f.body.find("\"key_id\":0,"), std::string::npos) << f.body;
  EXPECT_NE(f.body.find("\"comment\":\"logout everywhere\""), std::string::npos) << f.body;
  EXPECT_EQ(feed(2, "", 4).body.find("logout everywhere"), std::string::npos) << "another client's verdict";

  // Bob's tokens issued before a time (a device stolen last week): the older
  // one is refused everywhere, the newer one served; a later request "until
  // now" covers both, and an earlier cut-off after it changes nothing.
  const std::string bob_old = for_account("bob", now - 120), bob_new = other;
  Signed before;
  before.body = "subscriber=" + bob + "&issued_before=" + std::to_string(now - 60);
  const Response cut = send(0, sign(before));
  ASSERT_EQ(cut.status, 200) << cut.body;
  EXPECT_NE(cut.body.find("\"since_ms\":" + std::to_string((now - 60) * 1000 - 1)), std::string::npos) << cut.body;
  ASSERT_GE(cluster->wait_refused_everywhere(bob_old, 3000), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(cluster->served_everywhere(bob_new)) << "issued after the cut-off";
  // The CLI does the same; an earlier cut-off than the one in force is answered by it.
  std::string out;
  const std::string cli = std::string(BUILD_DIR) +
                          "/uritoken client-revoke http://127.0.0.1:" + std::to_string(cluster->node(2).port()) + kApi +
                          " --key-file " + cluster->node(0).key_file() + " --client site42 --subscriber " + bob;
  ASSERT_EQ(run_command(cli + " --issued-before " + std::to_string(now - 90) + " 2>&1", &out), 0) << out;
  EXPECT_NE(out.find("\"since_ms\":" + std::to_string((now - 60) * 1000 - 1)), std::string::npos) << out;
  EXPECT_TRUE(cluster->served_everywhere(bob_new));
  EXPECT_NE(run_command(cli + " --issued-before " + std::to_string(now + 3600) + " 2>&1", &out), 0);
  EXPECT_NE(out.find("bad-request"), std::string::npos) << out;
}

// The PHP, Python and Node helpers against a real node: each revokes a
// token of its own and finds it in the feed.
TEST_F(ClientApiTest, ThePhpPythonAndNodeClientsRevokeAndReadTheFeed) {
  start(2);
  const std::string api = "http://127.0.0.1:" + std::to_string(cluster->node(1).port()) + kApi;
  const std::string key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";  // key 1 of kTestKeys
  const std::string clients = std::string(SOURCE_DIR) + "/clients/";
  // Each also revokes a subscriber's tokens issued before a time (issued_before).
  const long before_s = static_cast<long>(std::time(nullptr)) - 100;
  const std::string before = std::to_string(before_s);
  const auto script = [&](const std::string& lang, const std::string& token) -> std::string {
    if (lang == "python") {
      return "python3 -c 'import sys, json; sys.path.insert(0, \"" + clients +
             "python\"); from uritoken_mint import key_from_base64url; from uritoken_client import revoke, feed; "
             "k = key_from_base64url(\"" +
             key + "\"); revoke(\"" + api + "\", k, 1, token=\"" + token +
             "\", comment=\"from python\"); print(json.dumps(revoke(\"" + api +
             "\", k, 1, subscriber=\"5ab5c21bef000001\", issued_before=" + before + "))); print(json.dumps(feed(\"" +
             api + "\", k, 1, limit=1000)))'";
    }
    if (lang == "node") {
      return "node -e 'const { keyFromBase64url } = require(\"" + clients +
             "node/uritoken_mint\"); const { revoke, feed } = require(\"" + clients +
             "node/uritoken_client\"); const k = keyFromBase64url(\"" + key + "\"); (async () => { await revoke(\"" +
             api + "\", k, 1, { token: \"" + token +
             "\", comment: \"from node\" }); "
             "console.log(JSON.stringify(await revoke(\"" +
             api + "\", k, 1, { subscriber: \"5ab5c21bef000002\", issuedBefore: " + before +
             " }))); "
             "console.log(JSON.stringify(await feed(\"" +
             api +
             "\", k, 1, { limit: 1000 }))); })()"
             ".catch((e) => { console.error(e.message); process.exit(1); })'";
    }
    return "php -r 'require \"" + clients + "php/uritoken_mint.php\"; require \"" + clients +
           "php/uritoken_client.php\"; $k = UriToken\\key_from_base64url(\"" + key + "\"); UriToken\\revoke(\"" + api +
           "\", $k, 1, [\"token\" => \"" + token +
           "\", \"comment\" => \"from php\"]); "
           "echo json_encode(UriToken\\revoke(\"" +
           api + "\", $k, 1, [\"subscriber\" => \"5ab5c21bef000003\", \"issuedBefore\" => " + before +
           "])); "
           "echo json_encode(UriToken\\feed(\"" +
           api + "\", $k, 1, [\"limit\" => 1000]));'";
  };
  for (const std::string lang : {"python", "node", "php"}) {
    const std::string token = mint();
    std::string out;
    ASSERT_EQ(run_command(script(lang, token) + " 2>&1", &out), 0) << lang << ": " << out;
    EXPECT_NE(out.find(cluster->session_of(token)), std::string::npos) << lang << ": " << out;
    EXPECT_NE(out.find("from " + lang), std::string::npos) << lang << ": " << out;
    EXPECT_NE(out.find(std::to_string(before_s * 1000 - 1)), std::string::npos) << lang << ": the cut-off, " << out;
    EXPECT_GE(cluster->wait_refused_everywhere(token, 3000), 0) << lang;
  }
}

TEST(ClientApiPlainHttp, IsRefusedUnlessAllowed) {
  HttpdOptions o;
  o.extra_conf = std::string("<Location ") + kApi + ">\n  SetHandler uritoken-client-api\n</Location>\n";
  Httpd h(o);
  h.expect_log("UT00059: client-site API request refused \\(plain-http\\)");
  ASSERT_TRUE(h.start()) << h.startup_output();
  const Response r = http_get(h.port(), kApi);
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(r.body.find("\"error\":\"plain-http\""), std::string::npos) << r.body;
  expect_server_clean(h, {});
}

}  // namespace
