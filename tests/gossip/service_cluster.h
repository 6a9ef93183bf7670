// SPDX-License-Identifier: Apache-2.0
// Test harness shared by tests/gossip/sharing_service_test.cc and the chaos
// benchmark (tests/bench/chaos_bench.cc): simulated nodes that each run the
// real decision path (cluster::SharingService) over their own shared state,
// and a seeded chaos run with invariant checks.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "../../gossip/testing.h"
#include "../../gossip/sim.h"
#include "../../mod_uritoken/cluster/sharing_service.h"

namespace uritoken::cluster::simtest {

using gossip::sim::Simulation;

// A SharedState in heap memory, as the parent makes one in shared memory.
struct HeapState {
  explicit HeapState(std::uint32_t ring = 1024, std::uint32_t table = 4096) {
    SharedStateLayout layout;
    layout.ring_slots = ring;
    layout.table_slots = table;
    layout.repeat_counts = true;  // the bulk signal's counts, as with UriTokenBulk on
    bytes = shared_state_bytes(layout);
    memory = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    state = SharedState::format(memory, bytes, layout);
  }
  ~HeapState() {
    state.reset();
    std::free(memory);
  }
  HeapState(const HeapState&) = delete;
  HeapState& operator=(const HeapState&) = delete;
  std::size_t bytes = 0;
  void* memory = nullptr;
  std::optional<SharedState> state;
};

struct Captured {
  std::vector<std::string> lines;
  LogSink sink() {
    return [this](LogLevel, const std::string& text) { lines.push_back(text); };
  }
  std::size_t count(const std::string& needle) const {
    std::size_t n = 0;
    for (const auto& l : lines) n += l.find(needle) != std::string::npos;
    return n;
  }
};

inline Sighting sighting(std::uint64_t session, const std::string& ip, std::uint64_t now_ms) {
  Sighting s;
  s.session = session;
  s.key_id = 1;
  s.client_hash = 42;
  s.token_expires = static_cast<std::uint32_t>(now_ms / 1000 + 3600);
  s.time_ms = now_ms;
  s.address = *parse_ip_address(ip);
  return s;
}

inline const std::vector<std::string> kFiveNetworks = {"198.51.100.7", "203.0.113.9", "192.0.2.33", "45.33.12.8",
                                                       "151.101.1.5"};

// Simulated cluster where every node runs the real decision path over its
// own shared state, as each sidecar does.
class ServiceCluster {
 public:
  ServiceCluster(std::size_t n, std::uint64_t seed, double loss = 0.0,
                 std::function<void(std::size_t, gossip::Config&)> configure = {},
                 std::function<void(ServiceConfig&)> configure_service = {})
      : configure_service_(std::move(configure_service)) {
    Simulation::Options o;
    o.seed = seed;
    o.loss = loss;
    o.configure = std::move(configure);
    o.base.cluster_key = gossip::doubles::pattern_key();
    o.base.cluster_label = "svc";
    sim = std::make_unique<Simulation>(o);
    sim->on_sighting = [this](std::size_t i, const gossip::SightingReport& r) { services[i]->owned_sighting(r); };
    sim->on_revocation = [this](std::size_t i, const gossip::Revocation& r) {
      trace << i << ':' << r.token.session << ':' << r.pardon << ':' << r.origin << ';';
      services[i]->revocation_changed(r);
      journals[i].push_back(r);
    };
    sim->on_member = [this](std::size_t i, std::uint64_t m, int state) { services[i]->member_changed(m, state); };
    for (std::size_t i = 0; i < n; ++i) {
      states.push_back(std::make_unique<HeapState>());
      logs.push_back(std::make_unique<Captured>());
      journals.emplace_back();
      services.push_back(nullptr);
      make_service(i);
    }
    sim->add_nodes(n);
    for (std::size_t i = 0; i < n; ++i) services[i]->attach(sim->node(i));
  }

  // A fresh decision path for node i (its sidecar restarted): the shared
  // memory stays, the detector's windows are lost.
  void make_service(std::size_t i) {
    ServiceConfig sc;
    sc.policy.max_sessions = 10000;  // the detector preallocates its table
    if (configure_service_) configure_service_(sc);
    services[i] = std::make_unique<SharingService>(sc, *states[i]->state, logs[i]->sink());
    services[i]->clock = [this] { return sim->now(); };
  }

  void crash(std::size_t i) { sim->crash(i); }
  void restart(std::size_t i) {
    make_service(i);
    // The node's journal: every change it saw before the crash.
    sim->restart(i, journals[i]);
    services[i]->attach(sim->node(i));
    services[i]->publish_all();
  }

  // Workers of node i saw `ip` use the token; the sidecar drains its ring.
  // `bytes`: the answer's size, which the worker adds after it (the bulk signal).
  void use(std::size_t i, std::uint64_t session, const std::string& ip, std::uint64_t bytes = 0) {
    if (!sim->up(i)) return;
    const Sighting s = sighting(session, ip, sim->now());
    states[i]->state->report(s);  // as a worker does
    states[i]->state->add_bytes(s, bytes);
    services[i]->drain(sim->now());
    sim->poke(i);
  }

  // The same by a token bound to subscriber `ref`: its workers report the
  // token's use and the subscriber's.
  void use_as_subscriber(std::size_t i, std::uint64_t session, std::uint64_t ref, const std::string& ip,
                         std::uint32_t client_hash = 42) {
    if (!sim->up(i)) return;
    Sighting s = sighting(session, ip, sim->now());
    s.client_hash = client_hash;
    states[i]->state->report(s);
    states[i]->state->report(subscriber_sighting(s, ref));
    services[i]->drain(sim->now());
    sim->poke(i);
  }

  bool revoked_on(std::size_t i, std::uint64_t session) {
    // Found shared (revoked) or in bulk use (bulk): either is refused where enforced.
    return states[i]->state->lookup(1, session, static_cast<std::uint32_t>(sim->now() / 1000)) != RevocationState::none;
  }
  std::size_t revoked_count(std::uint64_t session) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < services.size(); ++i) n += sim->up(i) && revoked_on(i, session);
    return n;
  }
  std::size_t up_count() {
    std::size_t n = 0;
    for (std::size_t i = 0; i < services.size(); ++i) n += sim->up(i);
    return n;
  }

  std::unique_ptr<Simulation> sim;
  std::vector<std::unique_ptr<HeapState>> states;
  std::vector<std::unique_ptr<Captured>> logs;
  std::vector<std::vector<gossip::Revocation>> journals;
  std::vector<std::unique_ptr<SharingService>> services;
  std::ostringstream trace;

 private:
  std::function<void(ServiceConfig&)> configure_service_;
};

inline bool all_alive(ServiceCluster& c) {
  for (std::size_t i = 0; i < c.services.size(); ++i) {
    if (!c.sim->up(i)) continue;
    std::size_t alive = 0;
    for (const auto& m : c.sim->node(i)->members()) alive += m.state == gossip::kAlive;
    if (alive != c.up_count()) return false;
  }
  return true;
}

struct ChaosResult {
  std::size_t shared = 0, revoked_in_time = 0, controls_revoked = 0;
  std::uint64_t max_ms_after_heal = 0;
  bool converged = false;
  std::string failures;
};

// Phases of a few seconds, each with one fault (a minority partition, 30%
// loss, one or two crashed nodes, or none), healed at the end of the phase.
// Meanwhile a new token is shared from five networks every 400 ms, and a
// control token used from two networks; each network keeps using its token
// every second, as a player fetching segments does. After every heal, each
// token shared before it must be refused on every live node within 1 s;
// no control token may ever be revoked; all nodes converge at the end.
inline ChaosResult run_chaos(std::uint64_t seed, int phases, std::uint64_t phase_ms) {
  const std::size_t n = 7;
  ServiceCluster c(n, seed);
  ChaosResult result;
  std::mt19937_64 rng(seed * 7919);
  if (!c.sim->run_until_true([&] { return all_alive(c); }, 20000)) {
    result.failures = "never formed";
    return result;
  }
  struct Token {
    std::uint64_t session;
    std::vector<std::string> networks;
    std::uint64_t born;
    bool control;
  };
  std::vector<Token> tokens;
  std::uint64_t next_session = 1000;
  auto pick_up = [&] {
    for (;;) {
      const std::size_t i = rng() % n;
      if (c.sim->up(i)) return i;
    }
  };
  for (int phase = 0; phase < phases; ++phase) {
    const int fault = static_cast<int>(rng() % 4);
    std::vector<std::size_t> crashed;
    if (fault == 1) {  // a minority partition
      const std::size_t cut = 1 + rng() % (n / 2);
      for (std::size_t k = 0; k < cut; ++k) c.sim->set_group(rng() % n, 1);
    } else if (fault == 2) {
      c.sim->set_loss(0.3);
    } else if (fault == 3) {
      const std::size_t k = 1 + rng() % 2;
      for (std::size_t j = 0; j < k; ++j) {
        const std::size_t i = rng() % n;
        if (c.sim->up(i)) {
          c.crash(i);
          crashed.push_back(i);
        }
      }
    }
    const std::uint64_t phase_end = c.sim->now() + phase_ms;
    std::uint64_t next_token = c.sim->now();
    while (c.sim->now() < phase_end) {
      if (c.sim->now() >= next_token) {
        Token t{next_session++, {}, c.sim->now(), tokens.size() % 3 == 2};
        const std::size_t nets = t.control ? 2 : 5;
        for (std::size_t k = 0; k < nets; ++k) {
          t.networks.push_back(std::to_string(11 + rng() % 200) + "." + std::to_string(rng() % 250) + "." +
                               std::to_string(rng() % 250) + ".7");
        }
        tokens.push_back(t);
        next_token += 400;
      }
      // Every network of every token makes a request about once a second.
      for (const Token& t : tokens) {
        for (const auto& ip : t.networks) {
          if (rng() % 10 == 0) c.use(pick_up(), t.session, ip);
        }
      }
      c.sim->run_for(100);
    }
    // Heal.
    for (std::size_t i = 0; i < n; ++i) c.sim->set_group(i, 0);
    c.sim->set_loss(0.0);
    for (std::size_t i : crashed) c.restart(i);
    const std::uint64_t healed = c.sim->now();
    std::map<std::uint64_t, std::uint64_t> refused_at;  // session -> ms after heal
    auto note_refused = [&] {
      for (const Token& t : tokens) {
        if (t.control || refused_at.count(t.session)) continue;
        if (c.revoked_count(t.session) == c.up_count()) refused_at[t.session] = c.sim->now() - healed;
      }
    };
    while (c.sim->now() < healed + 1000) {
      note_refused();
      for (const Token& t : tokens) {
        for (const auto& ip : t.networks) {
          if (rng() % 10 == 0) c.use(pick_up(), t.session, ip);
        }
      }
      c.sim->run_for(10);
    }
    note_refused();  // at 1000 ms: still in time
    for (const Token& t : tokens) {
      if (t.control) {
        if (c.revoked_count(t.session) > 0) {
          ++result.controls_revoked;
          result.failures += "control " + std::to_string(t.session) + " revoked; ";
        }
        continue;
      }
      if (t.born + 1500 > healed) continue;  // not yet used from all its networks
      ++result.shared;
      auto it = refused_at.find(t.session);
      if (it == refused_at.end()) {
        result.failures += "phase " + std::to_string(phase) + " fault " + std::to_string(fault) + ": token " +
                           std::to_string(t.session) + " refused on " + std::to_string(c.revoked_count(t.session)) +
                           "/" + std::to_string(c.up_count()) + " nodes 1 s after the heal (missing:";
        for (std::size_t i = 0; i < n; ++i) {
          if (c.sim->up(i) && !c.revoked_on(i, t.session)) {
            result.failures +=
                " node" + std::to_string(i) + (c.sim->node(i)->ready() ? " ready" : " not ready") +
                (std::find(crashed.begin(), crashed.end(), i) != crashed.end() ? " restarted" : "") +
                " holds=" + std::to_string(c.sim->node(i)->revocations().find({1, t.session}) != nullptr);
          }
        }
        result.failures += "); ";
      } else {
        ++result.revoked_in_time;
        result.max_ms_after_heal = std::max(result.max_ms_after_heal, it->second);
      }
    }
    // Tokens already judged leave the load (their users gave up).
    tokens.erase(std::remove_if(tokens.begin(), tokens.end(), [&](const Token& t) { return t.born + 1500 <= healed; }),
                 tokens.end());
  }
  result.converged = c.sim->run_until_true([&] { return all_alive(c); }, 30000);
  if (!result.converged) {
    for (std::size_t i = 0; i < n; ++i) {
      if (!c.sim->up(i)) {
        result.failures += "node " + std::to_string(i) + " down; ";
        continue;
      }
      result.failures += "node " + std::to_string(i) + " sees";
      for (const auto& m : c.sim->node(i)->members()) result.failures += " " + m.name + ":" + std::to_string(m.state);
      result.failures += "; ";
    }
  }
  return result;
}

}  // namespace uritoken::cluster::simtest
