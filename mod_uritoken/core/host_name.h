// SPDX-License-Identifier: Apache-2.0
// The host name of one media server at one of its addresses, for URLs
// minted for that server (docs/https.md, "HTTPS for every node"):
//
//   203.0.113.7   -> 203-0-113-7.<node hash>.<zone>
//   2001:db8::7   -> 2001-0db8-0000-0000-0000-0000-0000-0007.<node hash>.<zone>
//
// The node's own DNS zone <node hash>.<zone> answers the name with the
// address in it (PowerDNS createForward/createForward6), and its wildcard
// certificate *.<node hash>.<zone> covers every such name and no other
// node's. IPv6 is written out in full: every address has one spelling, and
// the label never starts or ends with '-' (a compressed "::1" would).
// An IPv4-mapped IPv6 address is written as IPv4. Pure; every minter
// (C API, C++, CLI, Python, Node, PHP) follows tests/vectors/host-names.txt.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ipnet.h"

namespace uritoken {

// First 16 bytes of SHA-256 of the node's public identity key, in lower-case hex.
constexpr std::size_t kNodeHashChars = 32;
std::string node_hash(const std::uint8_t public_key[32]);
bool valid_node_hash(std::string_view hash);  // 32 lower-case hex digits

// The zone as a host name ends: letters, digits and '-' in labels of 1 to
// 63 that neither start nor end with '-', at least two labels; upper case
// is folded and one trailing dot dropped. nullopt if it is not one.
std::optional<std::string> normalized_zone(std::string_view zone);

// The name; nullopt (with *why) if the hash or the zone is not valid or the
// name would be longer than 253 characters.
std::optional<std::string> server_host_name(const IpAddress& address, std::string_view node_hash, std::string_view zone,
                                            std::string* why = nullptr);

}  // namespace uritoken
