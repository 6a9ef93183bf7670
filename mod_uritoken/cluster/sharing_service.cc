// SPDX-License-Identifier: Apache-2.0
// The decision path of link-sharing detection; see sharing_service.h.
#include "sharing_service.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>

#include "../core/client_api.h"
#include "../core/token.h"

namespace uritoken::cluster {

RevocationRecord table_record(const gossip::Revocation& winner) {
  RevocationRecord rec;
  rec.session = winner.token.session;
  rec.key_id = winner.token.key_id;
  rec.token_expires = winner.token_expires;
  rec.since = static_cast<std::uint32_t>(winner.stamp_ms / 1000);
  rec.state = winner.pardon                  ? RevocationState::none
              : winner.reason == kReasonBulk ? RevocationState::bulk
                                             : RevocationState::revoked;
  return rec;
}

gossip::SightingReport to_report(const Sighting& s, const NetworkId& net, const Place& place, bool shared_network) {
  gossip::SightingReport r;
  r.token.key_id = s.key_id;
  r.token.session = s.session;
  r.token_expires = s.token_expires;
  r.network[0] = net.v6 ? 6 : 4;
  std::memcpy(r.network + 1, net.bytes, net.v6 ? 16 : 4);
  r.shared_network = shared_network;
  r.client_hash = s.client_hash;
  r.time_ms = s.time_ms;
  r.place_kind = static_cast<std::uint8_t>(place.kind);
  r.place_id = place.id;
  std::memcpy(r.country, place.country, 2);
  r.requests = s.requests;
  r.bytes = s.bytes;
  return r;
}

Place place_of_report(const gossip::SightingReport& r) {
  Place p;
  p.kind = r.place_kind <= 3 ? static_cast<PlaceKind>(r.place_kind) : PlaceKind::none;
  p.id = r.place_id;
  std::memcpy(p.country, r.country, 2);
  return p;  // kind none (an older node): the detector takes the fallback
}

NetworkId network_of_report(const gossip::SightingReport& r) {
  NetworkId net;
  net.v6 = r.network[0] == 6;
  std::memcpy(net.bytes, r.network + 1, net.v6 ? 16 : 4);
  return net;
}

SharingService::SharingService(ServiceConfig config, SharedState& shared, LogSink log)
    : clock([] {
        return static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count());
      }),
      config_(std::move(config)),
      shared_(shared),
      log_(std::move(log)),
      classifier_(config_.policy),
      places_(config_.location),
      detector_(config_.policy),
      subscribers_(config_.policy.subscriber_limits.empty()
                       ? nullptr
                       : std::make_unique<SharingDetector>(subscriber_policy(config_.policy))),
      bulk_(config_.policy.bulk) {}

std::vector<gossip::Revocation> SharingService::load_journal(std::string* error) const {
  if (config_.journal_path.empty()) return {};
  std::string problem;
  auto entries = gossip::Journal::load(config_.journal_path, &problem);
  if (!problem.empty()) log_(LogLevel::warn, "UT00027: revocation journal: " + problem);
  if (error != nullptr) *error = problem;
  return entries;
}

bool SharingService::open_journal(const gossip::RevocationSet& loaded_into, std::string* error) {
  if (config_.journal_path.empty()) return true;
  // The journal is ours: compact it to what is in force, append from now on.
  journal_open_ =
      journal_.rewrite(config_.journal_path, loaded_into, error) && journal_.open_append(config_.journal_path, error);
  return journal_open_;
}

void SharingService::publish_all() {
  if (node_ != nullptr) node_->revocations().for_each([this](const gossip::Revocation& r) { publish(r); });
}

std::size_t SharingService::drain(std::uint64_t now_ms) {
  // Workers never wait for us; draining often keeps the ring short.
  std::size_t total = 0;
  for (std::size_t n; (n = shared_.drain(batch_.data(), batch_.size())) > 0;) {
    // In runs of kPrefetchRun, so the lines fetched for a run are still in
    // L1 when its sightings are reported. A sighting owned elsewhere
    // wastes its prefetches, which cost no wait.
    for (std::size_t run = 0; run < n; run += kPrefetchRun) {
      const std::size_t end = std::min(n, run + kPrefetchRun);
      for (std::size_t i = run; i < end; ++i) detector_.prefetch_fingerprints(batch_[i].key_id, batch_[i].session);
      for (std::size_t i = run; i < end; ++i) detector_.prefetch_slot(batch_[i].key_id, batch_[i].session);
      for (std::size_t i = run; i < end; ++i) report(batch_[i], now_ms);
    }
    total += n;
    if (n < batch_.size()) break;
  }
  return total;
}

void SharingService::report(const Sighting& s, std::uint64_t now_ms) {
  // Repeats (same token and network within 5 s) were skipped by the
  // workers (SharedState::check_repeat): each drained sighting says something.
  const NetworkId net = classifier_.network_of(s.address);
  const PlaceResolver::Answer where = places_.resolve(s.address, net);
  bool shared_network = classifier_.in_shared_range(s.address) || where.shared;
  // A subscriber's sighting repeats its token's: the proxy detector counts the token alone.
  shared_network =
      (is_subscriber(TokenId{s.key_id, s.session}) ? classifier_.is_detected_proxy(net, now_ms)
                                                   : classifier_.observe(net, s.session, s.client_hash, now_ms)) ||
      shared_network;
  if (node_ != nullptr) node_->report_sighting(to_report(s, net, where.place, shared_network), now_ms);
}

void SharingService::housekeeping(std::uint64_t now_ms) {
  if (now_ms < next_housekeeping_) return;
  // The detector table is tens of MiB: a twelfth of it every 5 s, so a
  // token idle past the window (10 minutes by default) is reclaimed within
  // a minute more, for a twelfth of the cache traffic of a whole sweep.
  detector_.expire_some(now_ms, detector_.capacity() / 12 + 1);
  if (subscribers_) subscribers_->expire_some(now_ms, subscribers_->capacity() / 12 + 1);
  shared_.sweep(static_cast<std::uint32_t>(now_ms / 1000));
  next_housekeeping_ = now_ms + kHousekeepingMs;
}

// Appends what changed since the last flush, with one fdatasync, at most
// every kJournalFlushMs (a crash loses at most that much, which peers give
// back at the next push-pull).
void SharingService::flush_journal(std::uint64_t now_ms) {
  if (unjournaled_.empty() || (now_ms != 0 && now_ms < next_journal_flush_)) return;
  if (journal_open_) {
    if (journal_.append(unjournaled_)) {
      ++journal_writes_;
    } else {
      log_(LogLevel::error, "UT00028: cannot append to the revocation journal");
    }
  }
  unjournaled_.clear();
  next_journal_flush_ = now_ms + kJournalFlushMs;
  if (caught_up_ > 0) {
    log_(LogLevel::notice, "UT00026: " + std::to_string(caught_up_) + " earlier revocation changes learnt from peers");
    caught_up_ = 0;
  }
}

void SharingService::publish(const gossip::Revocation& r) {
  const RevocationRecord rec = table_record(r);
  if (!shared_.set_revocation(rec) && rec.state != RevocationState::none) {
    log_(LogLevel::error, "UT00016: revocation table full; raise UriTokenRevocationSlots");
  }
}

std::string SharingService::member_name(std::uint64_t node_id) const {
  if (node_ != nullptr) {
    for (const gossip::Member& m : node_->members()) {
      if (m.node_id == node_id) return m.name;
    }
  }
  return "node " + std::to_string(node_id);
}

void SharingService::revocation_changed(const gossip::Revocation& winner) {
  // Both owners of a token may decide it; the later stamp wins everywhere.
  // That second change is journaled but not logged: the token's state did
  // not change.
  const std::uint32_t now_s = static_cast<std::uint32_t>(clock() / 1000);
  const bool was_revoked = shared_.lookup(winner.token.key_id, winner.token.session, now_s) != RevocationState::none;
  publish(winner);
  // A subscriber verdict (or its pardon) ends what was counted before it:
  // the tokens minted after it start afresh.
  if (subscribers_ && is_subscriber(winner.token)) subscribers_->forget(winner.token.key_id, winner.token.session);
  unjournaled_.push_back(winner);
  ++(winner.pardon ? pardons_applied_ : revocations_applied_);
  if (!winner.pardon && was_revoked) return;
  // Fresh decisions are logged one by one; a catch-up of old entries from
  // peers (thousands at once) is summed up in one line.
  if (clock() - winner.stamp_ms > kFreshDecisionMs) {
    ++caught_up_;
    return;
  }
  char session[17];
  std::snprintf(session, sizeof session, "%016llx", static_cast<unsigned long long>(winner.token.session));
  const bool bulk = winner.reason == kReasonBulk;
  const bool shadow = bulk ? config_.bulk_shadow : config_.shadow;
  log_(LogLevel::notice, std::string("UT00013: ") + (is_subscriber(winner.token) ? "subscriber " : "token ") +
                             (winner.pardon ? "pardoned"
                              : shadow      ? "would be revoked (shadow mode)"
                                            : "revoked") +
                             ": key " + std::to_string(winner.token.key_id) + ", session " + session + ", " +
                             (bulk ? std::string("bulk use") : std::to_string(winner.networks) + " networks") +
                             ", decided by " + member_name(winner.origin));
}

void SharingService::member_changed(std::uint64_t node_id, int state) {
  if (node_ == nullptr) return;
  std::string who = member_name(node_id);
  for (const gossip::Member& m : node_->members()) {
    if (m.node_id != node_id) continue;
    who += " (" + m.endpoint.to_string() + ")";
    if (m.name == node_->config().name && state == gossip::kAlive && warned_same_name_.insert(node_id).second) {
      log_(LogLevel::error, "UT00022: cluster member at " + m.endpoint.to_string() + " has this node's name '" +
                                m.name +
                                "': logs and the status page cannot tell them apart; give each node its own "
                                "UriTokenNodeName (or leave it unset: it defaults to the gossip address)");
    }
    const std::uint64_t ours = node_->config().policy_digest;
    if (state == gossip::kAlive && m.policy != 0 && ours != 0 && m.policy != ours &&
        warned_policy_.insert(node_id).second) {
      log_(LogLevel::warn, "UT00037: cluster member " + m.name + " (" + m.endpoint.to_string() +
                               ") judges link sharing with other settings than this node; UriTokenSharingNetworks, "
                               "UriTokenSharingWindow, UriTokenSharingConcurrency, UriTokenSharedNetwork, "
                               "UriTokenSharedNetworkDefaults, UriTokenClientSharing, UriTokenSubscriberSharing "
                               "and whether UriTokenBulk is on with its "
                               "UriTokenBulkLimit must be the same on every node, because a token's "
                               "owner nodes decide for the whole cluster");
    }
  }
  const char* what = state == gossip::kAlive ? "alive" : state == gossip::kSuspect ? "suspect" : "dead";
  log_(state == gossip::kAlive ? LogLevel::notice : LogLevel::warn, "UT00018: cluster member " + who + " is " + what);
}

namespace {

control::Record error_record(const std::string& message) {
  control::Record r;
  r.kind = "error";
  r.add("message", message);
  return r;
}

std::string hex64(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string format_evidence_network(const gossip::Evidence::Network& n) {
  NetworkId id;
  id.v6 = n.v6;
  std::memcpy(id.bytes, n.bytes, sizeof id.bytes);
  id.prefix_len = n.prefix_len;
  return format_network(id);
}

std::string two_digits(unsigned v) {
  char buf[4];
  std::snprintf(buf, sizeof buf, "%02u", v % 100);
  return buf;
}

// "AS7922 COMCAST-7922|2|c|10|1790000000|1790000300|US;net 5f3a09c1|1|s|5|0|0|": per place
// its name (the AS name from this node's database), networks inside,
// concurrent (c) or sequential (s), weight in tenths, first and last use
// (unix s, 0 unknown: a verdict from a node before protocol 4) and the
// country of its networks (this node's database; empty unknown). One
// field, so the control protocol's records stay flat
// (docs/control-protocol.md).
std::string format_places(const gossip::Evidence& e, const LocationDatabase* db) {
  std::string out;
  for (const gossip::Evidence::Place& p : e.places) {
    if (!out.empty()) out += ";";
    Place place;
    place.kind = p.kind == gossip::Evidence::Place::kAs ? PlaceKind::as : PlaceKind::fallback;
    place.id = p.id;
    std::string name = format_place(place);
    std::string country;
    if (db != nullptr && place.kind == PlaceKind::as) {
      std::string as = db->as_name(p.id);
      for (char& c : as)
        if (c == '|' || c == ';' || static_cast<unsigned char>(c) < 0x20) c = ' ';
      if (!as.empty()) name += " " + as.substr(0, 40);
      for (const gossip::Evidence::Network& n : e.networks) {  // the first of its networks the database places
        IpAddress a;
        a.v6 = n.v6;
        std::memcpy(a.bytes, n.bytes, a.v6 ? 16 : 4);
        const Location loc = db->lookup(a);
        if (loc.found && loc.asn == p.id && std::isupper(static_cast<unsigned char>(loc.country[0])) &&
            std::isupper(static_cast<unsigned char>(loc.country[1]))) {
          country.assign(loc.country, 2);
          break;
        }
      }
    }
    out += name + "|" + std::to_string(p.networks) + "|" + (p.concurrent ? "c" : "s") + "|" +
           std::to_string(p.weight_x10) + "|" + std::to_string(p.first_s) + "|" + std::to_string(p.last_s) + "|" +
           country;
  }
  return out;
}

// Each evidence network's place and country as this node's database sees
// them: "AS7922 US" (empty without a database).
std::string network_location(const gossip::Evidence::Network& n, const LocationDatabase* db) {
  if (db == nullptr) return "";
  IpAddress a;
  a.v6 = n.v6;
  std::memcpy(a.bytes, n.bytes, a.v6 ? 16 : 4);
  const Location loc = db->lookup(a);
  if (!loc.found) return "";
  std::string out = loc.asn != 0 ? "AS" + std::to_string(loc.asn) : "";
  if (loc.country[0] != 0) out += (out.empty() ? "" : " ") + std::string(loc.country, 2);
  return out;
}

const char* state_name(int state) {
  return state == gossip::kAlive ? "alive" : state == gossip::kSuspect ? "suspect" : "dead";
}

}  // namespace

std::vector<control::Record> SharingService::handle(const control::Record& request) {
  if (node_ == nullptr) return {error_record("the sidecar is starting")};
  if (request.kind == "status") return status();
  if (request.kind == "revoke") return manual(request, false);
  if (request.kind == "pardon") return manual(request, true);
  if (request.kind == "client-revoke") return client_revoke(request);
  if (request.kind == "client-feed") return client_feed(request);
  return {
      error_record("unknown request '" + request.kind + "': use status, revoke, pardon, client-revoke or client-feed")};
}

// One blocked or pardoned token for the status page, the CLI and the
// Prometheus output, with its evidence.
control::Record SharingService::verdict_record(const gossip::Revocation& r) const {
  control::Record rec;
  rec.kind = r.pardon ? "pardoned" : "blocked";
  rec.add("key", r.token.key_id).add("session", hex64(r.token.session)).add("expires", r.token_expires);
  rec.add("since_ms", r.stamp_ms)
      .add("reason", r.reason == kReasonManual   ? "manual"
                     : r.reason == kReasonBulk   ? "bulk"
                     : r.reason == kReasonClient ? "client"
                                                 : "auto");
  rec.add("origin", member_name(r.origin)).add("networks", r.networks);
  std::string nets;
  std::string where;
  for (std::size_t i = 0; i < r.evidence.networks.size(); ++i) {
    const auto& n = r.evidence.networks[i];
    // By position: an unknown location is an empty entry, never dropped.
    nets += (i ? "," : "") + format_evidence_network(n);
    where += (i ? "," : "") + network_location(n, places_.database());
  }
  if (!nets.empty()) rec.add("nets", nets);
  if (!nets.empty() && places_.database() != nullptr) rec.add("nets_where", where);
  if (r.evidence.first_seen_s != 0) rec.add("first", r.evidence.first_seen_s);
  if (r.evidence.last_seen_s != 0) rec.add("last", r.evidence.last_seen_s);
  if (!r.evidence.places.empty()) rec.add("places", format_places(r.evidence, places_.database()));
  if (!r.evidence.places.empty() && r.reason != kReasonBulk) {  // the places rule's score against its limit
    rec.add("score", std::to_string(r.evidence.score_x100 / 100) + "." + two_digits(r.evidence.score_x100 % 100));
    rec.add("limit", r.evidence.limit);
  }
  if (r.evidence.bulk_requests_per_min != 0 || r.evidence.bulk_bytes_per_min != 0) {
    rec.add("bulk_requests", r.evidence.bulk_requests_per_min).add("bulk_bytes", r.evidence.bulk_bytes_per_min);
  }
  if (!r.evidence.operator_address.empty()) rec.add("operator", r.evidence.operator_address);
  if (!r.evidence.user.empty()) rec.add("user", r.evidence.user);
  if (!r.evidence.comment.empty()) rec.add("comment", r.evidence.comment);
  return rec;
}

// Where places come from: the location database in use ("" none), and
// when it was built.
control::Record SharingService::location_record() const {
  control::Record location;
  location.kind = "location";
  if (const LocationDatabase* db = places_.database()) {
    location.add("path", db->path()).add("built", static_cast<std::uint64_t>(db->created_at()));
  } else {
    location.add("path", "");
  }
  return location;
}

std::vector<control::Record> SharingService::status() const {
  std::vector<control::Record> out;
  control::Record ok;
  ok.kind = "ok";
  ok.add("protocol", control::kProtocolVersion);
  out.push_back(ok);
  const gossip::Config& cfg = node_->config();
  control::Record self;
  self.kind = "node";
  self.add("name", cfg.name).add("id", hex64(cfg.node_id)).add("mode", config_.shadow ? "shadow" : "enforce");
  self.add("ready", node_->ready() ? 1 : 0).add("policy", hex64(cfg.policy_digest));
  if (!cfg.identity.empty()) self.add("identity", cfg.identity);
  self.add("members", node_->members().size());
  out.push_back(self);
  out.push_back(location_record());
  add_member_records(out);
  const auto now_s = static_cast<std::uint32_t>(clock() / 1000);
  node_->revocations().for_each([&](const gossip::Revocation& r) {
    if (r.token_expires < now_s) return;
    out.push_back(verdict_record(r));
  });
  add_network_records(out);
  add_counter_records(out);
  return out;
}

void SharingService::add_member_records(std::vector<control::Record>& out) const {
  const gossip::Config& cfg = node_->config();
  const auto members = node_->members();
  for (const gossip::Member& m : members) {
    if (m.node_id == cfg.node_id) continue;
    control::Record rec;
    rec.kind = "member";
    rec.add("name", m.name).add("id", hex64(m.node_id)).add("address", m.endpoint.to_string());
    rec.add("state", state_name(m.state)).add("incarnation", m.incarnation).add("policy", hex64(m.policy));
    rec.add("same_policy", m.policy == 0 || m.policy == cfg.policy_digest ? 1 : 0);
    if (!m.identity.empty()) rec.add("identity", m.identity);
    rec.add("last_contact_ms", m.last_heard_ms);
    rec.add("protocol", m.protocol_min == m.protocol_max
                            ? std::to_string(m.protocol_min)
                            : std::to_string(m.protocol_min) + "-" + std::to_string(m.protocol_max));
    out.push_back(rec);
  }
}

void SharingService::add_network_records(std::vector<control::Record>& out) const {
  for (NetworkId net : classifier_.detected_proxy_networks(clock(), 1000)) {
    if (net.prefix_len == 0)
      net.prefix_len = static_cast<std::uint8_t>(net.v6 ? config_.policy.ipv6_prefix : config_.policy.ipv4_prefix);
    control::Record rec;
    rec.kind = "proxy";
    rec.add("network", format_network(net));
    out.push_back(rec);
  }
  for (const IpPrefix& p : config_.policy.shared_ranges) {
    control::Record rec;
    rec.kind = "shared";
    rec.add("network", format_ip_prefix(p));
    out.push_back(rec);
  }
}

void SharingService::add_counter_records(std::vector<control::Record>& out) const {
  // Monotonic counts, and gauges (values that go up and down).
  auto counter = [&out](const char* name, std::uint64_t value, const char* type = "counter") {
    control::Record rec;
    rec.kind = "counter";
    rec.add("name", name).add("value", value).add("type", type);
    out.push_back(rec);
  };
  const gossip::Stats& st = node_->stats();
  counter("gossip_packets_in", st.packets_in);
  counter("gossip_packets_out", st.packets_out);
  counter("gossip_bytes_in", st.bytes_in);
  counter("gossip_bytes_out", st.bytes_out);
  counter("gossip_dropped_malformed", st.dropped_malformed);
  counter("gossip_dropped_auth", st.dropped_auth);
  counter("gossip_dropped_label", st.dropped_label);
  counter("gossip_dropped_replay", st.dropped_replay);
  counter("gossip_dropped_stale", st.dropped_stale);
  counter("gossip_dropped_oversized", st.dropped_oversized);
  counter("gossip_dropped_before_start", st.dropped_before_start);
  counter("gossip_dropped_version", st.dropped_version);
  counter("gossip_records_skipped", st.records_skipped);
  counter("gossip_packets_other_key", st.packets_other_key);
  counter("revocations_learned", st.revocations_learned);
  counter("sightings_sent", st.sightings_sent);
  counter("sightings_owned", st.sightings_owned);
  counter("sightings_rehomed", st.sightings_rehomed);
  counter("suspicions", st.suspicions);
  counter("deaths", st.deaths);
  counter("detected_proxies", classifier_.detected_proxies(clock()), "gauge");
  counter("tracked_sessions", detector_.tracked(), "gauge");
  if (subscribers_) counter("tracked_subscribers", subscribers_->tracked(), "gauge");
  const SharedCounters sc = shared_.counters();
  counter("sightings_written", sc.sightings_written);
  counter("sightings_dropped", sc.sightings_dropped);
  counter("sightings_drained", sc.sightings_drained);
  counter("revocation_table_full", sc.table_full);
  counter("revocations_in_table", sc.revocations_in_table, "gauge");
  counter("journal_writes", journal_writes_);
  counter("revocations_applied", revocations_applied_);
  counter("pardons_applied", pardons_applied_);
  counter("pardons_held", pardons_held_);
  counter("location_lookups", places_.lookups());
  counter("sidecar_restarts", sc.sidecar_restarts);
}

// A manual revoke or pardon: a new entry stamped now, spread like an
// automatic one; the operator's details travel as its evidence.
std::vector<control::Record> SharingService::manual(const control::Record& request, bool pardon) {
  const auto key = request.get_u64("key");
  const auto session = request.get_u64("session", 16);
  if (!key || *key > 0xffff || !session || request.get("session")->size() != 16) {
    return {error_record("give key=<key id> and session=<16 hex digits>")};
  }
  gossip::Revocation r;
  r.token = {static_cast<std::uint16_t>(*key), *session};
  const gossip::Revocation* known = node_->revocations().find(r.token);
  if (const auto expires = request.get_u64("expires"); expires && *expires <= 0xffffffffULL) {
    r.token_expires = static_cast<std::uint32_t>(*expires);
  } else if (known != nullptr) {
    r.token_expires = known->token_expires;
  } else {
    return {error_record("this node knows nothing of that token: give expires=<its expiry, unix seconds>")};
  }
  const std::uint64_t now = clock();
  if (r.token_expires < now / 1000) return {error_record("that token has expired already")};
  r.pardon = pardon;
  r.reason = kReasonManual;
  if (is_subscriber(r.token) && known != nullptr) {
    // A subscriber entry names its client as its user (the feed's filter,
    // the page's Client): keep it, and say who acted in the comment.
    control::Record by_operator;
    for (const auto& [name, value] : request.fields) {
      if (name != "comment") by_operator.add(name, value);
    }
    const std::string who = request.get("user").value_or(""), why = request.get("comment").value_or("");
    const std::string comment = who.empty() ? why : "by " + who + (why.empty() ? "" : ": " + why);
    if (!comment.empty()) by_operator.add("comment", comment);
    return decide_now(r, by_operator, known->evidence.user);
  }
  return decide_now(r, request, request.get("user").value_or(""));
}

namespace {
control::Record ok_record(const gossip::Revocation& r);
}  // namespace

// An operator's or a client site's verdict: stamped now (after the entry it
// replaces, so that it wins), spread like an automatic one, who asked and
// why as its evidence.
std::vector<control::Record> SharingService::decide_now(gossip::Revocation r, const control::Record& request,
                                                        const std::string& user) {
  const std::uint64_t now = clock();
  const gossip::Revocation* known = node_->revocations().find(r.token);
  r.stamp_ms = known != nullptr && known->stamp_ms >= now ? known->stamp_ms + 1 : now;
  return decide_as_stamped(r, request, user);
}

std::vector<control::Record> SharingService::decide_as_stamped(gossip::Revocation r, const control::Record& request,
                                                               const std::string& user) {
  r.origin = node_->config().node_id;
  r.evidence.operator_address = request.get("operator").value_or("").substr(0, gossip::Evidence::kMaxOperator);
  r.evidence.user = user.substr(0, gossip::Evidence::kMaxUser);
  r.evidence.comment = request.get("comment").value_or("").substr(0, gossip::Evidence::kMaxComment);
  node_->decide(r, clock());
  return {ok_record(r)};
}

namespace {
// The answer to a verdict by hand: which entry holds, and its stamp.
control::Record ok_record(const gossip::Revocation& r) {
  control::Record ok;
  ok.kind = "ok";
  ok.add("key", r.token.key_id).add("session", hex64(r.token.session)).add("stamp_ms", r.stamp_ms);
  return ok;
}

// An error the client-API handler passes on: `problem` is its name (client_api.h).
control::Record problem_record(const char* problem, const std::string& message) {
  control::Record r = error_record(message);
  r.add("problem", problem);
  return r;
}
}  // namespace

// A nonce is good once per client: remembered for twice the window, the
// longest a signed request's time stays acceptable. Full: refused, never
// forgotten early (which would let a replay through).
bool SharingService::fresh_nonce(const control::Record& request, std::uint64_t now_ms) {
  const std::string key = request.get("client").value_or("") + "\n" + request.get("nonce").value_or("");
  if (nonces_.size() >= kMaxNonces / 2) {
    for (auto it = nonces_.begin(); it != nonces_.end();) it = it->second <= now_ms ? nonces_.erase(it) : std::next(it);
  }
  if (nonces_.size() >= kMaxNonces) return false;
  return nonces_.emplace(key, now_ms + 2 * client_api::kWindowSeconds * 1000).second;
}

// A revocation the client site signed: like an operator's, stamped now,
// reason client, the site's address and name as its evidence.
std::vector<control::Record> SharingService::client_revoke(const control::Record& request) {
  const std::uint64_t now = clock();
  const auto key = request.get_u64("key");
  const auto session = request.get_u64("session", 16);
  const auto expires = request.get_u64("expires");
  if (!key || *key > 0xffff || !session || !expires || *expires > 0xffffffffULL || !request.get("client")) {
    return {problem_record("bad-request", "give client=, nonce=, key=, session= and expires=")};
  }
  if (*expires < now / 1000) return {problem_record("expired-token", "that token has expired already")};
  if (!fresh_nonce(request, now)) return {problem_record("replayed", "this request was seen already")};
  gossip::Revocation r;
  r.token = {static_cast<std::uint16_t>(*key), *session};
  r.token_expires = static_cast<std::uint32_t>(*expires);
  r.reason = kReasonClient;
  if (const auto before = request.get_u64("issued_before"); before && is_subscriber(r.token)) {
    return client_revoke_before(r, request, *before);
  }
  return decide_now(r, request, *request.get("client"));  // the site's client id is the user
}

// "Every token of this subscriber issued before T": the subscriber's entry
// stamped just before T (its stamp is the cut-off), the site's as for a
// logout. An entry that wins over it already answers: a later revocation
// covers those tokens too; a later pardon (an operator's) holds.
std::vector<control::Record> SharingService::client_revoke_before(gossip::Revocation r, const control::Record& request,
                                                                  std::uint64_t before_s) {
  if (before_s == 0 || before_s > clock() / 1000) {
    return {problem_record("bad-request", "issued_before= is after this node's clock")};
  }
  r.stamp_ms = before_s * 1000 - 1;
  r.origin = node_->config().node_id;
  const gossip::Revocation* known = node_->revocations().find(r.token);
  if (known == nullptr || !wins_over(*known, r)) return decide_as_stamped(r, request, *request.get("client"));
  if (known->pardon) {
    return {problem_record("superseded",
                           "this subscriber was pardoned after that time; leave issued_before= out to refuse every "
                           "token of it issued until now")};
  }
  return {ok_record(*known)};
}

// One page of a client's verdicts: those of its keys (`keys`, from the
// handler's key ring), in (stamp, key, session) order after the cursor.
// A scan of the set: a feed polled every few seconds costs some ms a
// million entries.
std::vector<control::Record> SharingService::client_feed(const control::Record& request) {
  std::set<std::uint16_t> keys;
  const std::string list = request.get("keys").value_or("");
  for (std::size_t at = 0; at < list.size();) {
    const std::size_t comma = std::min(list.find(',', at), list.size());
    keys.insert(static_cast<std::uint16_t>(std::strtoul(list.substr(at, comma - at).c_str(), nullptr, 10)));
    at = comma + 1;
  }
  const auto after = client_api::parse_cursor(request.get("after").value_or(""));
  const unsigned limit =
      static_cast<unsigned>(std::min<std::uint64_t>(request.get_u64("limit").value_or(100), client_api::kFeedMaxLimit));
  if (!request.get("client") || keys.empty() || limit == 0 || (request.get("after") && !after)) {
    return {problem_record("bad-request", "give client=, nonce=, keys=, limit= and after= (a cursor) or none")};
  }
  if (!fresh_nonce(request, clock())) return {problem_record("replayed", "this request was seen already")};
  auto cursor_of = [](const gossip::Revocation& r) {
    return client_api::Cursor{r.stamp_ms, r.token.key_id, r.token.session};
  };
  std::vector<const gossip::Revocation*> page;
  node_->revocations().for_each([&](const gossip::Revocation& r) {
    // The client's tokens, and its subscriber verdicts (their evidence names the client).
    const bool mine = keys.count(r.token.key_id) != 0 ||
                      (r.token.key_id == kSubscriberKeyId && r.evidence.user == request.get("client").value_or(""));
    if (!mine || (after && !(*after < cursor_of(r)))) return;
    page.push_back(&r);
  });
  const auto by_cursor = [&](const gossip::Revocation* a, const gossip::Revocation* b) {
    return cursor_of(*a) < cursor_of(*b);
  };
  const bool more = page.size() > limit;
  if (more) {
    std::nth_element(page.begin(), page.begin() + limit, page.end(), by_cursor);
    page.resize(limit);
  }
  std::sort(page.begin(), page.end(), by_cursor);
  control::Record ok;
  ok.kind = "ok";
  std::vector<control::Record> out{ok};
  for (const gossip::Revocation* r : page) out.push_back(verdict_record(*r));
  control::Record end;
  end.kind = "page";
  end.add("next",
          page.empty() ? request.get("after").value_or("") : client_api::format_cursor(cursor_of(*page.back())));
  end.add("more", more ? 1 : 0);
  out.push_back(end);
  return out;
}

gossip::Evidence::Network SharingService::evidence_network(const NetworkId& n) const {
  gossip::Evidence::Network net;
  net.v6 = n.v6;
  net.prefix_len = n.prefix_len != 0
                       ? n.prefix_len
                       : static_cast<std::uint8_t>(n.v6 ? config_.policy.ipv6_prefix : config_.policy.ipv4_prefix);
  std::memcpy(net.bytes, n.bytes, sizeof net.bytes);
  return net;
}

void SharingService::owned_sighting(const gossip::SightingReport& r) {
  if (node_ == nullptr) return;
  const NetworkId net = network_of_report(r);
  Place place = place_of_report(r);
  bool shared_network = r.shared_network;
  if (place.kind == PlaceKind::none && places_.database() != nullptr) {
    // From a protocol 2 node, which sends no place: placed here as this
    // node places its own, or a rolling upgrade would count one home as
    // an AS and a fallback /16, two places.
    IpAddress a;
    a.v6 = net.v6;
    std::memcpy(a.bytes, net.bytes, sizeof a.bytes);
    const PlaceResolver::Answer where = places_.resolve(a, net);
    place = where.place;
    shared_network = shared_network || where.shared;
  }
  if (is_subscriber(r)) return judge_subscriber(r, net, place, shared_network);
  if (config_.policy.bulk.enabled) judge_bulk(r, net, place);
  const SharingVerdict v = detector_.observe(r.token.key_id, r.token.session, r.token_expires, net, place,
                                             shared_network, r.time_ms, r.client_hash);
  if (!v.shared || decided_before(r.token, kReasonShared)) return;
  gossip::Revocation rev = verdict_for(r, kReasonShared, v.networks);
  add_place_evidence(detector_, r, v, rev);
  node_->decide(rev, rev.stamp_ms);
}

// Account sharing (UriTokenSubscriberSharing): the uses of all of a
// subscriber's tokens, counted by its ref's owners by the places rule
// under the client's subscriber limit. The verdict is the subscriber's one
// entry: every token of it issued until then is refused on every node,
// for as long as such a token can live; tokens minted later start afresh.
void SharingService::judge_subscriber(const gossip::SightingReport& r, const NetworkId& net, const Place& place,
                                      bool shared_network) {
  const ClientSharingLimit* limit = subscriber_limit(config_.policy, r.client_hash);
  if (!subscribers_ || limit == nullptr) return;  // a peer with other settings: UT00037 warned
  const gossip::Revocation* known = node_->revocations().find(r.token);
  // A use from before the verdict in force, or from a node that had not
  // heard of it yet (it spreads in well under kSubscriberSettleMs), belongs
  // to what it judged already: counting it again would stamp the verdict
  // anew and cut off the tokens the site minted meanwhile.
  if (known != nullptr && !known->pardon && r.time_ms <= known->stamp_ms + kSubscriberSettleMs) return;
  const SharingVerdict v = subscribers_->observe(r.token.key_id, r.token.session, r.token_expires, net, place,
                                                 shared_network, r.time_ms, r.client_hash);
  if (!v.shared) return;
  if (known != nullptr && known->pardon) {  // an operator's pardon holds until it expires
    ++pardons_held_;
    return;
  }
  gossip::Revocation rev = verdict_for(r, kReasonShared, v.networks);
  rev.token_expires = static_cast<std::uint32_t>(rev.stamp_ms / 1000) + config_.longest_token_s;
  add_place_evidence(*subscribers_, r, v, rev);
  rev.evidence.user = limit->client.substr(0, gossip::Evidence::kMaxUser);  // whose subscriber: the feed's filter
  char score[16];
  std::snprintf(score, sizeof score, "%.2f", v.score);
  log_(LogLevel::notice, "UT00064: subscriber " + hex64(r.token.session) + " of client " + limit->client +
                             " is sharing the account (" + std::to_string(v.places) + " places, score " + score +
                             ", UriTokenSubscriberSharing places=" + std::to_string(v.limit) +
                             "): its tokens issued until now are refused");
  node_->decide(rev, rev.stamp_ms);
}

// A verdict in force is not decided again, and a pardon holds for the
// token's life: only an operator (or the client site) revokes it again.
// One exception: a token in bulk use that is then found shared gets the
// sharing verdict (a later stamp wins), so every node's UriTokenSharing,
// not only its UriTokenBulk, applies to a link that has leaked.
bool SharingService::decided_before(const gossip::TokenRef& token, gossip::VerdictReason reason) {
  const gossip::Revocation* known = node_->revocations().find(token);
  if (known == nullptr) return false;
  if (known->pardon) {
    ++pardons_held_;
    return true;
  }
  return !(known->reason == kReasonBulk && reason != kReasonBulk);
}

gossip::Revocation SharingService::verdict_for(const gossip::SightingReport& r, gossip::VerdictReason reason,
                                               unsigned networks) const {
  gossip::Revocation rev;
  rev.token = r.token;
  rev.token_expires = r.token_expires;
  rev.stamp_ms = clock();
  rev.shadow = false;  // a verdict is a fact: every node applies its own UriTokenSharing/UriTokenBulk to it
  rev.origin = node_->config().node_id;
  rev.reason = reason;
  rev.networks = static_cast<std::uint8_t>(std::min(networks, 255u));
  return rev;
}

// The bulk signal (cluster/bulk.h): every owned sighting's counts go into the
// token's volume; over the limit, a verdict of reason bulk with the rate
// and the place the latest requests came from.
void SharingService::judge_bulk(const gossip::SightingReport& r, const NetworkId& net, const Place& place) {
  const BulkVerdict b = bulk_.observe(r.token.key_id, r.token.session, r.requests, r.bytes, r.time_ms);
  if (!b.bulk || decided_before(r.token, kReasonBulk)) return;
  gossip::Revocation rev = verdict_for(r, kReasonBulk, 1);
  rev.evidence.bulk_requests_per_min = b.requests_per_min;
  rev.evidence.bulk_bytes_per_min = b.bytes_per_min;
  const Place where = place.kind == PlaceKind::none ? fallback_place(net) : place;
  gossip::Evidence::Place e;
  e.kind = where.kind == PlaceKind::as ? gossip::Evidence::Place::kAs : 0;
  e.id = where.id;
  e.networks = 1;
  e.weight_x10 = 10;
  const auto now_s = static_cast<std::uint32_t>(r.time_ms / 1000);
  e.first_s = std::min(b.since_s, now_s);  // the first use the rate covers
  e.last_s = now_s;
  rev.evidence.places.push_back(e);
  rev.evidence.networks.push_back(evidence_network(net));
  rev.evidence.first_seen_s = e.first_s;
  rev.evidence.last_seen_s = now_s;
  log_(LogLevel::notice, "UT00057: token in bulk use (" + std::to_string(b.requests_per_min) + " requests and " +
                             control::format_bytes(b.bytes_per_min) + " a minute over " + std::to_string(kBulkWindowS) +
                             " s; UriTokenBulkLimit requests=" + std::to_string(config_.policy.bulk.requests_per_min) +
                             " bytes=" + std::to_string(config_.policy.bulk.bytes_per_min) + "): key " +
                             std::to_string(r.token.key_id) + ", session " + hex64(r.token.session));
  node_->decide(rev, rev.stamp_ms);
}

// The evidence every node's status page shows: the networks, the places
// they are in and what each weighed, and the score against the limit.
void SharingService::add_place_evidence(const SharingDetector& detector, const gossip::SightingReport& r,
                                        const SharingVerdict& v, gossip::Revocation& rev) const {
  for (const PlaceEvidence& p : detector.places_of(r.token.key_id, r.token.session)) {
    if (rev.evidence.places.size() == gossip::Evidence::kMaxPlaces) break;
    gossip::Evidence::Place e;
    e.kind = p.place.kind == PlaceKind::as ? gossip::Evidence::Place::kAs : 0;
    e.id = p.place.id;
    e.networks = static_cast<std::uint8_t>(std::min(p.networks, 255u));
    e.concurrent = p.concurrent;
    e.weight_x10 = static_cast<std::uint8_t>(std::min(255.0, p.weight * 10 + 0.5));
    e.last_s = p.last_s;
    rev.evidence.places.push_back(e);
  }
  rev.evidence.score_x100 = static_cast<std::uint16_t>(std::min(65535.0, v.score * 100 + 0.5));
  rev.evidence.limit = static_cast<std::uint8_t>(std::min(255u, v.limit));
  const std::vector<NetworkEvidence> networks = detector.networks_of(r.token.key_id, r.token.session);
  for (const NetworkEvidence& n : networks) {
    if (rev.evidence.networks.size() == gossip::Evidence::kMaxNetworks) break;
    rev.evidence.networks.push_back(evidence_network(n.network));
  }
  // Each place's first and last use: its networks' (the network log),
  // and the slot's last use of it.
  for (gossip::Evidence::Place& p : rev.evidence.places) {
    for (const NetworkEvidence& n : networks) {
      if (n.place.id != p.id || (n.place.kind == PlaceKind::as) != (p.kind == gossip::Evidence::Place::kAs)) continue;
      p.first_s = p.first_s == 0 ? n.first_s : std::min(p.first_s, n.first_s);
      p.last_s = std::max(p.last_s, n.last_s);
    }
  }
  const auto [first_s, last_s] = detector.seen_span(r.token.key_id, r.token.session);
  rev.evidence.first_seen_s = first_s;
  rev.evidence.last_seen_s = std::max(last_s, static_cast<std::uint32_t>(r.time_ms / 1000));
}

}  // namespace uritoken::cluster
