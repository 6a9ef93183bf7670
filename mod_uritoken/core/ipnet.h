// SPDX-License-Identifier: Apache-2.0
// IP addresses and prefixes (CIDR) for binding a token to a client network.
//
// An IPv4-mapped IPv6 address (::ffff:a.b.c.d), as a dual-stack listener
// reports IPv4 clients, is treated as the IPv4 address it carries, so a token
// bound to 192.0.2.0/24 works whichever socket the client arrived on.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace uritoken {

struct IpAddress {
  bool v6 = false;
  std::uint8_t bytes[16] = {};  // first 4 used for IPv4
  std::size_t size() const { return v6 ? 16 : 4; }
  unsigned max_prefix() const { return v6 ? 128 : 32; }
};

struct IpPrefix {
  IpAddress addr;       // already masked to `length` bits
  unsigned length = 0;  // 1..32 or 1..128
};

// Parses "192.0.2.7" or "2001:db8::1".
std::optional<IpAddress> parse_ip_address(std::string_view text);

// Parses "192.0.2.0/24", "2001:db8::/48"; a bare address means a full-length
// prefix. Host bits beyond the prefix are cleared.
std::optional<IpPrefix> parse_ip_prefix(std::string_view text);

// `addr` with every bit past `length` cleared.
IpAddress mask_ip(const IpAddress& addr, unsigned length);

// ::ffff:a.b.c.d as the IPv4 address it carries, any other address as it
// is (for addresses that did not come through parse_ip_address).
IpAddress unmapped_ip(const IpAddress& addr);

// The client networks that link sharing counts: /24 for IPv4 (mapped or
// not), /48 for IPv6. SharingPolicy's defaults, and the key of the
// workers' repeat filter (SharedState::check_repeat).
constexpr unsigned kSharingPrefixV4 = 24, kSharingPrefixV6 = 48;
IpAddress sharing_network(const IpAddress& addr);

std::string format_ip_prefix(const IpPrefix& p);

}  // namespace uritoken
