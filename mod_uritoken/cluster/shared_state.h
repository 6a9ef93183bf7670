// SPDX-License-Identifier: Apache-2.0
// Per-server shared memory: the sightings ring and the revocation table.
//
// One region, formatted by the httpd parent before it forks (anonymous
// shared memory, so every worker and the sidecar inherit the mapping):
//
//   [control block][ring: ring_slots x 64 bytes][table: table_slots x 32 bytes]
//   [repeat filter: repeat_slots x 8 bytes, or 16 with repeat_counts: a
//    hash word and a count word]
//   (a table slot: u64 seqlock version, session, meta, times)
//
// Workers (many processes x many threads) write sightings into the ring and
// read the revocation table without locks and without system calls. The
// sidecar (one process, one thread) drains the ring and writes the table.
// Everything shared is a lock-free std::atomic on a fixed-width integer, so
// there is no data race even between processes, and the region holds no
// pointers (processes may map it at different addresses): only offsets
// and indices.
//
// Ring: Vyukov's bounded queue with a sequence number per slot. A producer
// claims a position with a CAS on the enqueue position, writes the slot and
// publishes it with a CAS of the slot's sequence (not a plain store, see
// drain()). A full ring is detected without waiting and counted as dropped.
//
// Table: open addressing with linear probing keyed by (key_id, session),
// each slot guarded by a seqlock (single writer). Removal leaves a tombstone;
// a tombstone followed by an empty slot is turned back into an empty slot,
// so tombstones do not pile up. Inserts that need an empty slot are refused
// when live entries plus tombstones would exceed 90% of the slots, so every
// miss ends at an empty slot after a short walk.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "../core/ipnet.h"
#include "../core/request_decision.h"
#include "../core/token_id.h"

namespace uritoken {

struct Sighting {             // one verified request
  std::uint64_t session = 0;  // token's random session id
  std::uint16_t key_id = 0;
  std::uint32_t client_hash = 0;    // hash of the billed client id
  std::uint32_t token_expires = 0;  // unix seconds
  std::uint64_t time_ms = 0;        // unix ms of the request
  IpAddress address;                // client address as mod_remoteip established it
  // The bulk signal's counts (report() fills them in from the repeat
  // filter): requests from this network for this token on this node since
  // its previous sighting, this one included, and the bytes answered to
  // them (add_bytes(): a request's own bytes are known only once it is
  // logged, so they travel with the next sighting).
  std::uint32_t requests = 1;
  std::uint64_t bytes = 0;
};

// The same use as the subscriber's (UriTokenSubscriberSharing): key id
// kSubscriberKeyId, session the subscriber's ref, which the ref's owners
// count across all the subscriber's tokens.
inline Sighting subscriber_sighting(Sighting token_use, std::uint64_t subscriber_ref) {
  token_use.key_id = kSubscriberKeyId;
  token_use.session = subscriber_ref;
  return token_use;
}

// The table's states (RevocationState) are a fact of the request path:
// core/request_decision.h says what each means and how a node applies it.

struct RevocationRecord {
  std::uint64_t session = 0;
  std::uint16_t key_id = 0;
  std::uint32_t token_expires = 0;  // entry is void after this (unix s)
  std::uint32_t since = 0;          // unix s of the decision
  RevocationState state = RevocationState::none;
};

// Counts are rounded up to powers of two (ring 2..2^24, table 16..2^26,
// repeat filter 8..2^26).
// UriTokenSightingsSlots and UriTokenRevocationSlots by default.
constexpr std::uint32_t kDefaultRingSlots = 16384;
constexpr std::uint32_t kDefaultTableSlots = 131072;

struct SharedStateLayout {
  std::uint32_t ring_slots = kDefaultRingSlots;
  std::uint32_t table_slots = kDefaultTableSlots;
  std::uint32_t repeat_slots = 65536;
  // The bulk signal's count words beside the repeat filter's (UriTokenBulk
  // on): 8 bytes more per slot. Without them sightings carry requests 1
  // and bytes 0, and neither a worker nor the region pays for them.
  bool repeat_counts = false;
};

struct SharedCounters {
  std::uint64_t sightings_written = 0;     // published into the ring
  std::uint64_t sightings_dropped = 0;     // ring full, or publication given up (stalled slot)
  std::uint64_t table_full = 0;            // set_revocation refused for load
  std::uint64_t revocations_in_table = 0;  // live entries (revoked, bulk or shadow, maybe expired)
  std::uint64_t sightings_drained = 0;     // taken out of the ring by the sidecar
  std::uint64_t ring_stalls = 0;           // claimed slots the sidecar skipped (producer died or stalled)
  std::uint64_t table_tombstones = 0;      // removed entries still walked over by probes
  std::uint64_t sidecar_restarts = 0;      // sidecars the parent restarted (this generation)
};

// Bytes a region needs for `layout` (after rounding), a multiple of 64.
std::size_t shared_state_bytes(const SharedStateLayout& layout);

struct SharedStateTestPeer;
namespace shm {  // region layout, defined in shared_state.cc
struct Control;
struct RingSlot;
struct TableSlot;
struct SlotView;
}  // namespace shm

// A view of a region. Cheap to copy; copies share the region. The sidecar's
// stall tracking is per object, so the sidecar should drain through one object.
class SharedState {
 public:
  // Formats a fresh region (base 64-byte aligned, >= shared_state_bytes(layout)).
  // Returns nullopt if too small or misaligned.
  static std::optional<SharedState> format(void* base, std::size_t bytes, const SharedStateLayout& layout);
  // Attaches to a region formatted before (checks magic, version, sizes).
  static std::optional<SharedState> attach(void* base, std::size_t bytes);

  // --- Workers: any process/thread, lock-free, no syscalls, never blocks.

  // False when the ring is full (counted as dropped).
  bool record(const Sighting& s) noexcept;
  // The worker's whole part in a request's sighting: the repeat filter
  // (check_repeat()'s probe), then a refresh or news into the ring. True if the caller must wake the sidecar
  // now (write its eventfd): the sighting is news, or the ring is a
  // quarter full, and the sidecar sleeps armed for it. A refresh waits for
  // the sidecar's next batch (at most about a second).
  // It also fills in the sighting's requests and bytes: what the repeats
  // since the previous one added to the filter's count word.
  bool report(const Sighting& s) noexcept;
  // After the answer: its bytes, added to the count word of the request's
  // (token, network), for the next sighting to carry. Lost if the entry
  // has been evicted since (an estimate; see docs/sharing-rule.md).
  void add_bytes(const Sighting& s, std::uint64_t bytes) noexcept;

  // What a sighting is to the repeat filter, which keys on the token and
  // the client network the sharing rule counts (sharing_network(): /24,
  // /48):
  //   repeat   seen from that network within kRepeatMs (about 5 s): skip it.
  //            A player fetching a segment every few seconds, or a page of
  //            fifty thumbnails, would otherwise send a sighting per
  //            request. A repeat changes no verdict: the detector keeps a
  //            network's last use to a tick of window/120 (5 s by
  //            default), the proxy detector counts distinct sessions, and
  //            the token's owners already know the network.
  //   refresh  seen from that network before, longer ago: it only moves
  //            the network's last use on (and, every 5 s, makes up for a
  //            lost gossip packet), so it can wait for a batch.
  //   news     the first from that network as far as the filter remembers
  //            (its slot held another token or none): it may make the token
  //            shared, so the sidecar is woken for it.
  // A table of relaxed atomic words (40 bits of hash, 24 bits of time) in
  // buckets of eight, one cache line: an eviction or a race only turns a
  // repeat into a refresh or a refresh into news, and a false "repeat"
  // needs a 40-bit hash match. The only repeat filter: the sidecar reports
  // every sighting the ring holds (a second filter there cost it a cache
  // miss each).
  enum class Seen { repeat, refresh, news };
  Seen check_repeat(const Sighting& s) noexcept { return probe(s, nullptr); }
  static constexpr std::uint64_t kRepeatMs = 5000;
  // The state of a token. Entries past token_expires read as none. A slot
  // that stays mid-write for a long time (the sidecar died while writing it)
  // reads as none: we fail open, because refusing valid tokens is worse than
  // serving a revoked one a little longer.
  // `since` (if not null) receives when the verdict was decided (unix s).
  RevocationState lookup(std::uint16_t key_id, std::uint64_t session, std::uint32_t now_s,
                         std::uint32_t* since = nullptr) const noexcept;

  // --- Sidecar: single consumer / single writer.

  // Takes up to `max` sightings out of the ring, oldest first. A slot that a
  // producer claimed but has not published blocks the ones behind it; if it
  // stays so for ring_stall_ms (the worker died between claim and publish),
  // it is skipped and counted, so one dead worker cannot stop the ring.
  std::size_t drain(Sighting* out, std::size_t max) noexcept;
  // Before each drain: clears the news flag, true if it was set. News
  // recorded from then on sets it again.
  bool take_news() noexcept;
  // Before a long sleep: arm the doorbell, then check news_pending() (and
  // disarm and not sleep if so); disarm on waking.
  void arm_doorbell() noexcept;
  void disarm_doorbell() noexcept;
  bool news_pending() const noexcept;
  // Insert or update; state none = remove. False when the table is full (counted).
  bool set_revocation(const RevocationRecord& r) noexcept;
  // Reclaims entries past token_expires (now_s > token_expires).
  void sweep(std::uint32_t now_s) noexcept;
  // Snapshot of the live entries (status page, tests), in table order.
  std::vector<RevocationRecord> revocations() const;
  // For a sidecar that starts on a region another sidecar wrote: a slot left
  // mid-write by a dead writer becomes a tombstone (its fields may be torn),
  // and the entry/tombstone counts are recomputed.
  void repair() noexcept;

  void set_sidecar_heartbeat(std::uint64_t ms) noexcept;
  void note_sidecar_restart() noexcept;  // the parent, before forking a new sidecar
  std::uint64_t sidecar_heartbeat() const noexcept;
  void set_sidecar_ready(bool ready) noexcept;
  bool sidecar_ready() const noexcept;

  // How long drain() waits on an unpublished slot before skipping it.
  void set_ring_stall_ms(std::uint64_t ms) noexcept { ring_stall_ms_ = ms; }

  SharedCounters counters() const noexcept;
  std::size_t ring_slots() const noexcept { return ring_mask_ + 1; }
  std::size_t table_slots() const noexcept { return table_mask_ + 1; }
  std::size_t repeat_slots() const noexcept { return repeat_mask_ + 1; }
  bool repeat_counts() const noexcept { return repeat_stride_ == 2; }

 private:
  friend struct SharedStateTestPeer;
  using Control = shm::Control;
  using RingSlot = shm::RingSlot;
  using TableSlot = shm::TableSlot;
  using SlotView = shm::SlotView;

  SharedState(void* base);
  bool claim(std::uint64_t* pos) noexcept;
  bool publish(std::uint64_t pos, const Sighting& s) noexcept;
  // In report(), after news was flagged: true if the sidecar asked to be
  // woken (it sleeps while there is no news) and this caller is the one to
  // wake it. One fence and one load of a line that is written only when
  // the sidecar goes to sleep.
  bool take_doorbell() noexcept;
  // check_repeat(), and where the entry's count word is (*counts; nullptr
  // without repeat_counts). An entry is a hash word (40 bits of hash, 24
  // of time) and a count word (24 bits of requests, 40 of bytes); a bucket
  // is eight hash words on one cache line, then their eight count words on
  // the next.
  Seen probe(const Sighting& s, std::atomic<std::uint64_t>** counts) noexcept;
  std::atomic<std::uint64_t>* repeat_bucket(std::uint64_t hash) const noexcept;
  static std::uint64_t home_hash(std::uint16_t key_id, std::uint64_t session) noexcept;
  bool read_slot(std::size_t i, SlotView* out) const noexcept;
  void write_slot(std::size_t i, const SlotView& v) noexcept;
  void reclaim_tombstones_before(std::size_t i) noexcept;

  Control* ctl_ = nullptr;
  RingSlot* ring_ = nullptr;
  TableSlot* table_ = nullptr;
  std::atomic<std::uint64_t>* repeat_ = nullptr;
  std::size_t repeat_mask_ = 0;
  std::size_t repeat_stride_ = 1;  // words per repeat slot: 2 with count words
  std::size_t ring_mask_ = 0;
  std::size_t table_mask_ = 0;
  // Sidecar-local: the ring position seen unpublished, and since when (steady ns).
  std::uint64_t ring_stall_ms_ = 2000;
  std::uint64_t stalled_pos_ = ~std::uint64_t{0};
  std::uint64_t stalled_since_ns_ = 0;
};

}  // namespace uritoken
