// The §9 rules the broker core holds so far: ack options at subscribe, idempotent publish.
#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <initializer_list>
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

std::vector<std::string> texts_of(const Deliveries& deliveries) {
  std::vector<std::string> texts;
  for (const Delivery& delivery : deliveries) {
    texts.emplace_back(delivery.message.data());
  }
  return texts;
}

std::vector<Receipt> receipts_of(const Deliveries& deliveries) {
  std::vector<Receipt> receipts;
  for (const Delivery& delivery : deliveries) {
    receipts.push_back(delivery.receipt);
  }
  return receipts;
}

class DeliveryTest : public ::testing::Test {
 protected:
  Deliveries fetch(std::size_t max, std::string_view id = "a") {
    Deliveries out;
    EXPECT_EQ(broker.fetch_deliveries("t", id, max, out), FetchStatus::ok);
    return out;
  }
  void publish(std::initializer_list<std::string_view> texts) {
    ASSERT_EQ(broker.publish("t", messages(texts)), PublishStatus::ok);
  }

  test::ManualClock clock;
  Broker broker{Limits{}, clock};
};

TEST_F(DeliveryTest, AckRemovesAndAStaleReceiptAcksNothing) {
  ASSERT_EQ(broker.subscribe("a", "t", std::nullopt, ack_mode()), SubscribeStatus::ok);
  publish({"x", "y"});
  const Deliveries first = fetch(10);
  ASSERT_EQ(texts_of(first), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(first[0].deliveries, 1U);
  EXPECT_EQ(first[0].receipt, (Receipt{first[0].message.seq(), 1}));
  EXPECT_TRUE(fetch(10).empty()) << "in flight is not pending for fetch";
  EXPECT_EQ(broker.totals().pending_messages, 2U) << "in flight counts as pending";
  const std::vector<Receipt> both = receipts_of(first);
  const Receipt unknown{999, 1};
  const std::vector<Receipt> mixed = {both[0], unknown, both[0]};
  const AckResult result = broker.ack("t", "a", mixed);
  EXPECT_EQ(result.status, AckStatus::ok);
  EXPECT_EQ(result.applied, 1U);
  EXPECT_EQ(result.stale, (std::vector<Receipt>{unknown, both[0]}));
  EXPECT_EQ(broker.totals().pending_messages, 1U);
  EXPECT_EQ(broker.totals().counters.acked, 1U);
}

TEST_F(DeliveryTest, TimedOutMessagesComeBackFirstInPublishOrderWithTheirCounts) {
  ASSERT_EQ(broker.subscribe("a", "t", std::nullopt, ack_mode()), SubscribeStatus::ok);
  publish({"1", "2", "3"});
  const Deliveries first = fetch(2);
  publish({"4"});
  EXPECT_EQ(broker.next_deadline(), clock.now() + AckOptions::kDefaultAckWait);
  clock.advance(AckOptions::kDefaultAckWait - milliseconds(1));
  broker.expire_deliveries();
  EXPECT_TRUE(fetch(0).empty());
  clock.advance(milliseconds(1));
  broker.expire_deliveries();
  EXPECT_FALSE(broker.next_deadline().has_value());
  const Deliveries again = fetch(3);
  EXPECT_EQ(texts_of(again), (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(again[0].deliveries, 2U);
  EXPECT_EQ(again[2].deliveries, 1U);
  const std::vector<Receipt> old = receipts_of(first);
  EXPECT_EQ(broker.ack("t", "a", old).stale.size(), 2U) << "redelivered since";
  EXPECT_EQ(broker.totals().counters.redelivered, 2U);
}

TEST_F(DeliveryTest, MaxInFlightCapsWhatTheQueueHoldsOut) {
  AckOptions options = ack_mode();
  options.max_in_flight = 2;
  ASSERT_EQ(broker.subscribe("a", "t", std::nullopt, options), SubscribeStatus::ok);
  publish({"1", "2", "3"});
  const Deliveries first = fetch(10);
  EXPECT_EQ(first.size(), 2U);
  EXPECT_TRUE(fetch(10).empty());
  const std::vector<Receipt> one = {first[0].receipt};
  EXPECT_EQ(broker.ack("t", "a", one).applied, 1U);
  EXPECT_EQ(texts_of(fetch(10)), (std::vector<std::string>{"3"}));
}

TEST_F(DeliveryTest, NackWithDelayAndExtend) {
  ASSERT_EQ(broker.subscribe("a", "t", std::nullopt, ack_mode()), SubscribeStatus::ok);
  publish({"1", "2"});
  const Deliveries first = fetch(2);
  const std::vector<Receipt> one = {first[0].receipt};
  const std::vector<Receipt> two = {first[1].receipt};
  EXPECT_EQ(broker.nack("t", "a", one, milliseconds(500)).applied, 1U);
  EXPECT_EQ(broker.ack("t", "a", one).stale.size(), 1U) << "nacked: the receipt is spent";
  clock.advance(milliseconds(499));
  broker.expire_deliveries();
  EXPECT_TRUE(fetch(10).empty());
  clock.advance(milliseconds(1));
  broker.expire_deliveries();
  EXPECT_EQ(texts_of(fetch(10)), (std::vector<std::string>{"1"}));
  clock.advance(AckOptions::kDefaultAckWait - milliseconds(1));
  EXPECT_EQ(broker.extend("t", "a", two).applied, 1U);
  clock.advance(milliseconds(1));
  broker.expire_deliveries();
  EXPECT_EQ(broker.ack("t", "a", two).applied, 1U) << "extended past its first deadline";
  EXPECT_EQ(broker.nack("t", "a", two, milliseconds(0)).stale.size(), 1U);
}

TEST_F(DeliveryTest, MaxDeliveriesDeadLettersOrDrops) {
  AckOptions options = ack_mode();
  options.max_deliveries = 2;
  options.dead_letter = "dead";
  ASSERT_EQ(broker.subscribe("a", "t", std::nullopt, options), SubscribeStatus::ok);
  ASSERT_EQ(broker.subscribe("d", "dead", std::nullopt), SubscribeStatus::ok);
  publish({"x"});
  const std::vector<Receipt> first = receipts_of(fetch(1));
  EXPECT_EQ(broker.nack("t", "a", first, milliseconds(0)).applied, 1U);
  const std::vector<Receipt> second = receipts_of(fetch(1));
  ASSERT_EQ(second.size(), 1U);
  EXPECT_EQ(second[0].delivery, 2U);
  EXPECT_EQ(broker.nack("t", "a", second, milliseconds(0)).applied, 1U);
  EXPECT_TRUE(fetch(1).empty());
  EXPECT_EQ(fetch_all(broker, "dead", "d"), (Texts{"x"}));
  EXPECT_EQ(broker.totals().counters.dead_lettered, 1U);
  EXPECT_EQ(broker.totals().pending_messages, 0U);
  ASSERT_EQ(broker.unsubscribe("dead", "d"), UnsubscribeStatus::ok);
  publish({"y"});
  (void)fetch(1);
  clock.advance(AckOptions::kDefaultAckWait);
  broker.expire_deliveries();
  (void)fetch(1);
  clock.advance(AckOptions::kDefaultAckWait);
  broker.expire_deliveries();
  EXPECT_EQ(broker.totals().counters.dead_letter_dropped, 1U) << "no dead-letter subscriber";
  EXPECT_EQ(broker.totals().counters.dropped[static_cast<std::size_t>(DropReason::max_deliveries)],
            0U)
      << "a dead_letter was given";
  EXPECT_EQ(broker.totals().pending_messages, 0U);
}

TEST_F(DeliveryTest, GroupMembersAckEachOthersDeliveries) {
  ASSERT_EQ(broker.subscribe("a", "t", "g", ack_mode()), SubscribeStatus::ok);
  ASSERT_EQ(broker.subscribe("b", "t", "g", ack_mode()), SubscribeStatus::ok);
  publish({"x"});
  const std::vector<Receipt> receipts = receipts_of(fetch(1, "a"));
  EXPECT_EQ(broker.ack("t", "b", receipts).applied, 1U);
  EXPECT_EQ(broker.totals().pending_messages, 0U);
}

TEST_F(DeliveryTest, UnsubscribeDropsInFlightAndPlainQueuesRefuseAcks) {
  ASSERT_EQ(broker.subscribe("a", "t", std::nullopt, ack_mode()), SubscribeStatus::ok);
  ASSERT_EQ(broker.subscribe("p", "t", std::nullopt), SubscribeStatus::ok);
  publish({"x", "y"});
  const std::vector<Receipt> receipts = receipts_of(fetch(1));
  EXPECT_EQ(broker.ack("t", "p", receipts).status, AckStatus::not_ack_mode);
  Deliveries none;
  EXPECT_EQ(broker.fetch_deliveries("t", "p", 1, none), FetchStatus::bad_id);
  ASSERT_EQ(broker.unsubscribe("t", "a"), UnsubscribeStatus::ok);
  EXPECT_EQ(broker.totals().pending_messages, 2U) << "the plain queue's";
  EXPECT_FALSE(broker.next_deadline().has_value());
  EXPECT_EQ(broker.totals().counters.dropped[static_cast<std::size_t>(DropReason::unsubscribe)],
            2U);
}

TEST_F(DeliveryTest, InFlightCountsTowardMaxPending) {
  Limits limits;
  limits.max_pending = 1;
  Broker bounded(limits, clock);
  ASSERT_EQ(bounded.subscribe("a", "t", std::nullopt, ack_mode()), SubscribeStatus::ok);
  ASSERT_EQ(bounded.publish("t", messages({"x"})), PublishStatus::ok);
  Deliveries out;
  ASSERT_EQ(bounded.fetch_deliveries("t", "a", 1, out), FetchStatus::ok);
  EXPECT_EQ(bounded.publish("t", messages({"y"})), PublishStatus::overflow);
}

class CountingWaiter final : public Waiter {
 public:
  void wake() override { ++woken; }
  int woken = 0;
};

std::vector<std::uint32_t> counts_of(const Deliveries& deliveries) {
  std::vector<std::uint32_t> counts;
  for (const Delivery& delivery : deliveries) {
    counts.push_back(delivery.deliveries);
  }
  return counts;
}

TEST_F(DeliveryTest, ThePlainFetchDeliversOnAnAckModeQueue) {
  ASSERT_EQ(broker.subscribe("a", "t", std::nullopt, ack_mode()), SubscribeStatus::ok);
  publish({"x"});
  Fetched fetched;
  ASSERT_EQ(broker.fetch("t", "a", 10, false, fetched), FetchStatus::ok);
  EXPECT_TRUE(fetched.ack);
  EXPECT_TRUE(fetched.messages.empty());
  ASSERT_EQ(fetched.deliveries.size(), 1U);
  EXPECT_EQ(fetched.deliveries[0].subject, "t");
  EXPECT_EQ(fetched.deliveries[0].receipt, (Receipt{1, 1}));
  EXPECT_EQ(broker.totals().pending_messages, 1U) << "in flight is still pending";
  EXPECT_EQ(broker.totals().in_flight, 1U);
  ASSERT_EQ(broker.ack("t", "a", receipts_of(fetched.deliveries)).applied, 1U);
  EXPECT_EQ(broker.totals().in_flight, 0U);
  EXPECT_EQ(broker.totals().pending_messages, 0U);
}

TEST_F(DeliveryTest, AWaitingFetchWakesOnANackAndOnATimeoutWithEverythingDue) {
  ASSERT_EQ(broker.subscribe("a", "t", std::nullopt, ack_mode()), SubscribeStatus::ok);
  publish({"x", "y"});
  const Deliveries first = fetch(10);
  CountingWaiter waiter;
  ASSERT_EQ(broker.fetch_or_wait("t", "a", 10, waiter), FetchStatus::waiting);
  ASSERT_EQ(broker.nack("t", "a", {receipts_of(first).data(), 1}, milliseconds(0)).applied, 1U);
  EXPECT_EQ(waiter.woken, 1);
  EXPECT_TRUE(waiter.ack);
  EXPECT_EQ(texts_of(waiter.deliveries), (std::vector<std::string>{"x"}));
  EXPECT_EQ(counts_of(waiter.deliveries), (std::vector<std::uint32_t>{2}));

  CountingWaiter later;
  ASSERT_EQ(broker.fetch_or_wait("t", "a", 10, later), FetchStatus::waiting);
  clock.advance(AckOptions::kDefaultAckWait);
  broker.expire_deliveries();
  EXPECT_EQ(later.woken, 1);
  EXPECT_EQ(texts_of(later.deliveries), (std::vector<std::string>{"x", "y"}))
      << "both were due at once";
  EXPECT_EQ(counts_of(later.deliveries), (std::vector<std::uint32_t>{3, 2}));
}

TEST_F(DeliveryTest, AnAckThatMakesRoomUnderMaxInFlightWakesAWaitingFetch) {
  AckOptions one = ack_mode();
  one.max_in_flight = 1;
  ASSERT_EQ(broker.subscribe("a", "t", std::nullopt, one), SubscribeStatus::ok);
  publish({"x", "y"});
  const Deliveries first = fetch(10);
  ASSERT_EQ(first.size(), 1U);
  CountingWaiter waiter;
  ASSERT_EQ(broker.fetch_or_wait("t", "a", 10, waiter), FetchStatus::waiting);
  ASSERT_EQ(broker.ack("t", "a", receipts_of(first)).applied, 1U);
  EXPECT_EQ(waiter.woken, 1);
  EXPECT_EQ(texts_of(waiter.deliveries), (std::vector<std::string>{"y"}));
}

TEST(DeliverySubjectTest, EachMessageKeepsTheSubjectItWasPublishedTo) {
  test::ManualClock clock;
  Broker broker(Limits{}, clock);
  ASSERT_EQ(broker.subscribe("a", "t.*", std::nullopt, ack_mode()), SubscribeStatus::ok);
  ASSERT_EQ(broker.subscribe("p", "t.*", std::nullopt), SubscribeStatus::ok);
  ASSERT_EQ(broker.publish("t.one", messages({"1"})), PublishStatus::ok);
  ASSERT_EQ(broker.publish("t.two", messages({"2"})), PublishStatus::ok);
  Fetched fetched;
  ASSERT_EQ(broker.fetch("t.*", "a", 10, false, fetched), FetchStatus::ok);
  ASSERT_EQ(fetched.deliveries.size(), 2U);
  EXPECT_EQ(fetched.deliveries[0].subject, "t.one");
  EXPECT_EQ(fetched.deliveries[1].subject, "t.two");
  clock.advance(AckOptions::kDefaultAckWait);
  broker.expire_deliveries();
  Fetched again;
  ASSERT_EQ(broker.fetch("t.*", "a", 10, false, again), FetchStatus::ok);
  ASSERT_EQ(again.deliveries.size(), 2U);
  EXPECT_EQ(again.deliveries[1].subject, "t.two") << "a redelivery keeps it";
  Fetched meta;
  ASSERT_EQ(broker.fetch("t.*", "p", 10, true, meta), FetchStatus::ok);
  EXPECT_FALSE(meta.ack);
  ASSERT_EQ(meta.deliveries.size(), 2U);
  EXPECT_EQ(meta.deliveries[0].subject, "t.one");
  EXPECT_EQ(meta.deliveries[0].deliveries, 0U);
  EXPECT_EQ(meta.deliveries[1].message.seq(), 2U);
  EXPECT_EQ(broker.totals().pending_messages, 2U) << "a plain meta fetch consumes";
}

TEST(DeliveryStatsTest, InFlightIsCountedPerSubjectAndInTotals) {
  Broker broker(Limits{});
  ASSERT_EQ(broker.subscribe("a", "t", std::nullopt, ack_mode()), SubscribeStatus::ok);
  ASSERT_EQ(broker.publish("t", messages({"1", "2", "3"})), PublishStatus::ok);
  Deliveries out;
  ASSERT_EQ(broker.fetch_deliveries("t", "a", 2, out), FetchStatus::ok);
  EXPECT_EQ(broker.totals().in_flight, 2U);
  const auto rows = broker.top_subjects(10);
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0].in_flight, 2U);
  EXPECT_EQ(rows[0].pending_messages, 3U);
  ASSERT_EQ(broker.unsubscribe("t", "a"), UnsubscribeStatus::ok);
  EXPECT_EQ(broker.totals().in_flight, 0U);
  EXPECT_EQ(broker.totals().counters.dropped[static_cast<std::size_t>(DropReason::unsubscribe)],
            3U);
}

TEST(DeliveryLimitsTest, MaxPendingPerQueueCountsInFlightAndDropOldestKeepsThem) {
  for (const SlowQueuePolicy policy : {SlowQueuePolicy::reject, SlowQueuePolicy::drop_oldest}) {
    Limits limits;
    limits.max_pending_per_queue = 2;
    limits.slow_queue_policy = policy;
    Broker broker(limits);
    ASSERT_EQ(broker.subscribe("a", "t", std::nullopt, ack_mode()), SubscribeStatus::ok);
    ASSERT_EQ(broker.publish("t", messages({"1", "2"})), PublishStatus::ok);
    Deliveries out;
    ASSERT_EQ(broker.fetch_deliveries("t", "a", 2, out), FetchStatus::ok);
    EXPECT_EQ(broker.publish("t", messages({"3"})), PublishStatus::queue_full)
        << "two in flight fill the queue";
    ASSERT_EQ(broker.ack("t", "a", {receipts_of(out).data(), 1}).applied, 1U);
    EXPECT_EQ(broker.publish("t", messages({"3"})), PublishStatus::ok);
    if (policy == SlowQueuePolicy::drop_oldest) {
      EXPECT_EQ(broker.publish("t", messages({"4"})), PublishStatus::ok);
      EXPECT_EQ(broker.totals().counters.dropped[static_cast<std::size_t>(DropReason::queue_full)],
                1U)
          << "3, never delivered, made room; 2, in flight, stayed";
      Deliveries next;
      ASSERT_EQ(broker.fetch_deliveries("t", "a", 10, next), FetchStatus::ok);
      EXPECT_EQ(texts_of(next), (std::vector<std::string>{"4"}));
    }
  }
}

TEST(DeliveryLimitsTest, MessageTtlDropsOnlyMessagesNeverDelivered) {
  test::ManualClock clock;
  Limits limits;
  limits.message_ttl = milliseconds(1000);
  Broker broker(limits, clock);
  AckOptions long_wait = ack_mode();
  long_wait.ack_wait = milliseconds(5000);
  ASSERT_EQ(broker.subscribe("a", "t", std::nullopt, long_wait), SubscribeStatus::ok);
  ASSERT_EQ(broker.publish("t", messages({"1", "2"})), PublishStatus::ok);
  Deliveries out;
  ASSERT_EQ(broker.fetch_deliveries("t", "a", 1, out), FetchStatus::ok);
  clock.advance(milliseconds(2000));
  broker.expire();
  EXPECT_EQ(broker.totals().counters.dropped[static_cast<std::size_t>(DropReason::message_ttl)],
            1U);
  EXPECT_EQ(broker.ack("t", "a", receipts_of(out)).applied, 1U)
      << "a delivered message is left to its ack_wait";
}

}  // namespace
}  // namespace gophermq::broker
