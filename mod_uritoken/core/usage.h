// SPDX-License-Identifier: Apache-2.0
// Per-client billing counters and per-key last use, shared by every httpd
// child (placed in anonymous shared memory each configuration generation):
// requests and bytes sent per client id, counted after the response
// (log_transaction), and when each key id last verified a token on this
// node (so an operator sees when an old key can be retired).
//
// Lock-free: a client's slot is claimed once by CAS on its hash, then only
// its counters change (atomic adds). Bounded: kClients clients; requests of
// clients beyond that are counted in overflow(), not lost silently.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace uritoken {

class UsageTable {
 public:
  static constexpr std::size_t kClients = 4096;    // a power of two
  static constexpr std::size_t kClientChars = 32;  // client ids are at most this long (keyring.h)
  static constexpr std::size_t kKeys = 65536;

  void reset();

  // One response of `bytes` to a request billed to `client`.
  void add(std::string_view client, std::uint64_t bytes);
  void key_used(std::uint16_t key_id, std::uint32_t now_s) { keys_[key_id].store(now_s, std::memory_order_relaxed); }

  struct ClientUsage {
    std::string client;
    std::uint64_t requests = 0, bytes = 0;
  };
  template <class F>
  void for_each_client(F f) const {
    for (const Slot& s : slots_) {
      if (s.ready.load(std::memory_order_acquire) == 0) continue;
      f(ClientUsage{std::string(s.client, s.length), s.requests.load(std::memory_order_relaxed),
                    s.bytes.load(std::memory_order_relaxed)});
    }
  }
  std::uint32_t key_last_used(std::uint16_t key_id) const { return keys_[key_id].load(std::memory_order_relaxed); }
  std::uint64_t overflow_requests() const { return overflow_.load(std::memory_order_relaxed); }

 private:
  struct Slot {
    std::atomic<std::uint64_t> hash;   // 0 = free
    std::atomic<std::uint32_t> ready;  // the name is written
    std::uint32_t length;
    char client[kClientChars];
    std::atomic<std::uint64_t> requests, bytes;
  };
  Slot slots_[kClients];
  std::atomic<std::uint32_t> keys_[kKeys];
  std::atomic<std::uint64_t> overflow_;
};

}  // namespace uritoken
