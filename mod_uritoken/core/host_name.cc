// SPDX-License-Identifier: Apache-2.0
// Host names for one server at one address; see host_name.h.
#include "host_name.h"

#include <cstdio>

#include "hmac.h"

namespace uritoken {

std::string node_hash(const std::uint8_t public_key[32]) {
  std::uint8_t digest[32];
  sha256(public_key, 32, digest);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < kNodeHashChars / 2; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

bool valid_node_hash(std::string_view hash) {
  if (hash.size() != kNodeHashChars) return false;
  for (char c : hash) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::optional<std::string> normalized_zone(std::string_view zone) {
  if (!zone.empty() && zone.back() == '.') zone.remove_suffix(1);
  std::string out;
  std::size_t labels = 0, label = 0;
  for (std::size_t i = 0; i <= zone.size(); ++i) {
    const char c = i < zone.size() ? zone[i] : '.';
    if (c == '.') {
      // A label of 1..63 that neither starts nor ends with '-'.
      if (label == 0 || label > 63 || out.back() == '-' || out[out.size() - label] == '-') return std::nullopt;
      ++labels;
      label = 0;
      if (i < zone.size()) out += '.';
      continue;
    }
    const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (!((lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9') || lower == '-')) return std::nullopt;
    out += lower;
    ++label;
  }
  if (labels < 2) return std::nullopt;
  return out;
}

std::optional<std::string> server_host_name(const IpAddress& address, std::string_view hash, std::string_view zone,
                                            std::string* why) {
  auto fail = [why](const char* what) -> std::optional<std::string> {
    if (why != nullptr) *why = what;
    return std::nullopt;
  };
  if (!valid_node_hash(hash)) return fail("the node hash is 32 lower-case hex digits (uritoken node-identity)");
  const std::optional<std::string> apex = normalized_zone(zone);
  if (!apex) return fail("the zone is not a host name (letters, digits and '-' in dot-separated labels)");
  const IpAddress a = unmapped_ip(address);
  char label[40];
  if (a.v6) {
    std::snprintf(label, sizeof label, "%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x",
                  a.bytes[0], a.bytes[1], a.bytes[2], a.bytes[3], a.bytes[4], a.bytes[5], a.bytes[6], a.bytes[7],
                  a.bytes[8], a.bytes[9], a.bytes[10], a.bytes[11], a.bytes[12], a.bytes[13], a.bytes[14], a.bytes[15]);
  } else {
    std::snprintf(label, sizeof label, "%u-%u-%u-%u", a.bytes[0], a.bytes[1], a.bytes[2], a.bytes[3]);
  }
  std::string name = std::string(label) + "." + std::string(hash) + "." + *apex;
  if (name.size() > 253) return fail("the zone is too long: the host name would pass 253 characters");
  return name;
}

}  // namespace uritoken
