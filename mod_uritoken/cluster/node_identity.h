// SPDX-License-Identifier: Apache-2.0
// A node's long-term identity (docs/https.md): an Ed25519 key pair kept in
// UriTokenStateDir/node.key (0600, one line: the 32-byte seed in
// base64url), made at the node's first start, and the node hash derived
// from its public key (core/host_name.h), which names the node's DNS zone
// and wildcard certificate, *.<node hash>.<zone>, so that a name and a
// certificate fit this one server. Not the gossip id (a random number that
// says nothing of a key) and not the cluster key (shared by all nodes).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace uritoken::cluster {

inline constexpr const char* kNodeKeyFile = "node.key";

struct NodeIdentity {
  std::array<std::uint8_t, 32> public_key{};
  std::string hash;      // node_hash(public_key): 32 lower-case hex digits
  bool created = false;  // made by this call (the node's first start)
};

// Reads `path`, or makes it if it does not exist (`create`): a fresh seed
// written to a temporary file, fsync'ed and linked into place, so that two
// processes starting at once agree on one key and a crash never leaves
// half of one. A file that others can read, or that is not one seed, is
// refused with *error naming it and the fix.
std::optional<NodeIdentity> load_node_identity(const std::string& path, bool create, std::string* error);

}  // namespace uritoken::cluster
