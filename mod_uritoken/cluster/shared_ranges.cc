// SPDX-License-Identifier: Apache-2.0
// Shared-range files; see shared_ranges.h.
#include "shared_ranges.h"

namespace uritoken {

namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 60)) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  return out;
}
}  // namespace

SharedRangesResult parse_shared_ranges(std::string_view text) {
  SharedRangesResult out;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (const std::size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = trim(line);
    if (line.empty()) continue;
    std::string_view field = trim(line.substr(0, line.find(',')));  // a CSV's first column
    const auto prefix = parse_ip_prefix(field);
    if (!prefix) {
      out.ranges.clear();
      out.error_line = line_no;
      out.error = "'" + printable(field) + "' is not a CIDR range (one range a line, or a CSV with the range first)";
      return out;
    }
    out.ranges.push_back(*prefix);
  }
  return out;
}

}  // namespace uritoken
