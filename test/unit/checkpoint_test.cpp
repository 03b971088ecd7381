// The checkpoint records (checkpoint, queue_state, checkpoint_end): their encoding and bounds,
// what apply accepts, and decode refusing every byte string that is not exactly one record the
// core could have written.
#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/broker.hpp"
#include "broker/journal.hpp"

namespace gophermq::broker {
namespace {

using std::chrono::milliseconds;

class ManualClock final : public Clock {
 public:
  [[nodiscard]] TimePoint now() const override { return now_; }
  void advance(milliseconds step) { now_ += step; }

 private:
  TimePoint now_ = TimePoint{} + std::chrono::hours(1);
};

// Keeps every record, decoded again from its bytes.
class Records final : public JournalSink {
 public:
  void append(const Record& record) override { encode(record, bytes.emplace_back()); }

  [[nodiscard]] std::vector<Record> decoded(std::vector<RecordStorage>& storage) const {
    std::vector<Record> records;
    storage.resize(bytes.size());
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      const std::optional<Record> record = decode(bytes[i], storage[i]);
      EXPECT_TRUE(record.has_value()) << i;
      if (record) {
        records.push_back(*record);
      }
    }
    return records;
  }

  std::vector<std::string> bytes;
};

std::string encoded(const Record& record) {
  std::string bytes;
  encode(record, bytes);
  return bytes;
}

std::vector<Message> numbered(
    std::initializer_list<std::pair<std::uint64_t, std::string_view>> list) {
  std::vector<Message> messages;
  for (const auto& [seq, data] : list) {
    messages.push_back(Message::create(data));
    messages.back().set_seq(seq);
  }
  return messages;
}

Record checkpoint_record(std::uint64_t seq) {
  Record record;
  record.type = RecordType::checkpoint;
  record.seq = seq;
  record.time = 123;
  return record;
}

Record queue_state(std::string_view subject, std::string_view id,
                   std::span<const Message> messages) {
  Record record;
  record.type = RecordType::queue_state;
  record.subject = subject;
  record.id = id;
  record.messages = messages;
  return record;
}

const std::vector<std::uint64_t> kSeqs = {4, 7, 9};
const std::vector<std::uint64_t> kDeliveries = {1, 3, 2, 1, 1};
const std::vector<std::string_view> kMsgIds = {"k1", "k2", "k3", "k4", "k5", "k6"};

// One valid record of every type, as the core writes them.
std::vector<Record> one_of_each(std::span<const Message> batch, std::span<const Message> state) {
  std::vector<Record> records(19);
  records[0].type = RecordType::subscribe;
  records[0].grouped = true;
  records[0].time = 5;
  records[0].subject = "a.>";
  records[0].id = "s1";
  records[0].group = "g";
  records[1].type = RecordType::unsubscribe;
  records[1].reason = static_cast<std::uint8_t>(DropReason::subscriber_ttl);
  records[1].id = "s1";
  records[2].type = RecordType::publish;
  records[2].time = 6;
  records[2].seq = 10;
  records[2].count = 1;
  records[2].subject = "a.b";
  records[2].messages = batch;
  records[3].type = RecordType::fetch;
  records[3].time = 7;
  records[3].count = 2;
  records[3].id = "s1";
  records[4].type = RecordType::drop;
  records[4].reason = static_cast<std::uint8_t>(DropReason::queue_full);
  records[4].count = 3;
  records[4].subject = "a";
  records[4].id = "s2";
  records[5] = checkpoint_record(Message::max_seq);
  records[6] = queue_state("a.*", "", state);
  records[6].grouped = true;
  records[6].group = "g";
  records[6].time = -8;
  records[6].published = "a.b";
  records[7].type = RecordType::checkpoint_end;
  records[7].count = 9;
  records[8] = records[0];
  records[8].type = RecordType::subscribe_ack;
  records[8].options = {2000, 3, 10, "dl"};
  for (const RecordType type :
       {RecordType::deliver, RecordType::ack, RecordType::nack, RecordType::extend}) {
    Record& record = records[static_cast<std::size_t>(type) - 1];
    record.type = type;
    record.time = 7;
    record.id = "s1";
    record.numbers = std::span(kSeqs).first(2);
  }
  records[9].count = 2;
  records[13].type = RecordType::settle;
  records[13].reason = static_cast<std::uint8_t>(DropReason::max_deliveries);
  records[13].subject = "a";
  records[13].id = "s2";
  records[13].numbers = std::span(kSeqs).first(1);
  records[14] = records[2];
  records[14].type = RecordType::publish_ids;
  records[14].msg_ids = std::span(kMsgIds).first(batch.size() + 1);
  records[15] = records[6];
  records[15].type = RecordType::ack_state;
  records[15].time = 0;
  records[15].numbers = std::span(kDeliveries).first(state.size());
  records[16].type = RecordType::dedupe_state;
  records[16].time = 11;
  records[16].subject = "a.b";
  records[16].msg_ids = std::span(kMsgIds).first(2);
  records[17].type = RecordType::owner;
  records[17].id = "s1";
  records[17].owner = "alice";
  records[18].type = RecordType::purge;
  records[18].reason = static_cast<std::uint8_t>(DropReason::purged);
  records[18].subject = "a";
  records[18].id = "s2";
  records[18].numbers = kSeqs;
  return records;
}

TEST(Checkpoint, NewRecordTypesSurviveTheirEncoding) {
  const std::vector<Message> state = numbered({{3, "three"}, {9, std::string(40, 'n')}, {12, ""}});
  Record record = queue_state("a.b", "s1", state);
  record.time = 77;
  const std::string bytes = encoded(record);
  EXPECT_EQ(encoded_size(record), bytes.size());
  RecordStorage messages;
  const std::optional<Record> decoded = decode(bytes, messages);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->type, RecordType::queue_state);
  EXPECT_FALSE(decoded->grouped);
  EXPECT_EQ(decoded->time, 77);
  EXPECT_EQ(decoded->subject, "a.b");
  EXPECT_EQ(decoded->id, "s1");
  ASSERT_EQ(decoded->messages.size(), 3U);
  for (std::size_t i = 0; i < state.size(); ++i) {
    EXPECT_EQ(decoded->messages[i].seq(), state[i].seq());
    EXPECT_EQ(decoded->messages[i].data(), state[i].data());
  }
  const std::optional<Record> start = decode(encoded(checkpoint_record(41)), messages);
  ASSERT_TRUE(start.has_value());
  EXPECT_EQ(start->type, RecordType::checkpoint);
  EXPECT_EQ(start->seq, 41U);
  EXPECT_EQ(start->time, 123);
  Record end;
  end.type = RecordType::checkpoint_end;
  end.count = 1'000'000;
  const std::optional<Record> ended = decode(encoded(end), messages);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->type, RecordType::checkpoint_end);
  EXPECT_EQ(ended->count, 1'000'000U);
}

TEST(Checkpoint, EncodedSizeIsWhatEncodeAppends) {
  const std::vector<Message> batch = {Message::create("x"), Message::create(std::string(70, 'y')),
                                      Message::create("")};
  const std::vector<Message> state = numbered({{1, "a"}, {2, std::string(5000, 'b')}});
  for (const Record& record : one_of_each(batch, state)) {
    std::string out = "prefix";
    encode(record, out);
    EXPECT_EQ(encoded_size(record), out.size() - 6) << static_cast<int>(record.type);
  }
}

TEST(Checkpoint, EveryCutAndEveryExtraByteIsRefused) {
  const std::vector<Message> batch = {Message::create("x"), Message::create(std::string(70, 'y'))};
  const std::vector<Message> state = numbered({{1, "a"}, {2, std::string(20, 'b')}});
  RecordStorage messages;
  for (const Record& record : one_of_each(batch, state)) {
    const std::string bytes = encoded(record);
    ASSERT_TRUE(decode(bytes, messages).has_value()) << static_cast<int>(record.type);
    for (std::size_t size = 0; size < bytes.size(); ++size) {
      EXPECT_FALSE(decode(std::string_view(bytes).substr(0, size), messages).has_value())
          << static_cast<int>(record.type) << " cut at " << size;
    }
    EXPECT_FALSE(decode(bytes + '\0', messages).has_value());
  }
}

// Random bytes, and valid records with random bytes overwritten: whatever decodes is exactly one
// record, whose encoding gives back the same bytes.
TEST(Checkpoint, DecodeTakesOnlyWholeRecordsFromRandomBytes) {
  const std::vector<Message> batch = {Message::create("x"), Message::create(std::string(30, 'y'))};
  const std::vector<Message> state = numbered({{1, "a"}, {2, std::string(20, 'b')}});
  const std::vector<Record> valid = one_of_each(batch, state);
  std::mt19937 random(7);
  RecordStorage messages;
  std::size_t accepted = 0;
  for (int round = 0; round < 20'000; ++round) {
    std::string bytes;
    if (round % 2 == 0) {
      bytes.resize(random() % 200);
      for (char& byte : bytes) {
        byte = static_cast<char>(random());
      }
    } else {
      bytes = encoded(valid.at(random() % valid.size()));
      for (auto flips = 1 + random() % 3; flips > 0; --flips) {
        bytes[random() % bytes.size()] = static_cast<char>(random());
      }
    }
    const std::optional<Record> record = decode(bytes, messages);
    if (record) {
      ++accepted;
      EXPECT_EQ(encoded(*record), bytes);
    }
  }
  // Overwriting a time, a count or a message byte leaves a valid record; most damage does not.
  EXPECT_GT(accepted, 0U);
  EXPECT_LT(accepted, 10'000U);
}

// Lengths and counts far beyond the bytes there are: refused, without reserving for them.
TEST(Checkpoint, DecodeRefusesLengthsBeyondTheBytes) {
  const std::vector<Message> state = numbered({{1, "a"}});
  std::string bytes = encoded(queue_state("a", "s", state));
  RecordStorage messages;
  // The message count (one varint byte) sits right after the three strings, before the only
  // message's seq, length and byte and the empty published subject.
  const std::size_t count_at = bytes.size() - 5;
  for (const std::size_t at : {count_at, count_at + 2}) {
    std::string damaged = bytes;
    damaged.replace(at, 1, "\xFF\xFF\xFF\x7F");
    EXPECT_FALSE(decode(damaged, messages).has_value()) << at;
  }
  Record publish;
  publish.type = RecordType::publish;
  publish.seq = 1;
  publish.subject = "a";
  bytes = encoded(publish);
  bytes.replace(bytes.size() - 1, 1, "\xFF\xFF\xFF\x7F");
  bytes.append(64, '\0');
  EXPECT_FALSE(decode(bytes, messages).has_value());
}

// A record of a shape the core never writes is refused, so damage the storage checksum missed
// cannot replay as some other change.
TEST(Checkpoint, DecodeRefusesRecordsTheCoreCouldNotHaveWritten) {
  const std::vector<Message> batch = {Message::create("x")};
  const std::vector<Message> state = numbered({{1, "a"}});
  const std::vector<Message> unnumbered = numbered({{0, "a"}});
  const std::vector<Message> too_high = numbered({{Message::max_seq + 1, "a"}});
  std::vector<Message> too_many(queue_state_max_messages + 1, Message::create("m"));
  for (std::size_t i = 0; i < too_many.size(); ++i) {
    too_many[i].set_seq(i + 1);
  }
  const std::string half(queue_state_max_bytes / 2, 'h');
  const std::vector<Message> too_large = numbered({{1, half}, {2, half}, {3, "x"}});
  const std::vector<Record> valid = one_of_each(batch, state);
  RecordStorage messages;
  std::vector<std::pair<std::string, Record>> wrong;
  const auto add = [&](std::string what, std::size_t index, auto change) {
    Record record = valid.at(index);
    change(record);
    wrong.emplace_back(std::move(what), record);
  };
  add("subscribe with a reason", 0, [](Record& r) { r.reason = 1; });
  add("owner without an owner", 17, [](Record& r) { r.owner = ""; });
  add("owner without an id", 17, [](Record& r) { r.id = ""; });
  add("owner with a subject", 17, [](Record& r) { r.subject = "a"; });
  add("owner of 65 bytes", 17, [&](Record& r) { r.owner = std::string_view(half).substr(0, 65); });
  add("subscribe grouped without a group", 0, [](Record& r) { r.group = ""; });
  add("subscribe with a group, not grouped", 0, [](Record& r) { r.grouped = false; });
  add("subscribe with messages", 0, [&](Record& r) { r.messages = batch; });
  add("unsubscribe with a time", 1, [](Record& r) { r.time = 1; });
  add("unsubscribe for an unknown reason", 1,
      [](Record& r) { r.reason = static_cast<std::uint8_t>(DropReason::count); });
  add("unsubscribe with a subject", 1, [](Record& r) { r.subject = "a"; });
  add("publish with an id", 2, [](Record& r) { r.id = "s"; });
  add("publish grouped", 2, [](Record& r) { r.grouped = true; });
  add("publish past the last seq", 2, [](Record& r) { r.seq = Message::max_seq + 1; });
  add("fetch with a group", 3, [](Record& r) { r.group = "g"; });
  add("fetch with a seq", 3, [](Record& r) { r.seq = 1; });
  add("fetch with messages", 3, [&](Record& r) { r.messages = batch; });
  add("drop with a time", 4, [](Record& r) { r.time = 1; });
  add("drop for an unknown reason", 4, [](Record& r) { r.reason = 200; });
  add("drop grouped with an id", 4, [](Record& r) {
    r.grouped = true;
    r.group = "g";
  });
  add("checkpoint with a count", 5, [](Record& r) { r.count = 1; });
  add("checkpoint past the last seq", 5, [](Record& r) { r.seq = Message::max_seq + 1; });
  add("checkpoint with a subject", 5, [](Record& r) { r.subject = "a"; });
  add("queue_state without messages", 6, [](Record& r) { r.messages = {}; });
  add("queue_state with a count", 6, [](Record& r) { r.count = 1; });
  add("queue_state grouped without a group", 6, [](Record& r) { r.group = ""; });
  add("queue_state without a seq", 6, [&](Record& r) { r.messages = unnumbered; });
  add("queue_state past the last seq", 6, [&](Record& r) { r.messages = too_high; });
  add("queue_state over its message bound", 6, [&](Record& r) { r.messages = too_many; });
  add("queue_state over its byte bound", 6, [&](Record& r) { r.messages = too_large; });
  add("checkpoint_end with a time", 7, [](Record& r) { r.time = 1; });
  add("checkpoint_end with an id", 7, [](Record& r) { r.id = "s"; });
  add("subscribe_ack with a short ack_wait", 8, [](Record& r) { r.options.ack_wait_ms = 999; });
  add("subscribe_ack with a long ack_wait", 8,
      [](Record& r) { r.options.ack_wait_ms = 43'200'001; });
  add("subscribe_ack with no room in flight", 8, [](Record& r) { r.options.max_in_flight = 0; });
  add("subscribe_ack with too much in flight", 8,
      [](Record& r) { r.options.max_in_flight = 100'001; });
  add("subscribe_ack with too many deliveries", 8,
      [](Record& r) { r.options.max_deliveries = 1001; });
  add("subscribe_ack with a dead letter and no limit", 8,
      [](Record& r) { r.options.max_deliveries = 0; });
  static const std::vector<std::uint64_t> zero = {0};
  static const std::vector<std::uint64_t> past = {Message::max_seq + 1};
  add("deliver of seq 0", 9, [](Record& r) { r.numbers = zero; });
  add("ack past the last seq", 10, [](Record& r) { r.numbers = past; });
  add("nack with a subject", 11, [](Record& r) { r.subject = "a"; });
  add("extend with a group", 12, [](Record& r) { r.group = "g"; });
  add("settle of nothing", 13, [](Record& r) { r.numbers = {}; });
  add("settle with a time", 13, [](Record& r) { r.time = 1; });
  add("publish_ids with an id short", 14, [](Record& r) { r.msg_ids = r.msg_ids.first(1); });
  static const std::vector<std::string_view> empty_id = {"k1", "", "k3", "k4"};
  static const std::string long_text(kMaxMsgIdLength + 1, 'i');
  static const std::vector<std::string_view> long_id = {"k1", long_text, "k3", "k4"};
  add("publish_ids with an empty msg_id", 14,
      [](Record& r) { r.msg_ids = std::span(empty_id).first(r.msg_ids.size()); });
  add("publish_ids with a msg_id too long", 14,
      [](Record& r) { r.msg_ids = std::span(long_id).first(r.msg_ids.size()); });
  static const std::vector<std::uint64_t> no_delivery = {0};
  static const std::vector<std::uint64_t> huge_delivery = {std::uint64_t{1} << 32U};
  add("ack_state without its delivery counts", 15, [](Record& r) { r.numbers = {}; });
  add("ack_state with a zero delivery count", 15, [](Record& r) { r.numbers = no_delivery; });
  add("ack_state with a count past 32 bits", 15, [](Record& r) { r.numbers = huge_delivery; });
  add("ack_state with a time", 15, [](Record& r) { r.time = 1; });
  add("dedupe_state without msg_ids", 16, [](Record& r) { r.msg_ids = {}; });
  add("dedupe_state with a seq", 16, [](Record& r) { r.seq = 1; });
  for (const auto& [what, record] : wrong) {
    std::string bytes = encoded(record);
    if (record.messages.data() == too_high.data()) {
      // encode writes the seq a Message can hold; write the one it cannot by hand.
      // The varint of the only message's seq ends three bytes (its length and data, then the
      // published subject's) from the end.
      std::size_t seq_at = bytes.size() - 4;
      while (seq_at > 0 && (static_cast<unsigned char>(bytes[seq_at - 1]) & 0x80U) != 0) {
        --seq_at;
      }
      std::string seq;
      for (std::uint64_t value = Message::max_seq + 1; value != 0; value >>= 7U) {
        seq.push_back(static_cast<char>((value & 0x7FU) | (value >= 0x80U ? 0x80U : 0U)));
      }
      bytes.replace(seq_at, bytes.size() - 3 - seq_at, seq);
    }
    EXPECT_FALSE(decode(bytes, messages).has_value()) << what;
  }
  for (const Record& record : valid) {
    EXPECT_TRUE(decode(encoded(record), messages).has_value()) << static_cast<int>(record.type);
  }
}

// Fills one ungrouped queue with `count` messages of `size` bytes and returns its checkpoint's
// queue_state records.
std::vector<std::size_t> state_sizes(const Limits& limits, std::size_t count, std::size_t size,
                                     std::vector<std::uint64_t>* message_bytes = nullptr) {
  Broker broker(limits);
  EXPECT_EQ(broker.subscribe("s", "a", std::nullopt), SubscribeStatus::ok);
  const std::vector<Message> one = {Message::create(std::string(size, 'm'))};
  for (std::size_t i = 0; i < count; ++i) {
    EXPECT_EQ(broker.publish("a", one), PublishStatus::ok);
  }
  Records records;
  broker.checkpoint(records);
  std::vector<RecordStorage> storage;
  std::vector<std::size_t> sizes;
  std::uint64_t next_seq = 1;
  for (const Record& record : records.decoded(storage)) {
    if (record.type != RecordType::queue_state) {
      continue;
    }
    sizes.push_back(record.messages.size());
    std::uint64_t bytes = 0;
    for (const Message& message : record.messages) {
      EXPECT_EQ(message.seq(), next_seq++);
      bytes += message.size();
    }
    if (message_bytes != nullptr) {
      message_bytes->push_back(bytes);
    }
  }
  EXPECT_EQ(next_seq, count + 1);
  return sizes;
}

TEST(Checkpoint, QueueStateRecordsHoldAtMost4096Messages) {
  const Limits limits{.max_pending = 20'000};
  EXPECT_EQ(state_sizes(limits, 10'000, 16), (std::vector<std::size_t>{4096, 4096, 1808}));
  EXPECT_EQ(state_sizes(limits, 4096, 1), (std::vector<std::size_t>{4096}));
  EXPECT_EQ(state_sizes(limits, 4097, 0), (std::vector<std::size_t>{4096, 1}));
}

TEST(Checkpoint, QueueStateRecordsHoldAboutOneMebibyte) {
  const Limits limits{.max_pending_bytes = 64ULL << 20, .max_message_bytes = 3U << 20};
  std::vector<std::uint64_t> bytes;
  // 300 KiB each: three fit in 1 MiB, a fourth would not.
  EXPECT_EQ(state_sizes(limits, 10, 300 << 10, &bytes), (std::vector<std::size_t>{3, 3, 3, 1}));
  bytes.clear();
  // Exactly 1 MiB fits.
  EXPECT_EQ(state_sizes(limits, 5, 512 << 10, &bytes), (std::vector<std::size_t>{2, 2, 1}));
  EXPECT_EQ(bytes.front(), queue_state_max_bytes);
  // A message larger than the bound has a record of its own.
  EXPECT_EQ(state_sizes(limits, 3, 2U << 20), (std::vector<std::size_t>{1, 1, 1}));
}

// One record per run of messages sharing a publish stamp, carrying that stamp: the copy expires
// each message when the original would.
TEST(Checkpoint, QueueStateRecordsCarryTheirStamps) {
  const Limits limits{.subscriber_ttl = milliseconds(0), .message_ttl = milliseconds(1000)};
  ManualClock clock;
  Broker broker(limits, clock);
  ASSERT_EQ(broker.subscribe("s", "a", std::nullopt), SubscribeStatus::ok);
  const std::vector<Message> three(3, Message::create("x"));
  const TimePoint first = clock.now();
  ASSERT_EQ(broker.publish("a", three), PublishStatus::ok);
  clock.advance(milliseconds(300));
  const TimePoint second = clock.now();
  ASSERT_EQ(broker.publish("a", std::span(three).first(2)), PublishStatus::ok);
  Records records;
  broker.checkpoint(records);
  std::vector<RecordStorage> storage;
  const std::vector<Record> decoded = records.decoded(storage);
  ASSERT_EQ(decoded.size(), 5U);  // checkpoint, subscribe, two queue_states, end
  EXPECT_EQ(decoded[2].time, to_record_time(first));
  EXPECT_EQ(decoded[2].messages.size(), 3U);
  EXPECT_EQ(decoded[3].time, to_record_time(second));
  EXPECT_EQ(decoded[3].messages.size(), 2U);
  Broker copy(limits, clock);
  for (const Record& record : decoded) {
    EXPECT_TRUE(copy.apply(record));
  }
  EXPECT_EQ(copy.dump(), broker.dump());
  clock.advance(milliseconds(700));
  broker.expire();
  copy.expire();
  EXPECT_EQ(copy.totals().pending_messages, 2U);
  EXPECT_EQ(copy.dump(), broker.dump());
}

// Without message-ttl no stamps are kept and none is written.
TEST(Checkpoint, QueueStateRecordsWithoutStampsHaveNoTime) {
  Broker broker(Limits{});
  ASSERT_EQ(broker.subscribe("s", "a", "g"), SubscribeStatus::ok);
  const std::vector<Message> two(2, Message::create("x"));
  ASSERT_EQ(broker.publish("a", two), PublishStatus::ok);
  Records records;
  broker.checkpoint(records);
  std::vector<RecordStorage> storage;
  const std::vector<Record> decoded = records.decoded(storage);
  ASSERT_EQ(decoded.size(), 4U);
  EXPECT_EQ(decoded[2].type, RecordType::queue_state);
  EXPECT_TRUE(decoded[2].grouped);
  EXPECT_EQ(decoded[2].group, "g");
  EXPECT_EQ(decoded[2].time, 0);
}

// Rebuilds `broker` from its checkpoint into a core with the same limits and clock.
std::string rebuilt(const Broker& broker, const Clock& clock) {
  Records records;
  broker.checkpoint(records);
  std::vector<RecordStorage> storage;
  Broker copy(broker.limits(), clock);
  for (const Record& record : records.decoded(storage)) {
    EXPECT_TRUE(copy.apply(record)) << static_cast<int>(record.type);
  }
  return copy.dump();
}

// Found by the journal fuzzer: an empty batch left an empty stamp, which no checkpoint carries.
TEST(Checkpoint, AnEmptyBatchLeavesNoStamp) {
  ManualClock clock;
  Broker broker(Limits{.message_ttl = milliseconds(1000)}, clock);
  ASSERT_EQ(broker.subscribe("s", "a", std::nullopt), SubscribeStatus::ok);
  ASSERT_EQ(broker.publish("a", {}), PublishStatus::ok);
  EXPECT_EQ(rebuilt(broker, clock), broker.dump());
}

// Found by the journal fuzzer: times at the end of the clock's range, where adding the stamp tick
// saturates, still share one stamp.
TEST(Checkpoint, EqualTimesShareAStampAtTheEndOfTime) {
  const Limits limits{.message_ttl = milliseconds(1000)};
  Broker broker(limits);
  Record subscribe;
  subscribe.type = RecordType::subscribe;
  subscribe.subject = "a";
  subscribe.id = "s";
  ASSERT_TRUE(broker.apply(subscribe));
  const std::vector<Message> one = {Message::create("x")};
  Record publish;
  publish.type = RecordType::publish;
  publish.subject = "a";
  publish.messages = one;
  publish.time = to_record_time(TimePoint::max());
  for (std::uint64_t seq = 1; seq <= 2; ++seq) {
    publish.seq = seq;
    ASSERT_TRUE(broker.apply(publish));
  }
  EXPECT_EQ(rebuilt(broker, steady_clock()), broker.dump());
}

// Found by the journal fuzzer: a replayed publish stamped before the queue's newest stamp joins
// it without moving it back, so no two stamps are ever equal and a checkpoint rebuilds them.
TEST(Checkpoint, StampsOnlyGrowWhenAReplayedTimeGoesBack) {
  const Limits limits{.message_ttl = milliseconds(1000)};
  Broker broker(limits);
  Record subscribe;
  subscribe.type = RecordType::subscribe;
  subscribe.subject = "a";
  subscribe.id = "s";
  ASSERT_TRUE(broker.apply(subscribe));
  const std::vector<Message> one = {Message::create("x")};
  Record publish;
  publish.type = RecordType::publish;
  publish.subject = "a";
  publish.messages = one;
  const TimePoint start = TimePoint{} + std::chrono::hours(1);
  for (const TimePoint time : {start, start + milliseconds(50), start}) {
    ++publish.seq;
    publish.time = to_record_time(time);
    ASSERT_TRUE(broker.apply(publish));
  }
  EXPECT_EQ(rebuilt(broker, steady_clock()), broker.dump());
}

TEST(Checkpoint, AnEmptyCoreCheckpointsAsTwoRecords) {
  Broker broker(Limits{});
  Records records;
  broker.checkpoint(records);
  std::vector<RecordStorage> storage;
  const std::vector<Record> decoded = records.decoded(storage);
  ASSERT_EQ(decoded.size(), 2U);
  EXPECT_EQ(decoded[0].type, RecordType::checkpoint);
  EXPECT_EQ(decoded[0].seq, 0U);
  EXPECT_EQ(decoded[1].type, RecordType::checkpoint_end);
  EXPECT_EQ(decoded[1].count, 0U);
}

// Subscriptions come back active when they were, so subscriber-ttl removes each on time.
TEST(Checkpoint, SubscriptionsResumeTheirActivity) {
  const Limits limits{.subscriber_ttl = milliseconds(5000)};
  ManualClock clock;
  Broker broker(limits, clock);
  ASSERT_EQ(broker.subscribe("old", "a", std::nullopt), SubscribeStatus::ok);
  clock.advance(milliseconds(3000));
  ASSERT_EQ(broker.subscribe("new", "a", "g"), SubscribeStatus::ok);
  Records records;
  broker.checkpoint(records);
  std::vector<RecordStorage> storage;
  Broker copy(limits, clock);
  for (const Record& record : records.decoded(storage)) {
    EXPECT_TRUE(copy.apply(record));
  }
  clock.advance(milliseconds(2000));
  copy.expire();
  EXPECT_EQ(copy.totals().subscriptions, 1U);
  FetchedMessages out;
  EXPECT_EQ(copy.fetch("a", "old", 1, out), FetchStatus::bad_id);
  EXPECT_EQ(copy.fetch("a", "new", 1, out), FetchStatus::ok);
}

// API.md §11: a subscription belongs to the token that made it, across a checkpoint and the
// records after it.
TEST(Checkpoint, OwnersSurviveACheckpointAndTheJournal) {
  ManualClock clock;
  Broker broker(Limits{}, clock);
  Records journal;
  broker.set_journal(&journal);
  ASSERT_EQ(broker.subscribe("before", "a", std::nullopt, AckOptions{}, "alice"),
            SubscribeStatus::ok);
  ASSERT_EQ(broker.subscribe("open", "a", std::nullopt), SubscribeStatus::ok);
  Records checkpoint;
  broker.checkpoint(checkpoint);
  ASSERT_EQ(broker.subscribe("after", "a", "g", AckOptions{}, "bob"), SubscribeStatus::ok);
  EXPECT_NE(broker.dump().find("owner alice"), std::string::npos);

  std::vector<RecordStorage> storage;
  Broker copy(Limits{}, clock);
  for (const Record& record : checkpoint.decoded(storage)) {
    ASSERT_TRUE(copy.apply(record)) << static_cast<int>(record.type);
  }
  std::vector<RecordStorage> later;
  const std::vector<Record> records = journal.decoded(later);
  ASSERT_EQ(records.size(), 5U);  // subscribe, owner; subscribe; then subscribe, owner
  EXPECT_EQ(records[1].type, RecordType::owner);
  EXPECT_EQ(records[1].owner, "alice");
  EXPECT_EQ(records[2].type, RecordType::subscribe);
  ASSERT_TRUE(copy.apply(records[3]));
  ASSERT_TRUE(copy.apply(records[4]));
  EXPECT_EQ(copy.dump(), broker.dump());

  for (const Broker* core : {&broker, &copy}) {
    EXPECT_TRUE(core->may_use("before", "alice"));
    EXPECT_FALSE(core->may_use("before", "bob"));
    EXPECT_TRUE(core->may_use("before", ""));   // access control off
    EXPECT_TRUE(core->may_use("open", "bob"));  // made while it was off
    EXPECT_TRUE(core->may_use("after", "bob"));
    EXPECT_FALSE(core->may_use("after", "alice"));
    EXPECT_FALSE(core->may_use("none", "alice"));
    EXPECT_FALSE(core->may_use("none", ""));
  }
  // An owner record needs its subscription, and only one owner.
  EXPECT_FALSE(copy.apply(records[1]));
  Record stray = records[1];
  stray.id = "none";
  EXPECT_FALSE(copy.apply(stray));
}

TEST(Checkpoint, ApplyTakesACheckpointOnlyOnAnEmptyCore) {
  Broker empty(Limits{});
  EXPECT_TRUE(empty.apply(checkpoint_record(41)));
  EXPECT_NE(empty.dump().find("last seq 41"), std::string::npos);
  Record publish;
  publish.type = RecordType::publish;
  publish.subject = "a";
  publish.seq = 41;  // already taken
  EXPECT_FALSE(empty.apply(publish));
  EXPECT_FALSE(empty.apply(checkpoint_record(50)));  // the first one made it non-empty

  Broker subscribed(Limits{});
  ASSERT_EQ(subscribed.subscribe("s", "a", std::nullopt), SubscribeStatus::ok);
  const std::string before = subscribed.dump();
  EXPECT_FALSE(subscribed.apply(checkpoint_record(0)));
  EXPECT_EQ(subscribed.dump(), before);

  // Subscriptions all gone, but messages were published: not empty either.
  const std::vector<Message> one = {Message::create("x")};
  ASSERT_EQ(subscribed.publish("a", one), PublishStatus::ok);
  ASSERT_EQ(subscribed.unsubscribe("a", "s"), UnsubscribeStatus::ok);
  const std::string drained = subscribed.dump();
  EXPECT_FALSE(subscribed.apply(checkpoint_record(5)));
  EXPECT_EQ(subscribed.dump(), drained);

  Record end;
  end.type = RecordType::checkpoint_end;
  end.count = 3;
  EXPECT_TRUE(subscribed.apply(end));
  EXPECT_EQ(subscribed.dump(), drained);
}

// A queue_state that names no queue, or would put it out of order, changes nothing.
TEST(Checkpoint, ApplyRefusesQueueStatesThatDoNotFit) {
  const Limits limits{.message_ttl = milliseconds(1000)};
  Broker broker(limits);
  ASSERT_TRUE(broker.apply(checkpoint_record(10)));
  Record subscribe;
  subscribe.type = RecordType::subscribe;
  subscribe.subject = "a";
  subscribe.id = "s";
  ASSERT_TRUE(broker.apply(subscribe));
  const std::vector<Message> first = numbered({{4, "four"}, {6, "six"}});
  Record state = queue_state("a", "s", first);
  state.time = 1000;
  ASSERT_TRUE(broker.apply(state));
  const std::string before = broker.dump();

  const std::vector<Message> older = numbered({{5, "five"}});
  const std::vector<Message> unordered = numbered({{8, "eight"}, {7, "seven"}});
  const std::vector<Message> beyond = numbered({{11, "eleven"}});
  const std::vector<Message> fine = numbered({{7, "seven"}});
  std::vector<std::pair<std::string, Record>> wrong;
  Record record = queue_state("a", "nobody", fine);
  wrong.emplace_back("unknown subscription", record);
  record = queue_state("b", "s", fine);
  wrong.emplace_back("subscription of another subject", record);
  record = queue_state("a", "", fine);
  record.grouped = true;
  record.group = "g";
  wrong.emplace_back("unknown group", record);
  record = queue_state("a", "s", older);
  wrong.emplace_back("older than the queue's newest", record);
  record = queue_state("a", "s", unordered);
  wrong.emplace_back("out of order", record);
  record = queue_state("a", "s", beyond);
  wrong.emplace_back("past the checkpoint's last seq", record);
  record = queue_state("a", "s", {});
  wrong.emplace_back("no messages", record);
  for (const auto& [what, bad] : wrong) {
    EXPECT_FALSE(broker.apply(bad)) << what;
    EXPECT_EQ(broker.dump(), before) << what;
  }
  record = queue_state("a", "s", fine);
  record.time = 1000;
  EXPECT_TRUE(broker.apply(record));
  EXPECT_EQ(broker.totals().pending_messages, 3U);
  EXPECT_EQ(broker.totals().pending_bytes, 12U);
  // Stamped before the newest stamp, as after a clock that went back: kept, not lost.
  const std::vector<Message> later = numbered({{8, "eight"}});
  record = queue_state("a", "s", later);
  record.time = 500;
  EXPECT_TRUE(broker.apply(record));
  EXPECT_EQ(broker.totals().pending_messages, 4U);
}

// Replay rebuilds state; counters count what this process did, so a recovered core starts them
// at zero wherever its log began.
TEST(Checkpoint, ReplayLeavesTheCountersAlone) {
  const Limits limits{.max_pending_per_queue = 1,
                      .slow_queue_policy = SlowQueuePolicy::drop_oldest};
  Broker broker(limits);
  Records records;
  broker.set_journal(&records);
  ASSERT_EQ(broker.subscribe("s", "a", std::nullopt), SubscribeStatus::ok);
  const std::vector<Message> two(2, Message::create("x"));
  ASSERT_EQ(broker.publish("a", two), PublishStatus::ok);
  FetchedMessages out;
  ASSERT_EQ(broker.fetch("a", "s", 1, out), FetchStatus::ok);
  const Counters counted = broker.totals().counters;
  EXPECT_EQ(counted.published, 2U);
  EXPECT_EQ(counted.delivered, 1U);
  Broker copy(limits);
  std::vector<RecordStorage> storage;
  for (const Record& record : records.decoded(storage)) {
    EXPECT_TRUE(copy.apply(record));
  }
  EXPECT_EQ(copy.dump(), broker.dump());
  const Counters replayed = copy.totals().counters;
  EXPECT_EQ(replayed.published, 0U);
  EXPECT_EQ(replayed.delivered, 0U);
  for (const std::uint64_t dropped : replayed.dropped) {
    EXPECT_EQ(dropped, 0U);
  }
}

// ---- Ack mode ----

AckOptions ack_options(std::uint32_t max_deliveries, std::string_view dead_letter) {
  AckOptions options;
  options.ack = true;
  options.ack_wait = milliseconds(2000);
  options.max_deliveries = max_deliveries;
  options.dead_letter = dead_letter;
  options.max_in_flight = 7;
  return options;
}

// A restart as storage makes it: a new core with the same limits replays `records` and ends the
// replay; `records` then start again with its checkpoint, and it journals there.
std::unique_ptr<Broker> restarted(const Limits& limits, const Clock& clock, Records& records) {
  auto copy = std::make_unique<Broker>(limits, clock);
  std::vector<RecordStorage> storage;
  for (const Record& record : records.decoded(storage)) {
    EXPECT_TRUE(copy->apply(record)) << static_cast<int>(record.type);
  }
  copy->recovered();
  records.bytes.clear();
  copy->checkpoint(records);
  copy->set_journal(&records);
  return copy;
}

std::vector<std::uint32_t> delivery_counts(Broker& broker, std::string_view subject,
                                           std::string_view id) {
  Deliveries out;
  EXPECT_EQ(broker.fetch_deliveries(subject, id, 100, out), FetchStatus::ok);
  std::vector<std::uint32_t> counts;
  for (const Delivery& delivery : out) {
    counts.push_back(delivery.deliveries);
  }
  return counts;
}

TEST(AckDurability, InFlightMessagesArePendingAgainAfterARestartWithTheirDeliveryCounts) {
  ManualClock clock;
  Records records;
  Broker broker(Limits{}, clock);
  broker.set_journal(&records);
  ASSERT_EQ(broker.subscribe("s", "a", std::nullopt, ack_options(0, "")), SubscribeStatus::ok);
  const std::vector<Message> three = {Message::create("x"), Message::create("y"),
                                      Message::create("z")};
  ASSERT_EQ(broker.publish("a", three), PublishStatus::ok);
  Deliveries first;
  ASSERT_EQ(broker.fetch_deliveries("a", "s", 2, first), FetchStatus::ok);
  ASSERT_EQ(first.size(), 2U);
  const std::vector<Receipt> nacked = {first[0].receipt};
  EXPECT_EQ(broker.nack("a", "s", nacked, milliseconds(0)).applied, 1U);
  EXPECT_EQ(delivery_counts(broker, "a", "s"), (std::vector<std::uint32_t>{2, 1}));
  const auto copy = restarted(broker.limits(), clock, records);
  ASSERT_NE(copy->ack_options("a", "s"), nullptr);
  EXPECT_EQ(*copy->ack_options("a", "s"), ack_options(0, ""));
  EXPECT_EQ(copy->totals().pending_messages, 3U);
  EXPECT_EQ(copy->totals().in_flight, 0U);
  // x twice, y and z once, all in flight at the restart and pending again after it.
  EXPECT_EQ(delivery_counts(*copy, "a", "s"), (std::vector<std::uint32_t>{3, 2, 2}));
}

// The crash-loop rule: a message in flight at a crash whose deliveries reached max_deliveries
// is dead-lettered when the replay ends, never delivered again; one below the limit is kept.
TEST(AckDurability, ACrashLoopCannotDeliverPastMaxDeliveries) {
  ManualClock clock;
  Records records;
  auto broker = std::make_unique<Broker>(Limits{}, clock);
  broker->set_journal(&records);
  ASSERT_EQ(broker->subscribe("s", "a", std::nullopt, ack_options(2, "dl")), SubscribeStatus::ok);
  ASSERT_EQ(broker->subscribe("d", "dl", std::nullopt), SubscribeStatus::ok);
  const std::vector<Message> poison = {Message::create("poison")};
  ASSERT_EQ(broker->publish("a", poison), PublishStatus::ok);
  for (std::uint32_t delivery = 1; delivery <= 2; ++delivery) {
    EXPECT_EQ(delivery_counts(*broker, "a", "s"), (std::vector<std::uint32_t>{delivery}));
    if (delivery == 2) {
      // The same log, replayed twice, ends in the same state.
      Records log = records;
      Records other = records;
      EXPECT_EQ(restarted(Limits{}, clock, log)->dump(), restarted(Limits{}, clock, other)->dump());
    }
    broker = restarted(Limits{}, clock, records);
  }
  EXPECT_EQ(delivery_counts(*broker, "a", "s"), (std::vector<std::uint32_t>{}));
  EXPECT_EQ(broker->totals().counters.dead_lettered, 1U);
  FetchedMessages dead;
  ASSERT_EQ(broker->fetch("dl", "d", 10, dead), FetchStatus::ok);
  ASSERT_EQ(dead.size(), 1U);
  EXPECT_EQ(dead.front().data(), "poison");
}

TEST(AckDurability, AMessageInFlightAtMaxDeliveriesWithoutADeadLetterIsDroppedAtRecovery) {
  ManualClock clock;
  Records records;
  Broker broker(Limits{}, clock);
  broker.set_journal(&records);
  ASSERT_EQ(broker.subscribe("s", "a", "g", ack_options(1, "")), SubscribeStatus::ok);
  const std::vector<Message> two = {Message::create("x"), Message::create("y")};
  ASSERT_EQ(broker.publish("a", two), PublishStatus::ok);
  Deliveries out;
  ASSERT_EQ(broker.fetch_deliveries("a", "s", 1, out), FetchStatus::ok);
  const auto copy = restarted(broker.limits(), clock, records);
  EXPECT_EQ(copy->totals().counters.dropped[static_cast<std::size_t>(DropReason::max_deliveries)],
            1U);
  EXPECT_EQ(copy->totals().pending_messages, 1U);
  EXPECT_EQ(delivery_counts(*copy, "a", "s"), (std::vector<std::uint32_t>{1}));
}

// A timeout or nack at max_deliveries leaves a settle record and the dead letter's publish.
TEST(AckDurability, DeadLettersByTimeoutAndNackReplayAsTheyHappened) {
  ManualClock clock;
  Records records;
  Broker broker(Limits{}, clock);
  broker.set_journal(&records);
  ASSERT_EQ(broker.subscribe("s", "a", std::nullopt, ack_options(1, "dl")), SubscribeStatus::ok);
  ASSERT_EQ(broker.subscribe("d", "dl", std::nullopt), SubscribeStatus::ok);
  const std::vector<Message> two = {Message::create("x"), Message::create("y")};
  ASSERT_EQ(broker.publish("a", two), PublishStatus::ok);
  Deliveries out;
  ASSERT_EQ(broker.fetch_deliveries("a", "s", 2, out), FetchStatus::ok);
  const std::vector<Receipt> nacked = {out[1].receipt};
  EXPECT_EQ(broker.nack("a", "s", nacked, milliseconds(0)).applied, 1U);
  clock.advance(milliseconds(2000));
  broker.expire_deliveries();
  EXPECT_EQ(broker.totals().counters.dead_lettered, 2U);
  const auto copy = restarted(broker.limits(), clock, records);
  EXPECT_EQ(copy->dump(), broker.dump());
  EXPECT_EQ(copy->totals().counters.dead_lettered, 0U);  // replay counts nothing
}

TEST(AckDurability, AMsgIdIsStillADuplicateAfterARestartUntilTheWindowPasses) {
  ManualClock clock;
  const Limits limits{.dedupe_window = milliseconds(5000)};
  for (const bool from_checkpoint : {false, true}) {
    Records records;
    Broker broker(limits, clock);
    broker.set_journal(&records);
    ASSERT_EQ(broker.subscribe("s", "a", std::nullopt), SubscribeStatus::ok);
    const std::vector<Message> one = {Message::create("x")};
    const std::vector<std::string_view> k1 = {"k1"};
    const std::vector<std::string_view> k2 = {"k2"};
    EXPECT_EQ(broker.publish("a", one, k1).duplicates, 0U);
    clock.advance(milliseconds(3000));
    EXPECT_EQ(broker.publish("a", one, k2).duplicates, 0U);
    Records source;
    if (from_checkpoint) {
      broker.checkpoint(source);
    } else {
      source = records;
    }
    const auto copy = restarted(limits, clock, source);
    EXPECT_EQ(copy->dump(), broker.dump());
    EXPECT_EQ(copy->publish("a", one, k1).duplicates, 1U) << from_checkpoint;
    EXPECT_EQ(copy->publish("a", one, k2).duplicates, 1U) << from_checkpoint;
    // k1 was published 5 s ago, k2 2 s ago.
    clock.advance(milliseconds(2000));
    EXPECT_EQ(copy->publish("a", one, k1).duplicates, 0U) << from_checkpoint;
    EXPECT_EQ(copy->publish("a", one, k2).duplicates, 1U) << from_checkpoint;
  }
}

// A message queued on a wildcard pattern keeps the subject it was published to through a
// checkpoint, whether never delivered or delivered and pending again.
TEST(AckDurability, APublishedSubjectSurvivesACheckpoint) {
  ManualClock clock;
  Broker broker(Limits{}, clock);
  ASSERT_EQ(broker.subscribe("p", "a.*", std::nullopt), SubscribeStatus::ok);
  ASSERT_EQ(broker.subscribe("s", "a.*", "g", ack_options(3, "")), SubscribeStatus::ok);
  const std::vector<Message> one = {Message::create("m")};
  for (const std::string_view subject : {"a.b", "a.c", "a.c", "a.b"}) {
    ASSERT_EQ(broker.publish(subject, one), PublishStatus::ok);
  }
  Deliveries held;
  ASSERT_EQ(broker.fetch_deliveries("a.*", "s", 2, held), FetchStatus::ok);
  Records records;
  broker.checkpoint(records);
  const auto copy = restarted(broker.limits(), clock, records);
  const auto subjects = [&](std::string_view id) {
    Fetched out;
    EXPECT_EQ(copy->fetch("a.*", id, 10, true, out), FetchStatus::ok);
    std::vector<std::string> seen;
    for (const Delivery& delivery : out.deliveries) {
      seen.push_back(delivery.subject + "/" + std::to_string(delivery.deliveries));
    }
    return seen;
  };
  EXPECT_EQ(subjects("p"), (std::vector<std::string>{"a.b/0", "a.c/0", "a.c/0", "a.b/0"}));
  EXPECT_EQ(subjects("s"), (std::vector<std::string>{"a.b/2", "a.c/2", "a.c/1", "a.b/1"}));
}

// What replay refuses of ack mode changes nothing.
TEST(AckDurability, ApplyRefusesAckRecordsTheStateCannotTake) {
  Broker broker(Limits{});
  ASSERT_EQ(broker.subscribe("p", "a", std::nullopt), SubscribeStatus::ok);
  Record subscribe;
  subscribe.type = RecordType::subscribe_ack;
  subscribe.subject = "b";
  subscribe.id = "s";
  subscribe.options = {2000, 2, 10, "dl"};
  ASSERT_TRUE(broker.apply(subscribe));
  const std::string before = broker.dump();
  const std::uint64_t unknown[] = {1};
  Record deliver;
  deliver.type = RecordType::deliver;
  deliver.id = "s";
  deliver.numbers = unknown;
  EXPECT_FALSE(broker.apply(deliver));  // nothing was delivered
  deliver.numbers = {};
  deliver.count = 1;
  EXPECT_FALSE(broker.apply(deliver));  // nothing is queued
  deliver.id = "p";
  deliver.count = 0;
  EXPECT_FALSE(broker.apply(deliver));  // a plain queue
  const std::vector<Message> one = {Message::create("x")};
  Record publish;
  publish.type = RecordType::publish;
  publish.seq = 1;
  publish.subject = "b";
  publish.messages = one;
  ASSERT_TRUE(broker.apply(publish));
  Record fetch;
  fetch.type = RecordType::fetch;
  fetch.id = "s";
  fetch.count = 1;
  EXPECT_FALSE(broker.apply(fetch));  // an ack-mode queue delivers, never fetches
  fetch.count = 0;
  EXPECT_TRUE(broker.apply(fetch));
  Record ack;
  ack.type = RecordType::ack;
  ack.id = "s";
  ack.numbers = unknown;
  EXPECT_FALSE(broker.apply(ack));
  Record settle;
  settle.type = RecordType::settle;
  settle.reason = static_cast<std::uint8_t>(DropReason::max_deliveries);
  settle.subject = "b";
  settle.id = "s";
  settle.numbers = unknown;
  EXPECT_FALSE(broker.apply(settle));
  Record member = subscribe;
  member.id = "t";
  member.grouped = true;
  member.group = "g";
  ASSERT_TRUE(broker.apply(member));
  member.id = "u";
  member.options.max_in_flight = 11;  // not the group's options
  EXPECT_FALSE(broker.apply(member));
  member.type = RecordType::subscribe;  // a plain member of an ack-mode group
  EXPECT_FALSE(broker.apply(member));
  Record state;
  state.type = RecordType::ack_state;
  state.subject = "b";
  state.id = "s";
  const std::vector<Message> ahead = numbered({{5, "x"}});
  const std::uint64_t once[] = {1};
  state.messages = ahead;
  state.numbers = once;
  EXPECT_FALSE(broker.apply(state));      // past the newest seq, and the queue is not empty
  EXPECT_FALSE(broker.apply(subscribe));  // the id is taken
  EXPECT_NE(broker.dump(), before);       // t joined
}

}  // namespace
}  // namespace gophermq::broker
