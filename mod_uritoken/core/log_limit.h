// SPDX-License-Identifier: Apache-2.0
// A rate limit for log lines about refused requests, shared by every
// process of a server: for each kind of refusal, at most `per_second` lines
// a second are written in full; the rest are only counted, and the count
// is reported in one summary line with the next line of that kind. Every
// refusal is also counted in a running total (for counters and metrics).
//
// A forged-token flood otherwise writes one line per request (about 130
// bytes, several KB with a padded Referer): gigabytes an hour.
//
// Lock-free: each kind is one 64-bit word (second << 32 | count in that
// second) changed by compare-and-swap, so the object can live in shared
// memory that all httpd children map. Trivially constructible in place.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace uritoken {

class LogLimit {
 public:
  static constexpr std::size_t kKinds = 64;

  // `per_second` 0 means no limit.
  void reset(std::uint32_t per_second);

  struct Decision {
    bool log = false;                     // write this line
    std::uint32_t suppressed = 0;         // lines of this kind not written ...
    std::uint32_t suppressed_second = 0;  // ... in this earlier second (unix s)
  };
  // Notes one refusal of `kind` (< kKinds; larger kinds share the last) at
  // `now_s` and says whether to log it.
  Decision note(std::size_t kind, std::uint32_t now_s);

  std::uint64_t total(std::size_t kind) const;

 private:
  struct Slot {
    std::atomic<std::uint64_t> window;  // second << 32 | lines noted in that second
    std::atomic<std::uint64_t> total;
  };
  std::uint32_t per_second_ = 0;
  Slot slots_[kKinds];
};

}  // namespace uritoken
