// SPDX-License-Identifier: Apache-2.0
// Token redaction for logs; see redact.h.
#include "redact.h"

#include <cstring>

#include "request_path.h"

namespace uritoken {
namespace {

// Characters a token run consists of (besides %XX escapes): base64url.
constexpr auto kTokenChars = [] {
  struct Table {
    bool on[256] = {};
  } t;
  for (int c = 'A'; c <= 'Z'; ++c) t.on[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t.on[c] = true;
  for (int c = '0'; c <= '9'; ++c) t.on[c] = true;
  t.on[static_cast<unsigned char>('-')] = true;
  t.on[static_cast<unsigned char>('_')] = true;
  return t;
}();

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// Length of the run after a marker: token characters and %XX escapes, or
// "[redacted]" itself, so that redacting twice changes nothing.
std::size_t token_run_length(std::string_view s) {
  constexpr std::string_view kDone = kRedactedToken.substr(4);
  if (s.substr(0, kDone.size()) == kDone) return kDone.size();
  std::size_t i = 0;
  while (i < s.size()) {
    if (kTokenChars.on[static_cast<unsigned char>(s[i])]) {
      ++i;
    } else if (s[i] == '%' && i + 2 < s.size() && is_hex(s[i + 1]) && is_hex(s[i + 2])) {
      i += 3;
    } else {
      break;
    }
  }
  return i;
}

const char* find_char(const char* from, const char* end, char c) {
  return static_cast<const char*>(std::memchr(from, c, static_cast<std::size_t>(end - from)));
}

}  // namespace

// A marker starts with '_' or '%': look for each with memchr (most request
// lines hold neither, or few), and try the nearer one.
std::size_t find_token_marker(std::string_view s) {
  const char* const begin = s.data();
  const char* const end = begin + s.size();
  const char* under = find_char(begin, end, '_');
  const char* percent = find_char(begin, end, '%');
  while (under != nullptr || percent != nullptr) {
    const bool take_under = percent == nullptr || (under != nullptr && under < percent);
    const char* at = take_under ? under : percent;
    if (token_prefix_length(std::string_view(at, static_cast<std::size_t>(end - at))) != 0) {
      return static_cast<std::size_t>(at - begin);
    }
    if (take_under) {
      under = find_char(at + 1, end, '_');
    } else {
      percent = find_char(at + 1, end, '%');
    }
  }
  return std::string_view::npos;
}

std::size_t redact_tokens(std::string_view s, char* out, std::size_t first_marker) {
  std::size_t o = 0;
  std::size_t copied = 0;  // s before this is in `out` already
  for (std::size_t at = first_marker; at != std::string_view::npos;) {
    std::memcpy(out + o, s.data() + copied, at - copied);
    o += at - copied;
    kRedactedToken.copy(out + o, kRedactedToken.size());
    o += kRedactedToken.size();
    const std::size_t marker = token_prefix_length(s.substr(at));
    copied = at + marker + token_run_length(s.substr(at + marker));
    const std::size_t next = find_token_marker(s.substr(copied));
    at = next == std::string_view::npos ? next : copied + next;
  }
  std::memcpy(out + o, s.data() + copied, s.size() - copied);
  o += s.size() - copied;
  out[o] = '\0';
  return o;
}

std::size_t redact_tokens(std::string_view s, char* out) { return redact_tokens(s, out, find_token_marker(s)); }

std::string redact_tokens(std::string_view s) {
  std::string out(redacted_capacity(s.size()), '\0');
  out.resize(redact_tokens(s, out.data()));
  return out;
}

}  // namespace uritoken
