// The total-queue checker (test/support/total_queue.cpp) on hand-made histories: the ones a broker
// that keeps its promises can produce pass, each broken promise fails.
#include "support/total_queue.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace gophermq::test
