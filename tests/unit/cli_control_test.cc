// SPDX-License-Identifier: Apache-2.0
// The CLI's control verbs (uritoken blocked|revoke|pardon) run as a
// separate process against a fake sidecar (fake_sidecar.h): what they
// print (text and --json), the request records the sidecar receives, that
// a token or tokenized URL becomes its key id, session and expiry without
// ever being printed, and the errors and exit codes.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "../../mod_uritoken/core/keyring.h"
#include "../../mod_uritoken/core/token.h"
#include "fake_sidecar.h"

using namespace uritoken;
using uritoken::testing::FakeSidecar;

namespace {

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

struct CliRun {
  int status = -1;
  std::string out, err;
};

// Runs the built CLI with `env` assignments ("NAME=value", or "-u NAME")
// and `args`, each quoted for the shell.
CliRun run_cli(const std::vector<std::string>& env, const std::vector<std::string>& args) {
  char errfile[] = "/tmp/uritoken-ctl-err-XXXXXX";
  const int efd = mkstemp(errfile);
  if (efd >= 0) close(efd);
  std::string cmd = "env";
  for (const auto& e : env) {
    if (e.rfind("-u ", 0) == 0) cmd += " -u " + quote(e.substr(3));  // options before assignments
  }
  for (const auto& e : env) {
    if (e.rfind("-u ", 0) != 0) cmd += " " + quote(e);
  }
  cmd += " " + quote(std::string(BUILD_DIR) + "/uritoken");
  for (const auto& a : args) cmd += " " + quote(a);
  cmd += " 2>" + std::string(errfile);
  CliRun r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  std::ifstream in(errfile);
  r.err.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  unlink(errfile);
  return r;
}

CliRun run_cli(const FakeSidecar& s, const std::vector<std::string>& args) {
  return run_cli({"URITOKEN_CONTROL_SOCKET=" + s.path(), "-u SUDO_USER", "USER=alice"}, args);
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A key file (mode 0600) in `dir`: key 12 of shop-berlin, 13 of other-site.
std::string write_key_file(const std::string& dir) {
  const std::string path = dir + "/keys";
  std::ofstream(path) << generate_key_line(12, "shop-berlin") << "\n" << generate_key_line(13, "other-site") << "\n";
  chmod(path.c_str(), 0600);
  return path;
}

// A token of key 12 with session 0a1b2c3d4e5f6071.
std::string test_token(const std::string& key_file, std::uint32_t expires) {
  std::string error;
  const auto ring = KeyRing::load_file(key_file, &error);
  EXPECT_TRUE(ring) << error;
  MintParams p;
  p.client = "shop-berlin";
  p.expires = expires;
  p.scope = std::string_view("/gallery/12/");
  p.session = SessionId{0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f, 0x60, 0x71};
  const auto token = mint_token(*ring->find(12), p, &error);
  EXPECT_TRUE(token) << error;
  return token.value_or("");
}

// ---- A minimal JSON reader, enough to check the shape of --json ----

struct Json {
  enum Type { null, boolean, number, string, array, object } type = null;
  bool b = false;
  double n = 0;
  std::string s;
  std::vector<Json> a;
  std::vector<std::pair<std::string, Json>> o;

  const Json& operator[](const std::string& key) const {
    static const Json missing;
    for (const auto& [k, v] : o) {
      if (k == key) return v;
    }
    return missing;
  }
  bool has_key(const std::string& key) const {
    for (const auto& kv : o) {
      if (kv.first == key) return true;
    }
    return false;
  }
};

class JsonReader {
 public:
  explicit JsonReader(std::string_view in) : in_(in) {}
  bool read(Json* out) {
    const bool ok = value(out);
    space();
    return ok && i_ == in_.size();
  }

 private:
  void space() {
    while (i_ < in_.size() && (in_[i_] == ' ' || in_[i_] == '\n' || in_[i_] == '\t' || in_[i_] == '\r')) ++i_;
  }
  bool literal(std::string_view w) {
    if (in_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }
  bool str(std::string* out) {
    if (i_ >= in_.size() || in_[i_] != '"') return false;
    ++i_;
    while (i_ < in_.size() && in_[i_] != '"') {
      const auto c = static_cast<unsigned char>(in_[i_++]);
      if (c < 0x20) return false;
      if (c != '\\') {
        *out += static_cast<char>(c);
        continue;
      }
      if (i_ >= in_.size()) return false;
      const char e = in_[i_++];
      if (e == 'u') {
        if (i_ + 4 > in_.size()) return false;
        const unsigned cp = std::stoul(std::string(in_.substr(i_, 4)), nullptr, 16);
        i_ += 4;
        if (cp < 0x80) {
          *out += static_cast<char>(cp);
        } else if (cp < 0x800) {
          *out += static_cast<char>(0xc0 | (cp >> 6));
          *out += static_cast<char>(0x80 | (cp & 0x3f));
        } else {
          *out += static_cast<char>(0xe0 | (cp >> 12));
          *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
          *out += static_cast<char>(0x80 | (cp & 0x3f));
        }
      } else {
        const std::string_view from = "\"\\/bfnrt", to = "\"\\/\b\f\n\r\t";
        const auto k = from.find(e);
        if (k == std::string_view::npos) return false;
        *out += to[k];
      }
    }
    if (i_ >= in_.size()) return false;
    ++i_;
    return true;
  }
  bool value(Json* v) {
    space();
    if (i_ >= in_.size()) return false;
    const char c = in_[i_];
    if (c == 'n') return literal("null");
    if (c == 't' || c == 'f') {
      v->type = Json::boolean;
      v->b = c == 't';
      return literal(c == 't' ? "true" : "false");
    }
    if (c == '"') {
      v->type = Json::string;
      return str(&v->s);
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      const std::size_t start = i_;
      while (i_ < in_.size() && std::strchr("-+.eE0123456789", in_[i_]) != nullptr) ++i_;
      v->type = Json::number;
      v->n = std::stod(std::string(in_.substr(start, i_ - start)));
      return true;
    }
    if (c == '[' || c == '{') {
      const bool obj = c == '{';
      v->type = obj ? Json::object : Json::array;
      ++i_;
      space();
      if (i_ < in_.size() && in_[i_] == (obj ? '}' : ']')) {
        ++i_;
        return true;
      }
      for (;;) {
        Json item;
        std::string key;
        if (obj) {
          space();
          if (!str(&key)) return false;
          space();
          if (!literal(":")) return false;
        }
        if (!value(&item)) return false;
        if (obj) {
          v->o.emplace_back(key, std::move(item));
        } else {
          v->a.push_back(std::move(item));
        }
        space();
        if (literal(",")) continue;
        return literal(obj ? "}" : "]");
      }
    }
    return false;
  }

  std::string_view in_;
  std::size_t i_ = 0;
};

class CliControl : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(access((std::string(BUILD_DIR) + "/uritoken").c_str(), X_OK), 0) << "build the CLI first";
    ASSERT_FALSE(sidecar_.path().empty());
    key_file_ = write_key_file(sidecar_.dir());
  }
  void TearDown() override { unlink(key_file_.c_str()); }

  FakeSidecar sidecar_;
  std::string key_file_;
};

const std::string kComment = "leaked\ton forum, 100% \x1b[31mred \xc3\xa9t\xc3\xa9";

TEST_F(CliControl, BlockedListsTokensWithTheirClientsAndEvidence) {
  const CliRun r = run_cli(sidecar_, {"blocked", "--key-file", key_file_});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_TRUE(has(r.out, "node media-eu-1: mode enforce, ready, 3 members\n")) << r.out;
  EXPECT_TRUE(has(r.out,
                  "3 blocked:\nSESSION           KEY  CLIENT       SINCE                 EXPIRES               "
                  "REASON  DECIDED BY  EVIDENCE\n"))
      << r.out;
  EXPECT_TRUE(has(r.out,
                  "0123456789abcdef  12   shop-berlin  2027-01-15T05:13:20Z  2027-01-15T08:00:00Z  auto    "
                  "media-eu-2  5 networks: 198.51.100.0/24, 203.0.113.0/24\n"))
      << r.out;
  // The comment's tab and escape byte are neutralised, its UTF-8 kept.
  EXPECT_TRUE(has(r.out,
                  "4567456745674567  12   shop-berlin  2027-01-15T05:15:00Z  2027-01-15T08:08:20Z  manual  "
                  "media-eu-1  by alice from 10.0.0.9: leaked?on forum, 100% ?[31mred \xc3\xa9t\xc3\xa9\n"))
      << r.out;
  EXPECT_TRUE(has(r.out, "89ab89ab89ab89ab  99   -            2027-01-15T05:16:40Z")) << "key 99 is in no key file";
  EXPECT_TRUE(has(r.out,
                  "media-eu-3  4 places, score 3.80: AS7922 Comcast (concurrent, 2 networks), net 452923ca "
                  "(sequential), AS21928 T-Mobile (concurrent), AS3320 Telekom (concurrent)\n"))
      << r.out;
  EXPECT_TRUE(has(r.out,
                  "1 pardoned:\nSESSION           KEY  CLIENT      SINCE                 DECIDED BY  EVIDENCE\n"
                  "cdefcdefcdefcdef  13   other-site  2027-01-15T05:18:20Z  media-eu-2  by bob from local: "
                  "false positive \xff\n"))
      << r.out;
  EXPECT_FALSE(has(r.out, "\x1b"));
  EXPECT_EQ(sidecar_.requests(), std::vector<std::string>{"status"});

  const CliRun plain = run_cli(sidecar_, {"blocked"});
  ASSERT_EQ(plain.status, 0) << plain.err;
  EXPECT_TRUE(has(plain.out, "0123456789abcdef  12   -       2027-01-15T05:13:20Z")) << "no key file: client -\n"
                                                                                     << plain.out;

  const CliRun mine = run_cli(sidecar_, {"blocked", "--key-file", key_file_, "--client", "other-site"});
  ASSERT_EQ(mine.status, 0) << mine.err;
  EXPECT_TRUE(has(mine.out, "no blocked tokens\n1 pardoned:\n")) << mine.out;
}

TEST_F(CliControl, BlockedJsonHasTheDocumentedShape) {
  const CliRun r = run_cli(sidecar_, {"blocked", "--json", "--key-file", key_file_});
  ASSERT_EQ(r.status, 0) << r.err;
  Json j;
  ASSERT_TRUE(JsonReader(r.out).read(&j)) << "not JSON:\n" << r.out;
  ASSERT_EQ(j.type, Json::object);
  std::vector<std::string> keys;
  for (const auto& kv : j.o) keys.push_back(kv.first);
  EXPECT_EQ(keys, (std::vector<std::string>{"node", "blocked", "pardoned"}));

  const Json& node = j["node"];
  EXPECT_EQ(node["name"].s, "media-eu-1");
  EXPECT_EQ(node["id"].s, "9f1c00");
  EXPECT_EQ(node["mode"].s, "enforce");
  EXPECT_EQ(node["ready"].type, Json::boolean);
  EXPECT_TRUE(node["ready"].b);
  EXPECT_EQ(node["policy"].s, "5a1b");
  EXPECT_EQ(node["members"].n, 3);

  const std::vector<std::string> blocked_keys = {
      "key_id",  "session", "kind",     "state",         "client",     "since",     "since_ms",
      "expires", "reason",  "networks", "network_count", "first_seen", "last_seen", "places",
      "score",   "limit",   "bulk",     "decided_by",    "operator",   "user",      "comment"};
  const std::vector<std::string> pardoned_keys = {"key_id",   "session",    "kind",     "state", "client", "since",
                                                  "since_ms", "decided_by", "operator", "user",  "comment"};
  const Json& blocked = j["blocked"];
  ASSERT_EQ(blocked.type, Json::array);
  ASSERT_EQ(blocked.a.size(), 3u);
  for (const Json& e : blocked.a) {
    std::vector<std::string> k;
    for (const auto& kv : e.o) k.push_back(kv.first);
    EXPECT_EQ(k, blocked_keys);
  }
  const Json& a = blocked.a[0];
  EXPECT_EQ(a["key_id"].n, 12);
  EXPECT_EQ(a["session"].s, "0123456789abcdef");
  EXPECT_EQ(a["client"].s, "shop-berlin");
  EXPECT_EQ(a["since"].s, "2027-01-15T05:13:20Z");
  EXPECT_EQ(a["since_ms"].n, 1799990000123.0);
  EXPECT_EQ(a["expires"].n, 1800000000);
  EXPECT_EQ(a["reason"].s, "auto");
  ASSERT_EQ(a["networks"].a.size(), 2u);
  EXPECT_EQ(a["networks"].a[1].s, "203.0.113.0/24");
  EXPECT_EQ(a["network_count"].n, 5);
  EXPECT_EQ(a["first_seen"].n, 1799989000);
  EXPECT_EQ(a["last_seen"].n, 1799990000);
  EXPECT_EQ(a["decided_by"].s, "media-eu-2");
  EXPECT_EQ(a["operator"].type, Json::null);
  EXPECT_EQ(a["comment"].type, Json::null);
  const Json& m = blocked.a[1];
  EXPECT_EQ(m["reason"].s, "manual");
  EXPECT_EQ(m["operator"].s, "10.0.0.9");
  EXPECT_EQ(m["user"].s, "alice");
  EXPECT_EQ(m["comment"].s, kComment) << "escaped and read back exactly";
  EXPECT_EQ(m["networks"].type, Json::array);
  EXPECT_TRUE(m["networks"].a.empty());
  EXPECT_EQ(m["network_count"].n, 0);
  EXPECT_EQ(m["first_seen"].type, Json::null);
  EXPECT_EQ(blocked.a[2]["client"].type, Json::null) << "key 99 is in no key file";
  EXPECT_TRUE(a["places"].a.empty()) << "an owner before protocol 3 sends no places";
  EXPECT_EQ(a["score"].type, Json::null);
  const Json& p = blocked.a[2];
  ASSERT_EQ(p["places"].a.size(), 4u);
  EXPECT_EQ(p["places"].a[0]["place"].s, "AS7922 Comcast");
  EXPECT_EQ(p["places"].a[0]["networks"].n, 2);
  EXPECT_TRUE(p["places"].a[0]["concurrent"].b);
  EXPECT_EQ(p["places"].a[0]["weight"].n, 1.3);
  EXPECT_FALSE(p["places"].a[1]["concurrent"].b);
  EXPECT_EQ(p["places"].a[1]["weight"].n, 0.5);
  EXPECT_EQ(p["score"].n, 3.8);
  EXPECT_EQ(p["limit"].n, 3);

  const Json& pardoned = j["pardoned"];
  ASSERT_EQ(pardoned.a.size(), 1u);
  std::vector<std::string> k;
  for (const auto& kv : pardoned.a[0].o) k.push_back(kv.first);
  EXPECT_EQ(k, pardoned_keys);
  EXPECT_EQ(pardoned.a[0]["client"].s, "other-site");
  EXPECT_EQ(pardoned.a[0]["comment"].s, "false positive \xef\xbf\xbd") << "not UTF-8: U+FFFD";

  const Json none_j = [&] {
    const CliRun r2 = run_cli(sidecar_, {"blocked", "--json"});
    Json out;
    EXPECT_TRUE(JsonReader(r2.out).read(&out)) << r2.out;
    return out;
  }();
  EXPECT_EQ(none_j["blocked"].a[0]["client"].type, Json::null) << "no key file";

  const CliRun mine = run_cli(sidecar_, {"blocked", "--json", "--key-file", key_file_, "--client", "shop-berlin"});
  Json f;
  ASSERT_TRUE(JsonReader(mine.out).read(&f)) << mine.out;
  EXPECT_EQ(f["blocked"].a.size(), 2u);
  EXPECT_TRUE(f["pardoned"].a.empty());
  EXPECT_EQ(f["pardoned"].type, Json::array);
}

TEST_F(CliControl, RevokeAndPardonBySessionSendTheFieldsEncoded) {
  const CliRun r = run_cli(sidecar_, {"revoke", "--session", "0123456789ABCDEF", "--key-id", "12", "--expires",
                                      "1800000000", "--comment", "leaked on forum, 100% = sure\tx"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            "revoked: session 0123456789abcdef, key 12, until 2027-01-15T08:00:00Z; stamped 2027-01-15T05:13:20Z, "
            "spreading to every node\n");
  const CliRun p = run_cli({"URITOKEN_CONTROL_SOCKET=" + sidecar_.path(), "SUDO_USER=carol", "USER=root"},
                           {"pardon", "--session", "0123456789abcdef", "--key-id", "12"});
  ASSERT_EQ(p.status, 0) << p.err;
  EXPECT_EQ(p.out,
            "pardoned: session 0123456789abcdef, key 12; stamped 2027-01-15T05:13:20Z, spreading to every node\n");
  // Without --expires: the sidecar must know the token already.
  const CliRun n = run_cli({"URITOKEN_CONTROL_SOCKET=" + sidecar_.path(), "-u SUDO_USER", "-u USER"},
                           {"revoke", "--session", "0123456789abcdef", "--key-id", "7"});
  ASSERT_EQ(n.status, 0) << n.err;
  EXPECT_EQ(sidecar_.requests(),
            (std::vector<std::string>{
                "revoke\tkey=12\tsession=0123456789abcdef\texpires=1800000000\toperator=local\tuser=alice\t"
                "comment=leaked on forum, 100%25 %3D sure%09x",
                "pardon\tkey=12\tsession=0123456789abcdef\toperator=local\tuser=carol",
                "revoke\tkey=7\tsession=0123456789abcdef\toperator=local",
            }));
}

TEST_F(CliControl, ATokenOrUrlIsDecodedAndNeverPrinted) {
  const std::string token = test_token(key_file_, 1800000000);
  ASSERT_FALSE(token.empty());
  const std::string url = "https://media.example.net/_uk_" + token + "/gallery/12/a.jpg?x=1";
  const std::vector<std::vector<std::string>> calls = {
      {"revoke", token, "--comment", "seen on a forum"},
      {"revoke", "_uk_" + token},
      {"revoke", "--url", url},
      {"pardon", "--url", "/_uk_" + token},
      {"pardon", token},
  };
  for (const auto& args : calls) {
    const CliRun r = run_cli(sidecar_, args);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_FALSE(has(r.out + r.err, token.substr(0, 24))) << r.out << r.err;
    EXPECT_TRUE(has(r.out, "session 0a1b2c3d4e5f6071, key 12")) << r.out;
  }
  const auto reqs = sidecar_.requests();
  ASSERT_EQ(reqs.size(), calls.size());
  const std::string revoke = "revoke\tkey=12\tsession=0a1b2c3d4e5f6071\texpires=1800000000\toperator=local\tuser=alice";
  const std::string pardon = "pardon\tkey=12\tsession=0a1b2c3d4e5f6071\toperator=local\tuser=alice";
  EXPECT_EQ(reqs[0], revoke + "\tcomment=seen on a forum");
  EXPECT_EQ(reqs[1], revoke);
  EXPECT_EQ(reqs[2], revoke);
  EXPECT_EQ(reqs[3], pardon);
  EXPECT_EQ(reqs[4], pardon);

  // Malformed or misplaced tokens: a usage error that quotes neither.
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"revoke", "--url", "https://media.example.net/gallery/_uk_" + token + "/a.jpg"},
           {"revoke", "--url", "media.example.net/_uk_" + token + "/a.jpg"},
           {"revoke", token.substr(0, 30) + "!" + token.substr(31)},
           {"pardon", "--url", "https://media.example.net/_uk_" + token.substr(0, 40) + "/a.jpg"},
           {"revoke", token, token},
       }) {
    const CliRun r = run_cli(sidecar_, args);
    EXPECT_EQ(r.status, 2) << args[1];
    EXPECT_FALSE(has(r.out + r.err, token.substr(0, 24))) << r.err;
  }
  EXPECT_EQ(sidecar_.requests().size(), calls.size()) << "nothing sent for a bad argument";
}

TEST_F(CliControl, UsageErrorsExitWith2) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"blocked", "--client", "shop-berlin"},  // --client needs --key-file
           {"blocked", "extra"},
           {"blocked", "--json=yes"},
           {"revoke"},
           {"revoke", "--session", "0123456789abcdef"},  // no --key-id
           {"revoke", "--session", "0123456789abcdeg", "--key-id", "1"},
           {"revoke", "--session", "0123456789abcde", "--key-id", "1"},
           {"revoke", "--session", "0123456789abcdef", "--key-id", "0"},
           {"revoke", "--session", "0123456789abcdef", "--key-id", "1", "--expires", "soon"},
           {"revoke", "--session", "0123456789abcdef", "--key-id", "1", "--url", "https://h/_uk_x/"},
           {"pardon", "--session", "0123456789abcdef", "--key-id", "1", "--expires", "1800000000"},
       }) {
    const CliRun r = run_cli(sidecar_, args);
    EXPECT_EQ(r.status, 2) << args.back() << "\n" << r.err;
    EXPECT_TRUE(has(r.err, "usage:")) << r.err;
  }
  EXPECT_TRUE(sidecar_.requests().empty());
}

TEST(CliControlErrors, MissingSocketRefusalAndTimeout) {
  const std::string missing = "/tmp/uritoken-no-such-dir/control.sock";
  CliRun r = run_cli({"URITOKEN_CONTROL_SOCKET=" + missing}, {"blocked"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "uritoken: no sidecar control socket at " + missing +
                       ": is UriTokenSharing on and httpd running? (--socket PATH)\n");
  EXPECT_EQ(r.out, "");

  // --socket wins over the environment; the default is Debian's state dir.
  {
    FakeSidecar s;
    r = run_cli({"URITOKEN_CONTROL_SOCKET=" + missing}, {"blocked", "--socket", s.path()});
    EXPECT_EQ(r.status, 0) << r.err;
  }
  if (access("/var/lib/apache2/uritoken/control.sock", F_OK) != 0) {
    r = run_cli({"-u URITOKEN_CONTROL_SOCKET"}, {"revoke", "--session", "0123456789abcdef", "--key-id", "1"});
    EXPECT_EQ(r.status, 1);
    EXPECT_TRUE(has(r.err, "no sidecar control socket at /var/lib/apache2/uritoken/control.sock")) << r.err;
  }

  {
    FakeSidecar refuse(FakeSidecar::Mode::refuse);
    r = run_cli(refuse, {"revoke", "--session", "0123456789abcdef", "--key-id", "1"});
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.err, "uritoken: the sidecar refused: unknown session and no expires\n");
    EXPECT_EQ(r.out, "");
  }
  {
    FakeSidecar silent(FakeSidecar::Mode::silent);
    const auto t0 = std::chrono::steady_clock::now();
    r = run_cli(silent, {"blocked", "--json"});
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.err, "uritoken: the sidecar did not answer within 1 s (socket " + silent.path() + ")\n");
    EXPECT_EQ(r.out, "");
    EXPECT_GE(ms, 950);
    EXPECT_LT(ms, 5000);
  }
}

}  // namespace
