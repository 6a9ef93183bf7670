// SPDX-License-Identifier: Apache-2.0
// Token prefix splitting, safe path decoding and scope derivation.
#include "request_path.h"

namespace uritoken {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

}  // namespace

std::optional<std::string_view> token_of_url(std::string_view url) {
  std::size_t path_start = 0;
  if (const auto scheme_end = url.find("://"); scheme_end != std::string_view::npos) {
    path_start = url.find_first_of("/?#", scheme_end + 3);
    if (path_start == std::string_view::npos || url[path_start] != '/') return std::nullopt;
  } else if (url.empty() || url[0] != '/') {
    return std::nullopt;
  }
  std::string_view segment = url.substr(path_start + 1);
  segment = segment.substr(0, segment.find_first_of("/?#"));
  if (segment.substr(0, kTokenPrefix.size()) != kTokenPrefix) return std::nullopt;
  return segment.substr(kTokenPrefix.size());
}

TokenSplit split_token_prefix(std::string_view raw_path) {
  TokenSplit out;
  if (raw_path.size() < 1 + kTokenPrefix.size() || raw_path[0] != '/' ||
      !starts_with(raw_path.substr(1), kTokenPrefix)) {
    return out;
  }
  out.has_token = true;
  const std::size_t begin = 1 + kTokenPrefix.size();
  const std::size_t end = raw_path.find('/', begin);
  if (end == std::string_view::npos) {
    out.token = raw_path.substr(begin);
  } else {
    out.token = raw_path.substr(begin, end - begin);
    out.remainder = raw_path.substr(end);
  }
  return out;
}

std::size_t token_prefix_length(std::string_view s) {
  std::size_t consumed = 0;
  for (char want : kTokenPrefix) {
    if (consumed >= s.size()) return 0;
    char got = s[consumed];
    std::size_t step = 1;
    if (got == '%' && consumed + 2 < s.size()) {
      const int hi = hex_value(s[consumed + 1]), lo = hex_value(s[consumed + 2]);
      if (hi >= 0 && lo >= 0) {
        got = static_cast<char>(hi * 16 + lo);
        step = 3;
      }
    }
    if (got >= 'A' && got <= 'Z') got = static_cast<char>(got - 'A' + 'a');
    if (got != want) return 0;
    consumed += step;
  }
  return consumed;
}

bool has_token_segment(std::string_view raw_path) {
  for (std::size_t at = raw_path.find('/'); at != std::string_view::npos; at = raw_path.find('/', at + 1)) {
    if (token_prefix_length(raw_path.substr(at + 1)) != 0) return true;
  }
  return false;
}

const char* path_problem_name(PathProblem p) {
  switch (p) {
    case PathProblem::none: return "none";
    case PathProblem::bad_escape: return "bad-escape";
    case PathProblem::nul_byte: return "nul-byte";
    case PathProblem::encoded_slash: return "encoded-slash";
    case PathProblem::dot_segment: return "dot-segment";
    case PathProblem::misplaced_token: return "misplaced-token";
  }
  return "unknown";
}

PathProblem decode_request_path(std::string_view raw, std::string* decoded) {
  decoded->resize(raw.size() + 1);
  std::size_t len = 0;
  const PathProblem problem = decode_request_path(raw, decoded->data(), &len);
  decoded->resize(len);
  return problem;
}

PathProblem decode_request_path(std::string_view raw, char* out, std::size_t* decoded_len) {
  // Writes through a raw pointer into a pre-sized buffer: this runs on every
  // tokenized request, and per-character push_back cost more than the MAC.
  std::size_t o = 0;
  *decoded_len = 0;
  out[o++] = '/';
  std::size_t segment_start = 1;  // index in out where the current segment begins

  // Checks the segment that ends at out[o].
  auto segment_ok = [&]() {
    const std::string_view seg(out + segment_start, o - segment_start);
    if (seg.size() <= 2 && (seg == "." || seg == "..")) return PathProblem::dot_segment;
    // Any letter case: "_UK_" is refused like "_uk_" (the segment is decoded already).
    if (token_prefix_length(seg) != 0) return PathProblem::misplaced_token;
    return PathProblem::none;
  };

  const char* in = raw.data();
  const std::size_t n = raw.size();
  for (std::size_t i = 0; i < n; ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= n) return PathProblem::bad_escape;
      const int hi = hex_value(in[i + 1]);
      const int lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return PathProblem::bad_escape;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
      if (c == '/' || c == '\\') return PathProblem::encoded_slash;
      if (c == '\0') return PathProblem::nul_byte;
      out[o++] = c;
      continue;
    }
    if (c == '\0') return PathProblem::nul_byte;
    if (c == '/') {
      if (out[o - 1] == '/') continue;  // merge repeated slashes
      if (auto p = segment_ok(); p != PathProblem::none) return p;
      out[o++] = '/';
      segment_start = o;
      continue;
    }
    out[o++] = c;
  }
  *decoded_len = o;
  return segment_ok();
}

std::optional<std::uint8_t> scope_descriptor(std::string_view scope, std::string* canonical) {
  if (scope.empty() || scope[0] != '/') return std::nullopt;
  canonical->clear();
  unsigned segments = 0;
  bool in_segment = false;
  std::size_t seg_start = 0;
  auto close_segment = [&]() {
    const std::string_view seg = std::string_view(*canonical).substr(seg_start);
    return !(seg == "." || seg == ".." || token_prefix_length(seg) != 0);
  };
  for (char c : scope) {
    if (c == '\0' || c == '%') return std::nullopt;  // scopes are given decoded
    if (c == '/') {
      if (in_segment) {
        if (!close_segment()) return std::nullopt;
        in_segment = false;
      }
      if (!canonical->empty() && canonical->back() == '/') continue;
      canonical->push_back('/');
      continue;
    }
    if (!in_segment) {
      in_segment = true;
      seg_start = canonical->size();
      ++segments;
    }
    canonical->push_back(c);
  }
  if (in_segment && !close_segment()) return std::nullopt;
  if (segments == 0 || segments > kScopeMaxSegments) return std::nullopt;
  const bool exact = canonical->back() != '/';
  return static_cast<std::uint8_t>(segments | (exact ? kScopeExact : 0));
}

std::optional<std::string_view> scope_of_path(std::string_view path, std::uint8_t descriptor, std::string* scratch) {
  const unsigned want = descriptor & 0x7f;
  const bool exact = (descriptor & kScopeExact) != 0;
  if (want == 0 || path.empty() || path[0] != '/') return std::nullopt;
  unsigned seen = 0;
  std::size_t i = 1;
  while (i < path.size()) {
    const std::size_t slash = path.find('/', i);
    const std::size_t end = slash == std::string_view::npos ? path.size() : slash;
    if (end == i) break;  // trailing slash: no further segment
    ++seen;
    if (seen == want) {
      if (exact) {
        if (end != path.size()) return std::nullopt;  // deeper, or a directory
        return path;
      }
      if (end < path.size()) return path.substr(0, end + 1);
      scratch->assign(path);
      scratch->push_back('/');
      return std::string_view(*scratch);
    }
    if (slash == std::string_view::npos) break;
    i = slash + 1;
  }
  return std::nullopt;
}

}  // namespace uritoken
