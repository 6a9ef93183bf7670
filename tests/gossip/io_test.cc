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
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
                          "::1:80", "[::1]80", "[::1]:", "1.2.3:4", "host:80", "1.2.3.4:8x"})
    EXPECT_FALSE(Endpoint::parse(bad)) << bad;
  EXPECT_TRUE(*a < *b);
  EXPECT_EQ(*a, *Endpoint::parse("127.0.0.1:7946"));
  EXPECT_NE(*a, *Endpoint::parse("127.0.0.1:7947"));
}

namespace {
std::string temp_path(const char* name) {
  return "/tmp/gossip_io_test_" + std::to_string(::getpid()) + "_" + name;
}
Revocation entry(std::uint64_t session, std::uint64_t stamp, bool pardon, std::uint32_t expires) {
  Revocation r;
  r.token = {9, session};
  r.token_expires = expires;
  r.stamp_ms = stamp;
  r.pardon = pardon;
  r.shadow = session % 2;
  r.origin = 0xfeedface00000000ULL + session;
  r.reason = pardon ? 2 : 1;
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
