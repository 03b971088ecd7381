// Journal records from arbitrary bytes, as a log that its checksum failed to protect might hold
// them. The first byte chooses the limits; then each record is a two-byte length and that many
// bytes. Whatever decode accepts must be exactly one record (encoding it gives back the same
// bytes, of encoded_size); whatever apply then accepts, the core must stay whole: its checkpoint,
// applied to an empty core with the same limits, rebuilds the same dump.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/broker.hpp"
#include "broker/journal.hpp"

namespace {

using namespace gophermq::broker;

void check(bool holds, const std::string& what) {
  if (!holds) {
    std::cerr << "journal fuzz: " << what << '\n';
    std::abort();
  }
}

// Checks each record on the way and keeps its bytes.
class Sink final : public JournalSink {
 public:
  void append(const Record& record) override {
    std::string& bytes = records.emplace_back();
    encode(record, bytes);
    check(encoded_size(record) == bytes.size(), "encoded_size of a checkpoint record");
    RecordStorage messages;
    const std::optional<Record> decoded = decode(bytes, messages);
    check(decoded.has_value(), "a checkpoint record decodes");
    std::string again;
    encode(*decoded, again);
    check(again == bytes, "a checkpoint record decodes to itself");
  }

  std::vector<std::string> records;
};

Limits limits_from(std::uint8_t choice) {
  Limits limits{.max_subject_length = 16};
  limits.message_ttl =
      (choice & 1U) != 0 ? std::chrono::milliseconds(1000) : std::chrono::milliseconds(0);
  limits.max_pending_per_queue = (choice & 2U) != 0 ? 3 : 0;
  limits.slow_queue_policy =
      (choice & 4U) != 0 ? SlowQueuePolicy::drop_oldest : SlowQueuePolicy::reject;
  return limits;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  const Limits limits = limits_from(data[0]);
  Broker broker(limits);
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  RecordStorage messages;
  while (rest.size() >= 2) {
    const std::size_t length = static_cast<unsigned char>(rest[0]) |
                               static_cast<std::size_t>(static_cast<unsigned char>(rest[1])) << 8U;
    rest.remove_prefix(2);
    const std::string_view bytes = rest.substr(0, length);
    rest.remove_prefix(bytes.size());
    const std::optional<Record> record = decode(bytes, messages);
    if (!record) {
      continue;
    }
    check(encoded_size(*record) == bytes.size(), "encoded_size of a decoded record");
    std::string again;
    encode(*record, again);
    check(again == bytes, "a decoded record encodes to the same bytes");
    static_cast<void>(broker.apply(*record));
  }
  Sink sink;
  broker.checkpoint(sink);
  Broker copy(limits);
  for (const std::string& bytes : sink.records) {
    const std::optional<Record> record = decode(bytes, messages);
    check(record.has_value() && copy.apply(*record), "the checkpoint applies");
  }
  const std::string rebuilt = copy.dump();
  const std::string original = broker.dump();
  check(rebuilt == original,
        "the checkpoint rebuilds the core:\n" + original + "rebuilt as\n" + rebuilt);
  return 0;
}
