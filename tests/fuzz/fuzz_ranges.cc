// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the shared-range file parser never crashes, and what it
// accepts is ranges only (every range re-parses to itself).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "../../mod_uritoken/cluster/shared_ranges.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto r = uritoken::parse_shared_ranges(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!r.ok() && !r.ranges.empty()) std::abort();
  for (const auto& p : r.ranges) {
    const auto again = uritoken::parse_ip_prefix(uritoken::format_ip_prefix(p));
    if (!again || again->length != p.length) std::abort();
  }
  return 0;
}
