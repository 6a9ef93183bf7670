// SPDX-License-Identifier: Apache-2.0
// A token bound to a subscriber on a real httpd: minted by the CLI from the
// site's secret and account id, served, its subscriber digest (never the
// account id) exported as URITOKEN_SUBSCRIBER and URITOKEN_ISSUED.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>

#include "../../mod_uritoken/core/base64url.h"
#include "../../mod_uritoken/core/token.h"
#include "cluster.h"
#include "httpd_fixture.h"

using namespace uritoken::itest;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Subscriber, ATokenBoundToAnAccountIsServedAndLoggedByItsDigestOnly) {
  HttpdOptions o;
  o.extra_conf =
      "LogFormat \"%>s sub=%{URITOKEN_SUBSCRIBER}e issued=%{URITOKEN_ISSUED}e\" sub\n"
      "CustomLog @ROOT@/logs/sub.log sub\n";
  Httpd h(o);
  h.write_doc("a.txt", "media");
  ASSERT_TRUE(h.start()) << h.startup_output();
  std::string secret;
  ASSERT_EQ(run_command(std::string(BUILD_DIR) + "/uritoken subscriber-keygen", &secret), 0);
  secret = secret.substr(0, secret.find('\n'));
  ASSERT_EQ(secret.size(), 43u);
  const std::string secret_file = h.root() + "/subscriber.secret";
  std::ofstream(secret_file) << secret << "\n";
  ASSERT_EQ(chmod(secret_file.c_str(), 0600), 0);
  const std::string account = "alice@example.com";
  const std::string issued = std::to_string(std::time(nullptr) - 5);
  const std::string token = h.mint("--client site42 --ttl 600 --subscriber " + account + " --subscriber-secret-file " +
                                   secret_file + " --issued " + issued);
  ASSERT_GT(token.size(), 54u) << token;
  EXPECT_EQ(http_get(h.port(), "/_uk_" + token + "/a.txt").status, 200);

  std::uint8_t raw[32];
  ASSERT_EQ(uritoken::base64url_decode(raw, sizeof raw, secret), 32);
  const uritoken::SubscriberId id = uritoken::subscriber_id(raw, "site42", account);
  const std::string hex = uritoken::session_hex(id);
  const std::string log = slurp(h.root() + "/logs/sub.log");
  EXPECT_NE(log.find("200 sub=" + hex + " issued=" + issued), std::string::npos) << log;
  std::string inspected;
  ASSERT_EQ(run_command(std::string(BUILD_DIR) + "/uritoken inspect " + token, &inspected), 0);
  EXPECT_NE(inspected.find("subscriber: " + hex), std::string::npos) << inspected;
  for (const std::string& file : {h.error_log(), h.access_log(), log}) {
    EXPECT_EQ(file.find(account), std::string::npos) << "the account id reached a log";
  }
  // A secret file others can read is refused, as the key file is.
  ASSERT_EQ(chmod(secret_file.c_str(), 0644), 0);
  std::string out;
  EXPECT_NE(
      run_command(std::string(BUILD_DIR) + "/uritoken mint --key-file " + h.key_file() +
                      " --client site42 --ttl 60 --subscriber x --subscriber-secret-file " + secret_file + " 2>&1",
                  &out),
      0);
  EXPECT_NE(out.find(secret_file), std::string::npos) << out;
  expect_server_clean(h, {token});
}

// Account sharing on three real nodes (UriTokenSubscriberSharing site42
// places=2): a member hands out the login and friends in four networks
// each get a token of their own. Every node refuses every token of that
// subscriber issued until the verdict (including one never used), serves
// the token the site mints after it, and leaves a family (three devices
// in two places) and the other site's subscribers alone; the status page,
// its JSON and Prometheus show the subscriber verdict beside the tokens';
// a node switched to Shadow serves and reports it.
TEST(SubscriberCluster, AnAccountSharedAcrossTokensIsRefusedEverywhereAndTheNextLoginIsServed) {
  Cluster cluster(3);
  for (int i = 0; i < 3; ++i) cluster.add_node_conf(i, "UriTokenSubscriberSharing site42 places=2\n");
  cluster.expect_log("UT00010: token refused \\(revoked\\)");
  ASSERT_TRUE(cluster.start_all()) << cluster.startup_output();
  std::string secret;
  ASSERT_EQ(run_command(std::string(BUILD_DIR) + "/uritoken subscriber-keygen", &secret), 0);
  const std::string secret_file = cluster.node(0).root() + "/subscriber.secret";
  write_text(secret_file, secret.substr(0, 43) + "\n", 0600);
  std::vector<std::string> tokens;
  const auto token_of = [&](const std::string& client, const std::string& account, long issued) {
    tokens.push_back(cluster.node(0).mint("--client " + client + " --ttl 600 --subscriber " + account +
                                          " --subscriber-secret-file " + secret_file + " --issued " +
                                          std::to_string(issued)));
    return tokens.back();
  };
  const long now = static_cast<long>(std::time(nullptr));
  std::vector<std::string> friends;
  for (int k = 0; k < 4; ++k) friends.push_back(token_of("site42", "sharer", now - 30 + k));
  const std::string unused = token_of("site42", "sharer", now - 20);
  const std::vector<std::string> family = {token_of("site42", "family", now - 10),
                                           token_of("site42", "family", now - 9),
                                           token_of("site42", "family", now - 8)};
  const std::string other_site = token_of("other", "sharer", now - 10);  // another site, no subscriber limit

  const auto t0 = Clock::now();
  for (int k = 0; k < 4; ++k) {
    EXPECT_EQ(cluster.get(k % 3, friends[k], kFiveNetworks[k]).status, 200) << "friend " << k;
  }
  EXPECT_EQ(cluster.get(0, family[0], "198.51.100.7").status, 200);  // the TV and the tablet at home
  EXPECT_EQ(cluster.get(1, family[1], "198.51.100.7").status, 200);
  EXPECT_EQ(cluster.get(2, family[2], "203.0.113.9").status, 200);  // a phone on mobile data
  for (std::size_t k = 0; k < 5; ++k) cluster.get(static_cast<int>(k % 3), other_site, kFiveNetworks[k]);
  // Every token of the sharer issued until the verdict, on every node.
  for (const auto& t : friends) ASSERT_GE(cluster.wait_refused_everywhere(t, 5000, "198.51.100.7"), 0) << t;
  const long ms = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
  std::printf("account shared from 4 networks: every token refused on 3 nodes %ld ms after the first use\n", ms);
  EXPECT_GE(cluster.wait_refused_everywhere(unused, 2000), 0) << "a token of the subscriber never used";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (const auto& t : family) EXPECT_TRUE(cluster.served_everywhere(t)) << "the family";
  EXPECT_EQ(cluster.get(1, other_site, "198.51.100.7").status, 403) << "the other site's token is shared itself";
  // The site logs the member in again after the verdict: served.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const std::string next = token_of("site42", "sharer", static_cast<long>(std::time(nullptr)));
  EXPECT_TRUE(cluster.served_everywhere(next)) << "a token issued after the verdict";

  // Beside the token verdicts: the page, its JSON, Prometheus.
  const Response page = http_get(cluster.node(2).port(), "/uritoken-status");
  EXPECT_NE(page.body.find("and subscribers (1)"), std::string::npos) << page.body.substr(0, 3000);
  EXPECT_NE(page.body.find("account shared across its tokens"), std::string::npos);
  const Response json = http_get(cluster.node(2).port(), "/uritoken-status?json");
  EXPECT_NE(json.body.find("\"kind\":\"subscriber\",\"state\":\"blocked\",\"client\":\"site42\""), std::string::npos)
      << json.body.substr(0, 3000);
  const Response metrics = http_get(cluster.node(2).port(), "/uritoken-status?metrics");
  EXPECT_NE(metrics.body.find("uritoken_blocked_subscribers 1\n"), std::string::npos) << metrics.body.substr(0, 2000);
  std::size_t decided = 0;
  for (int i = 0; i < 3; ++i) decided += cluster.node(i).error_log().find("UT00064: subscriber ") != std::string::npos;
  EXPECT_GE(decided, 1u);

  // Each node applies its own mode to the subscriber verdict: switched to
  // Shadow, node 2 serves the sharer's token and reports it; node 0 refuses.
  cluster.expect_log("UT00018: .* is (suspect|dead)");
  ASSERT_TRUE(cluster.switch_mode(2, "Shadow"));
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline && cluster.get(2, friends[0], "198.51.100.7").status != 200) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(cluster.get(2, friends[0], "198.51.100.7").status, 200) << "the Shadow node serves";
  EXPECT_NE(cluster.access_log(2).find("200 status=valid shadow=revoked"), std::string::npos) << cluster.access_log(2);
  EXPECT_TRUE(cluster.refuses_as_revoked(0, friends[0])) << "an Enforce node still refuses";
  // The covered tokens it serves count for no new verdict (which would
  // cut off the token the site minted after the first one).
  const auto verdicts = [&] {
    std::size_t n = 0;
    for (int i = 0; i < 3; ++i) {
      const std::string log = cluster.node(i).error_log();
      for (auto at = log.find("UT00064: "); at != std::string::npos; at = log.find("UT00064: ", at + 1)) ++n;
    }
    return n;
  };
  const std::size_t before = verdicts();
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));  // past the owners' settle time
  for (int k = 0; k < 4; ++k) EXPECT_EQ(cluster.get(2, friends[k], kFiveNetworks[k]).status, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(verdicts(), before) << "a verdict again from uses it covers";
  for (int i = 0; i < 2; ++i)
    EXPECT_EQ(cluster.get(i, next, "198.51.100.7").status, 200) << "the next login, node " << i;
  expect_nodes_clean(cluster, tokens);
}

}  // namespace
