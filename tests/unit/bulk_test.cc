// SPDX-License-Identifier: Apache-2.0
// The bulk signal (cluster/bulk.h): a token's volume over two minutes against
// UriTokenBulkLimit, from the counts its sightings carry.
#include <gtest/gtest.h>

#include "../../mod_uritoken/cluster/bulk.h"

using namespace uritoken;

namespace {

constexpr std::uint64_t kT0 = 1'700'000'000'000ull;
constexpr std::uint64_t kMiB = 1 << 20;

BulkPolicy on() {
  BulkPolicy p;
  p.enabled = true;
  return p;  // requests=600 bytes=500M a minute
}

// What the owners see of a player: a sighting every 6 s (the workers'
// repeat filter lets one through per 5 s), each with one 6-second segment.
BulkVerdict play(BulkDetector& d, std::uint64_t session, std::uint64_t from_ms, int seconds, std::uint64_t segment) {
  BulkVerdict v;
  for (int t = 0; t < seconds; t += 6) v = d.observe(1, session, 1, segment, from_ms + t * 1000ull);
  return v;
}

}  // namespace

TEST(Bulk, AFourKPlayerWithSeeksIsNotBulk) {
  BulkDetector d(on());
  // 25 Mbit/s: 18.75 MB a segment; every minute a seek refills 30 s of buffer at once.
  const std::uint64_t segment = 18'750'000;
  BulkVerdict worst;
  for (int minute = 0; minute < 10; ++minute) {
    const std::uint64_t m0 = kT0 + minute * 60'000ull;
    BulkVerdict v = d.observe(1, 1, 5, 5 * segment, m0);
    if (v.bytes_per_min > worst.bytes_per_min) worst = v;
    v = play(d, 1, m0 + 1000, 59, segment);
    EXPECT_FALSE(v.bulk) << "minute " << minute;
    if (v.bytes_per_min > worst.bytes_per_min) worst = v;
  }
  EXPECT_GT(worst.bytes_per_min, 200 * kMiB) << "the limit is near what a 4K viewer seeking fetches";
  EXPECT_LT(worst.bytes_per_min, 500 * kMiB);
}

TEST(Bulk, AGalleryPageOfFiftyThumbnailsEveryTenSecondsIsNotBulk) {
  BulkDetector d(on());
  BulkVerdict v;
  for (int t = 0; t < 600; t += 10) {
    v = d.observe(1, 2, 50, 50 * 30'000, kT0 + t * 1000ull);
    ASSERT_FALSE(v.bulk) << t << " s: " << v.requests_per_min << " requests a minute";
  }
  // 300 a minute; the window is the current quarter and the three before it (90 to 120 s).
  EXPECT_GE(v.requests_per_min, 225u);
  EXPECT_LE(v.requests_per_min, 300u);
}

TEST(Bulk, AScraperAtTwentyTimesAPlayersRateIsBulkWithinTwoMinutes) {
  BulkDetector d(on());
  // A 5 Mbit/s player fetches a 3.75 MB segment every 6 s; 20x that, from
  // one network: each 5 s sighting carries 17 segments.
  std::uint64_t caught = 0;
  for (int t = 0; t < 180 && caught == 0; t += 5) {
    const BulkVerdict v = d.observe(1, 3, 17, 17 * 3'750'000ull, kT0 + t * 1000ull);
    if (v.bulk) {
      caught = t;
      EXPECT_GT(v.bytes_per_min, 500 * kMiB);
      EXPECT_LT(v.requests_per_min, 600u) << "caught by its bytes";
    }
  }
  EXPECT_GT(caught, 0u);
  EXPECT_LE(caught, 120u);
}

TEST(Bulk, ARequestLimitAloneCatchesSmallFilesAndZeroTurnsAKindOff) {
  BulkPolicy p = on();
  p.bytes_per_min = 0;  // UriTokenBulkLimit bytes=0
  BulkDetector d(p);
  BulkVerdict v;
  for (int t = 0; t < 120 && !v.bulk; t += 5) v = d.observe(1, 4, 60, 60ull << 30, kT0 + t * 1000ull);
  EXPECT_TRUE(v.bulk) << "720 requests a minute";
  EXPECT_GT(v.requests_per_min, 600u);
  p.bytes_per_min = 500 * kMiB;
  p.requests_per_min = 0;
  BulkDetector bytes_only(p);
  for (int t = 0; t < 120; t += 5) v = bytes_only.observe(1, 4, 1000, 1000, kT0 + t * 1000ull);
  EXPECT_FALSE(v.bulk) << "12,000 requests a minute of 1 KB: no request limit";
}

TEST(Bulk, TheWindowForgetsAfterTwoMinutes) {
  BulkDetector d(on());
  BulkVerdict v;
  for (int t = 0; t < 60; t += 5) v = d.observe(1, 5, 50, 50 * 3'750'000ull, kT0 + t * 1000ull);
  EXPECT_TRUE(v.bulk);
  EXPECT_TRUE(d.rate(1, 5, kT0 + 90'000).bulk);
  EXPECT_EQ(d.rate(1, 5, kT0 + 60'000 + 130'000).requests_per_min, 0u) << "no use for over two minutes";
  EXPECT_FALSE(d.observe(1, 5, 1, 3'750'000, kT0 + 300'000).bulk);
  // A sighting older than the newest (another node's clock) counts in the newest quarter.
  EXPECT_FALSE(d.observe(1, 5, 1, 0, kT0 + 250'000).bulk);
  EXPECT_EQ(d.rate(1, 5, kT0 + 300'000).requests_per_min, 1u);
  EXPECT_EQ(d.rate(1, 6, kT0).requests_per_min, 0u) << "an unknown token";
}

// The table is small (16,384 tokens by default) and every owned token's
// sightings pass through it: players' entries make room for a scraper's,
// which each sighting fills with seconds of its volume.
TEST(Bulk, AScraperAmongManyPlayersKeepsItsEntry) {
  BulkPolicy p = on();
  p.tokens = 64;
  BulkDetector d(p);
  BulkVerdict v;
  std::uint64_t player = 1000;
  for (int t = 0; t < 120 && !v.bulk; t += 5) {
    for (int k = 0; k < 200; ++k)
      d.observe(1, player++, 1, 3'750'000, kT0 + t * 1000ull + k);  // 200 new players each 5 s
    v = d.observe(1, 7, 17, 17 * 3'750'000ull, kT0 + t * 1000ull + 500);
  }
  EXPECT_TRUE(v.bulk);
  EXPECT_GT(d.memory_bytes(), 0u);
  EXPECT_LE(d.memory_bytes(), 64u * 48);
}

TEST(Bulk, OffCostsNoMemoryAndJudgesNothing) {
  BulkDetector d{BulkPolicy()};
  EXPECT_EQ(d.memory_bytes(), 0u);
  EXPECT_FALSE(d.observe(1, 1, 100000, 1ull << 40, kT0).bulk);
  EXPECT_EQ(d.rate(1, 1, kT0).requests_per_min, 0u);
}

// Sightings arrive out of order (another node's batch, a gossip backlog):
// each counts in its own quarter, and one older than the window not at all.
TEST(Bulk, LateSightingsCountInTheirOwnQuarterOrNotAtAll) {
  BulkDetector d(on());
  const std::uint64_t t = kT0 + 300'000;
  d.observe(1, 8, 10, 0, t);
  d.observe(1, 8, 1000, 0, t - 200'000);  // older than the window: dropped
  EXPECT_EQ(d.rate(1, 8, t).requests_per_min, 5u);
  d.observe(1, 8, 100, 0, t - 60'000);  // two quarters back: still in
  EXPECT_EQ(d.rate(1, 8, t).requests_per_min, 55u);
  // ... and it leaves the window before the newest does.
  EXPECT_EQ(d.rate(1, 8, t + 60'000).requests_per_min, 5u);
}
