// SPDX-License-Identifier: Apache-2.0
// HTTPS end to end, as self-hosted media servers do it: a test CA and a
// per-server wildcard certificate (`*.<server-hash>.media.test`) made with
// OpenSSL once per run, host names that encode the server's address under
// its label (`127-0-0-1.<server-hash>.media.test`), reached with curl
// `--resolve` and `--cacert` (the certificate really verified, never -k),
// over HTTP/1.1 and h2 (ALPN). Then the two policies on top of a valid
// token: UriTokenPlainHTTP (tokens received without TLS; Revoke on real
// cluster nodes) and UriTokenReferrers (a client's referring hosts).
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <ctime>
#include <fstream>
#include <memory>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "cluster.h"
#include "httpd_fixture.h"

using namespace uritoken::itest;

namespace {

const std::string kMedia = "/media/gallery/12/photo.jpg";

// The test PKI of this run: CA key and certificate, the server's EC P-256
// key, its CSR and its certificate signed by the CA for
// `*.<label>.media.test`.
struct TestPki {
  std::string dir;
  std::string label;  // the server's hash: 12 hex digits
  std::string error;  // why it could not be made, or ""
  std::string zone() const { return label + ".media.test"; }
  std::string host() const { return "127-0-0-1." + zone(); }  // 127.0.0.1 under the server's label
  std::string ca() const { return dir + "/ca.crt"; }
};

const TestPki& pki() {
  static TestPki p;
  static std::once_flag once;
  std::call_once(once, [] {
    char dir[] = "/tmp/uritoken-pki-XXXXXX";
    if (mkdtemp(dir) == nullptr) {
      p.error = "mkdtemp failed";
      return;
    }
    p.dir = dir;
    chmod(p.dir.c_str(), 0755);
    std::string out;
    run_command("od -An -N6 -tx1 /dev/urandom | tr -d ' \\n'", &out);
    p.label = out;
    const std::string z = p.zone();
    const std::string script =
        "set -e; cd " + p.dir +
        "\n"
        "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key\n"
        "openssl req -x509 -new -key ca.key -sha256 -days 2 -subj '/CN=mod_uritoken test CA' "
        "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out ca.crt\n"
        "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key\n"
        "openssl req -new -key server.key -subj '/CN=*." +
        z +
        "' -out server.csr\n"
        "printf 'subjectAltName=DNS:*." +
        z +
        "\\nbasicConstraints=critical,CA:FALSE\\nkeyUsage=critical,digitalSignature\\n"
        "extendedKeyUsage=serverAuth\\n' > server.ext\n"
        "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 2 "
        "-extfile server.ext -out server.crt\n"
        "openssl verify -CAfile ca.crt server.crt\n";
    std::ofstream(p.dir + "/make.sh") << script;
    if (p.label.size() != 12 || run_command("bash " + p.dir + "/make.sh", &out) != 0) {
      p.error = "cannot make the test PKI (label '" + p.label + "'): " + out;
    }
  });
  return p;
}

class PkiCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    if (!pki().dir.empty() && std::getenv("URITOKEN_KEEP_TEST_DIRS") == nullptr) {
      std::string out;
      run_command("rm -rf '" + pki().dir + "'", &out);
    }
  }
};
const auto* const kPkiCleanup = ::testing::AddGlobalTestEnvironment(new PkiCleanup);

// One server per test: HTTPS with the test certificate on its main port,
// plain HTTP on a second port (a virtual host, SSLEngine off), both under
// the server's host name; `conf` is added to the main server.
class Https : public ::testing::Test {
 protected:
  void TearDown() override {
    if (!h) return;
    expect_server_clean(*h, tokens_);
  }
  void start(const std::string& conf, const std::string& plain_vhost_conf = "") {
    ASSERT_EQ(pki().error, "");
    plain_port_ = free_port();
    const std::string d = pki().dir;
    HttpdOptions o;
    o.modules = {"socache_shmcb", "ssl", "http2"};
    o.extra_conf = "ServerName " + pki().host() + "\nSSLEngine on\nSSLCertificateFile " + d +
                   "/server.crt\nSSLCertificateKeyFile " + d +
                   "/server.key\nSSLSessionCache shmcb:@ROOT@/ssl_scache(512000)\nProtocols h2 http/1.1\n"
                   "Listen 127.0.0.1:" +
                   std::to_string(plain_port_) + "\n<VirtualHost 127.0.0.1:" + std::to_string(plain_port_) +
                   ">\n  ServerName " + pki().host() + "\n  SSLEngine off\n  Protocols h2c http/1.1\n" +
                   plain_vhost_conf + "</VirtualHost>\n" + conf;
    h = std::make_unique<Httpd>(o);
    h->write_doc("open/photo.jpg", std::string(3000, 'o'));
    h->write_doc("media/gallery/12/photo.jpg", std::string(5000, 'p'));
    ASSERT_TRUE(h->start()) << h->startup_output();
    // Debian's mod_ssl may be built against a newer OpenSSL patch release.
    h->expect_log("AH01882: ");
  }
  std::string mint(const std::string& args = "--scope /media/gallery/12/") {
    tokens_.push_back(h->mint("--client site42 --ttl 600 " + args));
    EXPECT_EQ(tokens_.back().find("MINT-FAILED"), std::string::npos) << tokens_.back();
    return tokens_.back();
  }
  std::string forged() {
    std::string t = mint();
    t.back() = t.back() == 'A' ? 'Q' : 'A';
    return t;
  }
  std::string https_url(const std::string& path, const std::string& host = "") const {
    return "https://" + (host.empty() ? pki().host() : host) + ":" + std::to_string(h->port()) + path;
  }
  std::string plain_url(const std::string& path) const {
    return "http://" + pki().host() + ":" + std::to_string(plain_port_) + path;
  }
  // curl against this server: every host name resolves to 127.0.0.1 and
  // certificates are verified against the test CA only. Returns
  // "STATUS HTTPVERSION" ("000 0" when no answer), the exit code in `rc`.
  std::string curl(const std::string& options, const std::string& url, std::string* body = nullptr, int* rc = nullptr) {
    const std::string host = url.substr(url.find("://") + 3, url.find(':', url.find("://") + 3) - url.find("://") - 3);
    const std::string port = std::to_string(url.rfind("https", 0) == 0 ? h->port() : plain_port_);
    const std::string out_file = h->root() + "/curl.out";
    std::string out;
    std::remove(out_file.c_str());
    const int code = run_command("curl -s --max-time 10 --cacert " + pki().ca() + " --resolve " + host + ":" + port +
                                     ":127.0.0.1 -o " + out_file + " -w '%{http_code} %{http_version}' " + options +
                                     " '" + url + "'",
                                 &out);
    if (rc != nullptr) *rc = code;
    if (body != nullptr) *body = read_text(out_file);
    return out;
  }
  // Error-log text written since `mark`.
  std::string log_since(std::size_t mark) const { return h->error_log().substr(mark); }
  std::string session_of(const std::string& token) const {
    std::string out;
    run_command(std::string(BUILD_DIR) + "/uritoken inspect " + token, &out);
    const auto at = out.find("session: ");
    return at == std::string::npos ? "(no session)" : out.substr(at + 9, 16);
  }
  std::string access_line_with(const std::string& needle) const {
    std::string log;
    for (int i = 0; i < 50; ++i) {
      log = h->access_log();
      const auto at = log.find(needle);
      if (at != std::string::npos) {
        const auto start = log.rfind('\n', at);
        const auto from = start == std::string::npos ? 0 : start + 1;
        return log.substr(from, log.find('\n', at) - from);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return "(no line with " + needle + " in:\n" + log + ")";
  }

  std::unique_ptr<Httpd> h;
  int plain_port_ = 0;
  std::vector<std::string> tokens_;
};

TEST_F(Https, TokensAreServedOverVerifiedTlsWithHttp11AndH2) {
  start("");
  h->expect_log(R"(UT00003: token refused \(bad-mac\))");
  const std::string tok = mint();
  std::string body;
  int rc = -1;
  EXPECT_EQ(curl("--http1.1", https_url("/_uk_" + tok + kMedia), &body, &rc), "200 1.1") << h->error_log();
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(body, std::string(5000, 'p'));
  EXPECT_EQ(curl("--http2", https_url("/_uk_" + tok + kMedia), &body), "200 2") << h->error_log();
  EXPECT_EQ(body, std::string(5000, 'p'));
  // The verification really ran and passed (0 is X509_V_OK).
  EXPECT_EQ(curl("--http2 -w '%{http_code} %{http_version} %{ssl_verify_result}'", https_url("/_uk_" + tok + kMedia)),
            "200 2 0");
  // A forged token is refused over TLS, for the token's reason.
  for (const char* version : {"--http1.1", "--http2"}) {
    const std::size_t mark = h->error_log().size();
    const std::string got = curl(version, https_url("/_uk_" + forged() + kMedia), &body);
    EXPECT_EQ(got.substr(0, 4), "403 ") << version;
    EXPECT_EQ(body.find("pppp"), std::string::npos);
    EXPECT_NE(log_since(mark).find("UT00003: token refused (bad-mac)"), std::string::npos) << log_since(mark);
  }
  // The access log has the TLS requests, redacted.
  EXPECT_NE(access_line_with("\"GET /_uk_[redacted]/media/gallery/12/photo.jpg HTTP/2.0\" 200").find("status=valid"),
            std::string::npos);
}

// The certificate is checked for real: only names under this server's
// label, one label deep, verify; so does only the test CA.
TEST_F(Https, TheCertificateIsReallyVerified) {
  start("");
  const std::string path = "/_uk_" + mint() + kMedia;
  int rc = -1;
  ASSERT_EQ(curl("--http1.1", https_url(path), nullptr, &rc), "200 1.1");
  const std::string other_label = pki().label == "000000000000" ? "111111111111" : "000000000000";
  for (const std::string& wrong : {std::string("media.test"), "127-0-0-1." + other_label + ".media.test",
                                   "a.127-0-0-1." + pki().zone(), pki().zone(), std::string("localhost")}) {
    EXPECT_EQ(curl("--http1.1", https_url(path, wrong), nullptr, &rc), "000 0") << wrong;
    EXPECT_EQ(rc, 60) << wrong << ": curl's exit code for a certificate that does not verify";
  }
  // Without the test CA (the system's CAs only) the right name fails too.
  std::string out;
  EXPECT_EQ(run_command("curl -s --resolve " + pki().host() + ":" + std::to_string(h->port()) +
                            ":127.0.0.1 -o /dev/null '" + https_url(path) + "'",
                        &out),
            60);
  // Another label's certificate: a second CA-signed wildcard is not ours.
  EXPECT_EQ(run_command("openssl x509 -in " + pki().dir + "/server.crt -noout -ext subjectAltName", &out), 0);
  EXPECT_NE(out.find("DNS:*." + pki().zone()), std::string::npos) << out;
}

TEST_F(Https, PlainHttpIsServedByDefault) {
  start("");
  const std::string tok = mint();
  EXPECT_EQ(curl("--http1.1", plain_url("/_uk_" + tok + kMedia)), "200 1.1");
  EXPECT_EQ(curl("--http2-prior-knowledge", plain_url("/_uk_" + tok + kMedia)), "200 2");
}

TEST_F(Https, PlainHttpRefuseServesTlsAndRefusesTokensThatArrivedInClear) {
  start("UriTokenPlainHTTP Refuse\n");
  h->expect_log(R"(UT00042: token refused \(plain-http\)|UT00003: token refused \(bad-mac\)|UT00006: )");
  const std::string tok = mint();
  const std::string session = session_of(tok);
  std::string body;
  // Over TLS, HTTP/1.1 and h2 (whose streams run on a secondary connection).
  EXPECT_EQ(curl("--http1.1", https_url("/_uk_" + tok + kMedia), &body), "200 1.1") << h->error_log();
  EXPECT_EQ(curl("--http2", https_url("/_uk_" + tok + kMedia), &body), "200 2") << h->error_log();
  EXPECT_EQ(body.size(), 5000u);
  // In clear: HTTP/1.1 and h2c.
  for (const char* version : {"--http1.1", "--http2-prior-knowledge"}) {
    const std::size_t mark = h->error_log().size();
    EXPECT_EQ(curl(version, plain_url("/_uk_" + tok + kMedia), &body).substr(0, 4), "403 ") << version;
    EXPECT_EQ(body.find("pppp"), std::string::npos);
    EXPECT_NE(log_since(mark).find("UT00042: token refused (plain-http): client site42, key 1, session " + session +
                                   " was received over plain HTTP"),
              std::string::npos)
        << log_since(mark);
  }
  EXPECT_NE(access_line_with("/media/gallery/12/photo.jpg HTTP/1.1\" 403").find("reason=plain-http client=site42"),
            std::string::npos);
  // The token is checked first: a forged one is refused for what it is.
  const std::size_t mark = h->error_log().size();
  EXPECT_EQ(curl("--http1.1", plain_url("/_uk_" + forged() + kMedia)).substr(0, 3), "403");
  EXPECT_NE(log_since(mark).find("(bad-mac)"), std::string::npos) << log_since(mark);
  EXPECT_EQ(log_since(mark).find("plain-http"), std::string::npos) << log_since(mark);
  // Untokenized requests are not concerned.
  EXPECT_EQ(curl("--http1.1", plain_url("/open/photo.jpg")), "200 1.1");
  EXPECT_EQ(curl("--http1.1", plain_url(kMedia)).substr(0, 3), "403");  // UT00006, as before
  // And the token still works over TLS afterwards: Refuse does not revoke.
  EXPECT_EQ(curl("--http1.1", https_url("/_uk_" + tok + kMedia)), "200 1.1");
}

// The port-80 host of conf-examples/uritoken.conf: it redirects to HTTPS,
// but a tokenized URL that arrives there (sent in clear) is refused, not
// redirected; the TLS host, with the default Allow, serves it.
TEST_F(Https, PlainHostThatRedirectsRefusesTokensInsteadOfRedirectingThem) {
  start("", "  UriTokenPlainHTTP Refuse\n  Redirect permanent / https://" + pki().host() + "/\n");
  h->expect_log(R"(UT00042: token refused \(plain-http\)|UT00003: token refused \(bad-mac\))");
  const std::string tok = mint();
  EXPECT_EQ(curl("--http1.1", https_url("/_uk_" + tok + kMedia)), "200 1.1");
  std::string body;
  EXPECT_EQ(curl("--http1.1", plain_url("/_uk_" + tok + kMedia), &body), "403 1.1");
  EXPECT_EQ(body.find("pppp"), std::string::npos);
  EXPECT_EQ(curl("--http1.1", plain_url("/_uk_" + forged() + kMedia)), "403 1.1");
  // Everything else is redirected as before.
  EXPECT_EQ(curl("--http1.1", plain_url("/open/photo.jpg")), "301 1.1");
  EXPECT_EQ(curl("--http1.1", plain_url(kMedia)), "301 1.1");
}

// --- Directive misuse -----------------------------------------------------------

struct Misuse {
  std::string conf;
  std::vector<std::string> modules;
  std::string expect;
};

TEST(HttpsConfig, MisusedDirectivesStopConfigTestNamingTheDirectiveAndTheFix) {
  const std::vector<std::string> tls = {"socache_shmcb", "ssl"};
  const std::vector<Misuse> cases = {
      {"UriTokenPlainHTTP Maybe", tls, "UriTokenPlainHTTP: 'Maybe' is not allowed; use Allow"},
      {"UriTokenPlainHTTP Refuse", {}, "UriTokenPlainHTTP Refuse: no TLS module (mod_ssl) is loaded"},
      {"UriTokenPlainHTTP Revoke", {}, "UriTokenPlainHTTP Revoke: no TLS module (mod_ssl) is loaded"},
      {"UriTokenPlainHTTP Revoke", tls,
       "UriTokenPlainHTTP Revoke revokes through link sharing, which is off: add 'UriTokenSharing Enforce'"},
      {"<Location /x>\nUriTokenPlainHTTP Refuse\n</Location>", tls,
       "UriTokenPlainHTTP not allowed in <Location> context"},
      {"UriTokenReferrers site42 https://shop.example/",
       {},
       "UriTokenReferrers: 'https://shop.example/' is not a host name: give the host alone"},
      {"UriTokenReferrers site42 shop.example:8443", {}, "without scheme, port or path"},
      {"UriTokenReferrers site42 *.com", {}, "UriTokenReferrers: '*.com' would allow every host under a top-level"},
      {"UriTokenReferrers site42 a.*.example", {}, "UriTokenReferrers: 'a.*.example' is not a host name"},
      {"UriTokenReferrers shop/berlin a.example", {}, "UriTokenReferrers: 'shop/berlin' is not a client id"},
      {"UriTokenReferrers site42", {}, "UriTokenReferrers"},
      {"UriTokenReferrers nosuchsite shop.example", {}, "UriTokenReferrers: client 'nosuchsite' has no key in"},
      {"UriTokenReferrerMissing site42 Refuse",
       {},
       "UriTokenReferrerMissing: client 'site42' has no UriTokenReferrers list here"},
      {"UriTokenReferrerMissing Sometimes", {}, "UriTokenReferrerMissing: 'Sometimes' is not allowed"},
      {"UriTokenReferrerMissing site42 Never", {}, "UriTokenReferrerMissing: 'Never' is not allowed"},
      {"<Directory /tmp>\nUriTokenReferrers site42 shop.example\n</Directory>",
       {},
       "UriTokenReferrers not allowed in <Directory> context"},
  };
  for (const auto& c : cases) {
    HttpdOptions o;
    o.modules = c.modules;
    o.extra_conf = c.conf;
    Httpd h(o);
    EXPECT_FALSE(h.start()) << c.conf;
    EXPECT_NE(h.startup_output().find(c.expect), std::string::npos) << c.conf << "\n" << h.startup_output();
  }
  // The same directives used well pass.
  HttpdOptions o;
  o.modules = tls;
  o.extra_conf =
      "UriTokenPlainHTTP Refuse\nUriTokenReferrers site42 shop.example *.site42.example\n"
      "UriTokenReferrerMissing site42 Refuse\nUriTokenReferrerMissing Allow\n";
  Httpd good(o);
  std::string out;
  ASSERT_TRUE(good.start()) << good.startup_output();
  EXPECT_EQ(good.config_test(&out), 0) << out;
}

// --- UriTokenPlainHTTP Revoke on real cluster nodes ----------------------------

// Node 0 revokes a token it receives over plain HTTP; nodes 1 and 2 (which
// allow plain HTTP) then refuse it as revoked. The evidence says why.
TEST(HttpsCluster, PlainHttpRevokeRevokesTheTokenOnEveryNode) {
  Cluster c(3);
  // mod_ssl loaded (the node could serve HTTPS; this test sends in clear).
  const std::string mods = HTTPD_MODULES;
  c.add_node_conf(0, "LoadModule socache_shmcb_module " + mods + "/mod_socache_shmcb.so\nLoadModule ssl_module " +
                         mods + "/mod_ssl.so\nSSLSessionCache shmcb:" + c.state_dir(0) +
                         "-ssl_scache(51200)\n"
                         "UriTokenPlainHTTP Revoke\n");
  ASSERT_TRUE(c.start_all()) << c.startup_output();
  c.expect_log(R"(UT00043: token refused \(plain-http\) and revoked|UT00042: token refused \(plain-http\)|)"
               R"(UT00010: token refused \(revoked\)|UT00003: token refused \(bad-mac\)|AH01882: )");
  const std::string tok = c.mint();
  const std::string other = c.mint();
  std::vector<std::string> tokens = {tok, other};
  const std::string session = c.session_of(tok);
  for (int i = 1; i < 3; ++i) ASSERT_EQ(c.get(i, tok, "198.51.100.7").status, 200) << "node " << i;

  // A forged token in clear is refused for what it is and revokes nothing.
  std::string forged = other;
  forged.back() = forged.back() == 'A' ? 'Q' : 'A';
  std::size_t mark = c.node(0).error_log().size();
  EXPECT_EQ(c.get(0, forged, "198.51.100.7").status, 403);
  EXPECT_NE(c.node(0).error_log().find("(bad-mac)", mark), std::string::npos);

  mark = c.node(0).error_log().size();
  EXPECT_EQ(c.get(0, tok, "203.0.113.9").status, 403);
  EXPECT_NE(c.node(0).error_log().find("UT00043: token refused (plain-http) and revoked in the cluster: client "
                                       "site42, key 1, session " +
                                           session + " was received over plain HTTP",
                                       mark),
            std::string::npos)
      << c.node(0).error_log().substr(mark);
  // The other nodes refuse it as revoked.
  for (int i = 1; i < 3; ++i) {
    bool refused = false;
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (!refused && Clock::now() < deadline) {
      refused = c.refuses_as_revoked(i, tok);
      if (!refused) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_TRUE(refused) << "node " << i << " still serves a token received in clear by node 0";
  }
  // The evidence every node shows: a manual revocation, and why.
  const std::string status = c.control(2, "status\n");
  const std::regex blocked("blocked\\t[^\\n]*session=" + session + "[^\\n]*");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(status, m, blocked)) << status;
  const std::string line = m.str();
  EXPECT_NE(line.find("reason=manual"), std::string::npos) << line;
  EXPECT_NE(line.find("user=mod_uritoken"), std::string::npos) << line;
  EXPECT_NE(line.find("comment=received over plain HTTP from 203.0.113.9 at node0"), std::string::npos) << line;
  // Node 0 again: refused, without asking the sidecar a second time.
  mark = c.node(0).error_log().size();
  EXPECT_EQ(c.get(0, tok, "203.0.113.9").status, 403);
  EXPECT_NE(c.node(0).error_log().find("UT00042: token refused (plain-http): client site42, key 1, session " + session +
                                           " was received over plain HTTP (revoked in the cluster already)",
                                       mark),
            std::string::npos)
      << c.node(0).error_log().substr(mark);
  // The other token, never sent in clear to node 0, is still served.
  for (int i = 1; i < 3; ++i) EXPECT_EQ(c.get(i, other, "198.51.100.7").status, 200) << "node " << i;
  expect_nodes_clean(c, tokens);
}

// A sidecar that does not answer: the request is still refused, at most
// the control call's second later, and the log says the revocation is not
// confirmed.
TEST(HttpsCluster, PlainHttpRevokeWithoutAnAnsweringSidecarStillRefuses) {
  Cluster c(1, "Enforce", false);
  const std::string mods = HTTPD_MODULES;
  c.add_node_conf(0, "LoadModule socache_shmcb_module " + mods + "/mod_socache_shmcb.so\nLoadModule ssl_module " +
                         mods + "/mod_ssl.so\nSSLSessionCache shmcb:" + c.state_dir(0) +
                         "-ssl_scache(51200)\n"
                         "UriTokenPlainHTTP Revoke\n");
  ASSERT_TRUE(c.start_all()) << c.startup_output();
  c.expect_log(R"(UT00044: token refused \(plain-http\), but its revocation is not confirmed)");
  const std::string tok = c.mint();
  // The sidecar is up and answering; then it stops answering.
  for (int i = 0; i < 250 && c.control(0, "status\n").rfind("ok", 0) != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(c.control(0, "status\n").rfind("ok", 0), 0u) << "the sidecar never answered";
  const pid_t sidecar = c.sidecar_pid(0);
  ASSERT_GT(sidecar, 0);
  ASSERT_EQ(kill(sidecar, SIGSTOP), 0);
  const std::size_t mark = c.node(0).error_log().size();
  const auto t0 = Clock::now();
  const int status = c.get(0, tok, "203.0.113.9").status;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  kill(sidecar, SIGCONT);
  EXPECT_EQ(status, 403);
  EXPECT_GE(ms, 900) << "the control call should have waited for its 1 s";
  EXPECT_LT(ms, 3000);
  EXPECT_NE(c.node(0).error_log().find("UT00044: token refused (plain-http), but its revocation is not confirmed: "
                                       "client site42, key 1, session " +
                                           c.session_of(tok),
                                       mark),
            std::string::npos)
      << c.node(0).error_log().substr(mark);
  expect_nodes_clean(c, {tok});
}

// --- UriTokenReferrers ----------------------------------------------------------

const char* kThirdClientKey = "5 third sign gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp8\n";

class Referrers : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpdOptions o;
    o.extra_conf =
        "UriTokenReferrers site42 shop.example.com *.site42.example\n"
        "UriTokenReferrers site42 my_uk_shop.example\n"
        "UriTokenReferrers other player.example\n"
        "UriTokenReferrerMissing other Refuse\n";
    h = std::make_unique<Httpd>(o);
    h->write_keys(std::string(kTestKeys) + kThirdClientKey);
    h->write_doc("open/photo.jpg", std::string(3000, 'o'));
    h->write_doc("media/gallery/12/photo.jpg", std::string(5000, 'p'));
    ASSERT_TRUE(h->start()) << h->startup_output();
  }
  void TearDown() override { expect_server_clean(*h, tokens_); }
  std::string mint(const std::string& client, const std::string& lifetime = "--ttl 600") {
    tokens_.push_back(h->mint("--client " + client + " " + lifetime));
    EXPECT_EQ(tokens_.back().find("MINT-FAILED"), std::string::npos) << tokens_.back();
    return tokens_.back();
  }
  int get(const std::string& token, const std::string& referer) {
    std::vector<std::string> headers;
    if (!referer.empty()) headers.push_back("Referer: " + referer);
    return http_get(h->port(), "/_uk_" + token + kMedia, headers).status;
  }
  std::unique_ptr<Httpd> h;
  std::vector<std::string> tokens_;
};

TEST_F(Referrers, ListedHostsAreServedOthersRefusedAsBadReferrer) {
  h->expect_log(R"(UT00045: token refused \(bad-referrer\))");
  const std::string tok = mint("site42");
  const std::string session = [&] {
    std::string out;
    run_command(std::string(BUILD_DIR) + "/uritoken inspect " + tok, &out);
    return out.substr(out.find("session: ") + 9, 16);
  }();
  EXPECT_EQ(get(tok, "https://shop.example.com/gallery.html"), 200);
  EXPECT_EQ(get(tok, "https://SHOP.Example.COM:8443/gallery.html"), 200);  // case and port do not matter
  EXPECT_EQ(get(tok, "http://a.b.site42.example/"), 200);                  // wildcard, any depth
  EXPECT_EQ(get(tok, ""), 200);                                            // none: allowed by default
  // A listed page that itself holds a token in its URL: the header is
  // redacted for the logs, the host is what counts.
  EXPECT_EQ(get(tok, "https://shop.example.com/_uk_" + mint("site42") + "/page.html"), 200);
  // A host holding the marker: redaction would change it; the check reads
  // the Referer as received.
  EXPECT_EQ(get(tok, "https://my_uk_shop.example/page.html"), 200);
  // The media server's own pages (same-origin Referer of relative links).
  EXPECT_EQ(get(tok, "http://127.0.0.1:" + std::to_string(h->port()) + "/_uk_" + tok + "/media/gallery/12/"), 200);

  struct Bad {
    std::string referer;
    std::string host;
  };
  for (const Bad& b : std::vector<Bad>{{"https://evil.example/_uk_" + tok + "/hotlink.html", "evil.example"},
                                       {"https://site42.example/", "site42.example"},  // *. is below only
                                       {"https://shop.example.com.evil.example/", "shop.example.com.evil.example"},
                                       {"garbage", "(none: the Referer is not an absolute URL)"}}) {
    const std::size_t mark = h->error_log().size();
    EXPECT_EQ(get(tok, b.referer), 403) << b.referer;
    const std::string log = h->error_log().substr(mark);
    EXPECT_NE(log.find("UT00045: token refused (bad-referrer): client site42, key 1, session " + session +
                       ", referring host " + b.host + " is not in the client's UriTokenReferrers"),
              std::string::npos)
        << log;
    EXPECT_EQ(log.find(tok), std::string::npos) << log;
  }
  // The Referer httpd appends to the line is the redacted one.
  EXPECT_NE(h->error_log().find("referer: https://evil.example/_uk_[redacted]/hotlink.html"), std::string::npos)
      << h->error_log();
  std::string log;
  for (int i = 0; i < 50 && log.find("reason=bad-referrer") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    log = h->access_log();
  }
  EXPECT_NE(log.find("\" 403 "), std::string::npos);
  EXPECT_NE(log.find("status=invalid reason=bad-referrer client=site42 session=" + session), std::string::npos) << log;
}

TEST_F(Referrers, TheTokenIsCheckedFirstAndClientsWithoutAListAreNotConcerned) {
  h->expect_log(R"(UT00003: token refused \((bad-mac|expired)\))");
  std::string forged = mint("site42");
  forged.back() = forged.back() == 'A' ? 'Q' : 'A';
  std::size_t mark = h->error_log().size();
  EXPECT_EQ(get(forged, "https://shop.example.com/"), 403);  // a good Referer does not help
  EXPECT_NE(h->error_log().find("UT00003: token refused (bad-mac)", mark), std::string::npos);
  mark = h->error_log().size();
  EXPECT_EQ(get(forged, "https://evil.example/"), 403);  // refused for the token, not the Referer
  EXPECT_NE(h->error_log().find("(bad-mac)", mark), std::string::npos);
  EXPECT_EQ(h->error_log().find("bad-referrer", mark), std::string::npos);
  const std::string expired = mint("site42", "--expires " + std::to_string(std::time(nullptr) - 3600));
  EXPECT_EQ(http_get(h->port(), "/_uk_" + expired + kMedia, {"Referer: https://evil.example/"}).status, 410);
  // A client with no list: any Referer.
  const std::string third = mint("third");
  EXPECT_EQ(get(third, "https://evil.example/"), 200);
  EXPECT_EQ(get(third, ""), 200);
  // Untokenized requests: not concerned.
  EXPECT_EQ(http_get(h->port(), "/open/photo.jpg", {"Referer: https://evil.example/"}).status, 200);
}

TEST_F(Referrers, MissingRefererIsRefusedOnlyWhereConfigured) {
  h->expect_log(R"(UT00046: token refused \(missing-referrer\)|UT00045: )");
  const std::string tok = mint("other");
  EXPECT_EQ(get(tok, "https://player.example/embed"), 200);
  const std::size_t mark = h->error_log().size();
  EXPECT_EQ(get(tok, ""), 403);
  EXPECT_NE(h->error_log().find("UT00046: token refused (missing-referrer): client other, key 4", mark),
            std::string::npos)
      << h->error_log().substr(mark);
  EXPECT_EQ(http_get(h->port(), "/_uk_" + tok + kMedia, {"Referer: "}).status, 403);  // empty is none
  EXPECT_EQ(get(tok, "https://shop.example.com/"), 403);                              // site42's list is not other's
  EXPECT_EQ(get(mint("site42"), ""), 200);                                            // site42 keeps the default
}

}  // namespace
