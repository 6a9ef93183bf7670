// SPDX-License-Identifier: Apache-2.0
// Refusals that lead back to the client site (UriTokenReturnURL): which
// refusals, which requests are page navigations, and the signed Location
// the site can verify. Pure logic; normative description in
// docs/client-api.md, "Refusals that lead back to the site".
//
//   Location = URL ("?" or "&") "uritoken_reason=" R "&uritoken_key=" K
//              ["&uritoken_session=" S] "&uritoken_time=" T
//              "&uritoken_path=" P "&uritoken_sig=" SIG
//   SIG      = base64url(HMAC-SHA256(secret of key K,
//              "uritoken-return-v1\n" R "\n" K "\n" S "\n" T "\n" P))
//
// S (16 hex digits) only for an authenticated token; P is the request
// path after the token as received (still percent-encoded), which the
// query carries percent-encoded once more.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "keyring.h"
#include "request_decision.h"

namespace uritoken {

// expired, revoked, bulk-use and out-of-scope: a fresh token from the site
// helps an honest viewer; a forged or foreign token is no customer of it.
bool leads_back(Refusal r);

// What tells a page navigation from a player's or an element's fetch.
struct NavigationHints {
  std::string_view method;     // "GET"
  const char* sec_fetch_mode;  // Sec-Fetch-Mode, nullptr: absent
  const char* sec_fetch_dest;  // Sec-Fetch-Dest, nullptr: absent
  const char* accept;          // Accept, nullptr: absent
  bool range = false;          // a Range header is present
};
// A GET without Range that the browser marks as a navigation
// (Sec-Fetch-Mode: navigate, to a document or frame); without Fetch
// metadata (an older browser), one whose Accept names text/html. Players,
// <video>, <img>, hls.js and segment fetches are none of these.
bool is_page_navigation(const NavigationHints& h);

std::string return_signature(const Key& key, std::string_view reason, std::string_view session, std::int64_t time,
                             std::string_view path);

// The Location: `base` (an absolute URL, checked by the directive) with
// the signed query. `session` is "" for a token that is not authenticated.
std::string return_location(std::string_view base, const Key& key, std::string_view reason, std::string_view session,
                            std::int64_t time, std::string_view path);

// For UriTokenReturnURL: an absolute http(s) URL without a fragment.
bool return_url_ok(std::string_view url);

}  // namespace uritoken
