// SPDX-License-Identifier: Apache-2.0
// Real-httpd test fixture; see httpd_fixture.h.
#include "httpd_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

namespace uritoken::itest {

const char* const kTestKeys =
    "# test keys: never use these anywhere else\n"
    "1 site42 sign AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n"
    "2 site42 verify-only ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8\n"
    "3 site42 retired QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8\n"
    "4 other sign YGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn8\n";

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const std::string& path, const std::string& content, mode_t mode) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
  }
  chmod(path.c_str(), mode);
}

void make_dirs(const std::string& path) {
  std::string cur;
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '/')) {
    if (part.empty()) {
      cur = "/";
      continue;
    }
    cur += (cur.empty() || cur.back() == '/' ? "" : "/") + part;
    mkdir(cur.c_str(), 0755);
  }
}

bool port_open(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

namespace {
// A port the kernel just handed out for a socket of this type on loopback.
int unused_loopback_port(int type) {
  const int fd = socket(AF_INET, type, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}
}  // namespace

int free_port() { return unused_loopback_port(SOCK_STREAM); }
int free_udp_port() { return unused_loopback_port(SOCK_DGRAM); }

Response http_raw(int port, const std::string& request) {
  Response r;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return r;
  }
  std::size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  char buf[16384];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    r.raw.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  const auto head_end = r.raw.find("\r\n\r\n");
  if (head_end == std::string::npos) return r;
  std::istringstream head(r.raw.substr(0, head_end));
  std::string line;
  std::getline(head, line);
  if (line.size() >= 12) r.status = std::atoi(line.c_str() + 9);
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string v = line.substr(colon + 1);
    while (!v.empty() && v[0] == ' ') v.erase(0, 1);
    r.headers[lower(line.substr(0, colon))] = v;
  }
  r.body = r.raw.substr(head_end + 4);
  // A body of unknown length (e.g. the status page's metrics once they
  // pass httpd's buffer) comes chunked, as any HTTP/1.1 client reads it.
  if (lower(r.headers["transfer-encoding"]) == "chunked") {
    std::string body;
    std::size_t at = 0;
    for (;;) {
      const auto eol = r.body.find("\r\n", at);
      if (eol == std::string::npos) break;
      const std::size_t size = std::strtoul(r.body.substr(at, eol - at).c_str(), nullptr, 16);
      if (size == 0 || eol + 2 + size > r.body.size()) break;
      body.append(r.body, eol + 2, size);
      at = eol + 2 + size + 2;
    }
    r.body = body;
  }
  return r;
}

Response http_get(int port, const std::string& target, const std::vector<std::string>& headers,
                  const std::string& method) {
  std::string req =
      method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\nConnection: close\r\n";
  for (const auto& h : headers) req += h + "\r\n";
  req += "\r\n";
  return http_raw(port, req);
}

int run_command(const std::string& cmd, std::string* output) {
  output->clear();
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) output->append(buf, n);
  const int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Httpd::Httpd(HttpdOptions options) : options_(std::move(options)) {
  char dir[] = "/tmp/uritoken-itest-XXXXXX";
  if (mkdtemp(dir) != nullptr) root_ = dir;
  chmod(root_.c_str(), 0755);  // children run as www-data when we are root
  make_dirs(root_ + "/htdocs");
  make_dirs(root_ + "/logs");
  write_keys(kTestKeys);
}

Httpd::~Httpd() {
  stop();
  if (!root_.empty() && std::getenv("URITOKEN_KEEP_TEST_DIRS") == nullptr) {
    std::string out;
    run_command("rm -rf '" + root_ + "'", &out);
  }
}

void Httpd::write_doc(const std::string& rel, const std::string& content) const {
  const std::string path = root_ + "/htdocs/" + rel;
  make_dirs(path.substr(0, path.rfind('/')));
  write_file(path, content, 0644);
}

void Httpd::write_keys(const std::string& text) const { write_file(key_file(), text, 0600); }

std::string Httpd::render_conf() const {
  const std::string m = HTTPD_MODULES;
  std::ostringstream c;
  c << "ServerRoot " << root_ << "\n"
    << "PidFile " << root_ << "/logs/httpd.pid\n"
    << "Listen 127.0.0.1:" << port_ << "\n"
    << "ServerName 127.0.0.1\n"
    << "LoadModule mpm_" << options_.mpm << "_module " << m << "/mod_mpm_" << options_.mpm << ".so\n";
  for (const char* mod : {"authz_core", "authz_host", "dir", "mime", "headers", "remoteip", "alias", "rewrite",
                          "autoindex", "env", "setenvif"}) {
    c << "LoadModule " << mod << "_module " << m << "/mod_" << mod << ".so\n";
  }
  for (const auto& mod : options_.modules) {
    c << "LoadModule " << mod << "_module " << m << "/mod_" << mod << ".so\n";
  }
  c << "LoadModule uritoken_module " << BUILD_DIR << "/mod_uritoken.so\n";
  if (geteuid() == 0) c << "User www-data\nGroup www-data\n";
  c << "TypesConfig /etc/mime.types\n"
    << "DocumentRoot " << root_ << "/htdocs\n"
    << "ErrorLog " << root_ << "/logs/error.log\n"
    << "LogLevel warn\n"
    << "LogFormat \"%h \\\"%r\\\" %>s %b status=%{URITOKEN_STATUS}e reason=%{URITOKEN_REASON}e "
       "client=%{URITOKEN_CLIENT}e session=%{URITOKEN_SESSION}e\" uritoken\n"
    << "CustomLog " << root_ << "/logs/access.log uritoken\n"
    << "EnableSendfile On\n"
    << "DirectoryIndex index.html\n"
    << "StartServers 1\n"
    << (options_.mpm == "prefork"
            ? "ServerLimit 5\nMinSpareServers 1\nMaxSpareServers 3\nMaxRequestWorkers 5\n"
            : "ServerLimit 2\nThreadsPerChild 8\nMaxRequestWorkers 16\nMinSpareThreads 1\nMaxSpareThreads 16\n")
    << "<Directory " << root_ << "/htdocs>\n  Require all granted\n  AllowOverride None\n</Directory>\n"
    << "<Location /media>\n  UriTokenRequire On\n</Location>\n";
  if (options_.engine) c << "UriTokenEngine On\nUriTokenKeyFile " << key_file() << "\n";
  std::string extra = options_.extra_conf;
  for (std::size_t at; (at = extra.find("@ROOT@")) != std::string::npos;) extra.replace(at, 6, root_);
  for (std::size_t at; (at = extra.find("@PORT@")) != std::string::npos;) extra.replace(at, 6, std::to_string(port_));
  c << extra << "\n";
  return c.str();
}

void Httpd::set_extra_conf(const std::string& conf) {
  options_.extra_conf = conf;
  write_file(conf_file(), render_conf(), 0644);
}

int Httpd::config_test(std::string* output) const {
  return run_command(std::string(HTTPD_BIN) + " -t -f " + conf_file(), output);
}

bool Httpd::start() {
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = free_port();
    write_file(conf_file(), render_conf(), 0644);
    std::string out;
    if (config_test(&out) != 0) {
      startup_output_ = out;
      return false;
    }
    const std::string stdout_path = root_ + "/logs/stdout.log";
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      setpgid(0, 0);
      const std::string conf = conf_file();
      execl(HTTPD_BIN, HTTPD_BIN, "-f", conf.c_str(), "-D", "FOREGROUND", static_cast<char*>(nullptr));
      _exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;  // exited: maybe the port was taken; retry
      }
      if (port_open(port_)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    startup_output_ = read_file(stdout_path) + error_log();
    stop();
  }
  return false;
}

void Httpd::stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(-pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

bool Httpd::graceful() {
  auto count = [this]() {
    const std::string log = error_log();
    std::size_t n = 0, at = 0;
    while ((at = log.find("resuming normal operations", at)) != std::string::npos) {
      ++n;
      ++at;
    }
    return n;
  };
  const std::size_t before = count();
  kill(pid_, SIGUSR1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline) {
    if (count() > before && port_open(port_)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let new children take over
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::string Httpd::error_log() const { return read_file(root_ + "/logs/error.log"); }
std::string Httpd::access_log() const { return read_file(root_ + "/logs/access.log"); }

std::string Httpd::mint(const std::string& args) const {
  std::string out;
  const int rc = run_command(std::string(BUILD_DIR) + "/uritoken mint --key-file " + key_file() + " " + args, &out);
  if (rc != 0) return "MINT-FAILED:" + out;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string Httpd::unexpected_log_lines(std::size_t from) const {
  static const std::regex kSerious(R"(\[[a-z_0-9]*:(warn|error|crit|alert|emerg)\])");
  std::vector<std::regex> expected;
  for (const auto& p : expected_log_) expected.emplace_back(p);
  // Debian 12's libloc-database is from 2022: every node that uses it says
  // so once at start, as it should (tests/integration/places_test.cc
  // checks the warning itself).
  expected.emplace_back(R"(UT00054: location database /usr/share/libloc-location/location\.db is [0-9]+ days old)");
  std::string out;
  const std::string log = error_log();
  std::istringstream in(from < log.size() ? log.substr(from) : std::string());
  for (std::string line; std::getline(in, line);) {
    if (!std::regex_search(line, kSerious)) continue;
    bool known = false;
    for (const auto& e : expected) known = known || std::regex_search(line, e);
    if (!known) out += line + "\n";
  }
  return out;
}

std::string Httpd::crash_notice() const {
  const std::string log = error_log();
  for (const char* needle : {"AH00051", "AH00052", "exit signal", "Segmentation fault", "AH00060"}) {
    const auto at = log.find(needle);
    if (at != std::string::npos) {
      const auto start = log.rfind('\n', at);
      return log.substr(start == std::string::npos ? 0 : start + 1, 300);
    }
  }
  return "";
}

}  // namespace uritoken::itest
