// SPDX-License-Identifier: Apache-2.0
// Configuration of mod_uritoken: per-server and per-directory records,
// their merging, and the UriToken* directives.
//
// Unset values are marked explicitly (kUnset) and merged field by field:
// directory over server over the defaults in effective_*().
#pragma once

#include <httpd.h>
#include <http_config.h>
#include <sodium.h>

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "../core/country_table.h"
#include "../core/ipnet.h"
#include "../core/keyring.h"
#include "../core/referrer.h"
#include "../core/request_decision.h"
#include "../cluster/location.h"
#include "../cluster/shared_state.h"
#include "../cluster/sharing.h"

#include <memory>

extern "C" module AP_MODULE_DECLARE_DATA uritoken_module;

namespace uritoken::httpd {

constexpr int kUnset = -1;

// Link-sharing detection and the cluster: one per httpd instance (main
// server only), read by the parent, inherited by the sidecar. Its modes
// (SharingMode) and UriTokenPlainHTTP's (PlainHttp) are the request path's
// facts: core/request_decision.h.

// UriTokenClientSharing CLIENT places=N [window=SECONDS]: one client
// site's own limit (its audience is special: a school's, a hotel chain's).
// UriTokenSubscriberSharing, the same words: its limit per subscriber,
// across all the subscriber's tokens (off unless given).
struct ClientSharing {
  std::string client;
  unsigned places = 3;
  unsigned window_seconds = 0;  // 0: UriTokenSharingWindow
};

struct ClusterConfig {
  SharingMode mode = SharingMode::off;              // UriTokenSharing
  std::string state_dir;                            // UriTokenStateDir (journal)
  std::string gossip_listen;                        // UriTokenGossipListen host:port
  std::vector<std::string> peers;                   // UriTokenGossipPeer host:port ...
  std::string cluster_key_file;                     // UriTokenClusterKeyFile
  std::vector<ClusterKey> cluster_keys;             // the first seals packets, every one opens them
  std::string cluster_name = "uritoken";            // UriTokenClusterName (bound into every packet)
  std::string node_name;                            // UriTokenNodeName (default: the listen address)
  unsigned max_places = kDefaultMaxPlaces;          // UriTokenSharingPlaces (also read as UriTokenSharingNetworks)
  unsigned window_seconds = kDefaultWindowSeconds;  // UriTokenSharingWindow
  unsigned concurrent_seconds = kDefaultConcurrentSeconds;      // UriTokenSharingConcurrency
  std::vector<ClientSharing> client_sharing;                    // UriTokenClientSharing, one per client
  std::vector<ClientSharing> subscriber_sharing;                // UriTokenSubscriberSharing, one per client
  SharingMode bulk_mode = SharingMode::off;                     // UriTokenBulk
  unsigned bulk_requests_per_min = kDefaultBulkRequestsPerMin;  // requests=N of UriTokenBulkLimit (0: none)
  std::uint64_t bulk_bytes_per_min = kDefaultBulkBytesPerMin;   // bytes=SIZE of UriTokenBulkLimit (0: none)
  std::vector<IpPrefix> shared_networks;                        // UriTokenSharedNetwork CIDR ...
  std::vector<std::string> shared_network_files;                // UriTokenSharedNetworkFile PATH ...
  std::vector<IpPrefix> shared_file_ranges;                     // ... as loaded by check_cluster_config
  std::string location_path;  // UriTokenLocationDatabase PATH; "" unset (Debian's if present)
  bool location_off = false;  // set by "UriTokenLocationDatabase Off"
  std::shared_ptr<const cluster::LocationDatabase> location;  // loaded by check_cluster_config
  bool default_shared_networks = true;                        // UriTokenSharedNetworkDefaults On|Off
  unsigned ring_slots = kDefaultRingSlots;                    // UriTokenSightingsSlots
  unsigned table_slots = kDefaultTableSlots;                  // UriTokenRevocationSlots
  unsigned tracked_sessions = kDefaultTrackedSessions;        // UriTokenTrackedSessions
  int revoked_status = 403;                                   // UriTokenRevokedStatus
  ~ClusterConfig() {
    for (ClusterKey& k : cluster_keys) sodium_memzero(k.data(), k.size());
  }
};

// Whether a client with a referrer list accepts requests without a Referer.
enum class MissingReferrer { allow, refuse };

// The per-client policies of one server (UriTokenReferrers,
// UriTokenReferrerMissing, UriTokenReturnURL); each server (virtual host)
// owns its own copy after merging, and check_config fills in each list's
// refuse_missing from the per-client and server settings.
struct ClientPolicies {
  std::map<std::string, ReferrerList, std::less<>> lists;       // UriTokenReferrers <client-id> host...
  std::map<std::string, MissingReferrer, std::less<>> missing;  // UriTokenReferrerMissing <client-id> Allow|Refuse
  std::map<std::string, std::string, std::less<>> return_urls;  // UriTokenReturnURL <client-id> URL
  std::map<std::string, CountryRule, std::less<>> countries;    // UriTokenCountries <client-id> Allow|Deny CC...
};

struct ServerConfig {
  int engine = kUnset;                    // UriTokenEngine
  const char* key_file = nullptr;         // UriTokenKeyFile (resolved path)
  const KeyRing* keys = nullptr;          // loaded when the directive is read
  int clock_skew_seconds = kUnset;        // UriTokenClockSkew
  int max_ttl_seconds = kUnset;           // UriTokenMaxTTL
  int expired_status = kUnset;            // UriTokenExpiredStatus
  int log_limit = kUnset;                 // UriTokenLogLimit (main server)
  const char* referrer_policy = nullptr;  // UriTokenReferrerPolicy ("" = Off); unset: kDefaultReferrerPolicy
  int plain_http = kUnset;                // UriTokenPlainHTTP (a PlainHttp); unset: kDefaultPlainHttp
  int referrer_missing = kUnset;          // UriTokenReferrerMissing Allow|Refuse (a MissingReferrer, every client)
  int client_api_plain_http = kUnset;     // UriTokenClientApiPlainHTTP Refuse|Allow (1 = Allow); unset: Refuse
  ClientPolicies* clients = nullptr;      // UriTokenReferrers, UriTokenReferrerMissing <client-id>, UriTokenReturnURL
  ClusterConfig* cluster = nullptr;       // main server's, shared by every vhost
};

struct DirConfig {
  int require = kUnset;  // UriTokenRequire
};

constexpr int kDefaultClockSkewSeconds = 30;
constexpr int kDefaultMaxTtlSeconds = 7 * 86400;
constexpr int kDefaultExpiredStatus = HTTP_GONE;
constexpr const char* kDefaultReferrerPolicy = "no-referrer";
constexpr int kDefaultLogLimit = 10;
constexpr PlainHttp kDefaultPlainHttp = PlainHttp::allow;
constexpr MissingReferrer kDefaultReferrerMissing = MissingReferrer::allow;

inline bool engine_on(const ServerConfig* c) { return c->engine == 1; }
inline int clock_skew_seconds(const ServerConfig* c) {
  return c->clock_skew_seconds == kUnset ? kDefaultClockSkewSeconds : c->clock_skew_seconds;
}
inline int max_ttl_seconds(const ServerConfig* c) {
  return c->max_ttl_seconds == kUnset ? kDefaultMaxTtlSeconds : c->max_ttl_seconds;
}
inline int expired_status(const ServerConfig* c) {
  return c->expired_status == kUnset ? kDefaultExpiredStatus : c->expired_status;
}
inline int log_limit_per_second(const ServerConfig* c) {
  return c->log_limit == kUnset ? kDefaultLogLimit : c->log_limit;
}
inline const char* referrer_policy(const ServerConfig* c) {
  return c->referrer_policy == nullptr ? kDefaultReferrerPolicy : c->referrer_policy;
}
inline bool require_token(const DirConfig* c) { return c->require == 1; }
inline PlainHttp plain_http(const ServerConfig* c) {
  return c->plain_http == kUnset ? kDefaultPlainHttp : static_cast<PlainHttp>(c->plain_http);
}
inline bool client_api_plain_http_allowed(const ServerConfig* c) { return c->client_api_plain_http == 1; }
inline MissingReferrer referrer_missing(const ServerConfig* c) {
  return c->referrer_missing == kUnset ? kDefaultReferrerMissing : static_cast<MissingReferrer>(c->referrer_missing);
}
inline std::size_t country_rule_count(const ServerConfig* c) {
  return c->clients == nullptr ? 0 : c->clients->countries.size();
}
// The country rule of `client` in this server, or nullptr (no rule).
inline const CountryRule* country_rule(const ServerConfig* c, std::string_view client) {
  if (c->clients == nullptr || c->clients->countries.empty()) return nullptr;
  const auto it = c->clients->countries.find(client);
  return it == c->clients->countries.end() ? nullptr : &it->second;
}

// The referrer list of `client` in this server, or nullptr (no check).
inline const ReferrerList* referrer_list(const ServerConfig* c, std::string_view client) {
  if (c->clients == nullptr) return nullptr;
  const auto it = c->clients->lists.find(client);
  return it == c->clients->lists.end() ? nullptr : &it->second;
}

// This module's record of a server (or a request's server) and of a
// request's directory: the one place that casts ap_get_module_config.
inline ServerConfig* server_config(const server_rec* s) {
  return static_cast<ServerConfig*>(ap_get_module_config(s->module_config, &uritoken_module));
}
inline const ServerConfig* server_config(const request_rec* r) { return server_config(r->server); }
inline const DirConfig* dir_config(const request_rec* r) {
  return static_cast<const DirConfig*>(ap_get_module_config(r->per_dir_config, &uritoken_module));
}

void* create_server_config(apr_pool_t* p, server_rec* s);
void* merge_server_config(apr_pool_t* p, void* base, void* add);
void* create_dir_config(apr_pool_t* p, char* dir);
void* merge_dir_config(apr_pool_t* p, void* base, void* add);

extern const command_rec kDirectives[];

}  // namespace uritoken::httpd
