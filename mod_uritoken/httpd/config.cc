// The UriToken* directives. Each handler validates its value at once, so a
// bad value stops `apachectl -t` with a message naming the directive and
// what it accepts. The key file is read here too (as root, before children
// are forked), so a missing, malformed or world-readable key file is a
// configuration error rather than a runtime one.
#include "config.h"

#include <apr_strings.h>
#include <http_log.h>

#include <cstdlib>

#include <new>
#include <string>

namespace uritoken::httpd {
namespace {

template <typename T>
T pick(T add, T base, T unset) {
  return add != unset ? add : base;
}

apr_status_t delete_keyring(void* data) {
  delete static_cast<KeyRing*>(data);
  return APR_SUCCESS;
}

ServerConfig* server_config_of(cmd_parms* cmd);

const char* set_engine(cmd_parms* cmd, void*, int on) {
  server_config_of(cmd)->engine = on ? 1 : 0;
  return nullptr;
}

const char* set_key_file(cmd_parms* cmd, void*, const char* arg) {
  const char* path = ap_server_root_relative(cmd->pool, arg);
  if (path == nullptr) return apr_psprintf(cmd->pool, "UriTokenKeyFile: invalid path '%s'", arg);
  std::string error;
  std::optional<KeyRing> ring;
  try {
    ring = KeyRing::load_file(path, &error);
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (!ring) {
    return apr_psprintf(cmd->pool, "UriTokenKeyFile: %s (one line per key: '<key-id> <client-id> "
                                   "<sign|verify-only|retired> <secret>'; see 'uritoken keygen')",
                        error.c_str());
  }
  auto* owned = new (std::nothrow) KeyRing(std::move(*ring));
  if (owned == nullptr) return "UriTokenKeyFile: out of memory";
  // The ring lives as long as this configuration generation; a graceful
  // restart re-reads the file into a fresh pool.
  apr_pool_cleanup_register(cmd->pool, owned, delete_keyring, apr_pool_cleanup_null);
  ServerConfig* conf = server_config_of(cmd);
  conf->key_file = path;
  conf->keys = owned;
  return nullptr;
}

const char* set_seconds(cmd_parms* cmd, const char* arg, int min, int max, int* out) {
  char* end = nullptr;
  const long v = std::strtol(arg, &end, 10);
  if (end == arg || *end != '\0' || v < min || v > max) {
    return apr_psprintf(cmd->pool, "%s: '%s' is not a number of seconds from %d to %d",
                        cmd->directive->directive, arg, min, max);
  }
  *out = static_cast<int>(v);
  return nullptr;
}

const char* set_clock_skew(cmd_parms* cmd, void*, const char* arg) {
  return set_seconds(cmd, arg, 0, 3600, &server_config_of(cmd)->clock_skew_seconds);
}

const char* set_max_ttl(cmd_parms* cmd, void*, const char* arg) {
  return set_seconds(cmd, arg, 1, 366 * 86400, &server_config_of(cmd)->max_ttl_seconds);
}

const char* set_expired_status(cmd_parms* cmd, void*, const char* arg) {
  const std::string v = arg;
  int status = 0;
  if (v == "403") status = HTTP_FORBIDDEN;
  if (v == "404") status = HTTP_NOT_FOUND;
  if (v == "410") status = HTTP_GONE;
  if (status == 0) {
    return apr_psprintf(cmd->pool, "UriTokenExpiredStatus: '%s' is not allowed; use 403, 404 or 410", arg);
  }
  server_config_of(cmd)->expired_status = status;
  return nullptr;
}

const char* set_require(cmd_parms*, void* dconf, int on) {
  static_cast<DirConfig*>(dconf)->require = on ? 1 : 0;
  return nullptr;
}

}  // namespace
}  // namespace uritoken::httpd

extern "C" module AP_MODULE_DECLARE_DATA uritoken_module;

namespace uritoken::httpd {
namespace {
ServerConfig* server_config_of(cmd_parms* cmd) {
  return static_cast<ServerConfig*>(ap_get_module_config(cmd->server->module_config, &uritoken_module));
}
}  // namespace

void* create_server_config(apr_pool_t* p, server_rec*) {
  return new (apr_pcalloc(p, sizeof(ServerConfig))) ServerConfig();
}

void* merge_server_config(apr_pool_t* p, void* base_v, void* add_v) {
  const auto* base = static_cast<const ServerConfig*>(base_v);
  const auto* add = static_cast<const ServerConfig*>(add_v);
  auto* c = new (apr_pcalloc(p, sizeof(ServerConfig))) ServerConfig();
  c->engine = pick(add->engine, base->engine, kUnset);
  c->key_file = add->key_file ? add->key_file : base->key_file;
  c->keys = add->keys ? add->keys : base->keys;
  c->clock_skew_seconds = pick(add->clock_skew_seconds, base->clock_skew_seconds, kUnset);
  c->max_ttl_seconds = pick(add->max_ttl_seconds, base->max_ttl_seconds, kUnset);
  c->expired_status = pick(add->expired_status, base->expired_status, kUnset);
  return c;
}

void* create_dir_config(apr_pool_t* p, char*) { return new (apr_pcalloc(p, sizeof(DirConfig))) DirConfig(); }

void* merge_dir_config(apr_pool_t* p, void* base_v, void* add_v) {
  const auto* base = static_cast<const DirConfig*>(base_v);
  const auto* add = static_cast<const DirConfig*>(add_v);
  auto* c = new (apr_pcalloc(p, sizeof(DirConfig))) DirConfig();
  c->require = pick(add->require, base->require, kUnset);
  return c;
}

// httpd's cmd_func is declared without parameters when compiled as C++;
// going through void(*)() is the cast GCC accepts as intentional.
#define UT_FN(f) reinterpret_cast<cmd_func>(reinterpret_cast<void (*)()>(f))

const command_rec kDirectives[] = {
    AP_INIT_FLAG("UriTokenEngine", UT_FN(set_engine), nullptr, RSRC_CONF,
                 "On to recognise /_uk_TOKEN/ URLs in this server or virtual host (default Off)"),
    AP_INIT_TAKE1("UriTokenKeyFile", UT_FN(set_key_file), nullptr, RSRC_CONF,
                  "key ring file, mode 0600 or 0640: lines of '<key-id> <client-id> "
                  "<sign|verify-only|retired> <secret>'"),
    AP_INIT_FLAG("UriTokenRequire", UT_FN(set_require), nullptr, OR_AUTHCFG | ACCESS_CONF,
                 "On to refuse requests in this directory or location without a valid token"),
    AP_INIT_TAKE1("UriTokenClockSkew", UT_FN(set_clock_skew), nullptr, RSRC_CONF,
                  "seconds of clock difference tolerated at expiry and not-before (default 30)"),
    AP_INIT_TAKE1("UriTokenMaxTTL", UT_FN(set_max_ttl), nullptr, RSRC_CONF,
                  "longest token lifetime accepted, in seconds from now (default 604800)"),
    AP_INIT_TAKE1("UriTokenExpiredStatus", UT_FN(set_expired_status), nullptr, RSRC_CONF,
                  "HTTP status for an expired token: 403, 404 or 410 (default 410)"),
    {nullptr, nullptr, nullptr, 0, RAW_ARGS, nullptr}};

}  // namespace uritoken::httpd
