#include "broker/journal.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <limits>

#include "broker/broker.hpp"

namespace gophermq::broker {

namespace {

void put_byte(std::string& out, unsigned value) {
  out.push_back(static_cast<char>(value));
}

// Unsigned LEB128: seven bits a byte, low first, the high bit set on every byte but the last.
void put_varint(std::string& out, std::uint64_t value) {
  while (value >= 0x80U) {
    put_byte(out, static_cast<unsigned>(value & 0x7FU) | 0x80U);
    value >>= 7U;
  }
  put_byte(out, static_cast<unsigned>(value));
}

std::size_t varint_size(std::uint64_t value) noexcept {
  std::size_t size = 1;
  while (value >= 0x80U) {
    value >>= 7U;
    ++size;
  }
  return size;
}

std::uint64_t time_bits(std::int64_t time) noexcept {
  return static_cast<std::uint64_t>(time);
}

void put_text(std::string& out, std::string_view text) {
  put_varint(out, text.size());
  out.append(text);
}

std::size_t text_size(std::string_view text) noexcept {
  return varint_size(text.size()) + text.size();
}

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}

  bool get_byte(std::uint8_t& value) {
    if (bytes_.empty()) {
      return false;
    }
    value = static_cast<std::uint8_t>(bytes_.front());
    bytes_.remove_prefix(1);
    return true;
  }

  // Only the shortest encoding of a value that fits 64 bits is one: every value has exactly one
  // byte sequence, so a flipped bit cannot decode to the same record.
  bool get_varint(std::uint64_t& value) {
    std::uint64_t result = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
      std::uint8_t byte = 0;
      if (!get_byte(byte)) {
        return false;
      }
      const std::uint64_t bits = byte & 0x7FU;
      if (shift == 63 && bits > 1) {
        return false;
      }
      result |= bits << shift;
      if ((byte & 0x80U) == 0) {
        if (byte == 0 && shift > 0) {
          return false;
        }
        value = result;
        return true;
      }
    }
    return false;
  }

  bool get_time(std::int64_t& time) {
    std::uint64_t bits = 0;
    if (!get_varint(bits)) {
      return false;
    }
    time = static_cast<std::int64_t>(bits);
    return true;
  }

  bool get_text(std::string_view& text) {
    std::uint64_t size = 0;
    if (!get_varint(size) || bytes_.size() < size) {
      return false;
    }
    text = bytes_.substr(0, size);
    bytes_.remove_prefix(size);
    return true;
  }

  [[nodiscard]] bool done() const noexcept { return bytes_.empty(); }
  [[nodiscard]] std::size_t left() const noexcept { return bytes_.size(); }

 private:
  std::string_view bytes_;
};

// type; the format (checkpoint only); reason and grouped.
constexpr std::size_t kByteFields = 2;

// The bit of the reason-and-grouped byte that marks an ephemeral subscription: a reason is below
// DropReason::count, far from reaching it, so format 3 logs written before it never set it.
constexpr unsigned kEphemeralFlag = 0x80U;
static_assert((static_cast<unsigned>(DropReason::count) << 1U) <= kEphemeralFlag);

// How a record names what it changes.
enum class Naming {
  nothing,       // no id, no group
  subscription,  // an id
  subscriber,    // an id, and a group exactly when grouped (subscribe)
  queue,         // a group when grouped, an id otherwise
};

// Which fields a record type sets; the core leaves every other one zero or empty.
struct Shape {
  Naming naming = Naming::nothing;
  bool reason = false;  // a DropReason
  bool time = false;
  bool seq = false;  // a Message sequence number
  bool count = false;
  bool subject = false;
  bool messages = false;
  bool numbered = false;  // each message preceded by its seq
  bool published = false;
  bool numbers = false;
  bool msg_ids = false;
  bool options = false;
  bool ephemeral = false;  // may be set
  bool owner = false;
};

Shape shape_of(RecordType type) {
  switch (type) {
    case RecordType::subscribe:
      return {.naming = Naming::subscriber, .time = true, .subject = true, .ephemeral = true};
    case RecordType::unsubscribe:
      return {.naming = Naming::subscription, .reason = true};
    case RecordType::publish:
      return {.time = true, .seq = true, .count = true, .subject = true, .messages = true};
    case RecordType::fetch:
      return {.naming = Naming::subscription, .time = true, .count = true};
    case RecordType::drop:
      return {.naming = Naming::queue, .reason = true, .count = true, .subject = true};
    case RecordType::checkpoint:
      return {.time = true, .seq = true};
    case RecordType::queue_state:
      return {.naming = Naming::queue,
              .time = true,
              .subject = true,
              .messages = true,
              .numbered = true,
              .published = true};
    case RecordType::checkpoint_end:
      return {.count = true};
    case RecordType::subscribe_ack:
      return {.naming = Naming::subscriber,
              .time = true,
              .subject = true,
              .options = true,
              .ephemeral = true};
    case RecordType::deliver:
      return {.naming = Naming::subscription, .time = true, .count = true, .numbers = true};
    case RecordType::ack:
    case RecordType::nack:
    case RecordType::extend:
      return {.naming = Naming::subscription, .time = true, .numbers = true};
    case RecordType::settle:
    case RecordType::purge:
      return {.naming = Naming::queue, .reason = true, .subject = true, .numbers = true};
    case RecordType::publish_ids:
      return {.time = true,
              .seq = true,
              .count = true,
              .subject = true,
              .messages = true,
              .msg_ids = true};
    case RecordType::ack_state:
      return {.naming = Naming::queue,
              .subject = true,
              .messages = true,
              .numbered = true,
              .published = true,
              .numbers = true};
    case RecordType::dedupe_state:
      return {.time = true, .subject = true, .msg_ids = true};
    case RecordType::owner:
      return {.naming = Naming::subscription, .owner = true};
  }
  return {};
}

bool named_as(Naming naming, const Record& record) {
  switch (naming) {
    case Naming::nothing:
      return !record.grouped && record.id.empty() && record.group.empty();
    case Naming::subscription:
      return !record.grouped && record.group.empty();
    case Naming::subscriber:
      return record.grouped != record.group.empty();
    case Naming::queue:
      return record.grouped ? record.id.empty() && !record.group.empty() : record.group.empty();
  }
  return false;
}

bool fits(const Shape& shape, const Record& record) {
  const auto reasons = static_cast<std::uint8_t>(DropReason::count);
  return named_as(shape.naming, record) && (shape.ephemeral || !record.ephemeral) &&
         (shape.reason ? record.reason < reasons : record.reason == 0) &&
         (shape.time || record.time == 0) &&
         (shape.seq ? record.seq <= Message::max_seq : record.seq == 0) &&
         (shape.count || record.count == 0) && (shape.subject || record.subject.empty()) &&
         (shape.published || record.published.empty()) &&
         (shape.numbers || record.numbers.empty()) && (shape.msg_ids || record.msg_ids.empty()) &&
         (shape.owner || record.owner.empty());
}

bool valid_options(const RecordAckOptions& options) {
  return options.ack_wait_ms >= static_cast<std::uint64_t>(AckOptions::kMinAckWait.count()) &&
         options.ack_wait_ms <= static_cast<std::uint64_t>(AckOptions::kMaxAckWait.count()) &&
         options.max_deliveries <= AckOptions::kMaxMaxDeliveries && options.max_in_flight >= 1 &&
         options.max_in_flight <= AckOptions::kMaxMaxInFlight &&
         (options.dead_letter.empty() || options.max_deliveries > 0);
}

// What the numbers of a record are: seqs, or (ack_state) delivery counts, one per message.
bool valid_numbers(const Record& record) {
  if (record.type == RecordType::ack_state) {
    return record.numbers.size() == record.messages.size() &&
           std::ranges::all_of(record.numbers, [](std::uint64_t deliveries) {
             return deliveries >= 1 && deliveries <= std::numeric_limits<std::uint32_t>::max();
           });
  }
  if (record.type == RecordType::purge &&
      (record.numbers.empty() || record.numbers.size() > purge_record_seqs ||
       std::ranges::adjacent_find(record.numbers, std::greater_equal<>()) !=
           record.numbers.end())) {
    return false;
  }
  return (record.type != RecordType::settle || !record.numbers.empty()) &&
         std::ranges::all_of(record.numbers,
                             [](std::uint64_t seq) { return seq >= 1 && seq <= Message::max_seq; });
}

bool valid_msg_ids(const Record& record) {
  if (!std::ranges::all_of(record.msg_ids, is_valid_msg_id)) {
    return false;
  }
  if (record.type == RecordType::publish_ids) {
    return record.msg_ids.size() == record.count + record.messages.size();
  }
  return record.type != RecordType::dedupe_state || !record.msg_ids.empty();
}

}  // namespace

std::int64_t to_record_time(TimePoint time) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch()).count();
}

TimePoint from_record_time(std::int64_t time) noexcept {
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(std::chrono::nanoseconds(time)));
}

void encode(const Record& record, std::string& out) {
  put_byte(out, static_cast<unsigned>(record.type));
  if (record.type == RecordType::checkpoint) {
    put_byte(out, log_format);
  }
  put_byte(out, static_cast<unsigned>(record.reason << 1U) | (record.grouped ? 1U : 0U) |
                    (record.ephemeral ? kEphemeralFlag : 0U));
  put_varint(out, time_bits(record.time));
  put_varint(out, record.seq);
  put_varint(out, record.count);
  put_text(out, record.subject);
  put_text(out, record.id);
  put_text(out, record.group);
  put_varint(out, record.messages.size());
  const Shape shape = shape_of(record.type);
  for (const Message& message : record.messages) {
    if (shape.numbered) {
      put_varint(out, message.seq());
    }
    put_text(out, message.data());
  }
  if (shape.published) {
    put_text(out, record.published);
  }
  if (shape.numbers) {
    put_varint(out, record.numbers.size());
    for (const std::uint64_t number : record.numbers) {
      put_varint(out, number);
    }
  }
  if (shape.msg_ids) {
    put_varint(out, record.msg_ids.size());
    for (const std::string_view msg_id : record.msg_ids) {
      put_text(out, msg_id);
    }
  }
  if (shape.options) {
    put_varint(out, record.options.ack_wait_ms);
    put_varint(out, record.options.max_deliveries);
    put_varint(out, record.options.max_in_flight);
    put_text(out, record.options.dead_letter);
  }
  if (shape.owner) {
    put_text(out, record.owner);
  }
}

std::size_t encoded_size(const Record& record) noexcept {
  std::size_t size = kByteFields + (record.type == RecordType::checkpoint ? 1 : 0) +
                     varint_size(time_bits(record.time)) + varint_size(record.seq) +
                     varint_size(record.count) + text_size(record.subject) + text_size(record.id) +
                     text_size(record.group) + varint_size(record.messages.size());
  const Shape shape = shape_of(record.type);
  for (const Message& message : record.messages) {
    size += (shape.numbered ? varint_size(message.seq()) : 0) + text_size(message.data());
  }
  if (shape.published) {
    size += text_size(record.published);
  }
  if (shape.numbers) {
    size += varint_size(record.numbers.size());
    for (const std::uint64_t number : record.numbers) {
      size += varint_size(number);
    }
  }
  if (shape.msg_ids) {
    size += varint_size(record.msg_ids.size());
    for (const std::string_view msg_id : record.msg_ids) {
      size += text_size(msg_id);
    }
  }
  if (shape.options) {
    size += varint_size(record.options.ack_wait_ms) + varint_size(record.options.max_deliveries) +
            varint_size(record.options.max_in_flight) + text_size(record.options.dead_letter);
  }
  if (shape.owner) {
    size += text_size(record.owner);
  }
  return size;
}

std::optional<std::uint8_t> checkpoint_format(std::string_view payload) noexcept {
  if (payload.size() < 2 ||
      static_cast<unsigned char>(payload[0]) != static_cast<unsigned>(RecordType::checkpoint)) {
    return std::nullopt;
  }
  // Before the format byte the second byte of every record was its reason, 0 for a checkpoint.
  const auto format = static_cast<std::uint8_t>(payload[1]);
  return format == 0 ? std::uint8_t{1} : format;
}

std::optional<Record> decode(std::string_view bytes, RecordStorage& storage) {
  Reader reader(bytes);
  Record record;
  std::uint8_t type = 0;
  std::uint8_t format = log_format;
  std::uint8_t flags = 0;
  std::uint64_t count = 0;
  if (!reader.get_byte(type) || type < static_cast<std::uint8_t>(RecordType::subscribe) ||
      type > static_cast<std::uint8_t>(RecordType::owner) ||
      (type == static_cast<std::uint8_t>(RecordType::checkpoint) &&
       (!reader.get_byte(format) || format != log_format)) ||
      !reader.get_byte(flags) || !reader.get_time(record.time) || !reader.get_varint(record.seq) ||
      !reader.get_varint(record.count) || !reader.get_text(record.subject) ||
      !reader.get_text(record.id) || !reader.get_text(record.group) || !reader.get_varint(count)) {
    return std::nullopt;
  }
  record.type = static_cast<RecordType>(type);
  record.ephemeral = (flags & kEphemeralFlag) != 0;
  record.reason = static_cast<std::uint8_t>((flags & ~kEphemeralFlag) >> 1U);
  record.grouped = (flags & 1U) == 1U;
  const Shape shape = shape_of(record.type);
  // A message takes at least its length byte, and a numbered one its seq byte too.
  const std::size_t least_message_bytes = shape.numbered ? 2 : 1;
  if (!fits(shape, record) || (count > 0 && !shape.messages) ||
      (shape.numbered && (count == 0 || count > queue_state_max_messages)) ||
      count > reader.left() / least_message_bytes) {
    return std::nullopt;
  }
  std::vector<Message>& messages = storage.messages;
  messages.clear();
  messages.reserve(count);
  std::uint64_t message_bytes = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    std::uint64_t seq = 0;
    std::string_view data;
    if ((shape.numbered && (!reader.get_varint(seq) || seq == 0 || seq > Message::max_seq)) ||
        !reader.get_text(data)) {
      return std::nullopt;
    }
    // A queue_state goes over its byte bound only with the message that starts it.
    if (shape.numbered && i > 0 && message_bytes + data.size() > queue_state_max_bytes) {
      return std::nullopt;
    }
    message_bytes += data.size();
    messages.push_back(Message::create(data));
    messages.back().set_seq(seq);
  }
  record.messages = messages;
  if (shape.published && !reader.get_text(record.published)) {
    return std::nullopt;
  }
  storage.numbers.clear();
  if (shape.numbers) {
    // A number takes at least one byte.
    if (!reader.get_varint(count) || count > reader.left()) {
      return std::nullopt;
    }
    storage.numbers.resize(count);
    for (std::uint64_t& number : storage.numbers) {
      if (!reader.get_varint(number)) {
        return std::nullopt;
      }
    }
    record.numbers = storage.numbers;
  }
  storage.msg_ids.clear();
  if (shape.msg_ids) {
    // A msg_id takes at least its length byte and one byte.
    if (!reader.get_varint(count) || count > reader.left() / 2) {
      return std::nullopt;
    }
    storage.msg_ids.resize(count);
    for (std::string_view& msg_id : storage.msg_ids) {
      if (!reader.get_text(msg_id)) {
        return std::nullopt;
      }
    }
    record.msg_ids = storage.msg_ids;
  }
  if (shape.options &&
      (!reader.get_varint(record.options.ack_wait_ms) ||
       !reader.get_varint(record.options.max_deliveries) ||
       !reader.get_varint(record.options.max_in_flight) ||
       !reader.get_text(record.options.dead_letter) || !valid_options(record.options))) {
    return std::nullopt;
  }
  // A token's name is at most 64 bytes (auth::is_valid_name).
  if (shape.owner && (!reader.get_text(record.owner) || record.owner.empty() ||
                      record.owner.size() > 64 || record.id.empty())) {
    return std::nullopt;
  }
  if (!reader.done() || !valid_numbers(record) || !valid_msg_ids(record)) {
    return std::nullopt;
  }
  return record;
}

}  // namespace gophermq::broker
