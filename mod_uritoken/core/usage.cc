// SPDX-License-Identifier: Apache-2.0
// Per-client usage counters; see usage.h.
#include "usage.h"

#include <cstring>

#include "mix.h"

namespace uritoken {
namespace {

std::uint64_t client_hash(std::string_view client) {
  std::uint64_t h = splitmix64(client.size());
  for (char c : client) h = splitmix64(h ^ static_cast<unsigned char>(c));
  return h == 0 ? 1 : h;
}

}  // namespace

void UsageTable::reset() {
  for (Slot& s : slots_) {
    s.hash.store(0, std::memory_order_relaxed);
    s.ready.store(0, std::memory_order_relaxed);
    s.length = 0;
    s.requests.store(0, std::memory_order_relaxed);
    s.bytes.store(0, std::memory_order_relaxed);
  }
  for (auto& k : keys_) k.store(0, std::memory_order_relaxed);
  overflow_.store(0, std::memory_order_relaxed);
}

void UsageTable::add(std::string_view client, std::uint64_t bytes) {
  if (client.size() > kClientChars) client = client.substr(0, kClientChars);
  const std::uint64_t h = client_hash(client);
  for (std::size_t probe = 0, i = h & (kClients - 1); probe < kClients; ++probe, i = (i + 1) & (kClients - 1)) {
    Slot& s = slots_[i];
    std::uint64_t seen = s.hash.load(std::memory_order_acquire);
    if (seen == 0) {
      if (s.hash.compare_exchange_strong(seen, h, std::memory_order_acq_rel)) {
        // Ours: write the name, then let readers see it.
        std::memcpy(s.client, client.data(), client.size());
        s.length = static_cast<std::uint32_t>(client.size());
        s.ready.store(1, std::memory_order_release);
        seen = h;
      }
    }
    if (seen != h) continue;  // another client's slot (a 64-bit hash: equal means the same client)
    s.requests.fetch_add(1, std::memory_order_relaxed);
    s.bytes.fetch_add(bytes, std::memory_order_relaxed);
    return;
  }
  overflow_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace uritoken
