// SPDX-License-Identifier: Apache-2.0
// A token's identity in the cluster: the key that signed it and its random
// session id. It is the unit of sightings, verdicts and revocations, and
// the one thing every table is keyed by: the shared-memory revocation
// table, the sharing detector, the gossip CRDT's buckets and the owner
// (rendezvous) hash all use TokenId::hash().
#pragma once

#include <cstddef>
#include <cstdint>

#include "mix.h"

namespace uritoken {

struct TokenId {
  std::uint16_t key_id = 0;
  std::uint64_t session = 0;

  bool operator==(const TokenId& o) const { return key_id == o.key_id && session == o.session; }
  bool operator!=(const TokenId& o) const { return !(*this == o); }
  bool operator<(const TokenId& o) const { return key_id != o.key_id ? key_id < o.key_id : session < o.session; }

  // splitmix64(session ^ splitmix64(key_id)): sessions are random already,
  // mixing in the key id keeps equal sessions under two keys apart. Not
  // for security: both fields are authenticated before they get here.
  std::uint64_t hash() const { return splitmix64(session ^ splitmix64(key_id)); }
};

// A subscriber (core/token.h, subscriber_ref) takes key id 0, which no
// token has: its verdicts and sightings ride the same tables and wire.
constexpr std::uint16_t kSubscriberKeyId = 0;
inline bool is_subscriber(const TokenId& t) { return t.key_id == kSubscriberKeyId; }

struct TokenIdHash {
  std::size_t operator()(const TokenId& t) const { return static_cast<std::size_t>(t.hash()); }
};

}  // namespace uritoken
