// SPDX-License-Identifier: Apache-2.0
// Small location databases for tests, written with libloc's own writer
// (libloc/writer.h), so that a test names its own autonomous systems,
// networks, countries and flags instead of depending on what Debian's
// database of the day says. Used by the gossip tests (linked with libloc)
// and the integration tests (which point UriTokenLocationDatabase at one).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

extern "C" {
#include <libloc/as.h>
#include <libloc/libloc.h>
#include <libloc/network.h>
#include <libloc/writer.h>
}

namespace uritoken::testdata {

struct TestAs {
  std::uint32_t number;
  std::string name;
};

struct TestNetwork {
  std::string cidr;              // "198.51.100.0/24", "2001:db8:100::/40"
  std::uint32_t asn = 0;         // 0: a network the database knows no AS for
  std::string country;           // "US", "" none
  bool anonymous_proxy = false;  // A1
  bool satellite = false;        // A2
};

// Writes the database to `path`; "" on success, else what failed.
inline std::string write_location_db(const std::string& path, const std::vector<TestAs>& systems,
                                     const std::vector<TestNetwork>& networks) {
  loc_ctx* ctx = nullptr;
  if (loc_new(&ctx) != 0) return "loc_new failed";
  loc_writer* writer = nullptr;
  std::string error;
  if (loc_writer_new(ctx, &writer, nullptr, nullptr) != 0) error = "loc_writer_new failed";
  if (error.empty()) {
    loc_writer_set_vendor(writer, "mod_uritoken tests");
    loc_writer_set_description(writer, "networks named by the test itself");
    loc_writer_set_license(writer, "CC0");
  }
  for (const TestAs& a : systems) {
    loc_as* as = nullptr;
    if (!error.empty()) break;
    if (loc_writer_add_as(writer, &as, a.number) != 0) {
      error = "cannot add AS" + std::to_string(a.number);
      break;
    }
    loc_as_set_name(as, a.name.c_str());
    loc_as_unref(as);
  }
  for (const TestNetwork& n : networks) {
    if (!error.empty()) break;
    loc_network* net = nullptr;
    if (loc_writer_add_network(writer, &net, n.cidr.c_str()) != 0) {
      error = "cannot add network " + n.cidr;
      break;
    }
    if (n.asn != 0) loc_network_set_asn(net, n.asn);
    // The network's code is all a lookup returns; no country table (the
    // writer of libloc 0.9.16 leaks the countries added to it).
    if (!n.country.empty()) loc_network_set_country_code(net, n.country.c_str());
    if (n.anonymous_proxy) loc_network_set_flag(net, LOC_NETWORK_FLAG_ANONYMOUS_PROXY);
    if (n.satellite) loc_network_set_flag(net, LOC_NETWORK_FLAG_SATELLITE_PROVIDER);
    loc_network_unref(net);
  }
  if (error.empty()) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr) {
      error = "cannot write " + path;
    } else {
      if (loc_writer_write(writer, f, LOC_DATABASE_VERSION_LATEST) != 0) error = "loc_writer_write failed";
      if (std::fclose(f) != 0 && error.empty()) error = "cannot write " + path;
    }
  }
  if (writer != nullptr) loc_writer_unref(writer);
  loc_unref(ctx);
  return error;
}

// The assignments the tests use (documentation and benchmark ranges only):
// a cable ISP with a dual-stack home, a mobile carrier, a telecom, a proxy
// farm spread over a /15, two anonymous VPNs (A1) and a satellite ISP (A2).
inline std::string write_example_location_db(const std::string& path) {
  return write_location_db(path,
                           {{64500, "Example Cable"},
                            {64501, "Example Mobile"},
                            {64502, "Example Telecom"},
                            {64503, "Example Farm"},
                            {64504, "Example VPN"},
                            {64505, "Example Satellite"},
                            {64506, "Example VPN Two"}},
                           {{"198.51.100.0/24", 64500, "US"},
                            {"2001:db8:100::/40", 64500, "US"},
                            {"203.0.113.0/24", 64501, "US"},
                            {"2001:db8:200::/40", 64501, "US"},
                            {"192.0.2.0/24", 64502, "DE"},
                            {"198.18.0.0/15", 64503, "US"},
                            {"192.88.99.0/24", 64504, "NL", true, false},
                            {"2001:db8:300::/40", 64505, "US", false, true},
                            {"2001:db8:400::/40", 64506, "SE", true, false}});
}

}  // namespace uritoken::testdata
