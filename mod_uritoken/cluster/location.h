// SPDX-License-Identifier: Apache-2.0
// The location database (IPFire's libloc, Debian's libloc-database): an
// address's autonomous system, the database's enclosing network, country
// and flags, which the sharing rule turns into a *place*
// (docs/sharing-rule.md).
//
// libloc maps the file and answers a lookup in about a microsecond; the
// sidecar still asks it only once per new network (PlaceResolver's cache),
// never in the request path. The database is a file of its own, refreshed
// with `location update` (Debian's `location` package); an httpd reads it
// at start and at every graceful restart.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "../core/country_table.h"
#include "../core/ipnet.h"
#include "sharing.h"

struct loc_ctx;
struct loc_database;

namespace uritoken::cluster {

// Debian's path (libloc-database); the default of UriTokenLocationDatabase
// when the file exists.
constexpr const char* kDebianLocationDatabase = "/usr/share/libloc-location/location.db";
// A database older than this is worth a warning: ranges move between
// networks every day.
constexpr std::uint32_t kLocationStaleDays = 90;

struct Location {
  bool found = false;     // the database has a network for the address
  std::uint32_t asn = 0;  // 0: no AS known
  IpPrefix network;       // the database's enclosing network
  char country[2] = {0, 0};
  bool anonymous_proxy = false, satellite = false, anycast = false;
};

class LocationDatabase {
 public:
  // nullptr with *error ("cannot open ...", "not a location database ...")
  // when the file is missing, unreadable or malformed.
  static std::unique_ptr<LocationDatabase> open(const std::string& path, std::string* error);
  ~LocationDatabase();
  LocationDatabase(const LocationDatabase&) = delete;
  LocationDatabase& operator=(const LocationDatabase&) = delete;

  Location lookup(const IpAddress& address) const;
  std::string as_name(std::uint32_t asn) const;  // "" unknown
  std::time_t created_at() const;
  // Every network's country, flattened for the request path
  // (UriTokenCountries): about half a second for Debian's database.
  CountryTable country_table() const;
  std::string description() const;
  const std::string& path() const { return path_; }

 private:
  LocationDatabase() = default;
  std::string path_;
  loc_ctx* ctx_ = nullptr;
  loc_database* db_ = nullptr;
};

// A human age of the database for messages: "1500 days old (built 2022-10-29)".
std::string describe_age(std::time_t created_at, std::time_t now);

// Address -> place, for the sidecar: with a database the AS (or the
// database's enclosing network where it knows no AS), without one the
// documented fallback. Caches one answer per network (direct-mapped), so
// the database is asked once per new network, not per sighting.
class PlaceResolver {
 public:
  struct Answer {
    Place place;
    bool shared = false;  // an anonymous proxy or a satellite provider: many users behind few addresses
  };
  explicit PlaceResolver(std::shared_ptr<const LocationDatabase> db, std::size_t cache_entries = 65536);
  Answer resolve(const IpAddress& address, const NetworkId& network);
  const LocationDatabase* database() const { return db_.get(); }
  std::uint64_t lookups() const { return lookups_; }  // database lookups (cache misses)

 private:
  struct CacheEntry {
    NetworkId network;
    Answer answer;
    bool used = false;
  };
  std::shared_ptr<const LocationDatabase> db_;
  std::vector<CacheEntry> cache_;
  std::uint64_t lookups_ = 0;
};

}  // namespace uritoken::cluster
