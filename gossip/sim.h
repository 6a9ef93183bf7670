// SPDX-License-Identifier: Apache-2.0
// Deterministic simulation of a gossip cluster in one process: N Nodes over a
// virtual network with per-packet delay, seeded loss, crashes, restarts,
// partitions and clock skew, driven by an event queue in virtual time. Same
// seed, same run (packet nonces are random but nothing depends on their
// value). Used by the tests and by the cluster benchmark; not linked into the
// module.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <vector>

#include "gossip.h"

namespace uritoken::gossip::sim {

// A plausible wall clock, so token expiry times look real.
constexpr std::uint64_t kEpochMs = 1'700'000'000'000ULL;

class Simulation {
 public:
  struct Options {
    std::uint64_t seed = 1;
    double loss = 0.0;  // probability a packet is lost
    std::uint32_t min_delay_ms = 1, max_delay_ms = 5;
    Config base;                                          // template for every node's Config
    std::function<void(std::size_t, Config&)> configure;  // then per node, if set
    // Several data centres: if set, packets between nodes of different
    // data centres take wan_*_delay_ms and are lost with wan_loss instead.
    std::function<int(std::size_t node)> data_centre;
    std::uint32_t wan_min_delay_ms = 30, wan_max_delay_ms = 40;
    double wan_loss = 0.0;
  };

  std::function<void(std::size_t node, const Revocation&)> on_revocation;
  std::function<void(std::size_t node, const SightingReport&)> on_sighting;
  std::function<void(std::size_t node, std::uint64_t member, int state)> on_member;

  explicit Simulation(Options o) : opt_(std::move(o)), rng_(opt_.seed), now_(kEpochMs) {}

  std::uint64_t now() const { return now_; }
  std::size_t size() const { return nodes_.size(); }
  Node* node(std::size_t i) { return nodes_[i]->node.get(); }
  bool up(std::size_t i) const { return nodes_[i]->node != nullptr; }
  static Endpoint endpoint_of(std::size_t i) {
    Endpoint e;
    e.addr[0] = 10;
    e.addr[1] = static_cast<std::uint8_t>(i >> 16);
    e.addr[2] = static_cast<std::uint8_t>(i >> 8);
    e.addr[3] = static_cast<std::uint8_t>(i);
    e.port = 7946;
    return e;
  }

  // Adds a node (node id i+1) that joins through `seeds` (node indexes) now.
  std::size_t add_node(const std::vector<std::size_t>& seeds, const std::vector<Revocation>& journal = {}) {
    std::size_t i = nodes_.size();
    auto sn = std::make_unique<SimNode>();
    sn->sim = this;
    sn->index = i;
    sn->cfg = opt_.base;
    sn->cfg.node_id = i + 1;
    sn->cfg.name = "node" + std::to_string(i);
    sn->cfg.self = endpoint_of(i);
    for (std::size_t s : seeds) sn->cfg.seeds.push_back(endpoint_of(s));
    if (opt_.configure) opt_.configure(i, sn->cfg);
    nodes_.push_back(std::move(sn));
    boot(i, journal);
    return i;
  }

  // Adds n nodes, each joining through the first three (as a cluster grows
  // from a few listed peers).
  void add_nodes(std::size_t n) {
    for (std::size_t k = 0; k < n; ++k) {
      std::vector<std::size_t> seeds;
      for (std::size_t j = 0; j < std::min<std::size_t>(nodes_.size(), 3); ++j) seeds.push_back(j);
      add_node(seeds);
    }
  }

  // Node i stops: its state is lost, packets to it vanish.
  void crash(std::size_t i) { nodes_[i]->node.reset(); }

  // A new Node with the same id and address, loaded from `journal`.
  void restart(std::size_t i, const std::vector<Revocation>& journal) { boot(i, journal); }

  // Node i's Config, as its next boot (restart) will use it: a new version
  // or new settings rolled out node by node.
  Config& config(std::size_t i) { return nodes_[i]->cfg; }

  // Node i's clock runs `ms` ahead of the simulation's (behind if negative)
  // from its next boot on: clock skew between nodes. Set it before
  // add_node/restart, so no running Node sees its time jump.
  void set_clock_offset(std::size_t i, std::int64_t ms) {
    if (i >= clock_offsets_.size()) clock_offsets_.resize(i + 1, 0);
    clock_offsets_[i] = ms;
  }

  // Nodes in different groups cannot talk; all in group 0 heals a partition.
  void set_group(std::size_t i, int group) { nodes_[i]->group = group; }
  void set_loss(double loss) { opt_.loss = loss; }

  // Runs `fn` at virtual time `t` (not before now).
  void at(std::uint64_t t, std::function<void()> fn) {
    push(Event{std::max(t, now_), seq_++, Event::kCall, 0, {}, {}, std::move(fn)});
  }

  // Local events on node i (use these, not node(i)->..., so timers follow).
  void decide(std::size_t i, const Revocation& r) {
    if (!up(i)) return;
    node(i)->decide(r, local(i));
    touched_.push_back(i);
  }
  void report_sighting(std::size_t i, const SightingReport& s) {
    if (!up(i)) return;
    node(i)->report_sighting(s, local(i));
    touched_.push_back(i);
  }

  // Node i was driven from outside the event loop (a service fed it
  // sightings): its timers may have moved.
  void poke(std::size_t i) {
    touched_.push_back(i);
    reschedule_all_touched();
  }

  // Processes events up to and including time `t`.
  void run_until(std::uint64_t t) {
    while (!queue_.empty() && queue_.top().time <= t) {
      Event ev = std::move(const_cast<Event&>(queue_.top()));  // popped right away
      queue_.pop();
      now_ = ev.time;
      switch (ev.kind) {
        case Event::kCall: ev.fn(); break;
        case Event::kDeliver: {
          SimNode& n = *nodes_[ev.node];
          if (n.node) n.node->receive(ev.from, ev.data.data(), ev.data.size(), local(ev.node));
          touched_.push_back(ev.node);
          break;
        }
        case Event::kTick: {
          SimNode& n = *nodes_[ev.node];
          if (!n.node || n.scheduled != ev.time) break;  // superseded
          n.scheduled = UINT64_MAX;
          n.node->tick(local(ev.node));
          touched_.push_back(ev.node);
          break;
        }
      }
      reschedule_all_touched();
    }
    now_ = std::max(now_, t);
  }
  void run_for(std::uint64_t ms) { run_until(now_ + ms); }

  // Runs until pred() holds (checked every `step` ms) or `limit` ms pass.
  bool run_until_true(const std::function<bool()>& pred, std::uint64_t limit, std::uint64_t step = 10) {
    std::uint64_t end = now_ + limit;
    while (!pred()) {
      if (now_ >= end) return false;
      run_until(std::min(end, now_ + step));
    }
    return true;
  }

  std::uint64_t packets_delivered() const { return delivered_; }

 private:
  struct SimNode;
  struct SimTransport : Transport {
    SimNode* self = nullptr;
    void send(const Endpoint& to, const std::uint8_t* data, std::size_t size) override {
      self->sim->transmit(self->index, to, data, size);
    }
  };
  struct SimListener : Listener {
    SimNode* self = nullptr;
    void revocation_changed(const Revocation& r) override {
      if (self->sim->on_revocation) self->sim->on_revocation(self->index, r);
    }
    void owned_sighting(const SightingReport& s) override {
      if (self->sim->on_sighting) self->sim->on_sighting(self->index, s);
    }
    void member_changed(std::uint64_t id, int state) override {
      if (self->sim->on_member) self->sim->on_member(self->index, id, state);
    }
  };
  struct SimNode {
    Simulation* sim = nullptr;
    std::size_t index = 0;
    Config cfg;
    int group = 0;
    unsigned generation = 0;
    std::int64_t clock_offset = 0;         // this boot's: local time = now_ + clock_offset
    std::uint64_t scheduled = UINT64_MAX;  // time of the pending tick event
    SimTransport transport;
    SimListener listener;
    std::unique_ptr<Node> node;
  };
  struct Event {
    enum Kind { kDeliver, kTick, kCall };
    std::uint64_t time;
    std::uint64_t seq;  // FIFO among equal times: determinism
    Kind kind;
    std::size_t node;
    Endpoint from;
    std::vector<std::uint8_t> data;
    std::function<void()> fn;
    bool operator>(const Event& o) const { return time != o.time ? time > o.time : seq > o.seq; }
  };

  void boot(std::size_t i, const std::vector<Revocation>& journal) {
    SimNode& n = *nodes_[i];
    n.transport.self = &n;
    n.listener.self = &n;
    n.clock_offset = i < clock_offsets_.size() ? clock_offsets_[i] : 0;
    std::uint64_t seed = opt_.seed * 0x9e3779b97f4a7c15ULL + i * 1000003 + n.generation++;
    n.node = std::make_unique<Node>(n.cfg, n.transport, n.listener, local(i), seed);
    n.node->load(journal);
    n.node->start(local(i));
    // The crashed node's pending tick may be gone or in the past: without
    // this a restarted node never ticked again (no probes, no timeouts).
    n.scheduled = UINT64_MAX;
    touched_.push_back(i);
    reschedule_all_touched();
  }

  void transmit(std::size_t from, const Endpoint& to, const std::uint8_t* data, std::size_t size) {
    touched_.push_back(from);
    std::size_t dst = index_of(to);
    if (dst >= nodes_.size()) return;
    // Draw both numbers for every packet so loss does not shift later delays.
    double roll = std::uniform_real_distribution<double>(0, 1)(rng_);
    std::uint64_t delay = std::uniform_int_distribution<std::uint32_t>(opt_.min_delay_ms, opt_.max_delay_ms)(rng_);
    double loss = opt_.loss;
    if (opt_.data_centre && opt_.data_centre(from) != opt_.data_centre(dst)) {
      // Drawn only in this mode, so single-site runs stay as they were.
      delay = std::uniform_int_distribution<std::uint32_t>(opt_.wan_min_delay_ms, opt_.wan_max_delay_ms)(rng_);
      loss = opt_.wan_loss;
    }
    if (roll < loss || nodes_[from]->group != nodes_[dst]->group) return;
    push(Event{now_ + delay,
               seq_++,
               Event::kDeliver,
               dst,
               nodes_[from]->cfg.self,
               std::vector<std::uint8_t>(data, data + size),
               {}});
    ++delivered_;
  }

  void push(Event e) { queue_.push(std::move(e)); }

  // Node i's wall clock now.
  std::uint64_t local(std::size_t i) const {
    return now_ + static_cast<std::uint64_t>(nodes_[i]->clock_offset);  // wraps right for < 0
  }

  // The inverse of endpoint_of (no map lookup per packet); size() if none.
  std::size_t index_of(const Endpoint& e) const {
    if (e.v6 || e.addr[0] != 10 || e.port != 7946) return nodes_.size();
    std::size_t i = std::size_t{e.addr[1]} << 16 | std::size_t{e.addr[2]} << 8 | e.addr[3];
    return i < nodes_.size() && nodes_[i]->cfg.self == e ? i : nodes_.size();
  }

  // After any event, nodes whose timers may have moved get a tick event.
  void reschedule_all_touched() {
    // Checking every node is O(N) per event: only nodes that acted are noted.
    for (std::size_t i : touched_) {
      SimNode& n = *nodes_[i];
      if (!n.node) continue;
      std::uint64_t deadline = n.node->next_deadline_ms();  // on the node's clock
      if (deadline == UINT64_MAX) continue;
      std::uint64_t d = std::max(deadline - static_cast<std::uint64_t>(n.clock_offset), now_);
      if (d < n.scheduled) {
        n.scheduled = d;
        queue_.push(Event{d, seq_++, Event::kTick, i, {}, {}, {}});
      }
    }
    touched_.clear();
  }

  Options opt_;
  std::mt19937_64 rng_;
  std::uint64_t now_;
  std::uint64_t seq_ = 0;
  std::uint64_t delivered_ = 0;
  std::vector<std::unique_ptr<SimNode>> nodes_;
  std::vector<std::size_t> touched_;
  std::vector<std::int64_t> clock_offsets_;  // by node index, for the next boot
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> queue_;
};

}  // namespace uritoken::gossip::sim
