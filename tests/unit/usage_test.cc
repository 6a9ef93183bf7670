// SPDX-License-Identifier: Apache-2.0
// Per-client billing counters (core/usage.h): exact sums across threads,
// bounded table with overflow counted, per-key last use.
#include "../../mod_uritoken/core/usage.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <thread>
#include <vector>

using namespace uritoken;

namespace {

std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> snapshot(const UsageTable& t) {
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> out;
  t.for_each_client([&](const UsageTable::ClientUsage& u) { out[u.client] = {u.requests, u.bytes}; });
  return out;
}

TEST(Usage, ThreadsCountEveryRequestAndByteOfEachClient) {
  auto t = std::make_unique<UsageTable>();
  t->reset();
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      for (int i = 0; i < 5000; ++i) t->add(i % 2 ? "site42" : "shop-berlin", static_cast<std::uint64_t>(100 + k));
    });
  }
  for (auto& th : threads) th.join();
  const auto s = snapshot(*t);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s.at("site42").first, 10000u);
  EXPECT_EQ(s.at("shop-berlin").first, 10000u);
  EXPECT_EQ(s.at("site42").second + s.at("shop-berlin").second, 5000u * (100 + 101 + 102 + 103));
  EXPECT_EQ(t->overflow_requests(), 0u);
}

TEST(Usage, FullTableCountsOverflowAndKeysRememberLastUse) {
  auto t = std::make_unique<UsageTable>();
  t->reset();
  for (std::size_t i = 0; i < UsageTable::kClients; ++i) t->add("c" + std::to_string(i), 1);
  t->add("one-too-many", 10);
  t->add("c7", 5);
  const auto s = snapshot(*t);
  EXPECT_EQ(s.size(), UsageTable::kClients);
  EXPECT_EQ(t->overflow_requests(), 1u);
  EXPECT_EQ(s.at("c7").first, 2u);
  EXPECT_EQ(s.at("c7").second, 6u);
  EXPECT_EQ(t->key_last_used(12), 0u);
  t->key_used(12, 1800000000);
  EXPECT_EQ(t->key_last_used(12), 1800000000u);
}

}  // namespace
