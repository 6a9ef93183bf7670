// SPDX-License-Identifier: Apache-2.0
// Link-sharing detection and the cluster, httpd side.
//
// The parent creates one shared-memory region per configuration generation
// (post_config), fills its revocation table from the journal, and forks the
// sidecar (the mod_cgid pattern: restarted when it dies, killed when the
// configuration pool goes away on restart or stop). Workers inherit the
// mapping: they look tokens up in the revocation table and write sightings
// into the ring, both without locks or system calls.
#pragma once

#include <httpd.h>
#include <http_config.h>

#include "../../gossip/gossip.h"
#include "../cluster/shared_state.h"
#include "config.h"

namespace uritoken::httpd {

// post_config (second pass only): shared memory, journal preload, sidecar.
// Returns OK or a status that stops the server, after logging why.
int start_cluster(apr_pool_t* pconf, apr_pool_t* ptemp, server_rec* s);

// check_config: a sharing setup that cannot work stops `apachectl -t`.
int check_cluster_config(server_rec* s);

// check_config: the country table of UriTokenCountries, from the location
// database (UriTokenLocationDatabase, else Debian's), for this generation
// (nullptr when no server has country rules). OK, or a logged stop.
int load_country_table(server_rec* s);
// This generation's country table in a worker, or nullptr.
const CountryTable* country_table();

// This generation's shared state in a worker, or nullptr when sharing is off.
SharedState* shared_state();
// Wakes this generation's sidecar from its sleep (when SharedState::report says so).
void wake_sidecar();

// The sidecar's main loop (sidecar.cc); never returns.
[[noreturn]] void run_sidecar(server_rec* s, const ClusterConfig& conf, SharedState& shared, int doorbell_fd);

// Where the sidecar keeps its journal and pid file.
std::string journal_path(const ClusterConfig& conf);
std::string sidecar_pid_path(const ClusterConfig& conf);

}  // namespace uritoken::httpd
