// The operators' calls of the core: listing subscriptions within a pattern, unsubscribing by id,
// and purging pending messages, journaled so that a replay (or a checkpoint) keeps them purged.
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/broker.hpp"
#include "broker/journal.hpp"
#include "broker/subject.hpp"
#include "support/manual_clock.hpp"

namespace gophermq::broker {
namespace {

using std::chrono::milliseconds;
using test::ManualClock;

class Records final : public JournalSink {
 public:
  void append(const Record& record) override { encode(record, bytes.emplace_back()); }

  // Every record kept, decoded and applied to `copy`; false at the first one refused.
  bool replay_into(Broker& copy) const {
    for (const std::string& record_bytes : bytes) {
      RecordStorage storage;
      const std::optional<Record> record = decode(record_bytes, storage);
      if (!record || !copy.apply(*record)) {
        return false;
      }
    }
    return true;
  }

  std::vector<std::string> bytes;
};

std::vector<Message> messages(std::initializer_list<std::string_view> data) {
  std::vector<Message> out;
  for (const std::string_view text : data) {
    out.push_back(Message::create(text));
  }
  return out;
}

std::vector<std::string> fetch_all(Broker& broker, std::string_view subject, std::string_view id) {
  FetchedMessages fetched;
  EXPECT_EQ(broker.fetch(subject, id, 1000, fetched), FetchStatus::ok);
  std::vector<std::string> data;
  for (const Message& message : fetched) {
    data.emplace_back(message.data());
  }
  return data;
}

AckOptions ack_mode() {
  AckOptions options;
  options.ack = true;
  return options;
}

std::uint64_t purged(const Broker& broker) {
  return broker.totals().counters.dropped[static_cast<std::size_t>(DropReason::purged)];
}

TEST(PatternWithin, FollowsTheWildcardRules) {
  EXPECT_TRUE(pattern_within("a.b", "a.b"));
  EXPECT_TRUE(pattern_within("a.b", "a.*"));
  EXPECT_TRUE(pattern_within("a.b.c", "a.>"));
  EXPECT_TRUE(pattern_within("a.*", "a.>"));
  EXPECT_TRUE(pattern_within("a.>", "a.>"));
  EXPECT_TRUE(pattern_within("a.*.>", "a.>"));
  EXPECT_TRUE(pattern_within("a.*", "*.*"));
  EXPECT_TRUE(pattern_within("x", ">"));
  EXPECT_FALSE(pattern_within("a", "a.>"));
  EXPECT_FALSE(pattern_within("a.>", "a.*"));
  EXPECT_FALSE(pattern_within("a.*", "a.b"));
  EXPECT_FALSE(pattern_within("a.b", "a.c"));
  EXPECT_FALSE(pattern_within("a.b.c", "a.*"));
  EXPECT_FALSE(pattern_within("a.b", "a.b.c"));
  EXPECT_FALSE(pattern_within("ab", "a"));
}

// Brute force: a pattern lies within another exactly when every subject over a small alphabet
// that the first matches, the second matches too.
TEST(PatternWithin, AgreesWithEnumeratedSubjects) {
  const std::vector<std::string> tokens = {"a", "b", "*", ">"};
  std::vector<std::string> patterns;
  std::vector<std::string> subjects;
  for (std::size_t length = 1; length <= 3; ++length) {
    std::vector<std::string> level = {""};
    for (std::size_t i = 0; i < length; ++i) {
      std::vector<std::string> next;
      for (const std::string& prefix : level) {
        for (const std::string& token : tokens) {
          next.push_back(prefix.empty() ? token : prefix + "." + token);
        }
      }
      level = std::move(next);
    }
    for (const std::string& pattern : level) {
      if (is_valid_subject(pattern, SubjectUse::subscribe, 64)) {
        patterns.push_back(pattern);
      }
    }
  }
  // Subjects one token longer than any pattern, with a token no pattern names literally.
  for (std::size_t length = 1; length <= 4; ++length) {
    std::vector<std::string> level = {""};
    for (std::size_t i = 0; i < length; ++i) {
      std::vector<std::string> next;
      for (const std::string& prefix : level) {
        for (const std::string token : {"a", "b", "c"}) {
          next.push_back(prefix.empty() ? token : prefix + "." + token);
        }
      }
      level = std::move(next);
    }
    subjects.insert(subjects.end(), level.begin(), level.end());
  }
  for (const std::string& inner : patterns) {
    for (const std::string& outer : patterns) {
      bool within = true;
      for (const std::string& subject : subjects) {
        if (pattern_within(subject, inner) && !pattern_within(subject, outer)) {
          within = false;
        }
      }
      EXPECT_EQ(pattern_within(inner, outer), within) << inner << " within " << outer;
    }
  }
}

TEST(AdminList, ShowsTheTokenThatOwnsASubscription) {
  ManualClock clock;
  Broker broker(Limits{}, clock);
  ASSERT_EQ(broker.subscribe("a", "orders", std::nullopt, AckOptions{}, "alice"),
            SubscribeStatus::ok);
  ASSERT_EQ(broker.subscribe("b", "orders", std::nullopt), SubscribeStatus::ok);
  const SubscriptionList list = broker.list_subscriptions(">", 10);
  ASSERT_EQ(list.subscriptions.size(), 2U);
  EXPECT_EQ(list.subscriptions[0].owner, "alice");
  EXPECT_EQ(list.subscriptions[1].owner, "");
}

TEST(AdminList, ListsSubscriptionsWithinThePatternSortedById) {
  ManualClock clock;
  Broker broker(Limits{}, clock);
  ASSERT_EQ(broker.subscribe("c", "orders.eu", std::nullopt), SubscribeStatus::ok);
  ASSERT_EQ(broker.subscribe("a", "orders.*", "workers"), SubscribeStatus::ok);
  ASSERT_EQ(broker.subscribe("b", "orders.>", std::nullopt), SubscribeStatus::ok);
  ASSERT_EQ(broker.subscribe("d", "audit", std::nullopt, ack_mode()), SubscribeStatus::ok);
  ASSERT_EQ(broker.publish("orders.eu", messages({"1", "2"})), PublishStatus::ok);

  const SubscriptionList within = broker.list_subscriptions("orders.*", 10);
  ASSERT_EQ(within.status, AdminStatus::ok);
  ASSERT_EQ(within.subscriptions.size(), 2U);  // orders.> does not lie within orders.*
  EXPECT_EQ(within.subscriptions[0].id, "a");
  EXPECT_EQ(within.subscriptions[0].group, "workers");
  EXPECT_EQ(within.subscriptions[0].pending, 2U);
  EXPECT_EQ(within.subscriptions[1].id, "c");
  EXPECT_FALSE(within.truncated);

  const SubscriptionList all = broker.list_subscriptions(">", 10);
  ASSERT_EQ(all.subscriptions.size(), 4U);
  EXPECT_TRUE(all.subscriptions[3].ack);
  EXPECT_FALSE(all.subscriptions[2].ack);

  const SubscriptionList two = broker.list_subscriptions(">", 2);
  ASSERT_EQ(two.subscriptions.size(), 2U);
  EXPECT_EQ(two.subscriptions[0].id, "a");
  EXPECT_EQ(two.subscriptions[1].id, "b");
  EXPECT_TRUE(two.truncated);

  EXPECT_EQ(broker.list_subscriptions("orders..eu", 10).status, AdminStatus::invalid_subject);
  EXPECT_EQ(broker.list_subscriptions(">.a", 10).status, AdminStatus::invalid_subject);
  EXPECT_EQ(broker.list_subscriptions(std::string(300, 'a'), 10).status,
            AdminStatus::subject_too_long);
}

TEST(AdminList, CountsPendingAndInFlightAndIdleTime) {
  ManualClock clock;
  Broker broker(Limits{}, clock);
  ASSERT_EQ(broker.subscribe("s", "jobs", std::nullopt, ack_mode()), SubscribeStatus::ok);
  ASSERT_EQ(broker.publish("jobs", messages({"1", "2", "3"})), PublishStatus::ok);
  clock.advance(milliseconds(1500));
  EXPECT_EQ(broker.list_subscriptions("jobs", 1).subscriptions.at(0).idle, milliseconds(1500));
  Deliveries out;
  ASSERT_EQ(broker.fetch_deliveries("jobs", "s", 2, out), FetchStatus::ok);
  clock.advance(milliseconds(250));
  const SubscriptionInfo info = broker.list_subscriptions("jobs", 1).subscriptions.at(0);
  EXPECT_EQ(info.pending, 1U);
  EXPECT_EQ(info.in_flight, 2U);
  EXPECT_EQ(info.idle, milliseconds(250));
}

TEST(AdminUnsubscribe, RemovesAnySubscriptionByIdAndDropsItsMessages) {
  Broker broker(Limits{});
  ASSERT_EQ(broker.subscribe("s", "a.*", std::nullopt), SubscribeStatus::ok);
  ASSERT_EQ(broker.publish("a.b", messages({"x"})), PublishStatus::ok);
  EXPECT_EQ(broker.unsubscribe("nope"), UnsubscribeStatus::bad_id);
  EXPECT_EQ(broker.unsubscribe("s"), UnsubscribeStatus::ok);
  EXPECT_EQ(broker.totals().subscriptions, 0U);
  EXPECT_EQ(broker.totals().pending_messages, 0U);
  EXPECT_EQ(broker.totals().counters.dropped[static_cast<std::size_t>(DropReason::unsubscribe)],
            1U);
  EXPECT_EQ(broker.unsubscribe("s"), UnsubscribeStatus::bad_id);
}

TEST(AdminPurge, DropsOnlyMessagesPublishedToMatchingSubjects) {
  ManualClock clock;
  Broker broker(Limits{.message_ttl = milliseconds(10000)}, clock);
  ASSERT_EQ(broker.subscribe("all", "orders.>", std::nullopt), SubscribeStatus::ok);
  ASSERT_EQ(broker.subscribe("eu", "orders.eu", std::nullopt), SubscribeStatus::ok);
  ASSERT_EQ(broker.subscribe("us", "orders.us", std::nullopt), SubscribeStatus::ok);
  ASSERT_EQ(broker.publish("orders.eu", messages({"e1"})), PublishStatus::ok);
  clock.advance(milliseconds(5000));
  ASSERT_EQ(broker.publish("orders.us", messages({"u1"})), PublishStatus::ok);
  ASSERT_EQ(broker.publish("orders.eu", messages({"e2"})), PublishStatus::ok);

  const PurgeResult result = broker.purge("orders.eu");
  EXPECT_EQ(result.status, AdminStatus::ok);
  EXPECT_EQ(result.purged, 4U);  // two from each queue that holds orders.eu messages
  EXPECT_EQ(purged(broker), 4U);
  EXPECT_EQ(broker.totals().pending_messages, 2U);
  // The message kept keeps its publish stamp: it expires on time, not earlier nor later.
  clock.advance(milliseconds(9999));
  broker.expire();
  EXPECT_EQ(broker.totals().pending_messages, 2U);
  clock.advance(milliseconds(1));
  broker.expire();
  EXPECT_EQ(broker.totals().pending_messages, 0U);

  EXPECT_EQ(broker.purge("orders.>.x").status, AdminStatus::invalid_subject);
  EXPECT_EQ(broker.purge("").status, AdminStatus::invalid_subject);
}

TEST(AdminPurge, LeavesInFlightMessagesAndTakesThoseAgainPending) {
  ManualClock clock;
  Broker broker(Limits{}, clock);
  ASSERT_EQ(broker.subscribe("s", "jobs.*", std::nullopt, ack_mode()), SubscribeStatus::ok);
  ASSERT_EQ(broker.publish("jobs.a", messages({"1", "2", "3"})), PublishStatus::ok);
  ASSERT_EQ(broker.publish("jobs.b", messages({"4"})), PublishStatus::ok);
  Deliveries out;
  ASSERT_EQ(broker.fetch_deliveries("jobs.*", "s", 2, out), FetchStatus::ok);
  const std::vector<Receipt> first = {out.at(0).receipt};
  ASSERT_EQ(broker.nack("jobs.*", "s", first, milliseconds(0)).applied, 1U);

  // "1" is pending again, "2" in flight, "3" never delivered; "4" went to jobs.b.
  EXPECT_EQ(broker.purge("jobs.a").purged, 2U);
  const SubscriptionInfo info = broker.list_subscriptions(">", 1).subscriptions.at(0);
  EXPECT_EQ(info.in_flight, 1U);
  EXPECT_EQ(info.pending, 1U);
  Deliveries rest;
  ASSERT_EQ(broker.fetch_deliveries("jobs.*", "s", 10, rest), FetchStatus::ok);
  ASSERT_EQ(rest.size(), 1U);
  EXPECT_EQ(rest[0].message.data(), "4");
}

TEST(AdminPurge, PurgesOneSubscriptionsQueueById) {
  Broker broker(Limits{});
  ASSERT_EQ(broker.subscribe("s", "a", std::nullopt), SubscribeStatus::ok);
  ASSERT_EQ(broker.subscribe("t", "a", std::nullopt), SubscribeStatus::ok);
  ASSERT_EQ(broker.publish("a", messages({"1", "2"})), PublishStatus::ok);
  const PurgeResult result = broker.purge_subscription("s");
  EXPECT_EQ(result.status, AdminStatus::ok);
  EXPECT_EQ(result.purged, 2U);
  EXPECT_TRUE(fetch_all(broker, "a", "s").empty());
  EXPECT_EQ(fetch_all(broker, "a", "t"), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(broker.purge_subscription("nope").status, AdminStatus::bad_id);
}

// Whatever a purge removed stays removed in a core rebuilt from the journal, or from a checkpoint
// taken after it, and the two rebuild the same state.
TEST(AdminPurge, ReplayAndCheckpointKeepItPurged) {
  ManualClock clock;
  const Limits limits{.message_ttl = milliseconds(60000)};
  Broker broker(limits, clock);
  Records journal;
  broker.set_journal(&journal);
  ASSERT_EQ(broker.subscribe("w", "t.*", std::nullopt), SubscribeStatus::ok);
  ASSERT_EQ(broker.subscribe("g1", "t.>", "group"), SubscribeStatus::ok);
  ASSERT_EQ(broker.subscribe("k", "t.*", std::nullopt, ack_mode()), SubscribeStatus::ok);
  ASSERT_EQ(broker.publish("t.a", messages({"1", "2"})), PublishStatus::ok);
  ASSERT_EQ(broker.publish("t.b", messages({"3"})), PublishStatus::ok);
  ASSERT_EQ(broker.publish("t.a", messages({"4"})), PublishStatus::ok);
  Deliveries out;
  ASSERT_EQ(broker.fetch_deliveries("t.*", "k", 1, out), FetchStatus::ok);
  ASSERT_EQ(
      broker.nack("t.*", "k", std::vector<Receipt>{out.at(0).receipt}, milliseconds(0)).applied,
      1U);
  ASSERT_EQ(broker.purge("t.a").purged, 9U);
  ASSERT_EQ(broker.purge_subscription("w").purged, 1U);

  Broker replayed(limits, clock);
  ASSERT_TRUE(journal.replay_into(replayed));
  EXPECT_EQ(replayed.dump(), broker.dump());
  EXPECT_EQ(replayed.totals().pending_messages, 2U);

  Records snapshot;
  broker.checkpoint(snapshot);
  Broker restored(limits, clock);
  ASSERT_TRUE(snapshot.replay_into(restored));
  EXPECT_EQ(restored.dump(), broker.dump());
}

TEST(AdminPurge, ReplayRefusesAPurgeOfMessagesTheQueueDoesNotHold) {
  Broker broker(Limits{});
  ASSERT_EQ(broker.subscribe("s", "a", std::nullopt), SubscribeStatus::ok);
  ASSERT_EQ(broker.publish("a", messages({"1", "2"})), PublishStatus::ok);
  Record record;
  record.type = RecordType::purge;
  record.reason = static_cast<std::uint8_t>(DropReason::purged);
  record.subject = "a";
  record.id = "s";
  const std::vector<std::uint64_t> unknown = {2, 3};
  record.numbers = unknown;
  EXPECT_FALSE(broker.apply(record));
  EXPECT_EQ(broker.totals().pending_messages, 2U);
  const std::vector<std::uint64_t> second = {2};
  record.numbers = second;
  record.reason = static_cast<std::uint8_t>(DropReason::unsubscribe);
  EXPECT_FALSE(broker.apply(record));
  record.reason = static_cast<std::uint8_t>(DropReason::purged);
  EXPECT_TRUE(broker.apply(record));
  EXPECT_EQ(fetch_all(broker, "a", "s"), (std::vector<std::string>{"1"}));

  // Out of order or repeated seqs are not a record the core writes.
  std::string bytes;
  const std::vector<std::uint64_t> falling = {3, 2};
  record.numbers = falling;
  encode(record, bytes);
  RecordStorage storage;
  EXPECT_FALSE(decode(bytes, storage).has_value());
}

}  // namespace
}  // namespace gophermq::broker
