// SPDX-License-Identifier: Apache-2.0
// The refusal log limit: per kind and per second, with the held-back count
// reported once, totals kept, and no line lost or doubled across threads.
#include "../../mod_uritoken/core/log_limit.h"

#include <gtest/gtest.h>

#include <memory>
#include <thread>
#include <vector>

using namespace uritoken;

namespace {

std::unique_ptr<LogLimit> make(std::uint32_t per_second) {
  auto l = std::make_unique<LogLimit>();
  l->reset(per_second);
  return l;
}

TEST(LogLimit, FirstLinesOfASecondInFullThenASummary) {
  auto l = make(3);
  int logged = 0;
  for (int i = 0; i < 10; ++i) {
    const auto d = l->note(5, 1000);
    logged += d.log;
    EXPECT_EQ(d.suppressed, 0u);
  }
  EXPECT_EQ(logged, 3);
  // Another kind has its own budget.
  EXPECT_TRUE(l->note(6, 1000).log);
  // The next second's first line carries the summary of the last one.
  const auto next = l->note(5, 1001);
  EXPECT_TRUE(next.log);
  EXPECT_EQ(next.suppressed, 7u);
  EXPECT_EQ(next.suppressed_second, 1000u);
  // Reported once only.
  EXPECT_EQ(l->note(5, 1002).suppressed, 0u);
  EXPECT_EQ(l->total(5), 12u);
  EXPECT_EQ(l->total(6), 1u);
}

TEST(LogLimit, ZeroMeansNoLimitAndLargeKindsShareTheLastSlot) {
  auto l = make(0);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(l->note(1, 7).log);
  auto m = make(1);
  EXPECT_TRUE(m->note(LogLimit::kKinds + 10, 7).log);
  EXPECT_FALSE(m->note(LogLimit::kKinds - 1, 7).log);
  EXPECT_EQ(m->total(LogLimit::kKinds - 1), 2u);
}

TEST(LogLimit, ThreadsTogetherLogExactlyTheBudget) {
  auto l = make(50);
  std::atomic<int> logged{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) logged += l->note(2, 42).log;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(logged.load(), 50);
  EXPECT_EQ(l->total(2), 40000u);
  EXPECT_EQ(l->note(2, 43).suppressed, 40000u - 50u);
}

}  // namespace
