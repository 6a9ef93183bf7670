// SPDX-License-Identifier: Apache-2.0
// The request path's decisions as pure functions: the httpd hooks gather
// the facts of a request (RequestFacts, AccessFacts), `decide` says what to
// do with it (a Decision), and the hooks apply that at one exit. Every
// policy and every combination of them is unit-tested here, without httpd.
//
// One catalogue of refusals (Refusal) names each kind once: its name is
// URITOKEN_REASON, the log limit's kind, and the label of
// uritoken_refusals_total.
#pragma once

#include <cstdint>

#include "referrer.h"
#include "request_path.h"
#include "token.h"

namespace uritoken {

// A node's mode for the cluster's verdicts (UriTokenSharing, UriTokenBulk).
enum class SharingMode : std::uint8_t { off, shadow, enforce };

// What to do with a token that arrived over a connection without TLS
// (UriTokenPlainHTTP).
enum class PlainHttp : std::uint8_t { allow, refuse, revoke };

// What this node's revocation table holds for a token: `revoked` is a
// verdict of the cluster (found shared, or revoked by an operator: the
// table does not say which, the status page does), applied where this
// node's UriTokenSharing is not Shadow; `bulk` one of bulk use, applied
// by this node's UriTokenBulk. `shadow` was written by older sidecars and
// reads as `revoked`.
enum class RevocationState : std::uint8_t { none = 0, revoked = 1, shadow = 2, bulk = 3 };

// Every kind of refusal. The token's reasons come first, in Reason's
// order, then the path's problems in PathProblem's, so that both convert
// by arithmetic.
enum class Refusal : std::uint8_t {
  none,
  // the token (Reason::too_short .. Reason::ttl_too_long)
  too_short,
  too_long,
  bad_alphabet,
  bad_encoding,
  bad_structure,
  bad_version,
  unknown_key,
  retired_key,
  client_mismatch,
  out_of_scope,  // also: a directory scope requested without its slash, not a directory
  wrong_network,
  bad_mac,
  expired,
  not_yet_valid,
  ttl_too_long,
  // the path (PathProblem::bad_escape .. PathProblem::misplaced_token)
  bad_escape,
  nul_byte,
  encoded_slash,
  dot_segment,
  misplaced_token,  // also: a "_uk_" segment anywhere but first, with no token first
  // the server
  no_keys,
  absent,
  engine_off,
  // policies on a valid token
  plain_http,
  bad_referrer,
  missing_referrer,
  country,  // the client's UriTokenCountries do not cover the viewer's country
  // the cluster's verdicts
  revoked,
  bulk_use,
  // a client-site API request (its reason: client_api::Problem), not a token
  client_api,
};
inline constexpr unsigned kRefusalKinds = static_cast<unsigned>(Refusal::client_api) + 1;

// The stable name: "bad-mac", "plain-http", ...; "ok" for none.
const char* refusal_name(Refusal r);
Refusal refusal_of(Reason r);       // Reason::ok gives none
Refusal refusal_of(PathProblem p);  // PathProblem::none gives none

// URITOKEN_STATUS.
enum class RequestStatus : std::uint8_t { absent, invalid, expired, revoked, valid };
const char* request_status_name(RequestStatus s);

// What post_read_request knows of a request. Later groups are read only
// when the earlier ones let the request go on (a path problem is not
// verified; the policies apply to a valid token only), so the hook gathers
// them only then.
struct RequestFacts {
  // The path.
  bool token_first = false;      // "/_uk_TOKEN" is the first segment
  bool token_elsewhere = false;  // a "_uk_" segment in any other place or spelling
  bool token_alone = false;      // "/_uk_TOKEN" with nothing after it
  bool keys = true;              // this server has a key ring
  PathProblem path = PathProblem::none;
  // The token.
  Status token = Status::invalid;
  Reason reason = Reason::bad_structure;
  // Policies on a valid token.
  bool tls = false;  // the request crossed the network inside TLS
  PlainHttp plain_http = PlainHttp::allow;
  ReferrerVerdict referrer = ReferrerVerdict::allowed;
  bool country_refused = false;  // outside the client's UriTokenCountries
  // The cluster: only if this node shares state with a sidecar.
  bool cluster = false;
  RevocationState revocation = RevocationState::none;
  SharingMode sharing = SharingMode::off;  // this node's UriTokenSharing
  SharingMode bulk = SharingMode::off;     // this node's UriTokenBulk
  // Answers this server gives.
  int expired_status = 410;  // UriTokenExpiredStatus
  int revoked_status = 403;  // UriTokenRevokedStatus
};

// What access_checker knows (it runs after the URI is mapped to a file).
struct AccessFacts {
  bool token = false;           // post_read_request served a token
  bool directory_only = false;  // ... whose scope allows only a directory here
  bool is_directory = false;    // the request maps to a directory
  bool require = false;         // UriTokenRequire On
  bool status_handler = false;  // the request is for the status page (guarded by its own Require)
  bool engine = true;           // UriTokenEngine On
};

struct Decision {
  RequestStatus status = RequestStatus::absent;
  Refusal refusal = Refusal::none;   // why it is refused (none: served)
  int http_status = 0;               // the answer when refused; 0: go on
  Refusal shadow = Refusal::none;    // served, but Enforce would have refused it so (URITOKEN_SHADOW)
  bool bill = false;                 // the answer counts for the token's client
  bool report_sighting = false;      // a sighting for the sidecar
  bool revoke_in_cluster = false;    // revoke the token on every node (UriTokenPlainHTTP Revoke)
  bool redirect_into_token = false;  // "/_uk_TOKEN" -> 301 "/_uk_TOKEN/"
  bool set_reason = false;           // URITOKEN_REASON is set (not for a request without a token)

  bool refused() const { return refusal != Refusal::none; }
};

// A refusal with its status and answer.
inline Decision refused(RequestStatus status, Refusal why, int http_status) {
  Decision d;
  d.status = status;
  d.refusal = why;
  d.http_status = http_status;
  d.set_reason = status != RequestStatus::absent;
  return d;
}

Decision decide(const RequestFacts& f);

// Inline: it runs twice for every request (access_checker and _ex).
inline Decision decide_access(const AccessFacts& f) {
  if (f.token) {
    // "/a/b" for a "/a/b/" scope may only redirect to the directory;
    // MultiViews would otherwise serve "/a/b.zip".
    if (f.directory_only && !f.is_directory) return refused(RequestStatus::invalid, Refusal::out_of_scope, 403);
    return Decision{};
  }
  if (!f.require || f.status_handler) return Decision{};
  return refused(RequestStatus::absent, f.engine ? Refusal::absent : Refusal::engine_off, 403);
}

}  // namespace uritoken
