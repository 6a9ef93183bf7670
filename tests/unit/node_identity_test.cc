// SPDX-License-Identifier: Apache-2.0
// A node's identity key (cluster/node_identity.h): made once, kept, 0600,
// refused when others can read it or it is not a key.
#include "../../mod_uritoken/cluster/node_identity.h"

#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "../../mod_uritoken/core/host_name.h"

namespace {

using uritoken::cluster::load_node_identity;

class NodeIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    char tmpl[] = "/tmp/uritoken-identity-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir = tmpl;
    path = dir + "/node.key";
  }
  void TearDown() override {
    unlink(path.c_str());
    rmdir(dir.c_str());
  }
  std::string dir, path;
};

TEST_F(NodeIdentityTest, IsMadeOnceAndKeptWithItsHash) {
  std::string error;
  EXPECT_FALSE(load_node_identity(path, false, &error)) << "not made unless asked";
  const auto made = load_node_identity(path, true, &error);
  ASSERT_TRUE(made) << error;
  EXPECT_TRUE(made->created);
  EXPECT_TRUE(uritoken::valid_node_hash(made->hash));
  EXPECT_EQ(made->hash, uritoken::node_hash(made->public_key.data()));
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const auto again = load_node_identity(path, true, &error);
  ASSERT_TRUE(again) << error;
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->hash, made->hash) << "a restart keeps the node's name";
  EXPECT_EQ(again->public_key, made->public_key);
  // Only the file itself: no temporary file is left beside it.
  EXPECT_EQ(std::system(("test $(ls -A " + dir + " | wc -l) -eq 1").c_str()), 0);
}

TEST_F(NodeIdentityTest, IsTheEd25519KeyOfItsSeed) {
  // A seed of 32 zero bytes: its public key is Ed25519's, and the hash its SHA-256's start.
  std::ofstream(path) << "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n";
  chmod(path.c_str(), 0600);
  std::string error;
  const auto id = load_node_identity(path, false, &error);
  ASSERT_TRUE(id) << error;
  std::uint8_t seed[32] = {}, pk[32], sk[64];
  crypto_sign_seed_keypair(pk, sk, seed);
  EXPECT_EQ(0, std::memcmp(pk, id->public_key.data(), 32));
  EXPECT_EQ(id->hash, uritoken::node_hash(pk));
}

TEST_F(NodeIdentityTest, AKeyOthersCanReadOrThatIsNotOneIsRefusedNamingTheFile) {
  std::string error;
  ASSERT_TRUE(load_node_identity(path, true, &error)) << error;
  chmod(path.c_str(), 0644);
  EXPECT_FALSE(load_node_identity(path, true, &error));
  EXPECT_NE(error.find("chmod 600 " + path), std::string::npos) << error;
  std::ofstream(path) << "not a key\n";
  chmod(path.c_str(), 0600);
  EXPECT_FALSE(load_node_identity(path, true, &error));
  EXPECT_NE(error.find(path + " is not a node key"), std::string::npos) << error;
}

}  // namespace
