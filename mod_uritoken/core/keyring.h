// SPDX-License-Identifier: Apache-2.0
// The key ring: every MAC key the server knows, by key id.
//
// Key file format, one key per line ('#' starts a comment):
//
//     <key-id> <client-id> <state> <secret>
//     7 site42 sign 3q2-7w0LPq1WlH5yW6mR4v3x6cG0Z5oQwqYb9lV2tJk
//
//   key-id     1..65535, unique in the file
//   client-id  1..32 of [A-Za-z0-9._-]; a token verifies only if it names
//              the same client as its key, so one site's key cannot mint
//              tokens billed to another site
//   state      sign (mint and verify), verify-only (verify only: the key
//              being phased out, or one being rolled in before use), or
//              retired (kept for the record, refused)
//   secret     32 random bytes, base64url without padding (43 characters)
//
// Rotation without downtime: add the new key as verify-only on every server,
// then make it `sign` at the minting site, then after the longest TTL retire
// the old one. Each step is an edit and a graceful restart.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hmac.h"

namespace uritoken {

enum class KeyState { sign, verify_only, retired };

const char* key_state_name(KeyState s);

constexpr std::size_t kKeyBytes = 32;
constexpr std::size_t kClientIdMaxLen = 32;

bool client_id_ok(std::string_view client);

struct Key {
  std::uint16_t id = 0;
  std::string client;
  KeyState state = KeyState::sign;
  std::array<std::uint8_t, kKeyBytes> secret{};
  HmacSha256Key mac;

  Key() = default;
  Key(const Key&) = delete;
  Key& operator=(const Key&) = delete;
  ~Key();
};

class KeyRing {
 public:
  // Parses key file text. On error returns nothing and sets `error` to a
  // message naming the line and what is wrong.
  static std::optional<KeyRing> parse(std::string_view text, std::string* error);

  // Reads and parses a key file, refusing one that other users can read
  // or that group or others can write.
  static std::optional<KeyRing> load_file(const std::string& path, std::string* error);

  // Adds one key; false (and `error` set) if the id is taken or a field is
  // out of range. For library users that hold keys themselves.
  bool add(std::uint16_t id, std::string_view client, KeyState state, const std::uint8_t secret[kKeyBytes],
           std::string* error);

  // The key with this id, or nullptr.
  const Key* find(std::uint16_t id) const;

  // The key to mint with for `client`: the given id if it is a sign key of
  // that client, else the client's sign key with the highest id.
  const Key* signing_key(std::string_view client, std::optional<std::uint16_t> id) const;

  std::size_t size() const { return keys_.size(); }
  const std::vector<std::unique_ptr<Key>>& keys() const { return keys_; }

 private:
  std::vector<std::unique_ptr<Key>> keys_;  // sorted by id
};

// One key file line for a fresh random key.
std::string generate_key_line(std::uint16_t id, std::string_view client);

// Reads a file holding secrets into `text`, refusing one that other users
// can read or that group or others can write (the message says how to fix it).
bool read_protected_file(const std::string& path, std::string* text, std::string* error);

// The cluster's shared gossip key (XChaCha20-Poly1305): a protected file
// holding 64 hex digits.
using ClusterKey = std::array<std::uint8_t, 32>;
// UriTokenClusterKeyFile: one key per line (64 hex digits), blank lines and
// '#' comments allowed, at most kMaxClusterKeys. The first key seals gossip
// packets and every key opens them, so a key can be rotated in and out
// without an outage (README, "Rotating the cluster key").
constexpr std::size_t kMaxClusterKeys = 4;
std::optional<std::vector<ClusterKey>> parse_cluster_keys(std::string_view text, std::string* error);
std::optional<std::vector<ClusterKey>> load_cluster_keys_file(const std::string& path, std::string* error);
std::string generate_cluster_key_hex();

}  // namespace uritoken
