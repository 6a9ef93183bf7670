// SPDX-License-Identifier: Apache-2.0
// IP address and prefix parsing on top of inet_pton/inet_ntop.
#include "ipnet.h"

#include <arpa/inet.h>

#include <cstring>

namespace uritoken {

std::optional<IpAddress> parse_ip_address(std::string_view text) {
  char buf[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof buf) return std::nullopt;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddress a;
  if (inet_pton(AF_INET, buf, a.bytes) == 1) return a;
  if (inet_pton(AF_INET6, buf, a.bytes) == 1) {
    static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(a.bytes, kMapped, sizeof kMapped) == 0) {
      std::memmove(a.bytes, a.bytes + 12, 4);
      std::memset(a.bytes + 4, 0, 12);
      return a;
    }
    a.v6 = true;
    return a;
  }
  return std::nullopt;
}

IpAddress mask_ip(const IpAddress& addr, unsigned length) {
  IpAddress out = addr;
  for (unsigned i = 0; i < out.size(); ++i) {
    const unsigned bit = i * 8;
    if (bit >= length) {
      out.bytes[i] = 0;
    } else if (length - bit < 8) {
      out.bytes[i] &= static_cast<std::uint8_t>(0xff << (8 - (length - bit)));
    }
  }
  return out;
}

IpAddress unmapped_ip(const IpAddress& addr) {
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (!addr.v6 || std::memcmp(addr.bytes, kMapped, sizeof kMapped) != 0) return addr;
  IpAddress out;
  std::memcpy(out.bytes, addr.bytes + 12, 4);
  return out;
}

IpAddress sharing_network(const IpAddress& addr) {
  const IpAddress a = unmapped_ip(addr);
  return mask_ip(a, a.v6 ? kSharingPrefixV6 : kSharingPrefixV4);
}

std::optional<IpPrefix> parse_ip_prefix(std::string_view text) {
  const auto slash = text.find('/');
  auto addr = parse_ip_address(text.substr(0, slash));
  if (!addr) return std::nullopt;
  unsigned length = addr->max_prefix();
  if (slash != std::string_view::npos) {
    const auto digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3) return std::nullopt;
    length = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return std::nullopt;
      length = length * 10 + static_cast<unsigned>(c - '0');
    }
    if (length == 0 || length > addr->max_prefix()) return std::nullopt;
  }
  return IpPrefix{mask_ip(*addr, length), length};
}

std::string format_ip_prefix(const IpPrefix& p) {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(p.addr.v6 ? AF_INET6 : AF_INET, p.addr.bytes, buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(p.length);
}

}  // namespace uritoken
