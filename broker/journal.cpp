#include "broker/journal.hpp"

#include <chrono>
#include <limits>

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

 private:
  std::string_view bytes_;
};

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
  for (const Message& message : record.messages) {
    put_text(out, message.data());
  }
}

std::size_t encoded_size(const Record& record) {
  std::size_t size = 3 + 3 * sizeof(std::uint64_t) + 4 * sizeof(std::uint32_t) +
                     record.subject.size() + record.id.size() + record.group.size();
  for (const Message& message : record.messages) {
    size += sizeof(std::uint32_t) + message.size();
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
  messages.clear();
  for (std::uint32_t i = 0; i < count; ++i) {
    std::string_view data;
    if (!reader.get_text(data)) {
      return std::nullopt;
    }
    messages.push_back(Message::create(data));
  }
  if (!reader.done()) {
    return std::nullopt;
  }
  record.messages = messages;
  return record;
}

}  // namespace gophermq::broker
