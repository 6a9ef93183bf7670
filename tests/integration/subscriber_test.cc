// SPDX-License-Identifier: Apache-2.0
// A token bound to a subscriber on a real httpd: minted by the CLI from the
// site's secret and account id, served, its subscriber digest (never the
// account id) exported as URITOKEN_SUBSCRIBER and URITOKEN_ISSUED.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>

#include "../../mod_uritoken/core/base64url.h"
#include "../../mod_uritoken/core/token.h"
#include "httpd_fixture.h"

using namespace uritoken::itest;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Subscriber, ATokenBoundToAnAccountIsServedAndLoggedByItsDigestOnly) {
  HttpdOptions o;
  o.extra_conf =
      "LogFormat \"%>s sub=%{URITOKEN_SUBSCRIBER}e issued=%{URITOKEN_ISSUED}e\" sub\n"
      "CustomLog @ROOT@/logs/sub.log sub\n";
  Httpd h(o);
  h.write_doc("a.txt", "media");
  ASSERT_TRUE(h.start()) << h.startup_output();
  std::string secret;
  ASSERT_EQ(run_command(std::string(BUILD_DIR) + "/uritoken subscriber-keygen", &secret), 0);
  secret = secret.substr(0, secret.find('\n'));
  ASSERT_EQ(secret.size(), 43u);
  const std::string secret_file = h.root() + "/subscriber.secret";
  std::ofstream(secret_file) << secret << "\n";
  ASSERT_EQ(chmod(secret_file.c_str(), 0600), 0);
  const std::string account = "alice@example.com";
  const std::string issued = std::to_string(std::time(nullptr) - 5);
  const std::string token = h.mint("--client site42 --ttl 600 --subscriber " + account + " --subscriber-secret-file " +
                                   secret_file + " --issued " + issued);
  ASSERT_GT(token.size(), 54u) << token;
  EXPECT_EQ(http_get(h.port(), "/_uk_" + token + "/a.txt").status, 200);

  std::uint8_t raw[32];
  ASSERT_EQ(uritoken::base64url_decode(raw, sizeof raw, secret), 32);
  const uritoken::SubscriberId id = uritoken::subscriber_id(raw, "site42", account);
  const std::string hex = uritoken::session_hex(id);
  const std::string log = slurp(h.root() + "/logs/sub.log");
  EXPECT_NE(log.find("200 sub=" + hex + " issued=" + issued), std::string::npos) << log;
  std::string inspected;
  ASSERT_EQ(run_command(std::string(BUILD_DIR) + "/uritoken inspect " + token, &inspected), 0);
  EXPECT_NE(inspected.find("subscriber: " + hex), std::string::npos) << inspected;
  for (const std::string& file : {h.error_log(), h.access_log(), log}) {
    EXPECT_EQ(file.find(account), std::string::npos) << "the account id reached a log";
  }
  // A secret file others can read is refused, as the key file is.
  ASSERT_EQ(chmod(secret_file.c_str(), 0644), 0);
  std::string out;
  EXPECT_NE(
      run_command(std::string(BUILD_DIR) + "/uritoken mint --key-file " + h.key_file() +
                      " --client site42 --ttl 60 --subscriber x --subscriber-secret-file " + secret_file + " 2>&1",
                  &out),
      0);
  EXPECT_NE(out.find(secret_file), std::string::npos) << out;
  expect_server_clean(h, {token});
}

}  // namespace
