// SPDX-License-Identifier: Apache-2.0
// Payload codec round trips and the packet envelope's rejections, each
// counted in its own Stats field.
#include <gtest/gtest.h>
#include <sodium.h>

#include <cstring>
#include <set>
#include <variant>

#include "../../gossip/testing.h"
#include "../../gossip/gossip.h"
#include "../../gossip/wire.h"

using namespace uritoken::gossip;

namespace {

constexpr std::uint64_t kNow = 1'700'000'000'000ULL;

Revocation sample_revocation() {
  Revocation r;
  r.token = {7, 0x1122334455667788ULL};
  r.token_expires = 1'700'003'600;
  r.stamp_ms = kNow + 5;
  r.pardon = false;
  r.shadow = true;
  r.origin = 42;
  r.reason = uritoken::gossip::VerdictReason::shared;
  r.networks = 9;
  return r;
}

// Evidence at every limit: the most networks, v4 and v6, strings full.
Evidence full_evidence() {
  Evidence e;
  for (std::size_t i = 0; i < Evidence::kMaxNetworks; ++i) {
    Evidence::Network n;
    n.v6 = i % 2;
    n.prefix_len = n.v6 ? 48 : 24;
    for (int b = 0; b < (n.v6 ? 6 : 3); ++b) n.bytes[b] = static_cast<std::uint8_t>(0x20 + i * 16 + b);
    e.networks.push_back(n);
  }
  e.first_seen_s = 1'700'000'000;
  e.last_seen_s = 1'700'000'042;
  e.operator_address = std::string(Evidence::kMaxOperator, 'o');
  e.user = std::string(Evidence::kMaxUser, 'u');
  e.comment = std::string(Evidence::kMaxComment, 'c');
  for (std::size_t i = 0; i < Evidence::kMaxPlaces; ++i) {
    Evidence::Place p;
    p.kind = i % 2 ? Evidence::Place::kAs : 0;
    p.id = 64500 + static_cast<std::uint32_t>(i);
    p.networks = static_cast<std::uint8_t>(i + 1);
    p.concurrent = i != 2;
    p.weight_x10 = static_cast<std::uint8_t>(10 + i);
    p.first_s = 1'700'000'000 + static_cast<std::uint32_t>(i);  // protocol 4
    p.last_s = 1'700'000'040 + static_cast<std::uint32_t>(i);
    e.places.push_back(p);
  }
  e.score_x100 = 430;
  e.limit = 3;
  e.bulk_requests_per_min = 4321;  // protocol 4: only a bulk verdict has them, but every field is filled here
  e.bulk_bytes_per_min = 0x123456789aULL;
  return e;
}

Revocation revocation_with_evidence() {
  Revocation r = sample_revocation();
  r.evidence = full_evidence();
  return r;
}

SightingReport sample_sighting(bool v6) {
  SightingReport s;
  s.token = {3, 99};
  s.token_expires = 1'700'000'300;
  s.network[0] = v6 ? 6 : 4;
  for (int i = 1; i <= (v6 ? 16 : 4); ++i) s.network[i] = static_cast<std::uint8_t>(i * 11);
  s.shared_network = true;
  s.client_hash = 0xdeadbeef;
  s.time_ms = kNow - 3;
  if (v6) {  // protocol 3: where the observing node placed it
    s.place_kind = 1;
    s.place_id = 64501;
    s.country[0] = 'D';
    s.country[1] = 'E';
    s.requests = 17;  // protocol 4: the bulk signal's counts
    s.bytes = 0x1234567890ULL;
  }
  return s;
}

// A protocol 2 node's SIGHTING (no place) decodes with place_kind 0, which
// the owner turns into the fallback place; a place kind past 3 is malformed.
TEST(GossipWire, SightingWithoutPlaceIsFromAnOlderNode) {
  std::vector<std::uint8_t> buf;
  wire::encode({sample_sighting(false)}, buf);
  buf.resize(buf.size() - 12 - 7);  // protocol 4's counts, protocol 3's place
  buf[2] = static_cast<std::uint8_t>(buf.size() - wire::kRecordHeaderSize);
  auto back = wire::decode_payload(buf.data(), buf.size());
  ASSERT_TRUE(back);
  EXPECT_EQ(std::get<SightingReport>(back->messages[0].v).place_kind, 0);
  EXPECT_EQ(std::get<SightingReport>(back->messages[0].v), sample_sighting(false));
  // A protocol 3 node's (no counts): one request, no bytes.
  buf.clear();
  wire::encode({sample_sighting(true)}, buf);
  buf.resize(buf.size() - 12);
  buf[2] = static_cast<std::uint8_t>(buf.size() - wire::kRecordHeaderSize);
  back = wire::decode_payload(buf.data(), buf.size());
  ASSERT_TRUE(back);
  const auto& older = std::get<SightingReport>(back->messages[0].v);
  EXPECT_EQ(older.requests, 1u);
  EXPECT_EQ(older.bytes, 0u);
  EXPECT_EQ(older.place_id, 64501u);
  buf.clear();
  SightingReport bad = sample_sighting(true);
  bad.place_kind = 4;
  wire::encode({bad}, buf);
  EXPECT_FALSE(wire::decode_payload(buf.data(), buf.size()));
}

SightingReport subscriber_sighting() {
  SightingReport s = sample_sighting(true);
  s.token = {0, 0x5ab5c21bef000001ULL};
  return s;
}

// Protocol 5: a subscriber's sighting (key id 0) is a record of its own
// type, which a protocol 4 node skips rather than count it as a token; a
// token's sighting never has key id 0, nor a subscriber's another.
TEST(GossipWire, ASubscriberSightingIsItsOwnRecordType) {
  const SightingReport s = subscriber_sighting();
  std::vector<std::uint8_t> buf;
  wire::encode({s}, buf);
  EXPECT_EQ(buf[0], static_cast<std::uint8_t>(wire::Type::kSubscriberSighting));
  auto back = wire::decode_payload(buf.data(), buf.size());
  ASSERT_TRUE(back);
  ASSERT_EQ(back->messages.size(), 1u);
  EXPECT_EQ(std::get<SightingReport>(back->messages[0].v), s);
  EXPECT_TRUE(is_subscriber(std::get<SightingReport>(back->messages[0].v)));
  std::vector<std::uint8_t> token;
  wire::encode({sample_sighting(true)}, token);
  EXPECT_EQ(token[0], static_cast<std::uint8_t>(wire::Type::kSighting));
  // Each type with the other's key id: malformed.
  std::vector<std::uint8_t> bad = buf;
  bad[0] = static_cast<std::uint8_t>(wire::Type::kSighting);
  EXPECT_FALSE(wire::decode_payload(bad.data(), bad.size()));
  bad = token;
  bad[0] = static_cast<std::uint8_t>(wire::Type::kSubscriberSighting);
  EXPECT_FALSE(wire::decode_payload(bad.data(), bad.size()));
}

// Protocol 5: a MEMBER carries the node hash (16 bytes); one from a
// protocol 4 node has none, and a hash that is not 32 hex digits is not sent.
TEST(GossipWire, AMemberCarriesItsNodeHash) {
  Member m{77, "edge-fra-1", *Endpoint::parse("192.0.2.7:7946"), kAlive, 12345, 0x1122334455667788ULL, 0, 2, 5};
  m.identity = "0123456789abcdef0123456789abcdef";
  std::vector<std::uint8_t> buf;
  wire::encode_member(m, buf);
  auto back = wire::decode_payload(buf.data(), buf.size());
  ASSERT_TRUE(back);
  EXPECT_EQ(std::get<Member>(back->messages[0].v).identity, m.identity);
  buf.resize(buf.size() - 16);  // as a protocol 4 node writes it
  buf[2] = static_cast<std::uint8_t>(buf.size() - wire::kRecordHeaderSize);
  back = wire::decode_payload(buf.data(), buf.size());
  ASSERT_TRUE(back);
  EXPECT_EQ(std::get<Member>(back->messages[0].v).identity, "");
  m.identity = "not hex";
  std::vector<std::uint8_t> plain;
  wire::encode_member(m, plain);
  EXPECT_EQ(plain.size(), buf.size());
}

std::vector<wire::Message> all_messages() {
  Endpoint ep4 = *Endpoint::parse("192.0.2.7:7946");
  Endpoint ep6 = *Endpoint::parse("[2001:db8::1]:17946");
  wire::PpRoot root;
  root.reply = true;
  root.member_hash = 0xabcdef;
  root.count = 100000;
  for (std::size_t i = 0; i < root.groups.size(); ++i) root.groups[i] = i * 0x0101010101ULL;
  wire::PpGroup group;
  group.group = 31;
  for (std::size_t i = 0; i < group.buckets.size(); ++i) group.buckets[i] = ~i;
  Member m{77, "edge-fra-1", ep6, kSuspect, 12345, 0x1122334455667788ULL, 0, 1, 3};
  Revocation pardon = sample_revocation();
  pardon.pardon = true;
  pardon.shadow = false;
  pardon.reason = uritoken::gossip::VerdictReason::manual;
  return {{wire::Ping{1, 2}},
          {wire::PingReq{3, 4, ep4}},
          {wire::Ack{5}},
          {m},
          {sample_revocation()},
          {pardon},
          {sample_sighting(false)},
          {sample_sighting(true)},
          {subscriber_sighting()},
          {root},
          {group},
          {revocation_with_evidence()}};
}

bool same(const wire::Message& a, const wire::Message& b) {
  std::vector<std::uint8_t> x, y;
  wire::encode(a, x);
  wire::encode(b, y);
  return a.v.index() == b.v.index() && x == y;
}

struct NullListener : Listener {
  void revocation_changed(const Revocation&) override {}
  void owned_sighting(const SightingReport&) override {}
};
using doubles::NullTransport;

}  // namespace

TEST(GossipWire, EveryMessageTypeRoundTrips) {
  auto msgs = all_messages();
  std::set<std::size_t> alternatives;
  std::set<int> types;
  std::vector<std::vector<std::uint8_t>> bodies;
  for (const auto& m : msgs) {
    std::vector<std::uint8_t> buf;
    wire::encode(m, buf);
    alternatives.insert(m.v.index());
    types.insert(buf[0]);
    bodies.emplace_back(buf.begin() + wire::kRecordHeaderSize, buf.end());
    EXPECT_EQ(buf.size(), wire::encoded_size(m));
    auto back = wire::decode_payload(buf.data(), buf.size());
    ASSERT_TRUE(back.has_value()) << "type index " << m.v.index();
    ASSERT_EQ(back->messages.size(), 1u);
    EXPECT_TRUE(same(m, back->messages[0])) << "type index " << m.v.index();
  }
  // All of them: every alternative of wire::Message, and the type bytes 1..N
  // with nothing after N that the decoder takes, so a record type added to
  // the enum and the decoder without a message above fails here. A
  // SightingReport has two: a token's and (protocol 5) a subscriber's.
  constexpr std::size_t kAlternatives = std::variant_size_v<decltype(wire::Message::v)>;
  EXPECT_EQ(alternatives.size(), kAlternatives);
  std::set<int> expected_types;
  for (int t = 1; t <= static_cast<int>(kAlternatives) + 1; ++t) expected_types.insert(t);
  EXPECT_EQ(types, expected_types);
  for (std::size_t n = 0; n <= 300; ++n) bodies.emplace_back(n, 0);
  // Any other type is a newer version's record: skipped whatever its body.
  for (int t = 0; t < 256; ++t) {
    if (types.count(t)) continue;
    for (const auto& body : bodies) {
      std::vector<std::uint8_t> rec{static_cast<std::uint8_t>(t), static_cast<std::uint8_t>(body.size() >> 8),
                                    static_cast<std::uint8_t>(body.size())};
      rec.insert(rec.end(), body.begin(), body.end());
      auto skipped = wire::decode_payload(rec.data(), rec.size());
      ASSERT_TRUE(skipped) << "record type " << t;
      ASSERT_TRUE(skipped->messages.empty()) << "record type " << t << " decodes but no message above covers it";
      ASSERT_EQ(skipped->skipped, 1u);
    }
  }
  // Field by field for the structs that carry equality.
  std::vector<std::uint8_t> buf;
  wire::encode({sample_revocation()}, buf);
  wire::encode({sample_sighting(true)}, buf);
  auto back = wire::decode_payload(buf.data(), buf.size());
  ASSERT_TRUE(back);
  EXPECT_EQ(std::get<Revocation>(back->messages[0].v), sample_revocation());
  EXPECT_EQ(std::get<SightingReport>(back->messages[1].v), sample_sighting(true));
}

TEST(GossipWire, ConcatenatedRecordsDecodeInOrder) {
  auto msgs = all_messages();
  std::vector<std::uint8_t> buf;
  for (const auto& m : msgs) wire::encode(m, buf);
  auto back = wire::decode_payload(buf.data(), buf.size());
  ASSERT_TRUE(back);
  ASSERT_EQ(back->messages.size(), msgs.size());
  for (std::size_t i = 0; i < msgs.size(); ++i) EXPECT_TRUE(same(msgs[i], back->messages[i])) << i;
}

TEST(GossipWire, EveryTruncationIsRejected) {
  for (const auto& m : all_messages()) {
    std::vector<std::uint8_t> buf;
    wire::encode(m, buf);
    for (std::size_t n = 1; n < buf.size(); ++n)
      EXPECT_FALSE(wire::decode_payload(buf.data(), n)) << "type " << int(buf[0]) << " len " << n;
  }
}

TEST(GossipWire, InvalidFieldsAreRejected) {
  std::vector<std::uint8_t> buf;
  wire::encode({sample_revocation()}, buf);
  buf[wire::kRecordHeaderSize + 2 + 8 + 4 + 8] = 0x80;  // unknown flag bit
  EXPECT_FALSE(wire::decode_payload(buf.data(), buf.size()));
  buf.assign({0x63});  // a type without its length
  EXPECT_FALSE(wire::decode_payload(buf.data(), buf.size()));
  buf.clear();
  wire::PpGroup g;
  wire::encode({g}, buf);
  buf[wire::kRecordHeaderSize] = RevocationSet::kGroups;  // group out of range
  EXPECT_FALSE(wire::decode_payload(buf.data(), buf.size()));
  EXPECT_TRUE(wire::decode_payload(buf.data(), 0));  // an empty payload is valid
}

// What a newer protocol version adds, an older node reads past: record
// types it does not know are skipped and counted, fields appended to a
// record it knows are ignored, and everything else in the packet is used.
TEST(GossipWire, NewerRecordsAndFieldsAreSkipped) {
  std::vector<std::uint8_t> buf{200, 0, 5, 1, 2, 3, 4, 5};  // type 200, 5 bytes
  wire::encode({sample_revocation()}, buf);
  const std::size_t revoke_at = 8;
  buf.insert(buf.end(), {0xde, 0xad, 0xbe});  // three bytes a newer REVOKE appends
  const std::size_t body = buf.size() - revoke_at - wire::kRecordHeaderSize;
  buf[revoke_at + 1] = static_cast<std::uint8_t>(body >> 8);
  buf[revoke_at + 2] = static_cast<std::uint8_t>(body);
  wire::encode({wire::Ack{7}}, buf);
  buf.insert(buf.end(), {201, 0, 0});  // an empty one
  auto back = wire::decode_payload(buf.data(), buf.size());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->skipped, 2u);
  ASSERT_EQ(back->messages.size(), 2u);
  EXPECT_EQ(std::get<Revocation>(back->messages[0].v), sample_revocation());
  EXPECT_EQ(std::get<wire::Ack>(back->messages[1].v).seq, 7u);
  // A record longer than what is left is truncated, known type or not.
  buf.assign({200, 0, 6, 1, 2, 3, 4, 5});
  EXPECT_FALSE(wire::decode_payload(buf.data(), buf.size()));
  // A known record too short for its fields is malformed, not skipped.
  buf.clear();
  wire::encode({wire::Ack{7}}, buf);
  buf[2] = 3;
  buf.pop_back();
  EXPECT_FALSE(wire::decode_payload(buf.data(), buf.size()));
}

TEST(GossipWire, RevocationCarriesFullEvidence) {
  std::vector<std::uint8_t> buf;
  Revocation biggest = revocation_with_evidence();
  for (auto& n : biggest.evidence.networks) n.v6 = true;
  ASSERT_EQ(biggest.evidence.places.size(), Evidence::kMaxPlaces);
  wire::encode_revocation(biggest, buf);
  EXPECT_EQ(buf.size(), wire::kMaxRevocationSize);  // every limit reached
  buf.clear();
  wire::encode_revocation(revocation_with_evidence(), buf);
  auto back = wire::decode_payload(buf.data(), buf.size());
  ASSERT_TRUE(back);
  ASSERT_EQ(back->messages.size(), 1u);
  const Revocation& got = std::get<Revocation>(back->messages[0].v);
  EXPECT_EQ(got, revocation_with_evidence());
  EXPECT_EQ(got.evidence.networks.size(), Evidence::kMaxNetworks);
  EXPECT_TRUE(got.evidence.networks[1].v6);
  EXPECT_EQ(got.evidence.networks[1].prefix_len, 48);
  EXPECT_EQ(got.evidence.places.size(), Evidence::kMaxPlaces);
  // No evidence: the fixed body, ext_len 0, places_len 0 and times_len 0.
  buf.clear();
  wire::encode_revocation(sample_revocation(), buf);
  ASSERT_EQ(buf.size(), wire::kRevocationFixedSize + 6);
  EXPECT_EQ(buf[wire::kRevocationFixedSize] << 8 | buf[wire::kRevocationFixedSize + 1], 0);
  EXPECT_EQ(buf[wire::kRevocationFixedSize + 2] << 8 | buf[wire::kRevocationFixedSize + 3], 0);
  EXPECT_EQ(buf[wire::kRevocationFixedSize + 4] << 8 | buf[wire::kRevocationFixedSize + 5], 0);
  // A protocol 3 record (no times_len) decodes without times or rate.
  buf.clear();
  wire::encode_revocation(revocation_with_evidence(), buf);
  const std::size_t times = 2 + 1 + Evidence::kMaxPlaces * 8 + 12;
  buf.resize(buf.size() - times);
  buf[1] = static_cast<std::uint8_t>((buf.size() - wire::kRecordHeaderSize) >> 8);
  buf[2] = static_cast<std::uint8_t>(buf.size() - wire::kRecordHeaderSize);
  back = wire::decode_payload(buf.data(), buf.size());
  ASSERT_TRUE(back);
  const Revocation& from3 = std::get<Revocation>(back->messages[0].v);
  EXPECT_EQ(from3.evidence.places.size(), Evidence::kMaxPlaces);
  EXPECT_EQ(from3.evidence.places[0].first_s, 0u);
  EXPECT_EQ(from3.evidence.bulk_requests_per_min, 0u);
  // Malformed times: a count that is not the places'.
  buf.clear();
  wire::encode_revocation(revocation_with_evidence(), buf);
  buf[buf.size() - times + 2] = 3;
  EXPECT_FALSE(wire::decode_payload(buf.data(), buf.size()));
  buf.clear();
  wire::encode_revocation(sample_revocation(), buf);
  // A protocol 2 record (no places_len) still decodes, to no places.
  buf.resize(wire::kRevocationFixedSize + 2);
  buf[2] = static_cast<std::uint8_t>(buf.size() - wire::kRecordHeaderSize);
  back = wire::decode_payload(buf.data(), buf.size());
  ASSERT_TRUE(back);
  EXPECT_EQ(std::get<Revocation>(back->messages[0].v), sample_revocation());
}

TEST(GossipWire, EvidenceOverItsLimitsIsCut) {
  Revocation r = sample_revocation();
  Evidence& e = r.evidence;
  e = full_evidence();
  e.networks.push_back(e.networks[0]);  // one too many
  e.networks[0].prefix_len = 200;       // clamped to 32
  e.networks[1].prefix_len = 200;       // clamped to 128
  e.operator_address += "extra";
  e.user += "extra";
  e.comment = std::string(Evidence::kMaxComment - 1, 'c') + "\xc3\xa9";  // é across the limit
  std::vector<std::uint8_t> buf;
  wire::encode_revocation(r, buf);
  EXPECT_LE(buf.size(), wire::kMaxRevocationSize);
  auto back = wire::decode_payload(buf.data(), buf.size());
  ASSERT_TRUE(back);
  const Evidence& got = std::get<Revocation>(back->messages[0].v).evidence;
  EXPECT_EQ(got.networks.size(), Evidence::kMaxNetworks);
  EXPECT_EQ(got.networks[0].prefix_len, 32);
  EXPECT_EQ(got.networks[1].prefix_len, 128);
  EXPECT_EQ(got.operator_address, full_evidence().operator_address);
  EXPECT_EQ(got.user, full_evidence().user);
  EXPECT_EQ(got.comment, std::string(Evidence::kMaxComment - 1, 'c'));  // not half a character
  EXPECT_EQ(got, wire::canonical(e));
  // Bytes that are not UTF-8 are cut at the limit.
  Evidence raw;
  raw.comment = std::string(Evidence::kMaxComment + 5, '\x80');
  EXPECT_EQ(wire::canonical(raw).comment.size(), Evidence::kMaxComment);
}

TEST(GossipWire, DeciderHoldsTheEvidencePeersDecode) {
  NullTransport t;
  NullListener l;
  Config c;
  c.node_id = 1;
  c.self = *Endpoint::parse("127.0.0.1:7001");
  Node node(c, t, l, kNow, 1);
  Revocation r = sample_revocation();
  r.evidence.comment = std::string(300, 'x');
  node.decide(r, kNow);
  const Revocation* held = node.revocations().find(r.token);
  ASSERT_TRUE(held);
  EXPECT_EQ(held->evidence.comment.size(), Evidence::kMaxComment);
}

namespace {

// A REVOKE record whose extension is `ext`, announced as `ext_len` bytes.
std::vector<std::uint8_t> revoke_with_ext(const std::vector<std::uint8_t>& ext, std::size_t ext_len) {
  std::vector<std::uint8_t> buf;
  wire::encode_revocation(sample_revocation(), buf);
  buf.resize(wire::kRevocationFixedSize);
  buf.push_back(static_cast<std::uint8_t>(ext_len >> 8));
  buf.push_back(static_cast<std::uint8_t>(ext_len));
  buf.insert(buf.end(), ext.begin(), ext.end());
  const std::size_t body = buf.size() - wire::kRecordHeaderSize;  // the record frames what is there
  buf[1] = static_cast<std::uint8_t>(body >> 8);
  buf[2] = static_cast<std::uint8_t>(body);
  return buf;
}
std::vector<std::uint8_t> revoke_with_ext(const std::vector<std::uint8_t>& ext) {
  return revoke_with_ext(ext, ext.size());
}

// Evidence bytes by hand: networks as (family, prefix_len), then the times
// and strings of the given lengths.
std::vector<std::uint8_t> ext_bytes(const std::vector<std::pair<int, int>>& nets, std::size_t op, std::size_t user,
                                    std::size_t comment) {
  std::vector<std::uint8_t> e{static_cast<std::uint8_t>(nets.size())};
  for (auto [fam, prefix] : nets) {
    e.push_back(static_cast<std::uint8_t>(fam));
    e.push_back(static_cast<std::uint8_t>(prefix));
    e.insert(e.end(), fam == 6 ? 16 : 4, 0x0a);
  }
  e.insert(e.end(), 8, 0);
  for (std::size_t len : {op, user, comment}) {
    e.push_back(static_cast<std::uint8_t>(len));
    e.insert(e.end(), len, 'a');
  }
  return e;
}

}  // namespace

TEST(GossipWire, MalformedEvidenceIsRejected) {
  auto ok = [](const std::vector<std::uint8_t>& rec) {
    return wire::decode_payload(rec.data(), rec.size()).has_value();
  };
  const std::size_t kOp = Evidence::kMaxOperator, kUser = Evidence::kMaxUser, kComment = Evidence::kMaxComment;
  // The hand-made bytes are right: at the limits they decode, as the encoder's do.
  std::vector<std::pair<int, int>> max_nets(Evidence::kMaxNetworks, {6, 128});
  max_nets[0] = {4, 32};
  ASSERT_TRUE(ok(revoke_with_ext(ext_bytes(max_nets, kOp, kUser, kComment))));
  ASSERT_TRUE(ok(revoke_with_ext(ext_bytes({}, 0, 0, 1))));
  ASSERT_TRUE(ok(revoke_with_ext({}, 0)));  // no evidence

  // Empty evidence written out in full: only ext_len 0 means "none".
  EXPECT_FALSE(ok(revoke_with_ext(ext_bytes({}, 0, 0, 0))));

  EXPECT_FALSE(ok(revoke_with_ext(ext_bytes({{0, 24}}, 0, 0, 0))));  // bad family
  EXPECT_FALSE(ok(revoke_with_ext(ext_bytes({{5, 24}}, 0, 0, 0))));
  EXPECT_FALSE(ok(revoke_with_ext(ext_bytes({{16, 24}}, 0, 0, 0))));
  max_nets.push_back({4, 24});  // too many networks
  EXPECT_FALSE(ok(revoke_with_ext(ext_bytes(max_nets, 0, 0, 0))));
  EXPECT_FALSE(ok(revoke_with_ext(ext_bytes({{4, 33}}, 0, 0, 0))));  // prefix too long
  EXPECT_FALSE(ok(revoke_with_ext(ext_bytes({{6, 129}}, 0, 0, 0))));
  EXPECT_FALSE(ok(revoke_with_ext(ext_bytes({}, kOp + 1, 0, 0))));  // a string over its limit
  EXPECT_FALSE(ok(revoke_with_ext(ext_bytes({}, 0, kUser + 1, 0))));
  EXPECT_FALSE(ok(revoke_with_ext(ext_bytes({}, 0, 0, kComment + 1))));
  auto ext = ext_bytes({{4, 24}}, 3, 3, 3);
  EXPECT_FALSE(ok(revoke_with_ext(ext, ext.size() - 1)));  // ext_len short of what was parsed
  auto longer = ext;
  longer.push_back(0);
  EXPECT_FALSE(ok(revoke_with_ext(longer)));               // ext_len past it
  EXPECT_FALSE(ok(revoke_with_ext(ext, ext.size() + 1)));  // ext_len past the payload
  auto no_ext = revoke_with_ext({}, 0);
  no_ext.resize(wire::kRevocationFixedSize);  // the old 34-byte record
  EXPECT_FALSE(ok(no_ext));
}

TEST(GossipWire, SealOpenRoundTrip) {
  wire::Key key{};
  key[0] = 1;
  std::vector<std::uint8_t> payload = {1, 2, 3, 4};
  wire::Header h{9, 10, kNow};
  auto pkt = wire::seal(key, "label", h, payload.data(), payload.size());
  EXPECT_EQ(pkt.size(), payload.size() + wire::kOverhead);
  wire::Header out;
  std::vector<std::uint8_t> plain;
  ASSERT_EQ(wire::open({key}, "label", pkt.data(), pkt.size(), out, plain), wire::OpenResult::kOk);
  EXPECT_EQ(plain, payload);
  EXPECT_EQ(out.sender, 9u);
  EXPECT_EQ(out.counter, 10u);
  EXPECT_EQ(out.time_ms, kNow);
  // The clear header is authenticated: changing the sender breaks the tag.
  pkt[5] ^= 1;
  EXPECT_EQ(wire::open({key}, "label", pkt.data(), pkt.size(), out, plain), wire::OpenResult::kAuth);
}

class GossipReject : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg.node_id = 1;
    cfg.self = *Endpoint::parse("127.0.0.1:7001");
    cfg.cluster_key = doubles::pattern_key();
    node = std::make_unique<Node>(cfg, transport, listener, kNow, 1);
    node->start(kNow);
  }
  std::vector<std::uint8_t> packet(std::uint64_t counter, std::uint64_t time_ms, const wire::Key& key,
                                   const std::string& label) {
    std::vector<std::uint8_t> payload;
    wire::encode({wire::Ack{1}}, payload);
    return wire::seal(key, label, wire::Header{2, counter, time_ms}, payload.data(), payload.size());
  }
  void feed(const std::vector<std::uint8_t>& p) { node->receive(from, p.data(), p.size(), kNow); }
  std::uint64_t drops() const {
    const Stats& s = node->stats();
    return s.dropped_malformed + s.dropped_auth + s.dropped_replay + s.dropped_stale + s.dropped_label +
           s.dropped_oversized + s.dropped_before_start + s.dropped_version;
  }

  Config cfg;
  NullTransport transport;
  NullListener listener;
  std::unique_ptr<Node> node;
  Endpoint from = *Endpoint::parse("127.0.0.1:7002");
};

TEST_F(GossipReject, ValidPacketIsAccepted) {
  feed(packet(100, kNow, cfg.cluster_key, cfg.cluster_label));
  EXPECT_EQ(drops(), 0u);
  EXPECT_EQ(node->stats().packets_in, 1u);
}

TEST_F(GossipReject, EachKindOfBadPacketIsCountedSeparately) {
  auto good = packet(100, kNow, cfg.cluster_key, cfg.cluster_label);
  auto truncated = good;
  truncated.resize(wire::kOverhead - 1);
  feed(truncated);
  EXPECT_EQ(node->stats().dropped_malformed, 1u);

  auto flipped = good;
  flipped[wire::kHeaderSize + 1] ^= 0x40;
  feed(flipped);
  EXPECT_EQ(node->stats().dropped_auth, 1u);

  wire::Key other = cfg.cluster_key;
  other[31] ^= 1;
  feed(packet(101, kNow, other, cfg.cluster_label));
  EXPECT_EQ(node->stats().dropped_auth, 2u);

  feed(packet(102, kNow, cfg.cluster_key, "other-cluster"));
  EXPECT_EQ(node->stats().dropped_label, 1u);

  feed(packet(103, kNow - cfg.max_packet_age_ms - 1, cfg.cluster_key, cfg.cluster_label));
  feed(packet(104, kNow + cfg.max_packet_age_ms + 1, cfg.cluster_key, cfg.cluster_label));
  EXPECT_EQ(node->stats().dropped_stale, 2u);

  // Fresh enough, but sent before this node was constructed (at kNow).
  feed(packet(106, kNow - 1, cfg.cluster_key, cfg.cluster_label));
  EXPECT_EQ(node->stats().dropped_before_start, 1u);

  std::vector<std::uint8_t> oversized(cfg.max_packet + 1, 1);
  feed(oversized);
  EXPECT_EQ(node->stats().dropped_oversized, 1u);

  std::vector<std::uint8_t> garbage(200);
  randombytes_buf(garbage.data(), garbage.size());
  garbage[0] = 0xff;  // not our version
  feed(garbage);
  EXPECT_EQ(node->stats().dropped_malformed, 2u);

  // An authentic packet whose plaintext does not decode.
  std::vector<std::uint8_t> bad_payload = {0x63, 1, 2};
  auto p = wire::seal(cfg.cluster_key, cfg.cluster_label, wire::Header{2, 105, kNow}, bad_payload.data(),
                      bad_payload.size());
  feed(p);
  EXPECT_EQ(node->stats().dropped_malformed, 3u);
  EXPECT_EQ(node->stats().dropped_replay, 0u);
}

TEST_F(GossipReject, ReplaysAreDroppedWithinAndBeyondTheWindow) {
  auto p100 = packet(100, kNow, cfg.cluster_key, cfg.cluster_label);
  feed(p100);
  feed(p100);
  EXPECT_EQ(node->stats().dropped_replay, 1u);
  // Out of order but new: accepted once.
  auto p90 = packet(90, kNow, cfg.cluster_key, cfg.cluster_label);
  feed(p90);
  EXPECT_EQ(node->stats().dropped_replay, 1u);
  feed(p90);
  EXPECT_EQ(node->stats().dropped_replay, 2u);
  // Far behind the newest counter: refused even if never seen.
  feed(packet(1000, kNow, cfg.cluster_key, cfg.cluster_label));
  feed(packet(900, kNow, cfg.cluster_key, cfg.cluster_label));
  EXPECT_EQ(node->stats().dropped_replay, 3u);
  EXPECT_EQ(drops(), 3u);
}

TEST_F(GossipReject, NewerRecordTypesAreSkippedNotDropped) {
  std::vector<std::uint8_t> payload{250, 0, 2, 9, 9};
  wire::encode_revocation(sample_revocation(), payload);
  auto p = wire::seal(cfg.cluster_key, cfg.cluster_label, wire::Header{2, 100, kNow}, payload.data(), payload.size());
  feed(p);
  EXPECT_EQ(drops(), 0u);
  EXPECT_EQ(node->stats().records_skipped, 1u);
  EXPECT_EQ(node->revocations().size(), 1u);
}

TEST_F(GossipReject, OtherWireVersionIsDroppedAsSuch) {
  auto p = packet(100, kNow, cfg.cluster_key, cfg.cluster_label);
  p[0] = 1;  // the unframed records of version 1
  feed(p);
  EXPECT_EQ(node->stats().dropped_version, 1u);
  EXPECT_EQ(drops(), 1u);
  const DropReport r = node->take_drop_report(kNow);
  EXPECT_EQ(r.total(DropKind::kVersion), 1u);
}

// A cluster-key rotation: the first key seals, every key opens.
TEST(GossipKeys, EveryKeyOpensTheFirstSeals) {
  Config c;
  c.node_id = 1;
  c.self = *Endpoint::parse("127.0.0.1:7001");
  wire::Key old_key{}, new_key{}, stranger{};
  old_key.fill(1), new_key.fill(2), stranger.fill(3);
  c.cluster_key = new_key;
  c.other_keys = {old_key};
  struct Capture : Transport {
    std::vector<std::vector<std::uint8_t>> sent;
    void send(const Endpoint&, const std::uint8_t* d, std::size_t n) override { sent.emplace_back(d, d + n); }
  } transport;
  NullListener listener;
  Node node(c, transport, listener, kNow, 1);
  node.start(kNow);
  const Endpoint from = *Endpoint::parse("127.0.0.1:7002");
  std::uint64_t counter = 100;
  auto ping_with = [&](const wire::Key& key) {
    std::vector<std::uint8_t> payload;
    wire::encode({wire::Ping{5, 1}}, payload);
    auto p = wire::seal(key, c.cluster_label, wire::Header{2, ++counter, kNow}, payload.data(), payload.size());
    transport.sent.clear();
    node.receive(from, p.data(), p.size(), kNow);
  };
  ping_with(old_key);
  EXPECT_EQ(node.stats().dropped_auth, 0u);
  EXPECT_EQ(node.stats().packets_other_key, 1u);
  ASSERT_EQ(transport.sent.size(), 1u);  // the ACK, sealed with the first key only
  wire::Header h;
  std::vector<std::uint8_t> plain;
  const auto& ack = transport.sent[0];
  EXPECT_EQ(wire::open({new_key}, c.cluster_label, ack.data(), ack.size(), h, plain), wire::OpenResult::kOk);
  EXPECT_EQ(wire::open({old_key}, c.cluster_label, ack.data(), ack.size(), h, plain), wire::OpenResult::kAuth);
  ping_with(new_key);
  EXPECT_EQ(node.stats().packets_other_key, 1u);
  EXPECT_EQ(transport.sent.size(), 1u);
  ping_with(stranger);
  EXPECT_EQ(node.stats().dropped_auth, 1u);
  EXPECT_TRUE(transport.sent.empty());
}

TEST_F(GossipReject, RevokeWithMalformedEvidenceIsDroppedAsMalformed) {
  auto rec = revoke_with_ext(ext_bytes({{5, 24}}, 0, 0, 0));
  auto p = wire::seal(cfg.cluster_key, cfg.cluster_label, wire::Header{2, 100, kNow}, rec.data(), rec.size());
  feed(p);
  EXPECT_EQ(node->stats().dropped_malformed, 1u);
  EXPECT_EQ(node->revocations().size(), 0u);
  auto good = revoke_with_ext(ext_bytes({{4, 24}}, 1, 2, 3));
  p = wire::seal(cfg.cluster_key, cfg.cluster_label, wire::Header{2, 101, kNow}, good.data(), good.size());
  feed(p);
  EXPECT_EQ(node->stats().dropped_malformed, 1u);
  ASSERT_EQ(node->revocations().size(), 1u);
  EXPECT_EQ(node->revocations().find(sample_revocation().token)->evidence.comment, "aaa");
}
