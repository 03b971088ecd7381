// The journal seam: every state change of the core leaves a record, and replaying the records,
// through their disk encoding, into an empty core rebuilds the same state.
#include "broker/journal.hpp"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "broker/broker.hpp"
#include "support/manual_clock.hpp"

namespace gophermq::broker {
namespace {

using std::chrono::milliseconds;
using test::ManualClock;

class RecordingSink final : public JournalSink {
 public:
  void append(const Record& record) override {
    encode(record, records.emplace_back());
    kinds.insert(record.type);
  }

  std::vector<std::string> records;
  std::set<RecordType> kinds;
};

class TestWaiter final : public Waiter {
 public:
  void wake() override { woken = true; }
  bool woken = false;
};

// Replays every record except those of `skipped` kind into a new core with `limits`. Without
// the skipped records later ones may name what the copy lacks, so only a whole replay must apply.
std::string replayed(const Limits& limits, const std::vector<std::string>& records,
                     std::optional<RecordType> skipped = std::nullopt) {
  const ManualClock elsewhere;  // replay reads every time from the records
  Broker copy(limits, elsewhere);
  std::vector<Message> messages;
  for (const std::string& bytes : records) {
    const std::optional<Record> record = decode(bytes, messages);
    EXPECT_TRUE(record.has_value());
    if (record && record->type != skipped) {
      const bool applied = copy.apply(*record);
      EXPECT_TRUE(applied || skipped.has_value());
    }
  }
  return copy.dump();
}

constexpr std::array<std::string_view, 6> kPatterns = {"a", "a.b", "a.*", "a.>", "*.b", ">"};
constexpr std::array<std::string_view, 5> kSubjects = {"a", "a.b", "a.c", "b", "a.b.c"};

// Drives a random sequence of every operation of the core and checks, every `every` steps, that
// the records so far rebuild the same state. Returns the records.
std::vector<std::string> drive(const Limits& limits, std::uint32_t seed, std::size_t steps,
                               std::size_t every) {
  ManualClock clock;
  RecordingSink sink;
  Broker broker(limits, clock);
  broker.set_journal(&sink);
  std::mt19937 random(seed);
  const auto pick = [&random](std::size_t count) {
    return std::uniform_int_distribution<std::size_t>(0, count - 1)(random);
  };
  struct Live {
    std::string id;
    std::string subject;
  };
  std::vector<Live> live;
  std::list<TestWaiter> waiters;
  std::size_t next_id = 0;
  std::uint64_t most_pending = 0;
  const auto data = [&] { return std::string(pick(40), static_cast<char>('a' + pick(26))); };
  for (std::size_t step = 1; step <= steps; ++step) {
    const std::size_t operation = pick(100);
    if (operation < 15 || live.empty()) {
      const std::string id = "s" + std::to_string(next_id++);
      const std::string subject(kPatterns.at(pick(kPatterns.size())));
      const std::size_t group = pick(3);
      const auto status = broker.subscribe(
          id, subject,
          group == 0 ? std::nullopt : std::optional<std::string_view>(group == 1 ? "g" : "h"));
      if (status == SubscribeStatus::ok) {
        live.push_back({id, subject});
      }
    } else if (operation < 45) {
      std::vector<Message> batch(pick(4) == 0 ? 1 + pick(6) : 1);
      for (Message& message : batch) {
        message = Message::create(data());
      }
      broker.publish(kSubjects.at(pick(kSubjects.size())), batch);
    } else if (operation < 65) {
      const Live& target = live.at(pick(live.size()));
      FetchedMessages out;
      broker.fetch(target.subject, target.id, 1 + pick(4), out);
    } else if (operation < 72) {
      const Live& target = live.at(pick(live.size()));
      TestWaiter& waiter = waiters.emplace_back();
      broker.fetch_or_wait(target.subject, target.id, 1 + pick(3), waiter);
    } else if (operation < 76 && !waiters.empty()) {
      broker.cancel_wait(waiters.back());
    } else if (operation < 84) {
      const std::size_t index = pick(live.size());
      broker.unsubscribe(live[index].subject, live[index].id);
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(index));
    } else {
      clock.advance(milliseconds(10 * (1 + pick(300))));
      broker.expire();
    }
    most_pending = std::max(most_pending, broker.totals().pending_messages);
    if (step % every == 0) {
      EXPECT_EQ(replayed(limits, sink.records), broker.dump()) << "after step " << step;
    }
  }
  EXPECT_GT(most_pending, 10U);      // the sequence did keep messages pending
  EXPECT_EQ(sink.kinds.size(), 5U);  // and reported every kind of record
  broker.wake_all_waiters();
  return std::move(sink.records);
}

Limits with_ttls(Limits limits) {
  limits.message_ttl = milliseconds(1000);
  limits.subscriber_ttl = milliseconds(2500);
  return limits;
}

TEST(Journal, ReplayRebuildsTheStateOfRandomOperations) {
  drive(with_ttls(Limits{}), 1, 1500, 50);
}

TEST(Journal, ReplayRebuildsDropOldestQueues) {
  drive(with_ttls(
            Limits{.max_pending_per_queue = 3, .slow_queue_policy = SlowQueuePolicy::drop_oldest}),
        2, 1500, 50);
}

TEST(Journal, ReplayRebuildsUnderRejectAndBrokerWideBounds) {
  drive(with_ttls(Limits{.max_pending = 40, .max_pending_bytes = 600, .max_pending_per_queue = 4}),
        3, 1500, 50);
}

TEST(Journal, ReplayRebuildsWithoutTtls) {
  drive(Limits{.subscriber_ttl = milliseconds(0)}, 4, 1000, 100);
}

// The comparison sees every kind of record: leaving any one out of the replay changes the state.
TEST(Journal, EveryRecordKindChangesTheReplayedState) {
  const Limits limits = with_ttls(
      Limits{.max_pending_per_queue = 3, .slow_queue_policy = SlowQueuePolicy::drop_oldest});
  const std::vector<std::string> records = drive(limits, 5, 600, 600);
  const std::string whole = replayed(limits, records);
  for (const RecordType kind : {RecordType::subscribe, RecordType::unsubscribe, RecordType::publish,
                                RecordType::fetch, RecordType::drop}) {
    EXPECT_NE(replayed(limits, records, kind), whole) << static_cast<int>(kind);
  }
}

TEST(Journal, RecordsSurviveTheirEncoding) {
  const auto batch =
      std::vector<Message>{Message::create(""), Message::create(std::string(300, 'x'))};
  Record record;
  record.type = RecordType::drop;
  record.reason = 3;
  record.grouped = true;
  record.time = -5;
  record.seq = Message::max_seq;
  record.count = 7;
  record.subject = "a.>";
  record.id = "id";
  record.group = "g";
  record.messages = batch;
  std::string bytes;
  encode(record, bytes);
  std::vector<Message> messages;
  const std::optional<Record> decoded = decode(bytes, messages);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->type, RecordType::drop);
  EXPECT_EQ(decoded->reason, 3U);
  EXPECT_TRUE(decoded->grouped);
  EXPECT_EQ(decoded->time, -5);
  EXPECT_EQ(decoded->seq, Message::max_seq);
  EXPECT_EQ(decoded->count, 7U);
  EXPECT_EQ(decoded->subject, "a.>");
  EXPECT_EQ(decoded->id, "id");
  EXPECT_EQ(decoded->group, "g");
  ASSERT_EQ(decoded->messages.size(), 2U);
  EXPECT_EQ(decoded->messages[1].data(), std::string(300, 'x'));
  // Any cut, an extra byte or an unknown type is refused, never read past.
  for (std::size_t size = 0; size < bytes.size(); ++size) {
    EXPECT_FALSE(decode(std::string_view(bytes).substr(0, size), messages).has_value()) << size;
  }
  EXPECT_FALSE(decode(bytes + 'x', messages).has_value());
  bytes[0] = 9;
  EXPECT_FALSE(decode(bytes, messages).has_value());
}

// A record naming what the core does not have, or that it could never have written, changes
// nothing.
TEST(Journal, ApplyRefusesRecordsForUnknownSubscriptions) {
  Broker broker(Limits{});
  Record fetch;
  fetch.type = RecordType::fetch;
  fetch.id = "nobody";
  EXPECT_FALSE(broker.apply(fetch));
  Record drop;
  drop.type = RecordType::drop;
  drop.grouped = true;
  drop.subject = "a";
  drop.group = "g";
  drop.count = 1;
  EXPECT_FALSE(broker.apply(drop));
  Record subscribe;
  subscribe.type = RecordType::subscribe;
  subscribe.id = "s";
  subscribe.subject = "a..b";
  EXPECT_FALSE(broker.apply(subscribe));
  subscribe.subject = "a";
  subscribe.grouped = true;
  subscribe.group = "g.h";
  EXPECT_FALSE(broker.apply(subscribe));
  Record publish;
  publish.type = RecordType::publish;
  publish.subject = "a.*";
  publish.seq = 1;
  EXPECT_FALSE(broker.apply(publish));
  publish.subject = "a";
  publish.seq = 0;  // numbers start at 1 and only grow
  EXPECT_FALSE(broker.apply(publish));
  publish.seq = Message::max_seq;
  publish.count = 1;
  EXPECT_FALSE(broker.apply(publish));
  EXPECT_EQ(broker.dump(), Broker(Limits{}).dump());
}

}  // namespace
}  // namespace gophermq::broker
