// Token redaction for logs; see redact.h.
#include "redact.h"

#include <cstring>

#include "request_path.h"

namespace uritoken {
namespace {

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

bool is_token_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// Length of the run after a marker: token characters and %XX escapes, or
// "[redacted]" itself, so that redacting twice changes nothing.
std::size_t token_run_length(std::string_view s) {
  constexpr std::string_view kDone = kRedactedToken.substr(4);
  if (s.substr(0, kDone.size()) == kDone) return kDone.size();
  std::size_t i = 0;
  while (i < s.size()) {
    if (is_token_char(s[i])) {
      ++i;
    } else if (s[i] == '%' && i + 2 < s.size() && is_hex(s[i + 1]) && is_hex(s[i + 2])) {
      i += 3;
    } else {
      break;
    }
  }
  return i;
}

// Marker length at `at` (see token_prefix_length), or 0.
std::size_t marker_at(std::string_view s, std::size_t at) {
  const char c = s[at];
  if (c != '_' && c != '%') return 0;
  return token_prefix_length(s.substr(at));
}

}  // namespace

std::size_t find_token_marker(std::string_view s) {
  for (std::size_t at = s.find_first_of("_%"); at != std::string_view::npos; at = s.find_first_of("_%", at + 1)) {
    if (marker_at(s, at) != 0) return at;
  }
  return std::string_view::npos;
}

std::size_t redact_tokens(std::string_view s, char* out) {
  std::size_t o = 0;
  std::size_t copied = 0;  // s before this is in `out` already
  for (std::size_t at = find_token_marker(s); at != std::string_view::npos;) {
    std::memcpy(out + o, s.data() + copied, at - copied);
    o += at - copied;
    kRedactedToken.copy(out + o, kRedactedToken.size());
    o += kRedactedToken.size();
    const std::size_t marker = marker_at(s, at);
    copied = at + marker + token_run_length(s.substr(at + marker));
    const std::size_t next = find_token_marker(s.substr(copied));
    at = next == std::string_view::npos ? next : copied + next;
  }
  std::memcpy(out + o, s.data() + copied, s.size() - copied);
  o += s.size() - copied;
  out[o] = '\0';
  return o;
}

std::string redact_tokens(std::string_view s) {
  std::string out(redacted_capacity(s.size()), '\0');
  out.resize(redact_tokens(s, out.data()));
  return out;
}

}  // namespace uritoken
