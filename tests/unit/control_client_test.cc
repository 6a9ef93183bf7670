// SPDX-License-Identifier: Apache-2.0
// The control protocol client (cluster/control_client.h) against a fake
// sidecar (fake_sidecar.h): one request, the decoded answer, and an error
// message that says what to do for each way the exchange can fail.
#include "../../mod_uritoken/cluster/control_client.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "fake_sidecar.h"

using namespace uritoken;
using uritoken::testing::FakeSidecar;

namespace {

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(ControlClient, SendsOneRecordAndDecodesTheAnswer) {
  FakeSidecar s;
  control::Record req;
  req.kind = "status";
  const auto r = control::call(s.path(), req);
  ASSERT_TRUE(r.ok()) << r.message;
  ASSERT_EQ(r.records.size(), 9u);
  EXPECT_EQ(r.records[0].kind, "ok");
  EXPECT_EQ(r.records[4].get("comment"), "leaked\ton forum, 100% \x1b[31mred \xc3\xa9t\xc3\xa9");
  EXPECT_EQ(s.requests(), std::vector<std::string>{"status"});
}

TEST(ControlClient, ErrorsSayWhatToDo) {
  control::Record req;
  req.kind = "status";
  const auto missing = control::call("/tmp/uritoken-no-such-dir/control.sock", req);
  EXPECT_EQ(missing.error, control::CallError::no_socket);
  EXPECT_EQ(missing.message,
            "no sidecar control socket at /tmp/uritoken-no-such-dir/control.sock: is UriTokenSharing on and httpd "
            "running? (--socket PATH)");

  {
    FakeSidecar refuse(FakeSidecar::Mode::refuse);
    const auto r = control::call(refuse.path(), req);
    EXPECT_EQ(r.error, control::CallError::refused);
    EXPECT_EQ(r.message, "unknown session and no expires");
    ASSERT_EQ(r.records.size(), 1u);  // the error record itself, for its other fields
    EXPECT_EQ(r.records[0].kind, "error");
  }
  {
    FakeSidecar early(FakeSidecar::Mode::close_early);
    const auto r = control::call(early.path(), req);
    EXPECT_EQ(r.error, control::CallError::io);
    EXPECT_TRUE(has(r.message, "closed the connection before the end of its answer")) << r.message;
  }
  {
    FakeSidecar garbage(FakeSidecar::Mode::garbage);
    const auto r = control::call(garbage.path(), req);
    EXPECT_EQ(r.error, control::CallError::malformed);
    EXPECT_EQ(r.message, "malformed answer from the sidecar at " + garbage.path());
  }
  {
    FakeSidecar silent(FakeSidecar::Mode::silent);
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = control::call(silent.path(), req, 200);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(r.error, control::CallError::timeout);
    EXPECT_EQ(r.message, "the sidecar did not answer within 200 ms (socket " + silent.path() + ")");
    EXPECT_GE(ms, 190);
    EXPECT_LT(ms, 1000);
  }
  {
    // A socket file nobody listens on any more (a sidecar that died).
    char dir[] = "/tmp/uritoken-ctl-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    const std::string path = std::string(dir) + "/control.sock";
    const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    close(fd);
    const auto r = control::call(path, req);
    EXPECT_EQ(r.error, control::CallError::no_socket);
    EXPECT_TRUE(has(r.message, "nothing listens on " + path)) << r.message;
    unlink(path.c_str());
    rmdir(dir);
  }
  EXPECT_EQ(control::call(std::string(200, 'x'), req).error, control::CallError::io) << "path too long";
}

TEST(ControlClient, PermissionDeniedSaysWhoMayConnect) {
  // The sidecar's socket is 0660 and owned by the httpd user: another user
  // is refused by the kernel. As root, try it from a child that is nobody.
  char dir[] = "/tmp/uritoken-ctl-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  chmod(dir, 0755);
  const std::string path = std::string(dir) + "/control.sock";
  const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  chmod(path.c_str(), 0600);
  control::Record req;
  req.kind = "status";
  if (geteuid() != 0) {
    const auto r = control::call(path, req);
    EXPECT_EQ(r.error, control::CallError::permission);
    EXPECT_EQ(r.message, "permission denied on " + path + ": run as root or the httpd user");
  } else {
    const pid_t pid = fork();
    if (pid == 0) {
      if (setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
      const auto r = control::call(path, req);
      _exit(r.error == control::CallError::permission &&
                    r.message == "permission denied on " + path + ": run as root or the httpd user"
                ? 0
                : 1);
    }
    int st = 0;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "child status " << st;
  }
  close(fd);
  unlink(path.c_str());
  rmdir(dir);
}

}  // namespace
