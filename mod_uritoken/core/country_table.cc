// SPDX-License-Identifier: Apache-2.0
// Address -> country, flattened ranges; see country_table.h.
#include "country_table.h"

#include <algorithm>

namespace uritoken {

CountryCode country_code(const char* s, std::size_t len) {
  if (s == nullptr || len != 2 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z') return kNoCountry;
  return static_cast<CountryCode>((s[0] - 'A') * 26 + (s[1] - 'A'));
}

void country_letters(CountryCode code, char out[2]) {
  out[0] = static_cast<char>('A' + code / 26);
  out[1] = static_cast<char>('A' + code % 26);
}

CountryTable::Address CountryTable::address_of(const IpAddress& a) {
  Address v = 0;
  if (!a.v6) {
    v = (static_cast<Address>(0xffff) << 32);  // ::ffff:0:0/96
    for (int i = 0; i < 4; ++i) v |= static_cast<Address>(a.bytes[i]) << (8 * (3 - i));
    return v;
  }
  for (int i = 0; i < 16; ++i) v = (v << 8) | a.bytes[i];
  return v;
}

void CountryTable::Builder::add(Address first, unsigned prefix_len, CountryCode code) {
  const Address host_bits = prefix_len >= 128 ? 0 : (~static_cast<Address>(0)) >> prefix_len;
  first &= ~host_bits;
  networks_.push_back({first, first | host_bits, code});
}

// Paints nested networks from the outside in: networks sorted by start
// (the larger first) are opened on a stack; the part of an enclosing
// network around its subnets keeps its own country. Adjacent ranges of one
// country merge; ranges of no country are left out.
CountryTable CountryTable::Builder::build() {
  std::sort(networks_.begin(), networks_.end(), [](const Network& a, const Network& b) {
    return a.first != b.first ? a.first < b.first : a.last > b.last;
  });
  CountryTable t;
  auto emit = [&t](Address first, Address last, CountryCode code) {
    if (code == kNoCountry || first > last) return;
    if (!t.ranges_.empty() && t.ranges_.back().code == code && t.ranges_.back().last + 1 == first) {
      t.ranges_.back().last = last;
    } else {
      t.ranges_.push_back({first, last, code});
    }
  };
  std::vector<Network> open;
  Address cursor = 0;  // everything before it is emitted
  auto close_until = [&](Address next_first, bool all) {
    while (!open.empty() && (all || open.back().last < next_first)) {
      const Network top = open.back();
      open.pop_back();
      emit(cursor, top.last, top.code);
      cursor = top.last + 1;  // wraps only after ffff...ffff, the last network closed
    }
  };
  for (const Network& n : networks_) {
    close_until(n.first, false);
    if (!open.empty()) emit(cursor, n.first - 1, open.back().code);  // the enclosing network before this one
    cursor = n.first;
    open.push_back(n);
  }
  close_until(0, true);
  t.ranges_.shrink_to_fit();
  networks_.clear();
  networks_.shrink_to_fit();
  return t;
}

CountryCode CountryTable::lookup(const IpAddress& a) const {
  const Address v = address_of(a);
  // The last range starting at or before v.
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), v, [](Address x, const Range& r) { return x < r.first; });
  if (it == ranges_.begin()) return kNoCountry;
  --it;
  return v <= it->last ? it->code : kNoCountry;
}

}  // namespace uritoken
