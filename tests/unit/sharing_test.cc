// SPDX-License-Identifier: Apache-2.0
// The link-sharing rule: network classification, proxy detection, places,
// verdicts. Places are given as a location database would give them (an
// AS per prefix, in Node's table), or left to the fallback (/16, /32).
#include "../../mod_uritoken/cluster/sharing.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

using namespace uritoken;

namespace {

constexpr std::uint64_t kT0 = 1800000000000;  // unix ms
constexpr std::uint32_t kExpires = 1800086400;
constexpr std::uint64_t kSec = 1000;

IpAddress ip(const std::string& text) { return *parse_ip_address(text); }

std::string v4(int a, int b, int c, int d) {
  return std::to_string(a) + "." + std::to_string(b) + "." + std::to_string(c) + "." + std::to_string(d);
}

// Where the test addresses are, as a location database would say: a
// cable ISP, a mobile carrier, a European incumbent, a hosting provider,
// each with IPv4 and IPv6. Other addresses get the fallback places.
struct AsRange {
  const char* prefix;
  std::uint32_t asn;
};
constexpr AsRange kTestAs[] = {
    {"198.51.0.0/16", 64501}, {"2001:db8:100::/40", 64501},  // "cable"
    {"203.0.0.0/16", 64502},  {"2001:db8:200::/40", 64502},  // "mobile"
    {"192.0.2.0/24", 64503},  {"2001:db8:300::/40", 64503},  // "incumbent"
    {"198.18.0.0/15", 64504}, {"2001:db8:400::/40", 64504},  // "hosting"
};

Place test_place(const IpAddress& a, const NetworkId& net, bool with_db) {
  if (with_db) {
    for (const AsRange& r : kTestAs) {
      const IpPrefix p = *parse_ip_prefix(r.prefix);
      if (p.addr.v6 == a.v6 && std::memcmp(mask_ip(a, p.length).bytes, p.addr.bytes, 16) == 0) {
        Place place;
        place.kind = PlaceKind::as;
        place.id = r.asn;
        return place;
      }
    }
  }
  return fallback_place(net);
}

// Classifies like the observing node does, then feeds the owner's detector.
struct Node {
  explicit Node(const SharingPolicy& p = SharingPolicy(), bool with_db = true)
      : classifier(p), detector(p), db(with_db) {}
  SharingVerdict see(std::uint64_t session, const std::string& addr, std::uint64_t time_ms,
                     std::uint32_t client_hash = 1) {
    const IpAddress a = unmapped_ip(ip(addr));
    const NetworkId net = classifier.network_of(a);
    const bool is_proxy = classifier.observe(net, session, client_hash, time_ms);
    return detector.observe(7, session, kExpires, net, test_place(a, net, db),
                            classifier.in_shared_range(a) || is_proxy, time_ms, client_hash);
  }
  NetworkClassifier classifier;
  SharingDetector detector;
  bool db;
};

SharingPolicy small_policy(std::size_t max_sessions = 1000) {
  SharingPolicy p;
  p.max_sessions = max_sessions;
  return p;
}

}  // namespace

TEST(NetworkClassifier, MasksToConfiguredPrefixes) {
  const NetworkClassifier c(small_policy());
  EXPECT_EQ(format_network(c.network_of(ip("198.51.100.77"))), "198.51.100.0/24");
  EXPECT_EQ(c.network_of(ip("198.51.100.1")), c.network_of(ip("198.51.100.254")));
  EXPECT_NE(c.network_of(ip("198.51.100.1")), c.network_of(ip("198.51.101.1")));
  EXPECT_EQ(format_network(c.network_of(ip("2001:db8:1:2:3::4"))), "2001:db8:1::/48");
  EXPECT_EQ(c.network_of(ip("2001:db8:1:1::1")), c.network_of(ip("2001:db8:1:ffff::2")));
  EXPECT_NE(c.network_of(ip("2001:db8:1::1")), c.network_of(ip("2001:db8:2::1")));
  // An IPv4 network and an IPv6 network with the same leading bytes differ.
  EXPECT_NE(c.network_of(ip("32.1.13.184")), c.network_of(ip("2001:db8::")));
  EXPECT_NE(c.network_of(ip("32.1.13.184")).hash(), c.network_of(ip("2001:db8::")).hash());

  // A mapped address built by hand (as from a dual-stack socket) is its IPv4 network.
  IpAddress mapped;
  mapped.v6 = true;
  const std::uint8_t bytes[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, 9};
  std::memcpy(mapped.bytes, bytes, 16);
  EXPECT_EQ(c.network_of(mapped), c.network_of(ip("198.51.100.1")));

  SharingPolicy wide = small_policy();
  wide.ipv4_prefix = 16;
  wide.ipv6_prefix = 56;
  const NetworkClassifier w(wide);
  EXPECT_EQ(format_network(w.network_of(ip("198.51.100.77"))), "198.51.0.0/16");
  EXPECT_EQ(format_network(w.network_of(ip("2001:db8:1:2ff::1"))), "2001:db8:1:200::/56");
}

TEST(NetworkClassifier, DefaultAndConfiguredSharedRanges) {
  SharingPolicy p = small_policy();
  p.shared_ranges.push_back(*parse_ip_prefix("203.0.113.0/24"));
  const NetworkClassifier c(p);
  for (const char* shared :
       {"100.64.0.1", "100.127.255.254", "10.1.2.3", "172.16.0.1", "172.31.255.1", "192.168.1.1", "127.0.0.1",
        "fd00::1", "fc12::1", "::1", "fe80::1", "::ffff:100.64.1.1", "203.0.113.50"}) {
    EXPECT_TRUE(c.in_shared_range(ip(shared))) << shared;
  }
  for (const char* open :
       {"100.63.255.255", "100.128.0.0", "172.32.0.1", "198.51.100.1", "2001:db8::1", "8.8.8.8", "203.0.114.1"}) {
    EXPECT_FALSE(c.in_shared_range(ip(open))) << open;
  }
  p.default_shared_ranges = false;
  const NetworkClassifier only_configured(p);
  EXPECT_FALSE(only_configured.in_shared_range(ip("100.64.0.1")));
  EXPECT_TRUE(only_configured.in_shared_range(ip("203.0.113.50")));
}

TEST(NetworkClassifier, DetectsBusyNetworksOfManyClientsAsProxies) {
  NetworkClassifier c(small_policy());
  const NetworkId proxy = c.network_of(ip("198.51.100.1"));
  const NetworkId one_client = c.network_of(ip("198.51.101.1"));
  const NetworkId quiet = c.network_of(ip("198.51.102.1"));
  bool last = false;
  for (std::uint64_t s = 0; s < 80; ++s) {
    const std::uint64_t t = kT0 + s * kSec;
    last = c.observe(proxy, 1000 + s, static_cast<std::uint32_t>(s % 5), t);
    c.observe(one_client, 5000 + s, 42, t);  // one client site's many tokens: a proxy too (below)
    if (s < 10) c.observe(quiet, 9000 + s, static_cast<std::uint32_t>(s % 5), t);
    if (s == 20) {
      EXPECT_FALSE(last) << "20 sessions are below the threshold of 50";
    }
  }
  EXPECT_TRUE(last);
  const std::uint64_t now = kT0 + 80 * kSec;
  EXPECT_TRUE(c.is_detected_proxy(proxy, now));
  // A deployment that serves one client site detects its proxies too:
  // sessions count, not client sites (proxy_clients defaults to 1).
  EXPECT_TRUE(c.is_detected_proxy(one_client, now));
  EXPECT_FALSE(c.is_detected_proxy(quiet, now));
  // The status page lists exactly the detected proxies.
  const auto listed = c.detected_proxy_networks(now, 100);
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(c.detected_proxies(now), 2u);
  // A proxy that goes quiet stops counting as one a window later.
  EXPECT_TRUE(c.is_detected_proxy(proxy, now + 500 * kSec));
  EXPECT_FALSE(c.is_detected_proxy(proxy, now + 700 * kSec));
  EXPECT_EQ(c.detected_proxies(now + 700 * kSec), 0u);
}

TEST(NetworkClassifier, ProxyClientsStillRequiresSeveralSitesWhenRaised) {
  SharingPolicy p = small_policy();
  p.proxy_clients = 3;
  NetworkClassifier c(p);
  const NetworkId one_client = c.network_of(ip("198.51.101.1"));
  for (std::uint64_t s = 0; s < 80; ++s) c.observe(one_client, 5000 + s, 42, kT0 + s * kSec);
  EXPECT_FALSE(c.is_detected_proxy(one_client, kT0 + 80 * kSec));
}

TEST(NetworkClassifier, ProxyDetectorStaysBoundedAndKeepsBusyProxies) {
  SharingPolicy p = small_policy();
  p.proxy_networks = 64;
  NetworkClassifier c(p);
  const std::size_t before = c.memory_bytes();
  const NetworkId proxy = c.network_of(ip("198.51.100.1"));
  for (std::uint64_t s = 0; s < 60; ++s) c.observe(proxy, s, static_cast<std::uint32_t>(s), kT0);
  ASSERT_TRUE(c.is_detected_proxy(proxy, kT0));
  // A flood of small networks in the same minute pushes out quiet entries, not the proxy.
  for (int i = 0; i < 20000; ++i) {
    c.observe(c.network_of(ip(v4(11 + i / 65536, (i / 256) % 256, i % 256, 1))), 100000 + i, 1, kT0 + kSec);
  }
  EXPECT_EQ(c.memory_bytes(), before);
  EXPECT_TRUE(c.is_detected_proxy(proxy, kT0 + kSec));
  // One session each: none of the flood is a proxy, so the proxy is the only one.
  EXPECT_EQ(c.detected_proxies(kT0 + kSec), 1u);
  // The full table still admits a newcomer (in place of a quiet entry) and
  // lets it qualify as a proxy.
  const NetworkId late = c.network_of(ip("203.0.113.1"));
  for (std::uint64_t s = 0; s < 60; ++s) c.observe(late, 500000 + s, static_cast<std::uint32_t>(s), kT0 + 2 * kSec);
  EXPECT_TRUE(c.is_detected_proxy(late, kT0 + 2 * kSec));
  EXPECT_TRUE(c.is_detected_proxy(proxy, kT0 + 2 * kSec));
  EXPECT_EQ(c.detected_proxies(kT0 + 2 * kSec), 2u);
}

TEST(SharingDetector, FamilyOnOneNetworkIsNotShared) {
  Node n(small_policy());
  SharingVerdict v;
  // Several devices of one home behind one address, all day long.
  for (int i = 0; i < 500; ++i) v = n.see(1, v4(198, 51, 100, 10 + i % 4), kT0 + i * 30 * kSec);
  EXPECT_FALSE(v.shared);
  EXPECT_EQ(v.places, 1u);
  EXPECT_EQ(v.networks, 1u);
  EXPECT_DOUBLE_EQ(v.score, 1.0);
}

// A subscriber's slot (its tokens come and go) lives as long as the latest
// expiry any of them brought, not the last one's: a short-lived token seen
// last must not wipe what the account was seen doing.
TEST(SharingDetector, ASlotKeepsTheLatestExpiryItWasShown) {
  SharingDetector d(small_policy());
  const auto t_s = static_cast<std::uint32_t>(kT0 / 1000);
  NetworkId a, b;
  a.bytes[0] = 198;
  b.bytes[0] = 203;
  d.observe(0, 99, t_s + 3600, a, false, kT0);
  d.observe(0, 99, t_s + 60, b, false, kT0 + kSec);  // a token that expires in a minute, seen last
  d.expire(kT0 + 120 * kSec);
  EXPECT_EQ(d.verdict(0, 99).places, 2u) << "still tracked after the short token expired";
  d.expire(kT0 + 3601 * kSec);
  EXPECT_EQ(d.verdict(0, 99).places, 0u) << "forgotten after the longest";
}

TEST(SharingDetector, DualStackHomeIsOnePlace) {
  for (bool db : {true, false}) {
    Node n(small_policy(), db);
    SharingVerdict v;
    // Happy Eyeballs: IPv6 mostly, IPv4 now and then, a segment every 6 s.
    for (int i = 0; i < 100; ++i) {
      v = n.see(2, i % 7 == 3 ? "198.51.100.7" : "2001:db8:100:1::5", kT0 + i * 6 * kSec);
    }
    EXPECT_EQ(v.places, 1u) << db;
    EXPECT_EQ(v.networks, 2u) << db;
    EXPECT_DOUBLE_EQ(v.score, 1.0) << "a v4/v6 pair is one network's worth";
  }
}

TEST(SharingDetector, PhoneHandoverBetweenDualStackNetworksIsNotShared) {
  Node n(small_policy());
  SharingVerdict v;
  // Home Wi-Fi (dual stack) for five minutes, mobile (dual stack, a new
  // CGNAT /24 now and then) for five, home again, for an hour.
  for (int minute = 0; minute < 60; ++minute) {
    const bool wifi = (minute / 5) % 2 == 0;
    for (int s = 0; s < 60; s += 6) {
      const bool v6 = s % 18 != 0;
      const std::string addr =
          wifi ? (v6 ? "2001:db8:100:1::5" : "198.51.100.7")
               : (v6 ? "2001:db8:200:" + std::to_string(minute % 3) + "::9" : v4(203, 0, 113, minute % 200));
      v = n.see(3, addr, kT0 + (minute * 60 + s) * kSec);
      ASSERT_FALSE(v.shared) << minute;
    }
  }
  EXPECT_EQ(v.places, 2u);
}

TEST(SharingDetector, CarrierPoolIsOnePlaceAndNeverCarries) {
  SharingPolicy p = small_policy();
  Node n(p);
  SharingVerdict v;
  // A new public address per connection across a carrier's pool: 50
  // different /24s of one AS in a few minutes (an AOL-style farm alike).
  for (int i = 0; i < 50; ++i) v = n.see(4, v4(198, 51, i, 7), kT0 + i * 6 * kSec);
  EXPECT_FALSE(v.shared);
  EXPECT_EQ(v.places, 1u);
  EXPECT_DOUBLE_EQ(v.score, 1.0 + p.place_extra_max);
  // The same person's phone on another carrier meanwhile: still two places.
  v = n.see(4, "203.0.113.9", kT0 + 300 * kSec);
  EXPECT_FALSE(v.shared);
  EXPECT_EQ(v.places, 2u);
}

TEST(SharingDetector, ExactlyMaxPlacesIsNotSharedHalfAPlaceMoreIs) {
  for (unsigned max : {2u, 3u}) {
    SharingPolicy p = small_policy();
    p.max_places = max;
    Node n(p, false);
    SharingVerdict v;
    // Distinct fallback places: IPv4 /16s.
    for (unsigned i = 0; i < max; ++i) v = n.see(5, v4(11 + static_cast<int>(i), 1, 0, 9), kT0 + i * kSec);
    EXPECT_FALSE(v.shared) << max;
    EXPECT_DOUBLE_EQ(v.score, max);
    v = n.see(5, v4(30, 1, 0, 1), kT0 + 10 * kSec);
    EXPECT_TRUE(v.shared) << max;
    EXPECT_EQ(v.places, max + 1);
  }
}

// UriTokenClientSharing: a client's own limit and shorter window apply to
// its tokens only; every other client keeps the policy's.
TEST(SharingDetector, AClientsOwnLimitAndWindowApplyToItsTokensOnly) {
  SharingPolicy p = small_policy();
  const std::uint32_t campus = sharing_client_hash("campus-tv"), brief = sharing_client_hash("brief");
  p.client_limits = {{campus, 4, 600}, {brief, 3, 60}};
  Node n(p, false);
  SharingVerdict mine, other, quick;
  for (int i = 0; i < 4; ++i) {
    const std::string addr = v4(11 + i, 1, 0, 9);
    mine = n.see(1, addr, kT0 + i * kSec, campus);
    other = n.see(2, addr, kT0 + i * kSec, 99);
  }
  EXPECT_FALSE(mine.shared) << "four places, the campus client's limit is 4";
  EXPECT_EQ(mine.limit, 4u);
  EXPECT_TRUE(other.shared) << "another client's token in four places";
  EXPECT_EQ(other.limit, 3u);
  mine = n.see(1, "100.64.7.7", kT0 + 6 * kSec, campus);
  EXPECT_TRUE(mine.shared) << "four places and a shared network: 5 >= 4.5";
  // Four concurrent places, two of them 100 s before the others: inside
  // the policy's 600 s window, outside the brief client's 60 s.
  for (const std::uint64_t session : {3u, 4u}) {
    const std::uint32_t client = session == 3 ? brief : 99;
    n.see(session, v4(50, 1, 0, 9), kT0, client);
    n.see(session, v4(51, 1, 0, 9), kT0, client);
    n.see(session, v4(52, 1, 0, 9), kT0 + 100 * kSec, client);
    quick = n.see(session, v4(53, 1, 0, 9), kT0 + 100 * kSec, client);
    EXPECT_EQ(quick.shared, session == 4) << session;
    EXPECT_EQ(quick.places, session == 3 ? 2u : 4u) << session;
  }
  EXPECT_NE(p.digest(), small_policy().digest()) << "nodes with other client limits are named (UT00037)";
}

TEST(SharingDetector, SequentialPlacesWeighLessThanConcurrentOnes) {
  Node spaced(small_policy(), false), close(small_policy(), false);
  SharingVerdict a, b;
  // Five places one after the other, each one well after the previous use.
  for (int i = 0; i < 5; ++i) a = spaced.see(6, v4(11 + i, 1, 1, 1), kT0 + i * 130 * kSec);
  EXPECT_EQ(a.places, 4u) << "four places are remembered per token";
  EXPECT_DOUBLE_EQ(a.score, 2.0);
  EXPECT_FALSE(a.shared);
  // The same five within a minute: a forum post.
  for (int i = 0; i < 5; ++i) b = close.see(6, v4(11 + i, 1, 1, 1), kT0 + i * 12 * kSec);
  EXPECT_DOUBLE_EQ(b.score, 4.0);
  EXPECT_TRUE(b.shared);
}

TEST(SharingDetector, NetworksInsidePlacesTipButNeverCarry) {
  const SharingPolicy p = small_policy();
  ASSERT_EQ(p.max_places, 3u);
  ASSERT_DOUBLE_EQ(p.network_weight, 0.1);
  ASSERT_DOUBLE_EQ(p.place_extra_max, 0.3);
  Node n(p);
  SharingVerdict v;
  // Three places at once: a dual-WAN home and a phone (the most an honest
  // household shows within minutes).
  n.see(7, "198.51.100.1", kT0);
  n.see(7, "192.0.2.1", kT0 + kSec);
  v = n.see(7, "203.0.113.1", kT0 + 2 * kSec);
  EXPECT_EQ(v.places, 3u);
  EXPECT_DOUBLE_EQ(v.score, 3.0);
  EXPECT_FALSE(v.shared);
  // The phone's carrier hands out three more IPv4 networks: +0.3 at most.
  for (int i = 0; i < 6; ++i) v = n.see(7, v4(203, 0, 114 + i, 1), kT0 + (3 + i) * kSec);
  EXPECT_NEAR(v.score, 3.3, 1e-9);
  EXPECT_FALSE(v.shared);
  // More networks inside a second place (strangers on the cable ISP, or
  // an office's proxy pool on a commute) add nothing more: all networks
  // inside places weigh at most 0.3 together, so they never tip.
  for (int i = 0; i < 6; ++i) v = n.see(7, v4(198, 51, 101 + i, 1), kT0 + (10 + i) * kSec);
  EXPECT_NEAR(v.score, 3.3, 1e-9);
  EXPECT_FALSE(v.shared);
  // A fourth place does.
  v = n.see(7, "2001:db8:400::1", kT0 + 20 * kSec);
  EXPECT_EQ(v.places, 4u);
  EXPECT_TRUE(v.shared);
}

// A commute without a pause, each handover within concurrent_s: home
// (one network), cellular through a carrier's NAT pool (a new /24 per
// connection), the office through a proxy pool. Three places, each
// concurrent with the next, networks inside two of them: served.
TEST(SharingDetector, CommuteThroughTwoAddressPoolsIsNotShared) {
  Node n(small_policy());
  SharingVerdict v;
  std::uint64_t t = kT0;
  for (int i = 0; i < 20; ++i, t += 6 * kSec) v = n.see(9, "2001:db8:100::5", t);       // home, dual stack
  for (int i = 0; i < 20; ++i, t += 6 * kSec) v = n.see(9, v4(203, 0, i * 3, 9), t);    // carrier pool
  for (int i = 0; i < 20; ++i, t += 6 * kSec) v = n.see(9, v4(192, 0, 2, 100 + i), t);  // office egress ...
  for (int i = 0; i < 20; ++i, t += 6 * kSec) v = n.see(9, "2001:db8:3" + std::to_string(i % 10) + "0::1", t);
  EXPECT_EQ(v.places, 3u);
  EXPECT_LE(v.score, 3.3 + 1e-9);
  EXPECT_FALSE(v.shared);
}

TEST(SharingDetector, SightingsOlderThanTheWindowAreForgotten) {
  Node n(small_policy(), false);
  for (int i = 0; i < 3; ++i) n.see(8, v4(11 + i, 1, 1, 1), kT0 + i * kSec);
  // Ten minutes and more later: only the places of the last window count.
  SharingVerdict v = n.see(8, v4(20, 1, 1, 1), kT0 + 605 * kSec);
  EXPECT_EQ(v.places, 1u);
  EXPECT_FALSE(v.shared);
  n.see(8, v4(21, 1, 1, 1), kT0 + 606 * kSec);
  n.see(8, v4(22, 1, 1, 1), kT0 + 607 * kSec);
  v = n.see(8, v4(23, 1, 1, 1), kT0 + 608 * kSec);
  EXPECT_EQ(v.places, 4u);
  EXPECT_TRUE(v.shared);  // four fresh concurrent places
  // A sighting delayed beyond the window (gossip backlog) changes nothing.
  const SharingVerdict before = n.detector.verdict(7, 8);
  n.see(8, v4(24, 1, 1, 1), kT0 - 100 * kSec);
  EXPECT_EQ(n.detector.verdict(7, 8).places, before.places);
  EXPECT_DOUBLE_EQ(n.detector.verdict(7, 8).score, before.score);
}

TEST(SharingDetector, LongLivedTokenKeepsCountingAfterRebases) {
  Node n(small_policy(), false);
  SharingVerdict v;
  // Three hours at home (many rebases of the 8-bit times), with a visit
  // from another place every half hour.
  for (int i = 0; i < 3 * 120; ++i) {
    const std::uint64_t t = kT0 + i * 30 * kSec;
    v = n.see(9, "198.51.100.1", t);
    if (i % 60 == 30) v = n.see(9, v4(11 + i % 50, 1, 2, 3), t + 5 * kSec);
    ASSERT_FALSE(v.shared) << i;
    ASSERT_LE(v.places, 2u) << i;
  }
  const std::uint64_t end = kT0 + 3 * 3600 * kSec;
  n.see(9, "70.1.1.1", end);
  n.see(9, "71.1.1.1", end + kSec);
  v = n.see(9, "72.1.1.1", end + 2 * kSec);
  EXPECT_EQ(v.places, 4u);
  EXPECT_TRUE(v.shared);
}

TEST(SharingDetector, FallbackPairsDualStackWithinSecondsOnly) {
  Node n(small_policy(), false);
  n.see(10, "2001:db8:100:1::5", kT0);
  SharingVerdict v = n.see(10, "198.51.100.7", kT0 + 6 * kSec);  // the next segment, over IPv4
  EXPECT_EQ(v.places, 1u);
  for (int i = 2; i < 50; ++i) v = n.see(10, i % 5 ? "2001:db8:100:1::5" : "198.51.100.7", kT0 + i * 6 * kSec);
  EXPECT_EQ(v.places, 1u);
  // An IPv4 place first seen a minute after any IPv6 use is not the same home.
  Node m(small_policy(), false);
  m.see(11, "2001:db8:100:1::5", kT0);
  v = m.see(11, "198.51.100.7", kT0 + 60 * kSec);
  EXPECT_EQ(v.places, 2u);
}

TEST(SharingDetector, FallbackGroupsACarrierPoolByItsSlash16) {
  Node n(small_policy(), false);
  SharingVerdict v;
  for (int i = 0; i < 40; ++i) v = n.see(12, v4(172, 56, i * 5, 1), kT0 + i * 6 * kSec);
  EXPECT_EQ(v.places, 1u);
  EXPECT_FALSE(v.shared);
}

TEST(SharingDetector, ConfiguredProxyRangeCountsAsOneSharedGroup) {
  SharingPolicy p = small_policy();
  p.shared_ranges.push_back(*parse_ip_prefix("20.0.0.0/8"));  // e.g. a relay's egress
  Node with(p, false), without(small_policy(), false);
  SharingVerdict a, b;
  for (int i = 0; i < 20; ++i) {
    a = with.see(13, v4(20, i, i, 1), kT0 + i * kSec);
    b = without.see(13, v4(20, i, i, 1), kT0 + i * kSec);
  }
  EXPECT_FALSE(a.shared);
  EXPECT_EQ(a.places, 0u);
  EXPECT_EQ(a.networks, 1u);
  EXPECT_TRUE(b.shared);  // the same sightings, were the range not configured: 20 /16s
}

TEST(SharingDetector, SharedNetworksTipButNeverCarry) {
  Node n(small_policy());
  SharingVerdict v;
  n.see(14, "198.51.100.1", kT0);
  n.see(14, "192.0.2.1", kT0 + kSec);
  v = n.see(14, "100.64.0.1", kT0 + 2 * kSec);
  EXPECT_EQ(v.networks, 3u);
  EXPECT_FALSE(v.shared);  // two places + the shared group
  v = n.see(14, "10.9.9.9", kT0 + 3 * kSec);
  EXPECT_EQ(v.networks, 3u);  // all shared networks are one group
  EXPECT_FALSE(v.shared);
  v = n.see(14, "203.0.113.1", kT0 + 4 * kSec);
  EXPECT_EQ(v.places, 3u);
  EXPECT_DOUBLE_EQ(v.score, 4.0);
  EXPECT_TRUE(v.shared);  // three places reach the line, the group tips it
}

TEST(SharingDetector, SharedGroupCannotLiftPlacesShortOfTheLine) {
  const SharingPolicy p = small_policy();
  ASSERT_EQ(p.concurrent_s, 120u);
  ASSERT_DOUBLE_EQ(p.sequential_weight, 0.5);
  Node n(p);
  // A and B together, a CGNAT address with them, then C alone 180 s after
  // the last of them (beyond concurrent_s: a sequential switch, 0.5).
  // Places 1 + 1 + 0.5 = 2.5 is short of 3, though with the group the score
  // is 3.5: only "places must reach the limit" keeps it unshared.
  n.see(15, "198.51.100.1", kT0);
  n.see(15, "192.0.2.1", kT0 + 10 * kSec);
  n.see(15, "100.64.7.9", kT0 + 20 * kSec);
  const SharingVerdict v = n.see(15, "203.0.113.1", kT0 + 200 * kSec);
  EXPECT_EQ(v.places, 3u);
  EXPECT_DOUBLE_EQ(v.score, 3.5);
  EXPECT_FALSE(v.shared);
}

TEST(SharingDetector, DetectedProxyCountsAsShared) {
  Node n(small_policy(), false);
  // Two busy networks: many sessions (a school, an office).
  for (std::uint64_t s = 0; s < 60; ++s) {
    n.see(100 + s, "50.1.100.5", kT0 + s * kSec);
    n.see(200 + s, "51.1.101.5", kT0 + s * kSec);
  }
  const std::uint64_t t = kT0 + 61 * kSec;
  ASSERT_TRUE(n.classifier.is_detected_proxy(n.classifier.network_of(ip("50.1.100.5")), t));
  ASSERT_TRUE(n.classifier.is_detected_proxy(n.classifier.network_of(ip("51.1.101.5")), t));
  SharingVerdict v;
  v = n.see(16, "50.1.100.6", t);
  v = n.see(16, "51.1.101.6", t + kSec);
  v = n.see(16, "52.0.113.1", t + 2 * kSec);
  v = n.see(16, "53.0.2.1", t + 3 * kSec);
  EXPECT_EQ(v.places, 2u);
  EXPECT_FALSE(v.shared);
  // The same four networks for a fresh node that has not seen the proxies' traffic.
  Node fresh(small_policy(), false);
  fresh.see(16, "50.1.100.6", t);
  fresh.see(16, "51.1.101.6", t + kSec);
  fresh.see(16, "52.0.113.1", t + 2 * kSec);
  EXPECT_TRUE(fresh.see(16, "53.0.2.1", t + 3 * kSec).shared);
}

TEST(SharingDetector, EvidenceNamesPlacesAndTheirNetworks) {
  Node n(small_policy());
  for (int i = 0; i < 10; ++i) {
    n.see(17, "2001:db8:100:" + std::to_string(i) + "::" + std::to_string(i + 1), kT0 + i * kSec);
  }
  n.see(17, "::ffff:198.51.100.3", kT0 + 11 * kSec);
  n.see(17, "198.51.100.200", kT0 + 12 * kSec);
  SharingVerdict v = n.see(17, "203.0.113.5", kT0 + 13 * kSec);
  EXPECT_EQ(v.places, 2u);
  std::vector<std::string> names;
  for (const auto& net : n.detector.networks_of(7, 17)) {
    names.push_back(format_network(net.network) + " " + format_place(net.place));
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"198.51.100.0/24 AS64501", "2001:db8:100::/48 AS64501",
                                             "203.0.113.0/24 AS64502"}));
  const auto places = n.detector.places_of(7, 17);
  ASSERT_EQ(places.size(), 2u);
  for (const PlaceEvidence& p : places) {
    EXPECT_TRUE(p.concurrent);
    EXPECT_EQ(p.networks, p.place.id == 64501 ? 2u : 1u);
    EXPECT_DOUBLE_EQ(p.weight, 1.0);
  }
  const auto [first, last] = n.detector.seen_span(7, 17);
  EXPECT_NEAR(first, kT0 / kSec, 5);
  EXPECT_NEAR(last, kT0 / kSec + 13, 5);
}

TEST(SharingDetector, ForgetAndExpire) {
  Node n(small_policy(), false);
  for (int i = 0; i < 4; ++i) n.see(13, v4(11 + i, 51, 100, 1), kT0 + i * kSec);
  ASSERT_TRUE(n.detector.verdict(7, 13).shared);
  n.see(14, "192.0.2.1", kT0);
  n.detector.observe(7, 15, static_cast<std::uint32_t>(kT0 / 1000 + 60), n.classifier.network_of(ip("192.0.2.2")),
                     false, kT0);  // a token that expires in a minute
  EXPECT_EQ(n.detector.tracked(), 3u);

  n.detector.forget(7, 13);
  EXPECT_EQ(n.detector.tracked(), 2u);
  EXPECT_FALSE(n.detector.verdict(7, 13).shared);
  EXPECT_TRUE(n.detector.places_of(7, 13).empty());
  EXPECT_EQ(n.see(13, "192.0.2.9", kT0 + 10 * kSec).places, 1u);  // starts afresh

  n.detector.expire(kT0 + 120 * kSec);  // past token 15's expiry, within the others' window
  EXPECT_EQ(n.detector.tracked(), 2u);
  EXPECT_EQ(n.detector.verdict(7, 15).networks, 0u);
  n.detector.expire(kT0 + 700 * kSec);  // idle beyond the window
  EXPECT_EQ(n.detector.tracked(), 0u);
}

TEST(SharingDetector, MemoryForOneMillionSessions) {
  SharingPolicy p;
  p.max_sessions = 1000000;
  SharingDetector d(p);
  const double per_token = static_cast<double>(d.memory_bytes()) / p.max_sessions;
  std::printf("SharingDetector: %zu bytes (%.2f MiB) for %zu sessions, %.1f bytes per token, %zu slots\n",
              d.memory_bytes(), d.memory_bytes() / 1048576.0, p.max_sessions, per_token, d.capacity());
  // A 64-byte slot per token (one cache line) plus the table's slack,
  // the fingerprints and the network log.
  EXPECT_LT(d.memory_bytes(), 72u << 20);
  EXPECT_LE(per_token, 75.0);
  EXPECT_GE(d.capacity(), p.max_sessions);
  const NetworkClassifier c(p);
  std::printf("NetworkClassifier: %zu bytes for %zu proxy networks\n", c.memory_bytes(), p.proxy_networks);
  // 1 MiB held the bitmaps; each entry now also keeps its network (24
  // bytes) so the status page can name the detected proxies.
  EXPECT_LT(c.memory_bytes(), 5u << 18);
  // Filling it to max_sessions loses few tokens to bucket overflow.
  NetworkId net;
  for (std::uint64_t s = 0; s < p.max_sessions; ++s) d.observe(1, s * 0x9e3779b97f4a7c15ull, kExpires, net, false, kT0);
  std::printf("after %zu tokens: %zu tracked, %llu evicted\n", p.max_sessions, d.tracked(),
              static_cast<unsigned long long>(d.evictions()));
  EXPECT_EQ(d.tracked() + d.evictions(), p.max_sessions);
  EXPECT_LT(d.evictions(), p.max_sessions / 50);
}

TEST(SharingDetector, EvictionWhenFullIsCountedAndSafe) {
  Node n(small_policy(64));
  const std::size_t cap = n.detector.capacity();
  for (std::uint64_t s = 0; s < 10000; ++s) n.see(s, v4(198, 51, 100, 1), kT0 + s);
  EXPECT_LE(n.detector.tracked(), cap);
  EXPECT_GT(n.detector.evictions(), 0u);
  EXPECT_EQ(n.detector.tracked() + n.detector.evictions(), 10000u);  // each newcomer took a free slot or evicted
  EXPECT_EQ(n.detector.verdict(7, 9999).networks, 1u);               // the newest stays
  // Stale entries (idle beyond the window) make room without counting as evictions.
  const std::uint64_t evicted = n.detector.evictions();
  for (std::uint64_t s = 0; s < 16; ++s) n.see(20000 + s, "192.0.2.1", kT0 + 3600 * kSec);
  EXPECT_EQ(n.detector.evictions(), evicted);
}
