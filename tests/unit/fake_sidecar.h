// SPDX-License-Identifier: Apache-2.0
// A fake sidecar for tests of control protocol clients: a thread that
// listens on a temporary Unix socket, records each request line and
// answers like docs/control-protocol.md says (or misbehaves on purpose).
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../../mod_uritoken/cluster/control.h"

namespace uritoken::testing {

// The answer to `status`: two blocked tokens of key 12 (client shop-berlin
// in the test key file), one of key 99 (in no key file, with the places
// a protocol 3 owner sends), a pardon of key 13.
// The manual entry's comment holds a tab, a percent sign, an escape byte
// and UTF-8, the pardon's a byte that is not UTF-8, to check their way
// through both renderings.
inline std::string status_answer() {
  std::vector<control::Record> rs(9);
  rs[0].kind = "ok";
  rs[0].add("protocol", 1);
  rs[1].kind = "node";
  rs[1].add("name", "media-eu-1").add("id", "9f1c00").add("mode", "enforce").add("ready", "1");
  rs[1].add("policy", "5a1b").add("members", 3);
  rs[2].kind = "member";
  rs[2].add("name", "media-eu-2").add("state", "alive");
  rs[3].kind = "blocked";
  rs[3].add("key", 12).add("session", "0123456789abcdef").add("expires", 1800000000);
  rs[3].add("since_ms", 1799990000123ULL).add("reason", "auto").add("origin", "media-eu-2");
  rs[3]
      .add("networks", 5)
      .add("nets", "198.51.100.0/24,203.0.113.0/24")
      .add("first", 1799989000)
      .add("last", 1799990000);
  rs[4].kind = "blocked";
  rs[4].add("key", 12).add("session", "4567456745674567").add("expires", 1800000500);
  rs[4].add("since_ms", 1799990100000ULL).add("reason", "manual").add("origin", "media-eu-1");
  rs[4]
      .add("operator", "10.0.0.9")
      .add("user", "alice")
      .add("comment", "leaked\ton forum, 100% \x1b[31mred \xc3\xa9t\xc3\xa9");
  rs[5].kind = "blocked";
  rs[5].add("key", 99).add("session", "89ab89ab89ab89ab").add("expires", 1800000900);
  rs[5].add("since_ms", 1799990200000ULL).add("reason", "auto").add("origin", "media-eu-3");
  rs[5].add("networks", 4).add("nets", "192.0.2.0/24").add("first", 1799989100).add("last", 1799990100);
  rs[5].add("places", "AS7922 Comcast|2|c|13;net 452923ca|1|s|5;AS21928 T-Mobile|1|c|10;AS3320 Telekom|1|c|10");
  rs[5].add("score", "3.80").add("limit", 3);
  rs[6].kind = "pardoned";
  rs[6].add("key", 13).add("session", "cdefcdefcdefcdef").add("since_ms", 1799990300000ULL);
  rs[6].add("origin", "media-eu-2").add("operator", "local").add("user", "bob").add("comment", "false positive \xff");
  rs[7].kind = "proxy";
  rs[7].add("network", "81.2.69.0/24");
  rs[8].kind = "counter";
  rs[8].add("name", "gossip_packets_in").add("value", 123456);
  return control::encode_all(rs);
}

class FakeSidecar {
 public:
  enum class Mode {
    answer,       // status, revoke and pardon as specified
    refuse,       // an error record to everything
    silent,       // never accepts: the client's request sits in the backlog
    close_early,  // reads the request, closes without answering
    garbage,      // an answer that is not records
  };

  explicit FakeSidecar(Mode mode = Mode::answer) : mode_(mode) {
    char dir[] = "/tmp/uritoken-ctl-XXXXXX";
    if (mkdtemp(dir) == nullptr) return;
    dir_ = dir;
    path_ = dir_ + "/control.sock";
    listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(listen_fd_, 8) != 0) {
      ADD_FAILURE() << "cannot listen on " << path_ << ": " << std::strerror(errno);
      return;
    }
    thread_ = std::thread([this] { run(); });
  }

  ~FakeSidecar() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (listen_fd_ >= 0) close(listen_fd_);
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }

  const std::string& path() const { return path_; }
  const std::string& dir() const { return dir_; }

  std::vector<std::string> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void run() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (mode_ == Mode::silent || poll(&p, 1, 20) <= 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      const int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      timeval tv{2, 0};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      std::string line;
      char c;
      while (read(fd, &c, 1) == 1 && c != '\n') line += c;
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(line);
      }
      const std::string answer = answer_to(line);
      if (!answer.empty()) (void)!write(fd, answer.data(), answer.size());
      close(fd);
    }
  }

  std::string answer_to(const std::string& line) const {
    if (mode_ == Mode::close_early) return "";
    if (mode_ == Mode::garbage) return "ok\nNot A Record\nend\n";
    control::Record r;
    if (mode_ == Mode::refuse) {
      r.kind = "error";
      r.add("message", "unknown session and no expires");
      return control::encode_all({r});
    }
    const auto req = control::decode(line);
    if (!req) {
      r.kind = "error";
      r.add("message", "malformed request");
      return control::encode_all({r});
    }
    if (req->kind == "status") return status_answer();
    r.kind = "ok";
    r.add("key", req->get("key").value_or("")).add("session", req->get("session").value_or(""));
    r.add("stamp_ms", 1799990000123ULL);
    return control::encode_all({r});
  }

  Mode mode_;
  std::string dir_, path_;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<std::string> requests_;
};

}  // namespace uritoken::testing
