#include "broker/broker.hpp"

#include <gtest/gtest.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "support/broker_calls.hpp"
#include "support/manual_clock.hpp"
#include "support/sanitizers.hpp"

#ifdef GOPHERMQ_TEST_SANITIZED
// From the sanitizers' common runtime (GCC 12 ships no header declaring it).
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();
#endif

namespace gophermq::broker {
namespace {

using test::fetch_all;
using test::messages;
using test::publish;
using test::Texts;

TEST(Broker, FansOutToEveryUngroupedSubscriberInPublishOrder) {
  Broker broker(Limits{});
  ASSERT_EQ(broker.subscribe("a", "orders", std::nullopt), SubscribeStatus::ok);
  ASSERT_EQ(broker.subscribe("b", "orders", std::nullopt), SubscribeStatus::ok);
  EXPECT_EQ(publish(broker, "orders", "1"), PublishStatus::ok);
  EXPECT_EQ(publish(broker, "orders", "2"), PublishStatus::ok);
  EXPECT_EQ(fetch_all(broker, "orders", "a"), (Texts{"1", "2"}));
  EXPECT_EQ(fetch_all(broker, "orders", "b"), (Texts{"1", "2"}));
}

TEST(Broker, FetchDrainsTheQueue) {
  Broker broker(Limits{});
  broker.subscribe("a", "s", std::nullopt);
  publish(broker, "s", "x");
  EXPECT_EQ(fetch_all(broker, "s", "a"), Texts{"x"});
  EXPECT_EQ(fetch_all(broker, "s", "a"), Texts{});
}

TEST(Broker, FetchTakesAtMostMaxOldestFirst) {
  Broker broker(Limits{});
  broker.subscribe("a", "s", std::nullopt);
  const auto batch = messages({"1", "2", "3"});
  ASSERT_EQ(broker.publish("s", batch), PublishStatus::ok);
  EXPECT_EQ(fetch_all(broker, "s", "a", 2), (Texts{"1", "2"}));
  EXPECT_EQ(fetch_all(broker, "s", "a", 2), Texts{"3"});
}

TEST(Broker, PublishWithoutSubscribersIsRefused) {
  Broker broker(Limits{});
  EXPECT_EQ(publish(broker, "nobody", "x"), PublishStatus::no_subscribers);
  EXPECT_EQ(broker.totals().counters.published, 0U);
}

TEST(Broker, RejectsInvalidSubjectsEverywhere) {
  Broker broker(Limits{});
  FetchedMessages out;
  EXPECT_EQ(broker.subscribe("a", "", std::nullopt), SubscribeStatus::invalid_subject);
  EXPECT_EQ(broker.subscribe("a", "a..b", std::nullopt), SubscribeStatus::invalid_subject);
  EXPECT_EQ(publish(broker, "a b", "x"), PublishStatus::invalid_subject);
  EXPECT_EQ(publish(broker, "a.*", "x"), PublishStatus::invalid_subject);
  EXPECT_EQ(broker.fetch("", "a", 1, out), FetchStatus::invalid_subject);
  EXPECT_EQ(broker.unsubscribe("a.", "a"), UnsubscribeStatus::invalid_subject);
}

TEST(Broker, FetchWithUnknownIdOrOtherSubjectIsBadId) {
  Broker broker(Limits{});
  broker.subscribe("a", "s", std::nullopt);
  FetchedMessages out;
  EXPECT_EQ(broker.fetch("s", "zzz", 1, out), FetchStatus::bad_id);
  EXPECT_EQ(broker.fetch("other", "a", 1, out), FetchStatus::bad_id);
}

TEST(Broker, OverflowOnMessageCountStoresNothingForAnySubscriber) {
  Broker broker(Limits{.max_pending = 3});
  broker.subscribe("a", "s", std::nullopt);
  broker.subscribe("b", "s", std::nullopt);
  EXPECT_EQ(publish(broker, "s", "1"), PublishStatus::ok);        // 2 stored
  EXPECT_EQ(publish(broker, "s", "2"), PublishStatus::overflow);  // would be 4
  EXPECT_EQ(broker.totals().pending_messages, 2U);
  EXPECT_EQ(fetch_all(broker, "s", "a"), Texts{"1"});
  EXPECT_EQ(fetch_all(broker, "s", "b"), Texts{"1"});
}

TEST(Broker, OverflowOnBytesStoresNothing) {
  Broker broker(Limits{.max_pending_bytes = 10});
  broker.subscribe("a", "s", std::nullopt);
  EXPECT_EQ(publish(broker, "s", "123456"), PublishStatus::ok);
  EXPECT_EQ(publish(broker, "s", "12345"), PublishStatus::overflow);
  EXPECT_EQ(publish(broker, "s", "1234"), PublishStatus::ok);
  EXPECT_EQ(broker.totals().pending_bytes, 10U);
}

TEST(Broker, MessageOverMaxMessageBytesIsRefusedWholeBatch) {
  Broker broker(Limits{.max_message_bytes = 4});
  broker.subscribe("a", "s", std::nullopt);
  EXPECT_EQ(publish(broker, "s", "12345"), PublishStatus::message_too_large);
  const auto batch = messages({"1", "12345"});
  EXPECT_EQ(broker.publish("s", batch), PublishStatus::message_too_large);
  EXPECT_EQ(publish(broker, "s", "1234"), PublishStatus::ok);
  EXPECT_EQ(fetch_all(broker, "s", "a"), Texts{"1234"});
}

TEST(Broker, BatchIsAllOrNothing) {
  Broker broker(Limits{.max_pending = 2});
  broker.subscribe("a", "s", std::nullopt);
  const auto three = messages({"1", "2", "3"});
  EXPECT_EQ(broker.publish("s", three), PublishStatus::overflow);
  EXPECT_EQ(broker.totals().pending_messages, 0U);
  const auto two = messages({"1", "2"});
  EXPECT_EQ(broker.publish("s", two), PublishStatus::ok);
  EXPECT_EQ(fetch_all(broker, "s", "a"), (Texts{"1", "2"}));
}

TEST(Broker, PendingCountsReturnToZero) {
  Broker broker(Limits{});
  broker.subscribe("a", "s", std::nullopt);
  broker.subscribe("b", "s.*", std::nullopt);
  publish(broker, "s", "abc");
  publish(broker, "s.x", "defg");
  EXPECT_EQ(broker.totals().pending_messages, 2U);
  EXPECT_EQ(broker.totals().pending_bytes, 7U);
  fetch_all(broker, "s", "a");
  fetch_all(broker, "s.*", "b");
  const Totals totals = broker.totals();
  EXPECT_EQ(totals.pending_messages, 0U);
  EXPECT_EQ(totals.pending_bytes, 0U);
  EXPECT_EQ(totals.counters.published, 2U);
  EXPECT_EQ(totals.counters.delivered, 2U);
}

TEST(Broker, QueueGroupDeliversEachMessageOnceToTheGroup) {
  Broker broker(Limits{});
  broker.subscribe("w1", "jobs", "workers");
  broker.subscribe("w2", "jobs", "workers");
  broker.subscribe("audit", "jobs", std::nullopt);
  const auto batch = messages({"1", "2", "3"});
  ASSERT_EQ(broker.publish("jobs", batch), PublishStatus::ok);
  EXPECT_EQ(broker.totals().pending_messages, 6U);  // the group's queue once, the auditor's once
  EXPECT_EQ(fetch_all(broker, "jobs", "w1", 1), Texts{"1"});
  EXPECT_EQ(fetch_all(broker, "jobs", "w2"), (Texts{"2", "3"}));
  EXPECT_EQ(fetch_all(broker, "jobs", "w1"), Texts{});
  EXPECT_EQ(fetch_all(broker, "jobs", "audit"), (Texts{"1", "2", "3"}));
}

TEST(Broker, EmptyOrDottedGroupIsInvalid) {
  Broker broker(Limits{});
  EXPECT_EQ(broker.subscribe("a", "s", ""), SubscribeStatus::invalid_group);
  EXPECT_EQ(broker.subscribe("a", "s", "a.b"), SubscribeStatus::invalid_group);
  EXPECT_EQ(broker.subscribe("a", "s", "*"), SubscribeStatus::invalid_group);
}

TEST(Broker, DuplicateIdIsRefused) {
  Broker broker(Limits{});
  EXPECT_EQ(broker.subscribe("a", "s", std::nullopt), SubscribeStatus::ok);
  EXPECT_EQ(broker.subscribe("a", "t", std::nullopt), SubscribeStatus::duplicate_id);
}

TEST(Broker, UnsubscribeFreesPendingAndCountsTheDrop) {
  Broker broker(Limits{});
  broker.subscribe("a", "s", std::nullopt);
  publish(broker, "s", "xyz");
  EXPECT_EQ(broker.unsubscribe("s", "b"), UnsubscribeStatus::bad_id);
  EXPECT_EQ(broker.unsubscribe("s", "a"), UnsubscribeStatus::ok);
  const Totals totals = broker.totals();
  EXPECT_EQ(totals.pending_messages, 0U);
  EXPECT_EQ(totals.pending_bytes, 0U);
  EXPECT_EQ(totals.subscriptions, 0U);
  EXPECT_EQ(totals.subjects, 0U);
  EXPECT_EQ(totals.counters.dropped[static_cast<std::size_t>(DropReason::unsubscribe)], 1U);
  EXPECT_EQ(publish(broker, "s", "x"), PublishStatus::no_subscribers);
}

TEST(Broker, GroupQueueLivesWhileItHasAMember) {
  Broker broker(Limits{});
  broker.subscribe("w1", "jobs", "g");
  broker.subscribe("w2", "jobs", "g");
  publish(broker, "jobs", "1");
  ASSERT_EQ(broker.unsubscribe("jobs", "w1"), UnsubscribeStatus::ok);
  EXPECT_EQ(fetch_all(broker, "jobs", "w2"), Texts{"1"});
  publish(broker, "jobs", "2");
  ASSERT_EQ(broker.unsubscribe("jobs", "w2"), UnsubscribeStatus::ok);
  EXPECT_EQ(broker.totals().pending_messages, 0U);
  EXPECT_EQ(publish(broker, "jobs", "3"), PublishStatus::no_subscribers);
}

TEST(Broker, CountsSubjectsAndSubscriptions) {
  Broker broker(Limits{});
  broker.subscribe("a", "s", std::nullopt);
  broker.subscribe("b", "s", "g");
  broker.subscribe("c", "t.>", std::nullopt);
  const Totals totals = broker.totals();
  EXPECT_EQ(totals.subscriptions, 3U);
  EXPECT_EQ(totals.subjects, 2U);
}

// The byte bound counts every subscriber's copy: 6 bytes fit under 10 once, not twice.
TEST(Broker, FanOutCountsEachCopyAgainstTheByteBound) {
  Broker broker(Limits{.max_pending_bytes = 10});
  broker.subscribe("a", "s", std::nullopt);
  EXPECT_EQ(publish(broker, "s", "123456"), PublishStatus::ok);
  fetch_all(broker, "s", "a");
  broker.subscribe("b", "s.>", std::nullopt);
  broker.subscribe("c", "s", std::nullopt);
  EXPECT_EQ(publish(broker, "s", "123456"), PublishStatus::overflow);
  const auto batch = messages({"123", "456"});
  EXPECT_EQ(broker.publish("s", batch), PublishStatus::overflow);
  EXPECT_EQ(broker.totals().pending_bytes, 0U);
  EXPECT_EQ(publish(broker, "s", "12345"), PublishStatus::ok);  // 2 x 5 fits exactly
  EXPECT_EQ(broker.totals().pending_bytes, 10U);
}

TEST(Broker, SubscriptionsBeyondTheBoundAreRefusedUntilOneLeaves) {
  Broker broker(Limits{.max_subscriptions = 2});
  EXPECT_EQ(broker.subscribe("a", "s", std::nullopt), SubscribeStatus::ok);
  EXPECT_EQ(broker.subscribe("b", "t", "g"), SubscribeStatus::ok);
  EXPECT_EQ(broker.subscribe("c", "u", std::nullopt), SubscribeStatus::too_many_subscriptions);
  EXPECT_EQ(broker.subscribe("c", "t", "g"), SubscribeStatus::too_many_subscriptions);
  EXPECT_EQ(broker.totals().subscriptions, 2U);
  EXPECT_EQ(broker.totals().subjects, 2U);
  ASSERT_EQ(broker.unsubscribe("s", "a"), UnsubscribeStatus::ok);
  EXPECT_EQ(broker.subscribe("c", "t", "g"), SubscribeStatus::ok);
  EXPECT_EQ(broker.subscribe("d", "t", "g"), SubscribeStatus::too_many_subscriptions);
}

TEST(Broker, RejectPolicyRefusesAPublishThatWouldOverfillAnyQueueAndStoresNothing) {
  Broker broker(Limits{.max_pending_per_queue = 2});
  broker.subscribe("slow", "orders", std::nullopt);
  broker.subscribe("fast", "orders", std::nullopt);
  broker.subscribe("workers", "orders", "g");
  broker.subscribe("other", "other", std::nullopt);
  const auto two = messages({"1", "2"});
  ASSERT_EQ(broker.publish("orders", two), PublishStatus::ok);
  EXPECT_EQ(fetch_all(broker, "orders", "fast"), (Texts{"1", "2"}));
  EXPECT_EQ(fetch_all(broker, "orders", "workers"), (Texts{"1", "2"}));

  EXPECT_EQ(publish(broker, "orders", "3"), PublishStatus::queue_full);
  EXPECT_EQ(broker.totals().pending_messages, 2U);
  EXPECT_EQ(broker.totals().counters.published, 2U);
  EXPECT_EQ(fetch_all(broker, "orders", "fast"), Texts{});
  EXPECT_EQ(fetch_all(broker, "orders", "workers"), Texts{});
  EXPECT_EQ(publish(broker, "other", "o"), PublishStatus::ok);

  EXPECT_EQ(fetch_all(broker, "orders", "slow", 1), Texts{"1"});
  EXPECT_EQ(broker.publish("orders", two), PublishStatus::queue_full);  // 1 + 2 > 2
  EXPECT_EQ(publish(broker, "orders", "3"), PublishStatus::ok);
  const auto three = messages({"a", "b", "c"});
  EXPECT_EQ(fetch_all(broker, "orders", "slow"), (Texts{"2", "3"}));
  EXPECT_EQ(broker.publish("orders", three), PublishStatus::queue_full);  // never fits
  EXPECT_EQ(broker.totals().counters.dropped[static_cast<std::size_t>(DropReason::queue_full)], 0U);
}

TEST(Broker, DropOldestKeepsEachQueueAtTheBoundWithItsNewestMessages) {
  Broker broker(
      Limits{.max_pending_per_queue = 2, .slow_queue_policy = SlowQueuePolicy::drop_oldest});
  broker.subscribe("slow", "s", std::nullopt);
  broker.subscribe("fast", "s", std::nullopt);
  for (const char* text : {"1", "22", "333"}) {
    EXPECT_EQ(publish(broker, "s", text), PublishStatus::ok);
    fetch_all(broker, "s", "fast");
  }
  EXPECT_EQ(broker.totals().pending_messages, 2U);
  EXPECT_EQ(broker.totals().pending_bytes, 5U);
  const auto dropped = [&broker] {
    return broker.totals().counters.dropped[static_cast<std::size_t>(DropReason::queue_full)];
  };
  EXPECT_EQ(dropped(), 1U);
  EXPECT_EQ(fetch_all(broker, "s", "slow"), (Texts{"22", "333"}));

  // A batch larger than the bound keeps its newest, in every queue.
  ASSERT_EQ(publish(broker, "s", "x"), PublishStatus::ok);
  const auto four = messages({"4", "55", "666", "7777"});
  ASSERT_EQ(broker.publish("s", four), PublishStatus::ok);
  EXPECT_EQ(dropped(), 1U + 3U + 3U);  // in each queue: "x" and the batch's 2 oldest
  EXPECT_EQ(broker.totals().pending_messages, 4U);
  EXPECT_EQ(broker.totals().pending_bytes, 14U);
  EXPECT_EQ(broker.totals().counters.published, 8U);
  EXPECT_EQ(fetch_all(broker, "s", "slow"), (Texts{"666", "7777"}));
  EXPECT_EQ(fetch_all(broker, "s", "fast"), (Texts{"666", "7777"}));
  EXPECT_EQ(broker.totals().pending_bytes, 0U);
}

// What a full queue drops makes room under max-pending and max-pending-bytes, so a stalled
// subscriber at its bound does not hold the publish off.
TEST(Broker, DropOldestFreesRoomUnderTheBrokerWideBounds) {
  Broker broker(Limits{.max_pending = 2,
                       .max_pending_bytes = 4,
                       .max_pending_per_queue = 2,
                       .slow_queue_policy = SlowQueuePolicy::drop_oldest});
  broker.subscribe("a", "s", std::nullopt);
  ASSERT_EQ(publish(broker, "s", "11"), PublishStatus::ok);
  ASSERT_EQ(publish(broker, "s", "22"), PublishStatus::ok);
  EXPECT_EQ(publish(broker, "s", "33"), PublishStatus::ok);
  EXPECT_EQ(publish(broker, "s", "444"), PublishStatus::overflow);  // 33 + 444 is 5 bytes
  EXPECT_EQ(broker.totals().pending_bytes, 4U);
  EXPECT_EQ(fetch_all(broker, "s", "a"), (Texts{"22", "33"}));
}

std::vector<std::uint64_t> fetch_seqs(Broker& broker, std::string_view subject,
                                      std::string_view id) {
  FetchedMessages out;
  EXPECT_EQ(broker.fetch(subject, id, 1000, out), FetchStatus::ok);
  std::vector<std::uint64_t> seqs;
  for (const Message& message : out) {
    seqs.push_back(message.seq());
  }
  return seqs;
}

// One broker-wide sequence: fan-out copies share a message's number, a batch takes consecutive
// ones, and a refused publish takes none.
TEST(Broker, PublishNumbersMessagesBrokerWideAndBatchesConsecutively) {
  Broker broker(Limits{});
  broker.subscribe("a", "s.>", std::nullopt);
  broker.subscribe("b", "s.x", std::nullopt);
  broker.subscribe("c", "s.*", "workers");
  ASSERT_EQ(publish(broker, "s.x", "1"), PublishStatus::ok);
  ASSERT_EQ(publish(broker, "nobody", "x"), PublishStatus::no_subscribers);
  const auto batch = messages({"2", std::string(100, '3'), "4"});
  ASSERT_EQ(broker.publish("s.y", batch), PublishStatus::ok);
  ASSERT_EQ(publish(broker, "s.x", std::string(40, '5')), PublishStatus::ok);
  EXPECT_EQ(fetch_seqs(broker, "s.>", "a"), (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(fetch_seqs(broker, "s.x", "b"), (std::vector<std::uint64_t>{1, 5}));
  EXPECT_EQ(fetch_seqs(broker, "s.*", "c"), (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
}

// Under drop-oldest a batch larger than the bound still numbers the messages it never stores,
// so what a queue holds shows the gap.
TEST(Broker, MessagesABatchNeverStoresKeepTheirNumbers) {
  Broker broker(
      Limits{.max_pending_per_queue = 2, .slow_queue_policy = SlowQueuePolicy::drop_oldest});
  broker.subscribe("a", "s", std::nullopt);
  const auto four = messages({"1", "2", "3", "4"});
  ASSERT_EQ(broker.publish("s", four), PublishStatus::ok);
  ASSERT_EQ(publish(broker, "s", "5"), PublishStatus::ok);
  EXPECT_EQ(fetch_seqs(broker, "s", "a"), (std::vector<std::uint64_t>{4, 5}));
}

// A queue keeps its own count, bytes and stamps, and reports each change for the broker to apply.
TEST(Queue, KeepsItsCountsAndReportsWhatChanged) {
  Topic topic;
  Queue queue(topic, "a", false, false);
  const TimePoint start{};
  const auto tick = std::chrono::milliseconds(10);
  const auto three = messages({"1", "22", std::string(30, '3')});
  const QueueChange pushed = queue.push(three, 5, 33, start, tick, SubjectRef{});
  EXPECT_EQ(pushed.messages, 3U);
  EXPECT_EQ(pushed.bytes, 33U);
  const auto one = messages({"4444"});
  queue.push(one, 8, 4, start + std::chrono::milliseconds(50), tick, SubjectRef{});
  EXPECT_EQ(queue.size(), 4U);
  EXPECT_EQ(queue.bytes(), 37U);
  EXPECT_EQ(queue.front_bytes(2), 3U);
  EXPECT_EQ(queue.expired(start + std::chrono::milliseconds(40), std::chrono::milliseconds(40)),
            3U);
  FetchedMessages out;
  const QueueChange popped = queue.pop_front(2, &out);
  EXPECT_EQ(popped.messages, 2U);
  EXPECT_EQ(popped.bytes, 3U);
  EXPECT_EQ(queue.bytes(), 34U);
  ASSERT_EQ(out.size(), 2U);
  EXPECT_EQ(out[1].seq(), 6U);
  EXPECT_EQ(queue.expired(start + std::chrono::milliseconds(40), std::chrono::milliseconds(40)),
            1U);
  queue.pop_front(2, nullptr);
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.bytes(), 0U);
}

// The sanitizers replace malloc, and glibc's mallinfo2 then sees none of the heap; their own
// allocator counts it instead.
std::size_t heap_in_use() {
#ifdef GOPHERMQ_TEST_SANITIZED
  return __sanitizer_get_current_allocated_bytes();
#else
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
#endif
}

// An idle subscription costs its bookkeeping only: its queue allocates on the first message and
// gives everything back once drained (libstdc++'s std::deque held over a kilobyte from birth).
TEST(Broker, IdleQueuesHoldNoHeap) {
  constexpr std::size_t kCount = 2000;
  std::vector<std::string> names;
  for (std::size_t i = 0; i < kCount; ++i) {
    names.push_back("s" + std::to_string(i));
  }
  Broker broker(Limits{.message_ttl = std::chrono::seconds(60)});
  const std::size_t empty = heap_in_use();
  for (const std::string& name : names) {
    ASSERT_EQ(broker.subscribe(name, name, std::nullopt), SubscribeStatus::ok);
  }
  const std::size_t idle = heap_in_use();
  EXPECT_LT((idle - empty) / kCount, 1024U);
  for (const std::string& name : names) {
    ASSERT_EQ(publish(broker, name, "x"), PublishStatus::ok);
  }
  EXPECT_GT(heap_in_use(), idle + kCount * 512);
  for (const std::string& name : names) {
    ASSERT_EQ(fetch_all(broker, name, name), Texts{"x"});
  }
  EXPECT_LT(heap_in_use(), idle + 16384);
}

TEST(Message, LargeBodySharesOneCopyAcrossHandles) {
  const std::string body(Message::inline_capacity + 1, 'x');
  const Message original = Message::create(body);
  const Message copy = original;  // NOLINT(performance-unnecessary-copy-initialization)
  EXPECT_TRUE(original.is_shared());
  EXPECT_EQ(copy.data().data(), original.data().data());
  EXPECT_EQ(copy.data(), body);
}

TEST(Message, SmallBodyIsStoredInTheHandle) {
  const std::string body(Message::inline_capacity, 'y');
  const Message original = Message::create(body);
  const Message copy = original;  // NOLINT(performance-unnecessary-copy-initialization)
  EXPECT_FALSE(original.is_shared());
  EXPECT_NE(copy.data().data(), original.data().data());
  EXPECT_EQ(copy.data(), body);
  EXPECT_EQ(Message::create("").size(), 0U);
  EXPECT_EQ(Message::create("").data(), "");
}

TEST(Message, SequenceNumberLivesInTheHandleOfBothKinds) {
  static_assert(sizeof(Message) == 24);
  for (const std::size_t size : {std::size_t{0}, Message::inline_capacity, std::size_t{500}}) {
    const std::string body(size, 'q');
    Message message = Message::create(body);
    EXPECT_EQ(message.seq(), 0U);
    message.set_seq(Message::max_seq);
    EXPECT_EQ(message.seq(), Message::max_seq);
    EXPECT_EQ(message.data(), body);
    const Message copy = message;  // NOLINT(performance-unnecessary-copy-initialization)
    EXPECT_EQ(copy.seq(), Message::max_seq);
    message.set_seq(7);
    EXPECT_EQ(message.seq(), 7U);
    EXPECT_EQ(message.size(), size);
    const Message moved = std::move(message);
    EXPECT_EQ(moved.seq(), 7U);
    EXPECT_EQ(moved.data(), body);
  }
}

TEST(Message, MoveLeavesTheSourceEmptyForBothKinds) {
  for (const std::size_t size : {std::size_t{5}, std::size_t{500}}) {
    const std::string body(size, 'z');
    Message source = Message::create(body);
    const Message moved = std::move(source);
    EXPECT_EQ(moved.data(), body);
    EXPECT_EQ(source.size(), 0U);  // NOLINT(bugprone-use-after-move): moved-from state is defined
    Message assigned = Message::create("old");
    assigned = moved;
    EXPECT_EQ(assigned.data(), body);
    assigned = Message::create("new");
    EXPECT_EQ(assigned.data(), "new");
    EXPECT_EQ(moved.data(), body);
  }
}

// What GET /api/stats must show, computed the slow way: every subject, sorted from scratch.
std::vector<SubjectStats> sorted_by_brute_force(std::vector<SubjectStats> rows) {
  std::sort(rows.begin(), rows.end(), [](const SubjectStats& a, const SubjectStats& b) {
    if (a.pending_messages != b.pending_messages) {
      return a.pending_messages > b.pending_messages;
    }
    return a.subject < b.subject;
  });
  return rows;
}

bool same_row(const SubjectStats& a, const SubjectStats& b) {
  return a.subject == b.subject && a.subscriptions == b.subscriptions && a.groups == b.groups &&
         a.pending_messages == b.pending_messages && a.pending_bytes == b.pending_bytes;
}

// The ranking is kept incrementally, so every path that changes a pending count (publish, fetch,
// waiting fetches, unsubscribe, both TTLs) must keep it in order. Many subjects share a count, so
// the ties by name are exercised too.
TEST(Stats, TopSubjectsMatchesABruteForceSortUnderRandomTraffic) {
  test::ManualClock clock;
  Limits limits;
  limits.message_ttl = std::chrono::milliseconds(50);
  limits.subscriber_ttl = std::chrono::milliseconds(400);
  Broker broker(limits, clock);
  const std::vector<std::string> patterns = {"a",   "b",   "c",   "a.x", "a.y", "a.*",
                                             "*.x", "a.>", "b.x", "c.z", ">",   "z.z.z"};
  const std::vector<std::string> concrete = {"a", "b", "c", "a.x", "a.y", "b.x", "c.z", "z.z.z"};
  std::mt19937 random(20261126);
  const auto pick = [&random](std::size_t size) {
    return std::uniform_int_distribution<std::size_t>(0, size - 1)(random);
  };
  struct Live {
    std::string subject;
    TimePoint last_active;
  };
  std::map<std::string, Live> live;  // by subscription id
  std::size_t next_id = 0;
  for (int op = 0; op < 20000; ++op) {
    const std::size_t kind = pick(10);
    if (kind < 2 || live.empty()) {
      const std::string id = std::to_string(next_id++);
      const std::string& subject = patterns[pick(patterns.size())];
      const std::optional<std::string_view> group =
          pick(3) == 0 ? std::optional<std::string_view>(pick(2) == 0 ? "g1" : "g2") : std::nullopt;
      ASSERT_EQ(broker.subscribe(id, subject, group), SubscribeStatus::ok);
      live[id] = Live{subject, clock.now()};
    } else if (kind < 6) {
      std::vector<Message> batch;
      for (std::size_t i = pick(3) + 1; i > 0; --i) {
        batch.push_back(Message::create(std::string(pick(5), 'm')));
      }
      broker.publish(concrete[pick(concrete.size())], batch);
    } else if (kind < 8) {
      auto subscription = std::next(live.begin(), static_cast<std::ptrdiff_t>(pick(live.size())));
      FetchedMessages out;
      ASSERT_EQ(broker.fetch(subscription->second.subject, subscription->first, pick(4), out),
                FetchStatus::ok);
      subscription->second.last_active = clock.now();
    } else if (kind < 9) {
      auto subscription = std::next(live.begin(), static_cast<std::ptrdiff_t>(pick(live.size())));
      ASSERT_EQ(broker.unsubscribe(subscription->second.subject, subscription->first),
                UnsubscribeStatus::ok);
      live.erase(subscription);
    } else {
      clock.advance(std::chrono::milliseconds(pick(60)));
      broker.expire();
      std::erase_if(live, [&](const auto& entry) {
        return entry.second.last_active + limits.subscriber_ttl <= clock.now();
      });
    }
    const std::vector<SubjectStats> all = broker.top_subjects(SIZE_MAX);
    const std::vector<SubjectStats> expected = sorted_by_brute_force(all);
    ASSERT_TRUE(std::equal(all.begin(), all.end(), expected.begin(), expected.end(), same_row))
        << "after op " << op;
    const std::vector<SubjectStats> top = broker.top_subjects(3);
    ASSERT_EQ(top.size(), std::min<std::size_t>(3, all.size()));
    ASSERT_TRUE(std::equal(top.begin(), top.end(), expected.begin(), same_row));
    std::map<std::string, std::size_t> subscriptions_of;
    for (const auto& [id, subscription] : live) {
      ++subscriptions_of[subscription.subject];
    }
    std::uint64_t pending = 0;
    std::uint64_t bytes = 0;
    ASSERT_EQ(all.size(), subscriptions_of.size());
    for (const SubjectStats& row : all) {
      ASSERT_EQ(row.subscriptions, subscriptions_of[row.subject]) << row.subject;
      pending += row.pending_messages;
      bytes += row.pending_bytes;
    }
    const Totals totals = broker.totals();
    ASSERT_EQ(totals.pending_messages, pending);
    ASSERT_EQ(totals.pending_bytes, bytes);
    ASSERT_EQ(totals.subjects, all.size());
    ASSERT_EQ(totals.subscriptions, live.size());
  }
}

}  // namespace
}  // namespace gophermq::broker
