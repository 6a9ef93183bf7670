// SPDX-License-Identifier: Apache-2.0
// splitmix64's finaliser: a fast, well-mixing 64-bit hash for table slots
// and buckets (not for security: the inputs are authenticated already).
#pragma once

#include <cstdint>

namespace uritoken {

// The finaliser alone (gossip's bucket and rendezvous hashes use it).
inline std::uint64_t mix64(std::uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

inline std::uint64_t splitmix64(std::uint64_t x) { return mix64(x + 0x9e3779b97f4a7c15ull); }

}  // namespace uritoken
