// SPDX-License-Identifier: Apache-2.0
// The bulk signal: is one token fetching far more than a player does?
//
// A scraper or a re-streamer on one network downloads a client's media at
// many times a player's rate; the places rule never sees it (one place).
// Each sighting carries the requests and bytes its node answered for the
// token's network since the node's previous sighting (SharedState's repeat
// filter counts them), so the token's owners see its whole volume, on every
// node, and judge it here: bulk when within kBulkWindowS the token fetched
// more than twice UriTokenBulkLimit's requests or bytes per minute. Rule,
// numbers and reasons: docs/sharing-rule.md, "Bulk use".
//
// Preallocated, never grows; not thread-safe (the sidecar's one thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace uritoken {

// The rate is judged over two minutes, in four quarters of 30 s: long
// enough that a player's start (30 s of buffer fetched at once), a seek or
// a page of fifty thumbnails averages out, short enough to catch a scraper
// at 20 times a player's rate within the two minutes.
constexpr std::uint32_t kBulkWindowS = 120;
constexpr std::uint32_t kBulkQuarterS = kBulkWindowS / 4;

// The defaults of UriTokenBulkLimit, here and in the server's configuration.
constexpr std::uint32_t kDefaultBulkRequestsPerMin = 600;
constexpr std::uint64_t kDefaultBulkBytesPerMin = 500ull << 20;

struct BulkPolicy {
  bool enabled = false;                                         // UriTokenBulk Shadow|Enforce (the owners judge)
  std::uint32_t requests_per_min = kDefaultBulkRequestsPerMin;  // requests=N (0: no request limit)
  std::uint64_t bytes_per_min = kDefaultBulkBytesPerMin;        // bytes=SIZE (0: no byte limit)
  std::size_t tokens = 16384;  // tokens followed at once (memory is allocated up front)
};

struct BulkVerdict {
  bool bulk = false;
  std::uint32_t requests_per_min = 0;  // over the window, per minute
  std::uint64_t bytes_per_min = 0;
  std::uint32_t since_s = 0;  // the first use the window still covers (unix s)
};

class BulkDetector {
 public:
  explicit BulkDetector(const BulkPolicy& policy);  // allocates only when policy.enabled
  // A sighting's counts for the token (Sighting::requests, ::bytes) at
  // time_ms. The verdict is bulk once the window's volume is over the limit.
  BulkVerdict observe(std::uint16_t key_id, std::uint64_t session, std::uint32_t requests, std::uint64_t bytes,
                      std::uint64_t time_ms);
  BulkVerdict rate(std::uint16_t key_id, std::uint64_t session, std::uint64_t now_ms) const;
  std::size_t memory_bytes() const { return entries_.size() * sizeof(Entry); }

 private:
  // A token's volume in the four quarters up to `quarter` (its newest).
  struct Entry {
    std::uint64_t token = 0;         // TokenId hash | 1; 0 = free
    std::uint32_t quarter = 0;       // unix s / kBulkQuarterS of kib[0] and requests[0]
    std::uint32_t requests[4] = {};  // [i]: quarter - i
    std::uint32_t kib[4] = {};       // KiB
    std::uint32_t first_s = 0;       // the token's first sighting here (unix s)
  };
  static_assert(sizeof(Entry) == 48, "an entry fills 48 bytes");
  static constexpr std::size_t kWays = 4;
  BulkVerdict rate_of(const Entry& e, std::uint32_t quarter) const;
  double load(const Entry& e, std::uint32_t quarter) const;  // volume against the limits, to pick a victim
  static void advance(Entry& e, std::uint32_t quarter);

  BulkPolicy policy_;
  std::vector<Entry> entries_;  // sets of kWays
  std::size_t sets_ = 0;
};

}  // namespace uritoken
