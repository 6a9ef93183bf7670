// SPDX-License-Identifier: Apache-2.0
// Endpoint parsing, the journal (round trip, torn line, compaction) and the
// UDP transport over loopback.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "../../gossip/journal.h"
#include "../../gossip/udp_transport.h"

using namespace uritoken::gossip;

TEST(GossipEndpoint, ParsesAndFormats) {
  auto a = Endpoint::parse("127.0.0.1:7946");
  ASSERT_TRUE(a);
  EXPECT_FALSE(a->v6);
  EXPECT_EQ(a->port, 7946);
  EXPECT_EQ(a->addr[0], 127);
  EXPECT_EQ(a->to_string(), "127.0.0.1:7946");
  auto b = Endpoint::parse("[::1]:80");
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->v6);
  EXPECT_EQ(b->addr[15], 1);
  EXPECT_EQ(b->to_string(), "[::1]:80");
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "::1:80", "[::1]80",
                          "[::1]:", "1.2.3:4", "host:80", "1.2.3.4:8x"})
    EXPECT_FALSE(Endpoint::parse(bad)) << bad;
  EXPECT_TRUE(*a < *b);
  EXPECT_EQ(*a, *Endpoint::parse("127.0.0.1:7946"));
  EXPECT_NE(*a, *Endpoint::parse("127.0.0.1:7947"));
}

namespace {
std::string temp_path(const char* name) { return "/tmp/gossip_io_test_" + std::to_string(::getpid()) + "_" + name; }
Revocation entry(std::uint64_t session, std::uint64_t stamp, bool pardon, std::uint32_t expires) {
  Revocation r;
  r.token = {9, session};
  r.token_expires = expires;
  r.stamp_ms = stamp;
  r.pardon = pardon;
  r.shadow = session % 2;
  r.origin = 0xfeedface00000000ULL + session;
  r.reason = pardon ? uritoken::gossip::VerdictReason::manual : uritoken::gossip::VerdictReason::shared;
  r.networks = static_cast<std::uint8_t>(session);
  return r;
}
}  // namespace

TEST(GossipJournal, KeepsWinnersDropsExpiredAndTornLine) {
  std::string path = temp_path("journal");
  std::remove(path.c_str());
  {
    Journal j;
    std::string err;
    ASSERT_TRUE(j.open_append(path, &err)) << err;
    ASSERT_TRUE(j.append(entry(1, 100, false, 5000)));
    ASSERT_TRUE(j.append(entry(1, 200, true, 5000)));   // later pardon wins
    ASSERT_TRUE(j.append(entry(2, 100, false, 1000)));  // expired at load time
    ASSERT_TRUE(j.append(entry(3, 300, false, 5000)));
  }
  {
    std::ofstream torn(path, std::ios::app);
    torn << "v1 key=9 session=00000000000000";  // crash mid-write
  }
  std::string err;
  auto got = Journal::load(path, &err, 2000);
  EXPECT_EQ(err, "");
  ASSERT_EQ(got.size(), 2u);
  RevocationSet s;
  for (const auto& r : got) s.merge(r);
  EXPECT_EQ(*s.find({9, 1}), entry(1, 200, true, 5000));
  EXPECT_EQ(*s.find({9, 3}), entry(3, 300, false, 5000));

  // Appending after a torn line starts a fresh line; compaction keeps winners.
  {
    Journal j;
    ASSERT_TRUE(j.open_append(path, &err)) << err;
    ASSERT_TRUE(j.append(entry(4, 400, false, 5000)));
    EXPECT_EQ(Journal::load(path, &err, 2000).size(), 3u);
    EXPECT_NE(err, "");  // the torn line, now in the middle, is reported
    err.clear();
    s.merge(entry(4, 400, false, 5000));
    ASSERT_TRUE(j.rewrite(path, s, &err)) << err;
    ASSERT_TRUE(j.append(entry(5, 500, false, 5000)));
  }
  auto after = Journal::load(path, &err, 2000);
  EXPECT_EQ(err, "");
  EXPECT_EQ(after.size(), 4u);
  std::ifstream in(path);
  std::string first;
  std::getline(in, first);
  Revocation parsed;
  EXPECT_TRUE(Journal::parse(first, parsed));
  EXPECT_FALSE(Journal::parse(first + " extra", parsed));
  std::remove(path.c_str());
}

TEST(GossipJournal, BatchAppendIsReadBackEntryByEntry) {
  std::string path = temp_path("journal_batch");
  std::remove(path.c_str());
  std::vector<Revocation> batch;
  for (std::uint64_t i = 1; i <= 500; ++i) batch.push_back(entry(i, 100 + i, i % 7 == 0, 5000));
  {
    Journal j;
    std::string err;
    ASSERT_TRUE(j.open_append(path, &err)) << err;
    ASSERT_TRUE(j.append(batch));
    ASSERT_TRUE(j.append(std::vector<Revocation>{}));
  }
  std::string err;
  auto got = Journal::load(path, &err, 2000);
  EXPECT_EQ(err, "");
  ASSERT_EQ(got.size(), batch.size());
  RevocationSet s;
  for (const auto& r : got) s.merge(r);
  for (const auto& r : batch) EXPECT_EQ(*s.find(r.token), r);
  std::remove(path.c_str());
}

namespace {
Revocation with_evidence(std::uint64_t session) {
  Revocation r = entry(session, 100 + session, false, 5000);
  Evidence& e = r.evidence;
  Evidence::Network v4, v6;
  v4.prefix_len = 24;
  v4.bytes[0] = 192, v4.bytes[1] = 0, v4.bytes[2] = 2;
  v6.v6 = true;
  v6.prefix_len = 48;
  v6.bytes[0] = 0x20, v6.bytes[1] = 0x01, v6.bytes[2] = 0x0d, v6.bytes[3] = 0xb8;
  e.networks = {v4, v6};
  e.first_seen_s = 1'700'000'000;
  e.last_seen_s = 1'700'000'060;
  e.operator_address = "2001:db8::7";
  e.user = "alice";
  e.comment = "posted on a forum; ticket #42 = \"spam\" ev=x\n";  // separators inside are fine
  return r;
}
}  // namespace

TEST(GossipJournal, EvidenceRoundTripsAndOldLinesStillParse) {
  Revocation plain = entry(1, 100, false, 5000);
  std::string line = Journal::format(plain);
  EXPECT_EQ(line.find("ev="), std::string::npos);  // none: the line is as before
  Revocation got;
  ASSERT_TRUE(Journal::parse(line.substr(0, line.size() - 1), got));
  EXPECT_EQ(got, plain);
  // A line as older builds wrote it.
  ASSERT_TRUE(
      Journal::parse("v1 key=7 session=1122334455667788 expires=1700003600 stamp=1700000000005 "
                     "revoke shadow=0 origin=42 reason=1 networks=9",
                     got));
  EXPECT_TRUE(got.evidence.empty());

  Revocation r = with_evidence(2);
  line = Journal::format(r);
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);  // one line, whatever the comment holds
  EXPECT_NE(line.find(" networks=2 ev="), std::string::npos);
  ASSERT_TRUE(Journal::parse(line.substr(0, line.size() - 1), got));
  EXPECT_EQ(got, r);

  // Through a file, beside entries without evidence; and after compaction.
  std::string path = temp_path("journal_evidence");
  std::remove(path.c_str());
  std::string err;
  {
    Journal j;
    ASSERT_TRUE(j.open_append(path, &err)) << err;
    ASSERT_TRUE(j.append(std::vector<Revocation>{plain, r, with_evidence(3)}));
  }
  RevocationSet set;
  for (const auto& e : Journal::load(path, &err, 2000)) set.merge(e);
  EXPECT_EQ(err, "");
  ASSERT_EQ(set.size(), 3u);
  EXPECT_EQ(*set.find(plain.token), plain);
  EXPECT_EQ(*set.find(r.token), r);
  {
    Journal j;
    ASSERT_TRUE(j.rewrite(path, set, &err)) << err;
  }
  auto again = Journal::load(path, &err, 2000);
  EXPECT_EQ(err, "");
  ASSERT_EQ(again.size(), 3u);
  for (const auto& e : again) EXPECT_EQ(e, *set.find(e.token));
  std::remove(path.c_str());
}

// A bulk verdict's rate and each place's first and last use (protocol 4)
// survive a restart: the line's tr= field.
TEST(GossipJournal, PlaceTimesAndABulkRateRoundTrip) {
  Revocation r = entry(9, 109, false, 5000);
  r.reason = uritoken::gossip::VerdictReason::bulk;
  Evidence::Place p;
  p.kind = Evidence::Place::kAs;
  p.id = 24940;
  p.networks = 1;
  p.weight_x10 = 10;
  p.first_s = 1'700'000'000;
  p.last_s = 1'700'000'120;
  r.evidence.places = {p};
  r.evidence.bulk_requests_per_min = 200;
  r.evidence.bulk_bytes_per_min = 750'000'000;
  const std::string line = Journal::format(r);
  EXPECT_NE(line.find(" pl="), std::string::npos);
  EXPECT_NE(line.find(" tr="), std::string::npos);
  Revocation got;
  ASSERT_TRUE(Journal::parse(line.substr(0, line.size() - 1), got));
  EXPECT_EQ(got, r);
  // Torn inside tr=, or a count of places that is not the line's: unreadable.
  EXPECT_FALSE(Journal::parse(line.substr(0, line.size() - 5), got));
  Revocation two = r;
  two.evidence.places.push_back(p);
  const std::string other = Journal::format(two);
  const std::string tr_of_two = other.substr(other.find(" tr="));
  EXPECT_FALSE(Journal::parse(line.substr(0, line.find(" tr=")) + tr_of_two.substr(0, tr_of_two.size() - 1), got));
}

TEST(GossipJournal, BrokenEvidenceMakesTheLineUnreadable) {
  std::string line = Journal::format(with_evidence(4));
  line.pop_back();
  const std::size_t at = line.find(" ev=");
  ASSERT_NE(at, std::string::npos);
  const std::string head = line.substr(0, at), ev = line.substr(at + 4);
  Revocation got;
  ASSERT_TRUE(Journal::parse(head + " ev=" + ev, got));
  std::vector<std::string> bad = {
      head + " ev=",  // torn right after the name
      head + " ev",   // torn inside it
      head + " e",
      head + " ",
      head + "  ev=" + ev,                          // not the separator
      head + " evidence=" + ev,                     // not the name
      head + " ev=" + ev + " ",                     // trailing bytes
      head + " ev=" + ev + "AA",                    // more bytes than the evidence
      head + " ev=" + ev.substr(0, ev.size() - 1),  // torn inside it
      head + " ev=" + ev.substr(0, ev.size() - 4),
      head + " ev=" + ev.substr(0, 8),
      head + " ev=" + ev.substr(0, 10) + "+" + ev.substr(11),  // not base64url
      head + " ev=" + ev + "=",                                // padding
      head + " ev=AAAAAAAAAAAAAAAA",                           // empty evidence spelled out (12 zero bytes)
      head + " ev=CQ",                                         // 9 networks, then nothing
  };
  for (const auto& b : bad) EXPECT_FALSE(Journal::parse(b, got)) << b;

  // In a file: the line is skipped and reported, the others load.
  std::string path = temp_path("journal_bad_ev");
  {
    std::ofstream out(path, std::ios::trunc);
    out << Journal::format(entry(1, 100, false, 5000)) << head << " ev=" << ev.substr(0, ev.size() / 2) << "\n"
        << Journal::format(with_evidence(5));
  }
  std::string err;
  auto got_all = Journal::load(path, &err, 2000);
  EXPECT_EQ(got_all.size(), 2u);
  EXPECT_NE(err.find("skipped 1 unreadable line"), std::string::npos) << err;
  std::remove(path.c_str());
}

TEST(GossipUdp, LoopbackDatagramsArrive) {
  std::string err;
  Endpoint any = *Endpoint::parse("127.0.0.1:1");
  any.port = 0;  // a free port (parse refuses 0: no use in a configuration)
  auto a = UdpTransport::bind(any, &err);
  ASSERT_TRUE(a) << err;
  // Port 0 picks a free port; find it to address the socket.
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  ASSERT_EQ(getsockname(a->fd(), reinterpret_cast<sockaddr*>(&ss), &len), 0);
  Endpoint at = from_sockaddr(ss);
  auto b = UdpTransport::bind(any, &err);
  ASSERT_TRUE(b) << err;
  const std::uint8_t msg[] = {1, 2, 3};
  b->send(at, msg, sizeof msg);
  b->send(at, msg, 2);
  std::vector<std::size_t> sizes;
  for (int i = 0; i < 100 && sizes.size() < 2; ++i) {
    a->receive_all([&](const Endpoint& from, const std::uint8_t* data, std::size_t n) {
      EXPECT_EQ(from.addr[0], 127);
      EXPECT_EQ(data[0], 1);
      sizes.push_back(n);
    });
    if (sizes.size() < 2) usleep(1000);
  }
  EXPECT_EQ(sizes, (std::vector<std::size_t>{3, 2}));
  EXPECT_EQ(a->receive_all([](const Endpoint&, const std::uint8_t*, std::size_t) {}), 0u);
  EXPECT_FALSE(UdpTransport::bind(at, &err));  // address in use
}
