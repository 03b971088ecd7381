// The total-queue checker (test/support/total_queue.cpp) on hand-made histories: the ones a broker
// that keeps its promises can produce pass, each broken promise fails.
#include "support/total_queue.hpp"

#include <gtest/gtest.h>

#include "support/ack_queue.hpp"

namespace gophermq::test {
namespace {

// Two queues on `orders.eu`: a subscription and a group of two members; a wildcard on `orders.*`.
class TotalQueueCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    history_.add_queue("solo", "orders.eu");
    history_.add_queue("group", "orders.eu");
    history_.add_queue("wild", "orders.*");
    history_.publish("p1", "orders.eu", {"a1"}, Outcome::ok);
    history_.publish("p1", "orders.eu", {"a2", "a3"}, Outcome::ok);
    history_.publish("p2", "orders.us", {"b1"}, Outcome::ok);
  }

  // Every queue receives what it should, in order; the group's members split it.
  void deliver_everything() {
    history_.fetch("solo", "s", 10, {"a1", "a2", "a3"}, Outcome::ok);
    history_.fetch("group", "m1", 1, {"a1"}, Outcome::ok);
    history_.fetch("group", "m2", 2, {"a2", "a3"}, Outcome::ok);
    history_.fetch("wild", "w", 10, {"a1", "b1", "a2", "a3"}, Outcome::ok);
  }

  std::string errors(Delivery delivery = Delivery::exactly_once, bool loss_allowed = false) {
    const auto result = history_.check(delivery, loss_allowed);
    return result.errors.empty() ? "" : result.describe();
  }

  TotalQueue history_;
};

TEST(PatternMatches, TokensStarsAndTails) {
  EXPECT_TRUE(pattern_matches("a.b", "a.b"));
  EXPECT_FALSE(pattern_matches("a.b", "a.b.c"));
  EXPECT_FALSE(pattern_matches("a.b.c", "a.b"));
  EXPECT_TRUE(pattern_matches("a.*", "a.x"));
  EXPECT_FALSE(pattern_matches("a.*", "a.x.y"));
  EXPECT_TRUE(pattern_matches("a.>", "a.x.y"));
  EXPECT_FALSE(pattern_matches("a.>", "a"));
}

TEST_F(TotalQueueCheck, AFaithfulHistoryPasses) {
  deliver_everything();
  EXPECT_EQ(errors(), "");
  const auto result = history_.check(Delivery::exactly_once);
  EXPECT_EQ(result.expected, 3u + 3u + 4u);
  EXPECT_EQ(result.received, 10u);
  EXPECT_TRUE(result.missing.empty());
}

TEST_F(TotalQueueCheck, ALostAnsweredMessageFails) {
  history_.fetch("solo", "s", 10, {"a1", "a3"}, Outcome::ok);
  EXPECT_NE(errors().find("solo: 1 answered messages never received (the first: a2)"),
            std::string::npos)
      << errors();
}

TEST_F(TotalQueueCheck, AnUnansweredFetchExplainsAsManyMissingAsItsMax) {
  deliver_everything();
  history_.publish("p1", "orders.eu", {"a4", "a5"}, Outcome::ok);
  history_.fetch("solo", "s", 2, {}, Outcome::unknown);
  history_.fetch("group", "m1", 1, {}, Outcome::unknown);
  history_.fetch("group", "m2", 10, {"a5"}, Outcome::ok);
  history_.fetch("wild", "w", 10, {"a4", "a5"}, Outcome::ok);
  EXPECT_EQ(errors(), "");
  EXPECT_EQ(history_.check(Delivery::exactly_once).allowance, 3u);

  history_.publish("p1", "orders.eu", {"a6"}, Outcome::ok);
  history_.fetch("wild", "w", 10, {"a6"}, Outcome::ok);
  history_.fetch("group", "m1", 10, {"a6"}, Outcome::ok);
  EXPECT_NE(errors().find("solo: 3 answered messages never received"), std::string::npos);
}

TEST_F(TotalQueueCheck, ADuplicateFailsExactlyOnceAndIsCountedAtLeastOnce) {
  deliver_everything();
  history_.fetch("group", "m1", 10, {"a2"}, Outcome::ok);
  EXPECT_NE(errors().find("group: received a2 2 times"), std::string::npos) << errors();
  EXPECT_EQ(errors(Delivery::at_least_once), "");
  EXPECT_EQ(history_.check(Delivery::at_least_once).duplicates, 1u);
}

TEST_F(TotalQueueCheck, SomethingNeverPublishedFails) {
  deliver_everything();
  history_.fetch("solo", "s", 10, {"zz"}, Outcome::ok);
  EXPECT_NE(errors(Delivery::at_least_once).find("solo: received zz, which was never published"),
            std::string::npos);
}

TEST_F(TotalQueueCheck, ARefusedPublishMustNotBeStored) {
  history_.publish("p1", "orders.eu", {"r1"}, Outcome::refused);
  deliver_everything();
  EXPECT_EQ(errors(), "");
  history_.fetch("solo", "s", 10, {"r1"}, Outcome::ok);
  EXPECT_NE(errors().find("solo: received r1, whose publish was refused"), std::string::npos);
}

TEST_F(TotalQueueCheck, AnUnknownPublishMayAppearOnceOrNotAtAll) {
  history_.publish("p1", "orders.eu", {"u1"}, Outcome::unknown);
  deliver_everything();
  EXPECT_EQ(errors(), "");
  history_.fetch("solo", "s", 10, {"u1"}, Outcome::ok);
  EXPECT_EQ(errors(), "");
  history_.fetch("solo", "s", 10, {"u1"}, Outcome::ok);
  EXPECT_NE(errors().find("solo: received u1 2 times"), std::string::npos);
}

TEST_F(TotalQueueCheck, AMessageOnASubjectTheQueueDoesNotMatchFails) {
  deliver_everything();
  history_.fetch("solo", "s", 10, {"b1"}, Outcome::ok);
  EXPECT_NE(errors().find("solo: received b1, published to orders.us, which orders.eu does not"),
            std::string::npos);
}

TEST_F(TotalQueueCheck, OrderOfOnePublisherIsKeptPerConsumer) {
  history_.fetch("solo", "s", 10, {"a2", "a1", "a3"}, Outcome::ok);
  EXPECT_NE(errors().find("consumer s received a1 (#0 of p1) after #1"), std::string::npos)
      << errors();
}

TEST_F(TotalQueueCheck, OrderSpansAConsumersFetches) {
  history_.fetch("solo", "s", 1, {"a3"}, Outcome::ok);
  history_.fetch("solo", "s", 10, {"a1", "a2"}, Outcome::ok);
  EXPECT_NE(errors().find("consumer s received a1"), std::string::npos) << errors();
}

TEST_F(TotalQueueCheck, GroupMembersAreOrderedEachOnTheirOwn) {
  history_.fetch("solo", "s", 10, {"a1", "a2", "a3"}, Outcome::ok);
  history_.fetch("group", "m2", 2, {"a2", "a3"}, Outcome::ok);
  history_.fetch("group", "m1", 1, {"a1"}, Outcome::ok);
  history_.fetch("wild", "w", 10, {"b1", "a1", "a2", "a3"}, Outcome::ok);
  EXPECT_EQ(errors(), "");
}

TEST_F(TotalQueueCheck, ARedeliveryAfterPowerLossKeepsOrderOfFirstDeliveries) {
  deliver_everything();
  history_.publish("p1", "orders.eu", {"a4"}, Outcome::ok);
  history_.fetch("solo", "s", 10, {"a2", "a3", "a4"}, Outcome::ok);
  history_.fetch("group", "m1", 10, {"a4"}, Outcome::ok);
  history_.fetch("wild", "w", 10, {"a3", "a4"}, Outcome::ok);
  EXPECT_EQ(errors(Delivery::at_least_once), "");
  EXPECT_EQ(history_.check(Delivery::at_least_once).duplicates, 3u);
}

// After a power loss a group member gets back what another member took, after later messages it
// already has; without a cause (another member's receipt or unanswered fetch) that is an error.
TEST_F(TotalQueueCheck, AGroupMemberMayGetAnotherMembersMessageBackOutOfOrderAfterPowerLoss) {
  history_.publish("p1", "orders.eu", {"a4"}, Outcome::ok);
  deliver_everything();
  history_.fetch("solo", "s", 10, {"a4"}, Outcome::ok);
  history_.fetch("wild", "w", 10, {"a4"}, Outcome::ok);
  history_.fetch("group", "m1", 1, {}, Outcome::unknown);
  history_.fetch("group", "m2", 2, {"a4", "a1"}, Outcome::ok);
  EXPECT_EQ(errors(Delivery::at_least_once), "");
  EXPECT_NE(errors().find("received a1 2 times"), std::string::npos);
}

TEST_F(TotalQueueCheck, AGroupMemberOutOfOrderWithoutARedeliveryCauseFails) {
  history_.publish("p1", "orders.eu", {"a4"}, Outcome::ok);
  history_.fetch("solo", "s", 10, {"a1", "a2", "a3", "a4"}, Outcome::ok);
  history_.fetch("wild", "w", 10, {"a1", "b1", "a2", "a3", "a4"}, Outcome::ok);
  history_.fetch("group", "m1", 1, {"a1"}, Outcome::ok);
  history_.fetch("group", "m2", 3, {"a2", "a4", "a3"}, Outcome::ok);
  EXPECT_NE(errors(Delivery::at_least_once).find("consumer m2 received a3 (#2 of p1) after #3"),
            std::string::npos)
      << errors(Delivery::at_least_once);
}

TEST_F(TotalQueueCheck, AllowedLossIsReportedNotFailed) {
  history_.publish("p1", "orders.eu", {"a4"}, Outcome::ok);
  deliver_everything();
  EXPECT_EQ(errors(Delivery::at_least_once, true), "");
  const auto result = history_.check(Delivery::at_least_once, true);
  ASSERT_EQ(result.missing.size(), 3u);
  EXPECT_EQ(result.missing[0].queue, "solo");
  EXPECT_EQ(result.missing[0].body, "a4");
}

TEST_F(TotalQueueCheck, TheHistoryMustNotReuseABody) {
  history_.publish("p2", "orders.eu", {"a1"}, Outcome::ok);
  deliver_everything();
  EXPECT_NE(errors().find("publishes a1 twice"), std::string::npos);
}

// The ack-mode checker (test/support/ack_queue.cpp): max_deliveries 3, three messages answered,
// one acked at once, one acked after a redelivery, one dead-lettered after three deliveries.
class AckQueueCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    history_.publish("m1", Outcome::ok);
    history_.publish("m2", Outcome::unknown);
    history_.publish("m2", Outcome::ok);
    history_.publish("m3", Outcome::ok);
    history_.deliver("m1", 1, 1, "r1");
    history_.deliver("m2", 2, 1, "r2");
    history_.deliver("m3", 3, 1, "r3");
    history_.ack({"r1"}, Outcome::ok, 1);
    history_.nack({"r3"}, Outcome::ok, 1);
    history_.deliver("m2", 2, 2, "r2b");
    history_.deliver("m3", 3, 2, "r3b");
  }

  // The rest of a faithful history: m2's late ack is stale, m3 runs out of deliveries.
  void finish() {
    history_.ack({"r2", "r2b"}, Outcome::ok, 1, {"r2"});
    history_.deliver("m3", 3, 3, "r3c");
    history_.nack({"r3c"}, Outcome::ok, 1);
    history_.dead_letter("m3");
  }

  std::string errors() {
    const auto result = history_.check();
    return result.errors.empty() ? "" : result.describe();
  }

  AckQueue history_{3};
};

TEST_F(AckQueueCheck, AFaithfulHistoryPasses) {
  finish();
  EXPECT_EQ(errors(), "");
  const auto result = history_.check();
  EXPECT_EQ(result.answered, 3u);
  EXPECT_EQ(result.acked, 2u);
  EXPECT_EQ(result.dead_lettered, 1u);
  EXPECT_EQ(result.redeliveries, 3u);
  EXPECT_EQ(result.stale, 1u);
}

TEST_F(AckQueueCheck, ALostMessageFails) {
  finish();
  history_.publish("m4", Outcome::ok);
  EXPECT_NE(errors().find("m4: answered 200, never delivered (lost)"), std::string::npos)
      << errors();
}

TEST_F(AckQueueCheck, AMessageNeitherAckedNorDeadLetteredFails) {
  history_.ack({"r2b"}, Outcome::ok, 1);
  EXPECT_NE(errors().find("m3: answered 200, delivered 2 times, never acked nor dead-lettered"),
            std::string::npos)
      << errors();
}

TEST_F(AckQueueCheck, ADeliveryAfterItsAckFails) {
  finish();
  history_.deliver("m1", 1, 2, "r1b");
  EXPECT_NE(errors().find("m1: delivered (#2) after its ack of delivery #1"), std::string::npos)
      << errors();
}

TEST_F(AckQueueCheck, ADuplicateStoreForOneMsgIdFails) {
  finish();
  history_.deliver("m1", 7, 1, "r1-again");
  EXPECT_NE(errors().find("m1: stored 2 times for one msg_id"), std::string::npos) << errors();
}

TEST_F(AckQueueCheck, ADeliveriesCountThatDoesNotIncreaseFails) {
  finish();
  history_.publish("m4", Outcome::ok);
  history_.deliver("m4", 4, 1, "r4");
  history_.deliver("m4", 4, 1, "r4b");
  history_.ack({"r4b"}, Outcome::ok, 1);
  EXPECT_NE(errors().find("m4: delivery 1 was counted twice"), std::string::npos) << errors();
}

TEST_F(AckQueueCheck, ASkippedDeliveriesCountFailsUnlessAFetchWentUnanswered) {
  finish();
  history_.publish("m4", Outcome::ok);
  history_.deliver("m4", 4, 1, "r4");
  history_.deliver("m4", 4, 3, "r4c");
  history_.ack({"r4c"}, Outcome::ok, 1);
  EXPECT_NE(errors().find("1 delivery counts skipped (the first in m4)"), std::string::npos)
      << errors();
  history_.fetch_unknown(1);
  EXPECT_EQ(errors(), "");
}

TEST_F(AckQueueCheck, DeadLetteringBeforeMaxDeliveriesFails) {
  history_.ack({"r2b"}, Outcome::ok, 1);
  history_.dead_letter("m3");
  EXPECT_NE(errors().find("1 delivery counts skipped (the first in m3)"), std::string::npos)
      << errors();
}

TEST_F(AckQueueCheck, DeliveringPastMaxDeliveriesFails) {
  finish();
  history_.deliver("m3", 3, 4, "r3d");
  EXPECT_NE(errors().find("m3: delivered 4 times, more than max_deliveries 3"), std::string::npos)
      << errors();
}

TEST_F(AckQueueCheck, AckingTwiceOrAckingADeadLetterFails) {
  finish();
  history_.ack({"r3c"}, Outcome::ok, 1);
  EXPECT_NE(errors().find("m3: acked and dead-lettered"), std::string::npos) << errors();
  history_.ack({"r2b"}, Outcome::ok, 1);
  EXPECT_NE(errors().find("m2: acked 2 times"), std::string::npos) << errors();
}

TEST_F(AckQueueCheck, AnAnswerWhoseCountDisagreesWithItsStaleReceiptsFails) {
  finish();
  history_.ack({"r1", "r2b"}, Outcome::ok, 1, {"r1", "r2b"});
  EXPECT_NE(errors().find("an ack of 2 receipts with 2 stale answered 1"), std::string::npos)
      << errors();
}

TEST_F(AckQueueCheck, AnUnansweredAckOfTheLastDeliveryMayHaveAckedIt) {
  history_.ack({"r2b"}, Outcome::unknown);
  history_.deliver("m3", 3, 3, "r3c");
  history_.dead_letter("m3");
  EXPECT_EQ(errors(), "");
  history_.deliver("m2", 2, 3, "r2c");
  EXPECT_NE(errors().find("m2: answered 200, delivered 3 times, never acked"), std::string::npos)
      << errors();
}

TEST_F(AckQueueCheck, ARefusedPublishMustNotBeDelivered) {
  finish();
  history_.publish("m5", Outcome::refused);
  EXPECT_EQ(errors(), "");
  history_.deliver("m5", 5, 1, "r5");
  EXPECT_NE(errors().find("m5: delivered, but every publish of it was refused"), std::string::npos)
      << errors();
}

}  // namespace
}  // namespace gophermq::test
