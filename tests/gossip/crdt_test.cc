// The revocation CRDT: ordering rules, expiry, and the merge laws
// (commutative, associative, idempotent) on random operation sequences.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "../../gossip/gossip.h"

using namespace uritoken::gossip;

namespace {

Revocation rev(std::uint64_t session, std::uint64_t stamp, bool pardon, std::uint64_t origin = 1,
               std::uint32_t expires = 2'000'000'000) {
  Revocation r;
  r.token = {1, session};
  r.token_expires = expires;
  r.stamp_ms = stamp;
  r.pardon = pardon;
  r.origin = origin;
  r.reason = pardon ? 2 : 1;
  return r;
}

std::vector<Revocation> contents(const RevocationSet& s) {
  auto v = s.snapshot();
  std::sort(v.begin(), v.end(), [](const Revocation& a, const Revocation& b) { return a.token < b.token; });
  return v;
}

bool same_digest(const RevocationSet& a, const RevocationSet& b) {
  for (std::size_t g = 0; g < RevocationSet::kGroups; ++g)
    if (a.group_hash(g) != b.group_hash(g)) return false;
  for (std::size_t i = 0; i < RevocationSet::kBuckets; ++i)
    if (a.bucket_hash(i) != b.bucket_hash(i)) return false;
  return true;
}

}  // namespace

TEST(GossipCrdt, LaterPardonWinsEqualStampIsAddWins) {
  RevocationSet s;
  EXPECT_TRUE(s.merge(rev(5, 1000, false)));
  EXPECT_TRUE(s.in_force({1, 5}, 1'700'000'000));
  EXPECT_TRUE(s.merge(rev(5, 2000, true)));  // later manual pardon
  EXPECT_FALSE(s.in_force({1, 5}, 1'700'000'000));
  EXPECT_FALSE(s.merge(rev(5, 1500, false)));  // an older revoke loses
  EXPECT_FALSE(s.merge(rev(5, 2000, true)));   // idempotent
  EXPECT_TRUE(s.merge(rev(5, 2000, false, 0)));  // same stamp: the revoke wins, whatever origin
  EXPECT_TRUE(s.in_force({1, 5}, 1'700'000'000));
  EXPECT_FALSE(s.merge(rev(5, 2000, true, 99)));
  EXPECT_TRUE(s.merge(rev(5, 2000, false, 3)));  // then the greater origin
  EXPECT_EQ(s.find({1, 5})->origin, 3u);
  EXPECT_EQ(s.size(), 1u);
  EXPECT_EQ(s.find({1, 6}), nullptr);
}

TEST(GossipCrdt, EntriesExpireWithTheToken) {
  RevocationSet s;
  s.merge(rev(1, 10, false, 1, 100));
  s.merge(rev(2, 10, true, 1, 200));
  s.merge(rev(3, 10, false, 1, 300));
  EXPECT_TRUE(s.in_force({1, 1}, 100));
  EXPECT_FALSE(s.in_force({1, 1}, 101));
  RevocationSet empty;
  EXPECT_EQ(s.expire(100), 0u);
  EXPECT_EQ(s.expire(250), 2u);
  EXPECT_EQ(s.size(), 1u);
  EXPECT_EQ(s.find({1, 2}), nullptr);
  EXPECT_EQ(s.expire(301), 1u);
  EXPECT_EQ(s.size(), 0u);
  EXPECT_TRUE(same_digest(s, empty));  // digests return to the empty set's
}

TEST(GossipCrdt, MergeLawsOnRandomSequences) {
  std::mt19937_64 rng(2024);
  for (int round = 0; round < 50; ++round) {
    std::vector<Revocation> ops;
    for (int i = 0; i < 200; ++i) {
      Revocation r = rev(rng() % 20, rng() % 30, rng() % 2, rng() % 4);
      r.shadow = rng() % 2;
      r.networks = static_cast<std::uint8_t>(rng() % 3);
      ops.push_back(r);
    }
    RevocationSet a, b;
    for (const auto& r : ops) a.merge(r);
    // Commutative: any order gives the same set.
    auto shuffled = ops;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    for (const auto& r : shuffled) b.merge(r);
    ASSERT_EQ(contents(a), contents(b));
    ASSERT_TRUE(same_digest(a, b));
    // Associative: merging sets built from parts equals merging everything.
    RevocationSet left, right;
    std::size_t cut = rng() % ops.size();
    for (std::size_t i = 0; i < ops.size(); ++i) (i < cut ? left : right).merge(ops[i]);
    right.for_each([&](const Revocation& r) { left.merge(r); });
    ASSERT_EQ(contents(left), contents(a));
    // Idempotent: merging again changes nothing.
    for (const auto& r : ops) EXPECT_FALSE(a.merge(r));
    ASSERT_EQ(contents(a), contents(b));
    // And each winner is the maximum of its token's operations.
    for (const auto& r : contents(a)) {
      for (const auto& o : ops)
        if (o.token == r.token) {
          EXPECT_FALSE(wins_over(o, r));
        }
    }
  }
}

TEST(GossipCrdt, DigestsTrackContentsAndLocateDifferences) {
  RevocationSet a, b;
  for (std::uint64_t i = 0; i < 5000; ++i) {
    a.merge(rev(i, 100, false));
    b.merge(rev(i, 100, false));
  }
  EXPECT_TRUE(same_digest(a, b));
  b.merge(rev(77, 200, true));
  std::size_t differing = 0;
  for (std::size_t i = 0; i < RevocationSet::kBuckets; ++i)
    differing += a.bucket_hash(i) != b.bucket_hash(i);
  EXPECT_EQ(differing, 1u);
  EXPECT_NE(a.bucket_hash(RevocationSet::bucket_of({1, 77})),
            b.bucket_hash(RevocationSet::bucket_of({1, 77})));
}
