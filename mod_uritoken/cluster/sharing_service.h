// SPDX-License-Identifier: Apache-2.0
// The decision path of link-sharing detection, from "a sighting leaves the
// shared-memory ring" to "a revocation record lands in shared memory and
// the journal", without httpd: the sidecar (mod_uritoken/httpd/sidecar.cc)
// only supplies the process around it (privileges, signals, the poll loop,
// the UDP socket), and the tests drive it in the deterministic simulation.
//
//   worker ring --drain()--> de-duplicate (same token, network, second)
//       -> classify the address (network, shared range, detected proxy)
//       -> its place (location database, once per network; location.h)
//       -> gossip::Node::report_sighting (routes to the token's owners)
//   owner: owned_sighting() -> SharingDetector -> verdict -> Node::decide
//   any node: revocation_changed() -> shared-memory table (publish)
//       -> journal (batched) -> log (fresh decisions one by one, a
//          catch-up from peers summed up in one line)
//
// It logs through the sink it is given (the error log in httpd, a capture
// in tests), as mod_md's core does. Not thread-safe: one thread drives it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "../../gossip/gossip.h"
#include "../../gossip/journal.h"
#include "control.h"
#include "shared_state.h"
#include "sharing.h"
#include "location.h"

namespace uritoken::cluster {

enum class LogLevel { notice, warn, error };
using LogSink = std::function<void(LogLevel, const std::string&)>;

// gossip::Revocation::reason
constexpr gossip::VerdictReason kReasonShared = gossip::VerdictReason::shared,
                                kReasonManual = gossip::VerdictReason::manual,
                                kReasonBulk = gossip::VerdictReason::bulk,
                                kReasonClient = gossip::VerdictReason::client;

struct ServiceConfig {
  SharingPolicy policy;      // policy.bulk.enabled: UriTokenBulk is Shadow or Enforce
  bool shadow = false;       // this node's UriTokenSharing is Shadow (wording of its log lines only)
  bool bulk_shadow = false;  // this node's UriTokenBulk is Shadow (likewise)
  std::string journal_path;  // "" keeps no journal (tests)
  std::shared_ptr<const LocationDatabase> location;  // nullptr: the fallback places
  // UriTokenMaxTTL + UriTokenClockSkew: how long a subscriber verdict must
  // hold to outlive every token issued before it.
  std::uint32_t longest_token_s = 7 * 86400 + 30;
};

// The table entry workers see for a token's winning CRDT entry. A verdict
// is a fact about the token: the old per-decision shadow flag is ignored,
// and each node applies its own mode at request time. A pardon clears it.
RevocationRecord table_record(const gossip::Revocation& winner);

// What a worker's sighting becomes on the wire.
gossip::SightingReport to_report(const Sighting& s, const NetworkId& net, const Place& place, bool shared_network);
NetworkId network_of_report(const gossip::SightingReport& r);
Place place_of_report(const gossip::SightingReport& r);

class SharingService : public gossip::Listener {
 public:
  SharingService(ServiceConfig config, SharedState& shared, LogSink log);

  // The journal: load (returns the entries, for Node::load), compact and
  // open for appends. false with *error if it cannot be written.
  bool open_journal(const gossip::RevocationSet& loaded_into, std::string* error);
  std::vector<gossip::Revocation> load_journal(std::string* error) const;

  // The gossip node this service feeds and listens to (its Listener must be
  // this service). Replaced when the node restarts (simulation).
  void attach(gossip::Node* node) { node_ = node; }

  // Publishes every entry of the node's set (after Node::load).
  void publish_all();

  // One turn of the sidecar loop: drains the ring into the node, flushes
  // the journal when due, and every few seconds expires old state.
  std::size_t drain(std::uint64_t now_ms);   // returns how many sightings it took
  void flush_journal(std::uint64_t now_ms);  // now_ms == 0: at once
  void housekeeping(std::uint64_t now_ms);

  // gossip::Listener
  void revocation_changed(const gossip::Revocation& winner) override;
  void member_changed(std::uint64_t node_id, int state) override;
  void owned_sighting(const gossip::SightingReport& r) override;

  // What happens, for tests: the wall clock the service uses for stamps.
  std::function<std::uint64_t()> clock;

  const SharingDetector& detector() const { return detector_; }
  // Account sharing's detector (key id 0, session the subscriber ref);
  // nullptr without UriTokenSubscriberSharing.
  const SharingDetector* subscriber_detector() const { return subscribers_.get(); }
  const PlaceResolver& places() const { return places_; }

  // The control socket's requests (docs/control-protocol.md): status,
  // revoke, pardon. Returns the response records (first "ok" or "error").
  std::vector<control::Record> handle(const control::Record& request);

 private:
  void report(const Sighting& s, std::uint64_t now_ms);
  void add_place_evidence(const SharingDetector& detector, const gossip::SightingReport& r, const SharingVerdict& v,
                          gossip::Revocation& rev) const;
  void judge_subscriber(const gossip::SightingReport& r, const NetworkId& net, const Place& place, bool shared_network);
  void judge_bulk(const gossip::SightingReport& r, const NetworkId& net, const Place& place);
  bool decided_before(const gossip::TokenRef& token, gossip::VerdictReason reason);
  gossip::Evidence::Network evidence_network(const NetworkId& n) const;
  gossip::Revocation verdict_for(const gossip::SightingReport& r, gossip::VerdictReason reason,
                                 unsigned networks) const;
  void publish(const gossip::Revocation& r);
  std::string member_name(std::uint64_t node_id) const;
  std::vector<control::Record> status() const;
  // status()'s parts: the other members, the networks (detected proxies and
  // configured shared ranges), the counters.
  void add_member_records(std::vector<control::Record>& out) const;
  void add_network_records(std::vector<control::Record>& out) const;
  void add_counter_records(std::vector<control::Record>& out) const;
  control::Record location_record() const;
  control::Record verdict_record(const gossip::Revocation& r) const;
  std::vector<control::Record> manual(const control::Record& request, bool pardon);
  std::vector<control::Record> decide_now(gossip::Revocation r, const control::Record& request,
                                          const std::string& user);
  std::vector<control::Record> decide_as_stamped(gossip::Revocation r, const control::Record& request,
                                                 const std::string& user);  // r.stamp_ms set
  // The client-site API's part on the node (docs/client-api.md): the
  // handler checked the signature; the node checks the nonce was not seen,
  // then revokes or reads the feed.
  bool fresh_nonce(const control::Record& request, std::uint64_t now_ms);
  std::vector<control::Record> client_revoke(const control::Record& request);
  std::vector<control::Record> client_revoke_before(gossip::Revocation r, const control::Record& request,
                                                    std::uint64_t before_s);
  std::vector<control::Record> client_feed(const control::Record& request);

  static constexpr std::uint64_t kFreshDecisionMs = 60000;
  static constexpr std::uint64_t kSubscriberSettleMs = 2000;  // judge_subscriber: uses this soon after a verdict
  static constexpr std::uint64_t kJournalFlushMs = 20;
  static constexpr std::uint64_t kHousekeepingMs = 5000;
  static constexpr std::size_t kPrefetchRun = 16;  // sightings whose detector lookups overlap

  ServiceConfig config_;
  SharedState& shared_;
  LogSink log_;
  NetworkClassifier classifier_;
  PlaceResolver places_;
  SharingDetector detector_;
  std::unique_ptr<SharingDetector> subscribers_;  // with subscriber limits only: its table is allocated up front
  BulkDetector bulk_;
  gossip::Node* node_ = nullptr;
  gossip::Journal journal_;
  bool journal_open_ = false;
  std::vector<gossip::Revocation> unjournaled_;
  std::uint64_t next_journal_flush_ = 0;
  std::uint64_t next_housekeeping_ = 0;
  std::size_t caught_up_ = 0;
  std::uint64_t journal_writes_ = 0;
  std::uint64_t revocations_applied_ = 0, pardons_applied_ = 0;  // changes of the table's verdicts
  std::uint64_t pardons_held_ = 0;                               // verdicts not reached again because a pardon holds
  // Nonces of client-API requests ("client\nnonce") and when to forget
  // them: after twice the window, when their time can no longer pass.
  std::map<std::string, std::uint64_t> nonces_;
  static constexpr std::size_t kMaxNonces = 100000;
  std::set<std::uint64_t> warned_same_name_;
  std::set<std::uint64_t> warned_policy_;
  std::vector<Sighting> batch_ = std::vector<Sighting>(1024);
};

}  // namespace uritoken::cluster
