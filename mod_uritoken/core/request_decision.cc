// SPDX-License-Identifier: Apache-2.0
// The request path's decisions; see request_decision.h.
#include "request_decision.h"

namespace uritoken {

static_assert(static_cast<int>(Refusal::too_short) == static_cast<int>(Reason::too_short) &&
                  static_cast<int>(Refusal::ttl_too_long) == static_cast<int>(Reason::ttl_too_long),
              "the token's refusals follow Reason");
static_assert(static_cast<int>(Refusal::misplaced_token) - static_cast<int>(Refusal::bad_escape) ==
                  static_cast<int>(PathProblem::misplaced_token) - static_cast<int>(PathProblem::bad_escape),
              "the path's refusals follow PathProblem");

Refusal refusal_of(Reason r) { return static_cast<Refusal>(r); }

Refusal refusal_of(PathProblem p) {
  if (p == PathProblem::none) return Refusal::none;
  return static_cast<Refusal>(static_cast<int>(Refusal::bad_escape) + static_cast<int>(p) -
                              static_cast<int>(PathProblem::bad_escape));
}

const char* refusal_name(Refusal r) {
  if (r >= Refusal::too_short && r <= Refusal::ttl_too_long) return reason_name(static_cast<Reason>(r));
  if (r >= Refusal::bad_escape && r <= Refusal::misplaced_token) {
    return path_problem_name(static_cast<PathProblem>(static_cast<int>(r) - static_cast<int>(Refusal::bad_escape) +
                                                      static_cast<int>(PathProblem::bad_escape)));
  }
  switch (r) {
    case Refusal::none: return "ok";
    case Refusal::no_keys: return "no-keys";
    case Refusal::absent: return "absent";
    case Refusal::engine_off: return "engine-off";
    case Refusal::plain_http: return "plain-http";
    case Refusal::bad_referrer: return referrer_verdict_name(ReferrerVerdict::bad_referrer);
    case Refusal::missing_referrer: return referrer_verdict_name(ReferrerVerdict::missing_referrer);
    case Refusal::country: return "country";
    case Refusal::revoked: return "revoked";
    case Refusal::bulk_use: return "bulk-use";
    case Refusal::client_api: return "client-api";
    default: return "unknown";
  }
}

const char* request_status_name(RequestStatus s) {
  switch (s) {
    case RequestStatus::absent: return "absent";
    case RequestStatus::invalid: return "invalid";
    case RequestStatus::expired: return "expired";
    case RequestStatus::revoked: return "revoked";
    case RequestStatus::valid: return "valid";
  }
  return "invalid";
}

namespace {

// The cluster's verdict on a valid token, applied with this node's modes.
// Off serves a bulk verdict as if there were none; a sharing verdict is
// refused in every mode but Shadow (a table with verdicts and no mode to
// apply them cannot happen, and refusing is the safe side).
Decision apply_cluster_verdict(const RequestFacts& f, Decision served) {
  if (f.revocation == RevocationState::none) return served;
  const bool bulk = f.revocation == RevocationState::bulk;
  const SharingMode mode = bulk ? f.bulk : f.sharing;
  const Refusal why = bulk ? Refusal::bulk_use : Refusal::revoked;
  if (bulk && mode == SharingMode::off) return served;
  if (mode == SharingMode::shadow) {
    served.shadow = why;
    return served;
  }
  return refused(RequestStatus::revoked, why, f.revoked_status);
}

}  // namespace

Decision decide(const RequestFacts& f) {
  if (!f.token_first) {
    if (f.token_elsewhere) return refused(RequestStatus::invalid, Refusal::misplaced_token, 403);
    return Decision{};  // no token: absent, and served as httpd would
  }
  // Stay closed if a server ever has no keys (check_config refuses that).
  if (!f.keys) return refused(RequestStatus::invalid, Refusal::no_keys, 403);
  if (f.path != PathProblem::none) return refused(RequestStatus::invalid, refusal_of(f.path), 403);
  if (f.token == Status::expired) return refused(RequestStatus::expired, refusal_of(f.reason), f.expired_status);
  if (f.token != Status::valid) return refused(RequestStatus::invalid, refusal_of(f.reason), 403);

  // Policies on top of a valid token; the token itself was checked first.
  if (f.plain_http != PlainHttp::allow && !f.tls) {
    Decision d = refused(RequestStatus::invalid, Refusal::plain_http, 403);
    // Once the cluster holds a verdict the sidecar is not asked again; a
    // bulk verdict is not one (UriTokenBulk may be only Shadow).
    const bool revoked_already = f.revocation != RevocationState::none && f.revocation != RevocationState::bulk;
    d.revoke_in_cluster = f.plain_http == PlainHttp::revoke && !revoked_already;
    return d;
  }
  if (f.referrer == ReferrerVerdict::bad_referrer) return refused(RequestStatus::invalid, Refusal::bad_referrer, 403);
  if (f.referrer == ReferrerVerdict::missing_referrer) {
    return refused(RequestStatus::invalid, Refusal::missing_referrer, 403);
  }
  // 451 Unavailable For Legal Reasons (RFC 7725): a territory, not a fault.
  if (f.country_refused) return refused(RequestStatus::invalid, Refusal::country, 451);

  Decision served;
  served.status = RequestStatus::valid;
  served.set_reason = true;
  served.bill = true;
  served.report_sighting = f.cluster;
  served.redirect_into_token = f.token_alone;
  return f.cluster ? apply_cluster_verdict(f, served) : served;
}

}  // namespace uritoken
