// SPDX-License-Identifier: Apache-2.0
// Shared memory region: sightings ring and revocation table.
#include "../../mod_uritoken/cluster/shared_state.h"
#include "../../mod_uritoken/cluster/sharing.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <thread>
#include <vector>

namespace uritoken {

// Reaches the steps of record() and the table internals that a test cannot
// provoke from outside: a producer stuck between claim and publish, a
// writer that dies inside its seqlock section, and the home slot of a key.
struct SharedStateTestPeer {
  static std::uint64_t claim(SharedState& s) {
    std::uint64_t pos = 0;
    EXPECT_TRUE(s.claim(&pos));
    return pos;
  }
  static bool publish(SharedState& s, std::uint64_t pos, const Sighting& x) { return s.publish(pos, x); }
  static std::size_t home(const SharedState& s, std::uint16_t key_id, std::uint64_t session) {
    return SharedState::home_hash(key_id, session) & (s.table_slots() - 1);
  }
};

}  // namespace uritoken

using namespace uritoken;

namespace {

// A 64-byte aligned heap region.
struct Region {
  explicit Region(std::size_t n)
      : bytes(n), mem(static_cast<unsigned char*>(std::aligned_alloc(64, (n + 63) / 64 * 64))) {
    std::memset(mem, 0xa5, bytes);  // garbage: format must not rely on zeroed memory
  }
  ~Region() { std::free(mem); }
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;
  std::size_t bytes;
  unsigned char* mem;
};

SharedState make_state(Region& r, SharedStateLayout layout) {
  auto s = SharedState::format(r.mem, r.bytes, layout);
  EXPECT_TRUE(s);
  return *s;
}

Sighting sighting(std::uint64_t session, std::uint64_t time_ms, const char* addr) {
  Sighting s;
  s.session = session;
  s.key_id = static_cast<std::uint16_t>(session % 65521 + 1);
  s.client_hash = static_cast<std::uint32_t>(session * 2654435761u);
  s.token_expires = static_cast<std::uint32_t>(1800000000 + session % 1000);
  s.time_ms = time_ms;
  s.address = *parse_ip_address(addr);
  return s;
}

void expect_same(const Sighting& a, const Sighting& b) {
  EXPECT_EQ(a.session, b.session);
  EXPECT_EQ(a.key_id, b.key_id);
  EXPECT_EQ(a.client_hash, b.client_hash);
  EXPECT_EQ(a.token_expires, b.token_expires);
  EXPECT_EQ(a.time_ms, b.time_ms);
  EXPECT_EQ(a.address.v6, b.address.v6);
  EXPECT_EQ(0, std::memcmp(a.address.bytes, b.address.bytes, 16));
}

RevocationRecord record(std::uint16_t key_id, std::uint64_t session, RevocationState state,
                        std::uint32_t expires = 2000000000, std::uint32_t since = 1700000000) {
  RevocationRecord r;
  r.key_id = key_id;
  r.session = session;
  r.state = state;
  r.token_expires = expires;
  r.since = since;
  return r;
}

// Sessions whose home slot in `s` is `home`, found by trying.
std::vector<std::uint64_t> sessions_with_home(const SharedState& s, std::uint16_t key_id, std::size_t home,
                                              std::size_t n) {
  std::vector<std::uint64_t> out;
  for (std::uint64_t session = 1; out.size() < n; ++session) {
    if (SharedStateTestPeer::home(s, key_id, session) == home) out.push_back(session);
  }
  return out;
}

}  // namespace

TEST(SharedStateRing, SingleThreadRoundtrip) {
  Region r(shared_state_bytes({8, 16}));
  auto s = make_state(r, {8, 16});
  const Sighting in[3] = {sighting(0x0123456789abcdefull, 1700000000123, "198.51.100.7"),
                          sighting(42, 1700000000456, "2001:db8:1:2::99"),
                          sighting(~0ull, ~0ull, "::ffff:203.0.113.9")};
  for (const auto& x : in) EXPECT_TRUE(s.record(x));
  Sighting out[8];
  ASSERT_EQ(s.drain(out, 8), 3u);
  for (int i = 0; i < 3; ++i) expect_same(in[i], out[i]);
  EXPECT_EQ(s.drain(out, 8), 0u);
  const auto c = s.counters();
  EXPECT_EQ(c.sightings_written, 3u);
  EXPECT_EQ(c.sightings_drained, 3u);
  EXPECT_EQ(c.sightings_dropped, 0u);
}

TEST(SharedStateRing, SizesRoundUpToPowersOfTwo) {
  Region r(shared_state_bytes({5, 3}));
  auto s = make_state(r, {5, 3});
  EXPECT_EQ(s.ring_slots(), 8u);
  EXPECT_EQ(s.table_slots(), 16u);  // the table's minimum
  EXPECT_EQ(shared_state_bytes({5, 3}), shared_state_bytes({8, 16}));
  EXPECT_LT(shared_state_bytes({8, 16}), shared_state_bytes({9, 16}));
}

TEST(SharedStateRing, FullRingCountsDropsAndNeverBlocks) {
  Region r(shared_state_bytes({8, 16}));
  auto s = make_state(r, {8, 16});
  for (std::uint64_t i = 0; i < 8; ++i) EXPECT_TRUE(s.record(sighting(i, i, "192.0.2.1")));
  for (std::uint64_t i = 0; i < 5; ++i) EXPECT_FALSE(s.record(sighting(100 + i, 0, "192.0.2.1")));
  auto c = s.counters();
  EXPECT_EQ(c.sightings_written, 8u);
  EXPECT_EQ(c.sightings_dropped, 5u);
  Sighting out[16];
  ASSERT_EQ(s.drain(out, 3), 3u);  // partial drain frees exactly that many slots
  for (std::uint64_t i = 0; i < 3; ++i) EXPECT_TRUE(s.record(sighting(8 + i, 8 + i, "192.0.2.1")));
  EXPECT_FALSE(s.record(sighting(99, 0, "192.0.2.1")));
  ASSERT_EQ(s.drain(out, 16), 8u);
  for (std::uint64_t i = 0; i < 8; ++i) EXPECT_EQ(out[i].session, 3 + i);  // FIFO, no dropped ones
}

TEST(SharedStateRing, ManyThreadsProduceWhileOneConsumes) {
  constexpr int kThreads = 4;
  constexpr std::uint64_t kPerThread = 20000;
  Region r(shared_state_bytes({256, 16}));
  auto s = make_state(r, {256, 16});
  std::atomic<std::uint64_t> full_retries{0};
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t) {
    producers.emplace_back([&, t] {
      for (std::uint64_t i = 0; i < kPerThread; ++i) {
        // Session = producer and sequence number; retry while full so that
        // every sighting must arrive exactly once.
        Sighting x = sighting((std::uint64_t(t) << 32) | i, i, "203.0.113.5");
        while (!s.record(x)) {
          full_retries.fetch_add(1);
          std::this_thread::yield();
        }
      }
    });
  }
  std::vector<std::uint64_t> next(kThreads, 0);
  std::uint64_t received = 0;
  Sighting out[64];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (received < kThreads * kPerThread && std::chrono::steady_clock::now() < deadline) {
    const std::size_t n = s.drain(out, 64);
    for (std::size_t k = 0; k < n; ++k) {
      const auto t = out[k].session >> 32, i = out[k].session & 0xffffffff;
      ASSERT_LT(t, std::uint64_t(kThreads));
      // One producer's sightings come out in its order: a gap is a loss, a
      // repeat a duplicate.
      ASSERT_EQ(i, next[t]) << "producer " << t;
      ++next[t];
      expect_same(out[k], sighting(out[k].session, i, "203.0.113.5"));
    }
    received += n;
    if (n == 0) std::this_thread::yield();
  }
  for (auto& p : producers) p.join();
  EXPECT_EQ(received, kThreads * kPerThread);
  const auto c = s.counters();
  EXPECT_EQ(c.sightings_written, kThreads * kPerThread);
  EXPECT_EQ(c.sightings_dropped, full_retries.load());
}

TEST(SharedStateRing, ForkedProcessesShareTheRing) {
  constexpr int kChildren = 4;
  constexpr std::uint64_t kPerChild = 5000;
  const SharedStateLayout layout{512, 16};
  const std::size_t bytes = shared_state_bytes(layout);
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  auto s = SharedState::format(mem, bytes, layout);
  ASSERT_TRUE(s);
  std::vector<pid_t> children;
  for (int c = 0; c < kChildren; ++c) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      for (std::uint64_t i = 0; i < kPerChild; ++i) {
        while (!s->record(sighting((std::uint64_t(c) << 32) | i, i, "198.51.100.1"))) usleep(50);
      }
      _exit(0);
    }
    children.push_back(pid);
  }
  std::set<std::uint64_t> seen;
  Sighting out[128];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (seen.size() < kChildren * kPerChild && std::chrono::steady_clock::now() < deadline) {
    const std::size_t n = s->drain(out, 128);
    for (std::size_t k = 0; k < n; ++k) EXPECT_TRUE(seen.insert(out[k].session).second) << "duplicate";
    if (n == 0) usleep(100);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  EXPECT_EQ(seen.size(), kChildren * kPerChild);
  EXPECT_EQ(*seen.rbegin(), (std::uint64_t(kChildren - 1) << 32) | (kPerChild - 1));
  munmap(mem, bytes);
}

TEST(SharedStateRing, StalledProducerIsSkippedAfterTimeout) {
  Region r(shared_state_bytes({8, 16}));
  auto s = make_state(r, {8, 16});
  s.set_ring_stall_ms(50);
  const std::uint64_t stuck = SharedStateTestPeer::claim(s);  // a worker dies right here
  ASSERT_TRUE(s.record(sighting(7, 7, "192.0.2.7")));
  Sighting out[8];
  EXPECT_EQ(s.drain(out, 8), 0u);  // the unpublished slot holds up the ones behind it
  EXPECT_EQ(s.drain(out, 8), 0u);
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  ASSERT_EQ(s.drain(out, 8), 1u);
  EXPECT_EQ(out[0].session, 7u);
  EXPECT_EQ(s.counters().ring_stalls, 1u);
  // Were the worker only slow, its late publication must not corrupt the
  // next lap: it fails and is counted as a drop.
  EXPECT_FALSE(SharedStateTestPeer::publish(s, stuck, sighting(6, 6, "192.0.2.6")));
  EXPECT_EQ(s.counters().sightings_dropped, 1u);
  for (std::uint64_t i = 0; i < 8; ++i) EXPECT_TRUE(s.record(sighting(100 + i, i, "192.0.2.1")));
  ASSERT_EQ(s.drain(out, 8), 8u);
  EXPECT_EQ(out[7].session, 107u);
}

TEST(SharedStateRing, SlowProducerWithinTimeoutIsWaitedFor) {
  Region r(shared_state_bytes({8, 16}));
  auto s = make_state(r, {8, 16});
  s.set_ring_stall_ms(60000);
  const std::uint64_t pos = SharedStateTestPeer::claim(s);
  ASSERT_TRUE(s.record(sighting(2, 2, "192.0.2.2")));
  Sighting out[8];
  EXPECT_EQ(s.drain(out, 8), 0u);
  EXPECT_TRUE(SharedStateTestPeer::publish(s, pos, sighting(1, 1, "192.0.2.1")));
  ASSERT_EQ(s.drain(out, 8), 2u);
  EXPECT_EQ(out[0].session, 1u);
  EXPECT_EQ(out[1].session, 2u);
  EXPECT_EQ(s.counters().ring_stalls, 0u);
}

TEST(SharedStateTable, InsertUpdateRemove) {
  Region r(shared_state_bytes({8, 64}));
  auto s = make_state(r, {8, 64});
  const std::uint32_t now = 1800000000;
  EXPECT_EQ(s.lookup(5, 77, now), RevocationState::none);
  ASSERT_TRUE(s.set_revocation(record(5, 77, RevocationState::shadow)));
  EXPECT_EQ(s.lookup(5, 77, now), RevocationState::shadow);
  EXPECT_EQ(s.lookup(6, 77, now), RevocationState::none);  // key id is part of the key
  EXPECT_EQ(s.lookup(5, 78, now), RevocationState::none);
  ASSERT_TRUE(s.set_revocation(record(5, 77, RevocationState::revoked, 2000000000, 1700000123)));
  EXPECT_EQ(s.lookup(5, 77, now), RevocationState::revoked);
  auto all = s.revocations();
  ASSERT_EQ(all.size(), 1u);  // an update, not a second entry
  EXPECT_EQ(all[0].since, 1700000123u);
  EXPECT_EQ(all[0].token_expires, 2000000000u);
  EXPECT_EQ(all[0].key_id, 5u);
  EXPECT_EQ(all[0].session, 77u);
  ASSERT_TRUE(s.set_revocation(record(5, 77, RevocationState::none)));
  EXPECT_EQ(s.lookup(5, 77, now), RevocationState::none);
  EXPECT_TRUE(s.revocations().empty());
  EXPECT_TRUE(s.set_revocation(record(5, 99, RevocationState::none)));  // removing the absent is fine
  EXPECT_EQ(s.counters().revocations_in_table, 0u);
}

TEST(SharedStateTable, CollidingChainsAndTombstoneReuse) {
  Region r(shared_state_bytes({8, 16}));
  auto s = make_state(r, {8, 16});
  const std::uint32_t now = 1800000000;
  const auto same = sessions_with_home(s, 9, 15, 4);  // last slot: chains wrap around to 0
  const auto a = same[0], b = same[1], c = same[2], d = same[3];
  for (auto x : {a, b, c}) ASSERT_TRUE(s.set_revocation(record(9, x, RevocationState::revoked)));
  for (auto x : {a, b, c}) EXPECT_EQ(s.lookup(9, x, now), RevocationState::revoked);

  ASSERT_TRUE(s.set_revocation(record(9, b, RevocationState::none)));
  EXPECT_EQ(s.counters().table_tombstones, 1u);  // c still needs the chain through b's slot
  EXPECT_EQ(s.lookup(9, b, now), RevocationState::none);
  EXPECT_EQ(s.lookup(9, c, now), RevocationState::revoked);

  ASSERT_TRUE(s.set_revocation(record(9, d, RevocationState::shadow)));
  EXPECT_EQ(s.counters().table_tombstones, 0u);  // d took b's old slot
  EXPECT_EQ(s.lookup(9, d, now), RevocationState::shadow);
  EXPECT_EQ(s.lookup(9, c, now), RevocationState::revoked);

  ASSERT_TRUE(s.set_revocation(record(9, c, RevocationState::none)));  // end of chain
  EXPECT_EQ(s.counters().table_tombstones, 0u);
  ASSERT_TRUE(s.set_revocation(record(9, a, RevocationState::none)));  // d still behind it
  EXPECT_EQ(s.counters().table_tombstones, 1u);
  EXPECT_EQ(s.lookup(9, d, now), RevocationState::shadow);
  ASSERT_TRUE(s.set_revocation(record(9, d, RevocationState::none)));  // both slots free again
  EXPECT_EQ(s.counters().table_tombstones, 0u);
  EXPECT_EQ(s.counters().revocations_in_table, 0u);
}

TEST(SharedStateTable, RefusesInsertsAboveNinetyPercent) {
  Region r(shared_state_bytes({8, 16}));
  auto s = make_state(r, {8, 16});
  const std::uint32_t now = 1800000000;
  std::uint64_t session = 1;
  for (; session <= 14; ++session) ASSERT_TRUE(s.set_revocation(record(1, session, RevocationState::revoked)));
  EXPECT_FALSE(s.set_revocation(record(1, session, RevocationState::revoked)));
  EXPECT_EQ(s.counters().table_full, 1u);
  EXPECT_EQ(s.lookup(1, session, now), RevocationState::none);
  EXPECT_TRUE(s.set_revocation(record(1, 3, RevocationState::shadow)));  // updates still work
  EXPECT_EQ(s.lookup(1, 3, now), RevocationState::shadow);
  // A removed entry's slot is reusable by a key whose chain passes it (a
  // tombstone elsewhere still counts against the load: it lengthens chains).
  ASSERT_TRUE(s.set_revocation(record(1, 4, RevocationState::none)));
  EXPECT_EQ(s.lookup(1, 4, now), RevocationState::none);
  EXPECT_TRUE(s.set_revocation(record(1, 4, RevocationState::revoked)));
  for (std::uint64_t x = 1; x <= 15; ++x) {
    EXPECT_EQ(s.lookup(1, x, now) == RevocationState::none, x == 15) << x;
  }
}

TEST(SharedStateTable, ExpiredEntriesReadAsNoneAndSweepReclaimsThem) {
  Region r(shared_state_bytes({8, 32}));
  auto s = make_state(r, {8, 32});
  ASSERT_TRUE(s.set_revocation(record(2, 10, RevocationState::revoked, 1000)));
  ASSERT_TRUE(s.set_revocation(record(2, 11, RevocationState::revoked, 2000)));
  EXPECT_EQ(s.lookup(2, 10, 1000), RevocationState::revoked);  // valid through its last second
  EXPECT_EQ(s.lookup(2, 10, 1001), RevocationState::none);
  EXPECT_EQ(s.lookup(2, 11, 1001), RevocationState::revoked);
  s.sweep(1001);
  auto left = s.revocations();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].session, 11u);
  EXPECT_EQ(s.counters().revocations_in_table, 1u);
  s.sweep(5000);
  EXPECT_TRUE(s.revocations().empty());
  const auto c = s.counters();
  EXPECT_EQ(c.revocations_in_table, 0u);
  EXPECT_EQ(c.table_tombstones, 0u);  // every slot reusable again
  for (std::uint64_t x = 0; x < 28; ++x) EXPECT_TRUE(s.set_revocation(record(3, x, RevocationState::revoked)));
}

TEST(SharedStateTable, SweepKeepsChainsOfSurvivors) {
  Region r(shared_state_bytes({8, 16}));
  auto s = make_state(r, {8, 16});
  const auto same = sessions_with_home(s, 4, 3, 3);
  ASSERT_TRUE(s.set_revocation(record(4, same[0], RevocationState::revoked, 100)));
  ASSERT_TRUE(s.set_revocation(record(4, same[1], RevocationState::revoked, 100)));
  ASSERT_TRUE(s.set_revocation(record(4, same[2], RevocationState::revoked, 900)));
  s.sweep(500);
  EXPECT_EQ(s.lookup(4, same[2], 500), RevocationState::revoked);
  EXPECT_EQ(s.counters().table_tombstones, 2u);
}

TEST(SharedStateTable, ConcurrentReadersNeverSeeTornOrMissingRecords) {
  Region r(shared_state_bytes({8, 1024}));
  auto s = make_state(r, {8, 1024});
  const std::uint32_t now = 1000;
  // Every record's fields are derived from its session, so a torn read shows
  // up as an inconsistent record. Races are timing-dependent: with the
  // version re-check removed from read_slot this failed in about one run of
  // three here, so it is a detector, not a proof.
  auto make = [](std::uint64_t session, RevocationState st) {
    return record(static_cast<std::uint16_t>(session * 7 + 1), session, st,
                  static_cast<std::uint32_t>(session * 13 + 5000), static_cast<std::uint32_t>(session * 31));
  };
  // Pinned records stay all along; churn goes on in the same chains around them.
  std::vector<std::uint64_t> pinned;
  for (std::uint64_t x = 1; x <= 64; ++x) {
    ASSERT_TRUE(s.set_revocation(make(x, RevocationState::revoked)));
    pinned.push_back(x);
  }
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> torn{0}, missing{0}, reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&, t] {
      while (!stop.load(std::memory_order_relaxed)) {
        if (t == 0) {
          for (auto x : pinned) {
            if (s.lookup(static_cast<std::uint16_t>(x * 7 + 1), x, now) != RevocationState::revoked) missing++;
          }
        } else {
          for (const auto& rec : s.revocations()) {
            const auto expect = make(rec.session, rec.state);
            if (rec.key_id != expect.key_id || rec.token_expires != expect.token_expires || rec.since != expect.since ||
                rec.state == RevocationState::none) {
              torn++;
            }
          }
        }
        reads++;
      }
    });
  }
  std::mt19937_64 rng(1);
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  for (int i = 0; i < 200000 || std::chrono::steady_clock::now() < until; ++i) {
    const std::uint64_t session = 1000 + rng() % 700;
    const auto st = static_cast<RevocationState>(rng() % 3);  // none removes
    s.set_revocation(make(session, st));
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_GT(reads.load(), 0u);
  EXPECT_EQ(torn.load(), 0u);
  EXPECT_EQ(missing.load(), 0u);
}

TEST(SharedStateTable, DeadWriterFailsOpenUntilRepaired) {
  Region r(shared_state_bytes({8, 16}));
  auto s = make_state(r, {8, 16});
  const auto same = sessions_with_home(s, 1, 6, 2);
  ASSERT_TRUE(s.set_revocation(record(1, same[0], RevocationState::revoked)));
  ASSERT_TRUE(s.set_revocation(record(1, same[1], RevocationState::revoked)));
  // Per the layout in shared_state.h: the table comes before the repeat
  // filter (8 bytes a slot without count words) at the end of the region, 32-byte slots,
  // seqlock version first. An odd version: a write began, never ended.
  unsigned char* version = r.mem + r.bytes - s.repeat_slots() * 8 - 16 * 32 + 6 * 32;
  std::uint64_t v;
  std::memcpy(&v, version, 8);
  ASSERT_EQ(v % 2, 0u);
  v += 1;
  std::memcpy(version, &v, 8);
  // Readers give up on the slot after bounded retries instead of hanging.
  EXPECT_EQ(s.lookup(1, same[1], 1), RevocationState::none);
  s.repair();
  EXPECT_EQ(s.lookup(1, same[0], 1), RevocationState::none);     // torn slot became a tombstone
  EXPECT_EQ(s.lookup(1, same[1], 1), RevocationState::revoked);  // reachable across it again
  const auto c = s.counters();
  EXPECT_EQ(c.revocations_in_table, 1u);
  EXPECT_EQ(c.table_tombstones, 1u);
}

TEST(SharedStateRegion, AttachSeesTheSameRegion) {
  Region r(shared_state_bytes({16, 64}));
  auto a = make_state(r, {16, 64});
  auto b = SharedState::attach(r.mem, r.bytes);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->ring_slots(), 16u);
  EXPECT_EQ(b->table_slots(), 64u);
  ASSERT_TRUE(a.set_revocation(record(3, 4, RevocationState::revoked)));
  EXPECT_EQ(b->lookup(3, 4, 0), RevocationState::revoked);
  ASSERT_TRUE(b->record(sighting(5, 5, "192.0.2.5")));
  Sighting out[4];
  ASSERT_EQ(a.drain(out, 4), 1u);
  EXPECT_EQ(out[0].session, 5u);
  EXPECT_FALSE(b->sidecar_ready());
  a.set_sidecar_ready(true);
  a.set_sidecar_heartbeat(1700000000123);
  EXPECT_TRUE(b->sidecar_ready());
  EXPECT_EQ(b->sidecar_heartbeat(), 1700000000123u);
}

TEST(SharedStateRegion, AttachRejectsForeignOrShortRegions) {
  const std::size_t bytes = shared_state_bytes({16, 64});
  Region r(bytes);
  EXPECT_FALSE(SharedState::attach(r.mem, r.bytes));  // never formatted
  make_state(r, {16, 64});
  EXPECT_TRUE(SharedState::attach(r.mem, bytes));
  EXPECT_FALSE(SharedState::attach(r.mem, bytes - 64));  // mapped shorter than formatted
  EXPECT_FALSE(SharedState::attach(r.mem, 100));
  EXPECT_FALSE(SharedState::attach(r.mem + 8, bytes - 8));  // misaligned
  r.mem[0] ^= 1;                                            // magic
  EXPECT_FALSE(SharedState::attach(r.mem, bytes));
  r.mem[0] ^= 1;
  EXPECT_TRUE(SharedState::attach(r.mem, bytes));
  // A header claiming a different table size no longer matches the bytes.
  std::uint32_t table;
  std::memcpy(&table, r.mem + 16, 4);
  ASSERT_EQ(table, 64u);
  table = 128;
  std::memcpy(r.mem + 16, &table, 4);
  EXPECT_FALSE(SharedState::attach(r.mem, bytes));
}

TEST(SharedStateRegion, FormatRefusesSmallOrMisalignedRegions) {
  const SharedStateLayout layout{1024, 4096};
  const std::size_t need = shared_state_bytes(layout);
  Region r(need);
  EXPECT_FALSE(SharedState::format(r.mem, need - 1, layout));
  EXPECT_FALSE(SharedState::format(r.mem + 64, need - 64, layout));  // aligned but short
  EXPECT_FALSE(SharedState::format(r.mem + 8, need - 8, {8, 16}));   // misaligned
  EXPECT_FALSE(SharedState::attach(r.mem, need));                    // failed formats left nothing attachable
  EXPECT_TRUE(SharedState::format(r.mem, need, layout));
  EXPECT_EQ(need % 64, 0u);
  EXPECT_GE(need, 1024u * 64 + 4096u * 32);
}

// The workers' repeat filter: the same token from the same address within
// about 5 s is a repeat; another network or token is news, the same one
// later a refresh.
using Seen = SharedState::Seen;

TEST(SharedStateRepeats, SameTokenSameAddressWithinFiveSecondsIsARepeat) {
  Region r(shared_state_bytes({8, 16, 64}));
  auto s = make_state(r, {8, 16, 64});
  EXPECT_EQ(s.repeat_slots(), 64u);
  const std::uint64_t t0 = 1'700'000'000'000ull;
  const Sighting a = sighting(7, t0, "198.51.100.7");
  EXPECT_EQ(s.check_repeat(a), Seen::news);
  EXPECT_EQ(s.check_repeat(sighting(7, t0 + 10, "198.51.100.7")), Seen::repeat);
  EXPECT_EQ(s.check_repeat(sighting(7, t0 + 4000, "198.51.100.7")), Seen::repeat);
  EXPECT_EQ(s.check_repeat(sighting(7, t0 + 10, "198.51.101.7")), Seen::news) << "another network";
  EXPECT_EQ(s.check_repeat(sighting(8, t0 + 10, "198.51.100.7")), Seen::news) << "another token";
  Sighting other_key = a;
  other_key.key_id = static_cast<std::uint16_t>(a.key_id + 1);
  EXPECT_EQ(s.check_repeat(other_key), Seen::news) << "another key id";
  // Past the interval it is reported again, and the interval restarts then.
  const std::uint64_t later = t0 + SharedState::kRepeatMs + 300;
  EXPECT_EQ(s.check_repeat(sighting(7, later, "198.51.100.7")), Seen::refresh);
  EXPECT_EQ(s.check_repeat(sighting(7, later + 1000, "198.51.100.7")), Seen::repeat);
  // A clock that went back is not a repeat window of 49 days.
  EXPECT_EQ(s.check_repeat(sighting(7, later - 60'000, "198.51.100.7")), Seen::refresh);
}

// The filter keys on the client network the sharing rule counts (/24,
// /48), not the address: another host of the same network adds nothing.
TEST(SharedStateRepeats, AnotherAddressOfTheSameNetworkIsARepeat) {
  Region r(shared_state_bytes({8, 16, 64}));
  auto s = make_state(r, {8, 16, 64});
  const std::uint64_t t0 = 1'700'000'000'000ull;
  EXPECT_EQ(s.check_repeat(sighting(7, t0, "198.51.100.7")), Seen::news);
  EXPECT_EQ(s.check_repeat(sighting(7, t0 + 10, "198.51.100.200")), Seen::repeat) << "same /24";
  // As a dual-stack listener reports an IPv4 client (parse_ip_address would unmap it).
  Sighting mapped = sighting(7, t0 + 20, "::1");
  const std::uint8_t mapped_bytes[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, 9};
  std::memcpy(mapped.address.bytes, mapped_bytes, 16);
  EXPECT_EQ(s.check_repeat(mapped), Seen::repeat) << "the same network, IPv4-mapped";
  EXPECT_EQ(s.check_repeat(sighting(7, t0 + 30, "198.51.101.7")), Seen::news) << "the next /24";
  EXPECT_EQ(s.check_repeat(sighting(7, t0 + 40, "2001:db8:1:2::1")), Seen::news);
  EXPECT_EQ(s.check_repeat(sighting(7, t0 + 50, "2001:db8:1:ffff::9")), Seen::repeat) << "same /48";
  EXPECT_EQ(s.check_repeat(sighting(7, t0 + 60, "2001:db8:2::1")), Seen::news) << "the next /48";
  // The worker's network is the sharing rule's.
  EXPECT_EQ(SharingPolicy().ipv4_prefix, kSharingPrefixV4);
  EXPECT_EQ(SharingPolicy().ipv6_prefix, kSharingPrefixV6);
}

// Busy tokens that share a bucket do not evict each other: seen again
// after the repeat interval, each is a refresh, not news (with one word per
// slot, 24 tokens in 64 slots collided and woke the sidecar for nothing).
TEST(SharedStateRepeats, TokensSharingABucketStayRefreshes) {
  Region r(shared_state_bytes({8, 16, 64}));
  auto s = make_state(r, {8, 16, 64});
  const std::uint64_t t0 = 1'700'000'000'000ull, later = t0 + SharedState::kRepeatMs + 300;
  for (std::uint64_t k = 0; k < 24; ++k)
    EXPECT_EQ(s.check_repeat(sighting(500 + k, t0, "203.0.113.5")), Seen::news) << k;
  for (std::uint64_t k = 0; k < 24; ++k)
    EXPECT_EQ(s.check_repeat(sighting(500 + k, later, "203.0.113.5")), Seen::refresh) << k;
}

// A region formatted again (reused memory: a freed heap block, a reused
// segment) forgets what its filter held. The gossip simulation's second
// run of a seed once met its first run's filter in a reused heap block and
// took every sighting for a repeat.
TEST(SharedStateRepeats, FormatForgetsWhatTheRegionHeld) {
  Region r(shared_state_bytes({8, 16, 64}));
  const std::uint64_t t0 = 1'700'000'000'000ull;
  auto first = make_state(r, {8, 16, 64});
  EXPECT_EQ(first.check_repeat(sighting(7, t0, "198.51.100.7")), Seen::news);
  auto second = make_state(r, {8, 16, 64});
  EXPECT_EQ(second.check_repeat(sighting(7, t0 + 10, "198.51.100.7")), Seen::news);
  EXPECT_FALSE(second.take_news()) << "nor its news flag";
}

TEST(SharedStateRepeats, ManyTokensInASmallFilterAreNeverLostOnlyRepeated) {
  Region r(shared_state_bytes({8, 16, 8}));
  auto s = make_state(r, {8, 16, 8});
  const std::uint64_t t0 = 1'700'000'000'000ull;
  // 1,000 tokens through 8 slots: each is new the first time it is seen.
  for (std::uint64_t k = 0; k < 1000; ++k)
    EXPECT_EQ(s.check_repeat(sighting(1000 + k, t0, "203.0.113.5")), Seen::news) << k;
}

// The doorbell: a worker wakes a sleeping sidecar once, for news (or a
// ring filling up) only, and only when asked.
TEST(SharedStateDoorbell, NewsTakesAnArmedDoorbellRefreshesWait) {
  Region r(shared_state_bytes({16, 16}));
  auto s = make_state(r, {16, 16});
  const std::uint64_t t0 = 1'700'000'000'000ull, later = t0 + SharedState::kRepeatMs + 300;
  EXPECT_FALSE(s.take_news());
  EXPECT_FALSE(s.report(sighting(1, t0, "192.0.2.1"))) << "news, but the sidecar is awake";
  EXPECT_TRUE(s.news_pending());
  EXPECT_TRUE(s.take_news());
  EXPECT_FALSE(s.news_pending());
  s.arm_doorbell();
  EXPECT_FALSE(s.report(sighting(1, t0 + 10, "192.0.2.1"))) << "a repeat";
  EXPECT_FALSE(s.report(sighting(1, later, "192.0.2.1"))) << "a refresh waits for the batch";
  EXPECT_FALSE(s.news_pending());
  EXPECT_TRUE(s.report(sighting(2, t0, "192.0.2.1"))) << "news rings";
  EXPECT_TRUE(s.news_pending());
  EXPECT_FALSE(s.report(sighting(3, t0, "192.0.2.1"))) << "taken once";
  s.arm_doorbell();
  s.disarm_doorbell();
  EXPECT_FALSE(s.report(sighting(4, t0, "192.0.2.1"))) << "the sidecar woke by itself";
  Sighting out[16];
  EXPECT_TRUE(s.take_news());
  ASSERT_EQ(s.drain(out, 16), 5u) << "everything but the repeat was recorded";
  // Refreshes ring once the ring is a quarter full (4 of 16 slots waiting).
  for (std::uint64_t k = 10; k < 15; ++k) s.report(sighting(k, t0, "192.0.2.1"));
  s.take_news();
  ASSERT_EQ(s.drain(out, 16), 5u);
  s.arm_doorbell();
  for (std::uint64_t k = 10; k < 14; ++k) EXPECT_FALSE(s.report(sighting(k, later, "192.0.2.1"))) << k;
  EXPECT_TRUE(s.report(sighting(14, later, "192.0.2.1"))) << "the fifth refresh waiting";
  EXPECT_EQ(s.counters().sightings_dropped, 0u);
}

// The handshake under threads: a producer reports news, the consumer takes
// the news flag, drains, arms the doorbell, checks the flag and "sleeps"
// (spins on a counter the producer bumps when it took the doorbell). News
// is never stranded: every sighting is drained, and the consumer never
// sleeps with news pending that no one will ring for.
TEST(SharedStateDoorbell, NoNewsIsLeftBehindASleepingSidecar) {
  constexpr std::uint64_t kSightings = 20000;
  Region r(shared_state_bytes({32768, 16, 65536}));  // the ring never fills
  auto s = make_state(r, {32768, 16, 65536});
  std::atomic<std::uint64_t> rung{0};
  std::thread producer([&] {
    for (std::uint64_t i = 0; i < kSightings; ++i) {
      if (s.report(sighting(i, i, "198.51.100.1"))) rung.fetch_add(1);  // each a new token: news
      if (i % 64 == 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  });
  std::uint64_t drained = 0, sleeps = 0, seen_rings = 0;
  Sighting out[64];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (drained < kSightings && std::chrono::steady_clock::now() < deadline) {
    s.take_news();
    std::size_t n;
    while ((n = s.drain(out, 64)) > 0) drained += n;
    s.arm_doorbell();
    if (s.news_pending()) {
      s.disarm_doorbell();
      continue;
    }
    ++sleeps;
    // Asleep until rung: if the handshake could lose a wakeup, this waits
    // until the deadline with news in the ring.
    while (rung.load() == seen_rings && std::chrono::steady_clock::now() < deadline && drained < kSightings) {
      if (s.news_pending() && rung.load() == seen_rings) {
        // Flagged but nobody rang: only allowed while the producer has not
        // yet reached take_doorbell for it; give it a moment.
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        if (rung.load() == seen_rings && s.news_pending()) {
          std::this_thread::sleep_for(std::chrono::milliseconds(500));  // a descheduled producer
          if (rung.load() == seen_rings) ADD_FAILURE() << "news pending and no doorbell";
          break;
        }
      }
      std::this_thread::yield();
    }
    seen_rings = rung.load();
    s.disarm_doorbell();
  }
  producer.join();
  EXPECT_EQ(drained, kSightings);
  EXPECT_EQ(s.counters().sightings_dropped, 0u);
  EXPECT_GT(sleeps, 0u);
  EXPECT_GT(rung.load(), 0u);
}

// The bulk signal's counts: each sighting the filter lets through carries
// the requests its repeats added since the previous one from that network,
// and the bytes answered to them (added after each answer).
TEST(SharedStateCounts, ASightingCarriesTheRequestsAndBytesSinceThePreviousOne) {
  Region r(shared_state_bytes({64, 16, 64, true}));
  auto s = make_state(r, {64, 16, 64, true});
  EXPECT_TRUE(s.repeat_counts());
  const std::uint64_t t0 = 1'700'000'000'000ull;
  Sighting out[8];
  Sighting first = sighting(7, t0, "198.51.100.7");
  s.report(first);
  s.add_bytes(first, 1000);
  for (int i = 1; i <= 9; ++i) {  // nine repeats within the interval, 2,000 bytes each
    const Sighting again = sighting(7, t0 + i * 100, "198.51.100.8");
    s.report(again);
    s.add_bytes(again, 2000);
  }
  ASSERT_EQ(s.drain(out, 8), 1u);
  EXPECT_EQ(out[0].requests, 1u) << "news: this request alone";
  EXPECT_EQ(out[0].bytes, 0u) << "its bytes are known only after the answer";
  s.report(sighting(7, t0 + SharedState::kRepeatMs + 300, "198.51.100.9"));
  ASSERT_EQ(s.drain(out, 8), 1u);
  EXPECT_EQ(out[0].requests, 10u) << "nine repeats and this one";
  EXPECT_EQ(out[0].bytes, 1000u + 9 * 2000u);
  // Another network's counts are its own.
  s.report(sighting(7, t0 + SharedState::kRepeatMs + 400, "198.51.101.9"));
  ASSERT_EQ(s.drain(out, 8), 1u);
  EXPECT_EQ(out[0].requests, 1u);
  EXPECT_EQ(out[0].bytes, 0u);
  // Bytes for an entry that is gone are dropped, not given to another token.
  s.add_bytes(sighting(8, t0, "203.0.113.1"), 5000);
  s.report(sighting(8, t0 + 1, "203.0.113.1"));
  ASSERT_EQ(s.drain(out, 8), 1u);
  EXPECT_EQ(out[0].bytes, 0u);
}

TEST(SharedStateCounts, NewsStartsFromNoneWhenItTakesAnotherTokensEntry) {
  Region r(shared_state_bytes({64, 16, 8, true}));
  auto s = make_state(r, {64, 16, 8, true});  // one bucket of eight
  const std::uint64_t t0 = 1'700'000'000'000ull;
  for (std::uint64_t k = 0; k < 8; ++k) {
    const Sighting a = sighting(100 + k, t0, "198.51.100.7");
    s.report(a);
    for (int i = 0; i < 5; ++i) s.report(sighting(100 + k, t0 + 10 + i, "198.51.100.7"));
    s.add_bytes(a, 777);
  }
  Sighting out[64];
  s.drain(out, 64);
  // A ninth token evicts the oldest entry: its five repeats and bytes are not the newcomer's.
  s.report(sighting(200, t0 + 100, "198.51.100.7"));
  ASSERT_EQ(s.drain(out, 64), 1u);
  EXPECT_EQ(out[0].requests, 1u);
  EXPECT_EQ(out[0].bytes, 0u);
}

// With the bulk signal off the region has no count words: a sighting is
// one request of unknown size, and bytes cost nothing.
TEST(SharedStateCounts, WithoutCountWordsASightingIsOneRequest) {
  Region r(shared_state_bytes({64, 16, 64}));
  EXPECT_EQ(shared_state_bytes({64, 16, 64, true}) - shared_state_bytes({64, 16, 64}), 64u * 8);
  auto s = make_state(r, {64, 16, 64});
  EXPECT_FALSE(s.repeat_counts());
  const std::uint64_t t0 = 1'700'000'000'000ull;
  for (int i = 0; i < 5; ++i) {
    const Sighting a = sighting(7, t0 + i, "198.51.100.7");
    s.report(a);
    s.add_bytes(a, 1000);
  }
  s.report(sighting(7, t0 + SharedState::kRepeatMs + 300, "198.51.100.7"));
  Sighting out[8];
  ASSERT_EQ(s.drain(out, 8), 2u);
  EXPECT_EQ(out[1].requests, 1u);
  EXPECT_EQ(out[1].bytes, 0u);
  // The flag is part of the layout an attaching process checks.
  auto again = SharedState::attach(r.mem, r.bytes);
  ASSERT_TRUE(again);
  EXPECT_FALSE(again->repeat_counts());
}
