// SPDX-License-Identifier: Apache-2.0
// The decision path (mod_uritoken/cluster/sharing_service.h) without httpd:
// alone on one node (ring -> verdict -> table and journal), and on many
// simulated nodes, where sightings injected into several nodes' rings come
// out as revocations in every node's table; then the same under seeded
// chaos (partitions, loss, crashes and restarts) with invariant checks.
#include "../../mod_uritoken/cluster/sharing_service.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>

#include "../../gossip/testing.h"
#include "../../gossip/sim.h"
#include "service_cluster.h"

using namespace uritoken;
using namespace uritoken::cluster;
using gossip::sim::Simulation;
using namespace uritoken::cluster::simtest;

namespace {

using NoNetwork = gossip::doubles::NullTransport;

gossip::Config node_config(std::uint64_t id) {
  gossip::Config c;
  c.node_id = id;
  c.name = "n" + std::to_string(id);
  c.cluster_key = gossip::doubles::pattern_key(3);
  return c;
}

constexpr std::uint64_t kT0 = 1'800'000'000'000ULL;

// The "blocked" record of `session` (16 hex digits) in a node's status
// answer, as the status page and the CLI get it; nullopt if none.
std::optional<control::Record> blocked_record(SharingService& service, const std::string& session) {
  control::Record status;
  status.kind = "status";
  for (const control::Record& rec : service.handle(status)) {
    if (rec.kind == "blocked" && rec.get("session") == session) return rec;
  }
  return std::nullopt;
}

TEST(SharingService, OneNodeTurnsRingSightingsIntoARevocationInTableAndJournal) {
  HeapState shm;
  Captured log;
  char dir[] = "/tmp/uritoken-service-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  ServiceConfig sc;
  sc.policy.max_sessions = 10000;
  sc.journal_path = std::string(dir) + "/journal";
  SharingService service(sc, *shm.state, log.sink());
  std::uint64_t now = kT0;
  service.clock = [&] { return now; };
  NoNetwork net;
  gossip::Node node(node_config(1), net, service, now, 7);
  service.attach(&node);
  std::string error;
  node.load(service.load_journal(&error));
  ASSERT_TRUE(service.open_journal(node.revocations(), &error)) << error;
  node.start(now);

  // What a worker does with each request's sighting (mod_uritoken.cc).
  auto worker_sees = [&](const Sighting& s) { shm.state->report(s); };
  // A token behind carrier NAT from many addresses, and one used from two
  // networks: neither is shared.
  for (int k = 0; k < 12; ++k) worker_sees(sighting(10, "100.64." + std::to_string(k * 7) + ".9", now));
  worker_sees(sighting(11, kFiveNetworks[0], now));
  worker_sees(sighting(11, kFiveNetworks[1], now));
  // The shared one: five networks, each seen three times (repeats within
  // SharedState::kRepeatMs are not reported again).
  for (int rep = 0; rep < 3; ++rep) {
    for (const auto& ip : kFiveNetworks) worker_sees(sighting(12, ip, now));
  }
  service.drain(now);
  node.tick(now);
  service.flush_journal(0);

  const auto now_s = static_cast<std::uint32_t>(now / 1000);
  EXPECT_EQ(shm.state->lookup(1, 12, now_s), RevocationState::revoked);
  EXPECT_EQ(shm.state->lookup(1, 11, now_s), RevocationState::none);
  EXPECT_EQ(shm.state->lookup(1, 10, now_s), RevocationState::none);
  EXPECT_EQ(node.stats().sightings_owned, 12u + 2u + 5u) << "repeats within 5 s are dropped";
  EXPECT_EQ(log.count("UT00013: token revoked: key 1, session 000000000000000c"), 1u);
  const auto journal = gossip::Journal::load(sc.journal_path, &error);
  ASSERT_EQ(journal.size(), 1u);
  EXPECT_EQ(journal[0].token.session, 12u);
  EXPECT_FALSE(journal[0].pardon);

  // A pardon clears the table and holds: the same sharing is not revoked
  // again for the token's life (docs/sharing-rule.md, "Pardons hold").
  gossip::Revocation pardon = journal[0];
  pardon.pardon = true;
  now += 1000;
  pardon.stamp_ms = now;
  node.decide(pardon, now);
  EXPECT_EQ(shm.state->lookup(1, 12, static_cast<std::uint32_t>(now / 1000)), RevocationState::none);
  EXPECT_EQ(shm.state->lookup(1, 12, static_cast<std::uint32_t>(now / 1000)), RevocationState::none);
  // Used again from the same networks once repeats count again (a pardon
  // does not reset the repeat filter: re-detection waits at most 5 s).
  now += SharedState::kRepeatMs;
  for (const auto& ip : kFiveNetworks) worker_sees(sighting(12, ip, now));
  service.drain(now);
  EXPECT_EQ(shm.state->lookup(1, 12, static_cast<std::uint32_t>(now / 1000)), RevocationState::none);
  EXPECT_EQ(node.revocations().find({1, 12})->pardon, true);
  // Only a new decision (an operator's) revokes it again.
  gossip::Revocation again = journal[0];
  now += 1000;
  again.stamp_ms = now;
  again.reason = uritoken::gossip::VerdictReason::manual;
  node.decide(again, now);
  EXPECT_EQ(shm.state->lookup(1, 12, static_cast<std::uint32_t>(now / 1000)), RevocationState::revoked);
  unlink(sc.journal_path.c_str());
  rmdir(dir);
}

// One node whose sidecar places networks with Debian's location database.
class SharingServiceWithDatabase : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    std::shared_ptr<const LocationDatabase> db = LocationDatabase::open(kDebianLocationDatabase, &error);
    if (!db) GTEST_SKIP() << "no location database (apt-get install libloc-database): " << error;
    ServiceConfig sc;
    sc.policy.max_sessions = 10000;
    sc.policy.places_from_database = true;
    sc.location = db;
    service = std::make_unique<SharingService>(sc, *shm.state, log.sink());
    service->clock = [this] { return now; };
    node = std::make_unique<gossip::Node>(node_config(1), net, *service, now, 7);
    service->attach(node.get());
    node->start(now);
  }
  void TearDown() override {
    if (service) service->attach(nullptr);
  }
  // The sidecar's `blocked` records, as the status page gets them.
  std::vector<control::Record> blocked() {
    control::Record request;
    request.kind = "status";
    std::vector<control::Record> out;
    for (const auto& r : service->handle(request))
      if (r.kind == "blocked") out.push_back(r);
    return out;
  }
  HeapState shm;
  Captured log;
  std::uint64_t now = kT0;
  NoNetwork net;
  std::unique_ptr<SharingService> service;
  std::unique_ptr<gossip::Node> node;
};

// With Debian's location database, a verdict names each network's place
// and country by position: a network the database does not know is an
// empty entry, so the others stay beside their own network.
TEST_F(SharingServiceWithDatabase, VerdictNamesEachNetworksPlaceInItsOwnPosition) {
  // Unknown to the database first (TEST-NET), then an AS, another unknown,
  // a network with only a country, and a second AS.
  const std::map<std::string, std::string> expected = {{"198.51.100.0/24", ""},
                                                       {"45.33.12.0/24", "AS63949 US"},
                                                       {"192.0.2.0/24", ""},
                                                       {"203.0.113.0/24", "AU"},
                                                       {"151.101.1.0/24", "AS54113 US"}};
  for (const char* ip : {"198.51.100.7", "45.33.12.8", "192.0.2.33", "203.0.113.9", "151.101.1.5"}) {
    shm.state->report(sighting(12, ip, now));
  }
  service->drain(now);
  node->tick(now);
  ASSERT_EQ(shm.state->lookup(1, 12, static_cast<std::uint32_t>(now / 1000)), RevocationState::revoked);
  const auto records = blocked();
  ASSERT_EQ(records.size(), 1u);
  const control::Record* verdict = &records[0];
  const auto split = [](const std::string& s) {
    std::vector<std::string> out;
    std::string item;
    std::istringstream in(s);
    while (std::getline(in, item, ',')) out.push_back(item);
    if (!s.empty() && s.back() == ',') out.push_back("");
    return out;
  };
  const auto nets = split(verdict->get("nets").value_or(""));
  const auto where = split(verdict->get("nets_where").value_or(""));
  ASSERT_EQ(nets.size(), where.size()) << verdict->get("nets").value_or("") << " / "
                                       << verdict->get("nets_where").value_or("");
  ASSERT_GE(nets.size(), 4u);
  for (std::size_t i = 0; i < nets.size(); ++i) {
    ASSERT_TRUE(expected.count(nets[i])) << nets[i];
    EXPECT_EQ(where[i], expected.at(nets[i])) << nets[i];
  }
  const auto places = control::parse_places(verdict->get("places").value_or(""));
  ASSERT_GE(places.size(), 4u);
  EXPECT_TRUE(std::any_of(places.begin(), places.end(), [](const auto& p) { return p.name == "AS63949 Linode, LLC"; }));
  EXPECT_EQ(verdict->get("limit").value_or(""), "3");
  for (const auto& p : places) {  // each place's first and last use, and its networks' country
    EXPECT_GT(p.first_s, 0u) << p.name;
    EXPECT_GE(p.last_s, p.first_s) << p.name;
    if (p.name.rfind("AS", 0) == 0) {
      EXPECT_EQ(p.country.size(), 2u) << p.name;
    }
  }
}

// A rolling upgrade: sightings from a protocol 2 node carry no place. An
// owner with a database places them as it places its own, so a dual-stack
// home and its phone on cellular, reported half by old nodes and half by
// new ones, are two places, not four (an AS and a fallback /16 each).
TEST_F(SharingServiceWithDatabase, SightingsWithoutAPlaceArePlacedByTheOwnersDatabase) {
  // Comcast and T-Mobile US, each by IPv4 and IPv6, each network from a
  // new node (with its place) and from an old one (without).
  const std::vector<std::pair<std::string, std::uint32_t>> networks = {
      {"24.34.17.8", 7922}, {"2601:0:1234::7", 7922}, {"172.58.3.9", 21928}, {"2607:fb90:1:2::5", 21928}};
  for (const auto& [ip, asn] : networks) {
    for (const bool old_node : {false, true}) {
      const IpAddress a = *parse_ip_address(ip);
      gossip::SightingReport r;
      r.token = {1, 77};
      r.token_expires = static_cast<std::uint32_t>(now / 1000 + 3600);
      r.network[0] = a.v6 ? 6 : 4;
      const IpAddress masked = mask_ip(a, a.v6 ? kSharingPrefixV6 : kSharingPrefixV4);
      std::memcpy(r.network + 1, masked.bytes, a.v6 ? 16 : 4);
      r.client_hash = 42;
      r.time_ms = now;
      if (!old_node) {
        r.place_kind = static_cast<std::uint8_t>(PlaceKind::as);
        r.place_id = asn;
      }
      service->owned_sighting(r);
      now += 2000;
    }
  }
  EXPECT_EQ(shm.state->lookup(1, 77, static_cast<std::uint32_t>(now / 1000)), RevocationState::none);
  for (const auto& rec : blocked()) ADD_FAILURE() << "revoked: " << control::encode(rec);
}

// --- Many simulated nodes ----------------------------------------------------

std::string run_spread(std::uint64_t seed, std::size_t* revoked_everywhere) {
  ServiceCluster c(8, seed);
  EXPECT_TRUE(c.sim->run_until_true([&] { return all_alive(c); }, 20000));
  // Shared token 500: five networks, one request each, on five nodes.
  for (std::size_t k = 0; k < kFiveNetworks.size(); ++k) c.use(k, 500, kFiveNetworks[k]);
  // Control token 501: two networks on two nodes.
  c.use(6, 501, kFiveNetworks[0]);
  c.use(7, 501, kFiveNetworks[1]);
  EXPECT_TRUE(c.sim->run_until_true([&] { return c.revoked_count(500) == 8; }, 2000));
  c.sim->run_for(2000);
  *revoked_everywhere = c.revoked_count(500);
  EXPECT_EQ(c.revoked_count(501), 0u);
  std::size_t decided = 0;
  for (const auto& l : c.logs) decided += l->count("UT00013: token revoked");
  EXPECT_EQ(decided, 8u) << "every node logs the fresh decision once";
  return c.trace.str();
}

TEST(SharingServiceSim, SightingsOnSeveralNodesBecomeARevocationInEveryTable) {
  std::size_t everywhere = 0;
  const std::string first = run_spread(41, &everywhere);
  EXPECT_EQ(everywhere, 8u);
  std::size_t again = 0;
  EXPECT_EQ(run_spread(41, &again), first) << "the same seed gives the same run";
  EXPECT_FALSE(first.empty());
}

// The bulk signal across nodes: a scraper on one network, spread by a load
// balancer over three nodes, fetches 20 times a player's rate. Each node's
// workers count its requests and bytes; the owners add them up and decide
// (reason bulk) within two minutes, every node's table holds it as bulk (so
// each node's UriTokenBulk decides), the evidence gives the rate and the
// place; a player beside it is left alone, and a pardon holds. Off, nothing.
std::size_t run_scraper(bool bulk_on, std::uint64_t* caught_ms, ServiceCluster** out = nullptr) {
  static std::unique_ptr<ServiceCluster> keep;
  keep = std::make_unique<ServiceCluster>(3, 5, 0.0, nullptr,
                                          [bulk_on](ServiceConfig& sc) { sc.policy.bulk.enabled = bulk_on; });
  ServiceCluster& c = *keep;
  c.sim->run_until_true([&] { return all_alive(c); }, 20000);
  const std::uint64_t t0 = c.sim->now();
  *caught_ms = 0;
  for (std::uint64_t t = 0; t < 150'000; t += 300) {  // a 3.75 MB segment every 0.3 s: 20x a player's 6 s
    c.sim->run_for(300);
    c.use(t / 300 % 3, 700, "198.51.100.7", 3'750'000);
    if (t % 6000 == 0) c.use(t / 6000 % 3, 701, "203.0.113.9", 3'750'000);  // a player
    if (*caught_ms == 0 && c.revoked_count(700) == 3) *caught_ms = c.sim->now() - t0;
  }
  if (out != nullptr) *out = &c;
  return c.revoked_count(700);
}

TEST(SharingServiceSim, AScraperAtTwentyTimesAPlayersRateIsFoundInBulkUseOnEveryNode) {
  std::uint64_t caught = 0;
  ServiceCluster* c = nullptr;
  EXPECT_EQ(run_scraper(true, &caught, &c), 3u);
  EXPECT_GT(caught, 0u);
  EXPECT_LE(caught, 120'000u) << "within two minutes";
  EXPECT_EQ(c->revoked_count(701), 0u) << "the player beside it";
  const auto now_s = static_cast<std::uint32_t>(c->sim->now() / 1000);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(c->states[i]->state->lookup(1, 700, now_s), RevocationState::bulk) << "node " << i;
  }
  const gossip::Revocation* r = c->sim->node(0)->revocations().find({1, 700});
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->reason, kReasonBulk);
  EXPECT_GT(r->evidence.bulk_bytes_per_min, 500ull << 20);
  EXPECT_LT(r->evidence.bulk_bytes_per_min, 800ull << 20) << "about 750 MB a minute";
  EXPECT_GT(r->evidence.bulk_requests_per_min, 100u) << "averaged over two minutes, of which the scraper filled most";
  ASSERT_EQ(r->evidence.places.size(), 1u);
  EXPECT_NE(r->evidence.places[0].last_s, 0u);
  ASSERT_EQ(r->evidence.networks.size(), 1u);
  EXPECT_EQ(r->evidence.networks[0].bytes[0], 198);
  std::size_t logged = 0;
  for (const auto& l : c->logs) logged += l->count("UT00057: token in bulk use");
  EXPECT_GE(logged, 1u);
  // What the status page and the CLI get.
  const auto rec = blocked_record(*c->services[1], "00000000000002bc");
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->get("reason").value_or(""), "bulk");
  EXPECT_TRUE(rec->get("bulk_requests").has_value());
  EXPECT_TRUE(rec->get("bulk_bytes").has_value());
  // A pardon holds against the same rate.
  gossip::Revocation pardon = *r;
  pardon.pardon = true;
  pardon.stamp_ms = c->sim->now();
  pardon.reason = kReasonManual;
  c->sim->node(0)->decide(pardon, c->sim->now());
  c->sim->run_for(2000);
  for (int k = 0; k < 400; ++k) {
    c->sim->run_for(300);
    c->use(k % 3, 700, "198.51.100.7", 3'750'000);
  }
  EXPECT_EQ(c->revoked_count(700), 0u);
}

// A token in bulk use that is then found shared gets the sharing verdict
// on top: nodes whose UriTokenBulk is only Shadow still refuse a leaked
// link under their UriTokenSharing Enforce.
TEST(SharingServiceSim, ASharingVerdictSupersedesABulkOne) {
  std::uint64_t caught = 0;
  ServiceCluster* c = nullptr;
  ASSERT_EQ(run_scraper(true, &caught, &c), 3u);
  ASSERT_EQ(c->sim->node(0)->revocations().find({1, 700})->reason, kReasonBulk);
  c->sim->run_for(SharedState::kRepeatMs + 300);
  for (std::size_t k = 0; k < kFiveNetworks.size(); ++k) {
    c->use(k % 3, 700, kFiveNetworks[k]);
    c->sim->run_for(200);
  }
  c->sim->run_for(2000);
  const gossip::Revocation* r = c->sim->node(1)->revocations().find({1, 700});
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->reason, kReasonShared);
  const auto now_s = static_cast<std::uint32_t>(c->sim->now() / 1000);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(c->states[i]->state->lookup(1, 700, now_s), RevocationState::revoked) << "node " << i;
  }
}

TEST(SharingServiceSim, WithTheBulkSignalOffAScraperIsNotJudged) {
  std::uint64_t caught = 0;
  EXPECT_EQ(run_scraper(false, &caught), 0u);
}

// --- Seeded chaos -------------------------------------------------------------

// Settings that must agree (the sharing rule) travel as a digest in each
// MEMBER record: a node whose digest differs is named in a warning, once,
// by every other node; nodes that agree say nothing.
TEST(SharingServiceSim, PeersWithAnotherSharingRuleAreNamedOnce) {
  SharingPolicy same, other;
  other.max_places = 5;
  ASSERT_NE(same.digest(), other.digest());
  SharingPolicy reordered = same;
  reordered.shared_ranges = {*parse_ip_prefix("203.0.113.0/24"), *parse_ip_prefix("2001:db8::/48")};
  SharingPolicy reordered2 = same;
  reordered2.shared_ranges = {reordered.shared_ranges[1], reordered.shared_ranges[0]};
  EXPECT_EQ(reordered.digest(), reordered2.digest()) << "the order of UriTokenSharedNetwork does not matter";
  EXPECT_NE(reordered.digest(), same.digest());

  ServiceCluster c(4, 5, 0.0, [&](std::size_t i, gossip::Config& cfg) {
    cfg.policy_digest = i == 3 ? other.digest() : same.digest();
  });
  ASSERT_TRUE(c.sim->run_until_true([&] { return all_alive(c); }, 20000));
  c.sim->run_for(3000);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(c.logs[i]->count("UT00037: cluster member node3 "), 1u) << "node " << i;
    EXPECT_EQ(c.logs[i]->count("UT00037: cluster member node0 "), 0u) << "node " << i;
  }
  EXPECT_EQ(c.logs[3]->count("UT00037: "), 3u) << "node 3 names each of the others";
}

// Account sharing (UriTokenSubscriberSharing site42 places=2): a member
// who hands out the login, so that friends in four places each use a token
// of their own. No token is shared, but the subscriber is: one verdict,
// the subscriber's one entry (key id 0), in every node's table, naming the
// client; the tokens' own entries stay empty. A family at home with a phone
// on the move (two places) is left alone; a client without a subscriber
// limit is never judged by subscriber.
constexpr std::uint32_t kSite42 = 42, kOtherSite = 43;  // the sightings' client hashes
constexpr std::uint64_t kSharer = 0x5ab5c21bef000001ULL, kFamily = 0x5ab5c21bef000002ULL,
                        kUnjudged = 0x5ab5c21bef000003ULL;

std::unique_ptr<ServiceCluster> subscriber_cluster() {
  auto c = std::make_unique<ServiceCluster>(3, 9, 0.0, nullptr, [](ServiceConfig& sc) {
    sc.policy.subscriber_limits.push_back({kSite42, 2, 600, "site42"});
    sc.longest_token_s = 3600 + 30;
  });
  c->sim->run_until_true([&] { return all_alive(*c); }, 20000);
  return c;
}

std::size_t subscriber_refused_on(ServiceCluster& c, std::uint64_t ref, std::uint32_t issued_s) {
  std::size_t n = 0;
  const auto now_s = static_cast<std::uint32_t>(c.sim->now() / 1000);
  for (std::size_t i = 0; i < c.services.size(); ++i) {
    std::uint32_t since = 0;
    const RevocationState s = c.states[i]->state->lookup(kSubscriberKeyId, ref, now_s, &since);
    n += s == RevocationState::revoked && issued_s <= since;
  }
  return n;
}

TEST(SharingServiceSim, AnAccountUsedFromMorePlacesThanItsLimitIsOneVerdictOnEveryNode) {
  auto c = subscriber_cluster();
  const auto issued_s = static_cast<std::uint32_t>(c->sim->now() / 1000) - 60;
  for (int round = 0; round < 3; ++round) {
    for (std::uint64_t friend_ = 0; friend_ < 4; ++friend_) {  // four friends, four tokens, four places
      c->use_as_subscriber(friend_ % 3, 500 + friend_, kSharer, kFiveNetworks[friend_]);
    }
    // The family: TV and tablet at home, a phone on mobile data; the other
    // site's member in five places, with no subscriber limit.
    c->use_as_subscriber(0, 600, kFamily, "198.51.100.7");
    c->use_as_subscriber(1, 601, kFamily, "198.51.100.8");
    c->use_as_subscriber(2, 602, kFamily, "203.0.113.9");
    for (std::uint64_t k = 0; k < 5; ++k) c->use_as_subscriber(k % 3, 700 + k, kUnjudged, kFiveNetworks[k], kOtherSite);
    c->sim->run_for(1000);
  }
  c->sim->run_for(500);
  EXPECT_EQ(subscriber_refused_on(*c, kSharer, issued_s), 3u) << "every node refuses the sharer's tokens";
  EXPECT_EQ(subscriber_refused_on(*c, kFamily, issued_s), 0u) << "a family with a phone";
  EXPECT_EQ(subscriber_refused_on(*c, kUnjudged, issued_s), 0u) << "a client without a subscriber limit";
  for (std::uint64_t t = 500; t < 504; ++t) EXPECT_EQ(c->revoked_count(t), 0u) << "no token is shared on its own";
  const gossip::Revocation* r = c->sim->node(2)->revocations().find({kSubscriberKeyId, kSharer});
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->reason, kReasonShared);
  EXPECT_EQ(r->evidence.user, "site42") << "whose subscriber: the feed and the status page name the client";
  EXPECT_EQ(r->evidence.limit, 2u);
  EXPECT_GE(r->evidence.places.size(), 3u);
  EXPECT_EQ(r->token_expires, r->stamp_ms / 1000 + 3630) << "as long as a token issued before it can live";
  EXPECT_EQ(c->sim->node(0)->revocations().size(), 1u) << "one record, not one per token";
  std::size_t logged = 0;
  for (const auto& l : c->logs) logged += l->count("UT00064: subscriber 5ab5c21bef000001 of client site42");
  EXPECT_GE(logged, 1u);
  // A token minted after the verdict is served; its use from one place
  // starts the count afresh and brings no second verdict.
  const std::uint64_t stamp = r->stamp_ms;
  for (int round = 0; round < 3; ++round) {
    c->use_as_subscriber(round % 3, 510, kSharer, "198.51.100.7");
    c->sim->run_for(1000);
  }
  EXPECT_EQ(c->sim->node(1)->revocations().find({kSubscriberKeyId, kSharer})->stamp_ms, stamp);
  EXPECT_EQ(subscriber_refused_on(*c, kSharer, static_cast<std::uint32_t>(stamp / 1000) + 1), 0u);
  // The status page's record says what it is and whose.
  const auto rec = blocked_record(*c->services[0], "5ab5c21bef000001");
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->get("key").value_or(""), "0");
  EXPECT_EQ(rec->get("reason").value_or(""), "auto");
  EXPECT_EQ(rec->get("user").value_or(""), "site42");
  EXPECT_EQ(rec->get("limit").value_or(""), "2");
}

// An operator's pardon of a subscriber holds: the same account seen again
// from four places stays served, and the pardon is counted as held.
TEST(SharingServiceSim, APardonedSubscriberIsNotJudgedAgain) {
  auto c = subscriber_cluster();
  gossip::Revocation pardon;
  pardon.token = {kSubscriberKeyId, kSharer};
  pardon.token_expires = static_cast<std::uint32_t>(c->sim->now() / 1000) + 3630;
  pardon.stamp_ms = c->sim->now();
  pardon.pardon = true;
  pardon.reason = kReasonManual;
  pardon.origin = c->sim->node(0)->config().node_id;
  c->sim->node(0)->decide(pardon, c->sim->now());
  c->sim->run_for(1000);
  for (int round = 0; round < 3; ++round) {
    for (std::uint64_t k = 0; k < 4; ++k) c->use_as_subscriber(k % 3, 520 + k, kSharer, kFiveNetworks[k]);
    c->sim->run_for(1000);
  }
  EXPECT_EQ(subscriber_refused_on(*c, kSharer, 0), 0u);
  EXPECT_TRUE(c->sim->node(1)->revocations().find({kSubscriberKeyId, kSharer})->pardon);
}

// A subscriber's use from before its verdict (in flight when the owner
// decided, or from a node that had not heard) says nothing new: the owner
// does not count it towards a second verdict.
TEST(SharingService, UsesFromBeforeASubscriberVerdictAreNotCountedAgain) {
  HeapState shm;
  Captured log;
  ServiceConfig sc;
  sc.policy.max_sessions = 10000;
  sc.policy.subscriber_limits.push_back({kSite42, 1, 600, "site42"});
  SharingService service(sc, *shm.state, log.sink());
  std::uint64_t now = kT0;
  service.clock = [&] { return now; };
  NoNetwork net;
  gossip::Node node(node_config(1), net, service, now, 7);
  service.attach(&node);
  auto use = [&](std::uint64_t session, const std::string& ip, std::uint64_t at) {
    Sighting s = sighting(session, ip, at);
    shm.state->report(s);
    shm.state->report(subscriber_sighting(s, kSharer));
    service.drain(now);
  };
  use(1, "198.51.100.7", now);
  use(2, "203.0.113.9", now);
  const gossip::Revocation* r = node.revocations().find({kSubscriberKeyId, kSharer});
  ASSERT_NE(r, nullptr) << "two places against a limit of one";
  const std::uint64_t stamp = r->stamp_ms;
  EXPECT_EQ(service.subscriber_detector()->verdict(kSubscriberKeyId, kSharer).places, 0u) << "forgotten at the verdict";
  now += 2000;
  use(3, "192.0.2.33", kT0 - 1000);  // used before the verdict, arriving late
  use(4, "45.33.12.8", kT0 - 500);
  EXPECT_EQ(node.revocations().find({kSubscriberKeyId, kSharer})->stamp_ms, stamp);
  // Uses just after it from nodes that had not heard of it yet: the same.
  use(7, "151.101.1.5", kT0 + 1000);
  use(8, "198.51.100.99", kT0 + 1500);
  EXPECT_EQ(node.revocations().find({kSubscriberKeyId, kSharer})->stamp_ms, stamp) << "within the settle time";
  EXPECT_EQ(log.count("UT00064: "), 1u);
  // Two places after it (past the workers' 5 s repeat filter): a second verdict, stamped later.
  now += 6000;
  use(5, "192.0.2.33", now);
  use(6, "45.33.12.8", now);
  EXPECT_GT(node.revocations().find({kSubscriberKeyId, kSharer})->stamp_ms, stamp);
}

// A client's "issued before T" for a subscriber (docs/client-api.md): the
// entry is stamped just before T; one that wins over it answers instead,
// a later revocation as is, a later pardon as superseded.
TEST(SharingService, ASubscribersIssuedBeforeIsStampedAtItsCutOffUnlessALaterVerdictHolds) {
  HeapState shm;
  Captured log;
  ServiceConfig sc;
  sc.policy.max_sessions = 10000;
  SharingService service(sc, *shm.state, log.sink());
  std::uint64_t now = kT0;
  service.clock = [&] { return now; };
  NoNetwork net;
  gossip::Node node(node_config(1), net, service, now, 7);
  service.attach(&node);
  int nonce = 0;
  auto revoke = [&](std::uint64_t ref, std::optional<std::uint64_t> before) {
    control::Record req;
    req.kind = "client-revoke";
    req.add("client", "site42").add("nonce", "nonce-" + std::to_string(++nonce)).add("key", 0);
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(ref));
    req.add("session", hex).add("expires", kT0 / 1000 + 3600);
    if (before) req.add("issued_before", *before);
    return service.handle(req);
  };
  const std::uint64_t t = kT0 / 1000 - 600;
  auto answer = revoke(kSharer, t);
  ASSERT_EQ(answer[0].kind, "ok");
  EXPECT_EQ(answer[0].get_u64("stamp_ms"), t * 1000 - 1);
  std::uint32_t since = 0;
  EXPECT_EQ(shm.state->lookup(kSubscriberKeyId, kSharer, static_cast<std::uint32_t>(kT0 / 1000), &since),
            RevocationState::revoked);
  EXPECT_EQ(since, t - 1) << "tokens issued before t";
  // Until now, then an earlier cut-off: the later entry holds and answers.
  ASSERT_EQ(revoke(kSharer, std::nullopt)[0].kind, "ok");
  answer = revoke(kSharer, t - 60);
  ASSERT_EQ(answer[0].kind, "ok");
  EXPECT_EQ(answer[0].get_u64("stamp_ms"), kT0);
  // After an operator's pardon, an earlier cut-off is superseded; a cut-off
  // in the future is refused.
  now += 1000;
  control::Record pardon;
  pardon.kind = "pardon";
  pardon.add("key", 0).add("session", "5ab5c21bef000001");
  ASSERT_EQ(service.handle(pardon)[0].kind, "ok");
  answer = revoke(kSharer, t);
  EXPECT_EQ(answer[0].kind, "error");
  EXPECT_EQ(answer[0].get("problem").value_or(""), "superseded");
  EXPECT_TRUE(node.revocations().find({kSubscriberKeyId, kSharer})->pardon);
  EXPECT_EQ(node.revocations().find({kSubscriberKeyId, kSharer})->evidence.user, "site42")
      << "an operator's pardon keeps the subscriber's client (the feed's filter)";
  control::Record by_name;
  by_name.kind = "revoke";
  by_name.add("key", 0).add("session", "5ab5c21bef000001").add("user", "ops-anna").add("comment", "chargeback");
  now += 1000;
  ASSERT_EQ(service.handle(by_name)[0].kind, "ok");
  const gossip::Revocation* manual = node.revocations().find({kSubscriberKeyId, kSharer});
  EXPECT_EQ(manual->evidence.user, "site42");
  EXPECT_EQ(manual->evidence.comment, "by ops-anna: chargeback");
  answer = revoke(kFamily, now / 1000 + 10);
  EXPECT_EQ(answer[0].get("problem").value_or(""), "bad-request");
  EXPECT_EQ(node.revocations().find({kSubscriberKeyId, kFamily}), nullptr);
}

// Ten seeds of six faulty phases. Every control token stays served and
// every run converges, seed by seed. A shared token revoked on every node
// within a second of the heal is the target; under 30% loss a revocation
// can still miss one node for longer (build/chaos_bench 100: 2 late of
// 9,900 when places came in; at-least-once delivery is issue 21), so over the ten
// seeds at most one of some 300 shared tokens may be late.
TEST(SharingServiceChaos, EverySharedTokenIsRevokedEverywhereWithinASecondOfTheHeal) {
  std::size_t shared = 0, in_time = 0;
  std::string late;
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    const ChaosResult r = run_chaos(seed, 6, 3000);
    EXPECT_GT(r.shared, 10u) << seed;
    EXPECT_EQ(r.controls_revoked, 0u) << seed << ": " << r.failures;
    EXPECT_TRUE(r.converged) << seed << ": " << r.failures;
    EXPECT_LE(r.max_ms_after_heal, 1000u) << seed;
    shared += r.shared;
    in_time += r.revoked_in_time;
    if (r.revoked_in_time != r.shared) late += "seed " + std::to_string(seed) + ": " + r.failures;
  }
  EXPECT_GE(in_time + 1, shared) << late;
  std::printf("chaos: %zu of %zu shared tokens revoked everywhere within 1 s of the heal%s%s\n", in_time, shared,
              late.empty() ? "" : "; late: ", late.c_str());
}

}  // namespace
