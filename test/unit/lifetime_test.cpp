// Waiting fetches, expiry and stats of the broker core, driven by a clock the tests move by hand.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "broker/broker.hpp"
#include "support/broker_calls.hpp"
#include "support/manual_clock.hpp"

namespace gophermq::broker {
namespace {

using namespace std::chrono_literals;
using test::fetch_all;
using test::ManualClock;
using test::publish;
using test::Texts;

class RecordingWaiter final : public Waiter {
 public:
  void wake() override { ++wakes; }
  [[nodiscard]] Texts texts() const { return test::texts_of(messages); }
  int wakes = 0;
};

// Moves the clock on by `by` and runs the expiry sweep: what a broker's timer does.
Totals totals_after(ManualClock& clock, Broker& broker, std::chrono::milliseconds by) {
  clock.advance(by);
  broker.expire();
  return broker.totals();
}

std::uint64_t dropped(const Broker& broker, DropReason reason) {
  return broker.totals().counters.dropped[static_cast<std::size_t>(reason)];
}

TEST(WaitingFetch, ReturnsAtOnceWhenMessagesArePending) {
  Broker broker(Limits{});
  broker.subscribe("a", "s", std::nullopt);
  publish(broker, "s", {"1"});
  RecordingWaiter waiter;
  EXPECT_EQ(broker.fetch_or_wait("s", "a", 10, waiter), FetchStatus::ok);
  EXPECT_EQ(waiter.texts(), Texts{"1"});
  EXPECT_EQ(waiter.wakes, 0);
  EXPECT_EQ(broker.totals().waiting_fetches, 0U);
}

TEST(WaitingFetch, PublishWakesWaitersInArrivalOrderEachWithAtMostMax) {
  Broker broker(Limits{});
  broker.subscribe("a", "s", std::nullopt);
  RecordingWaiter first;
  RecordingWaiter second;
  ASSERT_EQ(broker.fetch_or_wait("s", "a", 2, first), FetchStatus::waiting);
  ASSERT_EQ(broker.fetch_or_wait("s", "a", 2, second), FetchStatus::waiting);
  EXPECT_EQ(broker.totals().waiting_fetches, 2U);
  ASSERT_EQ(publish(broker, "s", {"1", "2", "3"}), PublishStatus::ok);
  EXPECT_EQ(first.texts(), (Texts{"1", "2"}));
  EXPECT_EQ(second.texts(), Texts{"3"});
  EXPECT_EQ(first.wakes + second.wakes, 2);
  EXPECT_EQ(broker.totals().waiting_fetches, 0U);
  EXPECT_EQ(broker.totals().pending_messages, 0U);
  EXPECT_EQ(broker.totals().counters.delivered, 3U);
}

TEST(WaitingFetch, GroupMessageWakesOneMemberOnly) {
  Broker broker(Limits{});
  broker.subscribe("w1", "jobs", "workers");
  broker.subscribe("w2", "jobs", "workers");
  broker.subscribe("audit", "jobs", std::nullopt);
  RecordingWaiter w1;
  RecordingWaiter w2;
  RecordingWaiter audit;
  broker.fetch_or_wait("jobs", "w1", 10, w1);
  broker.fetch_or_wait("jobs", "w2", 10, w2);
  broker.fetch_or_wait("jobs", "audit", 10, audit);
  publish(broker, "jobs", {"job"});
  EXPECT_EQ(w1.texts(), Texts{"job"});
  EXPECT_EQ(w2.wakes, 0);
  EXPECT_EQ(audit.texts(), Texts{"job"});
  EXPECT_EQ(broker.totals().waiting_fetches, 1U);
  EXPECT_TRUE(broker.cancel_wait(w2));
}

TEST(WaitingFetch, CancelEndsTheWaitAndLeavesLaterMessagesQueued) {
  Broker broker(Limits{});
  broker.subscribe("a", "s", std::nullopt);
  RecordingWaiter waiter;
  broker.fetch_or_wait("s", "a", 10, waiter);
  EXPECT_TRUE(broker.cancel_wait(waiter));
  EXPECT_FALSE(broker.cancel_wait(waiter));
  publish(broker, "s", {"kept"});
  EXPECT_EQ(waiter.wakes, 0);
  EXPECT_EQ(fetch_all(broker, "s", "a"), Texts{"kept"});
}

TEST(WaitingFetch, CancelAfterWakeReportsTheWaitAlreadyOver) {
  Broker broker(Limits{});
  broker.subscribe("a", "s", std::nullopt);
  RecordingWaiter waiter;
  broker.fetch_or_wait("s", "a", 10, waiter);
  publish(broker, "s", {"1"});
  EXPECT_FALSE(broker.cancel_wait(waiter));
  EXPECT_EQ(waiter.texts(), Texts{"1"});
}

TEST(WaitingFetch, UnsubscribeWakesOnlyThatSubscriptionsWaitersEmpty) {
  Broker broker(Limits{});
  broker.subscribe("w1", "jobs", "workers");
  broker.subscribe("w2", "jobs", "workers");
  RecordingWaiter w1;
  RecordingWaiter w2;
  broker.fetch_or_wait("jobs", "w1", 10, w1);
  broker.fetch_or_wait("jobs", "w2", 10, w2);
  ASSERT_EQ(broker.unsubscribe("jobs", "w1"), UnsubscribeStatus::ok);
  EXPECT_EQ(w1.wakes, 1);
  EXPECT_TRUE(w1.messages.empty());
  EXPECT_EQ(w2.wakes, 0);
  publish(broker, "jobs", {"next"});
  EXPECT_EQ(w2.texts(), Texts{"next"});
}

TEST(WaitingFetch, WakeAllEndsEveryWaitEmpty) {
  Broker broker(Limits{});
  broker.subscribe("a", "s", std::nullopt);
  broker.subscribe("g", "t", "group");
  RecordingWaiter a;
  RecordingWaiter g;
  broker.fetch_or_wait("s", "a", 10, a);
  broker.fetch_or_wait("t", "g", 10, g);
  broker.wake_all_waiters();
  EXPECT_EQ(a.wakes, 1);
  EXPECT_EQ(g.wakes, 1);
  EXPECT_EQ(broker.totals().waiting_fetches, 0U);
}

TEST(WaitingFetch, ErrorsAreReportedWithoutWaiting) {
  Broker broker(Limits{});
  broker.subscribe("a", "s", std::nullopt);
  RecordingWaiter waiter;
  EXPECT_EQ(broker.fetch_or_wait("s", "nobody", 10, waiter), FetchStatus::bad_id);
  EXPECT_EQ(broker.fetch_or_wait("s..", "a", 10, waiter), FetchStatus::invalid_subject);
  EXPECT_EQ(broker.totals().waiting_fetches, 0U);
}

TEST(SubscriberTtl, IdleSubscriptionIsRemovedAndItsMessagesCountedAsDropped) {
  ManualClock clock;
  Broker broker(Limits{.subscriber_ttl = 10s}, clock);
  broker.subscribe("idle", "s", std::nullopt);
  broker.subscribe("busy", "s", std::nullopt);
  publish(broker, "s", {"1", "2"});
  clock.advance(6s);
  fetch_all(broker, "s", "busy");
  EXPECT_EQ(totals_after(clock, broker, 4s).subscriptions, 1U);
  EXPECT_EQ(dropped(broker, DropReason::subscriber_ttl), 2U);
  EXPECT_EQ(broker.totals().pending_messages, 0U);
  FetchedMessages out;
  EXPECT_EQ(broker.fetch("s", "idle", 10, out), FetchStatus::bad_id);
  EXPECT_EQ(totals_after(clock, broker, 6s).subscriptions, 0U);
  EXPECT_EQ(broker.totals().subjects, 0U);
}

TEST(SubscriberTtl, JustBeforeTheDeadlineNothingExpires) {
  ManualClock clock;
  Broker broker(Limits{.subscriber_ttl = 10s}, clock);
  broker.subscribe("a", "s", std::nullopt);
  EXPECT_EQ(totals_after(clock, broker, 9999ms).subscriptions, 1U);
}

TEST(SubscriberTtl, AWaitingFetchKeepsTheSubscriptionAlive) {
  ManualClock clock;
  Broker broker(Limits{.subscriber_ttl = 10s}, clock);
  broker.subscribe("a", "s", std::nullopt);
  RecordingWaiter waiter;
  broker.fetch_or_wait("s", "a", 10, waiter);
  EXPECT_EQ(totals_after(clock, broker, 30s).subscriptions, 1U);
  broker.cancel_wait(waiter);  // ending the wait counts as activity
  EXPECT_EQ(totals_after(clock, broker, 9s).subscriptions, 1U);
  EXPECT_EQ(totals_after(clock, broker, 1s).subscriptions, 0U);
}

TEST(SubscriberTtl, GroupQueueGoesWithItsLastExpiredMember) {
  ManualClock clock;
  Broker broker(Limits{.subscriber_ttl = 10s}, clock);
  broker.subscribe("w1", "jobs", "workers");
  broker.subscribe("w2", "jobs", "workers");
  publish(broker, "jobs", {"1"});
  clock.advance(5s);
  fetch_all(broker, "jobs", "w2");
  publish(broker, "jobs", {"2"});
  EXPECT_EQ(totals_after(clock, broker, 5s).subscriptions, 1U);
  EXPECT_EQ(broker.totals().pending_messages, 1U);  // the group's queue outlives w1
  EXPECT_EQ(totals_after(clock, broker, 5s).pending_messages, 0U);
  EXPECT_EQ(dropped(broker, DropReason::subscriber_ttl), 1U);
}

TEST(SubscriberTtl, ZeroMeansNever) {
  ManualClock clock;
  Broker broker(Limits{.subscriber_ttl = 0s}, clock);
  broker.subscribe("a", "s", std::nullopt);
  EXPECT_EQ(totals_after(clock, broker, std::chrono::hours(24 * 365)).subscriptions, 1U);
}

TEST(MessageTtl, OldMessagesAreDroppedOnExpiryAndNeverFetched) {
  ManualClock clock;
  Broker broker(Limits{.subscriber_ttl = 0s, .message_ttl = 1000ms}, clock);
  broker.subscribe("a", "s", std::nullopt);
  broker.subscribe("b", "s", std::nullopt);
  publish(broker, "s", {"old"});
  clock.advance(500ms);
  publish(broker, "s", {"new"});
  EXPECT_EQ(totals_after(clock, broker, 500ms).pending_messages, 2U);  // "new" for each
  EXPECT_EQ(dropped(broker, DropReason::message_ttl), 2U);
  EXPECT_EQ(fetch_all(broker, "s", "a"), Texts{"new"});
  clock.advance(500ms);
  // No sweep ran, but a fetch never hands out an expired message.
  EXPECT_EQ(fetch_all(broker, "s", "b"), Texts{});
  EXPECT_EQ(dropped(broker, DropReason::message_ttl), 3U);
  EXPECT_EQ(broker.totals().pending_bytes, 0U);
}

TEST(MessageTtl, MessagesInOneTickShareAStampAndNeverLeaveEarly) {
  ManualClock clock;
  Broker broker(Limits{.subscriber_ttl = 0s, .message_ttl = 1000ms}, clock);  // tick 10 ms
  broker.subscribe("a", "s", std::nullopt);
  publish(broker, "s", {"1"});
  clock.advance(5ms);
  publish(broker, "s", {"2"});
  clock.advance(20ms);
  publish(broker, "s", {"3"});
  clock.advance(975ms);  // "1" is 1000 ms old, but shares its stamp with "2" (5 ms younger)
  broker.expire();
  EXPECT_EQ(broker.totals().pending_messages, 3U);
  EXPECT_EQ(totals_after(clock, broker, 5ms).pending_messages, 1U);
  FetchedMessages out;
  broker.fetch("s", "a", 1, out);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out.front().data(), "3");
}

TEST(MessageTtl, PartialFetchKeepsTheStampsInStep) {
  ManualClock clock;
  Broker broker(Limits{.subscriber_ttl = 0s, .message_ttl = 1000ms}, clock);
  broker.subscribe("a", "s", std::nullopt);
  publish(broker, "s", {"1", "2"});
  clock.advance(100ms);
  publish(broker, "s", {"3"});
  FetchedMessages out;
  broker.fetch("s", "a", 1, out);
  clock.advance(900ms);
  broker.expire();
  EXPECT_EQ(fetch_all(broker, "s", "a"), Texts{"3"});
  EXPECT_EQ(dropped(broker, DropReason::message_ttl), 1U);
}

TEST(SaturatingAdd, AddsExactlyWhenTheSumFitsAndStopsAtTheLastTimePointOtherwise) {
  const TimePoint start{std::chrono::hours(1)};
  EXPECT_EQ(saturating_add(start, 1500ms), start + 1500ms);
  EXPECT_EQ(saturating_add(start, 0ms), start);
  EXPECT_EQ(saturating_add(TimePoint{}, std::chrono::hours(2'562'047)),
            TimePoint{} + std::chrono::hours(2'562'047));
  for (const auto length : {std::chrono::milliseconds(std::chrono::hours(2'562'048)),
                            std::chrono::milliseconds(std::chrono::hours(3'000'000)),
                            std::chrono::milliseconds::max()}) {
    EXPECT_EQ(saturating_add(start, length), TimePoint::max());
    EXPECT_EQ(saturating_add(TimePoint{}, length), TimePoint::max());
  }
  const TimePoint last_fitting = TimePoint::max() - 1ms;
  EXPECT_EQ(saturating_add(last_fitting - 1ms, 1ms), last_fitting);
  EXPECT_EQ(saturating_add(last_fitting, 2ms), TimePoint::max());
  // Before the clock's epoch the room is larger, not smaller.
  const TimePoint before_epoch{-std::chrono::hours(1)};
  EXPECT_EQ(saturating_add(before_epoch, 2h), TimePoint{} + 1h);
  EXPECT_EQ(saturating_add(before_epoch, std::chrono::milliseconds::max()), TimePoint::max());
}

// Every TTL the config accepts (up to the largest count of milliseconds), including those whose
// sum with a time point does not fit in steady_clock's nanoseconds.
const std::chrono::milliseconds kHugeTtls[] = {
    std::chrono::hours(2'562'047),       std::chrono::hours(2'562'048),
    std::chrono::hours(3'000'000),       std::chrono::hours(24 * 365 * 292),
    std::chrono::hours(24 * 365 * 1000), std::chrono::milliseconds::max()};

TEST(HugeTtls, MessageTtlOfAnySizeNeverDropsEarly) {
  for (const auto ttl : kHugeTtls) {
    SCOPED_TRACE(ttl.count());
    ManualClock clock;
    Broker broker(Limits{.subscriber_ttl = 0s, .message_ttl = ttl}, clock);
    broker.subscribe("a", "s", std::nullopt);
    publish(broker, "s", {"1"});
    for (int round = 0; round < 3; ++round) {
      clock.advance(std::chrono::hours(24 * 365 * 10));
      publish(broker, "s", {"later"});
      broker.expire();
    }
    EXPECT_EQ(dropped(broker, DropReason::message_ttl), 0U);
    EXPECT_EQ(fetch_all(broker, "s", "a"), (Texts{"1", "later", "later", "later"}));
  }
}

TEST(HugeTtls, SubscriberTtlOfAnySizeNeverRemovesEarly) {
  for (const auto ttl : kHugeTtls) {
    SCOPED_TRACE(ttl.count());
    ManualClock clock;
    Broker broker(Limits{.subscriber_ttl = ttl}, clock);
    broker.subscribe("idle", "s", std::nullopt);
    publish(broker, "s", {"1"});
    for (int round = 0; round < 3; ++round) {
      clock.advance(std::chrono::hours(24 * 365 * 10));
      broker.expire();
    }
    EXPECT_EQ(broker.totals().subscriptions, 1U);
    EXPECT_EQ(dropped(broker, DropReason::subscriber_ttl), 0U);
    EXPECT_EQ(fetch_all(broker, "s", "idle"), Texts{"1"});
  }
}

// The bound still holds exactly for a TTL whose deadline fits: saturation changes only the sums
// that would overflow.
TEST(HugeTtls, ALargeTtlThatFitsStillExpiresOnTime) {
  ManualClock clock;
  const auto ttl = std::chrono::hours(24 * 365 * 100);
  Broker broker(Limits{.subscriber_ttl = ttl}, clock);
  broker.subscribe("idle", "s", std::nullopt);
  EXPECT_EQ(totals_after(clock, broker, ttl - 1ms).subscriptions, 1U);
  EXPECT_EQ(totals_after(clock, broker, 1ms).subscriptions, 0U);
}

TEST(Drops, EachReasonIsCountedSeparately) {
  ManualClock clock;
  Broker broker(Limits{.subscriber_ttl = 10s, .message_ttl = 8s}, clock);
  broker.subscribe("leaver", "s", std::nullopt);
  broker.subscribe("stale", "s", std::nullopt);
  publish(broker, "s", {"1"});
  broker.unsubscribe("s", "leaver");
  clock.advance(8s);
  broker.expire();
  publish(broker, "s", {"2"});
  clock.advance(2s);
  broker.expire();
  EXPECT_EQ(dropped(broker, DropReason::unsubscribe), 1U);
  EXPECT_EQ(dropped(broker, DropReason::message_ttl), 1U);
  EXPECT_EQ(dropped(broker, DropReason::subscriber_ttl), 1U);
  EXPECT_EQ(broker.totals().subscriptions, 0U);
  EXPECT_EQ(broker.totals().pending_messages, 0U);
}

TEST(Stats, TopSubjectsByPendingThenNameWithinTheLimit) {
  Broker broker(Limits{});
  broker.subscribe("a", "quiet", std::nullopt);
  broker.subscribe("b", "busy", std::nullopt);
  broker.subscribe("c", "busy", "workers");
  broker.subscribe("d", "alpha", std::nullopt);
  broker.subscribe("e", "beta", std::nullopt);
  publish(broker, "busy", {"12", "345"});
  publish(broker, "alpha", {"x"});
  publish(broker, "beta", {"y"});
  const auto rows = broker.top_subjects(3);
  ASSERT_EQ(rows.size(), 3U);
  EXPECT_EQ(rows[0].subject, "busy");
  EXPECT_EQ(rows[0].subscriptions, 2U);
  EXPECT_EQ(rows[0].groups, 1U);
  EXPECT_EQ(rows[0].pending_messages, 4U);
  EXPECT_EQ(rows[0].pending_bytes, 10U);
  EXPECT_EQ(rows[1].subject, "alpha");
  EXPECT_EQ(rows[2].subject, "beta");
  EXPECT_EQ(broker.top_subjects(100).size(), 4U);
  EXPECT_TRUE(broker.top_subjects(0).empty());
}

TEST(Stats, PerSubjectCountsFollowFetchesAndDrops) {
  Broker broker(Limits{});
  broker.subscribe("a", "s.*", std::nullopt);
  broker.subscribe("b", "s.*", std::nullopt);
  publish(broker, "s.x", {"abc"});
  fetch_all(broker, "s.*", "a");
  broker.unsubscribe("s.*", "b");
  broker.subscribe("c", "s.*", std::nullopt);
  const auto rows = broker.top_subjects(1);
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0].pending_messages, 0U);
  EXPECT_EQ(rows[0].pending_bytes, 0U);
  EXPECT_EQ(rows[0].subscriptions, 2U);
}

}  // namespace
}  // namespace gophermq::broker
