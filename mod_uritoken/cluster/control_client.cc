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
#include <optional>

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

CallResult failure(CallError e, std::string message) {
  CallResult res;
  res.error = e;
  res.message = std::move(message);
  return res;
}

// The three steps of a call; each gives its failure, or nothing when done.
using Step = std::optional<CallResult>;

// A Unix socket connects at once or fails, except with EAGAIN when the
// listener's backlog is full: retry until the deadline.
Step connect_socket(int fd, const sockaddr_un& addr, const std::string& path, Clock::time_point deadline,
                    const std::string& timed_out) {
  int err = 0;
  for (;;) {
    if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) return std::nullopt;
    err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN) {
      const int left = remaining_ms(deadline);
      if (left == 0) return failure(CallError::timeout, timed_out);
      poll(nullptr, 0, left < 10 ? left : 10);
      continue;
    }
    if (err != EINPROGRESS) break;
    const int w = wait_for(fd, POLLOUT, deadline);
    if (w == 0) return failure(CallError::timeout, timed_out);
    socklen_t len = sizeof err;
    if (w < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == 0) return std::nullopt;
    break;
  }
  if (err == ENOENT || err == ENOTDIR) {
    return failure(CallError::no_socket, "no sidecar control socket at " + path +
                                             ": is UriTokenSharing on and httpd running? (--socket PATH)");
  }
  if (err == ECONNREFUSED) {
    return failure(CallError::no_socket, "nothing listens on " + path +
                                             " (left by a stopped sidecar?): is UriTokenSharing on and httpd "
                                             "running? (--socket PATH)");
  }
  if (err == EACCES || err == EPERM) {
    return failure(CallError::permission, "permission denied on " + path + ": run as root or the httpd user");
  }
  return failure(CallError::io, "cannot connect to " + path + ": " + std::strerror(err));
}

Step send_line(int fd, const std::string& line, const std::string& path, Clock::time_point deadline,
               const std::string& timed_out) {
  std::size_t sent = 0;
  while (sent < line.size()) {
    const ssize_t n = send(fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      const int w = wait_for(fd, POLLOUT, deadline);
      if (w == 0) return failure(CallError::timeout, timed_out);
      if (w > 0) continue;
    }
    return failure(CallError::io, "cannot send to the sidecar at " + path + ": " + std::strerror(errno));
  }
  return std::nullopt;
}

// Reads up to the "end" line into `buf`.
Step read_answer(int fd, std::string* buf, const std::string& path, Clock::time_point deadline,
                 const std::string& timed_out) {
  char chunk[65536];
  while (!ends_response(*buf)) {
    const ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n > 0) {
      buf->append(chunk, static_cast<std::size_t>(n));
      if (buf->size() > kMaxResponseBytes) {
        return failure(CallError::malformed, "the sidecar at " + path + " sent more than " +
                                                 std::to_string(kMaxResponseBytes >> 20) + " MiB");
      }
      continue;
    }
    if (n == 0) {
      return failure(CallError::io, "the sidecar at " + path + " closed the connection before the end of its answer");
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      const int w = wait_for(fd, POLLIN, deadline);
      if (w == 0) return failure(CallError::timeout, timed_out);
      if (w > 0) continue;
    }
    return failure(CallError::io, "cannot read from the sidecar at " + path + ": " + std::strerror(errno));
  }
  return std::nullopt;
}

}  // namespace

CallResult call(const std::string& socket_path, const Record& request, int timeout_ms) {
  const std::string timed_out =
      "the sidecar did not answer within " + duration_text(timeout_ms) + " (socket " + socket_path + ")";
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);

  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.empty() || socket_path.size() >= sizeof addr.sun_path) {
    return failure(CallError::io, "control socket path must be 1 to " + std::to_string(sizeof addr.sun_path - 1) +
                                      " bytes: " + socket_path);
  }
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  Socket s(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (s.fd() < 0) return failure(CallError::io, std::string("cannot create a Unix socket: ") + std::strerror(errno));

  std::string buf;
  if (Step failed = connect_socket(s.fd(), addr, socket_path, deadline, timed_out)) return *failed;
  if (Step failed = send_line(s.fd(), encode(request), socket_path, deadline, timed_out)) return *failed;
  if (Step failed = read_answer(s.fd(), &buf, socket_path, deadline, timed_out)) return *failed;

  auto records = decode_all(buf);
  if (!records || records->empty()) {
    return failure(CallError::malformed, "malformed answer from the sidecar at " + socket_path);
  }
  const Record& first = records->front();
  if (first.kind == "error") {
    CallResult res = failure(CallError::refused, first.get("message").value_or("(no message)"));
    res.records = std::move(*records);  // the error record's other fields (a client-API problem=)
    return res;
  }
  if (first.kind != "ok") {
    return failure(CallError::malformed,
                   "the sidecar at " + socket_path + " answered '" + first.kind + "' instead of ok or error");
  }
  CallResult res;
  res.records = std::move(*records);
  return res;
}

}  // namespace uritoken::control
