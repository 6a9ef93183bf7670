// SPDX-License-Identifier: Apache-2.0
// Real UDP for the sidecar: a non-blocking socket bound to one Endpoint.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>

#include "gossip.h"

namespace uritoken::gossip {

class UdpTransport : public Transport {
 public:
  static std::unique_ptr<UdpTransport> bind(const Endpoint& at, std::string* error);
  ~UdpTransport() override;
  UdpTransport(const UdpTransport&) = delete;
  UdpTransport& operator=(const UdpTransport&) = delete;

  // Best effort, like UDP itself: a full socket buffer drops the packet.
  void send(const Endpoint& to, const std::uint8_t* data, std::size_t size) override;
  int fd() const { return fd_; }
  std::uint64_t send_errors() const { return send_errors_; }

  // Receives every pending datagram and hands each to on_packet(from, data,
  // size); returns how many. Never blocks.
  template <class F>
  std::size_t receive_all(F on_packet) {
    std::size_t n = 0;
    Endpoint from;
    std::size_t size = 0;
    while (receive_one(from, size)) {
      on_packet(static_cast<const Endpoint&>(from), static_cast<const std::uint8_t*>(buf_.get()), size);
      ++n;
    }
    return n;
  }

 private:
  explicit UdpTransport(int fd);
  bool receive_one(Endpoint& from, std::size_t& size);
  static constexpr std::size_t kBufSize = 65536;  // larger than any datagram
  int fd_;
  std::uint64_t send_errors_ = 0;
  std::unique_ptr<std::uint8_t[]> buf_;
};

// Conversions shared with the tests.
socklen_t to_sockaddr(const Endpoint& e, sockaddr_storage& ss);
Endpoint from_sockaddr(const sockaddr_storage& ss);

}  // namespace uritoken::gossip
