// SPDX-License-Identifier: Apache-2.0
// Referrer verification, an extra layer on top of the token (never a
// replacement for it): a client site may name the hosts whose pages embed
// its media (`UriTokenReferrers <client-id> host...`), and a tokenized
// request of that client whose Referer names another host is refused
// (`bad-referrer`). The token is verified first; only an authenticated,
// valid token of a client with a list gets here.
//
// Patterns are exact host names (`shop.example.com`) or wildcards
// (`*.example.com`: any host below example.com, at any depth, but not
// example.com itself). Hosts compare case-insensitively, without port and
// without a trailing dot. Referers are ASCII (browsers send IDNs in their
// punycode form), so are the patterns.
//
// The Referer must be read as the client sent it: the module redacts
// tokens from the Referer header before anything is logged, and a run of
// "_uk_" in a host name ("my_uk_shop.example") would be redacted too.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace uritoken {

// A host pattern as configured, lower-cased and without a trailing dot;
// nullopt (and `error` set, for a message naming the directive) if it is
// not a host name, an IPv4 address or "*." followed by a host name.
std::optional<std::string> parse_referrer_pattern(std::string_view pattern, std::string* error);

// The host of a Referer (an absolute URL "scheme://[user@]host[:port]/..."),
// lower-cased, without port, brackets of an IPv6 literal, or trailing dot;
// nullopt if it has none or holds characters no host name has.
std::optional<std::string> referer_host(std::string_view referer);

// Whether `host` (as referer_host gives it) matches `pattern` (as
// parse_referrer_pattern gives it).
bool referrer_host_matches(std::string_view pattern, std::string_view host);

enum class ReferrerVerdict {
  allowed,           // listed (or missing, where that is allowed)
  bad_referrer,      // a Referer whose host is not listed (or that has no host)
  missing_referrer,  // no Referer, and this client refuses that
};

const char* referrer_verdict_name(ReferrerVerdict v);  // "ok", "bad-referrer", "missing-referrer"

// One client's list.
struct ReferrerList {
  std::vector<std::string> patterns;  // parsed
  bool refuse_missing = false;        // UriTokenReferrerMissing Refuse

  bool allows_host(std::string_view host) const;
  // `referer` is the header as received (nullopt or empty: none sent);
  // `own_host` the request's own host name (a tokenized page's relative
  // links carry it under a same-origin Referrer-Policy): always allowed.
  // Sets `host` to the Referer's host, if it has one.
  ReferrerVerdict check(std::optional<std::string_view> referer, std::string_view own_host, std::string* host) const;
};

}  // namespace uritoken
