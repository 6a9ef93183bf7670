// SPDX-License-Identifier: Apache-2.0
// The location database and the place resolver; see location.h.
#include "location.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

extern "C" {
#include <libloc/libloc.h>
#include <libloc/as.h>
#include <libloc/database.h>
#include <libloc/network.h>
}

namespace uritoken::cluster {

namespace {
// libloc logs to stderr by default; a module's stderr is httpd's error log
// without a date or level. Our messages say what matters.
void quiet(loc_ctx*, int, const char*, int, const char*, const char*, va_list) {}
}  // namespace

std::unique_ptr<LocationDatabase> LocationDatabase::open(const std::string& path, std::string* error) {
  std::unique_ptr<LocationDatabase> db(new LocationDatabase());
  db->path_ = path;
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) {
    *error = "cannot open " + path + ": " + std::strerror(errno);
    return nullptr;
  }
  if (loc_new(&db->ctx_) != 0) {
    std::fclose(f);
    *error = "cannot start libloc";
    return nullptr;
  }
  loc_set_log_fn(db->ctx_, quiet);
  const int rv = loc_database_new(db->ctx_, &db->db_, f);
  std::fclose(f);  // libloc keeps its own mapping
  if (rv != 0 || db->db_ == nullptr) {
    db->db_ = nullptr;
    *error = path + " is not a location database libloc can read (truncated, corrupt or of another format)";
    return nullptr;
  }
  // A header that parses over a body that does not is caught here, at
  // start, rather than by the first lookup.
  if (db->created_at() <= 0 || loc_database_count_as(db->db_) == 0) {
    *error = path + " is not a usable location database (no creation time or no autonomous systems)";
    return nullptr;
  }
  return db;
}

LocationDatabase::~LocationDatabase() {
  if (db_ != nullptr) loc_database_unref(db_);
  if (ctx_ != nullptr) loc_unref(ctx_);
}

Location LocationDatabase::lookup(const IpAddress& address) const {
  Location out;
  const IpAddress a = unmapped_ip(address);
  in6_addr in{};
  if (a.v6) {
    std::memcpy(in.s6_addr, a.bytes, 16);
  } else {  // libloc keeps IPv4 as IPv4-mapped IPv6
    in.s6_addr[10] = in.s6_addr[11] = 0xff;
    std::memcpy(in.s6_addr + 12, a.bytes, 4);
  }
  loc_network* net = nullptr;
  if (loc_database_lookup(db_, &in, &net) != 0 || net == nullptr) return out;
  out.found = true;
  out.asn = loc_network_get_asn(net);
  unsigned prefix = loc_network_prefix(net);
  if (!a.v6 && prefix >= 96) prefix -= 96;  // libloc counts IPv4 prefixes in the mapped space
  out.network.length = std::min(prefix, a.max_prefix());
  out.network.addr = mask_ip(a, out.network.length);
  if (const char* cc = loc_network_get_country_code(net); cc != nullptr && std::strlen(cc) == 2) {
    std::memcpy(out.country, cc, 2);
  }
  out.anonymous_proxy = loc_network_has_flag(net, LOC_NETWORK_FLAG_ANONYMOUS_PROXY);
  out.satellite = loc_network_has_flag(net, LOC_NETWORK_FLAG_SATELLITE_PROVIDER);
  out.anycast = loc_network_has_flag(net, LOC_NETWORK_FLAG_ANYCAST);
  loc_network_unref(net);
  return out;
}

std::string LocationDatabase::as_name(std::uint32_t asn) const {
  loc_as* as = nullptr;
  if (asn == 0 || loc_database_get_as(db_, &as, asn) != 0 || as == nullptr) return "";
  const char* name = loc_as_get_name(as);
  std::string out = name != nullptr ? name : "";
  loc_as_unref(as);
  return out;
}

CountryTable LocationDatabase::country_table() const {
  CountryTable::Builder b;
  loc_database_enumerator* e = nullptr;
  if (loc_database_enumerator_new(&e, db_, LOC_DB_ENUMERATE_NETWORKS, 0) != 0) return b.build();
  loc_network* net = nullptr;
  while (loc_database_enumerator_next_network(e, &net) == 0 && net != nullptr) {
    const in6_addr* first = loc_network_get_first_address(net);
    CountryTable::Address a = 0;
    for (int i = 0; i < 16; ++i) a = (a << 8) | first->s6_addr[i];
    // libloc reports an IPv4 network's prefix over its 32 bits; the table counts 128.
    const unsigned prefix = loc_network_prefix(net) + (loc_network_address_family(net) == AF_INET ? 96 : 0);
    const char* cc = loc_network_get_country_code(net);
    b.add(a, prefix, cc != nullptr ? country_code(cc, std::strlen(cc)) : kNoCountry);
    loc_network_unref(net);
  }
  loc_database_enumerator_unref(e);
  return b.build();
}

std::time_t LocationDatabase::created_at() const { return loc_database_created_at(db_); }

std::string LocationDatabase::description() const {
  const char* d = loc_database_get_description(db_);
  return d != nullptr ? d : "";
}

std::string describe_age(std::time_t created_at, std::time_t now) {
  char day[16] = "?";
  std::tm tm{};
  if (gmtime_r(&created_at, &tm) != nullptr) std::strftime(day, sizeof day, "%Y-%m-%d", &tm);
  const long days = now > created_at ? static_cast<long>((now - created_at) / 86400) : 0;
  return std::to_string(days) + " days old (built " + day + ")";
}

PlaceResolver::PlaceResolver(std::shared_ptr<const LocationDatabase> db, std::size_t cache_entries)
    : db_(std::move(db)) {
  std::size_t n = 1;
  while (n < cache_entries) n <<= 1;
  cache_.resize(n);
}

PlaceResolver::Answer PlaceResolver::resolve(const IpAddress& address, const NetworkId& network) {
  Answer a;
  if (!db_) {
    a.place = fallback_place(network);
    return a;
  }
  CacheEntry& e = cache_[network.hash() & (cache_.size() - 1)];
  if (e.used && e.network == network) return e.answer;
  ++lookups_;
  const Location loc = db_->lookup(address);
  if (loc.found && loc.asn != 0) {
    a.place.kind = PlaceKind::as;
    a.place.id = loc.asn;
  } else if (loc.found) {
    a.place.kind = PlaceKind::db_network;
    a.place.id = network_place_id(loc.network.addr.v6, loc.network.addr.bytes, loc.network.length);
  } else {
    a.place = fallback_place(network);
  }
  std::memcpy(a.place.country, loc.country, 2);
  a.shared = loc.anonymous_proxy || loc.satellite;
  e.used = true;
  e.network = network;
  e.answer = a;
  return a;
}

}  // namespace uritoken::cluster
