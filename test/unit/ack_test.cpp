// The §9 rules that need no queue state: ack options, receipts, msg_ids.
#include "broker/ack.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>

namespace gophermq::broker {
namespace {

using std::chrono::milliseconds;

constexpr std::size_t kMaxSubject = 256;

AckOptions ack_mode() {
  AckOptions options;
  options.ack = true;
  return options;
}

TEST(AckOptionsTest, DefaultsAreValidWithAndWithoutAck) {
  EXPECT_TRUE(is_valid(AckOptions{}, kMaxSubject));
  EXPECT_TRUE(is_valid(ack_mode(), kMaxSubject));
  EXPECT_EQ(AckOptions{}.ack_wait, milliseconds(30'000));
  EXPECT_EQ(AckOptions{}.max_deliveries, 0U);
  EXPECT_EQ(AckOptions{}.max_in_flight, 1'000U);
}

TEST(AckOptionsTest, PlainSubscriptionTakesNoOtherOption) {
  AckOptions wait;
  wait.ack_wait = milliseconds(5'000);
  EXPECT_FALSE(is_valid(wait, kMaxSubject));
  AckOptions deliveries;
  deliveries.max_deliveries = 3;
  EXPECT_FALSE(is_valid(deliveries, kMaxSubject));
  AckOptions in_flight;
  in_flight.max_in_flight = 10;
  EXPECT_FALSE(is_valid(in_flight, kMaxSubject));
  AckOptions dead;
  dead.dead_letter = "dead";
  EXPECT_FALSE(is_valid(dead, kMaxSubject));
}

TEST(AckOptionsTest, AckWaitRange) {
  for (const auto& [wait, valid] :
       {std::pair{999, false}, std::pair{1'000, true}, std::pair{43'200'000, true},
        std::pair{43'200'001, false}, std::pair{0, false}, std::pair{-1, false}}) {
    AckOptions options = ack_mode();
    options.ack_wait = milliseconds(wait);
    EXPECT_EQ(is_valid(options, kMaxSubject), valid) << wait;
  }
}

TEST(AckOptionsTest, MaxDeliveriesAndMaxInFlightRanges) {
  AckOptions options = ack_mode();
  options.max_deliveries = 1'000;
  EXPECT_TRUE(is_valid(options, kMaxSubject));
  options.max_deliveries = 1'001;
  EXPECT_FALSE(is_valid(options, kMaxSubject));
  options = ack_mode();
  options.max_in_flight = 0;
  EXPECT_FALSE(is_valid(options, kMaxSubject));
  options.max_in_flight = 1;
  EXPECT_TRUE(is_valid(options, kMaxSubject));
  options.max_in_flight = 100'000;
  EXPECT_TRUE(is_valid(options, kMaxSubject));
  options.max_in_flight = 100'001;
  EXPECT_FALSE(is_valid(options, kMaxSubject));
}

TEST(AckOptionsTest, DeadLetterNeedsMaxDeliveriesAndAConcreteSubject) {
  AckOptions options = ack_mode();
  options.dead_letter = "orders.dead";
  EXPECT_FALSE(is_valid(options, kMaxSubject));
  options.max_deliveries = 5;
  EXPECT_TRUE(is_valid(options, kMaxSubject));
  for (const char* bad : {"orders.*", "orders.>", "orders..dead", ".dead", "dead."}) {
    options.dead_letter = bad;
    EXPECT_FALSE(is_valid(options, kMaxSubject)) << bad;
  }
  options.dead_letter = std::string(kMaxSubject + 1, 'd');
  EXPECT_FALSE(is_valid(options, kMaxSubject));
  options.dead_letter = std::string(kMaxSubject, 'd');
  EXPECT_TRUE(is_valid(options, kMaxSubject));
}

TEST(ReceiptTest, RoundTrips) {
  for (const Receipt receipt : {Receipt{0, 1}, Receipt{1, 1}, Receipt{0xabc, 7},
                                Receipt{std::numeric_limits<std::uint64_t>::max(),
                                        std::numeric_limits<std::uint32_t>::max()}}) {
    const std::string text = format_receipt(receipt);
    EXPECT_LE(text.size(), 25U);
    EXPECT_EQ(parse_receipt(text), receipt) << text;
  }
  EXPECT_EQ(format_receipt({0xabc, 7}), "abc-7");
}

TEST(ReceiptTest, DifferentDeliveriesHaveDifferentReceipts) {
  EXPECT_NE(format_receipt({5, 1}), format_receipt({5, 2}));
  EXPECT_NE(format_receipt({5, 1}), format_receipt({6, 1}));
}

TEST(ReceiptTest, RejectsMalformed) {
  for (const char* bad : {"",
                          "-",
                          "5",
                          "5-",
                          "-5",
                          "5-0",
                          "05-1",
                          "5-01",
                          "5--1",
                          "5-1-1",
                          "+5-1",
                          "5-+1",
                          "5- 1",
                          " 5-1",
                          "5-1 ",
                          "ABC-1",
                          "abc-A",
                          "g-1",
                          "5-1x",
                          "10000000000000000-1",
                          "5-100000000",
                          "ffffffffffffffffff-1"}) {
    EXPECT_EQ(parse_receipt(bad), std::nullopt) << bad;
  }
  EXPECT_EQ(parse_receipt(std::string("5-1\0", 4)), std::nullopt);
}

TEST(MsgIdTest, OneTo128Bytes) {
  EXPECT_FALSE(is_valid_msg_id(""));
  EXPECT_TRUE(is_valid_msg_id("a"));
  EXPECT_TRUE(is_valid_msg_id(std::string(128, 'x')));
  EXPECT_FALSE(is_valid_msg_id(std::string(129, 'x')));
  EXPECT_TRUE(is_valid_msg_id(std::string("a\0b", 3)));
}

TEST(DedupeWindowTest, DuplicateWithinTheWindowOnly) {
  DedupeWindow window(milliseconds(120'000));
  const TimePoint start{};
  EXPECT_FALSE(window.seen("orders", "a", start));
  EXPECT_TRUE(window.seen("orders", "a", start + milliseconds(119'999)));
  EXPECT_FALSE(window.seen("orders", "a", start + milliseconds(120'000)));
  EXPECT_TRUE(window.seen("orders", "a", start + milliseconds(120'001)));
}

TEST(DedupeWindowTest, KeyedBySubjectAndMsgId) {
  DedupeWindow window(milliseconds(1'000));
  const TimePoint now{};
  EXPECT_FALSE(window.seen("orders", "a", now));
  EXPECT_FALSE(window.seen("orders", "b", now));
  EXPECT_FALSE(window.seen("orders.eu", "a", now));
  // The same bytes split differently between subject and msg_id name another message.
  EXPECT_FALSE(window.seen("ab", "c", now));
  EXPECT_FALSE(window.seen("a", "bc", now));
  EXPECT_TRUE(window.seen("a", "bc", now));
  EXPECT_EQ(window.size(), 5U);
}

TEST(DedupeWindowTest, MemoryIsBoundedByTheWindowAndCounted) {
  DedupeWindow window(milliseconds(10));
  TimePoint now{};
  for (int i = 0; i < 10'000; ++i) {
    EXPECT_FALSE(window.seen("s", std::to_string(i), now));
    now += milliseconds(1);
    EXPECT_LE(window.size(), 10U);
  }
  EXPECT_GT(window.bytes(), 0U);
  window.expire(now + milliseconds(10));
  EXPECT_EQ(window.size(), 0U);
  EXPECT_EQ(window.bytes(), 0U);
}

TEST(DedupeWindowTest, ZeroWindowIsOff) {
  DedupeWindow window(milliseconds(0));
  EXPECT_FALSE(window.seen("orders", "a", TimePoint{}));
  EXPECT_FALSE(window.seen("orders", "a", TimePoint{}));
  EXPECT_EQ(window.size(), 0U);
}

TEST(DedupeWindowTest, AClockGoingBackKeepsEachEntryForItsWindow) {
  DedupeWindow window(milliseconds(100));
  const TimePoint start = TimePoint{} + milliseconds(1'000);
  EXPECT_FALSE(window.seen("s", "late", start));
  EXPECT_FALSE(window.seen("s", "early", start - milliseconds(500)));
  EXPECT_TRUE(window.seen("s", "early", start - milliseconds(450)));
  EXPECT_TRUE(window.seen("s", "late", start + milliseconds(99)));
  EXPECT_EQ(window.size(), 2U);
  // Past its window although the newer entry ahead of it still holds the queue of expiries.
  EXPECT_FALSE(window.seen("s", "early", start - milliseconds(350)));
  EXPECT_TRUE(window.seen("s", "early", start - milliseconds(300)));
}

// Against a model that keeps every publish time forever: with a clock that only moves forward,
// the window answers as the model does and holds no more than the model's live entries.
TEST(DedupeWindowTest, MatchesAModelThatNeverForgets) {
  constexpr milliseconds kWindow{50};
  std::mt19937 random(15);
  DedupeWindow window(kWindow);
  std::map<std::pair<std::string, std::string>, TimePoint> model;
  TimePoint now{};
  for (int step = 0; step < 20'000; ++step) {
    now += milliseconds(std::uniform_int_distribution<int>(0, 3)(random));
    const std::string subject(1, static_cast<char>('a' + random() % 3));
    const std::string msg_id = std::to_string(random() % 40);
    const auto found = model.find({subject, msg_id});
    const bool duplicate = found != model.end() && now < found->second + kWindow;
    ASSERT_EQ(window.seen(subject, msg_id, now), duplicate) << step;
    if (!duplicate) {
      model[{subject, msg_id}] = now;
    }
    const auto live =
        static_cast<std::size_t>(std::count_if(model.begin(), model.end(), [&](const auto& entry) {
          return now < entry.second + kWindow;
        }));
    ASSERT_EQ(window.size(), live) << step;
  }
}

}  // namespace
}  // namespace gophermq::broker
