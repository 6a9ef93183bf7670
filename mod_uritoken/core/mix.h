// splitmix64's finaliser: a fast, well-mixing 64-bit hash for table slots
// and buckets (not for security: the inputs are authenticated already).
#pragma once

#include <cstdint>

namespace uritoken {

inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace uritoken
