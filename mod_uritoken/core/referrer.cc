// SPDX-License-Identifier: Apache-2.0
// Referrer verification; see referrer.h.
#include "referrer.h"

namespace uritoken {
namespace {

constexpr std::size_t kMaxHost = 253;
constexpr std::size_t kMaxLabel = 63;

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// `s` lower-cased and without one trailing dot, if it is a host name (or
// an IPv4 address): labels of letters, digits, '-' and '_' (seen in real
// host names), 1..63 bytes each, 253 in all.
std::optional<std::string> normalise_host(std::string_view s) {
  if (!s.empty() && s.back() == '.') s.remove_suffix(1);
  if (s.empty() || s.size() > kMaxHost) return std::nullopt;
  std::string out;
  out.reserve(s.size());
  std::size_t label = 0;
  for (const char c : s) {
    if (c == '.') {
      if (label == 0) return std::nullopt;
      label = 0;
    } else if (host_char(c)) {
      if (++label > kMaxLabel) return std::nullopt;
    } else {
      return std::nullopt;
    }
    out += lower(c);
  }
  if (label == 0) return std::nullopt;
  return out;
}

bool ipv6_char(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

}  // namespace

std::optional<std::string> parse_referrer_pattern(std::string_view pattern, std::string* error) {
  const std::string shown(pattern);
  if (pattern.find("://") != std::string_view::npos || pattern.find_first_of("/:?#@") != std::string_view::npos) {
    *error = "'" + shown +
             "' is not a host name: give the host alone, without scheme, port or path "
             "(e.g. shop.example.com or *.example.com)";
    return std::nullopt;
  }
  const bool wildcard = pattern.rfind("*.", 0) == 0;
  std::string_view rest = wildcard ? pattern.substr(2) : pattern;
  auto host = normalise_host(rest);
  if (!host) {
    *error = "'" + shown + "' is not a host name or '*.' followed by one (e.g. shop.example.com or *.example.com)";
    return std::nullopt;
  }
  if (wildcard && host->find('.') == std::string::npos) {
    *error = "'" + shown +
             "' would allow every host under a top-level domain; name the site's domain "
             "(e.g. *.example.com)";
    return std::nullopt;
  }
  return wildcard ? "*." + *host : *host;
}

std::optional<std::string> referer_host(std::string_view referer) {
  const std::size_t colon = referer.find("://");
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  for (std::size_t i = 0; i < colon; ++i) {
    const char c = referer[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (i > 0 && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'));
    if (!ok) return std::nullopt;
  }
  std::string_view authority = referer.substr(colon + 3);
  authority = authority.substr(0, authority.find_first_of("/?#"));
  if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) authority = authority.substr(at + 1);
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos || close == 1) return std::nullopt;
    std::string out;
    for (const char c : authority.substr(1, close - 1)) {
      if (!ipv6_char(c)) return std::nullopt;
      out += lower(c);
    }
    return out;
  }
  return normalise_host(authority.substr(0, authority.find(':')));
}

bool referrer_host_matches(std::string_view pattern, std::string_view host) {
  if (pattern.rfind("*.", 0) == 0) {
    const std::string_view suffix = pattern.substr(1);  // ".example.com"
    return host.size() > suffix.size() && host.substr(host.size() - suffix.size()) == suffix;
  }
  return pattern == host;
}

const char* referrer_verdict_name(ReferrerVerdict v) {
  switch (v) {
    case ReferrerVerdict::allowed: return "ok";
    case ReferrerVerdict::bad_referrer: return "bad-referrer";
    case ReferrerVerdict::missing_referrer: return "missing-referrer";
  }
  return "?";
}

bool ReferrerList::allows_host(std::string_view host) const {
  for (const std::string& p : patterns) {
    if (referrer_host_matches(p, host)) return true;
  }
  return false;
}

ReferrerVerdict ReferrerList::check(std::optional<std::string_view> referer, std::string_view own_host,
                                    std::string* host) const {
  host->clear();
  if (!referer || referer->empty()) {
    return refuse_missing ? ReferrerVerdict::missing_referrer : ReferrerVerdict::allowed;
  }
  const auto h = referer_host(*referer);
  if (!h) return ReferrerVerdict::bad_referrer;
  *host = *h;
  if (allows_host(*h)) return ReferrerVerdict::allowed;
  const auto own = own_host.empty() ? std::nullopt : normalise_host(own_host);
  if (own && *own == *h) return ReferrerVerdict::allowed;
  return ReferrerVerdict::bad_referrer;
}

}  // namespace uritoken
