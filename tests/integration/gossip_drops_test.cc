// SPDX-License-Identifier: Apache-2.0
// Dropped gossip packets on a real httpd node: junk, oversized, wrong-version,
// wrong-key and wrong-cluster datagrams sent to the node's gossip port are
// summed up in one UT00021 line per interval, by kind and sender address.
// The sidecar's interval (60 s) is shortened to 1 s through its test-only
// environment variable URITOKEN_TEST_DROP_REPORT_MS.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../../gossip/wire.h"
#include "httpd_fixture.h"

using namespace uritoken::itest;
namespace gossip = uritoken::gossip;
using Clock = std::chrono::steady_clock;

namespace {

// A UDP socket on loopback with its own port: one "sender address".
class Sender {
 public:
  Sender() : fd_(socket(AF_INET, SOCK_DGRAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~Sender() { close(fd_); }
  Sender(const Sender&) = delete;
  Sender& operator=(const Sender&) = delete;
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  void send(int port, const std::vector<std::uint8_t>& data) const {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<std::uint16_t>(port));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sendto(fd_, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  }

 private:
  int fd_;
  int port_ = 0;
};

std::vector<std::string> lines_with(const std::string& log, const std::string& needle) {
  std::vector<std::string> out;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);)
    if (line.find(needle) != std::string::npos) out.push_back(line);
  return out;
}

std::uint64_t wall_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

// An authentic-looking packet: an ACK record sealed under `key` and `label`.
std::vector<std::uint8_t> sealed(const gossip::wire::Key& key, const std::string& label, std::uint64_t counter) {
  std::vector<std::uint8_t> payload;
  gossip::wire::encode({gossip::wire::Ack{1}}, payload);
  return gossip::wire::seal(key, label, gossip::wire::Header{0x77, counter, wall_ms()}, payload.data(), payload.size());
}

class GossipDropsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    randombytes_buf(key.data(), key.size());
    char hex[65];
    sodium_bin2hex(hex, sizeof hex, key.data(), key.size());
    gossip_port = free_udp_port();
    HttpdOptions o;
    o.extra_conf =
        "LogLevel warn uritoken:notice\n"
        "UriTokenSharing Enforce\n"
        "UriTokenStateDir @ROOT@/state\n"
        "UriTokenClusterKeyFile @ROOT@/cluster.key\n"
        "UriTokenNodeName node0\n"
        "UriTokenGossipListen 127.0.0.1:" +
        std::to_string(gossip_port) + "\n";
    httpd = std::make_unique<Httpd>(o);
    const std::string key_path = httpd->root() + "/cluster.key";
    std::ofstream(key_path) << hex << "\n";
    chmod(key_path.c_str(), 0600);
    setenv("URITOKEN_TEST_DROP_REPORT_MS", "1000", 1);
    const bool started = httpd->start();
    unsetenv("URITOKEN_TEST_DROP_REPORT_MS");
    ASSERT_TRUE(started) << httpd->startup_output();
    ASSERT_TRUE(wait_for("UT00024: sharing sidecar running", 1)) << httpd->error_log();
  }
  void TearDown() override {
    if (httpd) {
      EXPECT_EQ(httpd->crash_notice(), "");
      httpd->expect_log("UT00021: gossip dropped ");
      EXPECT_EQ(httpd->unexpected_log_lines(), "") << "warnings or errors not expected";
    }
  }

  // Waits up to 5 s until the error log has `count` lines containing `needle`.
  bool wait_for(const std::string& needle, std::size_t count) {
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (lines_with(httpd->error_log(), needle).size() < count) {
      if (Clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }
  std::vector<std::string> reports() { return lines_with(httpd->error_log(), "UT00021: "); }

  gossip::wire::Key key{};
  int gossip_port = 0;
  std::unique_ptr<Httpd> httpd;
};

TEST_F(GossipDropsTest, JunkAndWrongKeyDatagramsAreSummedUpBySender) {
  // Nothing dropped, nothing logged.
  std::this_thread::sleep_for(std::chrono::milliseconds(2200));
  EXPECT_EQ(reports().size(), 0u) << httpd->error_log();

  // One junk datagram first: its line marks the start of an interval, so the
  // batch below lands in the next one, whole.
  Sender first;
  first.send(gossip_port, {0x16, 0x03, 0x01});
  ASSERT_TRUE(wait_for("UT00021: ", 1)) << httpd->error_log();
  EXPECT_NE(reports()[0].find("UT00021: gossip dropped 1 packet in the last "), std::string::npos) << reports()[0];
  EXPECT_NE(reports()[0].find("1 malformed (not a gossip packet: a scan or another program) from " + first.address()),
            std::string::npos)
      << reports()[0];

  Sender a, b;
  const std::string http = "GET / HTTP/1.0\r\n\r\n";
  a.send(gossip_port, std::vector<std::uint8_t>(http.begin(), http.end()));
  a.send(gossip_port, std::vector<std::uint8_t>(100, 0xff));
  a.send(gossip_port, {gossip::wire::kVersion, 1, 2, 3});  // truncated
  auto other_version = sealed(key, "uritoken", 1);
  other_version[0] = gossip::wire::kVersion + 1;
  a.send(gossip_port, other_version);
  a.send(gossip_port, std::vector<std::uint8_t>(1500, 0));
  gossip::wire::Key wrong_key = key;
  wrong_key[7] ^= 0x20;
  for (std::uint64_t c = 2; c < 5; ++c) a.send(gossip_port, sealed(wrong_key, "uritoken", c));
  for (std::uint64_t c = 5; c < 7; ++c) b.send(gossip_port, sealed(key, "another-cluster", c));

  ASSERT_TRUE(wait_for("UT00021: ", 2)) << httpd->error_log();
  const std::string line = reports()[1];
  EXPECT_NE(line.find("[uritoken:warn]"), std::string::npos) << line;
  EXPECT_NE(line.find("UT00021: gossip dropped 10 packets in the last "), std::string::npos) << line;
  for (const std::string& part :
       {"3 malformed (not a gossip packet: a scan or another program) from " + a.address(),
        "1 another wire version (the sender runs a mod_uritoken with another gossip wire version: upgrade it; "
        "rolling upgrades work from wire version 2 on) from " +
            a.address(),
        "3 failed authentication (wrong UriTokenClusterKeyFile, or forged) from " + a.address(),
        "2 wrong cluster name (UriTokenClusterName differs) from " + b.address(),
        "1 oversized (larger than any gossip packet: not from a cluster member) from " + a.address()}) {
    EXPECT_NE(line.find(part), std::string::npos) << "missing: " << part << "\nin: " << line;
  }

  // A steady flood: at most one line a second, and every packet counted.
  const auto flood_start = Clock::now();
  int sent = 0;
  while (Clock::now() - flood_start < std::chrono::milliseconds(3000)) {
    a.send(gossip_port, {0xde, 0xad});
    ++sent;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const auto all = reports();
  ASSERT_GE(all.size(), 4u);
  EXPECT_LE(all.size() - 2, 5u) << "more than one line a second";
  long counted = 0;
  for (std::size_t i = 2; i < all.size(); ++i) {
    const auto at = all[i].find("dropped ");
    ASSERT_NE(at, std::string::npos) << all[i];
    counted += std::atol(all[i].c_str() + at + 8);
  }
  EXPECT_EQ(counted, sent);
}

}  // namespace
