// SPDX-License-Identifier: Apache-2.0
// Address -> ISO 3166 country for the request path (UriTokenCountries):
// the location database's networks, flattened once at start into a sorted
// array of disjoint ranges, so that a lookup is one binary search with no
// syscall and no allocation (libloc's own lookup allocates a network
// object and walks its tree). Built in the parent, shared copy-on-write by
// every child.
#pragma once

#include <bitset>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ipnet.h"

namespace uritoken {

// A country as its index among "AA".."ZZ" (0..675), or kNoCountry.
using CountryCode = std::uint16_t;
constexpr CountryCode kNoCountry = 0xffff;
constexpr std::size_t kCountryCodes = 26 * 26;
// "DE" -> its index; kNoCountry unless exactly two letters A-Z.
CountryCode country_code(const char* two_letters, std::size_t len = 2);
// The two letters of a code (which must not be kNoCountry).
void country_letters(CountryCode code, char out[2]);

// UriTokenCountries CLIENT Allow|Deny CC...: a client's territory. An
// address the database places in no country is outside every allow list
// and inside no deny list.
struct CountryRule {
  bool allow = true;
  std::bitset<kCountryCodes> listed;
  bool permits(CountryCode c) const { return allow ? c != kNoCountry && listed[c] : c == kNoCountry || !listed[c]; }
};

class CountryTable {
 public:
  // 128-bit address: IPv6 as is, IPv4 as ::ffff:a.b.c.d (as libloc keeps it).
  using Address = unsigned __int128;
  static Address address_of(const IpAddress& a);

  // Networks in any order, nested or not: a more specific network wins
  // over the ones that hold it (a US /16 inside a DE /8 is US).
  class Builder {
   public:
    void add(Address first, unsigned prefix_len, CountryCode code);  // prefix_len over the 128 bits
    CountryTable build();

   private:
    struct Network {
      Address first, last;
      CountryCode code;
    };
    std::vector<Network> networks_;
  };

  CountryCode lookup(const IpAddress& a) const;
  std::size_t ranges() const { return ranges_.size(); }
  std::size_t memory_bytes() const { return ranges_.capacity() * sizeof(Range); }

 private:
  struct Range {
    Address first, last;
    CountryCode code;
  };
  std::vector<Range> ranges_;  // disjoint, sorted, no kNoCountry range
};

}  // namespace uritoken
