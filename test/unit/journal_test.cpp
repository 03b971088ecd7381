// The journal seam: every state change of the core leaves a record, and replaying the records,
// through their disk encoding, into an empty core rebuilds the same state; so does replaying a
// checkpoint taken at any moment and the records after it.
#include "broker/journal.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <list>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "broker/broker.hpp"
#include "support/manual_clock.hpp"

namespace gophermq::broker {
namespace {

using std::chrono::milliseconds;
using test::ManualClock;

std::size_t varint_bytes(std::uint64_t value) {
  std::size_t size = 1;
  for (; value >= 0x80U; value >>= 7U) {
    ++size;
  }
  return size;
}

// Keeps each record as its bytes, checking on the way that they decode to the same bytes again
// and that encoded_size foretold their length.
class RecordingSink final : public JournalSink {
 public:
  void append(const Record& record) override {
    std::string& bytes = records.emplace_back();
    encode(record, bytes);
    EXPECT_EQ(encoded_size(record), bytes.size());
    RecordStorage messages;
    const std::optional<Record> decoded = decode(bytes, messages);
    ASSERT_TRUE(decoded.has_value()) << static_cast<int>(record.type);
    std::string again;
    encode(*decoded, again);
    EXPECT_EQ(again, bytes);
    kinds.insert(record.type);
    message_count += record.messages.size();
  }

  std::vector<std::string> records;
  std::set<RecordType> kinds;
  std::size_t message_count = 0;
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
  RecordStorage messages;
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

// The newest checkpoint and how many of the journal's records came before it.
struct Snapshot {
  std::vector<std::string> records;
  std::size_t after = 0;
};

// Replays the snapshot, then the journal's records from the snapshot on, as recovery does.
std::string recovered(const Limits& limits, const Snapshot& snapshot,
                      const std::vector<std::string>& journal) {
  std::vector<std::string> records = snapshot.records;
  records.insert(records.end(), journal.begin() + static_cast<std::ptrdiff_t>(snapshot.after),
                 journal.end());
  return replayed(limits, records);
}

// The snapshot opens with a checkpoint record and closes with a checkpoint_end counting the
// records between them.
void expect_framed(const Snapshot& snapshot) {
  ASSERT_GE(snapshot.records.size(), 2U);
  RecordStorage messages;
  const std::optional<Record> first = decode(snapshot.records.front(), messages);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->type, RecordType::checkpoint);
  const std::optional<Record> last = decode(snapshot.records.back(), messages);
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->type, RecordType::checkpoint_end);
  EXPECT_EQ(last->count, snapshot.records.size() - 2);
}

constexpr std::array<std::string_view, 6> kPatterns = {"a", "a.b", "a.*", "a.>", "*.b", ">"};
// "a.*" is refused: a publish names a literal subject.
constexpr std::array<std::string_view, 6> kSubjects = {"a", "a.b", "a.c", "b", "a.b.c", "a.*"};

struct Run {
  std::vector<std::string> records;
  std::size_t checkpointed_messages = 0;  // in all the checkpoints taken
};

// Drives a random sequence of every operation of the core and checks, every `every` steps and at
// the end, that the records so far rebuild the same state, and that so does the newest of the
// checkpoints taken about every `checkpoint_every` steps with the records after it.
Run drive(const Limits& limits, std::uint32_t seed, std::size_t steps, std::size_t every,
          std::size_t checkpoint_every = 40) {
  ManualClock clock;
  RecordingSink sink;
  std::optional<Snapshot> snapshot;
  std::size_t checkpoints = 0;
  std::size_t checkpointed_messages = 0;
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
      std::vector<Message> batch(pick(4) == 0 ? 1 + pick(8) : 1);
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
    if (pick(checkpoint_every) == 0) {
      RecordingSink taken;
      broker.checkpoint(taken);
      snapshot = Snapshot{std::move(taken.records), sink.records.size()};
      expect_framed(*snapshot);
      ++checkpoints;
      checkpointed_messages += taken.message_count;
    }
    if (step % every == 0 || step == steps) {
      const std::string dump = broker.dump();
      EXPECT_EQ(replayed(limits, sink.records), dump) << "seed " << seed << " step " << step;
      if (snapshot) {
        EXPECT_EQ(recovered(limits, *snapshot, sink.records), dump)
            << "seed " << seed << " step " << step;
      }
    }
  }
  // The sequence did keep messages pending and reported every kind of record.
  EXPECT_GT(most_pending, std::min<std::size_t>(10, steps / 80));
  EXPECT_EQ(sink.kinds.size(), 5U);
  EXPECT_GT(checkpoints, 0U);
  broker.wake_all_waiters();
  return Run{std::move(sink.records), checkpointed_messages};
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

// Many short runs, each under its own limits, checkpointed at random moments: recovery from the
// newest checkpoint and from the first record agree with the core every time.
TEST(Journal, CheckpointAndTheRecordsAfterItRebuildTheState) {
  const std::array<Limits, 4> variants = {
      with_ttls(Limits{}),
      with_ttls(
          Limits{.max_pending_per_queue = 3, .slow_queue_policy = SlowQueuePolicy::drop_oldest}),
      with_ttls(Limits{.max_pending = 40, .max_pending_bytes = 600, .max_pending_per_queue = 4}),
      Limits{.subscriber_ttl = milliseconds(0)}};
  std::size_t checkpointed = 0;
  for (std::uint32_t seed = 100; seed < 160; ++seed) {
    checkpointed += drive(variants.at(seed % variants.size()), seed, 400, 100, 1 + seed % 60)
                        .checkpointed_messages;
  }
  EXPECT_GT(checkpointed, 1000U);
}

// The comparison sees every kind of record: leaving any one out of the replay changes the state
// the records rebuild, at some point of the journal.
TEST(Journal, EveryRecordKindChangesTheReplayedState) {
  const Limits limits = with_ttls(
      Limits{.max_pending_per_queue = 3, .slow_queue_policy = SlowQueuePolicy::drop_oldest});
  const std::vector<std::string> records = drive(limits, 5, 1500, 1500).records;
  for (const RecordType kind : {RecordType::subscribe, RecordType::unsubscribe, RecordType::publish,
                                RecordType::fetch, RecordType::drop}) {
    bool changed = false;
    for (std::size_t end = 50; end <= records.size() && !changed; end += 50) {
      const std::vector<std::string> prefix(records.begin(),
                                            records.begin() + static_cast<std::ptrdiff_t>(end));
      changed = replayed(limits, prefix, kind) != replayed(limits, prefix);
    }
    EXPECT_TRUE(changed) << static_cast<int>(kind);
  }
}

// Replay keeps nothing in flight: a delivered message is pending again with its delivery count.
// The dump's "in flight" lines (outstanding deliveries and their deadlines) are what differs.
std::string normalised(const std::string& dump) {
  std::istringstream lines(dump);
  std::string kept;
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("  in flight")) {
      kept += line + '\n';
    }
  }
  return kept;
}

// The options of every queue of `pattern` and `group`, so members of a group always agree.
AckOptions ack_options_of(std::string_view pattern, std::size_t group) {
  AckOptions options;
  const std::size_t kind = (pattern.size() + group) % 4;
  if (kind == 0) {
    return options;  // plain
  }
  options.ack = true;
  options.ack_wait = milliseconds(1000 * kind);
  options.max_in_flight = static_cast<std::uint32_t>(2 + kind);
  if (kind >= 2) {
    options.max_deliveries = static_cast<std::uint32_t>(kind);
  }
  if (kind == 3) {
    options.dead_letter = "dl";
  }
  return options;
}

struct AckRun {
  std::vector<std::string> records;
  std::set<RecordType> kinds;  // of the journal and the checkpoints
  std::size_t most_in_flight = 0;
  Counters counters;
};

// As drive, for ack mode: ack-mode and plain subscriptions (on a dead-letter subject too),
// deliveries, acks, nacks with and without delay, extends, timeouts and idempotent publishes,
// every receipt picked at random from those handed out (stale ones included). The records, and
// the newest checkpoint with the records after it, rebuild the core but for what is in flight.
AckRun drive_ack(const Limits& limits, std::uint32_t seed, std::size_t steps, std::size_t every,
                 std::size_t checkpoint_every = 40) {
  ManualClock clock;
  RecordingSink sink;
  std::optional<Snapshot> snapshot;
  std::set<RecordType> kinds;
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
  struct Held {
    std::string id;
    std::string subject;
    Receipt receipt;
  };
  std::vector<Live> live;
  std::vector<Held> held;
  class AckWaiter final : public Waiter {
   public:
    void wake() override { woken = true; }
    bool woken = false;
    Live target;
  };
  std::list<AckWaiter> ack_waiters;
  std::size_t next_id = 0;
  std::size_t most_in_flight = 0;
  const auto data = [&] { return std::string(pick(20), static_cast<char>('a' + pick(26))); };
  const auto keep = [&](const Live& target, const Deliveries& deliveries) {
    for (const Delivery& delivery : deliveries) {
      if (delivery.receipt.delivery > 0) {
        held.push_back({target.id, target.subject, delivery.receipt});
      }
    }
  };
  // Mostly receipts the subscription was handed, some of them stale by now; sometimes one of
  // another subscription's or one never handed out.
  const auto answer = [&](Live& target) {
    std::vector<Receipt> chosen;
    if (!held.empty()) {
      const Held& first = held.at(pick(held.size()));
      target = {first.id, first.subject};
      for (std::size_t i = pick(3); i > 0; --i) {
        const Held& other = held.at(pick(held.size()));
        if (other.id == first.id || pick(4) == 0) {
          chosen.push_back(other.receipt);
        }
      }
      chosen.push_back(first.receipt);
    }
    if (pick(8) == 0) {
      chosen.push_back(Receipt{1 + pick(50), 1});
    }
    if (held.size() > 60) {
      held.erase(held.begin(), held.begin() + 20);
    }
    return chosen;
  };
  for (std::size_t step = 1; step <= steps; ++step) {
    const std::size_t operation = pick(100);
    if (operation < 10 || live.empty()) {
      const std::string id = "s" + std::to_string(next_id++);
      const bool dead_letter = pick(6) == 0;
      const std::string subject = dead_letter ? "dl" : std::string(kPatterns.at(pick(3)));
      const std::size_t group = pick(3);
      // A dead-letter subject may be in ack mode too, its own dead letter included.
      const AckOptions options = ack_options_of(subject, group == 0 ? pick(4) : group);
      const auto status = broker.subscribe(
          id, subject,
          group == 0 ? std::nullopt : std::optional<std::string_view>(group == 1 ? "g" : "h"),
          options);
      if (status == SubscribeStatus::ok) {
        live.push_back({id, subject});
      }
    } else if (operation < 30) {
      std::vector<Message> batch(pick(4) == 0 ? 1 + pick(4) : 1);
      for (Message& message : batch) {
        message = Message::create(data());
      }
      const std::string_view subject = kSubjects.at(pick(3));
      if (pick(2) == 0) {
        broker.publish(subject, batch);
      } else {
        std::vector<std::string> ids;
        for (std::size_t i = 0; i < batch.size(); ++i) {
          ids.push_back("k" + std::to_string(pick(30)));
        }
        const std::vector<std::string_view> views(ids.begin(), ids.end());
        broker.publish(subject, batch, views);
      }
    } else if (operation < 48) {
      const Live& target = live.at(pick(live.size()));
      Fetched out;
      broker.fetch(target.subject, target.id, 1 + pick(4), pick(2) == 0, out);
      keep(target, out.deliveries);
    } else if (operation < 53) {
      const Live& target = live.at(pick(live.size()));
      AckWaiter& waiter = ack_waiters.emplace_back();
      waiter.target = target;
      if (broker.fetch_or_wait(target.subject, target.id, 1 + pick(3), waiter, pick(2) == 0) ==
          FetchStatus::ok) {
        keep(target, waiter.deliveries);
      }
    } else if (operation < 55 && !ack_waiters.empty()) {
      broker.cancel_wait(ack_waiters.back());
    } else if (operation < 67) {
      Live target = live.at(pick(live.size()));
      const std::vector<Receipt> chosen = answer(target);
      broker.ack(target.subject, target.id, chosen);
    } else if (operation < 75) {
      Live target = live.at(pick(live.size()));
      const std::vector<Receipt> chosen = answer(target);
      broker.nack(target.subject, target.id, chosen,
                  pick(2) == 0 ? milliseconds(0) : milliseconds(500 * pick(4)));
    } else if (operation < 80) {
      Live target = live.at(pick(live.size()));
      const std::vector<Receipt> chosen = answer(target);
      broker.extend(target.subject, target.id, chosen);
    } else if (operation < 83) {
      const std::size_t index = pick(live.size());
      broker.unsubscribe(live[index].subject, live[index].id);
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(index));
    } else {
      clock.advance(milliseconds(10 * (1 + pick(150))));
      broker.expire();
      broker.expire_deliveries();
    }
    // Woken waiters hold deliveries too.
    for (AckWaiter& waiter : ack_waiters) {
      if (waiter.woken) {
        keep(waiter.target, waiter.deliveries);
        waiter.deliveries.clear();
      }
    }
    most_in_flight = std::max<std::size_t>(most_in_flight, broker.totals().in_flight);
    if (pick(checkpoint_every) == 0) {
      RecordingSink taken;
      broker.checkpoint(taken);
      kinds.insert(taken.kinds.begin(), taken.kinds.end());
      snapshot = Snapshot{std::move(taken.records), sink.records.size()};
      expect_framed(*snapshot);
    }
    if (step % every == 0 || step == steps) {
      const std::string dump = normalised(broker.dump());
      EXPECT_EQ(normalised(replayed(limits, sink.records)), dump)
          << "seed " << seed << " step " << step;
      if (snapshot) {
        EXPECT_EQ(normalised(recovered(limits, *snapshot, sink.records)), dump)
            << "seed " << seed << " step " << step;
      }
    }
  }
  const Counters counters = broker.totals().counters;
  broker.wake_all_waiters();
  kinds.insert(sink.kinds.begin(), sink.kinds.end());
  return AckRun{std::move(sink.records), kinds, most_in_flight, counters};
}

// Long enough a life for subscriptions and messages to see several deliveries.
Limits ack_ttls(Limits limits) {
  limits.message_ttl = milliseconds(6000);
  limits.subscriber_ttl = milliseconds(20'000);
  return limits;
}

TEST(Journal, ReplayRebuildsAckModeQueuesButForWhatIsInFlight) {
  const AckRun run = drive_ack(ack_ttls(Limits{.dedupe_window = milliseconds(3000)}), 7, 4000, 50);
  EXPECT_GT(run.most_in_flight, 3U);
  EXPECT_GT(run.counters.acked, 10U);
  EXPECT_GT(run.counters.redelivered, 50U);
  EXPECT_GT(run.counters.dead_lettered, 3U);
  EXPECT_GT(run.counters.duplicates, 20U);
  for (const RecordType kind :
       {RecordType::subscribe, RecordType::subscribe_ack, RecordType::publish,
        RecordType::publish_ids, RecordType::deliver, RecordType::ack, RecordType::nack,
        RecordType::extend, RecordType::settle, RecordType::ack_state, RecordType::queue_state,
        RecordType::dedupe_state, RecordType::unsubscribe}) {
    EXPECT_TRUE(run.kinds.contains(kind)) << static_cast<int>(kind);
  }
}

TEST(Journal, ReplayRebuildsAckModeQueuesUnderPerQueueBounds) {
  drive_ack(ack_ttls(Limits{.max_pending_per_queue = 4,
                            .slow_queue_policy = SlowQueuePolicy::drop_oldest,
                            .dedupe_window = milliseconds(1000)}),
            8, 1500, 50);
  drive_ack(Limits{.max_pending = 30, .max_pending_per_queue = 5}, 9, 1500, 50);
}

TEST(Journal, CheckpointAndTheRecordsAfterItRebuildAckModeQueues) {
  std::size_t most_in_flight = 0;
  for (std::uint32_t seed = 200; seed < 240; ++seed) {
    most_in_flight =
        std::max(most_in_flight,
                 drive_ack(ack_ttls(Limits{.dedupe_window = milliseconds(500 * (1 + seed % 5))}),
                           seed, 400, 100, 1 + seed % 50)
                     .most_in_flight);
  }
  EXPECT_GT(most_in_flight, 3U);
}

// Leaving out any one ack-mode record kind changes the state the rest rebuild.
TEST(Journal, EveryAckRecordKindChangesTheReplayedState) {
  const Limits limits = ack_ttls(Limits{.dedupe_window = milliseconds(3000)});
  const AckRun run = drive_ack(limits, 7, 2000, 2000);
  const std::vector<std::string>& records = run.records;
  for (const RecordType kind : {RecordType::subscribe_ack, RecordType::deliver, RecordType::ack,
                                RecordType::settle, RecordType::publish_ids}) {
    bool changed = false;
    for (std::size_t end = 50; end <= records.size() && !changed; end += 50) {
      const std::vector<std::string> prefix(records.begin(),
                                            records.begin() + static_cast<std::ptrdiff_t>(end));
      changed = replayed(limits, prefix, kind) != replayed(limits, prefix);
    }
    EXPECT_TRUE(changed) << static_cast<int>(kind) << " seen " << run.kinds.contains(kind);
  }
}

TEST(Journal, RecordsSurviveTheirEncoding) {
  const auto batch =
      std::vector<Message>{Message::create(""), Message::create(std::string(300, 'x'))};
  Record record;
  record.type = RecordType::publish;
  record.time = -5;
  record.seq = Message::max_seq;
  record.count = 7;
  record.subject = "a.b";
  record.messages = batch;
  std::string bytes;
  encode(record, bytes);
  EXPECT_EQ(encoded_size(record), bytes.size());
  RecordStorage messages;
  const std::optional<Record> decoded = decode(bytes, messages);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->type, RecordType::publish);
  EXPECT_EQ(decoded->time, -5);
  EXPECT_EQ(decoded->seq, Message::max_seq);
  EXPECT_EQ(decoded->count, 7U);
  EXPECT_EQ(decoded->subject, "a.b");
  ASSERT_EQ(decoded->messages.size(), 2U);
  EXPECT_EQ(decoded->messages[1].data(), std::string(300, 'x'));
  Record drop;
  drop.type = RecordType::drop;
  drop.reason = 3;
  drop.grouped = true;
  drop.count = 2;
  drop.subject = "a.>";
  drop.group = "g";
  std::string drop_bytes;
  encode(drop, drop_bytes);
  const std::optional<Record> dropped = decode(drop_bytes, messages);
  ASSERT_TRUE(dropped.has_value());
  EXPECT_EQ(dropped->reason, 3U);
  EXPECT_TRUE(dropped->grouped);
  EXPECT_EQ(dropped->count, 2U);
  EXPECT_EQ(dropped->subject, "a.>");
  EXPECT_EQ(dropped->group, "g");
  // Any cut, an extra byte or an unknown type is refused, never read past.
  for (std::size_t size = 0; size < bytes.size(); ++size) {
    EXPECT_FALSE(decode(std::string_view(bytes).substr(0, size), messages).has_value()) << size;
  }
  EXPECT_FALSE(decode(bytes + 'x', messages).has_value());
  bytes[0] = static_cast<char>(static_cast<int>(RecordType::dedupe_state) + 1);
  EXPECT_FALSE(decode(bytes, messages).has_value());
}

// A push stream's subscription carries its flag through the encoding; no other record may, and a
// subscribe written before the flag (format 3 as it was) decodes as a lasting one.
TEST(Journal, OnlySubscribesCarryTheEphemeralFlag) {
  RecordStorage storage;
  for (const RecordType type : {RecordType::subscribe, RecordType::subscribe_ack}) {
    Record record;
    record.type = type;
    record.ephemeral = true;
    record.grouped = true;
    record.time = 9;
    record.subject = "a.>";
    record.id = "e";
    record.group = "g";
    if (type == RecordType::subscribe_ack) {
      record.options = {
          .ack_wait_ms = 30'000, .max_deliveries = 0, .max_in_flight = 5, .dead_letter = {}};
    }
    std::string bytes;
    encode(record, bytes);
    EXPECT_EQ(encoded_size(record), bytes.size());
    const std::optional<Record> decoded = decode(bytes, storage);
    ASSERT_TRUE(decoded.has_value());
    EXPECT_TRUE(decoded->ephemeral);
    EXPECT_TRUE(decoded->grouped);
    EXPECT_EQ(decoded->reason, 0U);
    bytes[1] = static_cast<char>(static_cast<unsigned char>(bytes[1]) & 0x7FU);
    const std::optional<Record> lasting = decode(bytes, storage);
    ASSERT_TRUE(lasting.has_value());
    EXPECT_FALSE(lasting->ephemeral);
  }
  Record unsubscribe;
  unsubscribe.type = RecordType::unsubscribe;
  unsubscribe.reason = static_cast<std::uint8_t>(DropReason::unsubscribe);
  unsubscribe.id = "e";
  std::string bytes;
  encode(unsubscribe, bytes);
  ASSERT_TRUE(decode(bytes, storage).has_value());
  bytes[1] = static_cast<char>(static_cast<unsigned char>(bytes[1]) | 0x80U);
  EXPECT_FALSE(decode(bytes, storage).has_value());
}

// Recovery removes the subscriptions of push streams, from the journal and from a checkpoint
// alike, with their messages, as unsubscribe would: a member of a group leaves it, the group and
// the lasting subscriptions stay as they were.
TEST(Journal, RecoveryRemovesEphemeralSubscriptions) {
  const ManualClock clock;
  const Limits limits;
  Broker broker(limits, clock);
  RecordingSink sink;
  broker.set_journal(&sink);
  ASSERT_EQ(broker.subscribe("d", "a", std::nullopt), SubscribeStatus::ok);
  ASSERT_EQ(
      broker.subscribe("e1", "a", std::nullopt, AckOptions{}, /*owner=*/{}, /*ephemeral=*/true),
      SubscribeStatus::ok);
  ASSERT_EQ(broker.subscribe("g1", "a.>", "g"), SubscribeStatus::ok);
  ASSERT_EQ(broker.subscribe("e2", "a.>", "g", AckOptions{}, /*owner=*/{}, /*ephemeral=*/true),
            SubscribeStatus::ok);
  ASSERT_EQ(broker.subscribe("e3", "b", "h", AckOptions{}, /*owner=*/{}, /*ephemeral=*/true),
            SubscribeStatus::ok);
  const std::vector<Message> batch = {Message::create("m1"), Message::create("m2")};
  ASSERT_EQ(broker.publish("a", batch), PublishStatus::ok);
  ASSERT_EQ(broker.publish("b", batch), PublishStatus::ok);
  RecordingSink taken;
  broker.checkpoint(taken);
  ASSERT_EQ(
      broker.subscribe("e4", "a", std::nullopt, AckOptions{}, /*owner=*/{}, /*ephemeral=*/true),
      SubscribeStatus::ok);
  ASSERT_EQ(broker.publish("a.c", batch), PublishStatus::ok);
  const std::size_t journaled = sink.records.size();

  for (const std::string_view id : {"e1", "e2", "e4"}) {
    ASSERT_EQ(broker.unsubscribe(id == "e2" ? "a.>" : "a", id), UnsubscribeStatus::ok);
  }
  ASSERT_EQ(broker.unsubscribe("b", "e3"), UnsubscribeStatus::ok);
  const std::string expected = broker.dump();
  ASSERT_EQ(expected.find("ephemeral"), std::string::npos);

  const auto restart = [&limits](const std::vector<std::string>& records) {
    const ManualClock elsewhere;
    Broker copy(limits, elsewhere);
    RecordStorage storage;
    for (const std::string& bytes : records) {
      const std::optional<Record> record = decode(bytes, storage);
      EXPECT_TRUE(record.has_value() && copy.apply(*record));
    }
    EXPECT_NE(copy.dump().find("ephemeral"), std::string::npos);
    copy.recovered();
    return copy.dump();
  };
  const std::vector<std::string> journal(
      sink.records.begin(), sink.records.begin() + static_cast<std::ptrdiff_t>(journaled));
  EXPECT_EQ(restart(journal), expected);
  std::vector<std::string> from_checkpoint = taken.records;
  const auto after = std::find_if(sink.records.begin(), sink.records.end(), [](const auto& bytes) {
    RecordStorage storage;
    const std::optional<Record> record = decode(bytes, storage);
    return record && record->id == "e4";
  });
  from_checkpoint.insert(from_checkpoint.end(), after,
                         sink.records.begin() + static_cast<std::ptrdiff_t>(journaled));
  EXPECT_EQ(restart(from_checkpoint), expected);
}

// A fetch record, as the bytes of its fields: type, flags, time, seq, count, then three empty
// strings and no messages.
std::string fetch_bytes(std::string_view time, std::string_view count) {
  std::string bytes{static_cast<char>(RecordType::fetch), '\0'};
  bytes.append(time);
  bytes.push_back('\0');
  bytes.append(count);
  bytes.append(4, '\0');
  return bytes;
}

// A sink that cannot write now (a full disk): the changes a client asks for that are neither a
// publish (which admit() judges) nor a fetch are refused before anything changes; fetches go on,
// and so does the removal of an ephemeral subscription (recovery removes it anyway).
class FullSink final : public JournalSink {
 public:
  void append(const Record& record) override { types.push_back(record.type); }
  bool admit_change() override { return !full; }
  bool admit(std::string_view /*subject*/, std::span<const Message> /*messages*/,
             std::span<const std::string_view> /*msg_ids*/) override {
    return !full;
  }
  bool full = false;
  std::vector<RecordType> types;
};

TEST(Journal, ASinkThatTakesNoChangeRefusesEverythingButPublishesAndFetches) {
  const ManualClock clock;
  const Limits limits;
  Broker broker(limits, clock);
  FullSink sink;
  broker.set_journal(&sink);
  ASSERT_EQ(broker.subscribe("s", "a", std::nullopt), SubscribeStatus::ok);
  AckOptions ack_mode;
  ack_mode.ack = true;
  ASSERT_EQ(broker.subscribe("k", "a", std::nullopt, ack_mode), SubscribeStatus::ok);
  ASSERT_EQ(
      broker.subscribe("e", "a", std::nullopt, AckOptions{}, /*owner=*/{}, /*ephemeral=*/true),
      SubscribeStatus::ok);
  const std::vector<Message> batch = {Message::create("m1"), Message::create("m2")};
  ASSERT_EQ(broker.publish("a", batch), PublishStatus::ok);
  sink.full = true;
  const std::string before = broker.dump();
  sink.types.clear();

  EXPECT_EQ(broker.subscribe("t", "a", std::nullopt), SubscribeStatus::storage_full);
  EXPECT_EQ(broker.unsubscribe("a", "s"), UnsubscribeStatus::storage_full);
  EXPECT_EQ(broker.unsubscribe("s"), UnsubscribeStatus::storage_full);
  EXPECT_EQ(broker.purge("a").status, AdminStatus::storage_full);
  EXPECT_EQ(broker.purge_subscription("s").status, AdminStatus::storage_full);
  EXPECT_EQ(broker.dump(), before);
  EXPECT_TRUE(sink.types.empty());
  // What is not admitted is checked first: a bad request is still told what is wrong with it.
  EXPECT_EQ(broker.unsubscribe("a", "nobody"), UnsubscribeStatus::bad_id);
  EXPECT_EQ(broker.subscribe("t", "a..", std::nullopt), SubscribeStatus::invalid_subject);

  FetchedMessages out;
  EXPECT_EQ(broker.fetch("a", "s", 1, out), FetchStatus::ok);
  EXPECT_EQ(out.size(), 1U);
  Fetched delivered;
  ASSERT_EQ(broker.fetch("a", "k", 2, false, delivered), FetchStatus::ok);
  ASSERT_EQ(delivered.deliveries.size(), 2U);
  const std::vector<Receipt> receipts = {delivered.deliveries[0].receipt};
  EXPECT_EQ(broker.ack("a", "k", receipts).status, AckStatus::storage_full);
  EXPECT_EQ(broker.nack("a", "k", receipts, milliseconds(0)).status, AckStatus::storage_full);
  EXPECT_EQ(broker.unsubscribe("a", "e"), UnsubscribeStatus::ok);
  EXPECT_EQ(sink.types, (std::vector<RecordType>{RecordType::fetch, RecordType::deliver,
                                                 RecordType::drop, RecordType::unsubscribe}));

  sink.full = false;
  EXPECT_EQ(broker.subscribe("t", "a", std::nullopt), SubscribeStatus::ok);
  EXPECT_EQ(broker.unsubscribe("a", "s"), UnsubscribeStatus::ok);
}

// A message past max_deliveries moves to its dead_letter subject even when the journal refuses
// publishes (a full disk, storage.max-bytes): it was answered 200 once, and a refusal here would
// lose it (it used to be counted as a dead letter dropped).
TEST(Journal, ADeadLetterIsNotRefusedByAFullJournal) {
  ManualClock clock;
  const Limits limits;
  Broker broker(limits, clock);
  FullSink sink;
  broker.set_journal(&sink);
  AckOptions options;
  options.ack = true;
  options.max_deliveries = 1;
  options.dead_letter = "dl";
  ASSERT_EQ(broker.subscribe("k", "a", std::nullopt, options), SubscribeStatus::ok);
  ASSERT_EQ(broker.subscribe("d", "dl", std::nullopt), SubscribeStatus::ok);
  ASSERT_EQ(broker.publish("a", std::vector<Message>{Message::create("m")}), PublishStatus::ok);
  Fetched delivered;
  ASSERT_EQ(broker.fetch("a", "k", 1, false, delivered), FetchStatus::ok);
  ASSERT_EQ(delivered.deliveries.size(), 1U);
  sink.full = true;
  EXPECT_EQ(broker.publish("a", std::vector<Message>{Message::create("refused")}),
            PublishStatus::storage_full);
  clock.advance(options.ack_wait + milliseconds(1));
  broker.expire_deliveries();
  EXPECT_EQ(broker.totals().counters.dead_lettered, 1U);
  EXPECT_EQ(broker.totals().counters.dead_letter_dropped, 0U);
  FetchedMessages out;
  ASSERT_EQ(broker.fetch("dl", "d", 10, out), FetchStatus::ok);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out.front().data(), "m");
}

TEST(Journal, NumbersAreShortestVarintsOfUpTo64Bits) {
  struct Case {
    std::uint64_t bits;
    std::size_t size;
  };
  for (const Case& value : {Case{0, 1}, Case{127, 1}, Case{128, 2}, Case{16383, 2}, Case{16384, 3},
                            Case{std::uint64_t{1} << 63U, 10}, Case{~std::uint64_t{0}, 10}}) {
    Record record;
    record.type = RecordType::checkpoint;
    record.time = static_cast<std::int64_t>(value.bits);
    record.seq = std::min(value.bits, Message::max_seq);
    std::string bytes;
    encode(record, bytes);
    EXPECT_EQ(bytes.size(), encoded_size(record));
    // type, format, flags, seq, count and the four empty lengths, around the time.
    EXPECT_EQ(bytes.size() - value.size - varint_bytes(record.seq), 8U) << value.bits;
    RecordStorage messages;
    const std::optional<Record> decoded = decode(bytes, messages);
    ASSERT_TRUE(decoded.has_value()) << value.bits;
    EXPECT_EQ(static_cast<std::uint64_t>(decoded->time), value.bits);
    EXPECT_EQ(decoded->seq, record.seq);
  }
  RecordStorage messages;
  ASSERT_TRUE(decode(fetch_bytes("\x7F", "\x81\x01"), messages).has_value());
  EXPECT_EQ(decode(fetch_bytes("\x7F", "\x81\x01"), messages)->count, 129U);
  // The high bit of the tenth byte is the 64th bit of the value.
  const std::string top = std::string(9, '\x80') + '\x01';
  ASSERT_TRUE(decode(fetch_bytes(top, "\x01"), messages).has_value());
  EXPECT_EQ(decode(fetch_bytes(top, "\x01"), messages)->time,
            std::numeric_limits<std::int64_t>::min());
  // Overlong forms of 0 and 1, a value past 64 bits, an eleventh byte, a varint cut short.
  for (const std::string& time :
       {std::string("\x80\x00", 2), std::string("\x81\x80\x00", 3), std::string(9, '\x80') + '\x02',
        std::string(9, '\xFF') + '\x7F', std::string(10, '\x80') + '\x01', std::string("\x80")}) {
    EXPECT_FALSE(decode(fetch_bytes(time, "\x01"), messages).has_value()) << time.size();
    EXPECT_FALSE(decode(fetch_bytes("\x01", time), messages).has_value()) << time.size();
  }
}

TEST(Journal, ASinglePublishOfASmallMessageTakesFewBytes) {
  const auto batch = std::vector<Message>{Message::create(std::string(16, 'm'))};
  Record record;
  record.type = RecordType::publish;
  record.time = std::int64_t{1'800'000'000} * 1'000'000'000;
  record.seq = 1'000'000;
  record.subject = "orders.eu";
  record.messages = batch;
  // With the 8-byte frame header, within 64 disk bytes per stored message.
  EXPECT_LE(encoded_size(record), 56U);
}

// Ack mode adds a deliver record per fetch and an ack record per ack call: for a consumer that
// fetches 10 and acks their receipts, 54 and 84 bytes with a UUID id and seqs near a million,
// under 16 bytes per message with the two 8-byte frame headers.
TEST(Journal, AFetchAndAckOfTenMessagesTakesFewBytesEach) {
  std::vector<std::uint64_t> seqs(10);
  for (std::size_t i = 0; i < seqs.size(); ++i) {
    seqs[i] = 1'000'000 + i;
  }
  Record deliver;
  deliver.type = RecordType::deliver;
  deliver.time = std::int64_t{1'800'000'000} * 1'000'000'000;
  deliver.count = 10;
  deliver.id = "052c5406-9f6f-4f33-8775-cec437f7e5f9";
  Record ack = deliver;
  ack.type = RecordType::ack;
  ack.count = 0;
  ack.numbers = seqs;
  EXPECT_EQ(encoded_size(deliver), 54U);
  EXPECT_EQ(encoded_size(ack), 84U);
  EXPECT_LE(encoded_size(deliver) + encoded_size(ack) + 16, 10U * 16);
}

// A batch is bounded by the request body only: 150 000 empty messages with one-byte msg_ids fit
// in 1 MiB of JSON, and their record must decode, or recovery would refuse the log.
TEST(Journal, AnIdempotentBatchOfAnySizeDecodes) {
  const std::vector<Message> batch(150'000, Message::create(""));
  const std::vector<std::string_view> msg_ids(batch.size(), "k");
  Record record;
  record.type = RecordType::publish_ids;
  record.time = 1;
  record.seq = 1;
  record.subject = "a";
  record.messages = batch;
  record.msg_ids = msg_ids;
  std::string bytes;
  encode(record, bytes);
  RecordStorage storage;
  const std::optional<Record> decoded = decode(bytes, storage);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->msg_ids.size(), batch.size());
}

TEST(Journal, ACheckpointOfAnotherFormatIsNamedAsSuch) {
  Record record;
  record.type = RecordType::checkpoint;
  record.seq = 3;
  std::string bytes;
  encode(record, bytes);
  EXPECT_EQ(checkpoint_format(bytes), log_format);
  // Format 1 had the reason, 0 for a checkpoint, where the format byte is now.
  const std::string old{static_cast<char>(RecordType::checkpoint), '\0', '\0'};
  EXPECT_EQ(checkpoint_format(old), 1U);
  RecordStorage messages;
  EXPECT_FALSE(decode(old + std::string(40, '\0'), messages).has_value());
  // Format 2, before the records of ack mode: named, and refused.
  std::string two = bytes;
  two[1] = 2;
  EXPECT_EQ(checkpoint_format(two), 2U);
  EXPECT_FALSE(decode(two, messages).has_value());
  EXPECT_TRUE(decode(bytes, messages).has_value());
  record.type = RecordType::checkpoint_end;
  bytes.clear();
  encode(record, bytes);
  EXPECT_FALSE(checkpoint_format(bytes).has_value());
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
