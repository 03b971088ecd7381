#include "broker/journal.hpp"

#include <chrono>

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
};

Shape shape_of(RecordType type) {
  switch (type) {
    case RecordType::subscribe:
      return {.naming = Naming::subscriber, .time = true, .subject = true};
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
      return {.naming = Naming::queue, .time = true, .subject = true, .messages = true};
    case RecordType::checkpoint_end:
      return {.count = true};
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
  return named_as(shape.naming, record) &&
         (shape.reason ? record.reason < reasons : record.reason == 0) &&
         (shape.time || record.time == 0) &&
         (shape.seq ? record.seq <= Message::max_seq : record.seq == 0) &&
         (shape.count || record.count == 0) && (shape.subject || record.subject.empty());
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
  put_byte(out, static_cast<unsigned>(record.reason << 1U) | (record.grouped ? 1U : 0U));
  put_varint(out, time_bits(record.time));
  put_varint(out, record.seq);
  put_varint(out, record.count);
  put_text(out, record.subject);
  put_text(out, record.id);
  put_text(out, record.group);
  put_varint(out, record.messages.size());
  const bool numbered = record.type == RecordType::queue_state;
  for (const Message& message : record.messages) {
    if (numbered) {
      put_varint(out, message.seq());
    }
    put_text(out, message.data());
  }
}

std::size_t encoded_size(const Record& record) noexcept {
  std::size_t size = kByteFields + (record.type == RecordType::checkpoint ? 1 : 0) +
                     varint_size(time_bits(record.time)) + varint_size(record.seq) +
                     varint_size(record.count) + text_size(record.subject) + text_size(record.id) +
                     text_size(record.group) + varint_size(record.messages.size());
  const bool numbered = record.type == RecordType::queue_state;
  for (const Message& message : record.messages) {
    size += (numbered ? varint_size(message.seq()) : 0) + text_size(message.data());
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

std::optional<Record> decode(std::string_view bytes, std::vector<Message>& messages) {
  Reader reader(bytes);
  Record record;
  std::uint8_t type = 0;
  std::uint8_t format = log_format;
  std::uint8_t flags = 0;
  std::uint64_t count = 0;
  if (!reader.get_byte(type) || type < static_cast<std::uint8_t>(RecordType::subscribe) ||
      type > static_cast<std::uint8_t>(RecordType::checkpoint_end) ||
      (type == static_cast<std::uint8_t>(RecordType::checkpoint) &&
       (!reader.get_byte(format) || format != log_format)) ||
      !reader.get_byte(flags) || !reader.get_time(record.time) || !reader.get_varint(record.seq) ||
      !reader.get_varint(record.count) || !reader.get_text(record.subject) ||
      !reader.get_text(record.id) || !reader.get_text(record.group) || !reader.get_varint(count)) {
    return std::nullopt;
  }
  record.type = static_cast<RecordType>(type);
  record.reason = static_cast<std::uint8_t>(flags >> 1U);
  record.grouped = (flags & 1U) == 1U;
  const Shape shape = shape_of(record.type);
  const bool numbered = record.type == RecordType::queue_state;
  // A message takes at least its length byte, and a queue_state one its seq byte too.
  const std::size_t least_message_bytes = numbered ? 2 : 1;
  if (!fits(shape, record) || (count > 0 && !shape.messages) ||
      (numbered && (count == 0 || count > queue_state_max_messages)) ||
      count > reader.left() / least_message_bytes) {
    return std::nullopt;
  }
  messages.clear();
  messages.reserve(count);
  std::uint64_t message_bytes = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    std::uint64_t seq = 0;
    std::string_view data;
    if ((numbered && (!reader.get_varint(seq) || seq == 0 || seq > Message::max_seq)) ||
        !reader.get_text(data)) {
      return std::nullopt;
    }
    // A queue_state goes over its byte bound only with the message that starts it.
    if (numbered && i > 0 && message_bytes + data.size() > queue_state_max_bytes) {
      return std::nullopt;
    }
    message_bytes += data.size();
    messages.push_back(Message::create(data));
    messages.back().set_seq(seq);
  }
  if (!reader.done()) {
    return std::nullopt;
  }
  record.messages = messages;
  return record;
}

}  // namespace gophermq::broker
