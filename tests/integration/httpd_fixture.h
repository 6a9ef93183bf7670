// SPDX-License-Identifier: Apache-2.0
// A real httpd for integration tests: a generated server root in a temp
// dir, loading mod_uritoken from the build tree, listening on a free
// loopback port, started in the foreground as a child of the test, and a
// minimal HTTP/1.1 client that sends bytes exactly as given (curl would
// normalise the very paths we need to test).
//
// After every test the error log is checked for child crashes (AH00051,
// AH00052, "exit signal") and for any token text.
#pragma once

#include <gtest/gtest.h>

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace uritoken::itest {

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string raw;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// Sends `request` (complete, with CRLFs) to 127.0.0.1:port; reads to close.
Response http_raw(int port, const std::string& request);

// GET/HEAD with "Connection: close" and optional extra header lines.
Response http_get(int port, const std::string& target, const std::vector<std::string>& headers = {},
                  const std::string& method = "GET");

// Runs a command, returns its exit status and combined output.
int run_command(const std::string& cmd, std::string* output);

struct HttpdOptions {
  std::string mpm = "event";
  std::string extra_conf;  // appended to the generated httpd.conf; "@ROOT@" is the server root, "@PORT@" its port
  bool engine = true;      // emit UriTokenEngine On + UriTokenKeyFile
  std::vector<std::string> modules;  // more httpd modules to load ("cache", "http2", ...)
};

class Httpd {
 public:
  explicit Httpd(HttpdOptions options);
  ~Httpd();
  Httpd(const Httpd&) = delete;
  Httpd& operator=(const Httpd&) = delete;

  // Writes the config and starts httpd; false (with `startup_output`) if
  // it did not come up.
  bool start();
  void stop();
  // Graceful restart (SIGUSR1); waits for the new generation to be ready.
  bool graceful();
  // Replaces the extra configuration and rewrites httpd.conf (for graceful()).
  void set_extra_conf(const std::string& conf);

  int port() const { return port_; }
  const std::string& root() const { return root_; }
  std::string key_file() const { return root_ + "/keys"; }
  std::string conf_file() const { return root_ + "/httpd.conf"; }
  std::string error_log() const;
  std::string access_log() const;
  const std::string& startup_output() const { return startup_output_; }

  // Writes a file under htdocs (creating directories).
  void write_doc(const std::string& rel, const std::string& content) const;
  // Replaces the key file (mode 0600).
  void write_keys(const std::string& text) const;
  // Mints with the CLI against this server's key file.
  std::string mint(const std::string& args) const;
  // Runs `httpd -t` on this server's config.
  int config_test(std::string* output) const;

  // Text for a crash notice in the error log, or "".
  std::string crash_notice() const;

  // Error-log lines at warn level or above that no expect_log() pattern
  // (ECMAScript regex, searched in the line) accounts for, or "": a test
  // fails on a warning or error it did not ask for.
  void expect_log(const std::string& pattern) { expected_log_.push_back(pattern); }
  void clear_expected_log() { expected_log_.clear(); }
  // Only lines after byte `from` of the error log (a server shared by tests).
  std::string unexpected_log_lines(std::size_t from = 0) const;

 private:
  std::string render_conf() const;
  HttpdOptions options_;
  std::string root_;
  int port_ = 0;
  pid_t pid_ = -1;
  std::string startup_output_;
  std::vector<std::string> expected_log_;
};

// The sample key ring every test server starts with: key 1 (sign) and key 2
// (verify-only) of client "site42", key 3 retired, key 4 of client "other".
extern const char* const kTestKeys;

int free_port();
int free_udp_port();

// The checks every test's TearDown makes of its server: no child crashed,
// no warning or error the test did not expect (since error-log byte
// `log_from`), and none of `tokens` in the error or access log.
// Inline: the cluster benchmark links this fixture without GoogleTest.
inline void expect_server_clean(const Httpd& h, const std::vector<std::string>& tokens, std::size_t log_from = 0) {
  EXPECT_EQ(h.crash_notice(), "") << "child crashed";
  // A machine whose installed libssl3 is older than the one Debian built
  // apache2-bin against: not this module's fault, and the fix is one command.
  EXPECT_EQ(h.error_log().find("AH01882"), std::string::npos)
      << "mod_ssl reports a library mismatch (AH01882: compiled against a newer OpenSSL than the one loaded): "
         "run bash scripts/install-deps.sh, which upgrades libssl3 to the archive's version";
  EXPECT_EQ(h.unexpected_log_lines(log_from), "") << "warnings or errors no test asked for";
  for (const auto& t : tokens) {
    EXPECT_EQ(h.error_log().find(t), std::string::npos) << "token in error log";
    EXPECT_EQ(h.access_log().find(t), std::string::npos) << "token in access log";
  }
}

}  // namespace uritoken::itest
