#include "broker/journal.hpp"

#include <chrono>
#include <limits>

#include "broker/broker.hpp"

namespace gophermq::broker {

namespace {

template <typename Integer>
void put(std::string& out, Integer value) {
  auto bits = static_cast<std::make_unsigned_t<Integer>>(value);
  for (std::size_t i = 0; i < sizeof(Integer); ++i) {
    out.push_back(static_cast<char>(bits & 0xFFU));
    bits = static_cast<decltype(bits)>(bits >> 8U);
  }
}

void put_text(std::string& out, std::string_view text) {
  put(out, static_cast<std::uint32_t>(text.size()));
  out.append(text);
}

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}

  template <typename Integer>
  bool get(Integer& value) {
    if (bytes_.size() < sizeof(Integer)) {
      return false;
    }
    std::make_unsigned_t<Integer> bits = 0;
    for (std::size_t i = sizeof(Integer); i-- > 0;) {
      bits = static_cast<decltype(bits)>((bits << 8U) | static_cast<unsigned char>(bytes_[i]));
    }
    value = static_cast<Integer>(bits);
    bytes_.remove_prefix(sizeof(Integer));
    return true;
  }

  bool get_text(std::string_view& text) {
    std::uint32_t size = 0;
    if (!get(size) || bytes_.size() < size) {
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

// type, reason and grouped; time, seq and count; the lengths of subject, id and group; the
// message count.
constexpr std::size_t kFixedBytes = 3 + 3 * 8 + 3 * 4 + 4;
constexpr std::size_t kLengthBytes = 4;
constexpr std::size_t kSeqBytes = 8;

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
  put(out, static_cast<std::uint8_t>(record.type));
  put(out, record.reason);
  put(out, static_cast<std::uint8_t>(record.grouped ? 1 : 0));
  put(out, record.time);
  put(out, record.seq);
  put(out, record.count);
  put_text(out, record.subject);
  put_text(out, record.id);
  put_text(out, record.group);
  put(out, static_cast<std::uint32_t>(record.messages.size()));
  const bool numbered = record.type == RecordType::queue_state;
  for (const Message& message : record.messages) {
    if (numbered) {
      put(out, message.seq());
    }
    put_text(out, message.data());
  }
}

std::size_t encoded_size(const Record& record) noexcept {
  const std::size_t per_message =
      record.type == RecordType::queue_state ? kSeqBytes + kLengthBytes : kLengthBytes;
  std::size_t size = kFixedBytes + record.subject.size() + record.id.size() + record.group.size() +
                     record.messages.size() * per_message;
  for (const Message& message : record.messages) {
    size += message.size();
  }
  return size;
}

std::optional<Record> decode(std::string_view bytes, std::vector<Message>& messages) {
  Reader reader(bytes);
  Record record;
  std::uint8_t type = 0;
  std::uint8_t grouped = 0;
  std::uint32_t count = 0;
  if (!reader.get(type) || type < static_cast<std::uint8_t>(RecordType::subscribe) ||
      type > static_cast<std::uint8_t>(RecordType::checkpoint_end) || !reader.get(record.reason) ||
      !reader.get(grouped) || grouped > 1 || !reader.get(record.time) || !reader.get(record.seq) ||
      !reader.get(record.count) || !reader.get_text(record.subject) ||
      !reader.get_text(record.id) || !reader.get_text(record.group) || !reader.get(count)) {
    return std::nullopt;
  }
  record.type = static_cast<RecordType>(type);
  record.grouped = grouped == 1;
  const Shape shape = shape_of(record.type);
  const bool numbered = record.type == RecordType::queue_state;
  const std::size_t least_message_bytes = numbered ? kSeqBytes + kLengthBytes : kLengthBytes;
  if (!fits(shape, record) || (count > 0 && !shape.messages) ||
      (numbered && (count == 0 || count > queue_state_max_messages)) ||
      count > reader.left() / least_message_bytes) {
    return std::nullopt;
  }
  messages.clear();
  messages.reserve(count);
  std::uint64_t message_bytes = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    std::uint64_t seq = 0;
    std::string_view data;
    if ((numbered && (!reader.get(seq) || seq == 0 || seq > Message::max_seq)) ||
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
