// SPDX-License-Identifier: Apache-2.0
// mod_uritoken: the httpd glue around the token core.
//
// Request life:
//   post_read_request  (after mod_remoteip, before any URI mapping)
//       gathers the request's facts (split /_uk_TOKEN/rest, check the rest
//       of the path, verify the token, then the policies on a valid token:
//       plain HTTP, Referer, the cluster's verdict), redacts the token from
//       the logged request line, and applies what decide()
//       (core/request_decision.h) makes of them at one exit: the verdict
//       (URITOKEN_* environment), the log line of a refusal, a sighting for
//       the sidecar, and for a served token the stripped prefix, so that
//       <Location>, Alias, mod_rewrite and the static file handler see the
//       plain path. A token that is present but not valid is refused here,
//       wherever it points: a forged or expired credential is never served.
//   access_checker     decide_access(): a directory scope requested without
//       its slash, and `UriTokenRequire On` for requests whose initial
//       request carried no valid token.
//   insert_error_filter
//       a redirect that httpd makes for a tokenized request (mod_dir's
//       trailing slash, a same-host Redirect) gets the prefix put back into
//       its Location, so the client stays inside /_uk_TOKEN/.
//
// Every hook is a noexcept trampoline: an exception becomes a 500 and a log
// line, never an unwind through httpd's C frames.
// httpd.h must come first: the other httpd headers rely on its types.
#include <httpd.h>
#include <apr_shm.h>
#include <apr_strings.h>
#include <apr_uri.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <http_ssl.h>
#include <mod_ssl.h>
#include <mod_status.h>
#include <scoreboard.h>
#include <util_filter.h>

#include <sodium.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <atomic>
#include <cstring>
#include <exception>
#include <string>

#include "../cluster/control_client.h"
#include "../core/log_limit.h"
#include "../core/return_url.h"
#include "../core/referrer.h"
#include "../core/usage.h"
#include "../core/redact.h"
#include "../core/request_decision.h"
#include "../core/request_path.h"
#include "../core/token.h"
#include "cluster.h"
#include "config.h"
#include "status.h"

APLOG_USE_MODULE(uritoken);

namespace uritoken::httpd {
namespace {

constexpr const char* kLocationFilter = "URITOKEN_LOCATION";

// What post_read_request learnt, kept on the initial request.
struct RequestState {
  bool token_present = false;
  bool directory_only = false;         // valid only if the path maps to a directory
  bool bill = false;                   // its answer counts for the client (a served, valid token)
  const char* prefix = nullptr;        // "/_uk_TOKEN", for redirects
  const char* upgrade_path = nullptr;  // the raw tokenized path, for an h2c Upgrade
  const char* client = nullptr;        // the authenticated client id, for billing
  bool sighted = false;                // reported to the sidecar: its bytes count for the bulk signal
  Sighting sighting;
};

// The request the client sent, for sub-requests and internal redirects.
const request_rec* initial_request(const request_rec* r) {
  for (;;) {
    if (r->main != nullptr) {
      r = r->main;
    } else if (r->prev != nullptr) {
      r = r->prev;
    } else {
      return r;
    }
  }
}

RequestState* state_of(const request_rec* r) {
  return static_cast<RequestState*>(ap_get_module_config(initial_request(r)->request_config, &uritoken_module));
}

// `s` itself if it holds no token, else its redaction in pool memory.
const char* redacted(apr_pool_t* p, const char* s) {
  if (s == nullptr) return s;
  const std::string_view text(s);
  const std::size_t first = find_token_marker(text);
  if (first == std::string_view::npos) return s;
  char* out = static_cast<char*>(apr_palloc(p, redacted_capacity(text.size())));
  redact_tokens(text, out, first);
  return out;
}

// Redacts what httpd logs of a request: the request line (every log
// format's %r, mod_status), the URI as sent when its path holds a token
// (a query-string token stays for the application; %r shows it redacted),
// and the Referer, which httpd appends to request error-log lines.
// Returns true if anything changed.
bool redact_logged_text(request_rec* r, bool path_has_token) {
  bool changed = false;
  const char* const uri = r->unparsed_uri;
  const char* clean_uri = uri;
  if (path_has_token && (clean_uri = redacted(r->pool, uri)) != uri) {
    r->unparsed_uri = const_cast<char*>(clean_uri);
    changed = true;
  }
  // The request line is normally "METHOD unparsed_uri PROTOCOL": then it is
  // rebuilt around the URI redacted above instead of being scanned again.
  const char* line = r->the_request;
  const char* space = line != nullptr && uri != nullptr ? std::strchr(line, ' ') : nullptr;
  const std::size_t uri_len = uri != nullptr ? std::strlen(uri) : 0;
  if (clean_uri != uri && space != nullptr && std::strncmp(space + 1, uri, uri_len) == 0 &&
      (space[1 + uri_len] == ' ' || space[1 + uri_len] == '\0') &&
      find_token_marker(space + 1 + uri_len) == std::string_view::npos) {
    r->the_request = apr_pstrcat(r->pool, apr_pstrmemdup(r->pool, line, static_cast<std::size_t>(space - line + 1)),
                                 clean_uri, space + 1 + uri_len, nullptr);
  } else if (const char* clean_line = redacted(r->pool, line); clean_line != line) {
    r->the_request = const_cast<char*>(clean_line);
    changed = true;
  }
  if (const char* referer = apr_table_get(r->headers_in, "Referer")) {
    if (const char* clean = redacted(r->pool, referer); clean != referer) {
      apr_table_setn(r->headers_in, "Referer", clean);
      changed = true;
    }
  }
  return changed;
}

// The client address as mod_remoteip left it, from the binary socket
// address (no text parsing); IPv4-mapped IPv6 counts as IPv4.
std::optional<IpAddress> client_address(const request_rec* r) {
  const apr_sockaddr_t* sa = r->useragent_addr;
  IpAddress a;
  if (sa != nullptr && sa->family == APR_INET) {
    std::memcpy(a.bytes, &sa->sa.sin.sin_addr, 4);
    return a;
  }
#if APR_HAVE_IPV6
  if (sa != nullptr && sa->family == APR_INET6) {
    const auto* b = reinterpret_cast<const std::uint8_t*>(&sa->sa.sin6.sin6_addr);
    static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(b, kMapped, 12) == 0) {
      std::memcpy(a.bytes, b + 12, 4);
    } else {
      a.v6 = true;
      std::memcpy(a.bytes, b, 16);
    }
    return a;
  }
#endif
  if (r->useragent_ip != nullptr) return parse_ip_address(r->useragent_ip);
  return std::nullopt;
}

// Each name is set once per request, here first: adding skips the search
// for an existing entry that apr_table_setn would do.
void set_env(request_rec* r, const char* name, const char* value) { apr_table_addn(r->subprocess_env, name, value); }

static_assert(kRefusalKinds <= LogLimit::kKinds, "every refusal has its own log-limit kind");

LogLimit* g_log_limit = nullptr;  // this generation's, in shared memory (post_config)
UsageTable* g_usage = nullptr;    // likewise
// Refusals by country (UriTokenCountries): one per code, the last for an
// address of no known country; likewise in shared memory.
std::atomic<std::uint64_t>* g_country_refusals = nullptr;
const unsigned char* g_csrf_key = nullptr;

constexpr std::size_t kLoggedRefererMax = 200;

}  // namespace

// Whether to write the error-log line for a refusal of `kind`; first writes the summary of what the limit held back in
// an earlier second. The request is refused, so its Referer, which httpd appends to every line about it, is cut short
// here.
bool refusal_log_allowed(request_rec* r, Refusal kind) {
  if (const char* referer = apr_table_get(r->headers_in, "Referer");
      referer != nullptr && std::strlen(referer) > kLoggedRefererMax) {
    apr_table_setn(r->headers_in, "Referer",
                   apr_pstrcat(r->pool, apr_pstrndup(r->pool, referer, kLoggedRefererMax), "...", nullptr));
  }
  if (g_log_limit == nullptr) return true;
  const LogLimit::Decision d =
      g_log_limit->note(static_cast<unsigned>(kind), static_cast<std::uint32_t>(apr_time_sec(r->request_time)));
  if (d.suppressed != 0) {
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                  "UT00020: %u more refusals (%s) in second %u were not logged (UriTokenLogLimit)",
                  static_cast<unsigned>(d.suppressed), refusal_name(kind), static_cast<unsigned>(d.suppressed_second));
  }
  return d.log;
}

// Whether the request's bytes crossed the network inside TLS: asks the
// TLS module about the connection (ap_ssl_conn_is_ssl, mod_ssl's hook).
// An HTTP/2 stream runs on a secondary connection whose master holds the
// TLS session; mod_ssl answers for the secondary itself (tested with h2),
// and asking the master too covers a TLS module that does not. Not
// ap_http_scheme(r): that says "https" whenever the admin wrote
// `ServerName https://...` (for a TLS-terminating proxy in front), which
// says nothing about how this request crossed the network.
bool connection_is_tls(conn_rec* c) {
  for (; c != nullptr; c = c->master) {
    if (ap_ssl_conn_is_ssl(c)) return true;
  }
  return false;
}

namespace {

// Revokes the token's session on every node through this node's sidecar
// (its control socket, as the status page does); false and `why` if the
// sidecar did not take it. Blocks this worker for 1 s at most.
bool revoke_in_cluster(request_rec* r, const ServerConfig* conf, const Claims& claims, const char* session,
                       std::string* why) {
  const ClusterConfig* c = conf->cluster;
  if (c == nullptr || c->state_dir.empty()) {  // check_config refuses this
    *why = "no UriTokenStateDir";
    return false;
  }
  control::Record request;
  request.kind = "revoke";
  request.add("key", claims.key_id).add("session", session).add("expires", claims.expires);
  request.add("user", "mod_uritoken");
  std::string comment = "received over plain HTTP";
  if (r->useragent_ip != nullptr) comment += std::string(" from ") + r->useragent_ip;
  if (!c->node_name.empty()) comment += " at " + c->node_name;
  request.add("comment", comment);
  const control::CallResult result = control::call(c->state_dir + "/" + control::kSocketName, request);
  if (!result.ok()) *why = result.message;
  return result.ok();
}

// Who a refusal is about, for its log line: the token's client, key and
// session, once the MAC proved them.
struct Whose {
  bool authenticated = false;
  const char* client = "-";
  const char* session = "-";
  unsigned key = 0;
};

// How a plain-HTTP Revoke went, for its log line.
struct RevokeOutcome {
  bool asked = false;
  bool done = false;
  std::string why;  // the sidecar's answer when not done
};

// The log lines of refusals (docs/log-messages.md), by the part of the
// request path that refused: the path and the server, the token itself,
// the policies on a valid token, the cluster's verdicts. Each returns
// false for a kind that is not its own.

// `token_first` tells a misplaced marker with no token first from a
// second marker after it.
bool log_path_refusal(request_rec* r, Refusal why, bool token_first) {
  switch (why) {
    case Refusal::no_keys:
      ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "UT00001: token refused: no UriTokenKeyFile for this server");
      return true;
    case Refusal::misplaced_token:
      if (!token_first) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "UT00004: request refused (misplaced-token): a token is allowed only as the first path "
                      "segment, spelled /_uk_");
        return true;
      }
      [[fallthrough]];
    case Refusal::bad_escape:
    case Refusal::nul_byte:
    case Refusal::encoded_slash:
    case Refusal::dot_segment:
      ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                    "UT00002: token request refused (%s): the path after the token is unsafe", refusal_name(why));
      return true;
    case Refusal::absent:
      ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                    "UT00006: request refused (absent): this location requires a token");
      return true;
    case Refusal::engine_off:
      ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                    "UT00005: request refused: UriTokenRequire On but UriTokenEngine is not On for this server");
      return true;
    default: return false;
  }
}

void log_plain_http_refusal(request_rec* r, const Whose& w, const RevokeOutcome& revoke) {
  if (revoke.asked && revoke.done) {
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                  "UT00043: token refused (plain-http) and revoked in the cluster: client %s, key %u, session %s was "
                  "received over plain HTTP",
                  w.client, w.key, w.session);
  } else if (revoke.asked) {
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                  "UT00044: token refused (plain-http), but its revocation is not confirmed: client %s, key %u, "
                  "session %s was received over plain HTTP, and the sidecar did not confirm the revocation: %s",
                  w.client, w.key, w.session, revoke.why.c_str());
  } else {
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                  "UT00042: token refused (plain-http): client %s, key %u, session %s was received over plain HTTP%s",
                  w.client, w.key, w.session,
                  plain_http(server_config(r)) == PlainHttp::revoke ? " (revoked in the cluster already)" : "");
  }
}

bool log_policy_refusal(request_rec* r, Refusal why, const Whose& w, const char* referrer_host,
                        const RevokeOutcome& revoke) {
  switch (why) {
    case Refusal::plain_http: log_plain_http_refusal(r, w, revoke); return true;
    case Refusal::country: {
      const char* where = apr_table_get(r->notes, "uritoken-country");
      ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                    "UT00063: token refused (country): client %s, key %u, session %s, from %s, outside the client's "
                    "UriTokenCountries",
                    w.client, w.key, w.session, where != nullptr ? where : "an address of no known country");
      return true;
    }
    case Refusal::bad_referrer: {
      const std::string shown =
          *referrer_host == '\0' ? "(none: the Referer is not an absolute URL)" : redact_tokens(referrer_host);
      ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                    "UT00045: token refused (bad-referrer): client %s, key %u, session %s, referring host %s is "
                    "not in the client's UriTokenReferrers",
                    w.client, w.key, w.session, shown.c_str());
      return true;
    }
    case Refusal::missing_referrer:
      ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                    "UT00046: token refused (missing-referrer): client %s, key %u, session %s: no Referer, and "
                    "UriTokenReferrerMissing is Refuse for this client",
                    w.client, w.key, w.session);
      return true;
    case Refusal::revoked:
      ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                    "UT00010: token refused (revoked): client %s, key %u, session %s is revoked in the cluster "
                    "(found shared, or revoked by an operator or the client site: the status page says which)",
                    w.client, w.key, w.session);
      return true;
    case Refusal::bulk_use:
      ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                    "UT00058: token refused (bulk-use): client %s, key %u, session %s was found fetching far "
                    "more than a player (UriTokenBulkLimit; the status page shows its rate)",
                    w.client, w.key, w.session);
      return true;
    default: return false;
  }
}

// The error-log line of a refusal, under the log limit. `at_access` tells
// the access checker's out-of-scope (a directory scope without its slash)
// from the token's.
void log_refusal(request_rec* r, const Decision& d, const Whose& w, bool token_first, bool at_access,
                 const char* referrer_host, const RevokeOutcome& revoke) {
  if (!refusal_log_allowed(r, d.refusal)) return;
  if (log_path_refusal(r, d.refusal, token_first) || log_policy_refusal(r, d.refusal, w, referrer_host, revoke)) {
    return;
  }
  if (d.refusal == Refusal::out_of_scope && at_access) {
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                  "UT00019: token refused (out-of-scope): its directory scope was requested without the "
                  "trailing slash, and the path is not a directory");
    return;
  }
  // The token's own reasons; whose token it was when the MAC proved it.
  const char* whose =
      w.authenticated ? apr_psprintf(r->pool, ": client %s, key %u, session %s", w.client, w.key, w.session) : "";
  ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "UT00003: token refused (%s)%s", refusal_name(d.refusal), whose);
}

// `n` in decimal, in pool memory: std::to_chars, a third of apr_ltoa's cost.
const char* decimal(apr_pool_t* p, std::uint32_t n) {
  char* out = static_cast<char*>(apr_palloc(p, 11));
  *std::to_chars(out, out + 10, n).ptr = '\0';
  return out;
}

// What post_read_request gathered of a request, for decide() and apply().
struct Gathered {
  RequestFacts facts;
  TokenSplit split;
  const char* raw_path = nullptr;
  Verdict verdict;
  Whose whose;
  std::optional<IpAddress> address;
  const char* referrer_host = "";    // the Referer's host, for bad-referrer's log line
  CountryCode country = kNoCountry;  // where the location database puts the client (with UriTokenCountries)
  SharedState* shared = nullptr;     // this node's, if it shares state with a sidecar
  std::uint64_t subscriber_ref = 0;  // subscriber_ref() of a token with a subscriber, in a cluster
};

// The token's facts: the path after it, then the token itself. Exports the
// authenticated fields (what ops bill on) as soon as the MAC proved them.
void gather_token(request_rec* r, const ServerConfig* conf, Gathered* g) {
  RequestFacts& f = g->facts;
  f.keys = conf->keys != nullptr;
  char* path = static_cast<char*>(apr_palloc(r->pool, g->split.remainder.size() + 1));
  std::size_t path_len = 0;
  f.path = decode_request_path(g->split.remainder, path, &path_len);
  if (!f.keys || f.path != PathProblem::none) return;

  g->address = client_address(r);
  VerifyContext ctx;
  ctx.path = std::string_view(path, path_len);
  ctx.client_addr = g->address ? &*g->address : nullptr;
  ctx.now = apr_time_sec(r->request_time);
  ctx.leeway_seconds = static_cast<std::uint32_t>(clock_skew_seconds(conf));
  ctx.max_ttl_seconds = static_cast<std::uint32_t>(max_ttl_seconds(conf));
  g->verdict = verify_token(*conf->keys, g->split.token, ctx);
  f.token = g->verdict.status;
  f.reason = g->verdict.reason;
  if (!g->verdict.authenticated) return;
  const Claims& claims = g->verdict.claims;
  char* hex = static_cast<char*>(apr_palloc(r->pool, 2 * kSessionBytes + 1));
  session_hex(claims.session, hex);
  g->whose = {true, apr_pstrmemdup(r->pool, claims.client_buf.data(), claims.client_len), hex, claims.key_id};
  set_env(r, "URITOKEN_CLIENT", g->whose.client);
  set_env(r, "URITOKEN_SESSION", g->whose.session);
  set_env(r, "URITOKEN_KEY_ID", decimal(r->pool, claims.key_id));
  set_env(r, "URITOKEN_EXPIRES", decimal(r->pool, claims.expires));
  if (claims.flags & flag::kSubscriber) {
    // The site's keyed digest of its account id: never the id itself.
    char* subscriber = static_cast<char*>(apr_palloc(r->pool, 2 * kSubscriberBytes + 1));
    session_hex(claims.subscriber, subscriber);
    set_env(r, "URITOKEN_SUBSCRIBER", subscriber);
    set_env(r, "URITOKEN_ISSUED", decimal(r->pool, claims.issued));
  }
}

// The facts the policies on a valid token read: how it crossed the
// network, its Referer (`raw_referer`, as received), the cluster's verdict.
void gather_policies(request_rec* r, const ServerConfig* conf, const char* raw_referer, Gathered* g) {
  RequestFacts& f = g->facts;
  const Claims& claims = g->verdict.claims;
  if (g_usage != nullptr) g_usage->key_used(claims.key_id, static_cast<std::uint32_t>(apr_time_sec(r->request_time)));
  f.plain_http = plain_http(conf);
  f.tls = f.plain_http != PlainHttp::allow && connection_is_tls(r->connection);  // asked only where it matters
  if (const ReferrerList* referrers = referrer_list(conf, g->whose.client)) {
    std::string host;
    f.referrer = referrers->check(raw_referer != nullptr ? std::optional<std::string_view>(raw_referer) : std::nullopt,
                                  r->hostname != nullptr ? r->hostname : "", &host);
    g->referrer_host = apr_pstrmemdup(r->pool, host.data(), host.size());
  }
  if (const CountryRule* rule = country_rule(conf, g->whose.client)) {
    // A binary search in the parent's table: no syscall, no allocation.
    const CountryTable* table = country_table();
    g->country = table != nullptr && g->address ? table->lookup(*g->address) : kNoCountry;
    f.country_refused = !rule->permits(g->country);
  }
  if (SharedState* shared = shared_state()) {
    g->shared = shared;
    f.cluster = true;
    f.sharing = conf->cluster->mode;
    f.bulk = conf->cluster->bulk_mode;
    f.revoked_status = conf->cluster->revoked_status;
    // Lock-free and syscall-free, as is the sighting apply() reports.
    const auto now = static_cast<std::uint32_t>(apr_time_sec(r->request_time));
    f.revocation = shared->lookup(claims.key_id, session_number(claims.session), now);
    if (claims.flags & flag::kSubscriber) g->subscriber_ref = subscriber_ref(claims.client(), claims.subscriber);
    if (f.revocation != RevocationState::revoked && g->subscriber_ref != 0) {
      // A subscriber verdict covers every token of the subscriber issued
      // until its second (a token minted in that second is covered too),
      // above a bulk verdict on the token itself.
      std::uint32_t since = 0;
      const RevocationState s = shared->lookup(kSubscriberKeyId, g->subscriber_ref, now, &since);
      if (s != RevocationState::none && claims.issued <= since) {
        f.revocation = s;
        // Judged already: its use (served in Shadow mode) counts for no new verdict.
        g->subscriber_ref = 0;
      }
    }
  }
}

void gather(request_rec* r, const ServerConfig* conf, RequestState* state, Gathered* g) {
  // Views into r->parsed_uri.path's buffer: it stays in r->pool, and apply()
  // only moves the pointer r->uri, so no copy of the path is needed.
  g->raw_path = r->parsed_uri.path;
  g->split = split_token_prefix(g->raw_path);
  RequestFacts& f = g->facts;
  f.token_first = g->split.has_token;
  f.token_elsewhere = !f.token_first && has_token_segment(g->raw_path);
  f.token_alone = g->split.remainder.empty();
  f.expired_status = expired_status(conf);
  // The Referer as received, for UriTokenReferrers only: it is never logged.
  const char* const raw_referer = apr_table_get(r->headers_in, "Referer");
  // Before anything is logged about this request.
  redact_logged_text(r, f.token_first || f.token_elsewhere);
  if (!f.token_first) return;
  state->token_present = true;
  // mod_cache must never store a tokenized response: its quick handler
  // would hand it to a later request for the plain path, with no token.
  r->no_cache = 1;
  if (const char* policy = referrer_policy(conf); *policy != '\0') {
    // The token must not leave in a Referer to other sites.
    apr_table_setn(r->err_headers_out, "Referrer-Policy", policy);
  }
  gather_token(r, conf, g);
  state->directory_only = g->verdict.directory_only;
  if (g->facts.token == Status::valid && g->facts.path == PathProblem::none && g->facts.keys) {
    gather_policies(r, conf, raw_referer, g);
  }
}

// UriTokenSubscriberSharing names the client: its subscribers are judged.
bool judges_subscribers(const ServerConfig* conf, std::string_view client) {
  for (const ClientSharing& cs : conf->cluster->subscriber_sharing) {
    if (cs.client == client) return true;
  }
  return false;
}

// Reports a served token's use to the sidecar: a player fetching segment
// after segment repeats the same sighting, which the shared state skips
// without a ring slot or the sidecar's time.
void report_sighting(request_rec* r, const ServerConfig* conf, const Gathered& g, RequestState* state) {
  SharedState* shared = g.shared;  // set when the decision asks for a sighting
  const Claims& claims = g.verdict.claims;
  Sighting seen;
  seen.session = session_number(claims.session);
  seen.key_id = claims.key_id;
  seen.client_hash = sharing_client_hash(g.whose.client);
  seen.token_expires = claims.expires;
  seen.time_ms = static_cast<std::uint64_t>(apr_time_as_msec(r->request_time));
  if (g.address) seen.address = *g.address;
  bool news = shared->report(seen);
  state->sighted = true;
  state->sighting = seen;
  if (g.subscriber_ref != 0 && judges_subscribers(conf, g.whose.client)) {
    news = shared->report(subscriber_sighting(seen, g.subscriber_ref)) || news;
  }
  if (news) wake_sidecar();
}

// A refused page navigation of a client with a UriTokenReturnURL goes back
// to the site (302) with a signed reason (core/return_url.h); players and
// elements keep their 403/410. 0 if this refusal does not lead back.
int return_to_site(request_rec* r, const ServerConfig* conf, const Gathered& g, const Decision& d) {
  if (!leads_back(d.refusal) || conf->clients == nullptr || conf->keys == nullptr) return 0;
  const Claims& claims = g.verdict.claims;
  const auto url = conf->clients->return_urls.find(claims.client());
  const Key* key = conf->keys->find(claims.key_id);
  // The key's own client (verification got past step 7): never a forged client.
  if (url == conf->clients->return_urls.end() || key == nullptr || key->client != claims.client()) return 0;
  apr_table_mergen(r->err_headers_out, "Vary", "Sec-Fetch-Mode, Sec-Fetch-Dest, Accept");
  NavigationHints hints;
  hints.method = r->method;
  hints.sec_fetch_mode = apr_table_get(r->headers_in, "Sec-Fetch-Mode");
  hints.sec_fetch_dest = apr_table_get(r->headers_in, "Sec-Fetch-Dest");
  hints.accept = apr_table_get(r->headers_in, "Accept");
  hints.range = apr_table_get(r->headers_in, "Range") != nullptr;
  if (!is_page_navigation(hints)) return 0;
  const std::string location =
      return_location(url->second, *key, refusal_name(d.refusal), g.verdict.authenticated ? g.whose.session : "",
                      apr_time_sec(r->request_time), g.split.remainder);
  apr_table_setn(r->err_headers_out, "Location", apr_pstrmemdup(r->pool, location.data(), location.size()));
  apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
  return HTTP_MOVED_TEMPORARILY;
}

// A refusal of post_read_request: the sidecar's part (UriTokenPlainHTTP
// Revoke), then the log line, then the answer (or the way back to the site).
__attribute__((noinline)) int refuse(request_rec* r, const ServerConfig* conf, const Gathered& g, const Decision& d) {
  RevokeOutcome revoke;
  if (d.revoke_in_cluster) {
    revoke.asked = true;
    revoke.done = revoke_in_cluster(r, conf, g.verdict.claims, g.whose.session, &revoke.why);
  }
  if (d.refusal == Refusal::country) {
    if (g.country != kNoCountry) {
      char* letters = static_cast<char*>(apr_pcalloc(r->pool, 3));
      country_letters(g.country, letters);
      apr_table_setn(r->notes, "uritoken-country", letters);
    }
    if (g_country_refusals != nullptr) {
      g_country_refusals[g.country == kNoCountry ? kCountryCodes : g.country].fetch_add(1, std::memory_order_relaxed);
    }
  }
  log_refusal(r, d, g.whose, g.facts.token_first, false, g.referrer_host, revoke);
  const int back = return_to_site(r, conf, g, d);
  return back != 0 ? back : d.http_status;
}

// Applies post_read_request's decision at its one exit: the verdict's
// environment, the sidecar's part, the log line of a refusal; a served
// token then loses its prefix (or is sent into it).
int apply(request_rec* r, const ServerConfig* conf, const Gathered& g, const Decision& d, RequestState* state) {
  set_env(r, "URITOKEN_STATUS", request_status_name(d.status));
  if (d.set_reason) set_env(r, "URITOKEN_REASON", refusal_name(d.refusal));
  if (d.shadow != Refusal::none) set_env(r, "URITOKEN_SHADOW", refusal_name(d.shadow));
  state->bill = d.bill;
  if (d.refused()) return refuse(r, conf, g, d);
  if (!g.facts.token_first) return DECLINED;
  state->client = g.whose.client;
  if (d.report_sighting) report_sighting(r, conf, g, state);

  // "/_uk_TOKEN" is exactly the start of the raw path.
  state->prefix = apr_pstrmemdup(r->pool, g.raw_path, 1 + kTokenPrefix.size() + g.split.token.size());
  if (apr_table_get(r->headers_in, "Upgrade") != nullptr) {
    // mod_http2 re-reads the path of an upgraded request from parsed_uri;
    // keep the raw one (httpd decodes the stripped rest in place).
    state->upgrade_path = apr_pstrdup(r->pool, g.raw_path);
  }
  if (d.redirect_into_token) {
    // "/_uk_T" alone: send the client into "/_uk_T/" so relative links resolve under the token.
    apr_table_setn(
        r->headers_out, "Location",
        ap_construct_url(
            r->pool, apr_pstrcat(r->pool, state->prefix, "/", r->args ? "?" : "", r->args ? r->args : "", nullptr), r));
    return HTTP_MOVED_PERMANENTLY;
  }
  // Strip the prefix by moving the pointer to the rest (which ends where the
  // raw path ends); httpd then normalises, maps and serves the plain path.
  char* stripped = const_cast<char*>(g.split.remainder.data());
  r->parsed_uri.path = stripped;
  r->uri = stripped;
  return DECLINED;
}

int handle_post_read_request(request_rec* r) {
  if (r->prev != nullptr || r->main != nullptr) return DECLINED;  // verdict belongs to the initial request
  const ServerConfig* conf = server_config(r);
  if (!engine_on(conf) || r->parsed_uri.path == nullptr) return DECLINED;

  auto* state = new (apr_pcalloc(r->pool, sizeof(RequestState))) RequestState();
  ap_set_module_config(r->request_config, &uritoken_module, state);
  Gathered g;
  gather(r, conf, state, &g);
  return apply(r, conf, g, decide(g.facts), state);
}

// The status page and the client-site API are guarded by their own
// Require and signatures, not by a token (they sit wherever the admin puts
// them, often under a token-required tree).
// SetHandler is applied only after the access checks: read it here.
bool is_status_handler(request_rec* r) {
  const auto* core = static_cast<const core_dir_config*>(ap_get_core_module_config(r->per_dir_config));
  if (core == nullptr || core->expr_handler == nullptr) return false;
  const char* error = nullptr;
  const char* handler = ap_expr_str_exec(r, core->expr_handler, &error);
  return handler != nullptr &&
         (std::strcmp(handler, "uritoken-status") == 0 || std::strcmp(handler, "uritoken-client-api") == 0);
}

// Applies access_checker's refusal. Out of line, as is post_read_request's:
// the common path then keeps a small stack frame.
__attribute__((noinline)) int refuse_access(request_rec* r, RequestState* state, const Decision& d, bool token_first) {
  if (d.set_reason) {
    apr_table_setn(r->subprocess_env, "URITOKEN_STATUS", request_status_name(d.status));  // replaces "valid"
    apr_table_setn(r->subprocess_env, "URITOKEN_REASON", refusal_name(d.refusal));
  }
  if (state != nullptr) state->bill = false;
  // Logged once, though both access hooks refuse.
  if (apr_table_get(r->notes, "uritoken-refused") == nullptr) {
    apr_table_setn(r->notes, "uritoken-refused", "1");
    log_refusal(r, d, Whose{}, token_first, true, "", RevokeOutcome{});
  }
  return d.http_status;
}

// Enforcement that no authn/authz module and no `Satisfy Any` can lift: it
// runs as access_checker (final under Satisfy All) and again as
// access_checker_ex (final under Satisfy Any, where a failed
// access_checker only hands the decision to authn/authz). Refused tokens
// never get here (post_read_request answered them).
int handle_access(request_rec* r) {
  RequestState* state = state_of(r);
  AccessFacts f;
  f.token = state != nullptr && state->token_present;
  if (f.token) {
    f.directory_only = state->directory_only;
    f.is_directory = r->finfo.filetype == APR_DIR;
  } else {
    f.require = require_token(dir_config(r));
    if (!f.require) return DECLINED;  // the common case, without the lookups below
    f.status_handler = is_status_handler(r);
    f.engine = engine_on(server_config(r));
  }
  const Decision d = decide_access(f);
  return d.refused() ? refuse_access(r, state, d, f.token) : DECLINED;
}

// Late per-request settings, after every module had its say.
int handle_fixups(request_rec* r) {
  const RequestState* state = state_of(r);
  const bool tokenized = state != nullptr && state->token_present;
  // Nothing a token protects goes into mod_cache (see post_read_request).
  if (tokenized || require_token(dir_config(r))) r->no_cache = 1;
  if (tokenized && state->upgrade_path != nullptr && r->main == nullptr && r->prev == nullptr &&
      r->connection->master == nullptr && ap_is_allowed_protocol(r->connection, r, r->server, "h2c")) {
    // An h2c Upgrade answers this request as stream 1, which mod_http2
    // builds from parsed_uri: give it the tokenized path, so the stream is
    // verified like any other instead of arriving with no token.
    r->parsed_uri.path = const_cast<char*>(state->upgrade_path);
  }
  return DECLINED;
}

// For requests httpd refused before post_read_request (400, 408, 414,
// 417): their request line still holds the token. Redact it before
// mod_log_config writes it, and refresh the scoreboard copy mod_status shows.
int handle_log_transaction(request_rec* r) {
  if (const RequestState* state = state_of(r); state != nullptr) {  // redacted in post_read_request
    // Billing: every answer to a valid token, with the bytes it sent.
    if (state->token_present && state->client != nullptr && state->bill) {
      const request_rec* last = r;
      while (last->next != nullptr) last = last->next;
      const auto bytes = static_cast<std::uint64_t>(std::max<apr_off_t>(last->bytes_sent, 0));
      if (g_usage != nullptr) g_usage->add(state->client, bytes);
      if (SharedState* shared = shared_state(); shared != nullptr && state->sighted) {
        shared->add_bytes(state->sighting, bytes);  // for the bulk signal: the next sighting carries them
      }
    }
    return DECLINED;
  }
  if (redact_logged_text(r, true) && r->connection->sbh != nullptr) {
    ap_update_child_status(static_cast<ap_sb_handle_t*>(r->connection->sbh), SERVER_BUSY_LOG, r);
  }
  return DECLINED;
}

// Puts the token prefix back into a same-host Location that lacks it.
void fix_location(request_rec* r, apr_table_t* headers, const char* prefix) {
  const char* location = apr_table_get(headers, "Location");
  if (location == nullptr || *location == '\0') return;
  const std::string tokened = std::string(prefix) + "/";
  apr_uri_t uri;
  if (apr_uri_parse(r->pool, location, &uri) != APR_SUCCESS) return;
  if (uri.hostname != nullptr) {
    const char* host = r->hostname ? r->hostname : ap_get_server_name(r);
    if (strcasecmp(uri.hostname, host) != 0) return;  // someone else's URL
  }
  if (uri.path == nullptr || uri.path[0] != '/') return;
  if (std::strncmp(uri.path, tokened.c_str(), tokened.size()) == 0 || std::strcmp(uri.path, prefix) == 0) {
    return;  // already inside the prefix
  }
  uri.path = apr_pstrcat(r->pool, prefix, uri.path, nullptr);
  apr_table_setn(headers, "Location", apr_uri_unparse(r->pool, &uri, APR_URI_UNP_REVEALPASSWORD));
}

apr_status_t location_filter(ap_filter_t* f, apr_bucket_brigade* bb) {
  request_rec* r = f->r;
  try {
    const RequestState* state = state_of(r);
    if (state != nullptr && state->prefix != nullptr && ap_is_HTTP_REDIRECT(r->status)) {
      fix_location(r, r->headers_out, state->prefix);
      fix_location(r, r->err_headers_out, state->prefix);
    }
  } catch (...) {
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "UT00007: internal error while fixing a redirect");
  }
  ap_remove_output_filter(f);
  return ap_pass_brigade(f->next, bb);
}

ap_filter_rec_t* location_filter_handle = nullptr;  // set in register_hooks, per module load

// Only error responses need the filter: every redirect httpd itself makes
// (mod_dir, mod_alias, mod_rewrite) is returned as a status and sent by
// ap_send_error_response, which runs insert_error_filter. Plain 200s skip
// the filter entirely.
void insert_location_filter(request_rec* r) {
  if (!ap_is_HTTP_REDIRECT(r->status)) return;
  const RequestState* state = state_of(r);
  if (state != nullptr && state->prefix != nullptr) {
    ap_add_output_filter_handle(location_filter_handle, nullptr, r, r->connection);
  }
}

// noexcept trampolines: exceptions never cross into httpd.
// Logged inside the catch, where e.what() is still alive (ap_log_rerror
// does not throw); no buffer to fill on the path that does not throw,
// which every request takes six times.
__attribute__((noinline, cold)) void log_internal_error(request_rec* r, const char* what) noexcept {
  ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "UT00008: internal error: %s", what);
}

template <typename F>
int guarded(request_rec* r, F&& f) noexcept {
  try {
    return f(r);
  } catch (const std::exception& e) {
    log_internal_error(r, e.what());
  } catch (...) {
    log_internal_error(r, "unknown exception");
  }
  return HTTP_INTERNAL_SERVER_ERROR;
}

int post_read_request_hook(request_rec* r) { return guarded(r, handle_post_read_request); }
int access_hook(request_rec* r) { return guarded(r, handle_access); }
int fixups_hook(request_rec* r) { return guarded(r, handle_fixups); }
int log_transaction_hook(request_rec* r) { return guarded(r, handle_log_transaction); }
int status_handler_hook(request_rec* r) { return guarded(r, handle_status); }
int client_api_hook(request_rec* r) { return guarded(r, handle_client_api); }
int server_status_hook(request_rec* r, int flags) {
  return guarded(r, [flags](request_rec* rr) { return server_status_section(rr, flags); });
}
void insert_filter_hook(request_rec* r) {
  guarded(r, [](request_rec* rr) {
    insert_location_filter(rr);
    return OK;
  });
}

// Whether any module can make a connection TLS (mod_ssl, or one that
// offers mod_ssl's optional function).
bool tls_module_loaded() {
  APR_OPTIONAL_FN_TYPE(ssl_is_https)* is_https = APR_RETRIEVE_OPTIONAL_FN(ssl_is_https);
  return ap_find_linked_module("mod_ssl.c") != nullptr || ap_find_linked_module("mod_gnutls.c") != nullptr ||
         is_https != nullptr;
}

// UriTokenPlainHTTP that cannot work as written: a message naming the
// directive and the fix, or "".
std::string plain_http_problem(const ServerConfig* conf) {
  const PlainHttp mode = plain_http(conf);
  if (!engine_on(conf) || mode == PlainHttp::allow) return "";
  const char* name = mode == PlainHttp::refuse ? "Refuse" : "Revoke";
  if (!tls_module_loaded()) {
    return std::string("UriTokenPlainHTTP ") + name +
           ": no TLS module (mod_ssl) is loaded, so every token would arrive over plain HTTP and be refused; load "
           "mod_ssl and serve tokens over HTTPS, or keep 'UriTokenPlainHTTP Allow' (e.g. where a proxy in front "
           "terminates TLS)";
  }
  const ClusterConfig* c = conf->cluster;
  if (mode == PlainHttp::revoke && (c == nullptr || c->mode == SharingMode::off)) {
    return "UriTokenPlainHTTP Revoke revokes through link sharing, which is off: add 'UriTokenSharing Enforce' (or "
           "Shadow) and 'UriTokenStateDir DIR', or use 'UriTokenPlainHTTP Refuse'";
  }
  return "";
}

// UriTokenReferrers and UriTokenReferrerMissing of one server: each list
// must name a client of its key ring, each per-client setting a client
// with a list. Completes each list's refuse_missing. Returns a message, or "".
std::string settle_referrers(ServerConfig* conf) {
  ClientPolicies* rc = conf->clients;
  if (rc == nullptr) return "";
  for (const auto& [client, mode] : rc->missing) {
    if (rc->lists.count(client) == 0) {
      return "UriTokenReferrerMissing: client '" + client +
             "' has no UriTokenReferrers list here, so the setting would do nothing; add its list "
             "('UriTokenReferrers " +
             client + " host...') or remove the line";
    }
  }
  for (auto& [client, list] : rc->lists) {
    if (engine_on(conf) && conf->keys != nullptr) {
      bool known = false;
      for (const auto& key : conf->keys->keys()) known = known || key->client == client;
      if (!known) {
        return "UriTokenReferrers: client '" + client + "' has no key in " + conf->key_file +
               ", so its list would never apply; use a client id of the key file (its second field)";
      }
    }
    const auto it = rc->missing.find(client);
    list.refuse_missing = (it != rc->missing.end() ? it->second : referrer_missing(conf)) == MissingReferrer::refuse;
  }
  return "";
}

// Runs in `apachectl -t` too: every server with the engine on needs keys.
int check_config(server_rec* s) {
  for (server_rec* vs = s; vs != nullptr; vs = vs->next) {
    ServerConfig* conf = server_config(vs);
    if (engine_on(conf) && conf->keys == nullptr) {
      ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, nullptr,
                   "UT00009: UriTokenEngine On for %s:%u but no UriTokenKeyFile; add "
                   "'UriTokenKeyFile /path/to/keys' (make keys with 'uritoken keygen')",
                   vs->server_hostname ? vs->server_hostname : "(default)", vs->port);
      return HTTP_INTERNAL_SERVER_ERROR;
    }
    std::string problem = plain_http_problem(conf);
    if (problem.empty()) problem = settle_referrers(conf);
    if (!problem.empty()) {
      ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, nullptr, "UT00047: %s (in %s:%u)", problem.c_str(),
                   vs->server_hostname ? vs->server_hostname : "(default)", vs->port);
      return HTTP_INTERNAL_SERVER_ERROR;
    }
  }
  if (const int rc = load_country_table(s); rc != OK) return rc;
  return check_cluster_config(s);
}

int check_config_hook(apr_pool_t*, apr_pool_t*, apr_pool_t*, server_rec* s) noexcept {
  // Copied: e.what() dies with the exception at the end of its catch.
  char what[256] = "unknown exception";
  try {
    return check_config(s);
  } catch (const std::exception& e) {
    std::snprintf(what, sizeof what, "%s", e.what());
  } catch (...) {
  }
  ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, s, "UT00036: configuration check failed: %s", what);
  return HTTP_INTERNAL_SERVER_ERROR;
}

// The refusal log limit and the usage counters, per configuration
// generation, in anonymous shared memory that every child inherits, so
// both hold for the server as a whole.
struct WorkerShared {
  LogLimit log_limit;
  UsageTable usage;
  unsigned char csrf_key[32];  // the status page's form tokens, new each generation
  std::atomic<std::uint64_t> country_refusals[kCountryCodes + 1];
};

void create_worker_shared(apr_pool_t* pconf, server_rec* s) {
  g_log_limit = nullptr;
  g_usage = nullptr;
  g_country_refusals = nullptr;
  apr_shm_t* shm = nullptr;
  if (apr_status_t rv = apr_shm_create(&shm, sizeof(WorkerShared), nullptr, pconf); rv != APR_SUCCESS) {
    ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                 "UT00035: no shared memory for the refusal log limit and the "
                 "usage counters; refusals are logged without a limit and usage is not counted");
    return;
  }
  auto* shared = new (apr_shm_baseaddr_get(shm)) WorkerShared();
  shared->log_limit.reset(static_cast<std::uint32_t>(log_limit_per_second(server_config(s))));
  shared->usage.reset();
  randombytes_buf(shared->csrf_key, sizeof shared->csrf_key);
  g_csrf_key = shared->csrf_key;
  g_log_limit = &shared->log_limit;
  g_usage = &shared->usage;
  g_country_refusals = shared->country_refusals;
}

int post_config_hook(apr_pool_t* pconf, apr_pool_t*, apr_pool_t* ptemp, server_rec* s) noexcept {
  // Copied: e.what() dies with the exception at the end of its catch.
  char what[256] = "unknown exception";
  try {
    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG) create_worker_shared(pconf, s);
    return start_cluster(pconf, ptemp, s);
  } catch (const std::exception& e) {
    std::snprintf(what, sizeof what, "%s", e.what());
  } catch (...) {
  }
  ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, s, "UT00023: cannot start link-sharing state: %s", what);
  return HTTP_INTERNAL_SERVER_ERROR;
}

void register_hooks(apr_pool_t*) {
  static const char* const kAfterRemoteIp[] = {"mod_remoteip.c", nullptr};
  ap_hook_check_config(check_config_hook, nullptr, nullptr, APR_HOOK_MIDDLE);
  ap_hook_post_config(post_config_hook, nullptr, nullptr, APR_HOOK_MIDDLE);
  ap_hook_post_read_request(post_read_request_hook, kAfterRemoteIp, nullptr, APR_HOOK_MIDDLE);
  ap_hook_check_access(access_hook, nullptr, nullptr, APR_HOOK_FIRST, AP_AUTH_INTERNAL_PER_URI);
  ap_hook_check_access_ex(access_hook, nullptr, nullptr, APR_HOOK_FIRST, AP_AUTH_INTERNAL_PER_URI);
  ap_hook_fixups(fixups_hook, nullptr, nullptr, APR_HOOK_REALLY_FIRST);
  // Before mod_log_config (APR_HOOK_MIDDLE) writes the line.
  ap_hook_log_transaction(log_transaction_hook, nullptr, nullptr, APR_HOOK_REALLY_FIRST);
  ap_hook_handler(status_handler_hook, nullptr, nullptr, APR_HOOK_MIDDLE);
  ap_hook_handler(client_api_hook, nullptr, nullptr, APR_HOOK_MIDDLE);
  // Only if mod_status is loaded (an optional hook: no link-time dependency).
  APR_OPTIONAL_HOOK(ap, status_hook, server_status_hook, nullptr, nullptr, APR_HOOK_MIDDLE);
  ap_hook_insert_error_filter(insert_filter_hook, nullptr, nullptr, APR_HOOK_MIDDLE);
  location_filter_handle = ap_register_output_filter(kLocationFilter, location_filter, nullptr, AP_FTYPE_CONTENT_SET);
}

}  // namespace

const UsageTable* usage_table() { return g_usage; }

// Every kind of the catalogue, by its name.
void refusal_totals(const std::function<void(const char*, std::uint64_t)>& f) {
  if (g_log_limit == nullptr) return;
  for (unsigned kind = 1; kind < kRefusalKinds; ++kind) {
    f(refusal_name(static_cast<Refusal>(kind)), g_log_limit->total(kind));
  }
}
const unsigned char* csrf_key() { return g_csrf_key; }

void country_refusal_totals(const std::function<void(const char*, std::uint64_t)>& f) {
  if (g_country_refusals == nullptr) return;
  for (CountryCode c = 0; c <= kCountryCodes; ++c) {
    const std::uint64_t n = g_country_refusals[c].load(std::memory_order_relaxed);
    if (n == 0) continue;
    char letters[3] = "--";  // no known country
    if (c < kCountryCodes) country_letters(c, letters);
    f(letters, n);
  }
}

}  // namespace uritoken::httpd

extern "C" {
// The only exported symbol of the module.
__attribute__((visibility("default")))
module AP_MODULE_DECLARE_DATA uritoken_module = {STANDARD20_MODULE_STUFF,
                                                 uritoken::httpd::create_dir_config,
                                                 uritoken::httpd::merge_dir_config,
                                                 uritoken::httpd::create_server_config,
                                                 uritoken::httpd::merge_server_config,
                                                 uritoken::httpd::kDirectives,
                                                 uritoken::httpd::register_hooks,
                                                 AP_MODULE_FLAG_NONE};
}
