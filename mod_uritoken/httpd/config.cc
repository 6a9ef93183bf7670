// SPDX-License-Identifier: Apache-2.0
// The UriToken* directives. Each handler validates its value at once, so a
// bad value stops `apachectl -t` with a message naming the directive and
// what it accepts. The key file is read here too (as root, before children
// are forked), so a missing, malformed or world-readable key file is a
// configuration error rather than a runtime one.
#include "config.h"

#include <apr_strings.h>
#include <http_log.h>
#include <strings.h>

#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>

#include <new>
#include <string>

#include "../../gossip/gossip.h"
#include "../core/return_url.h"

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
    return apr_psprintf(cmd->pool,
                        "UriTokenKeyFile: %s (one line per key: '<key-id> <client-id> "
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
    return apr_psprintf(cmd->pool, "%s: '%s' is not a number of seconds from %d to %d", cmd->directive->directive, arg,
                        min, max);
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

const char* set_log_limit(cmd_parms* cmd, void*, const char* arg) {
  if (const char* err = ap_check_cmd_context(cmd, GLOBAL_ONLY)) return err;
  char* end = nullptr;
  const long v = std::strtol(arg, &end, 10);
  if (end == arg || *end != '\0' || v < 0 || v > 1000000) {
    return apr_psprintf(cmd->pool,
                        "UriTokenLogLimit: '%s' is not a number of lines per second from 0 (no limit) to 1000000", arg);
  }
  server_config_of(cmd)->log_limit = static_cast<int>(v);
  return nullptr;
}

// Policies that never send the path (and so the token) to another site.
const char* set_referrer_policy(cmd_parms* cmd, void*, const char* arg) {
  static const char* const kSafe[] = {"no-referrer",
                                      "same-origin",
                                      "origin",
                                      "strict-origin",
                                      "origin-when-cross-origin",
                                      "strict-origin-when-cross-origin"};
  if (strcasecmp(arg, "Off") == 0) {
    server_config_of(cmd)->referrer_policy = "";
    return nullptr;
  }
  for (const char* safe : kSafe) {
    if (std::strcmp(arg, safe) == 0) {
      server_config_of(cmd)->referrer_policy = safe;
      return nullptr;
    }
  }
  return apr_psprintf(cmd->pool,
                      "UriTokenReferrerPolicy: '%s' is not allowed; use no-referrer (the default), same-origin, "
                      "origin, strict-origin, origin-when-cross-origin, strict-origin-when-cross-origin, or Off "
                      "(policies that send the full URL to other sites would send the token)",
                      arg);
}

// A token received over a connection without TLS has crossed the network
// in clear: Allow (serve it, the default: TLS may end at a proxy in
// front), Refuse (403 plain-http) or Revoke (403, and revoke its session in
// the cluster; check_config demands link sharing for that).
const char* set_plain_http(cmd_parms* cmd, void*, const char* arg) {
  PlainHttp mode;
  if (strcasecmp(arg, "Allow") == 0) {
    mode = PlainHttp::allow;
  } else if (strcasecmp(arg, "Refuse") == 0) {
    mode = PlainHttp::refuse;
  } else if (strcasecmp(arg, "Revoke") == 0) {
    mode = PlainHttp::revoke;
  } else {
    return apr_psprintf(cmd->pool,
                        "UriTokenPlainHTTP: '%s' is not allowed; use Allow (the default: tokens are served over "
                        "plain HTTP too), Refuse (403) or Revoke (403, and the token is revoked in the cluster)",
                        arg);
  }
  server_config_of(cmd)->plain_http = static_cast<int>(mode);
  return nullptr;
}

// UriTokenClientApiPlainHTTP Refuse|Allow: the client-site API signs
// requests but does not encrypt them (a feed names customers' networks).
const char* set_client_api_plain_http(cmd_parms* cmd, void*, const char* arg) {
  if (strcasecmp(arg, "Refuse") != 0 && strcasecmp(arg, "Allow") != 0) {
    return apr_psprintf(cmd->pool,
                        "UriTokenClientApiPlainHTTP: '%s' is not allowed; use Refuse (the default: the client-site "
                        "API answers over TLS only) or Allow (a TLS-terminating proxy in front, or a test)",
                        arg);
  }
  server_config_of(cmd)->client_api_plain_http = strcasecmp(arg, "Allow") == 0 ? 1 : 0;
  return nullptr;
}

ClientPolicies* clients_of(cmd_parms* cmd);

// UriTokenReturnURL <client-id> URL
const char* set_return_url(cmd_parms* cmd, void*, const char* client, const char* url) {
  if (!client_id_ok(client)) {
    return apr_psprintf(cmd->pool,
                        "UriTokenReturnURL: '%s' is not a client id (1 to 32 of A-Z a-z 0-9 . _ -); use "
                        "'UriTokenReturnURL <client-id> URL', e.g. 'UriTokenReturnURL shop-berlin "
                        "https://shop.example/media-expired'",
                        client);
  }
  if (!return_url_ok(url)) {
    return apr_psprintf(cmd->pool,
                        "UriTokenReturnURL %s: '%s' is not an absolute http:// or https:// URL without a fragment "
                        "(the client site's page that mints a fresh token)",
                        client, url);
  }
  clients_of(cmd)->return_urls[client] = url;
  return nullptr;
}

// UriTokenCountries <client-id> Allow|Deny CC...: ISO 3166 codes of the
// location database, two capital letters each.
const char* set_countries(cmd_parms* cmd, void*, int argc, char* const argv[]) {
  const char* usage =
      "UriTokenCountries: use 'UriTokenCountries <client-id> Allow|Deny CC...' with ISO 3166 country codes "
      "(two capital letters, as the location database has them), e.g. 'UriTokenCountries shop-berlin Allow DE "
      "AT CH'";
  if (argc < 3 || !client_id_ok(argv[0])) return usage;
  CountryRule rule;
  if (strcasecmp(argv[1], "Allow") == 0) {
    rule.allow = true;
  } else if (strcasecmp(argv[1], "Deny") == 0) {
    rule.allow = false;
  } else {
    return apr_psprintf(cmd->pool, "UriTokenCountries %s: '%s' is neither Allow nor Deny", argv[0], argv[1]);
  }
  for (int i = 2; i < argc; ++i) {
    const CountryCode code = country_code(argv[i], std::strlen(argv[i]));
    if (code == kNoCountry) {
      return apr_psprintf(cmd->pool,
                          "UriTokenCountries %s: '%s' is not a country code: use two capital letters of ISO 3166 "
                          "(DE, US, GB; not 'de' or 'DEU')",
                          argv[0], argv[i]);
    }
    rule.listed.set(code);
  }
  if (clients_of(cmd)->countries.count(argv[0]) != 0) {
    return apr_psprintf(cmd->pool, "UriTokenCountries %s: given twice; one line per client", argv[0]);
  }
  clients_of(cmd)->countries[argv[0]] = rule;
  return nullptr;
}

// UriTokenReferrers <client-id> host...: called once per host (ITERATE2).
const char* add_referrer(cmd_parms* cmd, void*, const char* client, const char* host) {
  if (!client_id_ok(client)) {
    return apr_psprintf(cmd->pool,
                        "UriTokenReferrers: '%s' is not a client id (1 to 32 of A-Z a-z 0-9 . _ -); use "
                        "'UriTokenReferrers <client-id> host...', e.g. 'UriTokenReferrers shop-berlin "
                        "shop-berlin.de *.shop-berlin.de'",
                        client);
  }
  std::string error;
  const auto pattern = parse_referrer_pattern(host, &error);
  if (!pattern) return apr_psprintf(cmd->pool, "UriTokenReferrers: %s", error.c_str());
  clients_of(cmd)->lists[client].patterns.push_back(*pattern);
  return nullptr;
}

// UriTokenReferrerMissing Allow|Refuse (every client with a list in this
// server) or UriTokenReferrerMissing <client-id> Allow|Refuse.
const char* set_referrer_missing(cmd_parms* cmd, void*, const char* first, const char* second) {
  const char* value = second != nullptr ? second : first;
  MissingReferrer mode;
  if (strcasecmp(value, "Allow") == 0) {
    mode = MissingReferrer::allow;
  } else if (strcasecmp(value, "Refuse") == 0) {
    mode = MissingReferrer::refuse;
  } else {
    return apr_psprintf(cmd->pool,
                        "UriTokenReferrerMissing: '%s' is not allowed; use 'UriTokenReferrerMissing Allow|Refuse' "
                        "(every client with a UriTokenReferrers list) or 'UriTokenReferrerMissing <client-id> "
                        "Allow|Refuse'",
                        value);
  }
  if (second == nullptr) {
    server_config_of(cmd)->referrer_missing = static_cast<int>(mode);
    return nullptr;
  }
  if (!client_id_ok(first)) {
    return apr_psprintf(cmd->pool, "UriTokenReferrerMissing: '%s' is not a client id (1 to 32 of A-Z a-z 0-9 . _ -)",
                        first);
  }
  clients_of(cmd)->missing[first] = mode;
  return nullptr;
}

// --- link sharing and the cluster (main server only) ---

apr_status_t delete_cluster(void* data) {
  delete static_cast<ClusterConfig*>(data);
  return APR_SUCCESS;
}

// The instance-wide cluster record, created by the first directive that
// needs it; `error` is set when the directive sits in a virtual host.
ClusterConfig* cluster_of(cmd_parms* cmd, const char** error) {
  if ((*error = ap_check_cmd_context(cmd, GLOBAL_ONLY)) != nullptr) return nullptr;
  ServerConfig* conf = server_config_of(cmd);
  if (conf->cluster == nullptr) {
    conf->cluster = new ClusterConfig();
    apr_pool_cleanup_register(cmd->pool, conf->cluster, delete_cluster, apr_pool_cleanup_null);
  }
  return conf->cluster;
}

// Off, Shadow or Enforce, for UriTokenSharing and UriTokenBulk.
const char* parse_mode(cmd_parms* cmd, const char* arg, SharingMode* out) {
  if (!strcasecmp(arg, "Off")) {
    *out = SharingMode::off;
  } else if (!strcasecmp(arg, "Shadow")) {
    *out = SharingMode::shadow;
  } else if (!strcasecmp(arg, "Enforce")) {
    *out = SharingMode::enforce;
  } else {
    return apr_psprintf(cmd->pool, "%s: '%s' is not allowed; use Off, Shadow (report only) or Enforce",
                        cmd->directive->directive, arg);
  }
  return nullptr;
}

const char* set_sharing(cmd_parms* cmd, void*, const char* arg) {
  const char* error = nullptr;
  ClusterConfig* c = cluster_of(cmd, &error);
  if (c == nullptr) return error;
  return parse_mode(cmd, arg, &c->mode);
}

const char* set_bulk(cmd_parms* cmd, void*, const char* arg) {
  const char* error = nullptr;
  ClusterConfig* c = cluster_of(cmd, &error);
  if (c == nullptr) return error;
  return parse_mode(cmd, arg, &c->bulk_mode);
}

const char* set_count(cmd_parms* cmd, const char* arg, long min, long max, unsigned* out, const char* what);

// UriTokenBulkLimit [requests=N] [bytes=SIZE]: per minute, over two minutes.
const char* set_bulk_limit(cmd_parms* cmd, void*, int argc, char* const argv[]) {
  const char* error = nullptr;
  ClusterConfig* c = cluster_of(cmd, &error);
  if (c == nullptr) return error;
  const char* usage =
      "UriTokenBulkLimit: use 'UriTokenBulkLimit [requests=N] [bytes=SIZE]', per minute, SIZE "
      "in bytes or with K, M or G (e.g. 'UriTokenBulkLimit requests=600 bytes=500M'; 0 = no limit)";
  if (argc < 1 || argc > 2) return usage;
  for (int i = 0; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("requests=", 0) == 0) {
      if (const char* e = set_count(cmd, argv[i] + 9, 0, 100000000, &c->bulk_requests_per_min, "a number of requests"))
        return e;
    } else if (arg.rfind("bytes=", 0) == 0) {
      const char* text = argv[i] + 6;
      char* end = nullptr;
      errno = 0;
      const unsigned long long v = std::strtoull(text, &end, 10);
      unsigned shift = 0;
      if (end != text && *end != '\0' && end[1] == '\0') {
        shift = *end == 'K' || *end == 'k'   ? 10
                : *end == 'M' || *end == 'm' ? 20
                : *end == 'G' || *end == 'g' ? 30
                                             : 64;
        ++end;
      }
      if (end == text || *end != '\0' || errno != 0 || shift == 64 || v > (1ull << 50) >> shift || *text == '-') {
        return apr_psprintf(cmd->pool, "UriTokenBulkLimit: '%s' is not bytes=SIZE (e.g. bytes=500M, at most 1P)",
                            argv[i]);
      }
      c->bulk_bytes_per_min = static_cast<std::uint64_t>(v) << shift;
    } else {
      return apr_psprintf(cmd->pool, "UriTokenBulkLimit: '%s' is neither requests=N nor bytes=SIZE", argv[i]);
    }
  }
  if (c->bulk_requests_per_min == 0 && c->bulk_bytes_per_min == 0) {
    return "UriTokenBulkLimit: requests=0 and bytes=0 leave nothing to judge; to turn the signal off use "
           "'UriTokenBulk Off'";
  }
  return nullptr;
}

const char* set_state_dir(cmd_parms* cmd, void*, const char* arg) {
  const char* error = nullptr;
  ClusterConfig* c = cluster_of(cmd, &error);
  if (c == nullptr) return error;
  const char* path = ap_server_root_relative(cmd->pool, arg);
  if (path == nullptr) return apr_psprintf(cmd->pool, "UriTokenStateDir: invalid path '%s'", arg);
  c->state_dir = path;
  return nullptr;
}

const char* set_gossip_listen(cmd_parms* cmd, void*, const char* arg) {
  const char* error = nullptr;
  ClusterConfig* c = cluster_of(cmd, &error);
  if (c == nullptr) return error;
  if (!gossip::Endpoint::parse(arg)) {
    return apr_psprintf(
        cmd->pool, "UriTokenGossipListen: '%s' is not ADDRESS:PORT (e.g. 10.0.0.5:7946 or [2001:db8::5]:7946)", arg);
  }
  c->gossip_listen = arg;
  return nullptr;
}

const char* add_gossip_peer(cmd_parms* cmd, void*, const char* arg) {
  const char* error = nullptr;
  ClusterConfig* c = cluster_of(cmd, &error);
  if (c == nullptr) return error;
  if (!gossip::Endpoint::parse(arg)) {
    return apr_psprintf(cmd->pool, "UriTokenGossipPeer: '%s' is not ADDRESS:PORT (e.g. 10.0.0.6:7946)", arg);
  }
  c->peers.emplace_back(arg);
  return nullptr;
}

const char* set_cluster_key_file(cmd_parms* cmd, void*, const char* arg) {
  const char* error = nullptr;
  ClusterConfig* c = cluster_of(cmd, &error);
  if (c == nullptr) return error;
  const char* path = ap_server_root_relative(cmd->pool, arg);
  if (path == nullptr) return apr_psprintf(cmd->pool, "UriTokenClusterKeyFile: invalid path '%s'", arg);
  std::string why;
  auto keys = load_cluster_keys_file(path, &why);
  if (!keys) return apr_psprintf(cmd->pool, "UriTokenClusterKeyFile: %s", why.c_str());
  c->cluster_keys = std::move(*keys);
  c->cluster_key_file = path;
  return nullptr;
}

const char* set_cluster_name(cmd_parms* cmd, void*, const char* arg) {
  const char* error = nullptr;
  ClusterConfig* c = cluster_of(cmd, &error);
  if (c == nullptr) return error;
  const std::string v = arg;
  if (v.empty() || v.size() > 64) return "UriTokenClusterName: use 1 to 64 characters";
  c->cluster_name = v;
  return nullptr;
}

const char* set_node_name(cmd_parms* cmd, void*, const char* arg) {
  const char* error = nullptr;
  ClusterConfig* c = cluster_of(cmd, &error);
  if (c == nullptr) return error;
  const std::string v = arg;
  if (v.empty() || v.size() > 64) return "UriTokenNodeName: use 1 to 64 characters";
  c->node_name = v;
  return nullptr;
}

const char* set_count(cmd_parms* cmd, const char* arg, long min, long max, unsigned* out, const char* what) {
  char* end = nullptr;
  const long v = std::strtol(arg, &end, 10);
  if (end == arg || *end != '\0' || v < min || v > max) {
    return apr_psprintf(cmd->pool, "%s: '%s' is not %s from %ld to %ld", cmd->directive->directive, arg, what, min,
                        max);
  }
  *out = static_cast<unsigned>(v);
  return nullptr;
}

// A number of the cluster record and its bounds. The directive table
// hands each directive its own as cmd->info (httpd's *_slot idiom), so one
// handler sets them all without looking at the directive's name.
struct ClusterNumber {
  unsigned ClusterConfig::*field;
  long min, max;
  const char* what;
};
// A token's slot remembers its four latest places: more is never reached.
ClusterNumber sharing_places{&ClusterConfig::max_places, 1, kMaxTrackedPlaces, "a number of places"};
ClusterNumber sharing_window{&ClusterConfig::window_seconds, 10, 86400, "a number of seconds"};
ClusterNumber sharing_concurrency{&ClusterConfig::concurrent_seconds, 0, 86400, "a number of seconds"};
ClusterNumber sightings_slots{&ClusterConfig::ring_slots, 64, 1L << 24, "a number of slots"};
ClusterNumber revocation_slots{&ClusterConfig::table_slots, 64, 1L << 26, "a number of slots"};
ClusterNumber tracked_sessions{&ClusterConfig::tracked_sessions, 1024, 1L << 26, "a number of sessions"};

const char* set_cluster_number(cmd_parms* cmd, void*, const char* arg) {
  const char* error = nullptr;
  ClusterConfig* c = cluster_of(cmd, &error);
  if (c == nullptr) return error;
  const auto* number = static_cast<const ClusterNumber*>(cmd->info);
  return set_count(cmd, arg, number->min, number->max, &(c->*(number->field)), number->what);
}

// UriTokenClientSharing and UriTokenSubscriberSharing CLIENT places=N
// [window=SECONDS]; cmd->info is the list it adds to.
using SharingList = std::vector<ClientSharing> ClusterConfig::*;
SharingList client_sharing_list = &ClusterConfig::client_sharing;
SharingList subscriber_sharing_list = &ClusterConfig::subscriber_sharing;

const char* add_client_sharing(cmd_parms* cmd, void*, int argc, char* const argv[]) {
  const char* error = nullptr;
  ClusterConfig* c = cluster_of(cmd, &error);
  if (c == nullptr) return error;
  const SharingList which = *static_cast<const SharingList*>(cmd->info);
  const bool subscribers = which == subscriber_sharing_list;
  std::vector<ClientSharing>& list = c->*which;
  const char* name = cmd->directive->directive;
  const char* usage = apr_psprintf(cmd->pool, "%s: use '%s CLIENT places=N [window=SECONDS]' (e.g. '%s %s')", name,
                                   name, name, subscribers ? "site42 places=2" : "campus-tv places=5 window=300");
  if (argc < 2 || argc > 3) return usage;
  ClientSharing cs;
  cs.client = argv[0];
  if (cs.client.empty() || cs.client.size() > 64) return usage;
  for (const ClientSharing& other : list) {
    if (other.client == cs.client) {
      return apr_psprintf(cmd->pool, "%s: client '%s' is given twice; keep one line", name, argv[0]);
    }
  }
  bool places = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("places=", 0) == 0) {
      if (const char* e = set_count(cmd, argv[i] + 7, 1, kMaxTrackedPlaces, &cs.places, "a number of places")) return e;
      places = true;
    } else if (arg.rfind("window=", 0) == 0) {
      if (const char* e = set_count(cmd, argv[i] + 7, 10, 86400, &cs.window_seconds, "a number of seconds")) return e;
    } else {
      return apr_psprintf(cmd->pool, "%s: '%s' is neither places=N nor window=SECONDS", name, argv[i]);
    }
  }
  if (!places) return usage;
  if (list.size() == kMaxClientLimits) return apr_psprintf(cmd->pool, "%s: at most 255 clients", name);
  list.push_back(cs);
  return nullptr;
}

const char* add_shared_network(cmd_parms* cmd, void*, const char* arg) {
  const char* error = nullptr;
  ClusterConfig* c = cluster_of(cmd, &error);
  if (c == nullptr) return error;
  const auto prefix = parse_ip_prefix(arg);
  if (!prefix) {
    return apr_psprintf(cmd->pool, "UriTokenSharedNetwork: '%s' is not an address or CIDR prefix (e.g. 203.0.113.0/24)",
                        arg);
  }
  c->shared_networks.push_back(*prefix);
  return nullptr;
}

const char* add_shared_network_file(cmd_parms* cmd, void*, const char* arg) {
  const char* error = nullptr;
  ClusterConfig* c = cluster_of(cmd, &error);
  if (c == nullptr) return error;
  const char* path = ap_server_root_relative(cmd->pool, arg);
  if (path == nullptr) return apr_psprintf(cmd->pool, "UriTokenSharedNetworkFile: invalid path '%s'", arg);
  c->shared_network_files.emplace_back(path);  // read by check_cluster_config, at -t and every restart
  return nullptr;
}

const char* set_location_database(cmd_parms* cmd, void*, const char* arg) {
  const char* error = nullptr;
  ClusterConfig* c = cluster_of(cmd, &error);
  if (c == nullptr) return error;
  if (strcasecmp(arg, "off") == 0) {
    c->location_off = true;
    c->location_path.clear();
    return nullptr;
  }
  const char* path = ap_server_root_relative(cmd->pool, arg);
  if (path == nullptr) return apr_psprintf(cmd->pool, "UriTokenLocationDatabase: invalid path '%s'", arg);
  c->location_off = false;
  c->location_path = path;  // opened by check_cluster_config
  return nullptr;
}

const char* set_shared_network_defaults(cmd_parms* cmd, void*, int on) {
  const char* error = nullptr;
  ClusterConfig* c = cluster_of(cmd, &error);
  if (c == nullptr) return error;
  c->default_shared_networks = on != 0;
  return nullptr;
}

const char* set_revoked_status(cmd_parms* cmd, void*, const char* arg) {
  const char* error = nullptr;
  ClusterConfig* c = cluster_of(cmd, &error);
  if (c == nullptr) return error;
  const std::string v = arg;
  if (v != "403" && v != "404" && v != "410") {
    return apr_psprintf(cmd->pool, "UriTokenRevokedStatus: '%s' is not allowed; use 403, 404 or 410", arg);
  }
  c->revoked_status = std::atoi(arg);
  return nullptr;
}

const char* set_require(cmd_parms*, void* dconf, int on) {
  static_cast<DirConfig*>(dconf)->require = on ? 1 : 0;
  return nullptr;
}

}  // namespace
}  // namespace uritoken::httpd

namespace uritoken::httpd {
namespace {
ServerConfig* server_config_of(cmd_parms* cmd) { return server_config(cmd->server); }

apr_status_t delete_client_policies(void* data) {
  delete static_cast<ClientPolicies*>(data);
  return APR_SUCCESS;
}

ClientPolicies* new_client_policies(apr_pool_t* p, const ClientPolicies* copy) {
  auto* r = copy != nullptr ? new ClientPolicies(*copy) : new ClientPolicies();
  apr_pool_cleanup_register(p, r, delete_client_policies, apr_pool_cleanup_null);
  return r;
}

ClientPolicies* clients_of(cmd_parms* cmd) {
  ServerConfig* conf = server_config_of(cmd);
  if (conf->clients == nullptr) conf->clients = new_client_policies(cmd->pool, nullptr);
  return conf->clients;
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
  c->referrer_policy = add->referrer_policy ? add->referrer_policy : base->referrer_policy;
  c->plain_http = pick(add->plain_http, base->plain_http, kUnset);
  c->client_api_plain_http = pick(add->client_api_plain_http, base->client_api_plain_http, kUnset);
  c->referrer_missing = pick(add->referrer_missing, base->referrer_missing, kUnset);
  if (base->clients != nullptr || add->clients != nullptr) {
    // A copy of its own (check_config completes each server's lists); a
    // client's list or setting in the virtual host replaces the main server's.
    c->clients = new_client_policies(p, base->clients);
    if (add->clients != nullptr) {
      for (const auto& [client, list] : add->clients->lists) c->clients->lists[client] = list;
      for (const auto& [client, mode] : add->clients->missing) c->clients->missing[client] = mode;
      for (const auto& [client, url] : add->clients->return_urls) c->clients->return_urls[client] = url;
      for (const auto& [client, rule] : add->clients->countries) c->clients->countries[client] = rule;
    }
  }
  c->cluster = add->cluster ? add->cluster : base->cluster;
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
// Every directive handler runs behind a noexcept trampoline: an exception
// (bad_alloc in a std::string, say) becomes a configuration error naming
// the directive instead of unwinding through httpd's C frames.
template <typename Handler, Handler F>
struct DirectiveGuard;
template <typename... Args, const char* (*F)(cmd_parms*, void*, Args...)>
struct DirectiveGuard<const char* (*)(cmd_parms*, void*, Args...), F> {
  static const char* call(cmd_parms* cmd, void* dir, Args... args) noexcept {
    // Copied: e.what() dies with the exception at the end of its catch.
    char what[256] = "unknown exception";
    try {
      return F(cmd, dir, args...);
    } catch (const std::exception& e) {
      std::snprintf(what, sizeof what, "%s", e.what());
    } catch (...) {
    }
    return apr_psprintf(cmd->pool, "%s: internal error: %s", cmd->directive->directive, what);
  }
};

// NOLINTNEXTLINE(bugprone-macro-parentheses): f names a function, &(f) would not be a template argument
#define UT_FN(f) reinterpret_cast<cmd_func>(reinterpret_cast<void (*)()>(&DirectiveGuard<decltype(&f), &f>::call))

const command_rec kDirectives[] = {
    AP_INIT_FLAG("UriTokenEngine", UT_FN(set_engine), nullptr, RSRC_CONF,
                 "On to recognise /_uk_TOKEN/ URLs in this server or virtual host (default Off)"),
    AP_INIT_TAKE1("UriTokenKeyFile", UT_FN(set_key_file), nullptr, RSRC_CONF,
                  "key ring file, mode 0600 or 0640: lines of '<key-id> <client-id> "
                  "<sign|verify-only|retired> <secret>'"),
    AP_INIT_FLAG("UriTokenRequire", UT_FN(set_require), nullptr, OR_AUTHCFG | ACCESS_CONF,
                 "On to refuse requests in this directory or location without a valid token (default Off)"),
    AP_INIT_TAKE1("UriTokenClockSkew", UT_FN(set_clock_skew), nullptr, RSRC_CONF,
                  "seconds of clock difference tolerated at expiry and not-before (default 30)"),
    AP_INIT_TAKE1("UriTokenMaxTTL", UT_FN(set_max_ttl), nullptr, RSRC_CONF,
                  "longest token lifetime accepted, in seconds from now (default 604800)"),
    AP_INIT_TAKE1("UriTokenExpiredStatus", UT_FN(set_expired_status), nullptr, RSRC_CONF,
                  "HTTP status for an expired token: 403, 404 or 410 (default 410)"),
    AP_INIT_TAKE1("UriTokenLogLimit", UT_FN(set_log_limit), nullptr, RSRC_CONF,
                  "error-log lines per second for each kind of refused request, whole server (default 10; "
                  "0 = no limit); the rest are counted and summed up in one line"),
    AP_INIT_TAKE1("UriTokenReferrerPolicy", UT_FN(set_referrer_policy), nullptr, RSRC_CONF,
                  "Referrer-Policy sent with tokenized responses: no-referrer (default), same-origin, origin, "
                  "strict-origin, origin-when-cross-origin, strict-origin-when-cross-origin, or Off"),
    AP_INIT_TAKE1("UriTokenPlainHTTP", UT_FN(set_plain_http), nullptr, RSRC_CONF,
                  "tokens received over plain HTTP (no TLS): Allow (default), Refuse (403) or Revoke (403, and "
                  "revoke the token in the cluster)"),
    AP_INIT_TAKE1("UriTokenClientApiPlainHTTP", UT_FN(set_client_api_plain_http), nullptr, RSRC_CONF,
                  "the client-site API (SetHandler uritoken-client-api) over plain HTTP: Refuse (default) or Allow"),
    AP_INIT_TAKE_ARGV("UriTokenCountries", UT_FN(set_countries), nullptr, RSRC_CONF,
                      "<client-id> Allow|Deny CC... : the countries (ISO 3166, from the location database) from "
                      "which that client's tokens are served, or refused (451 country); default none"),
    AP_INIT_TAKE2("UriTokenReturnURL", UT_FN(set_return_url), nullptr, RSRC_CONF,
                  "<client-id> URL: a page navigation refused as expired, revoked, bulk-use or out-of-scope is "
                  "redirected (302) there with a signed reason (default none; players keep their 403/410)"),
    AP_INIT_ITERATE2("UriTokenReferrers", UT_FN(add_referrer), nullptr, RSRC_CONF,
                     "<client-id> host... : hosts (exact, or *.example.com) whose pages may embed this client's "
                     "tokenized media; a Referer naming another host is refused (no list, no check)"),
    AP_INIT_TAKE12("UriTokenReferrerMissing", UT_FN(set_referrer_missing), nullptr, RSRC_CONF,
                   "[client-id] Allow|Refuse: a request without a Referer, for clients with a UriTokenReferrers "
                   "list (default Allow; media players send none)"),
    AP_INIT_TAKE1("UriTokenSharing", UT_FN(set_sharing), nullptr, RSRC_CONF,
                  "link-sharing detection: Off (default), Shadow (report verdicts only) or Enforce (revoke)"),
    AP_INIT_TAKE1("UriTokenBulk", UT_FN(set_bulk), nullptr, RSRC_CONF,
                  "bulk use (one token fetching far more than a player): Off (default), Shadow (report only) or "
                  "Enforce (revoke); needs UriTokenSharing Shadow or Enforce"),
    AP_INIT_TAKE_ARGV("UriTokenBulkLimit", UT_FN(set_bulk_limit), nullptr, RSRC_CONF,
                      "[requests=N] [bytes=SIZE]: bulk use is more than this a minute over two minutes, 0 = no "
                      "limit of that kind (default requests=600 bytes=500M)"),
    AP_INIT_TAKE1("UriTokenStateDir", UT_FN(set_state_dir), nullptr, RSRC_CONF,
                  "directory for the revocation journal (kept across restarts; owned by the httpd user)"),
    AP_INIT_TAKE1("UriTokenGossipListen", UT_FN(set_gossip_listen), nullptr, RSRC_CONF,
                  "ADDRESS:PORT this node's gossip UDP socket binds to"),
    AP_INIT_ITERATE("UriTokenGossipPeer", UT_FN(add_gossip_peer), nullptr, RSRC_CONF,
                    "ADDRESS:PORT of one or more cluster members to join through"),
    AP_INIT_TAKE1("UriTokenClusterKeyFile", UT_FN(set_cluster_key_file), nullptr, RSRC_CONF,
                  "file with the cluster's 64-hex-digit gossip key, mode 0600 ('uritoken cluster-keygen')"),
    AP_INIT_TAKE1("UriTokenClusterName", UT_FN(set_cluster_name), nullptr, RSRC_CONF,
                  "label bound into every gossip packet; clusters with different names ignore each other"),
    AP_INIT_TAKE1("UriTokenNodeName", UT_FN(set_node_name), nullptr, RSRC_CONF,
                  "this node's name on the status page and in logs (default: the gossip address)"),
    AP_INIT_TAKE1("UriTokenSharingPlaces", UT_FN(set_cluster_number), &sharing_places, RSRC_CONF,
                  "a token used from more than this many places (autonomous systems) at once is shared (default 3)"),
    AP_INIT_TAKE1("UriTokenSharingNetworks", UT_FN(set_cluster_number), &sharing_places, RSRC_CONF,
                  "former name of UriTokenSharingPlaces, same meaning (default 3)"),
    AP_INIT_TAKE1("UriTokenLocationDatabase", UT_FN(set_location_database), nullptr, RSRC_CONF,
                  "PATH of the libloc location database that turns addresses into places, or Off (default: "
                  "/usr/share/libloc-location/location.db when it exists; refresh with 'location update')"),
    AP_INIT_ITERATE("UriTokenSharedNetworkFile", UT_FN(add_shared_network_file), nullptr, RSRC_CONF,
                    "files of shared ranges, one CIDR a line or a CSV with the range first (e.g. Apple's "
                    "iCloud Private Relay egress list); re-read at every graceful restart"),
    AP_INIT_TAKE_ARGV("UriTokenClientSharing", UT_FN(add_client_sharing), &client_sharing_list, RSRC_CONF,
                      "CLIENT places=N [window=SECONDS]: one client site's own sharing limit and a window no "
                      "longer than UriTokenSharingWindow; the others keep the server's (default none)"),
    AP_INIT_TAKE_ARGV("UriTokenSubscriberSharing", UT_FN(add_client_sharing), &subscriber_sharing_list, RSRC_CONF,
                      "CLIENT places=N [window=SECONDS]: a subscriber of this client seen from more places at "
                      "once, across all its tokens, is sharing the account; its tokens are refused (default none)"),
    AP_INIT_TAKE1("UriTokenSharingWindow", UT_FN(set_cluster_number), &sharing_window, RSRC_CONF,
                  "seconds of sightings the sharing rule looks at (default 600)"),
    AP_INIT_TAKE1("UriTokenSharingConcurrency", UT_FN(set_cluster_number), &sharing_concurrency, RSRC_CONF,
                  "networks used within this many seconds of each other count as concurrent (default 120)"),
    AP_INIT_ITERATE("UriTokenSharedNetwork", UT_FN(add_shared_network), nullptr, RSRC_CONF,
                    "CIDR prefixes of known shared proxies; they count as one network together"),
    AP_INIT_FLAG("UriTokenSharedNetworkDefaults", UT_FN(set_shared_network_defaults), nullptr, RSRC_CONF,
                 "On (default) to treat CGNAT (100.64.0.0/10) and private ranges as shared networks too"),
    AP_INIT_TAKE1("UriTokenSightingsSlots", UT_FN(set_cluster_number), &sightings_slots, RSRC_CONF,
                  "size of the shared-memory sightings ring (default 16384)"),
    AP_INIT_TAKE1("UriTokenRevocationSlots", UT_FN(set_cluster_number), &revocation_slots, RSRC_CONF,
                  "size of the shared-memory revocation table (default 131072)"),
    AP_INIT_TAKE1("UriTokenTrackedSessions", UT_FN(set_cluster_number), &tracked_sessions, RSRC_CONF,
                  "tokens the sharing rule tracks at once per node (default 1000000)"),
    AP_INIT_TAKE1("UriTokenRevokedStatus", UT_FN(set_revoked_status), nullptr, RSRC_CONF,
                  "HTTP status for a revoked (link-shared) token: 403 (default), 404 or 410"),
    {nullptr, nullptr, nullptr, 0, RAW_ARGS, nullptr}};

}  // namespace uritoken::httpd
