// SPDX-License-Identifier: Apache-2.0
// Files of shared network ranges (UriTokenSharedNetworkFile): address
// ranges where many unrelated users share few addresses (a relay's egress,
// a company's proxies), which the sharing rule counts as one shared group.
//
// Accepted as they are published: one CIDR prefix or address a line, '#'
// comments and blank lines allowed, or a CSV whose first column is the
// prefix (Apple's iCloud Private Relay egress list,
// `198.51.100.0/24,US,US-CA,Los Angeles,`). Strict otherwise: a line that
// holds no range is an error naming the line, so a file cut in half or of
// the wrong kind is not taken for a short list.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "../core/ipnet.h"

namespace uritoken {

struct SharedRangesResult {
  std::vector<IpPrefix> ranges;
  std::size_t error_line = 0;  // 1-based; 0 = no error
  std::string error;           // "'abc' is not a CIDR range"
  bool ok() const { return error_line == 0; }
};

SharedRangesResult parse_shared_ranges(std::string_view text);

}  // namespace uritoken
