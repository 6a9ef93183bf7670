// mod_uritoken: the httpd glue around the token core.
//
// Request life:
//   post_read_request  (after mod_remoteip, before any URI mapping)
//       split /_uk_TOKEN/rest, check the rest of the path, verify the token,
//       record the verdict (URITOKEN_* environment), redact the token from
//       the logged request line, and on success strip the prefix so that
//       <Location>, Alias, mod_rewrite and the static file handler see the
//       plain path. A token that is present but not valid is refused here,
//       wherever it points: a forged or expired credential is never served.
//       Then, for a valid token, two policies: one received over plain
//       HTTP (UriTokenPlainHTTP) and one whose Referer names a host not on
//       its client's list (UriTokenReferrers) are refused.
//   access_checker     where `UriTokenRequire On`, refuse requests whose
//       initial request carried no valid token.
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
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "../core/control_client.h"
#include "../core/log_limit.h"
#include "../core/referrer.h"
#include "../core/usage.h"
#include "../core/redact.h"
#include "../core/request_path.h"
#include "../core/token.h"
#include "cluster.h"
#include "config.h"
#include "status.h"

extern "C" module AP_MODULE_DECLARE_DATA uritoken_module;

APLOG_USE_MODULE(uritoken);

namespace uritoken::httpd {
namespace {

constexpr const char* kLocationFilter = "URITOKEN_LOCATION";

// What post_read_request learnt, kept on the initial request.
struct RequestState {
  bool token_present = false;
  bool directory_only = false;        // valid only if the path maps to a directory
  Status status = Status::invalid;
  const char* prefix = nullptr;       // "/_uk_TOKEN", for redirects
  const char* upgrade_path = nullptr; // the raw tokenized path, for an h2c Upgrade
  const char* client = nullptr;       // the authenticated client id, for billing
  bool sighted = false;               // reported to the sidecar: its bytes count for the bulk signal
  Sighting sighting;
};

const ServerConfig* server_config_of(const server_rec* s) {
  return static_cast<const ServerConfig*>(ap_get_module_config(s->module_config, &uritoken_module));
}

const ServerConfig* server_config(const request_rec* r) {
  return static_cast<const ServerConfig*>(ap_get_module_config(r->server->module_config, &uritoken_module));
}

const DirConfig* dir_config(const request_rec* r) {
  return static_cast<const DirConfig*>(ap_get_module_config(r->per_dir_config, &uritoken_module));
}

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

// Kinds of refusal for the log limit: a token Reason is its own value.
enum RefusalKind : unsigned {
  kPathProblemKinds = 20,  // + PathProblem
  kAbsentKind = 30,
  kMisplacedKind,
  kRevokedKind,
  kDirectoryOnlyKind,
  kEngineOffKind,
  kNoKeysKind,
  kPlainHttpKind,
  kPlainHttpRevokedKind,
  kPlainHttpNotRevokedKind,
  kBadReferrerKind,
  kMissingReferrerKind,
  kBulkUseKind,
};

LogLimit* g_log_limit = nullptr;  // this generation's, in shared memory (post_config)
UsageTable* g_usage = nullptr;    // likewise
const unsigned char* g_csrf_key = nullptr;

constexpr std::size_t kLoggedRefererMax = 200;

// Whether to write the error-log line for a refusal of `kind` (`name` for
// the summary); first writes the summary of what the limit held back in an
// earlier second. The request is refused, so its Referer, which httpd
// appends to every line about it, is cut short here.
bool refusal_log_allowed(request_rec* r, unsigned kind, const char* name) {
  if (const char* referer = apr_table_get(r->headers_in, "Referer");
      referer != nullptr && std::strlen(referer) > kLoggedRefererMax) {
    apr_table_setn(r->headers_in, "Referer",
                   apr_pstrcat(r->pool, apr_pstrndup(r->pool, referer, kLoggedRefererMax), "...", nullptr));
  }
  if (g_log_limit == nullptr) return true;
  const LogLimit::Decision d = g_log_limit->note(kind, static_cast<std::uint32_t>(apr_time_sec(r->request_time)));
  if (d.suppressed != 0) {
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                  "UT00020: %u more refusals (%s) in second %u were not logged (UriTokenLogLimit)",
                  static_cast<unsigned>(d.suppressed), name, static_cast<unsigned>(d.suppressed_second));
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

// UriTokenPlainHTTP Refuse or Revoke, for a valid token that arrived over
// a connection without TLS: it has crossed the network in clear, so it
// must be taken as leaked.
int refuse_plain_http(request_rec* r, const ServerConfig* conf, PlainHttp mode, const Claims& claims,
                      const char* client, const char* session, RequestState* state) {
  apr_table_setn(r->subprocess_env, "URITOKEN_STATUS", "invalid");  // replaces "valid"
  apr_table_setn(r->subprocess_env, "URITOKEN_REASON", "plain-http");
  state->status = Status::invalid;  // refused: not billed
  const auto key = static_cast<unsigned>(claims.key_id);
  if (mode == PlainHttp::revoke) {
    // Once the cluster has it (from an earlier request), the sidecar is not
    // asked again; a bulk verdict is not that (UriTokenBulk may only be
    // Shadow): the token is revoked by hand over it.
    const SharedState* shared = shared_state();
    const RevocationState known =
        shared != nullptr ? shared->lookup(claims.key_id, session_number(claims.session),
                                           static_cast<std::uint32_t>(apr_time_sec(r->request_time)))
                          : RevocationState::none;
    const bool revoked_already = known != RevocationState::none && known != RevocationState::bulk;
    if (!revoked_already) {
      std::string why;
      if (revoke_in_cluster(r, conf, claims, session, &why)) {
        if (refusal_log_allowed(r, kPlainHttpRevokedKind, "plain-http")) {
          ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                        "UT00043: token refused (plain-http) and revoked in the cluster: client %s, key %u, "
                        "session %s was received over plain HTTP",
                        client, key, session);
        }
      } else if (refusal_log_allowed(r, kPlainHttpNotRevokedKind, "plain-http")) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "UT00044: token refused (plain-http), but its revocation is not confirmed: client %s, key "
                      "%u, session %s was received over plain HTTP, and the sidecar did not confirm the "
                      "revocation: %s",
                      client, key, session, why.c_str());
      }
      return HTTP_FORBIDDEN;
    }
  }
  if (refusal_log_allowed(r, kPlainHttpKind, "plain-http")) {
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                  "UT00042: token refused (plain-http): client %s, key %u, session %s was received over plain "
                  "HTTP%s",
                  client, key, session, mode == PlainHttp::revoke ? " (revoked in the cluster already)" : "");
  }
  return HTTP_FORBIDDEN;
}

// UriTokenReferrers: the Referer `raw_referer` (as received, before
// redaction) must name a host on the client's list. The logged host is
// redacted like everything else (a host holding "_uk_" would show it).
int refuse_by_referrer(request_rec* r, ReferrerVerdict verdict, const std::string& host, const Claims& claims,
                       const char* client, const char* session, RequestState* state) {
  apr_table_setn(r->subprocess_env, "URITOKEN_STATUS", "invalid");  // replaces "valid"
  apr_table_setn(r->subprocess_env, "URITOKEN_REASON", referrer_verdict_name(verdict));
  state->status = Status::invalid;  // refused: not billed
  const auto key = static_cast<unsigned>(claims.key_id);
  if (verdict == ReferrerVerdict::missing_referrer) {
    if (refusal_log_allowed(r, kMissingReferrerKind, "missing-referrer")) {
      ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                    "UT00046: token refused (missing-referrer): client %s, key %u, session %s: no Referer, and "
                    "UriTokenReferrerMissing is Refuse for this client",
                    client, key, session);
    }
  } else if (refusal_log_allowed(r, kBadReferrerKind, "bad-referrer")) {
    const std::string shown = host.empty() ? "(none: the Referer is not an absolute URL)" : redact_tokens(host);
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                  "UT00045: token refused (bad-referrer): client %s, key %u, session %s, referring host %s is not "
                  "in the client's UriTokenReferrers",
                  client, key, session, shown.c_str());
  }
  return HTTP_FORBIDDEN;
}

int handle_post_read_request(request_rec* r) {
  if (r->prev != nullptr || r->main != nullptr) return DECLINED;  // verdict belongs to the initial request
  const ServerConfig* conf = server_config(r);
  if (!engine_on(conf) || r->parsed_uri.path == nullptr) return DECLINED;

  auto* state = new (apr_pcalloc(r->pool, sizeof(RequestState))) RequestState();
  ap_set_module_config(r->request_config, &uritoken_module, state);

  // Views into r->parsed_uri.path's buffer: it stays in r->pool, and below
  // only the pointer r->uri is moved, so no copy of the path is needed.
  const char* raw_path = r->parsed_uri.path;
  const TokenSplit split = split_token_prefix(raw_path);
  const bool misplaced = !split.has_token && has_token_segment(raw_path);
  // The Referer as received, for UriTokenReferrers only: it is never logged.
  const char* const raw_referer = apr_table_get(r->headers_in, "Referer");
  // Before anything is logged about this request.
  redact_logged_text(r, split.has_token || misplaced);
  if (!split.has_token) {
    if (!misplaced) {
      set_env(r, "URITOKEN_STATUS", "absent");
      return DECLINED;
    }
    if (refusal_log_allowed(r, kMisplacedKind, "misplaced-token")) {
      ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                    "UT00004: request refused (misplaced-token): a token is allowed only as the first path "
                    "segment, spelled /_uk_");
    }
    set_env(r, "URITOKEN_STATUS", "invalid");
    set_env(r, "URITOKEN_REASON", "misplaced-token");
    return HTTP_FORBIDDEN;
  }
  state->token_present = true;
  // mod_cache must never store a tokenized response: its quick handler
  // would hand it to a later request for the plain path, with no token.
  r->no_cache = 1;
  if (const char* policy = referrer_policy(conf); *policy != '\0') {
    // The token must not leave in a Referer to other sites.
    apr_table_setn(r->err_headers_out, "Referrer-Policy", policy);
  }

  if (conf->keys == nullptr) {  // check_config refuses this; stay closed if it ever happens
    if (refusal_log_allowed(r, kNoKeysKind, "no-keys")) {
      ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "UT00001: token refused: no UriTokenKeyFile for this server");
    }
    set_env(r, "URITOKEN_STATUS", "invalid");
    return HTTP_FORBIDDEN;
  }

  char* path = static_cast<char*>(apr_palloc(r->pool, split.remainder.size() + 1));
  std::size_t path_len = 0;
  if (const PathProblem problem = decode_request_path(split.remainder, path, &path_len);
      problem != PathProblem::none) {
    if (refusal_log_allowed(r, kPathProblemKinds + static_cast<unsigned>(problem), path_problem_name(problem))) {
      ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                    "UT00002: token request refused (%s): the path after the token is unsafe",
                    path_problem_name(problem));
    }
    set_env(r, "URITOKEN_STATUS", "invalid");
    set_env(r, "URITOKEN_REASON", path_problem_name(problem));
    return HTTP_FORBIDDEN;
  }

  const std::optional<IpAddress> client_addr = client_address(r);
  VerifyContext ctx;
  ctx.path = std::string_view(path, path_len);
  ctx.client_addr = client_addr ? &*client_addr : nullptr;
  ctx.now = apr_time_sec(r->request_time);
  ctx.leeway_seconds = static_cast<std::uint32_t>(clock_skew_seconds(conf));
  ctx.max_ttl_seconds = static_cast<std::uint32_t>(max_ttl_seconds(conf));
  const Verdict v = verify_token(*conf->keys, split.token, ctx);
  state->status = v.status;
  state->directory_only = v.directory_only;

  set_env(r, "URITOKEN_STATUS", status_name(v.status));
  set_env(r, "URITOKEN_REASON", reason_name(v.reason));
  const char* session = "-";
  const char* client = "-";
  if (v.authenticated) {
    // Only authenticated fields are exported: they are what ops bill on.
    char* hex = static_cast<char*>(apr_palloc(r->pool, 2 * kSessionBytes + 1));
    session_hex(v.claims.session, hex);
    session = hex;
    client = apr_pstrmemdup(r->pool, v.claims.client_buf.data(), v.claims.client_len);
    state->client = client;
    set_env(r, "URITOKEN_CLIENT", client);
    set_env(r, "URITOKEN_SESSION", session);
    set_env(r, "URITOKEN_KEY_ID", apr_itoa(r->pool, v.claims.key_id));
    set_env(r, "URITOKEN_EXPIRES", apr_ltoa(r->pool, static_cast<long>(v.claims.expires)));
  }

  if (v.status != Status::valid) {
    if (refusal_log_allowed(r, static_cast<unsigned>(v.reason), reason_name(v.reason))) {
      // Whose token it was, when the MAC proved it.
      const char* whose = v.authenticated ? apr_psprintf(r->pool, ": client %s, key %u, session %s", client,
                                                         static_cast<unsigned>(v.claims.key_id), session)
                                          : "";
      ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "UT00003: token refused (%s)%s", reason_name(v.reason), whose);
    }
    return v.status == Status::expired ? expired_status(conf) : HTTP_FORBIDDEN;
  }

  if (g_usage != nullptr) g_usage->key_used(v.claims.key_id, static_cast<std::uint32_t>(ctx.now));

  // Policies on top of a valid token; the token itself was checked first.
  if (const PlainHttp mode = plain_http(conf); mode != PlainHttp::allow && !connection_is_tls(r->connection)) {
    return refuse_plain_http(r, conf, mode, v.claims, client, session, state);
  }
  if (const ReferrerList* referrers = referrer_list(conf, client)) {
    std::string host;
    const ReferrerVerdict verdict =
        referrers->check(raw_referer != nullptr ? std::optional<std::string_view>(raw_referer) : std::nullopt,
                         r->hostname != nullptr ? r->hostname : "", &host);
    if (verdict != ReferrerVerdict::allowed) {
      return refuse_by_referrer(r, verdict, host, v.claims, client, session, state);
    }
  }

  if (SharedState* shared = shared_state()) {
    // Link sharing: a revoked token is refused on every node; every other
    // use is a sighting for the sidecar. Both are lock-free and syscall-free.
    const auto now = static_cast<std::uint32_t>(ctx.now);
    const RevocationState revoked = shared->lookup(v.claims.key_id, session_number(v.claims.session), now);
    if (revoked == RevocationState::bulk) {
      // Found in bulk use: this node's UriTokenBulk decides (Off: served as if not).
      if (conf->cluster->bulk_mode == SharingMode::shadow) {
        set_env(r, "URITOKEN_SHADOW", "bulk-use");
      } else if (conf->cluster->bulk_mode == SharingMode::enforce) {
        apr_table_setn(r->subprocess_env, "URITOKEN_STATUS", "revoked");
        state->status = Status::invalid;  // refused: not billed
        apr_table_setn(r->subprocess_env, "URITOKEN_REASON", "bulk-use");
        if (refusal_log_allowed(r, kBulkUseKind, "bulk-use")) {
          ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                        "UT00058: token refused (bulk-use): client %s, key %u, session %s was found fetching far "
                        "more than a player (UriTokenBulkLimit; the status page shows its rate)",
                        client, static_cast<unsigned>(v.claims.key_id), session);
        }
        return conf->cluster->revoked_status;
      }
    } else if (revoked != RevocationState::none) {
      // The cluster found this token shared; this node's own mode decides.
      if (conf->cluster->mode == SharingMode::shadow) {
        set_env(r, "URITOKEN_SHADOW", "revoked");
      } else {
        apr_table_setn(r->subprocess_env, "URITOKEN_STATUS", "revoked");  // replaces "valid"
        state->status = Status::invalid;  // refused: not billed
        apr_table_setn(r->subprocess_env, "URITOKEN_REASON", "shared-link");
        if (refusal_log_allowed(r, kRevokedKind, "revoked")) {
          ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                        "UT00010: token refused (revoked): client %s, key %u, session %s is revoked in the cluster "
                        "(found shared, or revoked by an operator: the status page says which)",
                        client, static_cast<unsigned>(v.claims.key_id), session);
        }
        return conf->cluster->revoked_status;
      }
    }
    Sighting seen;
    seen.session = session_number(v.claims.session);
    seen.key_id = v.claims.key_id;
    seen.client_hash = sharing_client_hash(client);
    seen.token_expires = v.claims.expires;
    seen.time_ms = static_cast<std::uint64_t>(apr_time_as_msec(r->request_time));
    if (client_addr) seen.address = *client_addr;
    // A player fetching segment after segment repeats the same sighting:
    // skipped here, it costs neither a ring slot nor the sidecar's time.
    if (shared->report(seen)) wake_sidecar();
    state->sighted = true;
    state->sighting = seen;
  }

  // "/_uk_TOKEN" is exactly the start of the raw path.
  state->prefix = apr_pstrmemdup(r->pool, raw_path, 1 + kTokenPrefix.size() + split.token.size());
  if (apr_table_get(r->headers_in, "Upgrade") != nullptr) {
    // mod_http2 re-reads the path of an upgraded request from parsed_uri;
    // keep the raw one (httpd decodes the stripped rest in place).
    state->upgrade_path = apr_pstrdup(r->pool, raw_path);
  }
  if (split.remainder.empty()) {
    // "/_uk_T" alone: send the client into "/_uk_T/" so relative links resolve under the token.
    apr_table_setn(r->headers_out, "Location",
                   ap_construct_url(r->pool,
                                    apr_pstrcat(r->pool, state->prefix, "/", r->args ? "?" : "",
                                                r->args ? r->args : "", nullptr),
                                    r));
    return HTTP_MOVED_PERMANENTLY;
  }
  // Strip the prefix by moving the pointer to the rest (which ends where the
  // raw path ends); httpd then normalises, maps and serves the plain path.
  char* stripped = const_cast<char*>(split.remainder.data());
  r->parsed_uri.path = stripped;
  r->uri = stripped;
  return DECLINED;
}

// Refuses `r` once with `status`, logging `message` only the first time:
// the same check runs as access_checker and as access_checker_ex.
int refuse_once(request_rec* r, unsigned kind, const char* name, int level, const char* message, int status) {
  if (apr_table_get(r->notes, "uritoken-refused") == nullptr) {
    apr_table_setn(r->notes, "uritoken-refused", "1");
    if (refusal_log_allowed(r, kind, name)) ap_log_rerror(APLOG_MARK, level, 0, r, "%s", message);
  }
  return status;
}

// Enforcement that no authn/authz module and no `Satisfy Any` can lift: it
// runs as access_checker (final under Satisfy All) and again as
// access_checker_ex (final under Satisfy Any, where a failed
// access_checker only hands the decision to authn/authz).
int handle_access(request_rec* r) {
  RequestState* state = state_of(r);
  if (state != nullptr && state->token_present) {
    // Refused tokens never get here (post_read_request answered them).
    if (state->directory_only && r->finfo.filetype != APR_DIR) {
      // "/a/b" for a "/a/b/" scope may only redirect to the directory;
      // MultiViews would otherwise serve "/a/b.zip".
      apr_table_setn(r->subprocess_env, "URITOKEN_STATUS", "invalid");
      apr_table_setn(r->subprocess_env, "URITOKEN_REASON", "out-of-scope");
      state->status = Status::invalid;  // refused: not billed
      return refuse_once(r, kDirectoryOnlyKind, "out-of-scope", APLOG_WARNING,
                         "UT00019: token refused (out-of-scope): its directory scope was requested without the "
                         "trailing slash, and the path is not a directory",
                         HTTP_FORBIDDEN);
    }
    return DECLINED;
  }
  if (!require_token(dir_config(r))) return DECLINED;
  // The status page is guarded by its own Require, not by a token (it sits
  // wherever the admin puts it, often under a token-required tree).
  // SetHandler is applied only after the access checks: read it here.
  const auto* core = static_cast<const core_dir_config*>(ap_get_core_module_config(r->per_dir_config));
  if (core != nullptr && core->expr_handler != nullptr) {
    const char* error = nullptr;
    const char* handler = ap_expr_str_exec(r, core->expr_handler, &error);
    if (handler != nullptr && std::strcmp(handler, "uritoken-status") == 0) return DECLINED;
  }
  if (!engine_on(server_config(r))) {
    return refuse_once(r, kEngineOffKind, "engine-off", APLOG_ERR,
                       "UT00005: request refused: UriTokenRequire On but UriTokenEngine is not On for this server",
                       HTTP_FORBIDDEN);
  }
  return refuse_once(r, kAbsentKind, "absent", APLOG_WARNING, "UT00006: request refused (absent): this location requires a token",
                     HTTP_FORBIDDEN);
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
    if (state->token_present && state->client != nullptr && state->status == Status::valid) {
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
template <typename F>
int guarded(request_rec* r, F&& f) noexcept {
  // Copied: e.what() dies with the exception at the end of its catch.
  char what[256] = "unknown exception";
  try {
    return f(r);
  } catch (const std::exception& e) {
    std::snprintf(what, sizeof what, "%s", e.what());
  } catch (...) {
  }
  ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "UT00008: internal error: %s", what);
  return HTTP_INTERNAL_SERVER_ERROR;
}

int post_read_request_hook(request_rec* r) { return guarded(r, handle_post_read_request); }
int access_hook(request_rec* r) { return guarded(r, handle_access); }
int fixups_hook(request_rec* r) { return guarded(r, handle_fixups); }
int log_transaction_hook(request_rec* r) { return guarded(r, handle_log_transaction); }
int status_handler_hook(request_rec* r) { return guarded(r, handle_status); }
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
  ReferrerConfig* rc = conf->referrers;
  if (rc == nullptr) return "";
  for (const auto& [client, mode] : rc->missing) {
    if (rc->lists.count(client) == 0) {
      return "UriTokenReferrerMissing: client '" + client +
             "' has no UriTokenReferrers list here, so the setting would do nothing; add its list "
             "('UriTokenReferrers " + client + " host...') or remove the line";
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
    auto* conf = static_cast<ServerConfig*>(ap_get_module_config(vs->module_config, &uritoken_module));
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
};

void create_worker_shared(apr_pool_t* pconf, server_rec* s) {
  g_log_limit = nullptr;
  g_usage = nullptr;
  apr_shm_t* shm = nullptr;
  if (apr_status_t rv = apr_shm_create(&shm, sizeof(WorkerShared), nullptr, pconf); rv != APR_SUCCESS) {
    ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, "UT00035: no shared memory for the refusal log limit and the "
                 "usage counters; refusals are logged without a limit and usage is not counted");
    return;
  }
  auto* shared = new (apr_shm_baseaddr_get(shm)) WorkerShared();
  shared->log_limit.reset(static_cast<std::uint32_t>(log_limit_per_second(server_config_of(s))));
  shared->usage.reset();
  randombytes_buf(shared->csrf_key, sizeof shared->csrf_key);
  g_csrf_key = shared->csrf_key;
  g_log_limit = &shared->log_limit;
  g_usage = &shared->usage;
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
  // Only if mod_status is loaded (an optional hook: no link-time dependency).
  APR_OPTIONAL_HOOK(ap, status_hook, server_status_hook, nullptr, nullptr, APR_HOOK_MIDDLE);
  ap_hook_insert_error_filter(insert_filter_hook, nullptr, nullptr, APR_HOOK_MIDDLE);
  location_filter_handle = ap_register_output_filter(kLocationFilter, location_filter, nullptr, AP_FTYPE_CONTENT_SET);
}

}  // namespace

const UsageTable* usage_table() { return g_usage; }

void refusal_totals(const std::function<void(const char*, std::uint64_t)>& f) {
  if (g_log_limit == nullptr) return;
  for (auto r = static_cast<unsigned>(Reason::too_short); r <= static_cast<unsigned>(Reason::ttl_too_long); ++r) {
    f(reason_name(static_cast<Reason>(r)), g_log_limit->total(r));
  }
  for (auto p = static_cast<unsigned>(PathProblem::bad_escape); p <= static_cast<unsigned>(PathProblem::misplaced_token);
       ++p) {
    f(path_problem_name(static_cast<PathProblem>(p)), g_log_limit->total(kPathProblemKinds + p));
  }
  f("absent", g_log_limit->total(kAbsentKind));
  f("misplaced-segment", g_log_limit->total(kMisplacedKind));
  f("revoked", g_log_limit->total(kRevokedKind));
  f("directory-only", g_log_limit->total(kDirectoryOnlyKind));
  f("plain-http", g_log_limit->total(kPlainHttpKind) + g_log_limit->total(kPlainHttpRevokedKind) +
                      g_log_limit->total(kPlainHttpNotRevokedKind));
  f("bad-referrer", g_log_limit->total(kBadReferrerKind));
  f("missing-referrer", g_log_limit->total(kMissingReferrerKind));
  f("bulk-use", g_log_limit->total(kBulkUseKind));
}
const unsigned char* csrf_key() { return g_csrf_key; }

}  // namespace uritoken::httpd

extern "C" {
// The only exported symbol of the module.
__attribute__((visibility("default"))) module AP_MODULE_DECLARE_DATA uritoken_module = {
    STANDARD20_MODULE_STUFF,
    uritoken::httpd::create_dir_config,
    uritoken::httpd::merge_dir_config,
    uritoken::httpd::create_server_config,
    uritoken::httpd::merge_server_config,
    uritoken::httpd::kDirectives,
    uritoken::httpd::register_hooks,
    AP_MODULE_FLAG_NONE};
}
