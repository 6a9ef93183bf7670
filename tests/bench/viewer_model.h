// SPDX-License-Identifier: Apache-2.0
// The seeded model of honest viewers and sharers that make bench-sharing
// replays: public networks of real autonomous systems (taken from Debian's
// location database itself), the behaviours and sharing patterns as event
// scripts. Used by tests/bench/sharing_bench.cc (simulated nodes, the real
// decision path) and tests/bench/sharing_nodes_bench.cc (three real httpd
// nodes with mod_remoteip). Nothing here sends anything anywhere.
#pragma once

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

extern "C" {
#include <libloc/as-list.h>
#include <libloc/database.h>
#include <libloc/libloc.h>
#include <libloc/network.h>
}
#include <arpa/inet.h>

#include "../../mod_uritoken/cluster/location.h"
#include "../../mod_uritoken/core/mix.h"

namespace uritoken::bench {

constexpr std::uint64_t kSec = 1000, kMin = 60 * kSec;

// Public networks of one AS, from the database: IPv4 /24s and IPv6 /48s
// picked inside its announced prefixes.
struct AsNets {
  std::uint32_t asn = 0;
  std::string name;
  std::vector<std::pair<std::uint32_t, unsigned>> v4;  // prefix base, length
  std::vector<std::pair<std::array<std::uint8_t, 16>, unsigned>> v6;
};

inline AsNets load_as(loc_ctx* ctx, loc_database* db, std::uint32_t asn, const char* label) {
  AsNets out;
  out.asn = asn;
  out.name = label;
  loc_database_enumerator* e = nullptr;
  loc_as_list* list = nullptr;
  loc_as* as = nullptr;
  loc_as_list_new(ctx, &list);
  loc_as_new(ctx, &as, asn);
  loc_as_list_append(list, as);
  loc_database_enumerator_new(&e, db, LOC_DB_ENUMERATE_NETWORKS, 0);
  loc_database_enumerator_set_asns(e, list);
  loc_network* n = nullptr;
  while (loc_database_enumerator_next_network(e, &n) == 0 && n != nullptr) {
    const in6_addr* a = loc_network_get_first_address(n);
    unsigned prefix = loc_network_prefix(n);
    if (loc_network_address_family(n) == AF_INET && prefix >= 96) prefix -= 96;  // either convention
    if (loc_network_address_family(n) == AF_INET && out.v4.size() < 64 && prefix <= 24) {
      std::uint32_t v;
      std::memcpy(&v, a->s6_addr + 12, 4);
      out.v4.push_back({ntohl(v), prefix});
    } else if (loc_network_address_family(n) == AF_INET6 && out.v6.size() < 32 && prefix <= 48) {
      std::array<std::uint8_t, 16> b;
      std::memcpy(b.data(), a->s6_addr, 16);
      out.v6.push_back({b, prefix});
    }
    loc_network_unref(n);
    n = nullptr;
  }
  loc_database_enumerator_unref(e);
  loc_as_unref(as);
  loc_as_list_unref(list);
  return out;
}

// The k-th /24 (IPv4) or /48 (IPv6) network of an AS, host `h` in it: the
// first /24 or /48 of each of its prefixes (a more specific route inside a
// prefix may belong to another AS, and every one used is checked).
inline std::string v4_in(const AsNets& as, std::size_t k, unsigned h = 7) {
  const std::uint32_t base = as.v4[k % as.v4.size()].first;
  const std::uint32_t a = base + (h % 250) + 1;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
  return buf;
}
inline std::string v6_in(const AsNets& as, std::size_t k, unsigned h = 7) {
  auto b = as.v6[k % as.v6.size()].first;
  b[15] = static_cast<std::uint8_t>(h | 1);
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, b.data(), buf, sizeof buf);
  return buf;
}

// A 6-second HD segment at 5 Mbit/s: what the model's player fetches.
constexpr std::uint64_t kSegmentBytes = 3'750'000;

struct Event {
  std::uint64_t t;
  std::uint64_t session;
  std::string ip;
  std::uint64_t bytes = kSegmentBytes;  // the answer's size (the bulk signal counts it)
};

struct World {
  std::map<std::string, AsNets> as;      // by role
  std::vector<const AsNets*> strangers;  // residential and mobile ASes worldwide (in stranger_nets)
  std::vector<AsNets> stranger_nets;
};

// One honest behaviour or sharing pattern: appends its events, starting at
// t0, for `session`; returns when strangers first used a third place
// (sharing) or 0.
using Script = std::function<std::uint64_t(const World&, std::mt19937_64&, std::uint64_t session, std::uint64_t t0,
                                           std::vector<Event>&)>;

// A player: a segment every 6 s from `ip_of(i)` for `minutes`.
inline void play(std::vector<Event>& ev, std::uint64_t s, std::uint64_t from, std::uint64_t minutes,
                 const std::function<std::string(std::size_t)>& ip_of, std::uint64_t bytes = kSegmentBytes) {
  for (std::size_t i = 0; i * 6 * kSec < minutes * kMin; ++i) ev.push_back({from + i * 6 * kSec, s, ip_of(i), bytes});
}
// Happy Eyeballs at home: IPv6 on most connections, IPv4 on 1 in 50.
inline std::function<std::string(std::size_t)> dual_stack(const AsNets& as, std::size_t home, std::mt19937_64& rng) {
  const std::uint64_t seed = rng();
  return
      [&as, home, seed](std::size_t i) { return (splitmix64(seed + i) % 50 == 0) ? v4_in(as, home) : v6_in(as, home); };
}

// The target counts from "at least 3 strangers on 3 places": the first
// request of the stranger who brings the strangers' places to three, the
// owner's not counted. Strangers in one AS (two homes of one ISP), or in
// the owner's, add no place in the rule: with the owner's and two more,
// three places, the rule waits by design (docs/sharing-rule.md).
inline std::uint64_t third_place(std::vector<std::pair<std::uint64_t, const AsNets*>> firsts, const AsNets& owner) {
  std::sort(firsts.begin(), firsts.end());
  std::vector<const AsNets*> seen;
  for (const auto& [t, as] : firsts) {
    if (as->asn == owner.asn) continue;
    if (std::find(seen.begin(), seen.end(), as) == seen.end()) seen.push_back(as);
    if (seen.size() == 3) return t;
  }
  return 0;
}

struct Behaviour {
  const char* name;
  bool sharing;
  Script script;
};

inline std::vector<Behaviour> behaviours() {
  std::vector<Behaviour> b;
  auto home_of = [](std::mt19937_64& rng) { return static_cast<std::size_t>(rng() % 1000); };
  b.push_back({"dual-stack desktop", false,
               [=](const World& w, std::mt19937_64& rng, std::uint64_t s, std::uint64_t t0, std::vector<Event>& ev) {
                 play(ev, s, t0, 30, dual_stack(w.as.at("cable"), home_of(rng), rng));
                 return std::uint64_t{0};
               }});
  b.push_back({"family of four devices", false,
               [=](const World& w, std::mt19937_64& rng, std::uint64_t s, std::uint64_t t0, std::vector<Event>& ev) {
                 const std::size_t home = home_of(rng);
                 for (int d = 0; d < 4; ++d) play(ev, s, t0 + d * 1700, 20, dual_stack(w.as.at("cable"), home, rng));
                 // one of them is a phone that leaves for mobile data after 10 minutes
                 const std::size_t cell = home_of(rng);
                 play(ev, s, t0 + 10 * kMin, 10,
                      [&, cell](std::size_t i) { return v6_in(w.as.at("mobile"), cell + i / 40); });
                 return std::uint64_t{0};
               }});
  b.push_back({"wifi to cellular, IPv4 only", false,
               [=](const World& w, std::mt19937_64& rng, std::uint64_t s, std::uint64_t t0, std::vector<Event>& ev) {
                 const std::size_t home = home_of(rng), pool = home_of(rng);
                 play(ev, s, t0, 8, [&, home](std::size_t) { return v4_in(w.as.at("incumbent"), home); });
                 play(ev, s, t0 + 8 * kMin, 12, [&, pool](std::size_t i) {
                   return v4_in(w.as.at("mobile"), pool + i % 3, static_cast<unsigned>(i));
                 });
                 return std::uint64_t{0};
               }});
  b.push_back({"wifi to cellular, dual stack", false,
               [=](const World& w, std::mt19937_64& rng, std::uint64_t s, std::uint64_t t0, std::vector<Event>& ev) {
                 const std::size_t home = home_of(rng), cell = home_of(rng);
                 play(ev, s, t0, 8, dual_stack(w.as.at("cable"), home, rng));
                 play(ev, s, t0 + 8 * kMin + 2 * kSec, 12, dual_stack(w.as.at("mobile"), cell, rng));
                 return std::uint64_t{0};
               }});
  b.push_back({"wifi to cellular, IPv6-only + 464XLAT", false,
               [=](const World& w, std::mt19937_64& rng, std::uint64_t s, std::uint64_t t0, std::vector<Event>& ev) {
                 const std::size_t home = home_of(rng), cell = home_of(rng);
                 play(ev, s, t0, 8, dual_stack(w.as.at("cable"), home, rng));
                 // IPv6 natively, IPv4 literals through the carrier's NAT64 pool
                 play(ev, s, t0 + 8 * kMin, 12, [&, cell](std::size_t i) {
                   return i % 9 == 4 ? v4_in(w.as.at("mobile"), cell + i % 4, static_cast<unsigned>(i))
                                     : v6_in(w.as.at("mobile"), cell);
                 });
                 return std::uint64_t{0};
               }});
  b.push_back({"commute with a pause", false,
               [=](const World& w, std::mt19937_64& rng, std::uint64_t s, std::uint64_t t0, std::vector<Event>& ev) {
                 const std::size_t home = home_of(rng), cell = home_of(rng);
                 play(ev, s, t0, 6, dual_stack(w.as.at("cable"), home, rng));
                 play(ev, s, t0 + 11 * kMin, 15, dual_stack(w.as.at("mobile"), cell, rng));
                 return std::uint64_t{0};
               }});
  b.push_back({"commute without pause, via two address pools", false,
               [=](const World& w, std::mt19937_64& rng, std::uint64_t s, std::uint64_t t0, std::vector<Event>& ev) {
                 const std::size_t home = home_of(rng), pool = home_of(rng), office = home_of(rng);
                 // Each handover within seconds: three places, each concurrent with the next,
                 // networks inside the carrier's and the office's (new address per connection).
                 play(ev, s, t0, 3, dual_stack(w.as.at("cable"), home, rng));
                 play(ev, s, t0 + 3 * kMin, 3, [&, pool](std::size_t i) {
                   return v4_in(w.as.at("mobile"), pool + i % 8, static_cast<unsigned>(i * 37));
                 });
                 play(ev, s, t0 + 6 * kMin, 3, [&, office](std::size_t i) {
                   return v4_in(w.as.at("office"), office + i % 4, static_cast<unsigned>(i));
                 });
                 return std::uint64_t{0};
               }});
  b.push_back({"cellular re-attach", false,
               [=](const World& w, std::mt19937_64& rng, std::uint64_t s, std::uint64_t t0, std::vector<Event>& ev) {
                 const std::size_t cell = home_of(rng);
                 // a new /48 every 2 minutes while the old one is still in the window
                 play(ev, s, t0, 20, [&, cell](std::size_t i) { return v6_in(w.as.at("mobile"), cell + i / 20); });
                 return std::uint64_t{0};
               }});
  b.push_back({"carrier NAT, new address per connection", false,
               [=](const World& w, std::mt19937_64& rng, std::uint64_t s, std::uint64_t t0, std::vector<Event>& ev) {
                 const std::size_t pool = home_of(rng);
                 play(ev, s, t0, 20, [&, pool](std::size_t i) {
                   return v4_in(w.as.at("mobile"), pool + i % 8, static_cast<unsigned>(i * 37));
                 });
                 return std::uint64_t{0};
               }});
  b.push_back({"iCloud Private Relay", false,
               [=](const World& w, std::mt19937_64& rng, std::uint64_t s, std::uint64_t t0, std::vector<Event>& ev) {
                 const std::size_t home = home_of(rng);
                 // the phone's Safari through the relay (its egress rotates), the TV at home without it
                 play(ev, s, t0, 20,
                      [&](std::size_t i) { return v4_in(w.as.at("relay"), i % 16, static_cast<unsigned>(i)); });
                 play(ev, s, t0 + 3 * kSec, 20, dual_stack(w.as.at("cable"), home, rng));
                 return std::uint64_t{0};
               }});
  b.push_back({"WARP", false,
               [=](const World& w, std::mt19937_64& rng, std::uint64_t s, std::uint64_t t0, std::vector<Event>& ev) {
                 const std::size_t k = home_of(rng);
                 play(ev, s, t0, 20, [&, k](std::size_t i) {
                   return i % 3 ? v6_in(w.as.at("warp"), k + i % 4) : v4_in(w.as.at("warp"), k + i % 5);
                 });
                 return std::uint64_t{0};
               }});
  b.push_back({"AOL-style farm, new /24 per request", false,
               [=](const World& w, std::mt19937_64& rng, std::uint64_t s, std::uint64_t t0, std::vector<Event>& ev) {
                 const std::size_t k = home_of(rng);
                 play(ev, s, t0, 20,
                      [&, k](std::size_t i) { return v4_in(w.as.at("farm"), k + i, static_cast<unsigned>(i)); });
                 return std::uint64_t{0};
               }});
  b.push_back({"office proxy pool + own phone", false,
               [=](const World& w, std::mt19937_64& rng, std::uint64_t s, std::uint64_t t0, std::vector<Event>& ev) {
                 const std::size_t k = home_of(rng), cell = home_of(rng);
                 play(ev, s, t0, 20,
                      [&, k](std::size_t i) { return v4_in(w.as.at("office"), k + i % 4, static_cast<unsigned>(i)); });
                 play(ev, s, t0 + 5 * kMin, 5, dual_stack(w.as.at("mobile"), cell, rng));
                 return std::uint64_t{0};
               }});
  b.push_back({"campus or hotel NAT", false,
               [=](const World& w, std::mt19937_64& rng, std::uint64_t s, std::uint64_t t0, std::vector<Event>& ev) {
                 const std::size_t k = home_of(rng);
                 // one address for the whole campus: this viewer, and 80 others' sessions
                 play(ev, s, t0, 20, [&, k](std::size_t) { return v4_in(w.as.at("campus"), k, 9); });
                 for (std::uint64_t o = 0; o < 80; ++o)
                   ev.push_back({t0 + o * 7 * kSec, (s << 8) + o, v4_in(w.as.at("campus"), k, 9)});
                 return std::uint64_t{0};
               }});
  b.push_back({"Starlink, fixed", false,
               [=](const World& w, std::mt19937_64& rng, std::uint64_t s, std::uint64_t t0, std::vector<Event>& ev) {
                 const std::size_t k = home_of(rng);
                 play(ev, s, t0, 20, [&, k](std::size_t i) {
                   return i % 4 ? v6_in(w.as.at("satellite"), k) : v4_in(w.as.at("satellite"), k);
                 });
                 return std::uint64_t{0};
               }});
  b.push_back({"Starlink, roaming", false,
               [=](const World& w, std::mt19937_64& rng, std::uint64_t s, std::uint64_t t0, std::vector<Event>& ev) {
                 const std::size_t k = home_of(rng);
                 // a new point of presence (address and /48) every 3 minutes
                 play(ev, s, t0, 20, [&, k](std::size_t i) {
                   return i % 4 ? v6_in(w.as.at("satellite"), k + i / 30) : v4_in(w.as.at("satellite"), k + i / 30);
                 });
                 return std::uint64_t{0};
               }});
  b.push_back({"casting from phone to TV", false,
               [=](const World& w, std::mt19937_64& rng, std::uint64_t s, std::uint64_t t0, std::vector<Event>& ev) {
                 const std::size_t home = home_of(rng), cell = home_of(rng);
                 play(ev, s, t0, 20, dual_stack(w.as.at("cable"), home, rng));              // the TV
                 play(ev, s, t0 + 2 * kSec, 20, dual_stack(w.as.at("mobile"), cell, rng));  // the phone on cellular
                 return std::uint64_t{0};
               }});
  b.push_back({"dual-WAN home", false,
               [=](const World& w, std::mt19937_64& rng, std::uint64_t s, std::uint64_t t0, std::vector<Event>& ev) {
                 const std::size_t a = home_of(rng), c = home_of(rng);
                 play(ev, s, t0, 20, [&, a, c](std::size_t i) {
                   return i % 2 ? (i % 4 == 1 ? v4_in(w.as.at("cable"), a) : v6_in(w.as.at("cable"), a))
                                : (i % 4 == 0 ? v4_in(w.as.at("incumbent"), c) : v6_in(w.as.at("incumbent"), c));
                 });
                 return std::uint64_t{0};
               }});
  // Heavy honest use, for the bulk signal: a 4K stream (25 Mbit/s) that
  // starts with 30 s of buffer fetched at once and seeks every minute
  // (refilling the buffer), and a gallery browsed page after page (fifty
  // 30 KB thumbnails every 10 s).
  b.push_back({"4K player, a seek every minute", false,
               [=](const World& w, std::mt19937_64& rng, std::uint64_t s, std::uint64_t t0, std::vector<Event>& ev) {
                 const auto home = dual_stack(w.as.at("cable"), home_of(rng), rng);
                 constexpr std::uint64_t k4k = 18'750'000;
                 for (std::uint64_t m = 0; m < 20; ++m) {
                   for (std::size_t k = 0; k < 5; ++k) ev.push_back({t0 + m * kMin + k * 200, s, home(k), k4k});
                   play(ev, s, t0 + m * kMin + 2 * kSec, 1, home, k4k);
                 }
                 return std::uint64_t{0};
               }});
  b.push_back({"gallery, a page of 50 thumbnails every 10 s", false,
               [=](const World& w, std::mt19937_64& rng, std::uint64_t s, std::uint64_t t0, std::vector<Event>& ev) {
                 const auto home = dual_stack(w.as.at("incumbent"), home_of(rng), rng);
                 for (std::uint64_t p = 0; p < 60; ++p) {
                   for (std::size_t k = 0; k < 50; ++k) ev.push_back({t0 + p * 10 * kSec + k * 20, s, home(p), 30'000});
                 }
                 return std::uint64_t{0};
               }});
  // Sharing. The owner watches at home; strangers arrive over minutes, each
  // from a random residential or mobile AS, and load a few segments.
  auto forum = [](std::size_t strangers, std::uint64_t over_ms) {
    return [=](const World& w, std::mt19937_64& rng, std::uint64_t s, std::uint64_t t0, std::vector<Event>& ev) {
      const std::size_t home = rng() % 1000;
      play(ev, s, t0, 15, dual_stack(w.as.at("cable"), home, rng));
      std::vector<std::pair<std::uint64_t, const AsNets*>> firsts;
      for (std::size_t k = 0; k < strangers; ++k) {
        const AsNets& as = *w.strangers[rng() % w.strangers.size()];
        const std::uint64_t first = t0 + 60 * kSec + rng() % over_ms;
        const std::size_t net = rng() % 5000;
        const bool v6 = rng() % 2 && !as.v6.empty();
        const std::size_t segs = 1 + rng() % 5;
        for (std::size_t i = 0; i < segs; ++i)
          ev.push_back({first + i * 6 * kSec, s, v6 ? v6_in(as, net) : v4_in(as, net)});
        firsts.emplace_back(first, &as);
      }
      return third_place(firsts, w.as.at("cable"));
    };
  };
  b.push_back({"forum post, 10 strangers in 5 min", true, forum(10, 5 * kMin)});
  b.push_back({"forum post, 100 strangers in 10 min", true, forum(100, 10 * kMin)});
  b.push_back({"forum post, 1000 strangers in 10 min", true, forum(1000, 10 * kMin)});
  b.push_back({"one friend", true,
               [=](const World& w, std::mt19937_64& rng, std::uint64_t s, std::uint64_t t0, std::vector<Event>& ev) {
                 play(ev, s, t0, 20, dual_stack(w.as.at("cable"), rng() % 1000, rng));
                 play(ev, s, t0 + 3 * kMin, 15, dual_stack(w.as.at("incumbent"), rng() % 1000, rng));
                 return std::uint64_t{0};
               }});
  b.push_back({"slow leak, a stranger every 3 min", true,
               [=](const World& w, std::mt19937_64& rng, std::uint64_t s, std::uint64_t t0, std::vector<Event>& ev) {
                 play(ev, s, t0, 40, dual_stack(w.as.at("cable"), rng() % 1000, rng));
                 std::vector<std::pair<std::uint64_t, const AsNets*>> firsts;
                 for (int k = 0; k < 12; ++k) {
                   const AsNets& as = *w.strangers[rng() % w.strangers.size()];
                   const std::size_t net = rng() % 5000;
                   const std::uint64_t first = t0 + (2 + 3 * k) * kMin;
                   firsts.emplace_back(first, &as);
                   play(ev, s, first, 1, [&as, net](std::size_t) { return v4_in(as, net); });
                 }
                 return third_place(firsts, w.as.at("cable"));
               }});
  b.push_back({"re-streamer via rotating residential proxies", true,
               [=](const World& w, std::mt19937_64& rng, std::uint64_t s, std::uint64_t t0, std::vector<Event>& ev) {
                 const std::uint64_t seed = rng();
                 play(ev, s, t0, 10, [&w, seed](std::size_t i) {
                   const AsNets& as = *w.strangers[splitmix64(seed + i) % w.strangers.size()];
                   return v4_in(as, splitmix64(seed ^ i) % 5000);
                 });
                 return t0 + 12 * kSec;
               }});
  // 20 times a player's rate: a segment every 0.3 s for 10 minutes; the
  // latency counts from its first request.
  b.push_back({"bulk scraper, 20x a player, one hosting network", true,
               [=](const World& w, std::mt19937_64& rng, std::uint64_t s, std::uint64_t t0, std::vector<Event>& ev) {
                 const std::size_t k = rng() % 1000;
                 for (std::size_t i = 0; i < 20 * 10 * 10; ++i)
                   ev.push_back({t0 + i * 300, s, v4_in(w.as.at("hosting"), k)});
                 return t0;
               }});
  return b;
}

// The roles' and the strangers' networks from the database at `path`,
// and Private Relay's egress ranges as an admin loads Apple's list (here:
// the relay AS's prefixes). false with *error if the database lacks them.
inline bool build_world(const std::string& path, World& w, std::vector<IpPrefix>& relay, std::string* error) {
  std::shared_ptr<const cluster::LocationDatabase> db = cluster::LocationDatabase::open(path, error);
  if (!db) return false;
  loc_ctx* ctx = nullptr;
  loc_new(&ctx);
  FILE* f = std::fopen(path.c_str(), "r");
  loc_database* raw = nullptr;
  if (f == nullptr || loc_database_new(ctx, &raw, f) != 0) {
    *error = "cannot read " + path;
    return false;
  }
  std::fclose(f);
  const struct {
    const char* role;
    std::uint32_t asn;
    const char* label;
  } roles[] = {
      {"cable", 7922, "Comcast (US cable)"},
      {"incumbent", 3320, "Deutsche Telekom (DE)"},
      {"mobile", 21928, "T-Mobile US"},
      {"relay", 36183, "Akamai (iCloud Private Relay egress)"},
      {"warp", 13335, "Cloudflare (WARP)"},
      {"farm", 701, "Verizon (an AOL-style proxy farm)"},
      {"office", 22616, "Zscaler (office proxy)"},
      {"campus", 88, "Princeton (campus)"},
      {"satellite", 14593, "SpaceX Starlink"},
      {"hosting", 24940, "Hetzner (hosting)"},
  };
  // Only networks the database itself places in the AS (the enumerator's
  // AS filter is not relied upon).
  auto keep_own = [&](AsNets& a) {
    auto mine = [&](const std::string& ip) { return db->lookup(*parse_ip_address(ip)).asn == a.asn; };
    AsNets all = a;
    a.v4.clear();
    a.v6.clear();
    for (std::size_t k = 0; k < all.v4.size(); ++k) {
      AsNets one = all;
      one.v4 = {all.v4[k]};
      if (mine(v4_in(one, 0))) a.v4.push_back(all.v4[k]);
    }
    for (std::size_t k = 0; k < all.v6.size(); ++k) {
      AsNets one = all;
      one.v6 = {all.v6[k]};
      if (mine(v6_in(one, 0))) a.v6.push_back(all.v6[k]);
    }
  };
  for (const auto& r : roles) {
    w.as[r.role] = load_as(ctx, raw, r.asn, r.label);
    keep_own(w.as[r.role]);
    if (w.as[r.role].v4.empty() ||
        (w.as[r.role].v6.empty() && std::strcmp(r.role, "farm") && std::strcmp(r.role, "relay") &&
         std::strcmp(r.role, "campus") && std::strcmp(r.role, "office"))) {
      std::fprintf(stderr, "bench-sharing: AS%u (%s) has no networks in %s\n", r.asn, r.label, path.c_str());
    }
    if (w.as[r.role].v4.empty()) {
      *error = "cannot read " + path;
      return false;
    }                                                                 // every role needs IPv4 networks
    if (w.as[r.role].v6.empty()) w.as[r.role].v6 = w.as["cable"].v6;  // unused for IPv4-only roles
  }
  std::vector<AsNets>& strangers = w.stranger_nets;
  strangers.clear();
  for (std::uint32_t asn : {7922u,  7018u,  701u,  20115u, 22773u, 3320u,  3215u, 2856u, 3352u, 12322u, 5089u, 1136u,
                            21928u, 20057u, 6167u, 3209u,  12430u, 15557u, 4713u, 4766u, 9829u, 7552u,  8452u, 812u}) {
    AsNets a = load_as(ctx, raw, asn, "stranger");
    keep_own(a);
    if (!a.v4.empty()) strangers.push_back(a);
  }
  w.strangers.clear();
  for (const AsNets& a : strangers) w.strangers.push_back(&a);
  // Private Relay egress as an admin loads Apple's list (here: the relay
  // AS's prefixes, as the list would give them).
  relay.clear();
  for (const auto& [base, len] : w.as["relay"].v4) {
    IpPrefix p;
    p.addr.bytes[0] = base >> 24, p.addr.bytes[1] = (base >> 16) & 255, p.addr.bytes[2] = (base >> 8) & 255;
    p.addr.bytes[3] = base & 255;
    p.length = len;
    relay.push_back(p);
  }
  loc_database_unref(raw);
  loc_unref(ctx);
  return true;
}

}  // namespace uritoken::bench
