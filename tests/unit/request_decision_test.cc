// SPDX-License-Identifier: Apache-2.0
// The request path's decisions (core/request_decision.h): every policy and
// their combinations, and the one catalogue of refusals.
#include "../../mod_uritoken/core/request_decision.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

using namespace uritoken;

namespace {

// A valid token over TLS on a node without a cluster: served.
RequestFacts valid_token() {
  RequestFacts f;
  f.token_first = true;
  f.token = Status::valid;
  f.reason = Reason::ok;
  f.tls = true;
  return f;
}

RequestFacts in_cluster(RevocationState state, SharingMode sharing = SharingMode::enforce,
                        SharingMode bulk = SharingMode::off) {
  RequestFacts f = valid_token();
  f.cluster = true;
  f.revocation = state;
  f.sharing = sharing;
  f.bulk = bulk;
  f.revoked_status = 451;
  return f;
}

void expect_refused(const Decision& d, RequestStatus status, Refusal why, int http) {
  EXPECT_TRUE(d.refused());
  EXPECT_EQ(d.status, status);
  EXPECT_EQ(d.refusal, why) << refusal_name(d.refusal) << " instead of " << refusal_name(why);
  EXPECT_EQ(d.http_status, http);
  EXPECT_FALSE(d.bill) << "a refused request is not billed";
  EXPECT_FALSE(d.report_sighting) << "a refused request is no sighting";
  EXPECT_FALSE(d.redirect_into_token);
  EXPECT_EQ(d.shadow, Refusal::none);
}

void expect_served(const Decision& d) {
  EXPECT_FALSE(d.refused()) << refusal_name(d.refusal);
  EXPECT_EQ(d.status, RequestStatus::valid);
  EXPECT_EQ(d.http_status, 0);
  EXPECT_TRUE(d.bill);
  EXPECT_TRUE(d.set_reason);
  EXPECT_FALSE(d.revoke_in_cluster);
}

}  // namespace

TEST(RequestDecision, NoTokenIsAbsentAndServedWithoutAReason) {
  const Decision d = decide(RequestFacts{});
  EXPECT_FALSE(d.refused());
  EXPECT_EQ(d.status, RequestStatus::absent);
  EXPECT_EQ(d.http_status, 0);
  EXPECT_FALSE(d.set_reason);
  EXPECT_FALSE(d.bill);
  EXPECT_FALSE(d.report_sighting);
}

TEST(RequestDecision, AMarkerAnywhereButFirstIsMisplacedWhetherOrNotATokenIsFirst) {
  RequestFacts elsewhere;
  elsewhere.token_elsewhere = true;
  expect_refused(decide(elsewhere), RequestStatus::invalid, Refusal::misplaced_token, 403);
  // A second marker after a first one is a path problem of the same kind.
  RequestFacts second = valid_token();
  second.path = PathProblem::misplaced_token;
  expect_refused(decide(second), RequestStatus::invalid, Refusal::misplaced_token, 403);
  EXPECT_STREQ(refusal_name(Refusal::misplaced_token), "misplaced-token");
}

TEST(RequestDecision, AServerWithoutKeysStaysClosed) {
  RequestFacts f = valid_token();
  f.keys = false;
  const Decision d = decide(f);
  expect_refused(d, RequestStatus::invalid, Refusal::no_keys, 403);
  EXPECT_TRUE(d.set_reason);
}

TEST(RequestDecision, EveryPathProblemIsItsOwnRefusalBeforeTheToken) {
  for (const PathProblem p : {PathProblem::bad_escape, PathProblem::nul_byte, PathProblem::encoded_slash,
                              PathProblem::dot_segment, PathProblem::misplaced_token}) {
    RequestFacts f = valid_token();
    f.path = p;
    f.token = Status::invalid;  // never verified: the facts' default
    const Decision d = decide(f);
    expect_refused(d, RequestStatus::invalid, refusal_of(p), 403);
    EXPECT_STREQ(refusal_name(d.refusal), path_problem_name(p));
  }
}

TEST(RequestDecision, AnInvalidTokenIsRefusedForItsReasonAndAnExpiredOneWithTheConfiguredStatus) {
  for (int r = static_cast<int>(Reason::too_short); r <= static_cast<int>(Reason::ttl_too_long); ++r) {
    const auto reason = static_cast<Reason>(r);
    if (reason == Reason::expired) continue;
    RequestFacts f = valid_token();
    f.token = Status::invalid;
    f.reason = reason;
    const Decision d = decide(f);
    expect_refused(d, RequestStatus::invalid, refusal_of(reason), 403);
    EXPECT_STREQ(refusal_name(d.refusal), reason_name(reason));
  }
  RequestFacts f = valid_token();
  f.token = Status::expired;
  f.reason = Reason::expired;
  f.expired_status = 410;
  expect_refused(decide(f), RequestStatus::expired, Refusal::expired, 410);
  f.expired_status = 403;
  EXPECT_EQ(decide(f).http_status, 403);
}

TEST(RequestDecision, AValidTokenIsServedAndBilledAndReportedOnlyInACluster) {
  const Decision alone = decide(valid_token());
  expect_served(alone);
  EXPECT_FALSE(alone.report_sighting);
  EXPECT_STREQ(refusal_name(alone.refusal), "ok");
  const Decision clustered = decide(in_cluster(RevocationState::none));
  expect_served(clustered);
  EXPECT_TRUE(clustered.report_sighting);
}

TEST(RequestDecision, ATokenAloneIsSentIntoItsPrefix) {
  RequestFacts f = in_cluster(RevocationState::none);
  f.token_alone = true;
  const Decision d = decide(f);
  expect_served(d);
  EXPECT_TRUE(d.redirect_into_token);
  EXPECT_TRUE(d.report_sighting);
  // Refused first, if it is refused: no redirect into a revoked token.
  f.revocation = RevocationState::revoked;
  expect_refused(decide(f), RequestStatus::revoked, Refusal::revoked, 451);
}

// UriTokenPlainHTTP × TLS × what the cluster already holds.
TEST(RequestDecision, PlainHttpPolicyByModeConnectionAndClusterState) {
  struct Case {
    PlainHttp mode;
    bool tls;
    RevocationState known;
    bool refused;
    bool revoke;
  };
  const Case cases[] = {
      {PlainHttp::allow, false, RevocationState::none, false, false},
      {PlainHttp::allow, true, RevocationState::none, false, false},
      {PlainHttp::refuse, true, RevocationState::none, false, false},
      {PlainHttp::refuse, false, RevocationState::none, true, false},
      {PlainHttp::refuse, false, RevocationState::revoked, true, false},
      {PlainHttp::revoke, true, RevocationState::none, false, false},
      {PlainHttp::revoke, false, RevocationState::none, true, true},
      // Already revoked: the sidecar is not asked again.
      {PlainHttp::revoke, false, RevocationState::revoked, true, false},
      {PlainHttp::revoke, false, RevocationState::shadow, true, false},
      // A bulk verdict is not a revocation (UriTokenBulk may be Shadow).
      {PlainHttp::revoke, false, RevocationState::bulk, true, true},
  };
  for (const Case& c : cases) {
    RequestFacts f = in_cluster(c.known, SharingMode::shadow, SharingMode::shadow);
    f.plain_http = c.mode;
    f.tls = c.tls;
    const Decision d = decide(f);
    const std::string what = "mode " + std::to_string(static_cast<int>(c.mode)) + " tls " + std::to_string(c.tls) +
                             " known " + std::to_string(static_cast<int>(c.known));
    if (c.refused) {
      expect_refused(d, RequestStatus::invalid, Refusal::plain_http, 403);
    } else {
      EXPECT_FALSE(d.refused()) << what;
    }
    EXPECT_EQ(d.revoke_in_cluster, c.revoke) << what;
  }
}

TEST(RequestDecision, PlainHttpRevokeWithoutAClusterStillAsksTheSidecarAndRefuses) {
  RequestFacts f = valid_token();
  f.plain_http = PlainHttp::revoke;
  f.tls = false;
  const Decision d = decide(f);
  expect_refused(d, RequestStatus::invalid, Refusal::plain_http, 403);
  EXPECT_TRUE(d.revoke_in_cluster) << "the glue reports that it could not (UT00044)";
}

TEST(RequestDecision, PlainHttpIsJudgedBeforeTheReferrerAndTheClusterVerdict) {
  RequestFacts f = in_cluster(RevocationState::revoked);
  f.plain_http = PlainHttp::refuse;
  f.tls = false;
  f.referrer = ReferrerVerdict::bad_referrer;
  EXPECT_EQ(decide(f).refusal, Refusal::plain_http);
}

TEST(RequestDecision, CountryRulesRefuse451AfterTheReferrerAndBeforeTheCluster) {
  RequestFacts f = valid_token();
  f.country_refused = true;
  expect_refused(decide(f), RequestStatus::invalid, Refusal::country, 451);
  EXPECT_STREQ(refusal_name(Refusal::country), "country");
  f.referrer = ReferrerVerdict::bad_referrer;
  EXPECT_EQ(decide(f).refusal, Refusal::bad_referrer);
  RequestFacts g = in_cluster(RevocationState::revoked);
  g.country_refused = true;
  EXPECT_EQ(decide(g).refusal, Refusal::country);
  RequestFacts forged = valid_token();
  forged.token = Status::invalid;
  forged.reason = Reason::bad_mac;
  forged.country_refused = true;
  EXPECT_EQ(decide(forged).refusal, Refusal::bad_mac);
}

TEST(RequestDecision, ReferrerPolicyOnAValidTokenOnly) {
  RequestFacts f = valid_token();
  f.referrer = ReferrerVerdict::bad_referrer;
  expect_refused(decide(f), RequestStatus::invalid, Refusal::bad_referrer, 403);
  f.referrer = ReferrerVerdict::missing_referrer;
  expect_refused(decide(f), RequestStatus::invalid, Refusal::missing_referrer, 403);
  // A forged token with a bad Referer is refused for the forgery.
  f.token = Status::invalid;
  f.reason = Reason::bad_mac;
  f.referrer = ReferrerVerdict::bad_referrer;
  EXPECT_EQ(decide(f).refusal, Refusal::bad_mac);
  // Before the cluster's verdict: a listed site's page is the first thing checked.
  RequestFacts g = in_cluster(RevocationState::revoked);
  g.referrer = ReferrerVerdict::missing_referrer;
  EXPECT_EQ(decide(g).refusal, Refusal::missing_referrer);
  EXPECT_STREQ(refusal_name(Refusal::bad_referrer), "bad-referrer");
  EXPECT_STREQ(refusal_name(Refusal::missing_referrer), "missing-referrer");
}

// Each node applies its own modes to the cluster's verdicts.
TEST(RequestDecision, ASharingVerdictIsRefusedUnlessThisNodeIsShadow) {
  expect_refused(decide(in_cluster(RevocationState::revoked, SharingMode::enforce)), RequestStatus::revoked,
                 Refusal::revoked, 451);
  // A table with verdicts and no mode cannot happen; refusing is the safe side.
  expect_refused(decide(in_cluster(RevocationState::revoked, SharingMode::off)), RequestStatus::revoked,
                 Refusal::revoked, 451);
  // Older sidecars' "shadow" entries read as revoked.
  expect_refused(decide(in_cluster(RevocationState::shadow, SharingMode::enforce)), RequestStatus::revoked,
                 Refusal::revoked, 451);
  const Decision shadow = decide(in_cluster(RevocationState::revoked, SharingMode::shadow));
  expect_served(shadow);
  EXPECT_EQ(shadow.shadow, Refusal::revoked);
  EXPECT_STREQ(refusal_name(shadow.shadow), "revoked");  // URITOKEN_SHADOW=revoked, as documented
  EXPECT_TRUE(shadow.report_sighting);
}

TEST(RequestDecision, ABulkVerdictIsAppliedByThisNodesBulkModeAlone) {
  for (const SharingMode sharing : {SharingMode::shadow, SharingMode::enforce}) {
    const Decision off = decide(in_cluster(RevocationState::bulk, sharing, SharingMode::off));
    expect_served(off);
    EXPECT_EQ(off.shadow, Refusal::none);
    const Decision shadow = decide(in_cluster(RevocationState::bulk, sharing, SharingMode::shadow));
    expect_served(shadow);
    EXPECT_EQ(shadow.shadow, Refusal::bulk_use);
    EXPECT_STREQ(refusal_name(shadow.shadow), "bulk-use");
    expect_refused(decide(in_cluster(RevocationState::bulk, sharing, SharingMode::enforce)), RequestStatus::revoked,
                   Refusal::bulk_use, 451);
  }
  // UriTokenBulk Enforce does not refuse a sharing verdict that this node shadows.
  const Decision d = decide(in_cluster(RevocationState::revoked, SharingMode::shadow, SharingMode::enforce));
  expect_served(d);
  EXPECT_EQ(d.shadow, Refusal::revoked);
}

TEST(RequestDecision, AccessRefusesADirectoryScopeOnAFileAndRequiresATokenWhereAsked) {
  AccessFacts dir_only;
  dir_only.token = true;
  dir_only.directory_only = true;
  expect_refused(decide_access(dir_only), RequestStatus::invalid, Refusal::out_of_scope, 403);
  EXPECT_TRUE(decide_access(dir_only).set_reason);
  dir_only.is_directory = true;
  EXPECT_FALSE(decide_access(dir_only).refused());
  AccessFacts token;
  token.token = true;
  token.require = true;
  EXPECT_FALSE(decide_access(token).refused()) << "a served token satisfies UriTokenRequire";

  AccessFacts none;
  EXPECT_FALSE(decide_access(none).refused());
  none.require = true;
  const Decision absent = decide_access(none);
  expect_refused(absent, RequestStatus::absent, Refusal::absent, 403);
  EXPECT_FALSE(absent.set_reason) << "no token: no URITOKEN_REASON, as before";
  none.status_handler = true;
  EXPECT_FALSE(decide_access(none).refused()) << "the status page has its own Require";
  none.status_handler = false;
  none.engine = false;
  expect_refused(decide_access(none), RequestStatus::absent, Refusal::engine_off, 403);
}

TEST(RefusalCatalogue, EveryKindHasItsOwnStableName) {
  std::set<std::string> names;
  for (unsigned k = 0; k < kRefusalKinds; ++k) {
    const std::string name = refusal_name(static_cast<Refusal>(k));
    EXPECT_NE(name, "unknown") << k;
    EXPECT_TRUE(names.insert(name).second) << "two kinds named " << name;
  }
  EXPECT_EQ(names.size(), kRefusalKinds);
  for (const char* name : {"plain-http", "revoked", "bulk-use", "no-keys", "engine-off", "absent", "out-of-scope"}) {
    EXPECT_EQ(names.count(name), 1u) << name;
  }
  EXPECT_EQ(refusal_of(Reason::ok), Refusal::none);
  EXPECT_EQ(refusal_of(PathProblem::none), Refusal::none);
  EXPECT_STREQ(request_status_name(RequestStatus::revoked), "revoked");
  EXPECT_STREQ(request_status_name(RequestStatus::absent), "absent");
}
