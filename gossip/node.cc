// SPDX-License-Identifier: Apache-2.0
#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "gossip.h"
#include "wire.h"
#include "../mod_uritoken/core/mix.h"

namespace uritoken::gossip {
namespace {

constexpr std::uint64_t kExpireEveryMs = 1000;
// While not ready, push-pull this often, but not while a transfer is flowing.
constexpr std::uint64_t kJoinRetryMs = 500;
constexpr std::uint64_t kTransferQuietMs = 200;
constexpr std::size_t kWelcomers = 3;          // members that sync with one back from dead
constexpr std::uint64_t kSettleWelcomers = 4;  // probe intervals alive before a member welcomes
constexpr std::size_t kMaxToldSuspects = 4;    // suspects told of it each probe interval
constexpr std::uint64_t kRestartJump = 1000;   // incarnation jump that means a restart (see set_state)

}  // namespace

Node::Node(Config config, Transport& transport, Listener& listener, std::uint64_t now_ms, std::uint64_t seed)
    : cfg_(std::move(config)), transport_(transport), listener_(listener), rng_(seed) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium initialisation failed");
  // Room for a PP-ROOT (270 bytes) and for the largest REVOKE, so a stream
  // never meets an entry it cannot send.
  constexpr std::size_t kMinRoom = std::max<std::size_t>(300, wire::kMaxRevocationSize);
  const std::size_t least = wire::kOverhead + kMinRoom + cfg_.test_extra_records.size();
  if (cfg_.max_packet < least) cfg_.max_packet = least;
  keys_.push_back(cfg_.cluster_key);
  keys_.insert(keys_.end(), cfg_.other_keys.begin(), cfg_.other_keys.end());
  if (cfg_.owners == 0) cfg_.owners = 1;
  now_ = now_ms;
  born_ms_ = now_ms;
  drops_since_ms_ = now_ms;
  label_tag_ = wire::label_tag(cfg_.cluster_label);
  // Both survive a restart with the same node id: the wall clock moves on, so
  // peers neither take our packets for replays nor our ALIVE for stale news.
  counter_ = now_ms << 16;
  incarnation_ = now_ms;
  membership_changed();
}

Node::~Node() = default;

void Node::load(const std::vector<Revocation>& entries) {
  auto now_s = static_cast<std::uint32_t>(now_ / 1000);
  for (const auto& r : entries) {
    if (r.token_expires < now_s) continue;
    if (r.evidence.empty()) {
      set_.merge(r);
      continue;
    }
    Revocation c = r;  // as in decide(): hold what peers decode
    c.evidence = wire::canonical(r.evidence);
    set_.merge(c);
  }
}

void Node::start(std::uint64_t now_ms) {
  now_ = now_ms;
  started_ = true;
  enqueue_member(self_member());
  std::uniform_int_distribution<std::uint64_t> jitter(0, cfg_.probe_interval_ms);
  next_probe_ = now_ms + jitter(rng_);
  next_gossip_ = now_ms + cfg_.gossip_interval_ms;
  next_expire_ = now_ms + kExpireEveryMs;
  bool any_seed = false;
  for (const auto& s : cfg_.seeds) {
    if (s == cfg_.self) continue;
    any_seed = true;
    wire::PpRoot root;
    root.member_hash = member_hash();
    root.count = static_cast<std::uint32_t>(set_.size());
    for (std::size_t g = 0; g < RevocationSet::kGroups; ++g) root.groups[g] = set_.group_hash(g);
    std::vector<std::uint8_t> payload;
    wire::encode({root}, payload);
    send_packet(s, payload, true);
  }
  if (!any_seed) ready_ = true;
  next_pushpull_ = now_ms + (ready_ ? cfg_.pushpull_interval_ms : kJoinRetryMs);
}

// ---------------------------------------------------------------- packets

std::size_t Node::payload_room() const { return cfg_.max_packet - wire::kOverhead - cfg_.test_extra_records.size(); }

void Node::send_packet(const Endpoint& to, std::vector<std::uint8_t>& payload, bool pb) {
  if (pb) piggyback(payload, payload_room());
  if (payload.empty()) return;
  payload.insert(payload.end(), cfg_.test_extra_records.begin(), cfg_.test_extra_records.end());
  wire::Header h{cfg_.node_id, ++counter_, now_};
  auto pkt = wire::seal(cfg_.cluster_key, cfg_.cluster_label, h, payload.data(), payload.size());
  ++stats_.packets_out;
  stats_.bytes_out += pkt.size();
  transport_.send(to, pkt.data(), pkt.size());
}

// Membership news: retransmit_mult * ceil(log10(N+1)) sends, as memberlist.
// Revocations are rare and must reach the last node: log2 instead, so every
// node passes each one to ~3*log2(N) random peers, which leaves an expected
// N * exp(-3 log2(N) * (1 - loss)) nodes missed (about 1e-4 at N=1000 and
// 30% loss) before push-pull repairs the rest.
unsigned Node::retransmit_limit(bool member) const {
  double n = static_cast<double>(live_mixed_.size()) + 1;
  double l = member ? std::log10(n) : std::log2(n);
  return cfg_.retransmit_mult * std::max(1u, static_cast<unsigned>(std::ceil(l)));
}

void Node::piggyback(std::vector<std::uint8_t>& payload, std::size_t room) {
  if (broadcasts_.empty()) return;
  // Take what fits, fewest transmissions first, revocations before
  // membership news, FIFO within a level. Under churn the queue holds up to
  // one entry per member, so no full scan: stop when no record can fit any
  // more or after a few that did not.
  // MEMBER, IPv4, no name (a REVOKE without evidence is 2 bytes longer)
  constexpr std::size_t kSmallestRecord = wire::kRecordHeaderSize + 8 + 8 + 1 + 1 + 4 + 2 + 1 + 8 + 2;
  constexpr unsigned kMaxSkips = 16;
  const unsigned limit[2] = {retransmit_limit(false), retransmit_limit(true)};
  struct Sent {
    bool member;
    unsigned level;
    BroadcastList::iterator it;
  };
  std::vector<Sent> sent;
  unsigned skips = 0;
  bool full = false;
  std::size_t levels = std::max(broadcasts_.level[0].size(), broadcasts_.level[1].size());
  for (unsigned t = 0; t < levels && !full; ++t) {
    for (bool member : {false, true}) {
      auto& lv = broadcasts_.level[member];
      if (t >= lv.size()) continue;
      for (auto it = lv[t].begin(); it != lv[t].end(); ++it) {
        if (payload.size() + kSmallestRecord > room) {
          full = true;
          break;
        }
        if (payload.size() + it->record.size() > room) {
          if (++skips > kMaxSkips) {
            full = true;
            break;
          }
          continue;
        }
        payload.insert(payload.end(), it->record.begin(), it->record.end());
        sent.push_back({member, t, it});
      }
      if (full) break;
    }
  }
  // Move what was sent one level on (or drop it at its limit). Lists keep
  // their iterators across splices, so the index stays valid.
  for (const Sent& x : sent) {
    auto& lv = broadcasts_.level[x.member];
    auto& index = broadcasts_.index[x.member];
    unsigned next = x.level + 1;
    if (next >= limit[x.member]) {
      index.erase(x.it->key);
      lv[x.level].erase(x.it);
      --broadcasts_.size;
      continue;
    }
    if (lv.size() <= next) lv.resize(next + 1);
    lv[next].splice(lv[next].end(), lv[x.level], x.it);
    index[x.it->key].first = next;
  }
}

void Node::enqueue(std::uint64_t key, bool is_member, std::vector<std::uint8_t> record) {
  auto& lv = broadcasts_.level[is_member];
  auto& index = broadcasts_.index[is_member];
  if (broadcasts_.empty()) next_gossip_ = std::max(next_gossip_, now_ + cfg_.gossip_interval_ms);
  if (lv.empty()) lv.resize(1);
  auto [it, fresh] = index.try_emplace(key);
  if (!fresh) {  // newer news replaces the queued entry and starts over
    lv[it->second.first].erase(it->second.second);
    --broadcasts_.size;
  }
  lv[0].push_back(Broadcast{key, std::move(record)});
  it->second = {0, std::prev(lv[0].end())};
  ++broadcasts_.size;
}

void Node::receive(const Endpoint& from, const std::uint8_t* data, std::size_t size, std::uint64_t now_ms) {
  now_ = now_ms;
  ++stats_.packets_in;
  stats_.bytes_in += size;
  if (size > cfg_.max_packet) return drop(from, DropKind::kOversized);
  wire::Header h;
  std::vector<std::uint8_t> payload;
  std::size_t key_index = 0;
  switch (wire::open(keys_, cfg_.cluster_label, data, size, h, payload, &key_index)) {
    case wire::OpenResult::kMalformed: return drop(from, DropKind::kMalformed);
    case wire::OpenResult::kOtherVersion: return drop(from, DropKind::kVersion);
    case wire::OpenResult::kLabel: return drop(from, DropKind::kLabel);
    case wire::OpenResult::kAuth: return drop(from, DropKind::kAuth);
    case wire::OpenResult::kOk: break;
  }
  std::uint64_t age = now_ms > h.time_ms ? now_ms - h.time_ms : h.time_ms - now_ms;
  if (age > cfg_.max_packet_age_ms) return drop(from, DropKind::kStale);
  // Sliding window of 64 counters per sender; our own packets echoed back
  // count as replays too.
  if (h.sender == cfg_.node_id) return drop(from, DropKind::kReplay);
  // The window is empty after a restart, so it cannot tell a packet captured
  // before the restart from a new one; the sender's timestamp can. Checked
  // before the window so such a packet does not move it either.
  if (h.time_ms < born_ms_) return drop(from, DropKind::kBeforeStart);
  ReplayWindow& w = replay_[h.sender];
  if (h.counter > w.max) {
    std::uint64_t shift = h.counter - w.max;
    w.bits = shift >= 64 ? 1 : (w.bits << shift) | 1;
    w.max = h.counter;
  } else {
    std::uint64_t d = w.max - h.counter;
    if (d >= 64 || (w.bits >> d & 1)) return drop(from, DropKind::kReplay);
    w.bits |= 1ULL << d;
  }
  auto decoded = wire::decode_payload(payload.data(), payload.size());
  if (!decoded) return drop(from, DropKind::kMalformed);
  stats_.records_skipped += decoded->skipped;
  if (key_index != 0) ++stats_.packets_other_key;
  if (auto it = peers_.find(h.sender); it != peers_.end()) it->second.m.last_heard_ms = now_ms;
  if (!started_ || left_) return;
  bool learned = false;
  for (const auto& m : decoded->messages) handle(from, h.sender, m, now_ms, learned);
  // Forward news on first receipt, without waiting for the gossip timer.
  if (learned) gossip(cfg_.fanout, h.sender);
}

void Node::drop(const Endpoint& from, DropKind kind) {
  std::uint64_t* const counters[kDropKinds] = {
      // in DropKind order
      &stats_.dropped_oversized, &stats_.dropped_malformed,    &stats_.dropped_label,  &stats_.dropped_auth,
      &stats_.dropped_stale,     &stats_.dropped_before_start, &stats_.dropped_replay, &stats_.dropped_version};
  const auto k = static_cast<std::size_t>(kind);
  ++*counters[k];
  for (std::size_t i = 0; i < drop_sender_count_; ++i) {
    if (drop_senders_[i].from == from) {
      ++drop_senders_[i].count[k];
      return;
    }
  }
  if (drop_sender_count_ < drop_senders_.size()) {
    DropReport::Sender& s = drop_senders_[drop_sender_count_++];
    s.from = from;
    s.count = {};
    s.count[k] = 1;
    return;
  }
  ++drop_others_[k];
}

DropReport Node::take_drop_report(std::uint64_t now_ms) {
  DropReport r;
  r.since_ms = drops_since_ms_;
  r.until_ms = now_ms;
  r.senders.assign(drop_senders_.begin(), drop_senders_.begin() + drop_sender_count_);
  r.others = drop_others_;
  drop_sender_count_ = 0;
  drop_others_ = {};
  drops_since_ms_ = now_ms;
  return r;
}

void Node::handle(const Endpoint& from, std::uint64_t sender, const wire::Message& m, std::uint64_t now_ms,
                  bool& learned) {
  if (auto* ping = std::get_if<wire::Ping>(&m.v)) {
    if (ping->target != cfg_.node_id) return;  // meant for a previous owner of that address
    std::vector<std::uint8_t> payload;
    wire::encode({wire::Ack{ping->seq}}, payload);
    tell_if_suspected(sender, payload);
    send_packet(from, payload, true);
  } else if (auto* req = std::get_if<wire::PingReq>(&m.v)) {
    std::uint32_t seq = ++seq_;
    relays_[seq] = IndirectRelay{from, req->seq, now_ms + cfg_.probe_interval_ms};
    std::vector<std::uint8_t> payload;
    wire::encode({wire::Ping{seq, req->target}}, payload);
    send_packet(req->target_ep, payload, true);
  } else if (auto* ack = std::get_if<wire::Ack>(&m.v)) {
    if (probe_target_ && ack->seq == probe_seq_) {
      // Answered directly within the timeout: healthier. An ACK relayed by a
      // helper leaves the score alone (as memberlist).
      if (!probe_acked_ && !probe_indirect_sent_) adjust_health(-1);
      probe_acked_ = true;
    } else if (auto it = relays_.find(ack->seq); it != relays_.end()) {
      std::vector<std::uint8_t> payload;
      wire::encode({wire::Ack{it->second.seq}}, payload);
      Endpoint to = it->second.requester;
      relays_.erase(it);
      send_packet(to, payload, true);
    }
  } else if (auto* mem = std::get_if<Member>(&m.v)) {
    apply_member(*mem, now_ms, from, sender);
  } else if (auto* rev = std::get_if<Revocation>(&m.v)) {
    last_revocation_rx_ = now_ms;
    if (rev->token_expires < now_ms / 1000) return;
    if (set_.merge(*rev)) {
      ++stats_.revocations_learned;
      learned = true;
      enqueue_revocation(*rev);
      listener_.revocation_changed(*rev);
    }
  } else if (auto* s = std::get_if<SightingReport>(&m.v)) {
    ++stats_.sightings_owned;
    listener_.owned_sighting(*s);
  } else if (auto* root = std::get_if<wire::PpRoot>(&m.v)) {
    on_root(from, sender, *root);
  } else if (auto* group = std::get_if<wire::PpGroup>(&m.v)) {
    on_group(from, *group);
  }
}

// ------------------------------------------------------------- membership

Member Node::self_member() const {
  Member m;
  m.node_id = cfg_.node_id;
  m.name = cfg_.name.substr(0, wire::kMaxName);
  m.endpoint = cfg_.self;
  m.state = left_ ? kDead : kAlive;
  m.incarnation = incarnation_;
  m.policy = cfg_.policy_digest;
  m.protocol_min = wire::kProtocolMin;
  m.protocol_max = wire::kProtocolMax;
  m.identity = cfg_.identity;
  return m;
}

std::vector<Member> Node::members() const {
  std::vector<Member> out{self_member()};
  for (const auto& [id, p] : peers_) out.push_back(p.m);
  std::sort(out.begin() + 1, out.end(), [](const Member& a, const Member& b) { return a.node_id < b.node_id; });
  return out;
}

const std::vector<const Node::Peer*>& Node::live_peers() const { return live_; }

// Lifeguard's local health: a failed probe or a refutation of our own
// suspicion makes us less sure of ourselves, a probe answered in time more.
void Node::adjust_health(int delta) {
  int h = static_cast<int>(health_) + delta;
  int top = static_cast<int>(std::max(1u, cfg_.health_max_mult)) - 1;
  health_ = static_cast<unsigned>(std::clamp(h, 0, top));
}

// Lifeguard-style scaling: larger clusters need longer to spread a refutation.
std::uint64_t Node::suspicion_timeout() const {
  double n = std::max(1.0, static_cast<double>(live_mixed_.size()));
  double scale = std::max(1.0, std::log10(n));
  return static_cast<std::uint64_t>(cfg_.suspicion_mult * scale * cfg_.probe_interval_ms);
}

// Rebuilds the live lists (at construction). Afterwards they change only
// when a member enters or leaves the live (alive or suspect) set, see
// live_changed(); an alive <-> suspect change or a new incarnation leaves
// them alone, so suspicions and refutations cost O(1) here.
//
// The member hash covers which members are live, not their incarnations or
// suspicion: under loss incarnations change every few seconds somewhere in a
// large cluster, and a hash over them differed on nearly every push-pull,
// streaming the whole member list each time. Incarnation news travels by
// gossip and by "tell the suspect"; a node that missed a refutation declares
// the member dead at the deadline, its live set then differs, and the next
// push-pull streams the list and repairs it.
void Node::membership_changed() {
  live_mixed_.clear();
  live_mixed_.emplace_back(mix64(cfg_.node_id), cfg_.node_id);
  live_.clear();
  member_hash_ = mix64(mix64(cfg_.node_id));
  for (const auto& [id, p] : peers_) {  // map nodes are stable: pointers stay valid
    if (p.m.state != kDead) {
      live_mixed_.emplace_back(mix64(id), id);
      live_.push_back(&p);
      member_hash_ ^= mix64(mix64(id));
    }
  }
}

// Peer p (a stable map node) entered or left the live set. Entering is O(1);
// leaving is a search and a move in two vectors (deaths are rare).
void Node::live_changed(const Peer& p, bool live) {
  std::uint64_t id = p.m.node_id;
  member_hash_ ^= mix64(mix64(id));
  if (live) {
    live_mixed_.emplace_back(mix64(id), id);
    live_.push_back(&p);
    return;
  }
  live_mixed_.erase(std::find(live_mixed_.begin(), live_mixed_.end(), std::make_pair(mix64(id), id)));
  live_.erase(std::find(live_.begin(), live_.end(), &p));
}

void Node::enqueue_member(const Member& m) {
  std::vector<std::uint8_t> record;
  wire::encode_member(m, record);
  enqueue(m.node_id, true, std::move(record));
}

void Node::refute(std::uint64_t incarnation, std::uint64_t now_ms, const Endpoint& told_by, std::uint64_t teller) {
  incarnation_ = std::max(incarnation_, incarnation) + 1;
  ++stats_.refutations;
  adjust_health(+1);
  enqueue_member(self_member());
  // The teller took us for suspect or dead (or passes on who did), so we
  // may have been cut off from its side (a partition shorter than the
  // suspicion timeout, heavy loss) and missed revocations broadcast there.
  // Its side's welcome waits for a long suspicion, which a slow detection
  // shortens (the chaos benchmark: 3 s cut off, suspected for the last
  // 0.3 s): sync with the teller now, not at the next periodic push-pull
  // (with a random member, it was once our partition mate). At most once
  // a push-pull interval.
  if (!started_ || left_ || now_ms < next_refute_sync_ || teller == cfg_.node_id) return;
  next_refute_sync_ = now_ms + cfg_.pushpull_interval_ms;
  ++stats_.pushpull_started;
  send_root(told_by, teller, false);
}

void Node::set_state(Peer& p, int state, std::uint64_t incarnation, std::uint64_t now_ms) {
  int old = p.m.state;
  const std::uint64_t old_since = p.state_since;
  bool was_live = old == kAlive || old == kSuspect;
  // A node's incarnation starts at its start time in ms and a refutation
  // adds one: a jump of more than kRestartJump is a restart, which lost
  // what the node held in memory (its detector windows, or all of it
  // without a journal) even if we never saw it dead.
  const bool restarted = was_live && state == kAlive && incarnation > p.m.incarnation + kRestartJump;
  if (old == kSuspect) suspects_.erase({p.suspect_deadline, p.m.node_id});
  p.m.state = state;
  p.m.incarnation = incarnation;
  p.state_since = now_ms;
  if (state == kAlive && old != kAlive) p.alive_since = now_ms;
  if (state == kSuspect) {
    p.suspect_deadline = now_ms + suspicion_timeout();
    suspects_.emplace(p.suspect_deadline, p.m.node_id);
  }
  enqueue_member(p.m);
  const bool back_from_dead = !was_live && state != kDead;
  if (was_live != (state != kDead)) live_changed(p, state != kDead);
  if (back_from_dead || restarted) rehome_sightings(p.m.node_id, now_ms);
  // A member back from a crash or partition (or restarted) has missed the
  // revocations decided meanwhile that were broadcast while we could not
  // reach it, and so has one that was suspected for long (a partition
  // shorter than the suspicion timeout: the chaos test found it waiting for
  // the periodic push-pull): a few nodes (kWelcomers, wherever the
  // cluster's size) sync with it at once. Not after a short suspicion (a
  // lost probe under heavy loss, hundreds a second in a large cluster):
  // broadcasts last longer.
  const bool long_suspected = old == kSuspect && state == kAlive && now_ms - old_since >= 2ull * cfg_.probe_interval_ms;
  const bool returning = back_from_dead || restarted || long_suspected;
  if (returning && started_ && !left_ && welcomes(p.m.node_id, p.m.incarnation, now_ms)) {
    ++stats_.welcome_syncs;
    send_root(p.m.endpoint, p.m.node_id, false);
  }
  if (old != state) listener_.member_changed(p.m.node_id, state);
}

// Whether this node is one of the kWelcomers members that rendezvous
// hashing on (member, incarnation) picks to sync with a member back from
// dead, restarted, or back from a long suspicion. Only settled members
// (alive for kSettleWelcomers probe intervals, so seen alive throughout by
// the nodes that still hold what the returning one missed) are candidates:
// when a partition heals, members of the returning side that came back a
// moment earlier have missed the same revocations, and never welcome their
// own side. Nodes that agree on who is settled pick the same ones, so
// about kWelcomers syncs happen, and never none by chance: a coin flip on
// each node left a restarted node without any once in 32 times with six
// peers (the chaos benchmark), waiting for the periodic push-pull.
// A node that has just started is the one being welcomed: every member it
// learns of looks new to it, so it syncs with the first kWelcomers only.
bool Node::welcomes(std::uint64_t member, std::uint64_t incarnation, std::uint64_t now_ms) {
  const std::uint64_t settle_ms = kSettleWelcomers * cfg_.probe_interval_ms;
  if (now_ms - born_ms_ < settle_ms) {
    if (early_welcomes_ >= kWelcomers) return false;
    ++early_welcomes_;
    return true;
  }
  const std::uint64_t h = mix64(member ^ mix64(incarnation));
  const std::uint64_t mine = mix64(h ^ mix64(cfg_.node_id));
  std::size_t ahead = 0;
  for (const Peer* c : live_) {
    if (c->m.node_id == member || c->m.state != kAlive || now_ms - c->alive_since < settle_ms) continue;
    if (mix64(h ^ mix64(c->m.node_id)) <= mine) continue;
    if (++ahead >= kWelcomers) return false;
  }
  return true;
}

void Node::apply_member(const Member& m, std::uint64_t now_ms, const Endpoint& from, std::uint64_t sender) {
  if (m.node_id == cfg_.node_id) {
    if (left_) return;
    if (m.incarnation > incarnation_ || (m.state != kAlive && m.incarnation >= incarnation_))
      refute(m.incarnation, now_ms, from, sender);
    return;
  }
  auto it = peers_.find(m.node_id);
  if (it == peers_.end()) {
    if (m.state == kDead) return;  // news of a stranger's death is no news
    Peer p;
    p.m = m;
    p.m.state = -1;  // so set_state reports the change
    it = peers_.emplace(m.node_id, p).first;
    set_state(it->second, m.state, m.incarnation, now_ms);
    return;
  }
  Peer& p = it->second;
  std::uint64_t inc = p.m.incarnation;
  bool apply = false;
  switch (m.state) {
    case kAlive: apply = m.incarnation > inc; break;
    case kSuspect: apply = p.m.state == kAlive ? m.incarnation >= inc : m.incarnation > inc; break;
    case kDead: apply = p.m.state != kDead ? m.incarnation >= inc : m.incarnation > inc; break;
  }
  if (!apply) return;
  if (m.state == kAlive) {
    p.m.endpoint = m.endpoint;
    p.m.name = m.name;
    p.m.policy = m.policy;
    p.m.protocol_min = m.protocol_min;
    p.m.protocol_max = m.protocol_max;
    p.m.identity = m.identity;
  }
  if (m.state == kDead && p.m.state != kDead) ++stats_.deaths;
  set_state(p, m.state, m.incarnation, now_ms);
}

// A suspect or dead member learns of it when we talk to it, and refutes.
void Node::tell_if_suspected(std::uint64_t id, std::vector<std::uint8_t>& payload) {
  auto it = peers_.find(id);
  if (it != peers_.end() && it->second.m.state != kAlive) wire::encode_member(it->second.m, payload);
}

// Every probe interval, the members we suspect longest hear of it, not
// only the one we happen to probe: a member cut off by a partition that
// heals before it is declared dead otherwise refutes (and syncs, see
// refute()) only when a probe reaches it, and probes slow down (Lifeguard)
// on both sides of a partition: 1.3 s after the heal in the chaos benchmark.
void Node::tell_suspects() {
  std::size_t told = 0;
  for (const auto& [deadline, id] : suspects_) {
    if (told++ == kMaxToldSuspects) break;
    std::vector<std::uint8_t> payload;
    tell_if_suspected(id, payload);
    // No broadcasts on board: they would spend transmissions on a member
    // that may well be unreachable.
    send_packet(peers_.at(id).m.endpoint, payload, false);
  }
}

void Node::probe(std::uint64_t now_ms) {
  if (probe_target_ && !probe_acked_) {
    adjust_health(+1);
    probe_failed(now_ms);
  }
  probe_target_ = 0;
  for (auto it = relays_.begin(); it != relays_.end();)
    it = it->second.expires <= now_ms ? relays_.erase(it) : std::next(it);
  // Round-robin over a shuffled list: every member is probed within N rounds.
  std::uint64_t target = 0;
  for (int pass = 0; pass < 2 && !target; ++pass) {
    while (probe_index_ < probe_order_.size()) {
      std::uint64_t id = probe_order_[probe_index_++];
      auto it = peers_.find(id);
      if (it != peers_.end() && it->second.m.state != kDead) {
        target = id;
        break;
      }
    }
    if (!target) {
      probe_order_.clear();
      for (const auto* p : live_peers()) probe_order_.push_back(p->m.node_id);
      std::shuffle(probe_order_.begin(), probe_order_.end(), rng_);
      probe_index_ = 0;
    }
  }
  if (!target) return;
  probe_target_ = target;
  probe_seq_ = ++seq_;
  probe_acked_ = false;
  probe_indirect_sent_ = false;
  probe_sent_ms_ = now_ms;
  ++stats_.probes;
  std::vector<std::uint8_t> payload;
  wire::encode({wire::Ping{probe_seq_, target}}, payload);
  tell_if_suspected(target, payload);
  send_packet(peers_[target].m.endpoint, payload, true);
}

void Node::probe_timed_out(std::uint64_t) {
  probe_indirect_sent_ = true;
  auto it = peers_.find(probe_target_);
  if (it == peers_.end()) return;
  // Up to indirect_probes distinct alive members other than the target:
  // rejection sampling (O(k) in a large cluster), a full scan when few qualify.
  const auto& live = live_peers();
  std::vector<const Peer*> helpers;
  auto eligible = [&](const Peer* p) { return p->m.node_id != probe_target_ && p->m.state == kAlive; };
  if (live.size() > 4 * std::size_t{cfg_.indirect_probes} + 8) {
    std::uniform_int_distribution<std::size_t> pick(0, live.size() - 1);
    for (unsigned tries = 0; helpers.size() < cfg_.indirect_probes && tries < 8 * cfg_.indirect_probes; ++tries) {
      const Peer* p = live[pick(rng_)];
      if (eligible(p) && std::find(helpers.begin(), helpers.end(), p) == helpers.end()) helpers.push_back(p);
    }
  } else {
    for (const auto* p : live)
      if (eligible(p)) helpers.push_back(p);
    std::shuffle(helpers.begin(), helpers.end(), rng_);
    if (helpers.size() > cfg_.indirect_probes) helpers.resize(cfg_.indirect_probes);
  }
  for (const auto* h : helpers) {
    ++stats_.indirect_probes;
    std::vector<std::uint8_t> payload;
    wire::encode({wire::PingReq{probe_seq_, probe_target_, it->second.m.endpoint}}, payload);
    send_packet(h->m.endpoint, payload, true);
  }
}

void Node::probe_failed(std::uint64_t now_ms) {
  auto it = peers_.find(probe_target_);
  if (it == peers_.end() || it->second.m.state != kAlive) return;
  ++stats_.suspicions;
  set_state(it->second, kSuspect, it->second.m.incarnation, now_ms);
}

// ----------------------------------------------------------- dissemination

void Node::enqueue_revocation(const Revocation& r) {
  std::vector<std::uint8_t> record;
  wire::encode_revocation(r, record);
  enqueue(r.token.hash(), false, std::move(record));
}

void Node::gossip(std::size_t fanout, std::uint64_t exclude) {
  if (broadcasts_.empty()) return;
  // `fanout` distinct random live peers other than `exclude`: rejection
  // sampling, O(fanout) when the cluster is large.
  const auto& live = live_peers();
  auto ex = peers_.find(exclude);
  std::size_t eligible = live.size() - (ex != peers_.end() && ex->second.m.state != kDead);
  std::size_t k = std::min(fanout, eligible);
  std::vector<const Peer*> chosen;
  std::uniform_int_distribution<std::size_t> pick(0, live.empty() ? 0 : live.size() - 1);
  while (chosen.size() < k) {
    const Peer* p = live[pick(rng_)];
    if (p->m.node_id == exclude || std::find(chosen.begin(), chosen.end(), p) != chosen.end()) continue;
    chosen.push_back(p);
    std::vector<std::uint8_t> payload;
    send_packet(p->m.endpoint, payload, true);
  }
}

void Node::decide(const Revocation& decided, std::uint64_t now_ms) {
  now_ = now_ms;
  // Hold the evidence as peers will decode it (strings cut to their limits),
  // so every node, this one included, shows and hashes the same entry.
  Revocation r = decided;
  r.evidence = wire::canonical(decided.evidence);
  if (!set_.merge(r)) return;
  listener_.revocation_changed(r);
  enqueue_revocation(r);
  if (started_ && !left_) gossip(cfg_.fanout, 0);
}

void Node::leave(std::uint64_t now_ms) {
  now_ = now_ms;
  if (!started_ || left_) return;
  left_ = true;
  broadcasts_.clear();
  enqueue_member(self_member());  // dead, at our incarnation: peers accept it
  gossip(std::size_t{2} * cfg_.fanout, 0);
}

// ------------------------------------------------------------ anti-entropy

void Node::send_root(const Endpoint& to, std::uint64_t peer_id, bool reply) {
  wire::PpRoot root;
  root.reply = reply;
  root.member_hash = member_hash();
  root.count = static_cast<std::uint32_t>(set_.size());
  for (std::size_t g = 0; g < RevocationSet::kGroups; ++g) root.groups[g] = set_.group_hash(g);
  std::vector<std::uint8_t> payload;
  wire::encode({root}, payload);
  tell_if_suspected(peer_id, payload);
  send_packet(to, payload, true);
}

void Node::start_pushpull(std::uint64_t) {
  ++pushpull_rounds_;
  std::vector<std::pair<Endpoint, std::uint64_t>> live, dead;
  for (const auto& [id, p] : peers_) (p.m.state == kDead ? dead : live).emplace_back(p.m.endpoint, id);
  // Now and then try a dead member: that is how partitions find each other
  // again. Seeds while joining or alone.
  std::vector<std::pair<Endpoint, std::uint64_t>>* pool = &live;
  if (!dead.empty() && (live.empty() || pushpull_rounds_ % 3 == 0)) pool = &dead;
  if (!ready_ || live.empty())
    for (const auto& s : cfg_.seeds)
      if (s != cfg_.self) pool->emplace_back(s, 0);
  if (pool->empty()) return;
  std::uniform_int_distribution<std::size_t> pick(0, pool->size() - 1);
  auto [ep, id] = (*pool)[pick(rng_)];
  ++stats_.pushpull_started;
  send_root(ep, id, false);
}

void Node::reconnect_dead(std::uint64_t now_ms) {
  std::vector<const Peer*> dead;
  for (const auto& [id, p] : peers_) {
    if (p.m.state == kDead && now_ms - p.state_since < cfg_.reconnect_window_ms) dead.push_back(&p);
  }
  if (dead.empty()) return;
  std::uniform_int_distribution<std::size_t> pick(0, dead.size() - 1);
  const Peer* p = dead[pick(rng_)];
  ++stats_.reconnects;
  send_root(p->m.endpoint, p->m.node_id, false);
}

void Node::on_root(const Endpoint& from, std::uint64_t sender, const wire::PpRoot& r) {
  if (!r.reply) send_root(from, sender, true);
  if (r.member_hash != member_hash()) {
    Stream& s = stream_to(from);
    if (s.members.empty()) {
      ++stats_.member_streams;
      s.members.push_back(cfg_.node_id);
      for (const auto& [id, p] : peers_) s.members.push_back(id);
    }
  }
  std::vector<std::uint8_t> payload;
  bool differ = false;
  for (std::size_t g = 0; g < RevocationSet::kGroups; ++g) {
    if (r.groups[g] == set_.group_hash(g)) continue;
    differ = true;
    wire::PpGroup pg;
    pg.group = static_cast<std::uint8_t>(g);
    for (std::size_t i = 0; i < RevocationSet::kBucketsPerGroup; ++i)
      pg.buckets[i] = set_.bucket_hash(g * RevocationSet::kBucketsPerGroup + i);
    std::vector<std::uint8_t> rec;
    wire::encode({pg}, rec);
    if (payload.size() + rec.size() > payload_room()) send_packet(from, payload, false), payload.clear();
    payload.insert(payload.end(), rec.begin(), rec.end());
  }
  if (!payload.empty()) send_packet(from, payload, false);
  // Same digest as a peer: we hold everything it holds.
  if (!differ && r.count == set_.size()) ready_ = true;
}

Node::Stream& Node::stream_to(const Endpoint& to) {
  for (auto& s : streams_)
    if (s.to == to) return s;
  if (streams_.empty()) next_gossip_ = std::max(next_gossip_, now_ + cfg_.gossip_interval_ms);
  streams_.push_back(Stream{to, {}, 0, {}});
  return streams_.back();
}

void Node::on_group(const Endpoint& from, const wire::PpGroup& g) {
  for (std::size_t i = 0; i < RevocationSet::kBucketsPerGroup; ++i) {
    std::size_t b = g.group * RevocationSet::kBucketsPerGroup + i;
    if (g.buckets[i] == set_.bucket_hash(b) || set_.bucket(b).empty()) continue;
    Stream& s = stream_to(from);
    if (std::find(s.buckets.begin(), s.buckets.end(), b) == s.buckets.end()) s.buckets.push_back(b);
  }
}

void Node::pump_streams() {
  auto now_s = static_cast<std::uint32_t>(now_ / 1000);
  for (auto& s : streams_) {
    for (unsigned n = 0; n < cfg_.pushpull_packets_per_tick; ++n) {
      std::vector<std::uint8_t> payload;
      while (!s.members.empty()) {
        std::uint64_t id = s.members.front();
        Member m;
        if (id == cfg_.node_id)
          m = self_member();
        else if (auto it = peers_.find(id); it != peers_.end())
          m = it->second.m;
        else {
          s.members.pop_front();
          continue;
        }
        std::vector<std::uint8_t> rec;
        wire::encode_member(m, rec);
        if (payload.size() + rec.size() > payload_room()) break;
        payload.insert(payload.end(), rec.begin(), rec.end());
        s.members.pop_front();
      }
      // Entries vary in size (evidence): encode, and take it back if it
      // overflows; it goes first in the next packet.
      while (!s.buckets.empty() && payload.size() + wire::kRevocationFixedSize <= payload_room()) {
        const auto& entries = set_.bucket(s.buckets.front());
        if (s.offset >= entries.size()) {
          s.buckets.pop_front();
          s.offset = 0;
          continue;
        }
        const Revocation& r = entries[s.offset];
        if (r.token_expires < now_s) {
          ++s.offset;
          continue;
        }
        const std::size_t mark = payload.size();
        wire::encode_revocation(r, payload);
        if (payload.size() > payload_room()) {
          payload.resize(mark);
          break;
        }
        ++s.offset;
        ++stats_.pushpull_entries_sent;
      }
      if (payload.empty()) break;
      send_packet(s.to, payload, true);
    }
  }
  streams_.erase(std::remove_if(streams_.begin(), streams_.end(),
                                [](const Stream& s) { return s.members.empty() && s.buckets.empty(); }),
                 streams_.end());
}

// --------------------------------------------------------------- sightings

std::vector<std::uint64_t> Node::owners_of(const TokenRef& t) const {
  // Rendezvous hashing: the `owners` members with the highest score own t.
  std::uint64_t h = t.hash();
  std::vector<std::pair<std::uint64_t, std::uint64_t>> best;  // (score, id)
  for (const auto& [mixed, id] : live_mixed_) {
    std::uint64_t score = mix64(h ^ mixed);
    if (best.size() < cfg_.owners) {
      best.emplace_back(score, id);
      std::sort(best.rbegin(), best.rend());
    } else if (score > best.back().first) {
      best.back() = {score, id};
      std::sort(best.rbegin(), best.rend());
    }
  }
  std::vector<std::uint64_t> out;
  for (const auto& b : best) out.push_back(b.second);
  return out;
}

void Node::report_sighting(const SightingReport& s, std::uint64_t now_ms) {
  now_ = now_ms;
  std::vector<std::uint8_t> rec;  // encoded only if an owner is remote
  for (std::uint64_t owner : owners_of(s.token)) {
    if (owner == cfg_.node_id) {
      ++stats_.sightings_owned;
      listener_.owned_sighting(s);
      continue;
    }
    if (rec.empty()) wire::encode_sighting(s, rec);
    queue_sighting(owner, rec, now_ms);
  }
  remember_sighting(s);
}

void Node::queue_sighting(std::uint64_t owner, const std::vector<std::uint8_t>& record, std::uint64_t now_ms) {
  auto& pending = pending_sightings_[owner];
  if (pending.size() + record.size() > payload_room()) send_sightings(owner, pending);
  pending.insert(pending.end(), record.begin(), record.end());
  ++stats_.sightings_sent;
  if (!sighting_deadline_) sighting_deadline_ = now_ms + cfg_.sighting_flush_ms;
}

void Node::remember_sighting(const SightingReport& s) {
  if (cfg_.rehome_capacity == 0) return;
  if (remembered_.size() < cfg_.rehome_capacity) {
    remembered_.push_back(s);
    return;
  }
  remembered_[remembered_next_] = s;
  remembered_next_ = (remembered_next_ + 1) % remembered_.size();
}

// A member came alive (joined, restarted, healed): while it was away, the
// sightings of tokens it owns went to the other owners only, or nowhere
// (a node that has just started owns everything it sees until it learns
// the others). Send it those it owns, so its window holds every network.
// Cost: one owners_of() per remembered sighting, on a membership change.
void Node::rehome_sightings(std::uint64_t member, std::uint64_t now_ms) {
  std::vector<std::uint8_t> rec;
  for (const SightingReport& s : remembered_) {
    if (s.time_ms + cfg_.rehome_window_ms < now_ms) continue;
    const auto owners = owners_of(s.token);
    if (std::find(owners.begin(), owners.end(), member) == owners.end()) continue;
    // Without the bulk signal's counts: a member wrongly declared dead
    // counted them already, and bulk volume must never be doubled (an
    // owner that really restarted undercounts: a missed scraper, never a
    // refused viewer).
    SightingReport again = s;
    again.requests = 0;
    again.bytes = 0;
    rec.clear();
    wire::encode_sighting(again, rec);
    queue_sighting(member, rec, now_ms);
    ++stats_.sightings_rehomed;
  }
}

void Node::send_sightings(std::uint64_t owner, std::vector<std::uint8_t>& records) {
  auto it = peers_.find(owner);
  if (it != peers_.end() && it->second.m.state != kDead && !records.empty())
    send_packet(it->second.m.endpoint, records, true);
  records.clear();
}

void Node::flush_sightings() {
  for (auto& [owner, records] : pending_sightings_) send_sightings(owner, records);
  pending_sightings_.clear();
  sighting_deadline_ = 0;
}

// ------------------------------------------------------------------ timers

void Node::tick(std::uint64_t now_ms) {
  now_ = now_ms;
  if (!started_ || left_) return;
  if (probe_target_ && !probe_acked_ && !probe_indirect_sent_ &&
      now_ms >= probe_sent_ms_ + scaled(cfg_.probe_timeout_ms))
    probe_timed_out(now_ms);
  if (now_ms >= next_probe_) {
    probe(now_ms);
    next_probe_ = now_ms + scaled(cfg_.probe_interval_ms);
  }
  while (!suspects_.empty() && now_ms >= suspects_.begin()->first) {
    Peer& p = peers_.at(suspects_.begin()->second);
    ++stats_.deaths;
    set_state(p, kDead, p.m.incarnation, now_ms);  // removes it from suspects_
  }
  if (now_ms >= next_gossip_) {
    gossip(cfg_.fanout, 0);
    pump_streams();
    next_gossip_ = now_ms + cfg_.gossip_interval_ms;
  }
  if (now_ms >= next_pushpull_) {
    if (ready_ || now_ms >= last_revocation_rx_ + kTransferQuietMs) start_pushpull(now_ms);
    next_pushpull_ = now_ms + (ready_ ? cfg_.pushpull_interval_ms : kJoinRetryMs);
  }
  if (sighting_deadline_ && now_ms >= sighting_deadline_) flush_sightings();
  if (now_ms >= next_reconnect_) {  // the probe timer wakes us at least this often
    reconnect_dead(now_ms);
    tell_suspects();
    next_reconnect_ = now_ms + cfg_.probe_interval_ms;
  }
  if (now_ms >= next_expire_) {
    set_.expire(static_cast<std::uint32_t>(now_ms / 1000));
    next_expire_ = now_ms + kExpireEveryMs;
  }
}

std::uint64_t Node::next_deadline_ms() const {
  if (!started_ || left_) return UINT64_MAX;
  std::uint64_t d = std::min({next_probe_, next_pushpull_, next_expire_});
  if (probe_target_ && !probe_acked_ && !probe_indirect_sent_)
    d = std::min(d, probe_sent_ms_ + scaled(cfg_.probe_timeout_ms));
  if (!suspects_.empty()) d = std::min(d, suspects_.begin()->first);
  // A node that knows no peer at all (a single server) has no one to tell
  // its news and would otherwise wake every gossip interval for nothing;
  // the first packet of a peer wakes the owner of this Node anyway.
  if ((!broadcasts_.empty() && !peers_.empty()) || !streams_.empty()) d = std::min(d, next_gossip_);
  if (sighting_deadline_) d = std::min(d, sighting_deadline_);
  return d;
}

}  // namespace uritoken::gossip
