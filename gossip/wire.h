// SPDX-License-Identifier: Apache-2.0
// Gossip wire format: the encrypted packet envelope and the plaintext payload,
// a sequence of typed records. Layout and rationale: docs/gossip.md.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "gossip.h"

namespace uritoken::gossip::wire {

// The envelope's version byte. It changes only if the envelope or the record
// framing does, which no rolling upgrade can cross: packets of another
// version are dropped as DropKind::kVersion. Version 1 had unframed records.
constexpr std::uint8_t kVersion = 2;
// The protocol versions this build speaks, announced in its MEMBER record.
// A version adds record types or appends fields to records; a node skips
// record types it does not know and ignores bytes after the fields it knows,
// so nodes of neighbouring versions talk during a rolling upgrade (the
// procedure: README, "Rolling upgrades"). A record that a member must
// understand may only be sent to members whose protocol_max reaches it.
constexpr std::uint8_t kProtocolMin = 2, kProtocolMax = 5;
// version(1) label_tag(4) sender(8) counter(8) time_ms(8) nonce(24)
constexpr std::size_t kHeaderSize = 1 + 4 + 8 + 8 + 8 + 24;
constexpr std::size_t kTagSize = 16;
constexpr std::size_t kOverhead = kHeaderSize + kTagSize;
constexpr std::size_t kMaxName = 64;

// Record types. Append only: a number once used is never reused or changed,
// and new types get the next number (older nodes skip them).
enum class Type : std::uint8_t {
  kPing = 1,
  kPingReq = 2,
  kAck = 3,
  kMember = 4,
  kRevoke = 5,
  kSighting = 6,
  kPpRoot = 7,
  kPpGroup = 8,
  // Protocol 5: a sighting of a subscriber (key id 0, SightingReport),
  // the body of kSighting. A type of its own, so that a node of protocol
  // 4, which would count it as a token under the default limit, skips it.
  kSubscriberSighting = 9,
};

struct Ping {
  std::uint32_t seq = 0;
  std::uint64_t target = 0;
};
struct PingReq {
  std::uint32_t seq = 0;
  std::uint64_t target = 0;
  Endpoint target_ep;
};
struct Ack {
  std::uint32_t seq = 0;
};
struct PpRoot {
  bool reply = false;
  std::uint64_t member_hash = 0;
  std::uint32_t count = 0;
  std::array<std::uint64_t, RevocationSet::kGroups> groups{};
};
struct PpGroup {
  std::uint8_t group = 0;
  std::array<std::uint64_t, RevocationSet::kBucketsPerGroup> buckets{};
};

struct Message {
  std::variant<Ping, PingReq, Ack, Member, Revocation, SightingReport, PpRoot, PpGroup> v;
};

// Appends one record: type(1) body_len(2) body. Bodies are the fields below
// in order; a later protocol version may append fields to a body.
void encode(const Message& m, std::vector<std::uint8_t>& out);
void encode_member(const Member& m, std::vector<std::uint8_t>& out);
void encode_revocation(const Revocation& r, std::vector<std::uint8_t>& out);
void encode_sighting(const SightingReport& s, std::vector<std::uint8_t>& out);
std::size_t encoded_size(const Message& m);

// Evidence as bytes: the REVOKE record's extension and the journal's ev=
// field: the networks, times and the operator's part (places, their times
// and a bulk rate have their own fields below). None of them is no bytes
// at all; otherwise n(1), n x [family(1:
// 4|6) prefix_len(1) address(4|16)], first_seen_s(4) last_seen_s(4), then
// operator, user, comment as len(1) bytes. Encoding keeps the first kMaxNetworks networks, clamps prefix_len
// and cuts strings to their limits (never inside a UTF-8 sequence), so what
// it writes always decodes.
void encode_evidence(const Evidence& e, std::vector<std::uint8_t>& out);
// Strict: false unless `size` bytes are exactly one valid encoding (a
// non-empty encoding of empty evidence is not one).
bool decode_evidence(const std::uint8_t* data, std::size_t size, Evidence& e);
// The places of the evidence (protocol 3), kept apart so that a node of
// protocol 2 still reads the rest: appended to the REVOKE body after the
// evidence as places_len(2) bytes, and in the journal as pl=. No places is
// no bytes; otherwise n(1) n x [kind(1) id(4) networks(1) flags(1:
// concurrent) weight_x10(1)], score_x100(2), limit(1).
void encode_places(const Evidence& e, std::vector<std::uint8_t>& out);
bool decode_places(const std::uint8_t* data, std::size_t size, Evidence& e);  // strict, like decode_evidence
constexpr std::size_t kMaxPlacesSize = 1 + Evidence::kMaxPlaces * 8 + 2 + 1;
// Protocol 4: each place's first and last use and a bulk verdict's rate,
// appended to the REVOKE body after the places as times_len(2) bytes, and
// in the journal as tr=; no bytes unless has_times_or_rate(). n(1) = the
// places' count, n x [first_s(4) last_s(4)], bulk_requests_per_min(4),
// bulk_bytes_per_min(8). decode_times_and_rate (after decode_places) is
// strict like decode_evidence; a later version appends after the block.
bool has_times_or_rate(const Evidence& e);
void encode_times_and_rate(const Evidence& e, std::vector<std::uint8_t>& out);
bool decode_times_and_rate(const std::uint8_t* data, std::size_t size, Evidence& e);
constexpr std::size_t kMaxTimesAndRateSize = 1 + Evidence::kMaxPlaces * 8 + 4 + 8;
// What peers see after the round trip (the deciding node stores this too).
Evidence canonical(const Evidence& e);
constexpr std::size_t kMaxEvidenceSize = 1 + Evidence::kMaxNetworks * (1 + 1 + 16) + 4 + 4 +
                                         (1 + Evidence::kMaxOperator) + (1 + Evidence::kMaxUser) +
                                         (1 + Evidence::kMaxComment);
// Each record: type(1) and body_len(2) before its body.
constexpr std::size_t kRecordHeaderSize = 3;
// REVOKE: the record header and the fixed body, then ext_len(2) and the evidence.
constexpr std::size_t kRevocationFixedSize = kRecordHeaderSize + 2 + 8 + 4 + 8 + 1 + 8 + 1 + 1;
constexpr std::size_t kMaxRevocationSize =
    kRevocationFixedSize + 2 + kMaxEvidenceSize + 2 + kMaxPlacesSize + 2 + kMaxTimesAndRateSize;
// 476 bytes: at least two of the largest fit in a default 1,200-byte packet
// (push-pull streams and piggybacking never have to split an entry).
static_assert(kOverhead + 2 * kMaxRevocationSize <= 1200, "evidence too large for a packet");

// A decoded plaintext payload: the records this build knows, in order, and
// how many it skipped because their type is newer than this build.
struct Payload {
  std::vector<Message> messages;
  std::uint32_t skipped = 0;
};
// Decodes a whole plaintext payload; nullopt if any record is truncated or
// a known record is invalid (the packet is then dropped as malformed).
std::optional<Payload> decode_payload(const std::uint8_t* data, std::size_t size);

struct Header {
  std::uint64_t sender = 0;
  std::uint64_t counter = 0;
  std::uint64_t time_ms = 0;
};

using Key = std::array<std::uint8_t, 32>;
std::array<std::uint8_t, 4> label_tag(std::string_view label);

// Encrypts `payload` into a packet: header in clear, bound with the label as
// associated data; random 24-byte XChaCha20 nonce.
std::vector<std::uint8_t> seal(const Key& key, std::string_view label, const Header& h, const std::uint8_t* payload,
                               std::size_t size);

enum class OpenResult { kOk, kMalformed, kOtherVersion, kLabel, kAuth };
// Opens a packet with the first of `keys` that authenticates it (several
// during a cluster-key rotation); `*key_index` says which.
OpenResult open(const std::vector<Key>& keys, std::string_view label, const std::uint8_t* data, std::size_t size,
                Header& h, std::vector<std::uint8_t>& payload, std::size_t* key_index = nullptr);

}  // namespace uritoken::gossip::wire
