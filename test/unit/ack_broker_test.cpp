// The §9 rules the broker core holds so far: ack options at subscribe, idempotent publish.
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/broker.hpp"
#include "support/broker_calls.hpp"
#include "support/manual_clock.hpp"

namespace gophermq::broker {
namespace {

using std::chrono::milliseconds;
using test::fetch_all;
using test::messages;
using test::Texts;

AckOptions ack_mode() {
  AckOptions options;
  options.ack = true;
  return options;
}

TEST(AckSubscribeTest, PlainDefaultsBehaveAsBeforeAndOptionsWithoutAckAreRefused) {
  Broker broker(Limits{});
  EXPECT_EQ(broker.subscribe("a", "t", std::nullopt, AckOptions{}), SubscribeStatus::ok);
  ASSERT_NE(broker.ack_options("t", "a"), nullptr);
  EXPECT_FALSE(broker.ack_options("t", "a")->ack);
  AckOptions without_ack;
  without_ack.max_deliveries = 3;
  EXPECT_EQ(broker.subscribe("b", "t", std::nullopt, without_ack),
            SubscribeStatus::invalid_ack_options);
  EXPECT_EQ(broker.ack_options("t", "b"), nullptr);
}

TEST(AckSubscribeTest, OutOfRangeAndBadDeadLetterAreRefusedChangingNothing) {
  Broker broker(Limits{});
  AckOptions short_wait = ack_mode();
  short_wait.ack_wait = milliseconds(999);
  EXPECT_EQ(broker.subscribe("a", "t", std::nullopt, short_wait),
            SubscribeStatus::invalid_ack_options);
  AckOptions wildcard = ack_mode();
  wildcard.max_deliveries = 2;
  wildcard.dead_letter = "dead.*";
  EXPECT_EQ(broker.subscribe("a", "t", std::nullopt, wildcard),
            SubscribeStatus::invalid_ack_options);
  AckOptions no_limit = ack_mode();
  no_limit.dead_letter = "dead";
  EXPECT_EQ(broker.subscribe("a", "t", std::nullopt, no_limit),
            SubscribeStatus::invalid_ack_options);
  EXPECT_EQ(broker.totals().subscriptions, 0U);
}

TEST(AckSubscribeTest, GroupMembersMustGiveTheGroupsOptions) {
  Broker broker(Limits{});
  AckOptions options = ack_mode();
  options.max_deliveries = 5;
  options.dead_letter = "dead";
  ASSERT_EQ(broker.subscribe("a", "t", "g", options), SubscribeStatus::ok);
  EXPECT_EQ(broker.subscribe("b", "t", "g", options), SubscribeStatus::ok);
  AckOptions other = options;
  other.max_in_flight = 7;
  EXPECT_EQ(broker.subscribe("c", "t", "g", other), SubscribeStatus::invalid_ack_options);
  EXPECT_EQ(broker.subscribe("d", "t", "g"), SubscribeStatus::invalid_ack_options);
  EXPECT_EQ(broker.subscribe("e", "t", "plain"), SubscribeStatus::ok);
  EXPECT_EQ(broker.subscribe("f", "t", "plain", options), SubscribeStatus::invalid_ack_options);
  ASSERT_NE(broker.ack_options("t", "b"), nullptr);
  EXPECT_EQ(*broker.ack_options("t", "b"), options);
  EXPECT_EQ(broker.totals().subscriptions, 3U);
}

TEST(DedupePublishTest, DuplicatesWithinTheWindowAreNotStoredAgain) {
  test::ManualClock clock;
  Limits limits;
  limits.dedupe_window = milliseconds(1'000);
  Broker broker(limits, clock);
  ASSERT_EQ(broker.subscribe("a", "t", std::nullopt), SubscribeStatus::ok);
  const std::vector<std::string_view> first_ids = {"1", "2", "1"};
  PublishResult result = broker.publish("t", messages({"x", "y", "x again"}), first_ids);
  EXPECT_EQ(result.status, PublishStatus::ok);
  EXPECT_EQ(result.duplicates, 1U) << "a msg_id twice in one batch";
  clock.advance(milliseconds(999));
  const std::vector<std::string_view> retry = {"2", "3"};
  result = broker.publish("t", messages({"y", "z"}), retry);
  EXPECT_EQ(result.status, PublishStatus::ok);
  EXPECT_EQ(result.duplicates, 1U);
  const std::vector<std::string_view> other_subject = {"2"};
  ASSERT_EQ(broker.subscribe("b", "u", std::nullopt), SubscribeStatus::ok);
  EXPECT_EQ(broker.publish("u", messages({"y"}), other_subject).duplicates, 0U);
  EXPECT_EQ(fetch_all(broker, "t", "a"), (Texts{"x", "y", "z"}));
  clock.advance(milliseconds(1));
  const std::vector<std::string_view> past = {"1"};
  EXPECT_EQ(broker.publish("t", messages({"x"}), past).duplicates, 0U) << "window passed";
  EXPECT_EQ(fetch_all(broker, "t", "a"), (Texts{"x"}));
  EXPECT_EQ(broker.totals().counters.duplicates, 2U);
}

TEST(DedupePublishTest, AFailedPublishDoesNotMakeItsRetryADuplicate) {
  test::ManualClock clock;
  Broker broker(Limits{}, clock);
  const std::vector<std::string_view> ids = {"m"};
  EXPECT_EQ(broker.publish("t", messages({"x"}), ids).status, PublishStatus::no_subscribers);
  ASSERT_EQ(broker.subscribe("a", "t", std::nullopt), SubscribeStatus::ok);
  const PublishResult retry = broker.publish("t", messages({"x"}), ids);
  EXPECT_EQ(retry.status, PublishStatus::ok);
  EXPECT_EQ(retry.duplicates, 0U);
  EXPECT_EQ(fetch_all(broker, "t", "a"), (Texts{"x"}));
}

TEST(DedupePublishTest, MalformedMsgIdsAreRefusedStoringNothing) {
  Broker broker(Limits{});
  ASSERT_EQ(broker.subscribe("a", "t", std::nullopt), SubscribeStatus::ok);
  const std::string too_long(kMaxMsgIdLength + 1, 'x');
  const std::vector<std::vector<std::string_view>> bad = {{""}, {too_long}, {"1", "2"}};
  for (const auto& ids : bad) {
    EXPECT_EQ(broker.publish("t", messages({"x"}), ids).status, PublishStatus::invalid_msg_id);
  }
  const std::string longest(kMaxMsgIdLength, 'x');
  const std::vector<std::string_view> fine = {longest};
  EXPECT_EQ(broker.publish("t", messages({"x"}), fine).status, PublishStatus::ok);
  EXPECT_EQ(fetch_all(broker, "t", "a"), (Texts{"x"}));
}

TEST(DedupePublishTest, AZeroWindowTurnsDeduplicationOff) {
  Limits limits;
  limits.dedupe_window = milliseconds(0);
  Broker broker(limits);
  ASSERT_EQ(broker.subscribe("a", "t", std::nullopt), SubscribeStatus::ok);
  const std::vector<std::string_view> ids = {"m"};
  EXPECT_EQ(broker.publish("t", messages({"x"}), ids).duplicates, 0U);
  EXPECT_EQ(broker.publish("t", messages({"x"}), ids).duplicates, 0U);
  EXPECT_EQ(fetch_all(broker, "t", "a"), (Texts{"x", "x"}));
}

}  // namespace
}  // namespace gophermq::broker
