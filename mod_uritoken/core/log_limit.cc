// SPDX-License-Identifier: Apache-2.0
// Per-kind log rate limit; see log_limit.h.
#include "log_limit.h"

namespace uritoken {

void LogLimit::reset(std::uint32_t per_second) {
  per_second_ = per_second;
  for (Slot& s : slots_) {
    s.window.store(0, std::memory_order_relaxed);
    s.total.store(0, std::memory_order_relaxed);
  }
}

LogLimit::Decision LogLimit::note(std::size_t kind, std::uint32_t now_s) {
  Slot& slot = slots_[kind < kKinds ? kind : kKinds - 1];
  slot.total.fetch_add(1, std::memory_order_relaxed);
  Decision d;
  if (per_second_ == 0) {
    d.log = true;
    return d;
  }
  std::uint64_t old = slot.window.load(std::memory_order_relaxed);
  for (;;) {
    const auto second = static_cast<std::uint32_t>(old >> 32);
    const auto count = static_cast<std::uint32_t>(old);
    std::uint64_t next;
    d = Decision{};
    if (second == now_s) {
      next = count == UINT32_MAX ? old : old + 1;
      d.log = count < per_second_;
    } else {
      // A new second (or the clock stepped back): start counting again and
      // report what the last second held back.
      next = (static_cast<std::uint64_t>(now_s) << 32) | 1;
      d.log = true;
      if (count > per_second_) {
        d.suppressed = count - per_second_;
        d.suppressed_second = second;
      }
    }
    if (slot.window.compare_exchange_weak(old, next, std::memory_order_relaxed)) return d;
  }
}

std::uint64_t LogLimit::total(std::size_t kind) const {
  return slots_[kind < kKinds ? kind : kKinds - 1].total.load(std::memory_order_relaxed);
}

}  // namespace uritoken
