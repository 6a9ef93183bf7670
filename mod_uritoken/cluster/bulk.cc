// SPDX-License-Identifier: Apache-2.0
// The bulk signal; see bulk.h.
#include "bulk.h"

#include <algorithm>
#include <limits>

#include "../core/mix.h"
#include "../core/token_id.h"

namespace uritoken {

namespace {

std::uint32_t saturating_add(std::uint32_t a, std::uint64_t b) {
  const std::uint64_t sum = std::uint64_t{a} + b;
  return sum > std::numeric_limits<std::uint32_t>::max() ? std::numeric_limits<std::uint32_t>::max()
                                                         : static_cast<std::uint32_t>(sum);
}

}  // namespace

BulkDetector::BulkDetector(const BulkPolicy& policy) : policy_(policy) {
  if (!policy.enabled) return;  // off (the default): no table at all
  std::size_t sets = 1;
  while (sets * kWays < std::max<std::size_t>(policy.tokens, kWays)) sets <<= 1;
  sets_ = sets;
  entries_.resize(sets_ * kWays);
}

void BulkDetector::advance(Entry& e, std::uint32_t quarter) {
  if (quarter <= e.quarter) return;  // the same quarter, or a late sighting
  const std::uint32_t shift = std::min<std::uint32_t>(quarter - e.quarter, 4);
  for (int i = 3; i >= 0; --i) {
    const int from = i - static_cast<int>(shift);
    e.requests[i] = from >= 0 ? e.requests[from] : 0;
    e.kib[i] = from >= 0 ? e.kib[from] : 0;
  }
  e.quarter = quarter;
}

BulkVerdict BulkDetector::rate_of(const Entry& e, std::uint32_t quarter) const {
  BulkVerdict v;
  // Quarters after the entry's newest push its oldest out of the window.
  const std::uint32_t gone = quarter > e.quarter ? quarter - e.quarter : 0;
  if (e.token == 0 || gone >= 4) return v;
  std::uint64_t requests = 0, kib = 0;
  for (std::uint32_t i = 0; i + gone < 4; ++i) {
    requests += e.requests[i];
    kib += e.kib[i];
  }
  constexpr std::uint32_t kMinutes = kBulkWindowS / 60;
  const std::uint32_t newest = std::max(quarter, e.quarter);
  v.since_s = std::max(e.first_s, newest >= 3 ? (newest - 3) * kBulkQuarterS : 0);
  v.requests_per_min = static_cast<std::uint32_t>(requests / kMinutes);
  v.bytes_per_min = (kib << 10) / kMinutes;
  v.bulk = (policy_.requests_per_min != 0 && v.requests_per_min > policy_.requests_per_min) ||
           (policy_.bytes_per_min != 0 && v.bytes_per_min > policy_.bytes_per_min);
  return v;
}

double BulkDetector::load(const Entry& e, std::uint32_t quarter) const {
  const BulkVerdict v = rate_of(e, quarter);
  double load = 0;
  if (policy_.requests_per_min != 0) load += static_cast<double>(v.requests_per_min) / policy_.requests_per_min;
  if (policy_.bytes_per_min != 0)
    load += static_cast<double>(v.bytes_per_min) / static_cast<double>(policy_.bytes_per_min);
  return load;
}

BulkVerdict BulkDetector::observe(std::uint16_t key_id, std::uint64_t session, std::uint32_t requests,
                                  std::uint64_t bytes, std::uint64_t time_ms) {
  if (sets_ == 0) return {};
  const std::uint64_t h = TokenId{key_id, session}.hash();
  const std::uint64_t token = h | 1;
  const auto quarter = static_cast<std::uint32_t>(time_ms / 1000 / kBulkQuarterS);
  Entry* set = &entries_[(mix64(h) & (sets_ - 1)) * kWays];
  Entry* e = nullptr;
  for (std::size_t i = 0; i < kWays && e == nullptr; ++i)
    if (set[i].token == token) e = &set[i];
  if (e == nullptr) {
    // The way with the least volume makes room: a player's token holds
    // little, a scraper's each sighting brings seconds of its volume, so a
    // busy table forgets players first.
    e = &set[0];
    double least = load(set[0], quarter);
    for (std::size_t i = 1; i < kWays; ++i) {
      if (const double l = load(set[i], quarter); l < least) {
        e = &set[i];
        least = l;
      }
    }
    *e = Entry();
    e->token = token;
    e->quarter = quarter;
    e->first_s = static_cast<std::uint32_t>(time_ms / 1000);
  }
  advance(*e, quarter);
  // A late sighting (another node's batch, a gossip backlog) counts in its
  // own quarter, and not at all once that has left the window.
  const std::uint32_t age = e->quarter - std::min(quarter, e->quarter);
  if (age < 4) {
    e->requests[age] = saturating_add(e->requests[age], requests);
    e->kib[age] = saturating_add(e->kib[age], bytes / 1024 + (bytes % 1024 != 0));
  }
  return rate_of(*e, std::max(quarter, e->quarter));
}

BulkVerdict BulkDetector::rate(std::uint16_t key_id, std::uint64_t session, std::uint64_t now_ms) const {
  if (sets_ == 0) return {};
  const std::uint64_t h = TokenId{key_id, session}.hash();
  const auto quarter = static_cast<std::uint32_t>(now_ms / 1000 / kBulkQuarterS);
  const Entry* set = &entries_[(mix64(h) & (sets_ - 1)) * kWays];
  for (std::size_t i = 0; i < kWays; ++i)
    if (set[i].token == (h | 1)) return rate_of(set[i], quarter);
  return {};
}

}  // namespace uritoken
