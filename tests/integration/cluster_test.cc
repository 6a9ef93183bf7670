// SPDX-License-Identifier: Apache-2.0
// Link-sharing detection on real httpd nodes on loopback: several httpd
// instances with mod_uritoken, each with its sidecar, gossiping over UDP.
// Client networks are simulated through mod_remoteip: the test is a
// trusted proxy on 127.0.0.1 that sends X-Forwarded-For (the Cluster
// class is in cluster.h, shared with the status page's browser test).
#include <gtest/gtest.h>

#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cluster.h"
#include "../../mod_uritoken/cluster/shared_state.h"
#include "../location_db.h"
#include "httpd_fixture.h"

using namespace uritoken::itest;
using uritoken::SharedState;

namespace {

class ClusterTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (cluster) expect_nodes_clean(*cluster, tokens);
  }
  std::string mint() {
    tokens.push_back(cluster->mint());
    return tokens.back();
  }
  std::unique_ptr<Cluster> cluster;
  std::vector<std::string> tokens;
};

TEST_F(ClusterTest, TokenUsedFromFiveNetworksIsRefusedOnEveryNode) {
  cluster = std::make_unique<Cluster>(3);
  ASSERT_TRUE(cluster->start_all()) << cluster->startup_output();
  cluster->expect_log(R"(UT00010: )");
  const std::string shared = mint();
  const std::string honest = mint();
  ASSERT_TRUE(cluster->served_everywhere(shared));

  cluster->share_widely(shared);
  EXPECT_GE(cluster->wait_refused_everywhere(shared), 0) << cluster->node(0).error_log();
  // The refusal is the revocation, logged with its id, and the verdict is in the environment.
  EXPECT_TRUE(cluster->refuses_as_revoked(2, shared)) << cluster->node(2).error_log();
  // A token used from one network by one family stays served everywhere.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(cluster->get(i, honest, "198.51.100.20").status, 200);
    EXPECT_EQ(cluster->get(i, honest, "198.51.100.21", "seg2.ts").status, 200);
  }
}

// Places, with Debian's location database, as an admin installs it: a
// dual-stack home (Comcast) whose phone moves to dual-stack cellular
// (T-Mobile US, a new carrier-NAT address on the way) is five networks in
// two places and stays served on every node, where the /24 rule revoked
// it; a forum post read in four other ASes is revoked everywhere, and the
// page names those ASes. Every address arrives as a client's would behind
// a proxy: X-Forwarded-For, resolved by mod_remoteip.
TEST_F(ClusterTest, DualStackHandoverIsServedAndAForumPostIsRevokedByPlaces) {
  cluster = std::make_unique<Cluster>(3);
  ASSERT_TRUE(cluster->start_all()) << cluster->startup_output();
  cluster->expect_log(R"(UT00010: )");
  const std::string honest = mint(), shared = mint();
  const std::vector<std::string> handover = {"2601:0:1234::7",   "24.34.17.8", "2601:0:1234::8",
                                             "2607:fb90:1:2::5", "172.58.3.9", "172.59.200.4"};
  for (std::size_t k = 0; k < handover.size(); ++k) {
    EXPECT_EQ(cluster->get(static_cast<int>(k % 3), honest, handover[k]).status, 200) << handover[k];
  }
  const std::vector<std::string> forum = {"2601:0:5678::3", "2.0.5.8", "2a06:f0c0:1::7", "62.155.3.1", "81.2.69.33"};
  for (std::size_t k = 0; k < forum.size(); ++k) cluster->get(static_cast<int>(k % 3), shared, forum[k]);
  // Probed from the owner's home: the probe adds no place.
  ASSERT_GE(cluster->wait_refused_everywhere(shared, 5000, forum[0]), 0) << cluster->node(0).error_log();
  // A wrong verdict on the honest token would have spread by now (ms).
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  for (int i = 0; i < 3; ++i) {
    for (const auto& ip : handover) EXPECT_EQ(cluster->get(i, honest, ip, "seg2.ts").status, 200) << i << " " << ip;
  }
  // The evidence is what the owner held when it decided: four or five of
  // the five places, each an AS of the database.
  const Response j = http_get(cluster->node(1).port(), "/uritoken-status?json");
  int named = 0;
  for (const char* place : {"AS3215 Orange S.A.", "AS3352 TELEFONICA DE ESPANA S.A.U.", "AS3320 Deutsche Telekom AG",
                            "AS20712 Andrews & Arnold Ltd", "AS7922 COMCAST-7922"}) {
    named += j.body.find(std::string("{\"place\":\"") + place + "\"") != std::string::npos ? 1 : 0;
  }
  EXPECT_GE(named, 4) << j.body;
  EXPECT_EQ(j.body.find("{\"place\":\"net "), std::string::npos) << "a place not from the database: " << j.body;
  EXPECT_EQ(j.body.find(cluster->session_of(honest)), std::string::npos)
      << "the honest token is not listed: " << j.body;
}

// The same on a location database the test writes itself (libloc's
// writer, tests/location_db.h), as UriTokenLocationDatabase loads it: a
// dual-stack home that moves to the mobile carrier and a viewer behind a
// farm (a new /24 per request across its /15) are served; the owner and
// three strangers in the other ASes are revoked everywhere, named from this
// database with their country; and the database's anonymous-proxy flag
// makes a network shared: home and phone through two VPN providers (four
// ASes, which would be four places) stay served, while three places and a
// VPN are revoked (the shared group tips them).
TEST_F(ClusterTest, PlacesComeFromTheConfiguredDatabase) {
  cluster = std::make_unique<Cluster>(3);
  const std::string db = cluster->node(0).root() + "/example.db";
  ASSERT_EQ(uritoken::testdata::write_example_location_db(db), "");
  for (int i = 0; i < 3; ++i) cluster->add_node_conf(i, "UriTokenLocationDatabase " + db + "\n");
  ASSERT_TRUE(cluster->start_all()) << cluster->startup_output();
  cluster->expect_log(R"(UT00010: |UT00054: )");  // the file is new; Debian's is not used
  const std::string home = mint(), farm = mint(), forum = mint(), vpn2 = mint(), vpn3 = mint();
  const std::vector<std::string> handover = {"2001:db8:100:1::5", "198.51.100.5", "2001:db8:100:1::6",
                                             "2001:db8:200:9::1", "203.0.113.77", "203.0.113.78"};
  for (std::size_t k = 0; k < handover.size(); ++k) {
    EXPECT_EQ(cluster->get(static_cast<int>(k % 3), home, handover[k]).status, 200) << handover[k];
  }
  for (int k = 0; k < 12; ++k) {
    EXPECT_EQ(cluster->get(k % 3, farm, "198.18." + std::to_string(k * 19) + ".4").status, 200) << k;
  }
  const std::vector<std::string> post = {"198.51.100.9", "203.0.113.5", "192.0.2.44", "198.19.1.1"};
  for (std::size_t k = 0; k < post.size(); ++k) cluster->get(static_cast<int>(k % 3), forum, post[k]);
  for (const char* a : {"198.51.100.30", "203.0.113.30", "192.88.99.7", "2001:db8:400::7"}) cluster->get(1, vpn2, a);
  for (const char* a : {"198.51.100.31", "203.0.113.31", "192.0.2.31", "192.88.99.8"}) cluster->get(2, vpn3, a);
  ASSERT_GE(cluster->wait_refused_everywhere(forum, 5000, post[0]), 0) << cluster->node(0).error_log();
  ASSERT_GE(cluster->wait_refused_everywhere(vpn3, 5000, "198.51.100.31"), 0) << cluster->node(0).error_log();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  for (int i = 0; i < 3; ++i) {
    for (const auto& a : handover) EXPECT_EQ(cluster->get(i, home, a, "seg2.ts").status, 200) << i << " " << a;
    EXPECT_EQ(cluster->get(i, farm, "198.19.7.7", "seg2.ts").status, 200) << i;
    EXPECT_EQ(cluster->get(i, vpn2, "198.51.100.30", "seg2.ts").status, 200) << i;
  }
  const Response j = http_get(cluster->node(0).port(), "/uritoken-status?json");
  for (const char* place : {"{\"place\":\"AS64500 Example Cable\",\"country\":\"US\"",
                            "{\"place\":\"AS64501 Example Mobile\",\"country\":\"US\"",
                            "{\"place\":\"AS64502 Example Telecom\",\"country\":\"DE\"",
                            "{\"place\":\"AS64503 Example Farm\",\"country\":\"US\""}) {
    EXPECT_NE(j.body.find(place), std::string::npos) << place << " in " << j.body;
  }
  EXPECT_NE(j.body.find("\"location\":{\"database\":\"" + db + "\""), std::string::npos) << j.body;
  EXPECT_NE(j.body.find("\"stale\":false"), std::string::npos) << "written just now: " << j.body;
  for (const std::string& served : {home, farm, vpn2}) {
    EXPECT_EQ(j.body.find(cluster->session_of(served)), std::string::npos) << j.body;
  }
}

// UriTokenClientSharing on every node: site42's tokens are shared from
// two places and half a place more (three concurrent places), while the
// other client's token, used from the same three places, keeps the
// server's limit of 3 and is served.
TEST_F(ClusterTest, AClientsOwnLimitAppliesToItsTokensOnly) {
  cluster = std::make_unique<Cluster>(3);
  for (int i = 0; i < 3; ++i) cluster->add_node_conf(i, "UriTokenClientSharing site42 places=2\n");
  ASSERT_TRUE(cluster->start_all()) << cluster->startup_output();
  cluster->expect_log(R"(UT00010: )");
  const std::string strict = mint();
  const std::string other = cluster->node(0).mint("--client other --ttl 600");
  ASSERT_FALSE(other.empty());
  tokens.push_back(other);
  const std::vector<std::string> places = {"2601:0:5678::3", "2.0.5.8", "62.155.3.1"};  // Comcast, Orange, Telekom
  for (const std::string& token : {strict, other}) {
    for (std::size_t k = 0; k < places.size(); ++k) {
      EXPECT_EQ(cluster->get(static_cast<int>(k % 3), token, places[k]).status, 200) << places[k];
    }
  }
  ASSERT_GE(cluster->wait_refused_everywhere(strict, 5000, places[0]), 0) << cluster->node(0).error_log();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  for (int i = 0; i < 3; ++i) {
    for (const auto& ip : places) EXPECT_EQ(cluster->get(i, other, ip, "seg2.ts").status, 200) << i << " " << ip;
  }
  const Response j = http_get(cluster->node(2).port(), "/uritoken-status?json");
  EXPECT_NE(j.body.find("\"score\":3.00,\"limit\":2"), std::string::npos) << j.body;
  EXPECT_EQ(j.body.find(cluster->session_of(other)), std::string::npos) << j.body;
}

// The bulk signal on three real nodes: a scraper on one network, spread
// over the nodes, fetches far more than UriTokenBulkLimit (here 20
// requests a minute, for a short test); each node's workers count its
// requests and bytes, the refresh sightings carry them to the owners, and
// the verdict (reason bulk) is refused where UriTokenBulk is Enforce and
// served, marked, where it is Shadow. A player's token beside it is served.
TEST_F(ClusterTest, AScraperIsFoundInBulkUseAndEachNodeAppliesItsBulkMode) {
  cluster = std::make_unique<Cluster>(3);
  for (int i = 0; i < 3; ++i) {
    cluster->add_node_conf(i, std::string("UriTokenBulk ") + (i == 2 ? "Shadow" : "Enforce") +
                                  "\nUriTokenBulkLimit requests=20 bytes=0\n");
  }
  ASSERT_TRUE(cluster->start_all()) << cluster->startup_output();
  cluster->expect_log(R"(UT00058: |UT00057: )");
  const std::string scraper = mint();
  const std::string player = mint();
  for (int k = 0; k < 60; ++k) ASSERT_EQ(cluster->get(k % 3, scraper, "198.51.100.7").status, 200) << k;
  EXPECT_EQ(cluster->get(0, player, "203.0.113.9").status, 200);
  // The counts travel with the next sighting the repeat filter lets through.
  std::this_thread::sleep_for(std::chrono::milliseconds(5300));  // SharedState::kRepeatMs + 300
  for (int i = 0; i < 3; ++i) cluster->get(i, scraper, "198.51.100.7");
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  bool refused = false;
  while (Clock::now() < deadline && !refused) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    refused = cluster->get(0, scraper, "198.51.100.7").status == 403 &&
              cluster->get(1, scraper, "198.51.100.7").status == 403;
  }
  ASSERT_TRUE(refused) << cluster->node(0).error_log() << cluster->node(1).error_log();
  for (int i = 0; i < 2; ++i) {
    EXPECT_NE(cluster->node(i).error_log().find("UT00058: token refused (bulk-use): client site42, key 1, session " +
                                                cluster->session_of(scraper)),
              std::string::npos)
        << cluster->node(i).error_log();
  }
  EXPECT_EQ(cluster->get(2, scraper, "198.51.100.7").status, 200) << "Shadow serves";
  for (int i = 0; i < 3; ++i) EXPECT_EQ(cluster->get(i, player, "203.0.113.9").status, 200) << "the player, node " << i;
  const Response j = http_get(cluster->node(2).port(), "/uritoken-status?json");
  EXPECT_NE(j.body.find("\"reason\":\"bulk\""), std::string::npos) << j.body;
  EXPECT_NE(j.body.find("\"bulk\":{\"requests_per_min\":"), std::string::npos) << j.body;
  EXPECT_EQ(j.body.find(cluster->session_of(player)), std::string::npos) << j.body;
  const Response page = http_get(cluster->node(0).port(), "/uritoken-status");
  EXPECT_NE(page.body.find("<b>bulk use</b>: "), std::string::npos) << page.body;
  EXPECT_NE(page.body.find(" a minute over the last two minutes (limit 20 requests)"), std::string::npos) << page.body;
  std::ofstream(cluster->node(0).root() + "/status.html") << page.body;  // to look at (URITOKEN_KEEP_TEST_DIRS=1)
  const Response metrics = http_get(cluster->node(1).port(), "/uritoken-status?metrics");
  EXPECT_NE(metrics.body.find("uritoken_verdicts{reason=\"bulk\"} 1"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("uritoken_refusals_total{reason=\"bulk-use\"} "), std::string::npos) << metrics.body;
  // Shadow marks what it serves (the access log's %{URITOKEN_SHADOW}e).
  EXPECT_NE(cluster->access_log(2).find("bulk-use"), std::string::npos) << cluster->access_log(2);
}

TEST_F(ClusterTest, ProxyAndCarrierNatUsersAreNotRevoked) {
  cluster = std::make_unique<Cluster>(3);
  ASSERT_TRUE(cluster->start_all()) << cluster->startup_output();
  cluster->expect_log("UT00010: ");  // the widely shared control token only: the others are served below
  const std::string behind_proxy = mint();
  const std::string behind_cgnat = mint();
  const std::string shared = mint();
  ASSERT_TRUE(cluster->served_everywhere(shared));
  // Many users of one proxy network, on every node.
  for (int k = 0; k < 30; ++k) {
    EXPECT_EQ(cluster->get(k % 3, behind_proxy, "81.2.69." + std::to_string(10 + k)).status, 200);
  }
  // Carrier-grade NAT hands out addresses from many /24s of 100.64.0.0/10.
  for (int k = 0; k < 12; ++k) {
    EXPECT_EQ(cluster->get(k % 3, behind_cgnat, "100.64." + std::to_string(k * 7) + ".9").status, 200);
  }
  // A widely shared token sent after them is revoked everywhere: by then the
  // cluster has seen and judged the proxy and CGNAT sightings too.
  cluster->share_widely(shared);
  ASSERT_GE(cluster->wait_refused_everywhere(shared), 0);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(cluster->get(i, behind_proxy, "81.2.69.200").status, 200) << "node " << i;
    EXPECT_EQ(cluster->get(i, behind_cgnat, "100.64.3.3").status, 200) << "node " << i;
  }
}

TEST_F(ClusterTest, KilledSidecarIsRestartedAndKeepsRevocations) {
  cluster = std::make_unique<Cluster>(3);
  ASSERT_TRUE(cluster->start_all()) << cluster->startup_output();
  cluster->expect_log(R"(UT00010: |UT00012: |UT00018: .* is (suspect|dead))");
  const std::string first = mint();
  ASSERT_TRUE(cluster->served_everywhere(first));
  cluster->share_widely(first);
  ASSERT_GE(cluster->wait_refused_everywhere(first), 0);

  const pid_t old_pid = cluster->sidecar_pid(0);
  ASSERT_GT(old_pid, 0);
  const std::size_t mark = cluster->node(0).error_log().size();
  ASSERT_EQ(kill(old_pid, SIGKILL), 0);
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline && (cluster->sidecar_pid(0) == old_pid || cluster->sidecar_pid(0) == 0)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE(cluster->sidecar_pid(0), old_pid) << "sidecar not restarted";
  EXPECT_NE(cluster->node(0).error_log().find("UT00012"), std::string::npos);
  EXPECT_TRUE(cluster->refuses_as_revoked(0, first));
  // The new sidecar works: a second shared token is revoked everywhere.
  ASSERT_TRUE(cluster->sees_every_member(0, mark)) << cluster->startup_output();
  // The status page counts the restart (the parent's count, in shared memory).
  const std::string metrics = http_get(cluster->node(0).port(), "/uritoken-status?metrics").body;
  EXPECT_NE(metrics.find("uritoken_sidecar_restarts_total 1\n"), std::string::npos) << metrics;
  const std::string second = mint();
  ASSERT_TRUE(cluster->served_everywhere(second));
  cluster->share_widely(second);
  EXPECT_GE(cluster->wait_refused_everywhere(second), 0);
}

TEST_F(ClusterTest, NodeDownDuringRevocationLearnsItWhenBack) {
  cluster = std::make_unique<Cluster>(3);
  ASSERT_TRUE(cluster->start_all()) << cluster->startup_output();
  cluster->expect_log(R"(UT00010: |UT00018: .* is (suspect|dead))");
  const std::string token = mint();
  ASSERT_TRUE(cluster->served_everywhere(token));
  cluster->node(2).stop();
  for (std::size_t k = 0; k < kFiveNetworks.size(); ++k) cluster->get(static_cast<int>(k % 2), token, kFiveNetworks[k]);
  const auto refused_on = [&](int i) { return cluster->refuses_as_revoked(i, token); };
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline && !(refused_on(0) && refused_on(1))) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(refused_on(0) && refused_on(1));

  const std::size_t mark = cluster->node(2).error_log().size();
  ASSERT_TRUE(cluster->node(2).start()) << cluster->node(2).startup_output();
  (void)mark;
  deadline = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < deadline && !refused_on(2)) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(refused_on(2)) << cluster->node(2).error_log();
}

TEST_F(ClusterTest, FullRestartKeepsEveryRevocation) {
  cluster = std::make_unique<Cluster>(3);
  ASSERT_TRUE(cluster->start_all()) << cluster->startup_output();
  cluster->expect_log(R"(UT00010: |UT00018: .* is (suspect|dead))");
  const std::string token = mint();
  ASSERT_TRUE(cluster->served_everywhere(token));
  cluster->share_widely(token);
  ASSERT_GE(cluster->wait_refused_everywhere(token), 0);
  for (int i = 0; i < 3; ++i) cluster->node(i).stop();
  ASSERT_TRUE(cluster->start_all()) << cluster->startup_output();
  // Refused from the very first request: the journal is loaded before any child starts.
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(cluster->refuses_as_revoked(i, token)) << "node " << i;
}

TEST_F(ClusterTest, GracefulRestartKeepsRevocationsAndDetection) {
  cluster = std::make_unique<Cluster>(2);
  ASSERT_TRUE(cluster->start_all()) << cluster->startup_output();
  cluster->expect_log(R"(UT00010: |UT00018: .* is (suspect|dead))");
  const std::string before = mint();
  ASSERT_TRUE(cluster->served_everywhere(before));
  cluster->share_widely(before);
  ASSERT_GE(cluster->wait_refused_everywhere(before), 0);
  ASSERT_TRUE(cluster->node(0).graceful());
  EXPECT_TRUE(cluster->refuses_as_revoked(0, before));
  // Shared at once, while node 0's new sidecar is still finding node 1:
  // until then each side judges its own sightings alone, and the ones the
  // other side owns reach it when it comes alive (re-homing).
  const std::string after = mint();
  ASSERT_TRUE(cluster->served_everywhere(after));
  cluster->share_widely(after);
  const long ms = cluster->wait_refused_everywhere(after);
  EXPECT_GE(ms, 0);
  EXPECT_LT(ms, 2000) << "revocation right after a graceful restart";
}

TEST_F(ClusterTest, ShadowModeReportsButServes) {
  cluster = std::make_unique<Cluster>(1, "Shadow", /*gossip=*/false);
  ASSERT_TRUE(cluster->start_all()) << cluster->startup_output();
  const std::string token = mint();
  cluster->share_widely(token);
  // The verdict shows in the environment (and so in the access log) while
  // the token keeps working.
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  bool reported = false;
  while (Clock::now() < deadline && !reported) {
    EXPECT_EQ(cluster->get(0, token, "198.51.100.7").status, 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    reported = cluster->node(0).error_log().find("would be revoked (shadow mode)") != std::string::npos;
  }
  EXPECT_TRUE(reported) << cluster->node(0).error_log();
  EXPECT_EQ(cluster->get(0, token, "198.51.100.7").status, 200);
}

TEST_F(ClusterTest, SingleServerWithoutGossipRevokesLocally) {
  cluster = std::make_unique<Cluster>(1, "Enforce", /*gossip=*/false);
  ASSERT_TRUE(cluster->start_all()) << cluster->startup_output();
  cluster->expect_log(R"(UT00010: )");
  const std::string token = mint();
  ASSERT_TRUE(cluster->served_everywhere(token));
  cluster->share_widely(token);
  EXPECT_GE(cluster->wait_refused_everywhere(token), 0);
}

// Loss and partitions on real sockets: the scenario runs in a child process
// inside its own network namespace (its own loopback), where nftables rules
// drop gossip packets; the host's interfaces are never touched, and the
// namespace disappears with the child. Needs root and nft.
std::string run_in_private_network(const std::function<std::string()>& scenario) {
  int fds[2];
  if (pipe(fds) != 0) return "pipe failed";
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    std::string error;
    std::string out;
    if (unshare(CLONE_NEWNET) != 0) {
      error = "unshare(CLONE_NEWNET) failed";
    } else if (run_command("ip link set lo up 2>&1", &out) != 0) {
      error = "ip link set lo up: " + out;
    } else {
      error = scenario();
    }
    if (write(fds[1], error.data(), error.size()) < 0) _exit(3);
    _exit(error.empty() ? 0 : 1);
  }
  close(fds[1]);
  std::string error;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) error.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status)) return "scenario process died";
  return WEXITSTATUS(status) == 0 ? std::string() : (error.empty() ? "scenario failed" : error);
}

bool can_make_private_networks(std::string* why) {
  std::string out;
  if (geteuid() != 0) {
    *why = "needs root to create a network namespace";
  } else if (run_command("command -v nft && command -v ip", &out) != 0) {
    *why = "needs nft (nftables) and ip (iproute2)";
  } else {
    return true;
  }
  return false;
}

bool nft(const std::string& args) {
  std::string out;
  return run_command("nft " + args + " 2>&1", &out) == 0;
}

TEST(ClusterNetworkTest, NodeCutOffByAPartitionCatchesUpWhenItHeals) {
  std::string why;
  if (!can_make_private_networks(&why)) GTEST_SKIP() << "partition test skipped: " << why;
  const std::string error = run_in_private_network([]() -> std::string {
    Cluster cluster(3);
    if (!cluster.start_all()) return "cluster did not start: " + cluster.startup_output();
    const std::string port = std::to_string(cluster.gossip_port(2));
    if (!nft("add table inet uttest") || !nft("'add chain inet uttest input { type filter hook input priority 0; }'") ||
        !nft("add rule inet uttest input udp dport " + port + " drop") ||
        !nft("add rule inet uttest input udp sport " + port + " drop")) {
      return "nft rules failed";
    }
    const std::string token = cluster.mint();
    if (!cluster.served_everywhere(token)) return "a fresh token was not served on every node";
    for (std::size_t k = 0; k < kFiveNetworks.size(); ++k)
      cluster.get(static_cast<int>(k % 2), token, kFiveNetworks[k]);
    const auto refused_on = [&](int i) { return cluster.refuses_as_revoked(i, token); };
    auto deadline = Clock::now() + std::chrono::seconds(5);
    while (Clock::now() < deadline && !(refused_on(0) && refused_on(1)))
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!refused_on(0) || !refused_on(1)) return "not revoked on the connected nodes";
    std::this_thread::sleep_for(std::chrono::seconds(2));
    if (cluster.get(2, token, "198.51.100.7").status != 200) {
      return "the partition did not cut node 2 off (it stopped serving the token)";
    }
    nft("delete table inet uttest");
    const auto healed = Clock::now();
    while (Clock::now() - healed < std::chrono::seconds(5) && !refused_on(2)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!refused_on(2)) return "node 2 did not learn the revocation within 5 s of the partition healing";
    return "";
  });
  EXPECT_EQ(error, "");
}

TEST(ClusterNetworkTest, RevocationReachesEveryNodeDespiteThirtyPercentLoss) {
  std::string why;
  if (!can_make_private_networks(&why)) GTEST_SKIP() << "loss test skipped: " << why;
  const std::string error = run_in_private_network([]() -> std::string {
    Cluster cluster(4);
    if (!cluster.start_all()) return "cluster did not start: " + cluster.startup_output();
    // Every gossip packet between the nodes is dropped with probability 0.3.
    // Counters on an accept-all rule before the drops and on the drops show
    // how many packets there were and how many were really lost.
    std::string ports;
    for (int i = 0; i < cluster.size(); ++i) ports += (i ? ", " : "") + std::to_string(cluster.gossip_port(i));
    std::string rules =
        "add table inet uttest\nadd chain inet uttest input { type filter hook input priority 0; }\n"
        "add rule inet uttest input udp dport { " +
        ports + " } counter\n";
    for (int i = 0; i < cluster.size(); ++i) {
      rules += "add rule inet uttest input udp dport " + std::to_string(cluster.gossip_port(i)) +
               " numgen random mod 100 < 30 counter drop\n";
    }
    const std::string rules_file = "/tmp/uritoken-loss-" + std::to_string(getpid()) + ".nft";
    std::ofstream(rules_file) << rules;
    const bool applied = nft("-f " + rules_file);
    std::remove(rules_file.c_str());
    if (!applied) return "nft rules failed";
    // Players fetch segment after segment, so each network shows up again
    // and again; a sighting lost with its packet is reported again with the
    // first request after the workers' repeat filter has forgotten it
    // (SharedState::kRepeatMs, 5 s). Sightings are not acknowledged yet
    // (issue 21): with rounds 1.1 s apart, i.e. one round in effect, 6 of
    // 25 runs left a token unrevoked.
    std::vector<std::string> tokens;
    for (int t = 0; t < 5; ++t) tokens.push_back(cluster.mint());
    for (int round = 0; round < 3; ++round) {
      if (round > 0) std::this_thread::sleep_for(std::chrono::milliseconds(SharedState::kRepeatMs + 300));
      for (const auto& token : tokens) cluster.share_widely(token);
    }
    for (std::size_t t = 0; t < tokens.size(); ++t) {
      if (cluster.wait_refused_everywhere(tokens[t], 5000) >= 0) continue;
      std::string missed = "token " + std::to_string(t) + " (session " + cluster.session_of(tokens[t]) +
                           ") was not revoked on every node within 5 s; refused on:";
      for (int i = 0; i < cluster.size(); ++i) {
        if (cluster.refuses_as_revoked(i, tokens[t])) missed += " node " + std::to_string(i);
      }
      // What each node's sidecar knows: its verdicts and sighting counters.
      for (int i = 0; i < cluster.size(); ++i) {
        missed += "\n--- node " + std::to_string(i) + ":";
        std::istringstream status(cluster.control(i, "status\n"));
        for (std::string line; std::getline(status, line);) {
          if (line.rfind("blocked\t", 0) == 0 || line.find("name=sightings_") != std::string::npos)
            missed += "\n" + line;
        }
      }
      return missed;
    }
    // The loss was real: about 30% of the gossip packets were dropped.
    std::string listing;
    if (run_command("nft list chain inet uttest input", &listing) != 0) return "nft list failed: " + listing;
    long seen = 0, dropped = 0;
    std::istringstream lines(listing);
    for (std::string line; std::getline(lines, line);) {
      const auto at = line.find("counter packets ");
      if (at == std::string::npos) continue;
      (line.find(" drop") != std::string::npos ? dropped : seen) += std::atol(line.c_str() + at + 16);
    }
    const std::string counts = std::to_string(dropped) + " of " + std::to_string(seen) + " gossip packets dropped";
    if (seen < 100) return "too few gossip packets to judge the loss: " + counts + "\n" + listing;
    // Binomial: within four standard deviations of 30% (a false alarm about
    // once in 15,000 runs).
    const double sigma = std::sqrt(0.3 * 0.7 * static_cast<double>(seen));
    if (std::abs(static_cast<double>(dropped) - 0.3 * static_cast<double>(seen)) > 4 * sigma) {
      return "not about 30% loss: " + counts + "\n" + listing;
    }
    std::fprintf(stderr, "loss test: %s\n", counts.c_str());
    return "";
  });
  EXPECT_EQ(error, "");
}

// Directive mistakes stop `httpd -t` with a message naming the directive.
struct BadClusterConf {
  std::string conf;
  std::string expected;
};

class ClusterConfigTest : public ::testing::TestWithParam<BadClusterConf> {};

TEST_P(ClusterConfigTest, IsRefusedWithANamedDirective) {
  HttpdOptions o;
  o.extra_conf = GetParam().conf;
  Httpd h(o);
  write_text(h.root() + "/open.key", std::string(64, 'a') + "\n", 0644);
  write_text(h.root() + "/short.key", "abcd\n", 0600);
  EXPECT_FALSE(h.start());
  EXPECT_NE(h.startup_output().find(GetParam().expected), std::string::npos) << h.startup_output();
}

INSTANTIATE_TEST_SUITE_P(
    Directives, ClusterConfigTest,
    ::testing::Values(
        BadClusterConf{"UriTokenSharing Enforce\n", "UriTokenStateDir"},
        BadClusterConf{"UriTokenSharing Sometimes\n", "UriTokenSharing: 'Sometimes' is not allowed"},
        BadClusterConf{"UriTokenGossipListen localhost\n", "UriTokenGossipListen: 'localhost'"},
        BadClusterConf{"UriTokenGossipPeer 10.0.0.1:99999\n", "UriTokenGossipPeer: '10.0.0.1:99999'"},
        BadClusterConf{"UriTokenClusterKeyFile open.key\n", "chmod 600"},
        BadClusterConf{"UriTokenClusterKeyFile short.key\n", "64 hex digits"},
        BadClusterConf{"UriTokenSharing Enforce\nUriTokenStateDir state\nUriTokenGossipListen "
                       "127.0.0.1:7946\n",
                       "UriTokenClusterKeyFile"},
        BadClusterConf{"UriTokenSharingNetworks 0\n", "UriTokenSharingNetworks: '0'"},
        BadClusterConf{"UriTokenSharingPlaces 5\n", "UriTokenSharingPlaces: '5' is not a number of places from 1 to 4"},
        // Each numeric directive has its own bounds and words (its slot in the directive table).
        BadClusterConf{"UriTokenSharingWindow 5\n",
                       "UriTokenSharingWindow: '5' is not a number of seconds from 10 to 86400"},
        BadClusterConf{"UriTokenSharingConcurrency x\n",
                       "UriTokenSharingConcurrency: 'x' is not a number of seconds from 0 to 86400"},
        BadClusterConf{"UriTokenSightingsSlots 2\n",
                       "UriTokenSightingsSlots: '2' is not a number of slots from 64 to 16777216"},
        BadClusterConf{"UriTokenRevocationSlots 99999999999\n",
                       "UriTokenRevocationSlots: '99999999999' is not a number of slots from 64 to 67108864"},
        BadClusterConf{"UriTokenTrackedSessions 1000\n",
                       "UriTokenTrackedSessions: '1000' is not a number of sessions from 1024 to 67108864"},
        BadClusterConf{"UriTokenClientSharing site42\n", "UriTokenClientSharing CLIENT places=N"},
        BadClusterConf{"UriTokenClientSharing site42 places=9\n",
                       "UriTokenClientSharing: '9' is not a number of places from 1 to 4"},
        BadClusterConf{"UriTokenClientSharing site42 places=2 limit=3\n",
                       "UriTokenClientSharing: 'limit=3' is neither places=N nor window=SECONDS"},
        BadClusterConf{"UriTokenClientSharing site42 places=2\nUriTokenClientSharing site42 places=4\n",
                       "client 'site42' is given twice"},
        BadClusterConf{"UriTokenClientSharing site42 places=2 window=900\n",
                       "UriTokenClientSharing site42: window=900 is longer than UriTokenSharingWindow "
                       "(600); shorten it or raise UriTokenSharingWindow"},
        BadClusterConf{"UriTokenSubscriberSharing site42\n",
                       "UriTokenSubscriberSharing: use 'UriTokenSubscriberSharing CLIENT places=N [window=SECONDS]'"},
        BadClusterConf{"UriTokenSubscriberSharing site42 places=0\n",
                       "UriTokenSubscriberSharing: '0' is not a number of places from 1 to 4"},
        BadClusterConf{"UriTokenSubscriberSharing site42 places=2\nUriTokenSubscriberSharing site42 places=3\n",
                       "UriTokenSubscriberSharing: client 'site42' is given twice"},
        BadClusterConf{"UriTokenSubscriberSharing site42 places=2\n",
                       "UriTokenSubscriberSharing needs UriTokenSharing Shadow or Enforce"},
        BadClusterConf{"UriTokenSharing Shadow\nUriTokenStateDir state\nUriTokenSubscriberSharing site42 places=2 "
                       "window=900\n",
                       "UriTokenSubscriberSharing site42: window=900 is longer than UriTokenSharingWindow (600)"},
        BadClusterConf{"UriTokenBulk Always\n", "UriTokenBulk: 'Always' is not allowed; use Off"},
        BadClusterConf{"UriTokenBulk Enforce\n", "UriTokenBulk needs UriTokenSharing Shadow or Enforce"},
        BadClusterConf{"UriTokenBulkLimit requests=0 bytes=0\n",
                       "UriTokenBulkLimit: requests=0 and bytes=0 leave nothing to judge"},
        BadClusterConf{"UriTokenBulkLimit bytes=5X\n", "UriTokenBulkLimit: 'bytes=5X' is not bytes=SIZE"},
        BadClusterConf{"UriTokenBulkLimit bytes=-5\n", "UriTokenBulkLimit: 'bytes=-5' is not bytes=SIZE"},
        BadClusterConf{"UriTokenBulkLimit rate=5\n",
                       "UriTokenBulkLimit: 'rate=5' is neither requests=N nor bytes=SIZE"},
        BadClusterConf{"UriTokenSharedNetwork 10.0.0.0/40\n", "UriTokenSharedNetwork: '10.0.0.0/40'"},
        BadClusterConf{"UriTokenRevokedStatus 500\n", "UriTokenRevokedStatus: '500'"},
        BadClusterConf{"<VirtualHost 127.0.0.1:1>\nUriTokenSharing Enforce\n</VirtualHost>\n",
                       "UriTokenSharing cannot occur within <VirtualHost> section"}));

// --- Each node applies its own policy to the cluster's verdicts -----------

// One node in Shadow, two in Enforce (a rollout half done): every shared
// token is refused on the Enforce nodes and served, reported, on the
// Shadow node, whichever node decided.
TEST_F(ClusterTest, MixedClusterEachNodeAppliesItsOwnMode) {
  cluster = std::make_unique<Cluster>(std::vector<std::string>{"Shadow", "Enforce", "Enforce"});
  ASSERT_TRUE(cluster->start_all()) << cluster->startup_output();
  cluster->expect_log(R"(UT00010: )");
  for (int t = 0; t < 6; ++t) {
    const std::string token = mint();
    for (int i = 0; i < 3; ++i) ASSERT_EQ(cluster->get(i, token, "198.51.100.7").status, 200) << "node " << i;
    cluster->share_widely(token);
    for (int i = 1; i < 3; ++i) EXPECT_TRUE(wait_status(*cluster, i, token, 403)) << "token " << t << " node " << i;
    EXPECT_EQ(cluster->get(0, token, "198.51.100.7").status, 200) << "token " << t << ": the Shadow node serves";
  }
  for (int i = 1; i < 3; ++i) {
    EXPECT_NE(cluster->node(i).error_log().find("UT00010: token refused (revoked)"), std::string::npos);
  }
  EXPECT_NE(cluster->access_log(0).find("200 status=valid shadow=revoked"), std::string::npos)
      << cluster->access_log(0);
  EXPECT_EQ(cluster->node(0).error_log().find("UT00010"), std::string::npos) << "the Shadow node refused";
}

// The documented rollout: Shadow everywhere, then Enforce node by node with
// a graceful restart. Tokens found shared while in Shadow are refused as
// soon as a node enforces, with no new sighting needed.
TEST_F(ClusterTest, ShadowToEnforceByGracefulRestartEnforcesEarlierVerdicts) {
  cluster = std::make_unique<Cluster>(std::vector<std::string>{"Shadow", "Shadow"});
  ASSERT_TRUE(cluster->start_all()) << cluster->startup_output();
  cluster->expect_log(R"(UT00010: |UT00018: .* is (suspect|dead))");
  const std::string token = mint();
  ASSERT_EQ(cluster->get(0, token, "198.51.100.7").status, 200);
  cluster->share_widely(token);
  // Both report it and serve it.
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < deadline && (cluster->node(0).error_log().find("would be revoked") == std::string::npos ||
                                     cluster->node(1).error_log().find("would be revoked") == std::string::npos)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (int i = 0; i < 2; ++i) {
    EXPECT_NE(cluster->node(i).error_log().find("would be revoked (shadow mode)"), std::string::npos) << i;
    EXPECT_EQ(cluster->get(i, token, "198.51.100.7").status, 200) << i;
  }
  ASSERT_TRUE(cluster->switch_mode(0, "Enforce"));
  EXPECT_TRUE(wait_status(*cluster, 0, token, 403)) << cluster->node(0).error_log();
  EXPECT_EQ(cluster->get(1, token, "198.51.100.7").status, 200) << "node 1 is still in Shadow";
  ASSERT_TRUE(cluster->switch_mode(1, "Enforce"));
  EXPECT_TRUE(wait_status(*cluster, 1, token, 403)) << cluster->node(1).error_log();
  // A token shared after the switch is refused everywhere too.
  const std::string later = mint();
  ASSERT_EQ(cluster->get(1, later, "198.51.100.7").status, 200);
  cluster->share_widely(later);
  EXPECT_GE(cluster->wait_refused_everywhere(later), 0);
}

// --- Node identity ---------------------------------------------------------

// Each node makes its identity key at its first start (UriTokenStateDir,
// 0600) and keeps it across a restart; its node hash is what `uritoken
// node-identity` prints, what its status page names, and what its peers
// show for it (MEMBER, protocol 5).
TEST_F(ClusterTest, EachNodeHasAnIdentityKeyThatItsPeersName) {
  cluster = std::make_unique<Cluster>(2);
  ASSERT_TRUE(cluster->start_all()) << cluster->startup_output();
  std::vector<std::string> hashes;
  for (int i = 0; i < 2; ++i) {
    std::string out;
    ASSERT_EQ(
        run_command(std::string(BUILD_DIR) + "/uritoken node-identity --state-dir " + cluster->state_dir(i) + " 2>&1",
                    &out),
        0)
        << out;
    EXPECT_NE(out.find("(kept)"), std::string::npos) << "the sidecar made it: " << out;
    hashes.push_back(out.substr(out.find("node hash: ") + 11, 32));
    struct stat st {};
    ASSERT_EQ(stat((cluster->state_dir(i) + "/node.key").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_NE(cluster->node(i).error_log().find("UT00065: this node's identity key was made"), std::string::npos);
  }
  EXPECT_NE(hashes[0], hashes[1]);
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  std::string j;
  while (Clock::now() < deadline) {
    j = http_get(cluster->node(0).port(), "/uritoken-status?json").body;
    if (j.find("\"identity\":\"" + hashes[1] + "\"") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_NE(j.find("\"node\":{\"name\":\"node0\",\"id\":"), std::string::npos) << j;
  EXPECT_NE(j.find("\"identity\":\"" + hashes[0] + "\",\"mode\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"identity\":\"" + hashes[1] + "\",\"same_policy\""), std::string::npos) << "its peer: " << j;
  const std::string page = http_get(cluster->node(1).port(), "/uritoken-status").body;
  EXPECT_NE(page.find("node hash <code>" + hashes[1] + "</code>"), std::string::npos);
  EXPECT_NE(page.find("<code>" + hashes[0] + "</code>"), std::string::npos) << "the members table";
  // A restart keeps it.
  cluster->expect_log("UT00018: .* is (suspect|dead)");
  ASSERT_TRUE(cluster->node(1).graceful());
  std::string out;
  ASSERT_EQ(run_command(std::string(BUILD_DIR) + "/uritoken node-identity --state-dir " + cluster->state_dir(1), &out),
            0);
  EXPECT_NE(out.find("node hash: " + hashes[1]), std::string::npos) << out;
}

// Every node with the same UriTokenNodeName (what copying one example
// configuration produces): members are still told apart, detection works,
// and each node says loudly that names clash.
TEST_F(ClusterTest, SameNodeNameEverywhereStillDetectsAndIsReported) {
  cluster = std::make_unique<Cluster>(std::vector<std::string>{"Enforce", "Enforce", "Enforce"}, true,
                                      /*same_name=*/true);
  // start_all counts alive members by name: with one name it cannot; the
  // clash lines (one per other member) show each node sees both others.
  ASSERT_TRUE(cluster->start_all(/*wait_for_members=*/false)) << cluster->startup_output();
  cluster->expect_log(R"(UT00010: |UT00022: |UT00018: .* is (suspect|dead))");
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  auto clash_reported = [&](int i) {
    const std::string log = cluster->node(i).error_log();
    std::size_t n = 0;
    for (std::size_t at = 0; (at = log.find("UT00022: cluster member at ", at)) != std::string::npos; ++at) ++n;
    return n;
  };
  while (Clock::now() < deadline && (clash_reported(0) < 2 || clash_reported(1) < 2 || clash_reported(2) < 2)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (int i = 0; i < 3; ++i) EXPECT_EQ(clash_reported(i), 2u) << cluster->node(i).error_log();
  const std::string token = mint();
  ASSERT_EQ(cluster->get(0, token, "198.51.100.7").status, 200);
  cluster->share_widely(token);
  EXPECT_GE(cluster->wait_refused_everywhere(token), 0);
  // The id is kept across restarts, in the state directory.
  const std::string id = read_text(cluster->state_dir(0) + "/node-id");
  EXPECT_EQ(id.size(), 17u) << id;
  ASSERT_TRUE(cluster->node(0).graceful());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(read_text(cluster->state_dir(0) + "/node-id"), id);
}

// --- Operations: the status page and manual revoke / pardon ------------------

std::string session_of(const std::string& token) {
  std::string out;
  run_command(std::string(BUILD_DIR) + "/uritoken inspect " + token, &out);
  const auto at = out.find("session: ");
  return at == std::string::npos ? "" : out.substr(at + 9, 16);
}

TEST_F(ClusterTest, StatusPageShowsBlockedTokensAndManualActionsSpread) {
  cluster = std::make_unique<Cluster>(3);
  ASSERT_TRUE(cluster->start_all()) << cluster->startup_output();
  cluster->expect_log(R"(UT00010: |UT00038: )");
  const std::string shared = mint();
  ASSERT_TRUE(cluster->served_everywhere(shared));
  cluster->share_widely(shared);
  ASSERT_GE(cluster->wait_refused_everywhere(shared), 0);
  const std::string session = session_of(shared);
  ASSERT_EQ(session.size(), 16u);

  // Every node's page lists it, with its client (from the key ring) and why.
  for (int i = 0; i < 3; ++i) {
    const Response j = http_get(cluster->node(i).port(), "/uritoken-status?json");
    ASSERT_EQ(j.status, 200) << i;
    EXPECT_EQ(j.header("content-type"), "application/json");
    EXPECT_NE(
        j.body.find("\"session\":\"" + session + "\",\"kind\":\"token\",\"state\":\"blocked\",\"client\":\"site42\""),
        std::string::npos)
        << j.body;
    EXPECT_NE(j.body.find("\"reason\":\"auto\""), std::string::npos) << j.body;
    // The evidence travels with the verdict: every node names the networks.
    EXPECT_NE(j.body.find("\"networks\":[\""), std::string::npos) << j.body;
    EXPECT_NE(j.body.find(".0/24\""), std::string::npos) << j.body;
    EXPECT_EQ(j.body.find("\"first_seen\":0,"), std::string::npos) << "first seen is known: " << j.body;
    EXPECT_EQ(j.body.find("\"last_seen\":0,"), std::string::npos) << "last seen is known: " << j.body;
    // And the places it counted, from the Debian location database: the
    // Linode address is its AS, each place concurrent; score and limit.
    // (The owner decides at the fourth place: Linode's or Fastly's, or both.)
    // Each place with its networks' country and its first and last use.
    const bool linode = j.body.find(
                            "{\"place\":\"AS63949 Linode, LLC\",\"country\":\"US\",\"networks\":1,"
                            "\"concurrent\":true,\"weight\":1.0,\"first_used\":1") != std::string::npos;
    const bool fastly = j.body.find(
                            "{\"place\":\"AS54113 FASTLY\",\"country\":\"US\",\"networks\":1,"
                            "\"concurrent\":true,\"weight\":1.0,\"first_used\":1") != std::string::npos;
    EXPECT_EQ(j.body.find("\"first_used\":null"), std::string::npos) << "every place's first use is known: " << j.body;
    EXPECT_TRUE(linode || fastly) << j.body;
    EXPECT_NE(j.body.find("\"limit\":3"), std::string::npos) << j.body;
    EXPECT_NE(j.body.find("\"location\":{\"database\":\"/usr/share/libloc-location/location.db\",\"built\":"),
              std::string::npos)
        << j.body;
    EXPECT_NE(j.body.find(",\"stale\":true}"), std::string::npos) << j.body;
    EXPECT_NE(j.body.find("\"score\":4.00"), std::string::npos) << j.body;
    {
      const std::string file = cluster->node(i).root() + "/status.json";
      std::ofstream(file) << j.body;
      std::string out;
      EXPECT_EQ(run_command("python3 -m json.tool " + file + " >/dev/null", &out), 0) << out << j.body;
    }
    EXPECT_NE(j.body.find("\"sidecar\":\"up\""), std::string::npos);
    EXPECT_EQ(j.body.find("\"last_contact_ms\":0"), std::string::npos) << "members were heard from: " << j.body;
    EXPECT_NE(j.body.find("\"last_contact_ms\":"), std::string::npos);
    EXPECT_NE(j.body.find("\"protocol\":\"2-5\""), std::string::npos) << j.body;
    EXPECT_EQ(j.body.find(shared), std::string::npos) << "never the token";
    const Response h = http_get(cluster->node(i).port(), "/uritoken-status");
    EXPECT_EQ(h.status, 200);
    EXPECT_NE(h.body.find(session), std::string::npos);
    EXPECT_NE(h.body.find("<table>"), std::string::npos);
    // Debian 12's database is from 2022: the page says so, with the fix.
    EXPECT_NE(h.body.find("From the location database <code>/usr/share/libloc-location/location.db</code>, "),
              std::string::npos)
        << h.body;
    EXPECT_NE(h.body.find("Older than 90 days"), std::string::npos) << h.body;
    EXPECT_NE(h.body.find(" places</b>, score 4.00 (shared at 3 places and score 3.5)"), std::string::npos) << h.body;
    const std::string as = linode ? "AS63949 Linode, LLC" : "AS54113 FASTLY";
    EXPECT_NE(h.body.find("<li>" + as + " (US) <span class=\"muted\">1 network, concurrent, +1.0, used 20"),
              std::string::npos)
        << h.body;
    EXPECT_NE(h.body.find(linode ? "<code>45.33.12.0/24</code> <span class=\"muted\">AS63949 US</span>"
                                 : "<code>151.101.1.0/24</code> <span class=\"muted\">AS54113 US</span>"),
              std::string::npos)
        << h.body;
    const Response m = http_get(cluster->node(i).port(), "/uritoken-status?metrics");
    EXPECT_NE(m.body.find("uritoken_blocked_tokens 1\n"), std::string::npos) << m.body;
    EXPECT_NE(m.body.find("uritoken_verdicts{reason=\"shared\"} 1\n"), std::string::npos) << m.body;
    EXPECT_NE(m.body.find("\nuritoken_location_database_built_seconds 16"), std::string::npos) << m.body;
    EXPECT_NE(m.body.find("uritoken_members{state=\"alive\"} 2\n"), std::string::npos) << m.body;
    EXPECT_NE(m.body.find("uritoken_sidecar_up 1\n"), std::string::npos);
    {  // Prometheus' own referee (promtool, Debian's prometheus package)
      const std::string file = cluster->node(i).root() + "/metrics.txt";
      std::ofstream(file) << m.body;
      std::string out;
      EXPECT_EQ(run_command("promtool check metrics < " + file, &out), 0) << out << m.body;
    }
  }
  // DNS rebinding: another Host gets 421, and no data.
  const Response rebound = http_get(cluster->node(0).port(), "/uritoken-status?json", {"Host: attacker.example"});
  // http_get sends its own Host first; send the request raw instead.
  const Response raw =
      http_raw(cluster->node(0).port(),
               "GET /uritoken-status?json HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(raw.status, 421);
  EXPECT_EQ(raw.body.find(session), std::string::npos);
  (void)rebound;

  // Pardon through node 1's control socket: served everywhere again.
  const std::string pardon = cluster->control(
      1, "pardon\tkey=1\tsession=" + session + "\toperator=10.0.0.9\tuser=alice\tcomment=false%20positive\n");
  ASSERT_EQ(pardon.rfind("ok\t", 0), 0u) << pardon;
  for (int i = 0; i < 3; ++i) {
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (Clock::now() < deadline && cluster->get(i, shared, "198.51.100.7").status != 200) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(cluster->get(i, shared, "198.51.100.7").status, 200) << "node " << i;
  }
  const Response page = http_get(cluster->node(0).port(), "/uritoken-status");
  EXPECT_NE(page.body.find("A pardon holds for the token's life"), std::string::npos) << page.body;
  EXPECT_NE(http_get(cluster->node(0).port(), "/uritoken-status?metrics")
                .body.find("uritoken_verdicts{reason=\"pardoned\"} 1\n"),
            std::string::npos);
  // A manual revoke of a fresh token on node 2 is refused on nodes 0 and 1.
  const std::string other = mint();
  ASSERT_TRUE(cluster->served_everywhere(other));
  const std::string revoke = cluster->control(2, "revoke\tkey=1\tsession=" + session_of(other) +
                                                     "\texpires=" + std::to_string(std::time(nullptr) + 600) +
                                                     "\toperator=10.0.0.9\tcomment=leaked\n");
  ASSERT_EQ(revoke.rfind("ok\t", 0), 0u) << revoke;
  EXPECT_GE(cluster->wait_refused_everywhere(other), 0);
  const Response j = http_get(cluster->node(2).port(), "/uritoken-status?json");
  EXPECT_NE(j.body.find("\"reason\":\"manual\""), std::string::npos) << j.body;
  EXPECT_NE(j.body.find("\"comment\":\"leaked\""), std::string::npos) << j.body;
  EXPECT_NE(cluster->control(0, "nonsense\n").find("error\tmessage="), std::string::npos);
}

TEST_F(ClusterTest, StatusPageAnswersQuicklyWhenTheSidecarIsGone) {
  cluster = std::make_unique<Cluster>(1, "Enforce", /*gossip=*/false);
  ASSERT_TRUE(cluster->start_all()) << cluster->startup_output();
  cluster->expect_log(R"(UT00039: |UT00012: )");
  Response before;
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  do {  // the sidecar starts just after httpd
    before = http_get(cluster->node(0).port(), "/uritoken-status?json");
  } while (before.body.find("\"sidecar\":\"up\"") == std::string::npos && Clock::now() < deadline);
  ASSERT_EQ(before.status, 200);
  ASSERT_NE(before.body.find("\"sidecar\":\"up\""), std::string::npos) << before.body;
  const pid_t sidecar = cluster->sidecar_pid(0);
  ASSERT_GT(sidecar, 0);
  kill(sidecar, SIGSTOP);  // hung, not dead: the worst case for a client
  const auto t0 = Clock::now();
  const Response r = http_get(cluster->node(0).port(), "/uritoken-status");
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  kill(sidecar, SIGCONT);
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("Sidecar unavailable"), std::string::npos) << r.body;
  EXPECT_LT(ms, 1500);
}

// The page's forms: revoke by pasting the shared URL, pardon by button;
// both only by POST with the page's form token and its own Origin.
TEST_F(ClusterTest, StatusPageFormsNeedTheirTokenAndTheirOrigin) {
  cluster = std::make_unique<Cluster>(2);
  ASSERT_TRUE(cluster->start_all()) << cluster->startup_output();
  cluster->expect_log(R"(UT00010: |UT00040: )");
  const std::string token = mint();
  ASSERT_TRUE(cluster->served_everywhere(token));
  const int port = cluster->node(0).port();
  const std::string origin = "http://127.0.0.1:" + std::to_string(port);
  const Response page = http_get(port, "/uritoken-status");
  const auto at = page.body.find("name=\"csrf\" value=\"");
  ASSERT_NE(at, std::string::npos) << page.body;
  const std::string csrf = page.body.substr(at + 19, 32);
  const std::string url = "https://media.example/_uk_" + token + "/media/clip/seg1.ts";
  auto post = [&](const std::string& body, const std::string& from) {
    std::string req = "POST /uritoken-status HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                      "\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\n";
    if (!from.empty()) req += "Origin: " + from + "\r\n";
    return http_raw(port, req + "\r\n" + body);
  };
  char* escaped = nullptr;
  std::string enc;
  for (char c : url) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') {
      enc += c;
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
      enc += buf;
    }
  }
  (void)escaped;
  const std::string revoke = "action=revoke&url=" + enc + "&comment=leaked&csrf=";
  // A cross-site form, and one without the token: refused, nothing changes.
  EXPECT_EQ(post(revoke + csrf, "http://attacker.example").status, 403);
  EXPECT_EQ(post(revoke + std::string(32, '0'), origin).status, 403);
  EXPECT_EQ(post(revoke + csrf, "").status, 403);
  // GET never changes state.
  EXPECT_EQ(http_get(port, "/uritoken-status?action=revoke&url=" + enc + "&csrf=" + csrf).status, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int i = 0; i < 2; ++i) EXPECT_EQ(cluster->get(i, token, "198.51.100.7").status, 200) << i;
  // The real form: revoked on both nodes; the page says so; the log names
  // the operator, never the token.
  const Response done = post(revoke + csrf, origin);
  EXPECT_EQ(done.status, 303);
  EXPECT_NE(done.header("location").find("?done="), std::string::npos) << done.header("location");
  EXPECT_GE(cluster->wait_refused_everywhere(token), 0);
  EXPECT_NE(cluster->node(0).error_log().find("UT00041: status page: operator 127.0.0.1 revoked key 1 session " +
                                              session_of(token)),
            std::string::npos)
      << cluster->node(0).error_log();
  // Pardon from node 1's page: its own token and origin.
  const int port1 = cluster->node(1).port();
  const Response page1 = http_get(port1, "/uritoken-status");
  const std::string csrf1 = page1.body.substr(page1.body.find("name=\"csrf\" value=\"") + 19, 32);
  EXPECT_NE(page1.body.find("leaked"), std::string::npos) << "the operator's comment travels with the entry";
  std::string req =
      "POST /uritoken-status HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port1) +
      "\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nOrigin: http://127.0.0.1:" +
      std::to_string(port1) + "\r\n";
  const std::string body = "action=pardon&key=1&session=" + session_of(token) + "&csrf=" + csrf1;
  req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  EXPECT_EQ(http_raw(port1, req).status, 303);
  for (int i = 0; i < 2; ++i) {
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (Clock::now() < deadline && cluster->get(i, token, "198.51.100.7").status != 200) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(cluster->get(i, token, "198.51.100.7").status, 200) << "node " << i;
  }
}

// The CLI against a real sidecar: list, revoke by URL, pardon by session.
TEST_F(ClusterTest, CliListsRevokesAndPardonsThroughTheControlSocket) {
  cluster = std::make_unique<Cluster>(2);
  ASSERT_TRUE(cluster->start_all()) << cluster->startup_output();
  cluster->expect_log(R"(UT00010: )");
  const std::string token = mint();
  ASSERT_TRUE(cluster->served_everywhere(token));
  const std::string cli = std::string(BUILD_DIR) + "/uritoken ";
  const std::string socket0 = " --socket " + cluster->state_dir(0) + "/control.sock";
  std::string out;
  ASSERT_EQ(run_command(cli + "revoke" + socket0 + " --comment 'seen on a forum' --url 'https://media.example/_uk_" +
                            token + "/media/clip/seg1.ts'",
                        &out),
            0)
      << out;
  EXPECT_EQ(out.find(token), std::string::npos) << "the CLI never prints the token";
  EXPECT_GE(cluster->wait_refused_everywhere(token), 0);
  const std::string session = session_of(token);
  ASSERT_EQ(run_command(cli + "blocked --json --key-file " + cluster->node(0).key_file() + socket0, &out), 0) << out;
  EXPECT_NE(out.find(session), std::string::npos) << out;
  EXPECT_NE(out.find("seen on a forum"), std::string::npos) << out;
  EXPECT_NE(out.find("site42"), std::string::npos) << out;
  ASSERT_EQ(
      run_command(cli + "pardon --socket " + cluster->state_dir(1) + "/control.sock --key-id 1 --session " + session,
                  &out),
      0)
      << out;
  for (int i = 0; i < 2; ++i) {
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (Clock::now() < deadline && cluster->get(i, token, "198.51.100.7").status != 200) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(cluster->get(i, token, "198.51.100.7").status, 200) << "node " << i;
  }
  EXPECT_NE(run_command(cli + "blocked --socket /nonexistent/control.sock", &out), 0);
  EXPECT_NE(out.find("no sidecar control socket"), std::string::npos) << out;
}

// Thousands of entries stay usable: 100 rows a page, sortable by column.
TEST_F(ClusterTest, StatusPagePagesAndSortsManyBlockedTokens) {
  cluster = std::make_unique<Cluster>(1, "Enforce", /*gossip=*/false);
  ASSERT_TRUE(cluster->start_all()) << cluster->startup_output();
  const std::string expires = std::to_string(std::time(nullptr) + 600);
  std::vector<std::string> sessions;
  for (int i = 0; i < 250; ++i) {
    char session[17];
    std::snprintf(session, sizeof session, "%016x", 0x1000 + i * 7919);
    sessions.push_back(session);
    std::string answer;
    for (int attempt = 0; attempt < 50 && answer.rfind("ok\t", 0) != 0; ++attempt) {
      answer = cluster->control(0, "revoke\tkey=1\tsession=" + sessions.back() + "\texpires=" + expires + "\n");
      if (answer.rfind("ok\t", 0) != 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // sidecar starting
    }
    ASSERT_EQ(answer.rfind("ok\t", 0), 0u) << answer;
  }
  const int port = cluster->node(0).port();
  auto rows = [](const std::string& body) {
    std::size_t n = 0;
    for (std::size_t at = 0; (at = body.find("<td data-label=\"Session\">", at)) != std::string::npos; ++at) ++n;
    return n;
  };
  const Response first = http_get(port, "/uritoken-status");
  EXPECT_NE(first.body.find("Page 1 of 3"), std::string::npos);
  EXPECT_EQ(rows(first.body), 100u);
  const Response last = http_get(port, "/uritoken-status?page=3");
  EXPECT_EQ(rows(last.body), 50u);
  std::sort(sessions.begin(), sessions.end());
  const Response asc = http_get(port, "/uritoken-status?sort=session&order=asc");
  const Response desc = http_get(port, "/uritoken-status?sort=session&order=desc");
  const auto first_session = [](const std::string& body) {
    const std::string marker = "<td data-label=\"Session\"><code>";
    const auto at = body.find(marker);
    return at == std::string::npos ? std::string() : body.substr(at + marker.size(), 16);
  };
  EXPECT_EQ(first_session(asc.body), sessions.front());
  EXPECT_EQ(first_session(desc.body), sessions.back());
  // The filter narrows before paging.
  EXPECT_EQ(
      rows(http_get(port, "/uritoken-status?session=" + sessions[0].substr(0, 14)).body),
      1u + static_cast<std::size_t>(std::count_if(sessions.begin() + 1, sessions.end(), [&](const std::string& s) {
        return s.compare(0, 14, sessions[0], 0, 14) == 0;
      })));
}

}  // namespace

namespace {
// A counter from node i's sidecar (control socket `status`), or -1.
long long sidecar_counter(Cluster& c, int i, const std::string& name) {
  const std::string status = c.control(i, "status\n");
  const std::string field = "counter\tname=" + name + "\tvalue=";
  const auto at = status.find(field);
  return at == std::string::npos ? -1 : std::atoll(status.c_str() + at + field.size());
}
}  // namespace

// Rotating the cluster key without an outage (README, "Rotating the cluster
// key"): add the new key second everywhere, then move it first, then remove
// the old one, one graceful restart at a time. After every restart a token
// shared then is refused on every node. Then a node left with only the old
// key is shut out: its packets fail authentication and a revocation no
// longer reaches it.
TEST_F(ClusterTest, ClusterKeyRotatesWithoutAnOutage) {
  cluster = std::make_unique<Cluster>(3);
  ASSERT_TRUE(cluster->start_all()) << cluster->startup_output();
  cluster->expect_log(R"(UT00010: |UT00018: .* is (suspect|dead))");
  const std::string old_key = cluster->first_key(), new_key = Cluster::new_cluster_key();
  ASSERT_EQ(new_key.size(), 64u);
  ASSERT_NE(new_key, old_key);
  const std::vector<std::vector<std::string>> steps = {{old_key, new_key}, {new_key, old_key}, {new_key}};
  for (std::size_t step = 0; step < steps.size(); ++step) {
    for (int i = 0; i < cluster->size(); ++i) {
      const std::size_t mark = cluster->node(i).error_log().size();
      ASSERT_TRUE(cluster->set_cluster_keys(i, steps[step])) << "step " << step << " node " << i;
      ASSERT_TRUE(cluster->sees_every_member(i, mark)) << "step " << step << " node " << i << "\n"
                                                       << cluster->startup_output();
      const std::string token = mint();
      ASSERT_TRUE(cluster->served_everywhere(token));
      cluster->share_widely(token);
      const long ms = cluster->wait_refused_everywhere(token, 5000);
      EXPECT_GE(ms, 0) << "step " << step << " node " << i;
      // While the new key seals on node 0 but not yet on node 1, node 1
      // opens node 0's packets with its second key, and counts them.
      if (step == 1 && i == 0) {
        EXPECT_GT(sidecar_counter(*cluster, 1, "gossip_packets_other_key"), 0);
      }
    }
  }
  // The old key is gone everywhere; node 2 goes back to it alone.
  const long long auth_before = sidecar_counter(*cluster, 0, "gossip_dropped_auth");
  ASSERT_GE(auth_before, 0);
  ASSERT_TRUE(cluster->set_cluster_keys(2, {old_key}));
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < deadline && sidecar_counter(*cluster, 0, "gossip_dropped_auth") <= auth_before) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GT(sidecar_counter(*cluster, 0, "gossip_dropped_auth"), auth_before);
  const std::string token = mint();
  ASSERT_TRUE(cluster->served_everywhere(token));
  std::string out;
  ASSERT_EQ(run_command(std::string(BUILD_DIR) + "/uritoken revoke --socket " + cluster->state_dir(0) +
                            "/control.sock --url 'https://media.example/_uk_" + token + "/media/clip/seg1.ts'",
                        &out),
            0)
      << out;
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(wait_status(*cluster, i, token, 403)) << "node " << i;
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(cluster->get(2, token, "198.51.100.7").status, 200) << "node 2, with only the old key, is shut out";
}
