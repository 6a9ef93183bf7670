// SPDX-License-Identifier: Apache-2.0
// Control protocol records; see control.h.
#include "control.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>

namespace uritoken::control {
namespace {

bool needs_escape(unsigned char c) {
  return c == '%' || c == '\t' || c == '\n' || c == '\r' || c == '=' || c < 0x20 || c == 0x7f;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool valid_name(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

}  // namespace

Record& Record::add(std::string name, std::string value) {
  fields.emplace_back(std::move(name), std::move(value));
  return *this;
}

Record& Record::add(std::string name, std::uint64_t value) { return add(std::move(name), std::to_string(value)); }

std::optional<std::string> Record::get(std::string_view name) const {
  for (const auto& [n, v] : fields) {
    if (n == name) return v;
  }
  return std::nullopt;
}

std::optional<std::uint64_t> Record::get_u64(std::string_view name, int base) const {
  const auto v = get(name);
  if (!v || v->empty() || v->size() > 20) return std::nullopt;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v->c_str(), &end, base);
  if (end != v->c_str() + v->size() || (*v)[0] == '-' || (*v)[0] == '+') return std::nullopt;
  return static_cast<std::uint64_t>(n);
}

std::string percent_encode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (needs_escape(static_cast<unsigned char>(c))) {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (needs_escape(c)) {
      return std::nullopt;  // must have been escaped
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string encode(const Record& r) {
  std::string line = r.kind;
  for (const auto& [name, value] : r.fields) {
    line += '\t';
    line += name;
    line += '=';
    line += percent_encode(value);
  }
  line += '\n';
  return line;
}

std::optional<Record> decode(std::string_view line) {
  Record r;
  std::size_t at = line.find('\t');
  r.kind = std::string(line.substr(0, at));
  if (!valid_name(r.kind)) return std::nullopt;
  while (at != std::string_view::npos) {
    const std::size_t start = at + 1;
    at = line.find('\t', start);
    const std::string_view field =
        line.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start);
    const std::size_t eq = field.find('=');
    if (eq == std::string_view::npos || !valid_name(field.substr(0, eq))) return std::nullopt;
    auto value = percent_decode(field.substr(eq + 1));
    if (!value) return std::nullopt;
    r.fields.emplace_back(std::string(field.substr(0, eq)), std::move(*value));
  }
  return r;
}

std::string encode_all(const std::vector<Record>& records) {
  std::string out;
  for (const auto& r : records) out += encode(r);
  out += "end\n";
  return out;
}

std::optional<std::vector<Record>> decode_all(std::string_view text) {
  std::vector<Record> out;
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t nl = text.find('\n', at);
    if (nl == std::string_view::npos) return std::nullopt;  // truncated
    const std::string_view line = text.substr(at, nl - at);
    at = nl + 1;
    if (line == "end") return at == text.size() ? std::optional(out) : std::nullopt;
    auto r = decode(line);
    if (!r) return std::nullopt;
    out.push_back(std::move(*r));
  }
  return std::nullopt;  // no "end": truncated
}

std::vector<PlaceEvidence> parse_places(std::string_view field) {
  // name|networks|c or s|weight_x10, and since protocol 4 |first|last|country.
  std::vector<PlaceEvidence> out;
  const auto number = [](std::string_view s, std::size_t digits, std::uint64_t* v) {
    if (s.empty() || s.size() > digits) return false;
    *v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return false;
      *v = *v * 10 + static_cast<unsigned>(c - '0');
    }
    return true;
  };
  for (std::size_t at = 0; at < field.size();) {
    const std::size_t end = std::min(field.find(';', at), field.size());
    const std::string_view entry = field.substr(at, end - at);
    at = end + 1;
    std::string_view parts[7];
    std::size_t n = 0, from = 0;
    for (; n < 7; ++n) {
      const std::size_t bar = entry.find('|', from);
      parts[n] = entry.substr(from, bar == std::string_view::npos ? std::string_view::npos : bar - from);
      if (bar == std::string_view::npos) break;
      from = bar + 1;
    }
    if ((n != 3 && n != 6) || parts[0].empty() || (parts[2] != "c" && parts[2] != "s")) continue;
    std::uint64_t networks = 0, weight_x10 = 0;
    if (!number(parts[1], 4, &networks) || !number(parts[3], 4, &weight_x10)) continue;
    PlaceEvidence p{std::string(parts[0]), static_cast<unsigned>(networks), parts[2] == "c", weight_x10 / 10.0};
    if (n == 6) {
      if (!number(parts[4], 10, &p.first_s) || !number(parts[5], 10, &p.last_s)) continue;
      const std::string_view cc = parts[6];
      if (!cc.empty() && (cc.size() != 2 || !std::isupper(static_cast<unsigned char>(cc[0])) ||
                          !std::isupper(static_cast<unsigned char>(cc[1])))) {
        continue;
      }
      p.country = std::string(cc);
    }
    out.push_back(p);
  }
  return out;
}

std::string format_bytes(std::uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes) / 1024;
  std::size_t u = 0;
  while (v >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace uritoken::control
