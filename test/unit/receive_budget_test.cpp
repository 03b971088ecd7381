// The process-wide budget for request bodies being received (max-receiving-bytes).
#include <gtest/gtest.h>

#include <cstddef>
#include <thread>
#include <vector>

#include "http/server.hpp"

namespace gophermq::http {
namespace {

TEST(ReceiveBudget, TakesWhatFitsExactlyAndRefusesTheRestWithoutTakingAnything) {
  ReceiveBudget budget(1000);
  EXPECT_TRUE(budget.try_take(600));
  EXPECT_FALSE(budget.try_take(401));
  EXPECT_TRUE(budget.try_take(400));  // the refusal took nothing
  EXPECT_FALSE(budget.try_take(1));
  budget.give_back(600);
  EXPECT_FALSE(budget.try_take(601));
  EXPECT_TRUE(budget.try_take(600));
}

TEST(ReceiveBudget, ABodyLargerThanTheBudgetNeverFits) {
  ReceiveBudget budget(1000);
  EXPECT_FALSE(budget.try_take(1001));
  EXPECT_TRUE(budget.try_take(1000));
}

TEST(ReceiveBudget, ConcurrentTakersNeverExceedIt) {
  constexpr std::size_t kLimit = 64;
  ReceiveBudget budget(kLimit);
  std::vector<std::thread> takers;
  std::vector<std::size_t> taken(4, 0);
  for (std::size_t t = 0; t < taken.size(); ++t) {
    takers.emplace_back([&budget, &count = taken[t]] {
      for (int i = 0; i < 10'000; ++i) {
        if (budget.try_take(1)) {
          ++count;
        }
      }
    });
  }
  for (auto& taker : takers) {
    taker.join();
  }
  std::size_t total = 0;
  for (const std::size_t count : taken) {
    total += count;
  }
  EXPECT_EQ(total, kLimit);
  budget.give_back(kLimit);
  EXPECT_TRUE(budget.try_take(kLimit));
}

}  // namespace
}  // namespace gophermq::http
