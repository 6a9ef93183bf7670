// SPDX-License-Identifier: Apache-2.0
// Control protocol client; see control_client.h.
#include "control_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace uritoken::control {
namespace {

using Clock = std::chrono::steady_clock;

class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() {
    if (fd_ >= 0) close(fd_);
  }
  int fd() const { return fd_; }

 private:
  int fd_;
};

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

std::string duration_text(int ms) {
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
}

// Waits for `events` on `fd` until the deadline: 1 ready, 0 timed out, -1 error (errno set).
int wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const int left = remaining_ms(deadline);
    if (left == 0) return 0;
    pollfd p{fd, events, 0};
    const int n = poll(&p, 1, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n > 0) return 1;
  }
}

bool ends_response(const std::string& buf) {
  static constexpr std::string_view kEnd = "\nend\n";
  if (buf == "end\n") return true;
  return buf.size() >= kEnd.size() && std::string_view(buf).substr(buf.size() - kEnd.size()) == kEnd;
}

}  // namespace

// NOLINTNEXTLINE(readability-function-size): older than the limit, to be split
CallResult call(const std::string& socket_path, const Record& request, int timeout_ms) {
  CallResult res;
  auto fail = [&res](CallError e, std::string message) {
    res.error = e;
    res.message = std::move(message);
    res.records.clear();
    return res;
  };
  const std::string timed_out =
      "the sidecar did not answer within " + duration_text(timeout_ms) + " (socket " + socket_path + ")";
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);

  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.empty() || socket_path.size() >= sizeof addr.sun_path) {
    return fail(CallError::io, "control socket path must be 1 to " + std::to_string(sizeof addr.sun_path - 1) +
                                   " bytes: " + socket_path);
  }
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());

  Socket s(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (s.fd() < 0) return fail(CallError::io, std::string("cannot create a Unix socket: ") + std::strerror(errno));

  // Connect. A Unix socket connects at once or fails, except with EAGAIN
  // when the listener's backlog is full: retry until the deadline.
  int err = 0;
  for (;;) {
    if (connect(s.fd(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) break;
    err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN) {
      const int left = remaining_ms(deadline);
      if (left == 0) return fail(CallError::timeout, timed_out);
      poll(nullptr, 0, left < 10 ? left : 10);
      continue;
    }
    if (err == EINPROGRESS) {
      const int w = wait_for(s.fd(), POLLOUT, deadline);
      if (w == 0) return fail(CallError::timeout, timed_out);
      socklen_t len = sizeof err;
      if (w < 0 || getsockopt(s.fd(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err == 0) break;
    }
    if (err == ENOENT || err == ENOTDIR) {
      return fail(CallError::no_socket, "no sidecar control socket at " + socket_path +
                                            ": is UriTokenSharing on and httpd running? (--socket PATH)");
    }
    if (err == ECONNREFUSED) {
      return fail(CallError::no_socket, "nothing listens on " + socket_path +
                                            " (left by a stopped sidecar?): is UriTokenSharing on and httpd "
                                            "running? (--socket PATH)");
    }
    if (err == EACCES || err == EPERM) {
      return fail(CallError::permission, "permission denied on " + socket_path + ": run as root or the httpd user");
    }
    return fail(CallError::io, "cannot connect to " + socket_path + ": " + std::strerror(err));
  }

  // Send the request line.
  const std::string line = encode(request);
  std::size_t sent = 0;
  while (sent < line.size()) {
    const ssize_t n = send(s.fd(), line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      const int w = wait_for(s.fd(), POLLOUT, deadline);
      if (w == 0) return fail(CallError::timeout, timed_out);
      if (w > 0) continue;
    }
    return fail(CallError::io, "cannot send to the sidecar at " + socket_path + ": " + std::strerror(errno));
  }

  // Read up to the "end" line.
  std::string buf;
  char chunk[65536];
  while (!ends_response(buf)) {
    const ssize_t n = recv(s.fd(), chunk, sizeof chunk, 0);
    if (n > 0) {
      buf.append(chunk, static_cast<std::size_t>(n));
      if (buf.size() > kMaxResponseBytes) {
        return fail(CallError::malformed, "the sidecar at " + socket_path + " sent more than " +
                                              std::to_string(kMaxResponseBytes >> 20) + " MiB");
      }
      continue;
    }
    if (n == 0) {
      return fail(CallError::io,
                  "the sidecar at " + socket_path + " closed the connection before the end of its answer");
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      const int w = wait_for(s.fd(), POLLIN, deadline);
      if (w == 0) return fail(CallError::timeout, timed_out);
      if (w > 0) continue;
    }
    return fail(CallError::io, "cannot read from the sidecar at " + socket_path + ": " + std::strerror(errno));
  }

  auto records = decode_all(buf);
  if (!records || records->empty()) {
    return fail(CallError::malformed, "malformed answer from the sidecar at " + socket_path);
  }
  const Record& first = records->front();
  if (first.kind == "error") {
    return fail(CallError::refused, first.get("message").value_or("(no message)"));
  }
  if (first.kind != "ok") {
    return fail(CallError::malformed,
                "the sidecar at " + socket_path + " answered '" + first.kind + "' instead of ok or error");
  }
  res.records = std::move(*records);
  return res;
}

}  // namespace uritoken::control
