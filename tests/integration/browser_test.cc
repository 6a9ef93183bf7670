// SPDX-License-Identifier: Apache-2.0
// The status page in a real browser: two real nodes with two blocked
// tokens, and tests/browser/status_page.py driving headless Chromium
// (Debian's chromium, chromium-driver, python3-selenium) through reading,
// filtering, pardoning and revoking as an operator would. Screenshots land
// in BUILD_DIR/browser/ (status-1280.png, status-phone.png, ...) for people
// to look at. Without the browser the test fails: CI installs it
// (scripts/debian-packages.txt).
#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cluster.h"
#include "httpd_fixture.h"

using namespace uritoken::itest;

namespace {

const char* const kPython = "/usr/bin/python3";  // Debian's, which sees python3-selenium (not a pyenv one)
const char* const kChromium = "/usr/bin/chromium";
const char* const kChromedriver = "/usr/bin/chromedriver";

// What is missing to run a browser here, or "".
std::string missing_browser() {
  std::string missing;
  for (const char* path : {kPython, kChromium, kChromedriver}) {
    if (access(path, X_OK) != 0) missing += std::string(missing.empty() ? "" : ", ") + path;
  }
  std::string out;
  if (missing.empty() && run_command(std::string(kPython) + " -c 'import selenium'", &out) != 0) {
    missing = "python3-selenium (" + out + ")";
  }
  return missing;
}

// Processes in session `sid`, or whose command line mentions `marker`:
// "pid: command line" each.
std::vector<std::string> processes_of(pid_t sid, const std::string& marker, std::vector<pid_t>* pids) {
  std::vector<std::string> found;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return found;
  while (const dirent* e = readdir(proc)) {
    const pid_t pid = static_cast<pid_t>(std::atol(e->d_name));
    if (pid <= 0 || pid == getpid()) continue;
    const std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
    const auto paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream fields(stat.substr(paren + 1));
    std::string state;
    long ppid = 0, pgrp = 0, session = 0;
    fields >> state >> ppid >> pgrp >> session;
    if (state == "Z") continue;  // already gone, waiting for its parent
    std::string cmdline = read_text("/proc/" + std::to_string(pid) + "/cmdline");
    for (char& c : cmdline) c = c == '\0' ? ' ' : c;
    if (session == sid || cmdline.find(marker) != std::string::npos) {
      found.push_back(std::to_string(pid) + ": " + cmdline.substr(0, 200));
      if (pids != nullptr) pids->push_back(pid);
    }
  }
  closedir(proc);
  return found;
}

struct ScriptResult {
  int exit_code = -1;  // -1: killed at the timeout
  std::string output;
  std::vector<std::string> left_behind;  // processes still running after it ended (ended by the test)
};

// Runs argv in a session of its own, output to `log`, for at most
// `timeout`; then finds (and ends, by pid) anything of that session or
// mentioning `marker` still running: the browser must quit with the script.
// `marker` (a new directory) is its HOME as well.
ScriptResult run_script(const std::vector<std::string>& argv, const std::string& log, const std::string& marker,
                        std::chrono::seconds timeout) {
  ScriptResult result;
  const pid_t pid = fork();
  if (pid == 0) {
    setsid();
    // The browser's own files (crash reports, caches: its crash handler
    // leaves the session, but names its database) go under `marker` too.
    setenv("HOME", marker.c_str(), 1);
    setenv("XDG_CONFIG_HOME", (marker + "/config").c_str(), 1);
    setenv("XDG_CACHE_HOME", (marker + "/cache").c_str(), 1);
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  if (pid < 0) return result;
  const auto deadline = Clock::now() + timeout;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      kill(-pid, SIGKILL);  // its process group: the script and what it started there
      waitpid(pid, &status, 0);
      status = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (status != -1 && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  result.output = read_text(log);
  // Chromium's helpers take a moment to go after the driver quits.
  const auto grace = Clock::now() + std::chrono::seconds(3);
  while (!processes_of(pid, marker, nullptr).empty() && Clock::now() < grace) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::vector<pid_t> pids;
  result.left_behind = processes_of(pid, marker, &pids);
  for (const pid_t p : pids) kill(p, SIGKILL);
  return result;
}

// True if the file is a PNG `width` pixels wide (from its IHDR chunk).
bool png_of_width(const std::string& path, unsigned width, std::string* why) {
  const std::string data = read_text(path);
  if (data.size() < 24 || data.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0) {
    *why = path + ": missing or not a PNG (" + std::to_string(data.size()) + " bytes)";
    return false;
  }
  auto u32 = [&](std::size_t at) {
    return (static_cast<unsigned>(static_cast<unsigned char>(data[at])) << 24) |
           (static_cast<unsigned>(static_cast<unsigned char>(data[at + 1])) << 16) |
           (static_cast<unsigned>(static_cast<unsigned char>(data[at + 2])) << 8) |
           static_cast<unsigned>(static_cast<unsigned char>(data[at + 3]));
  };
  if (u32(16) != width) {
    *why = path + ": " + std::to_string(u32(16)) + "x" + std::to_string(u32(20)) + ", expected width " +
           std::to_string(width);
    return false;
  }
  return true;
}

class BrowserTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (cluster) expect_nodes_clean(*cluster, tokens);
  }
  std::unique_ptr<Cluster> cluster;
  std::vector<std::string> tokens;
};

TEST_F(BrowserTest, StatusPageReadFilterPardonRevokeInHeadlessChromium) {
  const std::string missing = missing_browser();
  ASSERT_EQ(missing, "") << "the browser test needs Debian's chromium, chromium-driver and python3-selenium: "
                            "install scripts/debian-packages.txt (bash scripts/install-deps.sh)";
  cluster = std::make_unique<Cluster>(2);
  ASSERT_TRUE(cluster->start_all()) << cluster->startup_output();
  cluster->expect_log(R"(UT00010: )");

  // Two tokens shared widely: one of client site42 (to pardon), one of
  // client "other" (key 4; hidden by the site42 filter, blocked to the end).
  const std::string mine = cluster->mint();
  const std::string theirs = cluster->node(0).mint("--client other --ttl 600");
  const std::string leaked = cluster->mint();  // revoked by pasting its URL into the form
  tokens = {mine, theirs, leaked};
  for (const auto& t : tokens) ASSERT_TRUE(cluster->served_everywhere(t)) << t;
  cluster->share_widely(mine);
  cluster->share_widely(theirs);
  ASSERT_GE(cluster->wait_refused_everywhere(mine), 0);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(wait_status(*cluster, i, theirs, 403)) << "node " << i;

  const std::string out = std::string(BUILD_DIR) + "/browser";
  std::string ignored;
  run_command("mkdir -p '" + out + "' && rm -f '" + out + "'/status-*.png '" + out + "'/status-*.html", &ignored);
  char profiles[] = "/tmp/uritoken-browser-XXXXXX";
  ASSERT_NE(mkdtemp(profiles), nullptr);
  auto page = [&](int i) { return "http://127.0.0.1:" + std::to_string(cluster->node(i).port()) + "/uritoken-status"; };
  const std::string leaked_url =
      "http://127.0.0.1:" + std::to_string(cluster->node(0).port()) + "/_uk_" + leaked + "/media/clip/seg1.ts";
  const ScriptResult run = run_script({kPython,
                                       std::string(SOURCE_DIR) + "/tests/browser/status_page.py",
                                       "--page0",
                                       page(0),
                                       "--page1",
                                       page(1),
                                       "--client",
                                       "site42",
                                       "--pardon",
                                       cluster->session_of(mine),
                                       "--other",
                                       cluster->session_of(theirs),
                                       "--revoke-url",
                                       leaked_url,
                                       "--revoke-session",
                                       cluster->session_of(leaked),
                                       "--out",
                                       out,
                                       "--profile-root",
                                       profiles},
                                      out + "/status_page.log", profiles, std::chrono::seconds(180));
  run_command(std::string("rm -rf '") + profiles + "'", &ignored);

  std::string left;
  for (const auto& p : run.left_behind) left += p + "\n";
  EXPECT_EQ(left, "") << "browser processes left behind (ended by the test)";
  ASSERT_EQ(run.exit_code, 0) << (run.exit_code == -1 ? "killed after 180 s\n" : "") << run.output
                              << "(screenshot and page source of the failure in " << out << ")";
  std::string why;
  EXPECT_TRUE(png_of_width(out + "/status-1280.png", 1280, &why)) << why;
  EXPECT_TRUE(png_of_width(out + "/status-phone.png", 390, &why)) << why;

  // What the clicks did, as clients see it on both nodes: the pardoned
  // token is served again, the other stays refused, the pasted one is refused.
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(wait_status(*cluster, i, mine, 200)) << "pardoned token on node " << i;
    EXPECT_EQ(cluster->get(i, theirs, "198.51.100.7").status, 403) << "node " << i;
  }
  EXPECT_GE(cluster->wait_refused_everywhere(leaked), 0) << cluster->node(1).error_log();
  // The forms' actions are in node 0's log with the operator, never the token.
  EXPECT_NE(cluster->node(0).error_log().find("UT00041: status page: operator 127.0.0.1 pardoned key 1 session " +
                                              cluster->session_of(mine)),
            std::string::npos)
      << cluster->node(0).error_log();
  EXPECT_NE(cluster->node(0).error_log().find("UT00041: status page: operator 127.0.0.1 revoked key 1 session " +
                                              cluster->session_of(leaked)),
            std::string::npos)
      << cluster->node(0).error_log();
}

}  // namespace
