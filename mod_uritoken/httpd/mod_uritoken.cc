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
#include <apr_strings.h>
#include <apr_uri.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_filter.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <string>

#include "../core/request_path.h"
#include "../core/token.h"
#include "cluster.h"
#include "config.h"

extern "C" module AP_MODULE_DECLARE_DATA uritoken_module;

APLOG_USE_MODULE(uritoken);

namespace uritoken::httpd {
namespace {

constexpr const char* kLocationFilter = "URITOKEN_LOCATION";

// What post_read_request learnt, kept on the initial request.
struct RequestState {
  bool token_present = false;
  Status status = Status::invalid;
  const char* prefix = nullptr;  // "/_uk_TOKEN", for redirects
};

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

// Replaces every token segment of `line` (plain or percent-encoded "_uk_",
// see token_prefix_length) by "/_uk_[redacted]", so no token, well-placed
// or not, reaches a log. Called only for requests whose path holds one;
// jumps from slash to slash and copies whole runs (it runs twice per
// tokenized request, so a byte-by-byte loop showed in the profile).
const char* redact(apr_pool_t* p, const char* line) {
  if (line == nullptr) return line;
  constexpr std::string_view kRedacted = "/_uk_[redacted]";
  const std::size_t n = std::strlen(line);
  const char* const end = line + n;
  // Each replaced segment is at least "/_uk_" long: the output is at most
  // kRedacted.size() per slash longer than the input.
  std::size_t slashes = 0;
  for (const char* c = line; (c = static_cast<const char*>(std::memchr(c, '/', static_cast<std::size_t>(end - c)))); ++c) {
    ++slashes;
  }
  char* const out = static_cast<char*>(apr_palloc(p, n + slashes * kRedacted.size() + 1));
  char* o = out;
  const char* copied = line;  // input before this is in the output already
  for (const char* slash = line;
       (slash = static_cast<const char*>(std::memchr(slash, '/', static_cast<std::size_t>(end - slash))));) {
    const std::size_t len = token_prefix_length(std::string_view(slash + 1, static_cast<std::size_t>(end - slash - 1)));
    if (len == 0) {
      ++slash;
      continue;
    }
    std::memcpy(o, copied, static_cast<std::size_t>(slash - copied));
    o += slash - copied;
    kRedacted.copy(o, kRedacted.size());
    o += kRedacted.size();
    slash += 1 + len;
    slash += std::strcspn(slash, "/ ?");  // the rest of the token segment
    copied = slash;
  }
  std::memcpy(o, copied, static_cast<std::size_t>(end - copied));
  o += end - copied;
  *o = '\0';
  return out;
}

// The logged request line and URI without tokens. The request line is
// normally "METHOD unparsed_uri PROTOCOL": then it is rebuilt around the
// redacted URI instead of being scanned a second time.
void redact_request(request_rec* r) {
  const char* uri = r->unparsed_uri;
  const char* line = r->the_request;
  const char* redacted_uri = redact(r->pool, uri);
  const char* space = line != nullptr && uri != nullptr ? std::strchr(line, ' ') : nullptr;
  const std::size_t uri_len = uri != nullptr ? std::strlen(uri) : 0;
  if (space != nullptr && std::strncmp(space + 1, uri, uri_len) == 0 &&
      (space[1 + uri_len] == ' ' || space[1 + uri_len] == '\0')) {
    r->the_request = apr_pstrcat(r->pool, apr_pstrmemdup(r->pool, line, static_cast<std::size_t>(space - line + 1)),
                                 redacted_uri, space + 1 + uri_len, nullptr);
  } else {
    r->the_request = const_cast<char*>(redact(r->pool, line));
  }
  r->unparsed_uri = const_cast<char*>(redacted_uri);
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

constexpr std::string_view kRedactedSegment = "/_uk_[redacted]";

// Replaces the token segment at `at` ("/_uk_TOKEN", `length` bytes, at
// least as long as the marker) with "/_uk_[redacted]" in place: the string
// is this request's own copy.
void overwrite_token_segment(char* at, std::size_t length) {
  kRedactedSegment.copy(at, kRedactedSegment.size());
  char* tail = at + length;
  std::memmove(at + kRedactedSegment.size(), tail, std::strlen(tail) + 1);
}

// The common case of a tokenized request: the URI starts with the token
// segment of the path and the request line holds it right after the
// method; nothing else in either is a token. Then both are redacted in
// place; anything else takes the general scan (redact_request).
void redact_token_request(request_rec* r, std::size_t segment_length) {
  char* uri = r->unparsed_uri;
  char* line = r->the_request;
  char* at = line != nullptr ? std::strchr(line, ' ') : nullptr;
  if (segment_length >= kRedactedSegment.size() && uri != nullptr && at != nullptr &&
      std::strncmp(uri, r->parsed_uri.path, segment_length) == 0 &&
      std::strncmp(at + 1, uri, segment_length) == 0 && !has_token_segment(uri + segment_length) &&
      !has_token_segment(at + 1 + segment_length)) {
    overwrite_token_segment(uri, segment_length);
    overwrite_token_segment(at + 1, segment_length);
    return;
  }
  redact_request(r);
}

// FNV-1a: distinct-client counting for proxy detection, not security.
std::uint32_t client_hash(const char* client) {
  std::uint32_t h = 2166136261u;
  for (const char* c = client; *c != '\0'; ++c) h = (h ^ static_cast<unsigned char>(*c)) * 16777619u;
  return h;
}

// Each name is set once per request, here first: adding skips the search
// for an existing entry that apr_table_setn would do.
void set_env(request_rec* r, const char* name, const char* value) { apr_table_addn(r->subprocess_env, name, value); }

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
  if (!split.has_token) {
    if (!has_token_segment(raw_path)) {
      set_env(r, "URITOKEN_STATUS", "absent");
      return DECLINED;
    }
    redact_request(r);
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                  "UT00004: request refused (misplaced-token): a token is allowed only as the first path segment");
    set_env(r, "URITOKEN_STATUS", "invalid");
    set_env(r, "URITOKEN_REASON", "misplaced-token");
    return HTTP_FORBIDDEN;
  }
  state->token_present = true;
  redact_token_request(r, static_cast<std::size_t>(split.remainder.data() - raw_path));

  if (conf->keys == nullptr) {  // check_config refuses this; stay closed if it ever happens
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "UT00001: token refused: no UriTokenKeyFile for this server");
    set_env(r, "URITOKEN_STATUS", "invalid");
    return HTTP_FORBIDDEN;
  }

  char* path = static_cast<char*>(apr_palloc(r->pool, split.remainder.size() + 1));
  std::size_t path_len = 0;
  if (const PathProblem problem = decode_request_path(split.remainder, path, &path_len);
      problem != PathProblem::none) {
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                  "UT00002: token request refused (%s): the path after the token is unsafe",
                  path_problem_name(problem));
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
    set_env(r, "URITOKEN_CLIENT", client);
    set_env(r, "URITOKEN_SESSION", session);
    set_env(r, "URITOKEN_KEY_ID", apr_itoa(r->pool, v.claims.key_id));
    set_env(r, "URITOKEN_EXPIRES", apr_ltoa(r->pool, static_cast<long>(v.claims.expires)));
  }

  if (v.status != Status::valid) {
    if (v.authenticated) {
      ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "UT00003: token refused (%s): client %s, key %u, session %s",
                    reason_name(v.reason), client, static_cast<unsigned>(v.claims.key_id), session);
    } else {
      ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "UT00003: token refused (%s)", reason_name(v.reason));
    }
    return v.status == Status::expired ? expired_status(conf) : HTTP_FORBIDDEN;
  }

  if (SharedState* shared = shared_state()) {
    // Link sharing: a revoked token is refused on every node; every other
    // use is a sighting for the sidecar. Both are lock-free and syscall-free.
    const auto now = static_cast<std::uint32_t>(ctx.now);
    const RevocationState revoked = shared->lookup(v.claims.key_id, session_number(v.claims.session), now);
    if (revoked == RevocationState::revoked) {
      apr_table_setn(r->subprocess_env, "URITOKEN_STATUS", "revoked");  // replaces "valid"
      apr_table_setn(r->subprocess_env, "URITOKEN_REASON", "shared-link");
      ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                    "UT00010: token refused (revoked): client %s, key %u, session %s was used from too many networks",
                    client, static_cast<unsigned>(v.claims.key_id), session);
      return conf->cluster->revoked_status;
    }
    if (revoked == RevocationState::shadow) set_env(r, "URITOKEN_SHADOW", "revoked");
    Sighting seen;
    seen.session = session_number(v.claims.session);
    seen.key_id = v.claims.key_id;
    seen.client_hash = client_hash(client);
    seen.token_expires = v.claims.expires;
    seen.time_ms = static_cast<std::uint64_t>(apr_time_as_msec(r->request_time));
    if (client_addr) seen.address = *client_addr;
    shared->record(seen);
  }

  // "/_uk_TOKEN" is exactly the start of the raw path.
  state->prefix = apr_pstrmemdup(r->pool, raw_path, 1 + kTokenPrefix.size() + split.token.size());
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

int handle_access_checker(request_rec* r) {
  const ServerConfig* conf = server_config(r);
  const RequestState* state = state_of(r);
  if (state != nullptr && state->token_present) return DECLINED;  // verdict already enforced
  if (!require_token(dir_config(r))) return DECLINED;
  if (!engine_on(conf)) {
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                  "UT00005: request refused: UriTokenRequire On but UriTokenEngine is not On for this server");
    return HTTP_FORBIDDEN;
  }
  ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "UT00006: request refused (absent): this location requires a token");
  return HTTP_FORBIDDEN;
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
  try {
    return f(r);
  } catch (const std::exception& e) {
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "UT00008: internal error: %s", e.what());
  } catch (...) {
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "UT00008: internal error");
  }
  return HTTP_INTERNAL_SERVER_ERROR;
}

int post_read_request_hook(request_rec* r) { return guarded(r, handle_post_read_request); }
int access_checker_hook(request_rec* r) { return guarded(r, handle_access_checker); }
void insert_filter_hook(request_rec* r) {
  guarded(r, [](request_rec* rr) {
    insert_location_filter(rr);
    return OK;
  });
}

// Runs in `apachectl -t` too: every server with the engine on needs keys.
int check_config_hook(apr_pool_t*, apr_pool_t*, apr_pool_t*, server_rec* s) noexcept {
  for (server_rec* vs = s; vs != nullptr; vs = vs->next) {
    const auto* conf = static_cast<const ServerConfig*>(ap_get_module_config(vs->module_config, &uritoken_module));
    if (engine_on(conf) && conf->keys == nullptr) {
      ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, nullptr,
                   "UT00009: UriTokenEngine On for %s:%u but no UriTokenKeyFile; add "
                   "'UriTokenKeyFile /path/to/keys' (make keys with 'uritoken keygen')",
                   vs->server_hostname ? vs->server_hostname : "(default)", vs->port);
      return HTTP_INTERNAL_SERVER_ERROR;
    }
  }
  return check_cluster_config(s);
}

int post_config_hook(apr_pool_t* pconf, apr_pool_t*, apr_pool_t* ptemp, server_rec* s) noexcept {
  try {
    return start_cluster(pconf, ptemp, s);
  } catch (const std::exception& e) {
    ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, s, "UT00008: cannot start link-sharing state: %s",
                 e.what());
  }
  return HTTP_INTERNAL_SERVER_ERROR;
}

void register_hooks(apr_pool_t*) {
  static const char* const kAfterRemoteIp[] = {"mod_remoteip.c", nullptr};
  ap_hook_check_config(check_config_hook, nullptr, nullptr, APR_HOOK_MIDDLE);
  ap_hook_post_config(post_config_hook, nullptr, nullptr, APR_HOOK_MIDDLE);
  ap_hook_post_read_request(post_read_request_hook, kAfterRemoteIp, nullptr, APR_HOOK_MIDDLE);
  ap_hook_access_checker(access_checker_hook, nullptr, nullptr, APR_HOOK_FIRST);
  ap_hook_insert_error_filter(insert_filter_hook, nullptr, nullptr, APR_HOOK_MIDDLE);
  location_filter_handle = ap_register_output_filter(kLocationFilter, location_filter, nullptr, AP_FTYPE_CONTENT_SET);
}

}  // namespace
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
