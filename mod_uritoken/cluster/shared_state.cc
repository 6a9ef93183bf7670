// SPDX-License-Identifier: Apache-2.0
// Shared memory region: lock-free sightings ring and seqlocked revocation table.
#include "shared_state.h"
#include "../core/mix.h"
#include "../core/token_id.h"

#include <atomic>
#include <chrono>
#include <cstring>
#include <new>

namespace uritoken {

namespace {

constexpr std::uint64_t kMagic = 0x314b4f5455524955ull;  // "URITOKE1" little-endian
constexpr std::uint32_t kVersion = 5;  // 2: the repeat filter; 3: the doorbell; 4: news flag, 8-way filter; 5: counts
constexpr std::uint32_t kMinRing = 2, kMaxRing = 1u << 24;
constexpr std::uint32_t kMinTable = 16, kMaxTable = 1u << 26;
constexpr std::uint32_t kMinRepeat = 8, kMaxRepeat = 1u << 26;
constexpr std::size_t kRepeatWays = 8;      // repeat-filter hash words per bucket: one cache line
constexpr unsigned kCountRequestBits = 24;  // count word: requests below, bytes above
static_assert(kMinRepeat % kRepeatWays == 0, "whole buckets");
// Readers retry a slot that is being written this many times, then fail open.
// A write is a handful of stores, so only a writer that died mid-write (or is
// descheduled for a very long time) exhausts this.
constexpr int kMaxReadRetries = 1 << 16;

using U64 = std::atomic<std::uint64_t>;
static_assert(U64::is_always_lock_free, "shared memory needs address-free 64-bit atomics");
static_assert(std::atomic<std::uint32_t>::is_always_lock_free, "shared memory needs address-free 32-bit atomics");

enum SlotStatus : std::uint64_t { kEmpty = 0, kUsed = 1, kTombstone = 2 };

std::uint32_t round_pow2(std::uint32_t n, std::uint32_t lo, std::uint32_t hi) {
  if (n < lo) n = lo;
  if (n > hi) n = hi;
  std::uint32_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

std::uint64_t table_hash(std::uint16_t key_id, std::uint64_t session) { return TokenId{key_id, session}.hash(); }

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

std::uint64_t steady_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

}  // namespace

// Each group of fields written by a different party sits on its own cache
// line, so workers bumping the enqueue position do not invalidate the line
// the sidecar polls, and the other way round.
namespace shm {

struct Control {
  struct alignas(64) Header {
    U64 magic{0};
    std::uint32_t version = 0;
    std::uint32_t ring_slots = 0;
    std::uint32_t table_slots = 0;
    std::uint32_t repeat_slots = 0;
    std::uint64_t total_bytes = 0;
    std::uint32_t repeat_counts = 0;  // 1: a count word per repeat slot
  } header;
  struct alignas(64) Producers {
    U64 enqueue_pos{0};
  } producers;
  struct alignas(64) Rare {  // written by workers only on failure
    U64 ring_full{0};
    U64 publish_failed{0};
    U64 sidecar_restarts{0};  // by the parent, when it restarts a dead sidecar
  } rare;
  struct alignas(64) Doorbell {  // the sidecar arms it before a long sleep, a worker takes it
    U64 armed{0};
  } doorbell;
  struct alignas(64) News {  // set by workers that record news, cleared by the sidecar's drain
    U64 pending{0};
  } news;
  struct alignas(64) Sidecar {  // written by the sidecar only
    U64 dequeue_pos{0};
    U64 drained{0};
    U64 stalls{0};
    U64 heartbeat_ms{0};
    U64 ready{0};
    U64 table_full{0};
    U64 table_used{0};
    U64 table_tombstones{0};
  } sidecar;
};
static_assert(sizeof(shm::Control) == std::size_t{6} * 64, "control block layout");

// The sighting is seven relaxed atomic words, so a producer that stalls past
// the consumer's patience (see drain) can at worst garble one sighting, never
// cause undefined behaviour.
struct alignas(64) RingSlot {
  U64 seq{0};
  U64 words[7] = {};
};
static_assert(sizeof(shm::RingSlot) == 64, "one ring slot per cache line");

struct TableSlot {
  U64 version{0};  // seqlock: odd while the sidecar writes the slot
  U64 session{0};
  U64 meta{0};   // key_id bits 0-15, state bits 16-23, SlotStatus bits 24-25
  U64 times{0};  // token_expires bits 0-31, since bits 32-63
};
static_assert(sizeof(shm::TableSlot) == 32, "table slot layout");

struct SlotView {
  std::uint64_t session = 0, meta = 0, times = 0;
  std::uint64_t status() const { return (meta >> 24) & 3; }
  std::uint16_t key_id() const { return static_cast<std::uint16_t>(meta); }
  RevocationState state() const { return static_cast<RevocationState>((meta >> 16) & 0xff); }
  std::uint32_t expires() const { return static_cast<std::uint32_t>(times); }
  std::uint32_t since() const { return static_cast<std::uint32_t>(times >> 32); }
  static SlotView make(const RevocationRecord& r, std::uint64_t status) {
    SlotView v;
    v.session = r.session;
    v.meta = std::uint64_t{r.key_id} | (std::uint64_t{static_cast<std::uint8_t>(r.state)} << 16) | (status << 24);
    v.times = std::uint64_t{r.token_expires} | (std::uint64_t{r.since} << 32);
    return v;
  }
};

}  // namespace shm

namespace {

std::size_t ring_offset() { return sizeof(shm::Control); }

}  // namespace

std::size_t shared_state_bytes(const SharedStateLayout& layout) {
  const std::size_t ring = round_pow2(layout.ring_slots, kMinRing, kMaxRing);
  const std::size_t table = round_pow2(layout.table_slots, kMinTable, kMaxTable);
  const std::size_t repeat = round_pow2(layout.repeat_slots, kMinRepeat, kMaxRepeat);
  return sizeof(shm::Control) + ring * 64 + table * 32 + repeat * (layout.repeat_counts ? 16 : 8);
}

SharedState::SharedState(void* base) {
  auto* bytes = static_cast<unsigned char*>(base);
  ctl_ = reinterpret_cast<Control*>(bytes);
  ring_mask_ = ctl_->header.ring_slots - 1;
  table_mask_ = ctl_->header.table_slots - 1;
  ring_ = reinterpret_cast<RingSlot*>(bytes + ring_offset());
  table_ = reinterpret_cast<TableSlot*>(bytes + ring_offset() + (ring_mask_ + 1) * sizeof(RingSlot));
  repeat_mask_ = ctl_->header.repeat_slots - 1;
  repeat_stride_ = ctl_->header.repeat_counts != 0 ? 2 : 1;
  repeat_ = reinterpret_cast<std::atomic<std::uint64_t>*>(reinterpret_cast<unsigned char*>(table_) +
                                                          (table_mask_ + 1) * sizeof(TableSlot));
}

std::optional<SharedState> SharedState::format(void* base, std::size_t bytes, const SharedStateLayout& layout) {
  if (base == nullptr || reinterpret_cast<std::uintptr_t>(base) % 64 != 0) return std::nullopt;
  const std::size_t need = shared_state_bytes(layout);
  if (bytes < need) return std::nullopt;
  const std::uint32_t ring = round_pow2(layout.ring_slots, kMinRing, kMaxRing);
  const std::uint32_t table = round_pow2(layout.table_slots, kMinTable, kMaxTable);
  const std::uint32_t repeat = round_pow2(layout.repeat_slots, kMinRepeat, kMaxRepeat);
  // Zero first: std::atomic's default constructor (C++17) leaves the value
  // unset, and a repeat filter of leftover bytes calls news "repeat".
  std::memset(base, 0, need);
  auto* ctl = new (base) Control();
  ctl->header.version = kVersion;
  ctl->header.ring_slots = ring;
  ctl->header.table_slots = table;
  ctl->header.repeat_slots = repeat;
  ctl->header.repeat_counts = layout.repeat_counts ? 1 : 0;
  ctl->header.total_bytes = need;
  auto* p = static_cast<unsigned char*>(base) + ring_offset();
  auto* ring_slots = new (p) RingSlot[ring];
  for (std::uint32_t i = 0; i < ring; ++i) ring_slots[i].seq.store(i, std::memory_order_relaxed);
  new (p + std::size_t{ring} * sizeof(RingSlot)) TableSlot[table];
  new (p + std::size_t{ring} * sizeof(RingSlot) + std::size_t{table} * sizeof(TableSlot))
      U64[std::size_t{repeat} * (layout.repeat_counts ? 2 : 1)];
  // Magic last: a region is either recognisably complete or not attachable.
  ctl->header.magic.store(kMagic, std::memory_order_release);
  return SharedState(base);
}

std::optional<SharedState> SharedState::attach(void* base, std::size_t bytes) {
  if (base == nullptr || reinterpret_cast<std::uintptr_t>(base) % 64 != 0) return std::nullopt;
  if (bytes < sizeof(Control)) return std::nullopt;
  auto* ctl = static_cast<Control*>(base);
  if (ctl->header.magic.load(std::memory_order_acquire) != kMagic) return std::nullopt;
  if (ctl->header.version != kVersion) return std::nullopt;
  const std::uint32_t ring = ctl->header.ring_slots, table = ctl->header.table_slots, repeat = ctl->header.repeat_slots;
  // The stored counts must be exactly what format() would have produced.
  if (round_pow2(ring, kMinRing, kMaxRing) != ring || round_pow2(table, kMinTable, kMaxTable) != table ||
      round_pow2(repeat, kMinRepeat, kMaxRepeat) != repeat) {
    return std::nullopt;
  }
  if (ctl->header.repeat_counts > 1) return std::nullopt;
  const std::size_t need = shared_state_bytes(SharedStateLayout{ring, table, repeat, ctl->header.repeat_counts == 1});
  if (ctl->header.total_bytes != need || bytes < need) return std::nullopt;
  return SharedState(base);
}

// ---------------------------------------------------------------- ring

bool SharedState::claim(std::uint64_t* out_pos) noexcept {
  U64& enqueue = ctl_->producers.enqueue_pos;
  std::uint64_t pos = enqueue.load(std::memory_order_relaxed);
  for (;;) {
    RingSlot& slot = ring_[pos & ring_mask_];
    const std::uint64_t seq = slot.seq.load(std::memory_order_acquire);
    const auto diff = static_cast<std::int64_t>(seq - pos);
    if (diff == 0) {
      if (enqueue.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
        *out_pos = pos;
        return true;
      }
      // pos now holds the current position; retry there.
    } else if (diff < 0) {
      // The slot still holds a sighting of the previous lap: full.
      ctl_->rare.ring_full.fetch_add(1, std::memory_order_relaxed);
      return false;
    } else {
      pos = enqueue.load(std::memory_order_relaxed);
    }
  }
}

std::atomic<std::uint64_t>* SharedState::repeat_bucket(std::uint64_t h) const noexcept {
  return repeat_ + repeat_stride_ * (h & repeat_mask_ & ~std::uint64_t{kRepeatWays - 1});
}

namespace {

std::uint64_t repeat_hash(const Sighting& s) {
  const IpAddress net = sharing_network(s.address);
  std::uint64_t addr[2];
  std::memcpy(addr, net.bytes, sizeof addr);
  return mix64(table_hash(s.key_id, s.session) ^ splitmix64(addr[0] ^ splitmix64(addr[1] + net.v6)));
}

constexpr std::uint64_t kTimeBits = 24, kTimeMask = (1ull << kTimeBits) - 1;

}  // namespace

SharedState::Seen SharedState::probe(const Sighting& s, std::atomic<std::uint64_t>** counts) noexcept {
  const std::uint64_t h = repeat_hash(s);
  constexpr std::uint64_t kUnitShift = 8;  // 256 ms
  constexpr std::uint64_t kRepeatUnits = (kRepeatMs + (1ull << kUnitShift) - 1) >> kUnitShift;
  const std::uint64_t now = (s.time_ms >> kUnitShift) & kTimeMask;
  const std::uint64_t hash_bits = h & ~kTimeMask;
  // Eight ways, one cache line: with one word per slot, 4% of 10,000 busy
  // tokens (in 262,144 slots) evicted each other at every sighting and
  // turned refreshes into news. The oldest (or an empty) word makes room.
  std::atomic<std::uint64_t>* bucket = repeat_bucket(h);
  std::size_t victim = 0;
  std::uint64_t victim_age = 0;
  for (std::size_t i = 0; i < kRepeatWays; ++i) {
    const std::uint64_t word = bucket[i].load(std::memory_order_relaxed);
    if (word != 0 && (word & ~kTimeMask) == hash_bits) {
      if (counts != nullptr && repeat_stride_ == 2) *counts = &bucket[kRepeatWays + i];
      if (((now - word) & kTimeMask) < kRepeatUnits) return Seen::repeat;
      bucket[i].store(hash_bits | now, std::memory_order_relaxed);
      return Seen::refresh;
    }
    const std::uint64_t age = word == 0 ? kTimeMask + 1 : (now - word) & kTimeMask;
    if (age > victim_age) {
      victim = i;
      victim_age = age;
    }
  }
  bucket[victim].store(hash_bits | now, std::memory_order_relaxed);
  if (repeat_stride_ == 2) {
    // The victim's counts were another token's: news starts from none.
    bucket[kRepeatWays + victim].store(0, std::memory_order_relaxed);
    if (counts != nullptr) *counts = &bucket[kRepeatWays + victim];
  }
  return Seen::news;
}

void SharedState::add_bytes(const Sighting& s, std::uint64_t bytes) noexcept {
  if (bytes == 0 || repeat_stride_ != 2) return;
  const std::uint64_t h = repeat_hash(s);
  const std::uint64_t hash_bits = h & ~kTimeMask;
  std::atomic<std::uint64_t>* bucket = repeat_bucket(h);
  for (std::size_t i = 0; i < kRepeatWays; ++i) {
    const std::uint64_t word = bucket[i].load(std::memory_order_relaxed);
    if (word != 0 && (word & ~kTimeMask) == hash_bits) {
      bucket[kRepeatWays + i].fetch_add(bytes << kCountRequestBits, std::memory_order_relaxed);
      return;
    }
  }
}

bool SharedState::report(const Sighting& s) noexcept {
  std::atomic<std::uint64_t>* counts = nullptr;
  const Seen seen = probe(s, &counts);
  if (seen == Seen::repeat) {
    if (counts != nullptr) counts->fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  // What the repeats since the previous sighting added, with this request.
  const std::uint64_t since = counts != nullptr ? counts->exchange(0, std::memory_order_relaxed) : 0;
  Sighting out = s;
  out.requests = static_cast<std::uint32_t>(since & ((1u << kCountRequestBits) - 1)) + 1;
  out.bytes = since >> kCountRequestBits;
  std::uint64_t pos;
  if (!claim(&pos) || !publish(pos, out)) {
    if (counts != nullptr && since != 0) counts->fetch_add(since, std::memory_order_relaxed);  // for the next one
    return false;
  }
  // A ring a quarter full is drained now whatever it holds, long before it
  // could overflow while the sidecar waits to batch refreshes. (The
  // sidecar may already have drained past pos: signed.)
  const std::uint64_t dequeued = ctl_->sidecar.dequeue_pos.load(std::memory_order_relaxed);
  const auto waiting = static_cast<std::int64_t>(pos - dequeued);
  if (seen == Seen::refresh && waiting < static_cast<std::int64_t>((ring_mask_ + 1) / 4)) return false;
  // Release: a sidecar that reads the flag also reads the sighting.
  ctl_->news.pending.store(1, std::memory_order_release);
  return take_doorbell();
}

// The doorbell is Dekker's handshake: the sidecar stores `armed` and then
// looks at the news flag; a worker stores the flag and then looks at
// `armed`. With a full fence between each side's store and load, at least
// one of them sees the other's store, so news is never left waiting for
// the sidecar's long sleep to end.
void SharedState::arm_doorbell() noexcept {
  ctl_->doorbell.armed.store(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

void SharedState::disarm_doorbell() noexcept { ctl_->doorbell.armed.store(0, std::memory_order_relaxed); }

bool SharedState::take_doorbell() noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  U64& armed = ctl_->doorbell.armed;
  return armed.load(std::memory_order_relaxed) != 0 && armed.exchange(0, std::memory_order_relaxed) != 0;
}

bool SharedState::news_pending() const noexcept { return ctl_->news.pending.load(std::memory_order_acquire) != 0; }

bool SharedState::take_news() noexcept { return ctl_->news.pending.exchange(0, std::memory_order_acquire) != 0; }

bool SharedState::record(const Sighting& s) noexcept {
  std::uint64_t pos;
  return claim(&pos) && publish(pos, s);
}

bool SharedState::publish(std::uint64_t pos, const Sighting& s) noexcept {
  RingSlot& slot = ring_[pos & ring_mask_];
  std::uint64_t addr[2];
  std::memcpy(addr, s.address.bytes, sizeof addr);
  slot.words[0].store(s.session, std::memory_order_relaxed);
  slot.words[1].store(s.time_ms, std::memory_order_relaxed);
  slot.words[2].store(
      std::uint64_t{s.key_id} | (std::uint64_t{s.token_expires} << 16) | (std::uint64_t{s.address.v6} << 48),
      std::memory_order_relaxed);
  slot.words[3].store(std::uint64_t{s.client_hash} | (std::uint64_t{s.requests} << 32), std::memory_order_relaxed);
  slot.words[4].store(addr[0], std::memory_order_relaxed);
  slot.words[5].store(addr[1], std::memory_order_relaxed);
  slot.words[6].store(s.bytes, std::memory_order_relaxed);
  // A CAS rather than a store: if the sidecar gave up on this slot (we were
  // stalled for seconds), it already handed it to the next lap, and our
  // sighting must be dropped instead of overwriting that lap's sequence.
  std::uint64_t expected = pos;
  if (!slot.seq.compare_exchange_strong(expected, pos + 1, std::memory_order_release, std::memory_order_relaxed)) {
    ctl_->rare.publish_failed.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

std::size_t SharedState::drain(Sighting* out, std::size_t max) noexcept {
  auto& sc = ctl_->sidecar;
  std::uint64_t pos = sc.dequeue_pos.load(std::memory_order_relaxed);
  const std::uint64_t lap = ring_mask_ + 1;
  std::size_t n = 0;
  std::uint64_t skipped = 0;
  while (n < max) {
    RingSlot& slot = ring_[pos & ring_mask_];
    std::uint64_t seq = slot.seq.load(std::memory_order_acquire);
    if (seq == pos + 1) {
      const std::uint64_t w2 = slot.words[2].load(std::memory_order_relaxed);
      std::uint64_t addr[2] = {slot.words[4].load(std::memory_order_relaxed),
                               slot.words[5].load(std::memory_order_relaxed)};
      Sighting& s = out[n++];
      s = Sighting();
      s.session = slot.words[0].load(std::memory_order_relaxed);
      s.time_ms = slot.words[1].load(std::memory_order_relaxed);
      s.key_id = static_cast<std::uint16_t>(w2);
      s.token_expires = static_cast<std::uint32_t>(w2 >> 16);
      s.address.v6 = ((w2 >> 48) & 1) != 0;
      const std::uint64_t w3 = slot.words[3].load(std::memory_order_relaxed);
      s.client_hash = static_cast<std::uint32_t>(w3);
      s.requests = static_cast<std::uint32_t>(w3 >> 32);
      s.bytes = slot.words[6].load(std::memory_order_relaxed);
      std::memcpy(s.address.bytes, addr, sizeof addr);
      slot.seq.store(pos + lap, std::memory_order_release);  // free for the next lap
      ++pos;
      continue;
    }
    if (seq != pos) break;  // cannot happen with one consumer; stop rather than guess
    // Unpublished: empty, or claimed by a producer that has not finished.
    if (ctl_->producers.enqueue_pos.load(std::memory_order_relaxed) == pos) break;  // empty
    const std::uint64_t now = steady_ns();
    if (stalled_pos_ != pos) {
      stalled_pos_ = pos;
      stalled_since_ns_ = now;
      break;
    }
    if (now - stalled_since_ns_ < ring_stall_ms_ * 1000000) break;
    // Give the slot to the next lap. If the producer publishes at this very
    // moment, one CAS wins: either we read its sighting or it counts a drop.
    if (slot.seq.compare_exchange_strong(seq, pos + lap, std::memory_order_acq_rel, std::memory_order_acquire)) {
      ++pos;
      ++skipped;
    }
  }
  if (n > 0 || skipped > 0) stalled_pos_ = ~std::uint64_t{0};
  sc.dequeue_pos.store(pos, std::memory_order_relaxed);
  if (n > 0) sc.drained.fetch_add(n, std::memory_order_relaxed);
  if (skipped > 0) sc.stalls.fetch_add(skipped, std::memory_order_relaxed);
  return n;
}

// ---------------------------------------------------------------- table

bool SharedState::read_slot(std::size_t i, SlotView* out) const noexcept {
  const TableSlot& slot = table_[i];
  for (int tries = 0; tries < kMaxReadRetries; ++tries) {
    const std::uint64_t v1 = slot.version.load(std::memory_order_acquire);
    if (v1 & 1) {
      cpu_relax();
      continue;
    }
    out->session = slot.session.load(std::memory_order_relaxed);
    out->meta = slot.meta.load(std::memory_order_relaxed);
    out->times = slot.times.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (slot.version.load(std::memory_order_relaxed) == v1) return true;
  }
  return false;
}

void SharedState::write_slot(std::size_t i, const SlotView& v) noexcept {
  TableSlot& slot = table_[i];
  const std::uint64_t version = slot.version.load(std::memory_order_relaxed);
  slot.version.store(version + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);  // odd version visible before any field
  slot.session.store(v.session, std::memory_order_relaxed);
  slot.meta.store(v.meta, std::memory_order_relaxed);
  slot.times.store(v.times, std::memory_order_relaxed);
  slot.version.store(version + 2, std::memory_order_release);
}

std::uint64_t SharedState::home_hash(std::uint16_t key_id, std::uint64_t session) noexcept {
  return table_hash(key_id, session);
}

RevocationState SharedState::lookup(std::uint16_t key_id, std::uint64_t session, std::uint32_t now_s,
                                    std::uint32_t* since) const noexcept {
  std::size_t i = home_hash(key_id, session) & table_mask_;
  for (std::size_t probes = 0; probes <= table_mask_; ++probes, i = (i + 1) & table_mask_) {
    SlotView v;
    if (!read_slot(i, &v)) return RevocationState::none;  // fail open, see header
    if (v.status() == kEmpty) return RevocationState::none;
    if (v.status() == kUsed && v.session == session && v.key_id() == key_id) {
      if (since != nullptr) *since = v.since();
      return now_s > v.expires() ? RevocationState::none : v.state();
    }
  }
  return RevocationState::none;
}

void SharedState::reclaim_tombstones_before(std::size_t i) noexcept {
  // Slot i is a tombstone. If the next slot is empty, no probe chain needs
  // slot i to continue past it, so it can become empty; repeat backwards.
  auto& sc = ctl_->sidecar;
  for (std::size_t steps = 0; steps <= table_mask_; ++steps) {
    SlotView cur, next;
    read_slot(i, &cur);
    read_slot((i + 1) & table_mask_, &next);
    if (cur.status() != kTombstone || next.status() != kEmpty) return;
    write_slot(i, SlotView());
    sc.table_tombstones.fetch_sub(1, std::memory_order_relaxed);
    i = (i - 1) & table_mask_;
  }
}

bool SharedState::set_revocation(const RevocationRecord& r) noexcept {
  auto& sc = ctl_->sidecar;
  std::size_t i = home_hash(r.key_id, r.session) & table_mask_;
  std::size_t first_tombstone = ~std::size_t{0}, empty = ~std::size_t{0};
  for (std::size_t probes = 0; probes <= table_mask_; ++probes, i = (i + 1) & table_mask_) {
    SlotView v;
    read_slot(i, &v);
    if (v.status() == kEmpty) {
      empty = i;
      break;
    }
    if (v.status() == kTombstone) {
      if (first_tombstone == ~std::size_t{0}) first_tombstone = i;
      continue;
    }
    if (v.session != r.session || v.key_id() != r.key_id) continue;
    if (r.state == RevocationState::none) {
      write_slot(i, SlotView::make(RevocationRecord(), kTombstone));
      sc.table_used.fetch_sub(1, std::memory_order_relaxed);
      sc.table_tombstones.fetch_add(1, std::memory_order_relaxed);
      reclaim_tombstones_before(i);
    } else {
      write_slot(i, SlotView::make(r, kUsed));
    }
    return true;
  }
  if (r.state == RevocationState::none) return true;  // nothing to remove
  std::size_t target = first_tombstone;
  if (target == ~std::size_t{0}) {
    // Taking an empty slot lengthens probe chains: keep 10% of slots empty
    // so that a miss always ends soon.
    const std::uint64_t used =
        sc.table_used.load(std::memory_order_relaxed) + sc.table_tombstones.load(std::memory_order_relaxed);
    if (empty == ~std::size_t{0} || used + 1 > (table_mask_ + 1) * 9 / 10) {
      sc.table_full.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    target = empty;
  } else {
    sc.table_tombstones.fetch_sub(1, std::memory_order_relaxed);
  }
  write_slot(target, SlotView::make(r, kUsed));
  sc.table_used.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void SharedState::sweep(std::uint32_t now_s) noexcept {
  auto& sc = ctl_->sidecar;
  // An empty table (the usual case) is not read at all: it is megabytes
  // that the sidecar would pull through the cache every few seconds.
  if (sc.table_used.load(std::memory_order_relaxed) == 0 && sc.table_tombstones.load(std::memory_order_relaxed) == 0) {
    return;
  }
  for (std::size_t i = 0; i <= table_mask_; ++i) {
    SlotView v;
    read_slot(i, &v);
    if (v.status() != kUsed || now_s <= v.expires()) continue;
    write_slot(i, SlotView::make(RevocationRecord(), kTombstone));
    sc.table_used.fetch_sub(1, std::memory_order_relaxed);
    sc.table_tombstones.fetch_add(1, std::memory_order_relaxed);
    reclaim_tombstones_before(i);
  }
  // A tombstone whose successor became empty later in the pass (wrap-around).
  if (sc.table_tombstones.load(std::memory_order_relaxed) == 0) return;
  for (std::size_t i = table_mask_ + 1; i-- > 0;) {
    SlotView v;
    read_slot(i, &v);
    if (v.status() == kTombstone) reclaim_tombstones_before(i);
  }
}

std::vector<RevocationRecord> SharedState::revocations() const {
  std::vector<RevocationRecord> out;
  for (std::size_t i = 0; i <= table_mask_; ++i) {
    SlotView v;
    if (!read_slot(i, &v) || v.status() != kUsed) continue;
    RevocationRecord r;
    r.session = v.session;
    r.key_id = v.key_id();
    r.token_expires = v.expires();
    r.since = v.since();
    r.state = v.state();
    out.push_back(r);
  }
  return out;
}

void SharedState::repair() noexcept {
  std::uint64_t used = 0, tombstones = 0;
  for (std::size_t i = 0; i <= table_mask_; ++i) {
    TableSlot& slot = table_[i];
    const std::uint64_t version = slot.version.load(std::memory_order_relaxed);
    if (version & 1) {
      // Complete the dead writer's seqlock section with a tombstone.
      slot.session.store(0, std::memory_order_relaxed);
      slot.meta.store(std::uint64_t{kTombstone} << 24, std::memory_order_relaxed);
      slot.times.store(0, std::memory_order_relaxed);
      slot.version.store(version + 1, std::memory_order_release);
    }
    const std::uint64_t status = (slot.meta.load(std::memory_order_relaxed) >> 24) & 3;
    used += status == kUsed;
    tombstones += status == kTombstone;
  }
  ctl_->sidecar.table_used.store(used, std::memory_order_relaxed);
  ctl_->sidecar.table_tombstones.store(tombstones, std::memory_order_relaxed);
  for (std::size_t i = table_mask_ + 1; i-- > 0;) {
    SlotView v;
    read_slot(i, &v);
    if (v.status() == kTombstone) reclaim_tombstones_before(i);
  }
}

// ---------------------------------------------------------------- sidecar status

void SharedState::set_sidecar_heartbeat(std::uint64_t ms) noexcept {
  ctl_->sidecar.heartbeat_ms.store(ms, std::memory_order_relaxed);
}
std::uint64_t SharedState::sidecar_heartbeat() const noexcept {
  return ctl_->sidecar.heartbeat_ms.load(std::memory_order_relaxed);
}
void SharedState::set_sidecar_ready(bool ready) noexcept {
  ctl_->sidecar.ready.store(ready ? 1 : 0, std::memory_order_release);
}
bool SharedState::sidecar_ready() const noexcept { return ctl_->sidecar.ready.load(std::memory_order_acquire) != 0; }

void SharedState::note_sidecar_restart() noexcept {
  ctl_->rare.sidecar_restarts.fetch_add(1, std::memory_order_relaxed);
}

SharedCounters SharedState::counters() const noexcept {
  SharedCounters c;
  const auto& sc = ctl_->sidecar;
  const std::uint64_t claimed = ctl_->producers.enqueue_pos.load(std::memory_order_relaxed);
  const std::uint64_t publish_failed = ctl_->rare.publish_failed.load(std::memory_order_relaxed);
  c.sightings_written = claimed - publish_failed;
  c.sightings_dropped = ctl_->rare.ring_full.load(std::memory_order_relaxed) + publish_failed;
  c.table_full = sc.table_full.load(std::memory_order_relaxed);
  c.revocations_in_table = sc.table_used.load(std::memory_order_relaxed);
  c.sightings_drained = sc.drained.load(std::memory_order_relaxed);
  c.ring_stalls = sc.stalls.load(std::memory_order_relaxed);
  c.table_tombstones = sc.table_tombstones.load(std::memory_order_relaxed);
  c.sidecar_restarts = ctl_->rare.sidecar_restarts.load(std::memory_order_relaxed);
  return c;
}

}  // namespace uritoken
