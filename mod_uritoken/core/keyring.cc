// SPDX-License-Identifier: Apache-2.0
// Key file parsing and lookup.
#include "keyring.h"

#include <sodium.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "base64url.h"

namespace uritoken {

const char* key_state_name(KeyState s) {
  switch (s) {
    case KeyState::sign: return "sign";
    case KeyState::verify_only: return "verify-only";
    case KeyState::retired: return "retired";
  }
  return "?";
}

bool client_id_ok(std::string_view client) {
  if (client.empty() || client.size() > kClientIdMaxLen) return false;
  for (char c : client) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Key::~Key() {
  sodium_memzero(this->secret.data(), this->secret.size());
  sodium_memzero(&mac, sizeof mac);
}

namespace {

std::vector<std::string_view> split_words(std::string_view line) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  return words;
}

std::optional<std::uint16_t> parse_key_id(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v == 0 || v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

}  // namespace

std::optional<KeyRing> KeyRing::parse(std::string_view text, std::string* error) {
  KeyRing ring;
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (const auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const auto words = split_words(line);
    if (words.empty()) continue;
    const std::string where = "line " + std::to_string(line_no) + ": ";
    if (words.size() != 4) {
      *error = where + "expected 4 fields '<key-id> <client-id> <sign|verify-only|retired> <secret>', found " +
               std::to_string(words.size());
      return std::nullopt;
    }
    const auto id = parse_key_id(words[0]);
    if (!id) {
      *error = where + "key id must be a number from 1 to 65535";
      return std::nullopt;
    }
    KeyState state;
    if (words[2] == "sign") {
      state = KeyState::sign;
    } else if (words[2] == "verify-only") {
      state = KeyState::verify_only;
    } else if (words[2] == "retired") {
      state = KeyState::retired;
    } else {
      *error = where + "state must be sign, verify-only or retired";
      return std::nullopt;
    }
    std::uint8_t secret[kKeyBytes];
    if (base64url_decode(secret, sizeof secret, words[3]) != static_cast<long>(kKeyBytes)) {
      *error = where +
               "secret must be 32 bytes in base64url without padding (43 characters); "
               "make one with 'uritoken keygen'";
      return std::nullopt;
    }
    std::string add_error;
    const bool added = ring.add(*id, words[1], state, secret, &add_error);
    sodium_memzero(secret, sizeof secret);
    if (!added) {
      *error = where + add_error;
      return std::nullopt;
    }
  }
  if (ring.keys_.empty()) {
    *error = "no keys in file";
    return std::nullopt;
  }
  return ring;
}

bool read_protected_file(const std::string& path, std::string* text, std::string* error) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    *error = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    *error = path + " is not a regular file";
    return false;
  }
  if ((st.st_mode & (S_IRWXO | S_IWGRP)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    *error = path + " has mode " + mode +
             ": a key file must not be readable by other users nor writable by its group; "
             "fix with: chmod 600 " +
             path;
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  *text = buffer.str();
  return true;
}

std::optional<KeyRing> KeyRing::load_file(const std::string& path, std::string* error) {
  std::string text;
  if (!read_protected_file(path, &text, error)) return std::nullopt;
  std::string parse_error;
  auto ring = parse(text, &parse_error);
  if (!ring) *error = path + ": " + parse_error;
  sodium_memzero(text.data(), text.size());
  return ring;
}

std::optional<std::vector<ClusterKey>> parse_cluster_keys(std::string_view text, std::string* error) {
  std::vector<ClusterKey> keys;
  const auto fail = [&](const std::string& why) -> std::optional<std::vector<ClusterKey>> {
    for (ClusterKey& k : keys) sodium_memzero(k.data(), k.size());
    *error = why;
    return std::nullopt;
  };
  std::size_t line_no = 0;
  for (std::size_t at = 0; at <= text.size();) {
    std::size_t eol = text.find('\n', at);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(at, eol - at);
    at = eol + 1;
    ++line_no;
    const std::size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string_view::npos || line[first] == '#') continue;
    const std::size_t last = line.find_last_not_of(" \t\r");
    line = line.substr(first, last - first + 1);
    ClusterKey key{};
    std::size_t len = 0;
    const char* stop = nullptr;
    if (line.size() != 2 * key.size() ||
        sodium_hex2bin(key.data(), key.size(), line.data(), line.size(), nullptr, &len, &stop) != 0 ||
        len != key.size()) {
      sodium_memzero(key.data(), key.size());
      return fail("line " + std::to_string(line_no) +
                  ": a cluster key is 64 hex digits (32 bytes) on a line of its own; make one with "
                  "'uritoken cluster-keygen'");
    }
    for (const ClusterKey& k : keys) {
      if (sodium_memcmp(k.data(), key.data(), key.size()) == 0) {
        sodium_memzero(key.data(), key.size());
        return fail("line " + std::to_string(line_no) + ": this key is listed twice");
      }
    }
    if (keys.size() == kMaxClusterKeys) {
      sodium_memzero(key.data(), key.size());
      return fail("more than " + std::to_string(kMaxClusterKeys) +
                  " keys: a rotation needs two (the first seals, every one opens); remove retired keys");
    }
    keys.push_back(key);
    sodium_memzero(key.data(), key.size());
  }
  if (keys.empty()) return fail("no key: add one made with 'uritoken cluster-keygen'");
  return keys;
}

std::optional<std::vector<ClusterKey>> load_cluster_keys_file(const std::string& path, std::string* error) {
  std::string text;
  if (!read_protected_file(path, &text, error)) return std::nullopt;
  auto keys = parse_cluster_keys(text, error);
  sodium_memzero(text.data(), text.size());
  if (!keys) *error = path + ": " + *error;
  return keys;
}

std::string generate_cluster_key_hex() {
  ClusterKey key{};
  randombytes_buf(key.data(), key.size());
  char hex[2 * sizeof key + 1];
  sodium_bin2hex(hex, sizeof hex, key.data(), key.size());
  sodium_memzero(key.data(), key.size());
  std::string out(hex);
  sodium_memzero(hex, sizeof hex);
  return out;
}

bool KeyRing::add(std::uint16_t id, std::string_view client, KeyState state, const std::uint8_t secret[kKeyBytes],
                  std::string* error) {
  if (id == 0) {
    *error = "key id must be from 1 to 65535";
    return false;
  }
  if (!client_id_ok(client)) {
    *error = "client id must be 1 to 32 characters of A-Z a-z 0-9 . _ -";
    return false;
  }
  if (find(id) != nullptr) {
    *error = "key id " + std::to_string(id) + " appears twice";
    return false;
  }
  auto key = std::make_unique<Key>();
  key->id = id;
  key->client = std::string(client);
  key->state = state;
  std::memcpy(key->secret.data(), secret, kKeyBytes);
  key->mac = HmacSha256Key(secret);
  const auto at =
      std::lower_bound(keys_.begin(), keys_.end(), id, [](const auto& k, std::uint16_t v) { return k->id < v; });
  keys_.insert(at, std::move(key));
  return true;
}

const Key* KeyRing::find(std::uint16_t id) const {
  const auto at =
      std::lower_bound(keys_.begin(), keys_.end(), id, [](const auto& k, std::uint16_t v) { return k->id < v; });
  return (at != keys_.end() && (*at)->id == id) ? at->get() : nullptr;
}

const Key* KeyRing::signing_key(std::string_view client, std::optional<std::uint16_t> id) const {
  const Key* best = nullptr;
  for (const auto& k : keys_) {
    if (k->client != client || k->state != KeyState::sign) continue;
    if (id && k->id != *id) continue;
    best = k.get();  // keys_ is sorted, so the last match has the highest id
  }
  return best;
}

std::string generate_key_line(std::uint16_t id, std::string_view client) {
  std::uint8_t secret[kKeyBytes];
  randombytes_buf(secret, sizeof secret);
  std::string line =
      std::to_string(id) + " " + std::string(client) + " sign " + base64url_encode(secret, sizeof secret);
  sodium_memzero(secret, sizeof secret);
  return line;
}

}  // namespace uritoken
