// SPDX-License-Identifier: Apache-2.0
#include "udp_transport.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace uritoken::gossip {

socklen_t to_sockaddr(const Endpoint& e, sockaddr_storage& ss) {
  std::memset(&ss, 0, sizeof ss);
  if (e.v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(e.port);
    std::memcpy(&a->sin6_addr, e.addr, 16);
    return sizeof *a;
  }
  auto* a = reinterpret_cast<sockaddr_in*>(&ss);
  a->sin_family = AF_INET;
  a->sin_port = htons(e.port);
  std::memcpy(&a->sin_addr, e.addr, 4);
  return sizeof *a;
}

Endpoint from_sockaddr(const sockaddr_storage& ss) {
  Endpoint e;
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    e.port = ntohs(a->sin6_port);
    static const std::uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const auto* b = reinterpret_cast<const std::uint8_t*>(&a->sin6_addr);
    if (std::memcmp(b, mapped, 12) == 0) {  // IPv4 peer on a dual-stack socket
      std::memcpy(e.addr, b + 12, 4);
    } else {
      e.v6 = true;
      std::memcpy(e.addr, b, 16);
    }
  } else {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    e.port = ntohs(a->sin_port);
    std::memcpy(e.addr, &a->sin_addr, 4);
  }
  return e;
}

UdpTransport::UdpTransport(int fd) : fd_(fd), buf_(new std::uint8_t[kBufSize]) {}

UdpTransport::~UdpTransport() { ::close(fd_); }

std::unique_ptr<UdpTransport> UdpTransport::bind(const Endpoint& at, std::string* error) {
  int fd = ::socket(at.v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    if (error) *error = std::string("socket: ") + std::strerror(errno);
    return nullptr;
  }
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(at, ss);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    if (error) *error = "bind " + at.to_string() + ": " + std::strerror(errno);
    ::close(fd);
    return nullptr;
  }
  return std::unique_ptr<UdpTransport>(new UdpTransport(fd));
}

void UdpTransport::send(const Endpoint& to, const std::uint8_t* data, std::size_t size) {
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(to, ss);
  ssize_t n;
  do n = ::sendto(fd_, data, size, 0, reinterpret_cast<sockaddr*>(&ss), len);
  while (n < 0 && errno == EINTR);
  if (n < 0) ++send_errors_;
}

bool UdpTransport::receive_one(Endpoint& from, std::size_t& size) {
  for (;;) {
    sockaddr_storage ss;
    socklen_t len = sizeof ss;
    ssize_t n = ::recvfrom(fd_, buf_.get(), kBufSize, 0, reinterpret_cast<sockaddr*>(&ss), &len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;  // EAGAIN: drained (other errors: nothing to hand out either)
    from = from_sockaddr(ss);
    size = static_cast<std::size_t>(n);
    return true;
  }
}

}  // namespace uritoken::gossip
