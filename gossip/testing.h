// SPDX-License-Identifier: Apache-2.0
// Test doubles for the gossip library, shared by its tests, benchmarks and
// fuzzers: a transport and a listener that drop everything, and a cluster
// key made from a pattern (each test suite its own, so that packets of one
// suite never open in another's nodes).
#pragma once

#include <array>
#include <cstdint>

#include "gossip.h"

namespace uritoken::gossip::doubles {

struct NullTransport : Transport {
  void send(const Endpoint&, const std::uint8_t*, std::size_t) override {}
};

struct NullListener : Listener {
  void revocation_changed(const Revocation&) override {}
  void owned_sighting(const SightingReport&) override {}
};

// Byte i of the key is i * step + offset.
inline std::array<std::uint8_t, 32> pattern_key(unsigned step = 1, unsigned offset = 0) {
  std::array<std::uint8_t, 32> key{};
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(i * step + offset);
  return key;
}

}  // namespace uritoken::gossip::doubles
