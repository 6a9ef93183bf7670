// SPDX-License-Identifier: Apache-2.0
// The location database and the place resolver (mod_uritoken/cluster/
// location.h) on databases the tests write with libloc's writer
// (tests/location_db.h): each test names its own autonomous systems.
#include "../../mod_uritoken/cluster/location.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <set>

#include "../../mod_uritoken/cluster/sharing_service.h"
#include "../location_db.h"
#include "service_cluster.h"

using namespace uritoken;
using namespace uritoken::cluster;
using namespace uritoken::cluster::simtest;

namespace {

std::string temp_db(const char* name) {
  char dir[] = "/tmp/uritoken-location-XXXXXX";
  const char* d = mkdtemp(dir);
  return std::string(d != nullptr ? d : "/tmp") + "/" + name;
}

std::shared_ptr<const LocationDatabase> example_db(std::string* path) {
  *path = temp_db("example.db");
  const std::string written = testdata::write_example_location_db(*path);
  EXPECT_EQ(written, "");
  std::string error;
  std::shared_ptr<const LocationDatabase> db = LocationDatabase::open(*path, &error);
  EXPECT_TRUE(db) << error;
  return db;
}

// The file and the directory temp_db made for it.
void remove_db(const std::string& path) {
  unlink(path.c_str());
  rmdir(path.substr(0, path.rfind('/')).c_str());
}

IpAddress ip(const char* text) { return *parse_ip_address(text); }

}  // namespace

TEST(LocationDatabase, ReadsTheAssignmentsTheTestWrote) {
  std::string path;
  const auto db = example_db(&path);
  ASSERT_TRUE(db);
  const Location home4 = db->lookup(ip("198.51.100.7")), home6 = db->lookup(ip("2001:db8:100:5::7"));
  EXPECT_EQ(home4.asn, 64500u);
  EXPECT_EQ(home6.asn, 64500u) << "a dual-stack home is one AS";
  EXPECT_EQ(std::string(home4.country, 2), "US");
  EXPECT_EQ(db->as_name(64500), "Example Cable");
  EXPECT_EQ(db->lookup(ip("198.19.200.1")).asn, 64503u) << "anywhere in the farm's /15";
  EXPECT_EQ(format_ip_prefix(db->lookup(ip("198.19.200.1")).network), "198.18.0.0/15");
  EXPECT_TRUE(db->lookup(ip("192.88.99.1")).anonymous_proxy);
  EXPECT_TRUE(db->lookup(ip("2001:db8:300::1")).satellite);
  EXPECT_FALSE(db->lookup(ip("8.8.8.8")).found);
  EXPECT_GT(db->created_at(), 1'700'000'000);
  EXPECT_EQ(db->description(), "networks named by the test itself");
  remove_db(path);
}

TEST(LocationDatabase, PlacesComeFromTheDatabaseAndItsFlagsMakeANetworkShared) {
  std::string path;
  const auto db = example_db(&path);
  ASSERT_TRUE(db);
  PlaceResolver places(db);
  NetworkClassifier classifier{SharingPolicy()};
  auto where = [&](const char* text) { return places.resolve(ip(text), classifier.network_of(ip(text))); };
  EXPECT_EQ(where("198.51.100.7").place, where("2001:db8:100::9").place) << "dual stack: one place";
  EXPECT_EQ(where("198.18.3.1").place, where("198.19.250.1").place) << "a farm's /24s: one place";
  EXPECT_FALSE(where("198.18.3.1").shared);
  EXPECT_TRUE(where("192.88.99.1").shared) << "anonymous proxy (A1)";
  EXPECT_TRUE(where("2001:db8:300::1").shared) << "satellite provider (A2)";
  EXPECT_TRUE(where("2001:db8:400::1").shared) << "another VPN";
  EXPECT_EQ(where("198.51.100.7").place.kind, PlaceKind::as);
  EXPECT_EQ(where("198.51.100.7").place.id, 64500u);
  EXPECT_EQ(where("8.8.8.8").place.kind, PlaceKind::fallback) << "unknown to the database: the fallback";
  const std::uint64_t lookups = places.lookups();
  where("198.51.100.200");
  EXPECT_EQ(places.lookups(), lookups) << "once per network: the /24 was looked up already";
  remove_db(path);
}

// The decision path on three simulated nodes with the test's database: a
// dual-stack home whose phone moves to the mobile carrier and a viewer
// behind the farm (a new /24 per request) are served; the owner and three
// strangers in the other ASes are revoked everywhere, and every node names
// the places from the database, with their country.
TEST(LocationDatabase, AForumPostIsRevokedAndHonestViewersAreServedOnEveryNode) {
  std::string path;
  const auto db = example_db(&path);
  ASSERT_TRUE(db);
  ServiceCluster c(3, 11, 0.0, nullptr, [&](ServiceConfig& sc) {
    sc.location = db;
    sc.policy.places_from_database = true;
  });
  ASSERT_TRUE(c.sim->run_until_true([&] { return all_alive(c); }, 20000));
  // The honest: home (both families), then the phone on the carrier; and the farm.
  for (int k = 0; k < 20; ++k) {
    c.use(k % 3, 800, k % 7 ? "2001:db8:100:1::5" : "198.51.100.5");
    if (k > 10) c.use(k % 3, 800, k % 2 ? "2001:db8:200:9::1" : "203.0.113.77");
    c.use(k % 3, 801, "198.18." + std::to_string(k * 11) + ".4");
    c.sim->run_for(3000);
  }
  // The forum post: the owner at home, strangers at the carrier, the telecom and the farm.
  for (const char* a : {"198.51.100.9", "203.0.113.5", "192.0.2.44", "198.19.1.1"}) {
    c.use(0, 802, a);
    c.sim->run_for(500);
  }
  c.sim->run_for(2000);
  EXPECT_EQ(c.revoked_count(802), 3u);
  EXPECT_EQ(c.revoked_count(800), 0u);
  EXPECT_EQ(c.revoked_count(801), 0u);
  control::Record status;
  status.kind = "status";
  for (std::size_t i = 0; i < 3; ++i) {
    bool seen = false;
    for (const control::Record& r : c.services[i]->handle(status)) {
      if (r.kind != "blocked") continue;
      seen = true;
      const auto found = control::parse_places(r.get("places").value_or(""));
      ASSERT_EQ(found.size(), 4u) << r.get("places").value_or("");
      std::set<std::string> names;
      for (const auto& p : found) names.insert(p.name + " " + p.country);
      EXPECT_EQ(names, (std::set<std::string>{"AS64500 Example Cable US", "AS64501 Example Mobile US",
                                              "AS64502 Example Telecom DE", "AS64503 Example Farm US"}))
          << "node " << i;
      EXPECT_NE(r.get("nets_where").value_or("").find("AS64502 DE"), std::string::npos) << "the telecom's network";
    }
    EXPECT_TRUE(seen) << "node " << i;
  }
  remove_db(path);
}

// A corrupt or empty file is refused with a message that names it.
TEST(LocationDatabase, ABadFileIsRefusedWithItsName) {
  const std::string path = temp_db("bad.db");
  std::ofstream(path) << "not a database";
  std::string error;
  EXPECT_FALSE(LocationDatabase::open(path, &error));
  EXPECT_NE(error.find(path), std::string::npos) << error;
  EXPECT_EQ(testdata::write_location_db(path, {}, {}), "");
  EXPECT_FALSE(LocationDatabase::open(path, &error)) << "a database without autonomous systems";
  EXPECT_NE(error.find("no autonomous systems"), std::string::npos) << error;
  remove_db(path);
}

// The request path's flattened table says what libloc's own lookup says,
// for random addresses over Debian's whole database (1.3 million networks,
// nested many levels deep).
TEST(LocationDatabase, TheCountryTableAgreesWithLiblocOnDebiansDatabase) {
  std::string error;
  const auto db = uritoken::cluster::LocationDatabase::open(uritoken::cluster::kDebianLocationDatabase, &error);
  ASSERT_NE(db, nullptr) << error << " (libloc-database is in scripts/debian-packages.txt)";
  const uritoken::CountryTable table = db->country_table();
  EXPECT_GT(table.ranges(), 10000u);
  std::mt19937_64 rng(42);
  int placed = 0;
  for (int i = 0; i < 20000; ++i) {
    uritoken::IpAddress a;
    a.v6 = i % 4 == 3;
    const std::uint64_t hi = rng(), lo = rng();
    for (int k = 0; k < 8; ++k) a.bytes[k] = static_cast<std::uint8_t>(hi >> (8 * k));
    for (int k = 0; k < 8; ++k) a.bytes[8 + k] = static_cast<std::uint8_t>(lo >> (8 * k));
    if (a.v6) a.bytes[0] = 0x20 | (a.bytes[0] & 0x0f);  // 2000::/4, where the assignments are
    const uritoken::cluster::Location loc = db->lookup(a);
    const uritoken::CountryCode want =
        loc.found && loc.country[0] != 0 ? uritoken::country_code(loc.country, 2) : uritoken::kNoCountry;
    ASSERT_EQ(table.lookup(a), want) << i;
    placed += want != uritoken::kNoCountry;
  }
  EXPECT_GT(placed, 5000) << "most random IPv4 addresses have a country";
  std::printf("country table: %zu ranges, %.1f MiB\n", table.ranges(), table.memory_bytes() / 1048576.0);
}
