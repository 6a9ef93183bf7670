// SPDX-License-Identifier: Apache-2.0
// The client side of the control protocol (control.h,
// docs/control-protocol.md): connect to the sidecar's Unix socket, send one
// request record, read the response up to its "end" line, decode it.
//
// Used by the `uritoken` CLI; plain POSIX, no signals (MSG_NOSIGNAL), no
// global state, so a status handler in an httpd worker thread can use it
// too.
#pragma once

#include <string>
#include <vector>

#include "control.h"

namespace uritoken::control {

inline constexpr int kDefaultTimeoutMs = 1000;
// A response larger than this is refused (the status of a full revocation
// table is some tens of MiB).
inline constexpr std::size_t kMaxResponseBytes = 256u << 20;

enum class CallError {
  none,
  no_socket,   // the path does not exist, or nothing listens on it
  permission,  // connecting is not allowed (not root or the httpd user)
  timeout,     // no complete answer before the deadline
  io,          // another socket error, or the connection closed early
  malformed,   // the answer is not records ending with "end"
  refused,     // the answer's first record is "error" (or not "ok")
};

struct CallResult {
  CallError error = CallError::none;
  // For humans: names the socket path and what to do; for `refused`, the
  // sidecar's own message.
  std::string message;
  // The decoded response, first record ("ok") included; for `refused`, the
  // "error" record; empty on other failures.
  std::vector<Record> records;

  bool ok() const { return error == CallError::none; }
};

// Sends `request` to the sidecar listening on `socket_path` and reads its
// answer. `timeout_ms` bounds the whole exchange (connect, write, read).
CallResult call(const std::string& socket_path, const Record& request, int timeout_ms = kDefaultTimeoutMs);

}  // namespace uritoken::control
