// SPDX-License-Identifier: Apache-2.0
// Key file parsing, its error messages, and the permission check.
#include "../../mod_uritoken/core/keyring.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace uritoken;

namespace {
const std::string kSecret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

std::string parse_error(const std::string& text) {
  std::string error;
  EXPECT_FALSE(KeyRing::parse(text, &error)) << text;
  return error;
}
}  // namespace

TEST(KeyRing, ParsesStatesCommentsAndBlankLines) {
  std::string error;
  const auto ring = KeyRing::parse("# keys\n\n7 site42 sign " + kSecret + "\n  8\tsite42 verify-only " + kSecret +
                                       "  # rolling in\r\n9 old retired " + kSecret + "\n",
                                   &error);
  ASSERT_TRUE(ring) << error;
  EXPECT_EQ(ring->size(), 3u);
  EXPECT_EQ(ring->find(7)->state, KeyState::sign);
  EXPECT_EQ(ring->find(8)->state, KeyState::verify_only);
  EXPECT_EQ(ring->find(9)->state, KeyState::retired);
  EXPECT_EQ(ring->find(9)->client, "old");
  EXPECT_EQ(ring->find(10), nullptr);
}

TEST(KeyRing, ErrorsNameTheLineAndTheFix) {
  EXPECT_NE(parse_error("7 site42 sign\n").find("line 1: expected 4 fields"), std::string::npos);
  EXPECT_NE(parse_error("\n0 a sign " + kSecret).find("line 2: key id"), std::string::npos);
  EXPECT_NE(parse_error("70000 a sign " + kSecret).find("key id"), std::string::npos);
  EXPECT_NE(parse_error("1 bad/client sign " + kSecret).find("client id"), std::string::npos);
  EXPECT_NE(parse_error("1 a maybe " + kSecret).find("state must be"), std::string::npos);
  EXPECT_NE(parse_error("1 a sign short").find("uritoken keygen"), std::string::npos);
  EXPECT_NE(parse_error("1 a sign " + kSecret + "\n1 b sign " + kSecret).find("appears twice"), std::string::npos);
  EXPECT_NE(parse_error("# nothing\n").find("no keys"), std::string::npos);
}

TEST(KeyRing, RefusesFilesOthersCanRead) {
  char dir[] = "/tmp/uritoken-keyring-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/keys";
  std::ofstream(path) << "1 a sign " << kSecret << "\n";
  std::string error;
  ASSERT_EQ(chmod(path.c_str(), 0644), 0);
  EXPECT_FALSE(KeyRing::load_file(path, &error));
  EXPECT_NE(error.find("mode 0644"), std::string::npos) << error;
  EXPECT_NE(error.find("chmod 600"), std::string::npos) << error;
  ASSERT_EQ(chmod(path.c_str(), 0660), 0);
  EXPECT_FALSE(KeyRing::load_file(path, &error));
  ASSERT_EQ(chmod(path.c_str(), 0640), 0);
  EXPECT_TRUE(KeyRing::load_file(path, &error)) << error;
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  EXPECT_TRUE(KeyRing::load_file(path, &error)) << error;
  EXPECT_FALSE(KeyRing::load_file(std::string(dir) + "/missing", &error));
  EXPECT_NE(error.find("cannot read"), std::string::npos);
  EXPECT_FALSE(KeyRing::load_file(dir, &error));  // a directory
  unlink(path.c_str());
  rmdir(dir);
}

TEST(KeyRing, GeneratedLineParses) {
  const std::string line = generate_key_line(42, "site.x");
  std::string error;
  const auto ring = KeyRing::parse(line, &error);
  ASSERT_TRUE(ring) << error;
  EXPECT_EQ(ring->find(42)->client, "site.x");
  EXPECT_NE(generate_key_line(42, "site.x"), line);  // random secret
}

TEST(KeyRing, ShippedExampleKeyFileParses) {
  std::ifstream in(std::string(SOURCE_DIR) + "/conf-examples/keys.example");
  std::stringstream text;
  text << in.rdbuf();
  std::string error;
  const auto ring = KeyRing::parse(text.str(), &error);
  ASSERT_TRUE(ring) << error;
  EXPECT_EQ(ring->size(), 4u);
  EXPECT_EQ(ring->signing_key("shop-berlin", std::nullopt)->id, 12);
}

// UriTokenClusterKeyFile: several keys for a rotation, the first seals.
TEST(ClusterKeys, OneKeyPerLineInOrderWithComments) {
  const std::string a(64, 'a'), b = std::string(62, '0') + "1f";
  std::string error;
  auto keys = parse_cluster_keys("# new key first once every node has it\n" + b + "\n\n  " + a + " \r\n", &error);
  ASSERT_TRUE(keys) << error;
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[0][31], 0x1f);
  EXPECT_EQ((*keys)[0][0], 0x00);
  EXPECT_EQ((*keys)[1][0], 0xaa);
  // The file cluster-keygen writes: one key and a newline.
  keys = parse_cluster_keys(a + "\n", &error);
  ASSERT_TRUE(keys) << error;
  EXPECT_EQ(keys->size(), 1u);
}

TEST(ClusterKeys, BadFilesNameTheLineAndTheFix) {
  const std::string a(64, 'a');
  std::string error;
  EXPECT_FALSE(parse_cluster_keys("", &error));
  EXPECT_NE(error.find("no key"), std::string::npos) << error;
  EXPECT_FALSE(parse_cluster_keys("# only a comment\n", &error));
  EXPECT_FALSE(parse_cluster_keys(a + "\nabcd\n", &error));
  EXPECT_NE(error.find("line 2"), std::string::npos) << error;
  EXPECT_NE(error.find("64 hex digits"), std::string::npos) << error;
  EXPECT_FALSE(parse_cluster_keys(a + a + "\n", &error));  // two keys on one line
  EXPECT_FALSE(parse_cluster_keys(a.substr(0, 63) + "g\n", &error));
  EXPECT_FALSE(parse_cluster_keys(a + " " + a + "\n", &error));
  EXPECT_FALSE(parse_cluster_keys(a + "\n" + a + "\n", &error));
  EXPECT_NE(error.find("twice"), std::string::npos) << error;
  std::string many;
  for (char c : std::string("12345")) many += std::string(64, c) + "\n";
  EXPECT_FALSE(parse_cluster_keys(many, &error));
  EXPECT_NE(error.find("more than 4"), std::string::npos) << error;
  EXPECT_TRUE(parse_cluster_keys(many.substr(0, 4 * 65), &error)) << error;
}
