// SPDX-License-Identifier: Apache-2.0
// Parent side of the cluster: shared memory, journal preload and the
// sidecar's life cycle (modelled on mod_cgid's daemon).
#include "cluster.h"

#include "../cluster/sharing_service.h"

#include <algorithm>
#include <apr_shm.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <http_core.h>
#include <http_log.h>
#include <mpm_common.h>
#include <ap_mpm.h>
#include <unixd.h>

#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <cerrno>
#include <ctime>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "../cluster/shared_ranges.h"

#include "../../gossip/journal.h"

APLOG_USE_MODULE(uritoken);

namespace uritoken::httpd {
namespace {

// This generation's state; set in the parent before any child is forked,
// so every worker and the sidecar inherit it.
std::optional<SharedState> g_shared;
int g_doorbell = -1;  // eventfd: a worker wakes the sleeping sidecar for news (SharedState::report)

apr_status_t close_doorbell(void*) {
  if (g_doorbell >= 0) close(g_doorbell);
  g_doorbell = -1;
  return APR_SUCCESS;
}
// What the sidecar restart (other-child callback) needs.
apr_pool_t* g_pconf = nullptr;
server_rec* g_server = nullptr;
const ClusterConfig* g_conf = nullptr;

const ClusterConfig* cluster_config(server_rec* s) { return server_config(s)->cluster; }

bool sharing_on(const ClusterConfig* c) { return c != nullptr && c->mode != SharingMode::off; }

void fork_sidecar(apr_proc_t* proc);

void sidecar_maintenance(int reason, void* data, int) {
  auto* proc = static_cast<apr_proc_t*>(data);
  switch (reason) {
    case APR_OC_REASON_DEATH:
    case APR_OC_REASON_LOST: {
      apr_proc_other_child_unregister(data);
      int mpm_state = AP_MPMQ_STOPPING;
      if (ap_mpm_query(AP_MPMQ_MPM_STATE, &mpm_state) == APR_SUCCESS && mpm_state != AP_MPMQ_STOPPING) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, g_server, "UT00012: sharing sidecar (pid %ld) died; restarting it",
                     static_cast<long>(proc->pid));
        if (g_shared) g_shared->note_sidecar_restart();
        fork_sidecar(proc);
      }
      break;
    }
    case APR_OC_REASON_RESTART: apr_proc_other_child_unregister(data); break;
    default:
      // APR_OC_REASON_UNREGISTER: the configuration pool is going away
      // (restart or stop); its subprocess note sends SIGTERM and waits.
      break;
  }
}

void fork_sidecar(apr_proc_t* proc) {
  const pid_t pid = fork();
  if (pid < 0) {
    ap_log_error(APLOG_MARK, APLOG_CRIT, errno, g_server, "UT00025: cannot fork the sharing sidecar");
    return;
  }
  if (pid == 0) run_sidecar(g_server, *g_conf, *g_shared, g_doorbell);
  proc->pid = pid;
  proc->in = proc->out = proc->err = nullptr;
  apr_pool_note_subprocess(g_pconf, proc, APR_KILL_AFTER_TIMEOUT);
  apr_proc_other_child_register(proc, sidecar_maintenance, proc, nullptr, g_pconf);
}

// The state directory exists and belongs to the user the sidecar runs as.
bool prepare_state_dir(apr_pool_t* p, server_rec* s, const ClusterConfig& c) {
  const apr_status_t rv = apr_dir_make_recursive(
      c.state_dir.c_str(),
      APR_FPROT_UREAD | APR_FPROT_UWRITE | APR_FPROT_UEXECUTE | APR_FPROT_GREAD | APR_FPROT_GEXECUTE, p);
  if (rv != APR_SUCCESS && !APR_STATUS_IS_EEXIST(rv)) {
    ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, rv, s, "UT00017: UriTokenStateDir %s cannot be created",
                 c.state_dir.c_str());
    return false;
  }
  if (geteuid() == 0) {
    // Created by root, written by the sidecar after it drops privileges.
    for (const std::string& path : {c.state_dir, journal_path(c)}) {
      if (access(path.c_str(), F_OK) == 0 &&
          chown(path.c_str(), ap_unixd_config.user_id, ap_unixd_config.group_id) != 0) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, errno, s, "UT00031: cannot give %s to the httpd user",
                     path.c_str());
        return false;
      }
    }
  }
  return true;
}

// A data file's last good copy in the state directory: what a graceful
// restart falls back to when the file has meanwhile gone bad (a running
// server must not stop, nor forget its places, over a botched update).
std::string last_good_path(const ClusterConfig& c, const std::string& path) {
  std::string name = path;
  for (char& ch : name)
    if (ch == '/') ch = '_';
  return c.state_dir + "/last-good" + name;
}

bool read_file(const std::string& path, std::string* text, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  *text = ss.str();
  return true;
}

// Copies `path` to its last-good place (the state directory exists:
// prepare_state_dir made it) unless the copy is already the same size and
// not older. Written to a temporary file and renamed.
void keep_last_good(server_rec* s, const ClusterConfig& c, const std::string& path) {
  if (c.state_dir.empty()) return;
  const std::string copy = last_good_path(c, path);
  struct stat from {
  }, to{};
  if (stat(path.c_str(), &from) != 0) return;
  if (stat(copy.c_str(), &to) == 0 && to.st_size == from.st_size && to.st_mtime >= from.st_mtime) return;
  const std::string tmp = copy + ".tmp";
  std::ifstream in(path, std::ios::binary);
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  out << in.rdbuf();
  out.close();
  if (!in || !out || std::rename(tmp.c_str(), copy.c_str()) != 0) {
    std::remove(tmp.c_str());
    ap_log_error(APLOG_MARK, APLOG_WARNING, errno, s, "UT00053: cannot keep a last good copy of %s in %s", path.c_str(),
                 c.state_dir.c_str());
  }
}

bool restarting() { return ap_state_query(AP_SQ_CONFIG_GEN) > 0; }

// The location database and the shared-range files, read at -t and at
// every (re)start. At a restart a bad file falls back to its last good
// copy; at a first start or -t it stops httpd with a message that names
// the directive, the file and the fix.
bool load_data_files(server_rec* s, ClusterConfig& c) {
  std::string path = c.location_path;
  if (path.empty() && !c.location_off && access(cluster::kDebianLocationDatabase, F_OK) == 0) {
    path = cluster::kDebianLocationDatabase;
  }
  c.location.reset();
  if (!path.empty()) {
    std::string error;
    std::shared_ptr<const cluster::LocationDatabase> db = cluster::LocationDatabase::open(path, &error);
    if (!db && restarting()) {
      std::string ignored;
      db = cluster::LocationDatabase::open(last_good_path(c, path), &ignored);
      ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                   "UT00052: UriTokenLocationDatabase: %s; %s until it is fixed (e.g. 'location update')",
                   error.c_str(),
                   db ? "keeping the last good copy" : "no last good copy: places fall back to prefixes");
    } else if (!db) {
      ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, nullptr,
                   "UT00051: UriTokenLocationDatabase: %s; refresh it with 'location update' (Debian's location "
                   "package), point UriTokenLocationDatabase at a good copy, or set UriTokenLocationDatabase Off",
                   error.c_str());
      return false;
    }
    c.location = db;
  }
  c.shared_file_ranges.clear();
  for (const std::string& file : c.shared_network_files) {
    std::string text, error;
    SharedRangesResult parsed;
    if (read_file(file, &text, &error)) {
      parsed = parse_shared_ranges(text);
      if (!parsed.ok()) error = file + " line " + std::to_string(parsed.error_line) + ": " + parsed.error;
    }
    if (error.empty()) {
      c.shared_file_ranges.insert(c.shared_file_ranges.end(), parsed.ranges.begin(), parsed.ranges.end());
      continue;
    }
    if (restarting()) {
      std::string good, ignored;
      const bool have = read_file(last_good_path(c, file), &good, &ignored) && parse_shared_ranges(good).ok();
      if (have) {
        const auto ranges = parse_shared_ranges(good).ranges;
        c.shared_file_ranges.insert(c.shared_file_ranges.end(), ranges.begin(), ranges.end());
      }
      ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "UT00056: UriTokenSharedNetworkFile: %s; %s until it is fixed",
                   error.c_str(), have ? "keeping the last good copy" : "no last good copy: ignoring the file");
      continue;
    }
    ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, nullptr,
                 "UT00055: UriTokenSharedNetworkFile: %s; fix the file or remove the directive", error.c_str());
    return false;
  }
  return true;
}

}  // namespace

std::string journal_path(const ClusterConfig& conf) { return conf.state_dir + "/revocations.journal"; }
std::string sidecar_pid_path(const ClusterConfig& conf) { return conf.state_dir + "/sidecar.pid"; }

SharedState* shared_state() { return g_shared ? &*g_shared : nullptr; }

void wake_sidecar() {
  const std::uint64_t one = 1;
  // Non-blocking; a full counter (never, at 2^64 - 2) or an error only
  // leaves the sidecar to its next timer.
  if (g_doorbell >= 0) (void)!write(g_doorbell, &one, sizeof one);
}

namespace {
std::shared_ptr<const CountryTable> g_country_table;
}  // namespace

const CountryTable* country_table() { return g_country_table.get(); }

int load_country_table(server_rec* s) {
  g_country_table.reset();
  bool rules = false;
  for (server_rec* vs = s; vs != nullptr; vs = vs->next) rules = rules || country_rule_count(server_config(vs)) > 0;
  if (!rules) return OK;
  const ClusterConfig* c = server_config(s)->cluster;
  std::string path = c != nullptr ? c->location_path : "";
  if (path.empty() && (c == nullptr || !c->location_off)) path = cluster::kDebianLocationDatabase;
  std::string error = "UriTokenLocationDatabase is Off";
  std::unique_ptr<cluster::LocationDatabase> db;
  if (c == nullptr || !c->location_off) db = cluster::LocationDatabase::open(path, &error);
  if (!db) {
    ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, nullptr,
                 "UT00062: UriTokenCountries needs the location database: %s; install libloc-database (Debian) or "
                 "point UriTokenLocationDatabase at a database",
                 error.c_str());
    return HTTP_INTERNAL_SERVER_ERROR;
  }
  g_country_table = std::make_shared<const CountryTable>(db->country_table());
  return OK;
}

int check_cluster_config(server_rec* s) {
  // Not const: the data files are loaded into it here, at -t and every start.
  ClusterConfig* c = server_config(s)->cluster;
  if (c == nullptr) return OK;
  const char* problem = nullptr;
  if (sharing_on(c) && c->state_dir.empty()) {
    problem =
        "UriTokenSharing needs UriTokenStateDir, a directory that keeps the revocation journal across "
        "restarts (e.g. 'UriTokenStateDir /var/lib/apache2/uritoken')";
  } else if (!c->gossip_listen.empty() && !sharing_on(c)) {
    problem = "UriTokenGossipListen is set but UriTokenSharing is Off; add 'UriTokenSharing Enforce' (or Shadow)";
  } else if (!c->gossip_listen.empty() && c->cluster_key_file.empty()) {
    problem = "UriTokenGossipListen needs UriTokenClusterKeyFile (make one with 'uritoken cluster-keygen')";
  } else if (c->bulk_mode != SharingMode::off && !sharing_on(c)) {
    problem =
        "UriTokenBulk needs UriTokenSharing Shadow or Enforce: bulk use is judged from the sightings the "
        "sharing sidecar gathers; add 'UriTokenSharing Shadow' (or Enforce) and a UriTokenStateDir";
  } else if (!c->peers.empty() && c->gossip_listen.empty()) {
    problem = "UriTokenGossipPeer needs UriTokenGossipListen, the address this node gossips from";
  } else if (!c->subscriber_sharing.empty() && !sharing_on(c)) {
    problem =
        "UriTokenSubscriberSharing needs UriTokenSharing Shadow or Enforce: accounts are judged from the "
        "sightings the sharing sidecar gathers; add 'UriTokenSharing Shadow' (or Enforce) and a UriTokenStateDir";
  }
  for (const auto* list : {&c->client_sharing, &c->subscriber_sharing}) {
    for (const ClientSharing& cs : *list) {
      if (problem == nullptr && cs.window_seconds > c->window_seconds) {
        // The detector forgets a token's sightings after UriTokenSharingWindow.
        problem = apr_psprintf(s->process->pconf,
                               "%s %s: window=%u is longer than UriTokenSharingWindow (%u); "
                               "shorten it or raise UriTokenSharingWindow",
                               list == &c->client_sharing ? "UriTokenClientSharing" : "UriTokenSubscriberSharing",
                               cs.client.c_str(), cs.window_seconds, c->window_seconds);
      }
    }
  }
  if (problem != nullptr) {
    ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, nullptr, "UT00032: %s", problem);
    return HTTP_INTERNAL_SERVER_ERROR;
  }
  if (sharing_on(c) && !load_data_files(s, *c)) return HTTP_INTERNAL_SERVER_ERROR;
  return OK;
}

int start_cluster(apr_pool_t* pconf, apr_pool_t*, server_rec* s) {
  g_shared.reset();
  const ClusterConfig* c = cluster_config(s);
  // The first pass of post_config at startup only checks; the real one follows.
  if (!sharing_on(c) || ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) return OK;

  SharedStateLayout layout;
  layout.ring_slots = c->ring_slots;
  layout.table_slots = c->table_slots;
  // One repeat-filter entry per four tracked sessions: 2 MiB by default,
  // 4 MiB with the bulk signal's count words.
  layout.repeat_slots = std::max(8u, c->tracked_sessions / 4);
  layout.repeat_counts = c->bulk_mode != SharingMode::off;
  const std::size_t bytes = shared_state_bytes(layout);
  apr_shm_t* shm = nullptr;
  // APR keeps a size header at the start of the segment, so its base is
  // only 8-byte aligned: ask for a cache line more and align ourselves.
  if (apr_status_t rv = apr_shm_create(&shm, bytes + 64, nullptr, pconf); rv != APR_SUCCESS) {
    ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, rv, s,
                 "UT00033: cannot create %lu bytes of shared memory for link-sharing state",
                 static_cast<unsigned long>(bytes));
    return HTTP_INTERNAL_SERVER_ERROR;
  }
  auto* base = static_cast<unsigned char*>(apr_shm_baseaddr_get(shm));
  const std::size_t misalign = reinterpret_cast<std::uintptr_t>(base) % 64;
  const std::size_t skip = misalign == 0 ? 0 : 64 - misalign;
  g_shared = SharedState::format(base + skip, apr_shm_size_get(shm) - skip, layout);
  if (!g_shared) {
    ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, s, "UT00034: cannot lay out the shared memory");
    return HTTP_INTERNAL_SERVER_ERROR;
  }
  if (!prepare_state_dir(pconf, s, *c)) return HTTP_INTERNAL_SERVER_ERROR;
  g_doorbell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);  // inherited by fork: workers and sidecar
  if (g_doorbell < 0) {
    ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, errno, s,
                 "UT00050: cannot create the sidecar's eventfd (see errno)");
    return HTTP_INTERNAL_SERVER_ERROR;
  }
  apr_pool_cleanup_register(pconf, nullptr, close_doorbell, apr_pool_cleanup_null);

  // Revocations in force are refused from the first request of the new
  // generation on, before the sidecar has even started.
  std::string error;
  const auto entries = gossip::Journal::load(journal_path(*c), &error);
  if (!error.empty()) {
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "UT00014: revocation journal: %s", error.c_str());
  }
  std::size_t loaded = 0;
  for (const gossip::Revocation& e : entries) {
    if (e.pardon) continue;  // load() already dropped expired entries
    if (g_shared->set_revocation(cluster::table_record(e))) ++loaded;
  }
  ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
               "UT00011: link-sharing %s: %lu revocations loaded from the journal, %lu bytes of shared memory",
               c->mode == SharingMode::enforce ? "enforced" : "in shadow mode", static_cast<unsigned long>(loaded),
               static_cast<unsigned long>(bytes));
  if (c->location) {
    const std::time_t now = std::time(nullptr), built = c->location->created_at();
    const std::string age = cluster::describe_age(built, now);
    if (now - built > std::time_t{cluster::kLocationStaleDays} * 86400) {
      ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                   "UT00054: location database %s is %s: autonomous systems change hands and ranges move; refresh "
                   "it with 'location update' (Debian's location package; its timer does it daily)",
                   c->location->path().c_str(), age.c_str());
    }
    keep_last_good(s, *c, c->location->path());
  }
  for (const std::string& file : c->shared_network_files) keep_last_good(s, *c, file);

  g_pconf = pconf;
  g_server = s;
  g_conf = c;
  fork_sidecar(static_cast<apr_proc_t*>(apr_pcalloc(pconf, sizeof(apr_proc_t))));
  return OK;
}

}  // namespace uritoken::httpd
