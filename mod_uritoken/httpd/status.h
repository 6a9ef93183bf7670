// SPDX-License-Identifier: Apache-2.0
// The status page handler (SetHandler uritoken-status); see status.cc.
#pragma once

#include <httpd.h>

#include <cstdint>
#include <functional>

#include "../core/request_decision.h"
#include "../core/usage.h"

namespace uritoken::httpd {

int handle_status(request_rec* r);
// mod_status's status_hook: a short mod_uritoken section in /server-status.
int server_status_section(request_rec* r, int flags);

// This generation's usage counters (mod_uritoken.cc), or nullptr.
const UsageTable* usage_table();
// 32 random bytes of this generation that sign the page's form tokens.
const unsigned char* csrf_key();
// The client-site API (SetHandler uritoken-client-api); client_api.cc.
int handle_client_api(request_rec* r);

// Shared by the handlers, from mod_uritoken.cc: whether to log a refusal
// of `kind` now (UriTokenLogLimit), and whether a connection is TLS.
bool refusal_log_allowed(request_rec* r, Refusal kind);
bool connection_is_tls(conn_rec* c);

// Refusals of UriTokenCountries since the last restart, by country ("--":
// an address of no known country), nonzero ones only (mod_uritoken.cc).
void country_refusal_totals(const std::function<void(const char* country, std::uint64_t count)>& f);

// Refused requests since the last restart, by reason (mod_uritoken.cc).
void refusal_totals(const std::function<void(const char* reason, std::uint64_t count)>& f);

}  // namespace uritoken::httpd
