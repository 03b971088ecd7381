// Broker::resume, the core of a stream's Last-Event-ID (API.md §10): acks what the client read,
// makes the rest pending again at once.
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "broker/broker.hpp"
#include "support/broker_calls.hpp"

namespace gophermq::broker {
namespace {

using test::publish;

AckOptions ack_mode(std::uint32_t max_deliveries = 0) {
  AckOptions options;
  options.ack = true;
  options.max_deliveries = max_deliveries;
  return options;
}

std::vector<std::uint64_t> seqs_of(const Deliveries& deliveries) {
  std::vector<std::uint64_t> seqs;
  for (const Delivery& delivery : deliveries) {
    seqs.push_back(delivery.message.seq());
  }
  return seqs;
}

TEST(ResumeTest, AcksInFlightUpToTheSeqAndRedeliversTheRestAtOnce) {
  Broker broker(Limits{});
  ASSERT_EQ(broker.subscribe("a", "t", std::nullopt, ack_mode()), SubscribeStatus::ok);
  ASSERT_EQ(publish(broker, "t", {"1", "2", "3", "4", "5"}), PublishStatus::ok);
  Deliveries first;
  ASSERT_EQ(broker.fetch_deliveries("t", "a", 5, first), FetchStatus::ok);
  ASSERT_EQ(seqs_of(first), (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));

  const ResumeResult result = broker.resume("t", "a", 3);
  EXPECT_EQ(result.status, AckStatus::ok);
  EXPECT_EQ(result.acked, 3U);
  EXPECT_EQ(result.redelivered, 2U);
  EXPECT_EQ(broker.totals().pending_messages, 2U);
  EXPECT_EQ(broker.totals().in_flight, 0U);

  Deliveries again;
  ASSERT_EQ(broker.fetch_deliveries("t", "a", 5, again), FetchStatus::ok);
  ASSERT_EQ(seqs_of(again), (std::vector<std::uint64_t>{4, 5}));
  EXPECT_EQ(again[0].deliveries, 2U);
  // The receipts of the first delivery are stale now, for read and unread messages alike.
  const std::vector<Receipt> old{first[0].receipt, first[4].receipt};
  EXPECT_EQ(broker.ack("t", "a", old).stale.size(), 2U);
}

// API.md §10: "everything in flight to that subscription". In a group, what another member holds
// stays in flight, and its receipts stay good.
TEST(ResumeTest, AGroupMemberAnswersOnlyForWhatWentToIt) {
  Broker broker(Limits{});
  ASSERT_EQ(broker.subscribe("m1", "t", "w", ack_mode()), SubscribeStatus::ok);
  ASSERT_EQ(broker.subscribe("m2", "t", "w", ack_mode()), SubscribeStatus::ok);
  ASSERT_EQ(publish(broker, "t", {"a", "b"}), PublishStatus::ok);
  Deliveries to_m1;
  ASSERT_EQ(broker.fetch_deliveries("t", "m1", 1, to_m1), FetchStatus::ok);
  Deliveries to_m2;
  ASSERT_EQ(broker.fetch_deliveries("t", "m2", 1, to_m2), FetchStatus::ok);
  ASSERT_EQ(seqs_of(to_m1), std::vector<std::uint64_t>{1});
  ASSERT_EQ(seqs_of(to_m2), std::vector<std::uint64_t>{2});

  const ResumeResult read_all = broker.resume("t", "m2", 2);
  EXPECT_EQ(read_all.acked, 1U);
  EXPECT_EQ(read_all.redelivered, 0U);
  EXPECT_EQ(broker.totals().in_flight, 1U);
  const ResumeResult read_none = broker.resume("t", "m2", 0);
  EXPECT_EQ(read_none.acked + read_none.redelivered, 0U);
  EXPECT_EQ(broker.ack("t", "m1", std::vector<Receipt>{to_m1[0].receipt}).applied, 1U);
  EXPECT_EQ(broker.totals().pending_messages, 0U);
}

TEST(ResumeTest, LeavesPendingAndLaterDeliveriesAloneAndIsIdempotent) {
  Broker broker(Limits{});
  ASSERT_EQ(broker.subscribe("a", "t", std::nullopt, ack_mode()), SubscribeStatus::ok);
  ASSERT_EQ(publish(broker, "t", {"1", "2", "3"}), PublishStatus::ok);
  Deliveries first;
  ASSERT_EQ(broker.fetch_deliveries("t", "a", 2, first), FetchStatus::ok);
  const ResumeResult result = broker.resume("t", "a", 0);
  EXPECT_EQ(result.acked, 0U);
  EXPECT_EQ(result.redelivered, 2U);
  const ResumeResult repeated = broker.resume("t", "a", 0);
  EXPECT_EQ(repeated.acked + repeated.redelivered, 0U);
  EXPECT_EQ(broker.totals().pending_messages, 3U);
  Deliveries all;
  ASSERT_EQ(broker.fetch_deliveries("t", "a", 10, all), FetchStatus::ok);
  EXPECT_EQ(seqs_of(all), (std::vector<std::uint64_t>{1, 2, 3}));
}

TEST(ResumeTest, RedeliveryPastMaxDeliveriesDropsTheMessage) {
  Broker broker(Limits{});
  ASSERT_EQ(broker.subscribe("a", "t", std::nullopt, ack_mode(1)), SubscribeStatus::ok);
  ASSERT_EQ(publish(broker, "t", {"1", "2"}), PublishStatus::ok);
  Deliveries first;
  ASSERT_EQ(broker.fetch_deliveries("t", "a", 2, first), FetchStatus::ok);
  const ResumeResult result = broker.resume("t", "a", 1);
  EXPECT_EQ(result.acked, 1U);
  EXPECT_EQ(result.redelivered, 1U);
  EXPECT_EQ(broker.totals().pending_messages, 0U);
  EXPECT_EQ(broker.totals().counters.dropped[static_cast<std::size_t>(DropReason::max_deliveries)],
            1U);
}

TEST(ResumeTest, PlainAndUnknownSubscriptionsChangeNothing) {
  Broker broker(Limits{});
  ASSERT_EQ(broker.subscribe("p", "t", std::nullopt), SubscribeStatus::ok);
  ASSERT_EQ(publish(broker, "t", "x"), PublishStatus::ok);
  EXPECT_EQ(broker.resume("t", "p", 10).status, AckStatus::not_ack_mode);
  EXPECT_EQ(broker.resume("t", "nobody", 10).status, AckStatus::bad_id);
  EXPECT_EQ(broker.resume("other", "p", 10).status, AckStatus::bad_id);
  EXPECT_EQ(broker.resume("bad..subject", "p", 10).status, AckStatus::invalid_subject);
  EXPECT_EQ(broker.totals().pending_messages, 1U);
}

TEST(ResumeTest, SubjectOfNamesTheSubscriptionsPattern) {
  Broker broker(Limits{});
  ASSERT_EQ(broker.subscribe("a", "orders.>", std::string("g")), SubscribeStatus::ok);
  EXPECT_EQ(broker.subject_of("a"), std::optional<std::string>("orders.>"));
  EXPECT_EQ(broker.subject_of("b"), std::nullopt);
}

}  // namespace
}  // namespace gophermq::broker
