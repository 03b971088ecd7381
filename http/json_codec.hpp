#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/broker.hpp"
#include "broker/message.hpp"

namespace gophermq::http {

// Request bodies, decoded. A field the client left out is empty (or nullopt where absence has a
// meaning of its own); a body that is not a JSON object, or a known field of the wrong JSON type,
// decodes to nullopt. Subjects are checked by the broker, not here. As in Go's encoding/json, each
// byte of a string that does not start well-formed UTF-8, and each escaped UTF-16 surrogate that is
// not part of a pair, decodes to U+FFFD, so every decoded string is well-formed UTF-8.
struct SubscribeRequest {
  std::string subject;
  std::optional<std::string> group;
};

struct PublishRequest {
  std::string subject;
  std::vector<broker::Message> messages;
};

struct FetchRequest {
  std::string subject;
  std::string id;
  std::optional<std::size_t> max;
  std::uint64_t wait_ms = 0;
};

struct SubscriptionRequest {
  std::string subject;
  std::string id;
};

std::optional<SubscribeRequest> decode_subscribe(std::string_view body);
std::optional<PublishRequest> decode_publish(std::string_view body);
std::optional<PublishRequest> decode_publish_batch(std::string_view body);
std::optional<FetchRequest> decode_fetch(std::string_view body);
std::optional<SubscriptionRequest> decode_unsubscribe(std::string_view body);

// Response bodies: compact JSON with keys in lexicographic order and one trailing newline, escaped
// exactly as Go's encoding/json does it (HTML-safe), so clients of the original that compare bytes
// keep working.
void append_json_string(std::string& out, std::string_view text);

// Writes one compact JSON answer into a single string: it places the commas and colons, the
// caller states the structure. Keys are written in the order they are given, as written (they are
// the code's own literals, so they are not escaped); the encoders give them sorted, as Go does.
// Strings are escaped by append_json_string. Nothing checks that objects and arrays are balanced:
// an encoder's calls read as the answer they write.
class JsonWriter {
 public:
  // `capacity`: the expected size of the answer, so that writing it allocates once.
  explicit JsonWriter(std::size_t capacity = 64) { out_.reserve(capacity); }

  JsonWriter& begin_object() { return open('{'); }
  JsonWriter& end_object() { return close('}'); }
  JsonWriter& begin_array() { return open('['); }
  JsonWriter& end_array() { return close(']'); }
  JsonWriter& key(std::string_view name);
  JsonWriter& string(std::string_view text);
  JsonWriter& number(std::uint64_t value);
  JsonWriter& boolean(bool value);

  // The answer with its trailing newline.
  [[nodiscard]] std::string finish() &&;

 private:
  // Puts the comma that separates this element from the one before it, if there is one.
  void separate() {
    if (!first_) {
      out_.push_back(',');
    }
    first_ = false;
  }
  JsonWriter& open(char bracket) {
    separate();
    out_.push_back(bracket);
    first_ = true;
    return *this;
  }
  JsonWriter& close(char bracket) {
    out_.push_back(bracket);
    first_ = false;
    return *this;
  }

  std::string out_;
  // Whether the next element is the first of its object or array (or follows its key).
  bool first_ = true;
};

std::string encode_message(std::string_view message);
std::string encode_status_ok();
std::string encode_batch_ok(std::size_t count);
std::string encode_subscribed(std::string_view id, std::string_view subject,
                              const std::optional<std::string>& group);
// GET /api/stats. Drop reasons are listed in their enum order, which is alphabetical.
std::string encode_stats(const broker::Totals& totals,
                         const std::vector<broker::SubjectStats>& subjects,
                         std::uint64_t uptime_seconds);
// Consumes `messages`, freeing each as it is written, so the answer and the messages are not
// held in full at the same time.
std::string encode_fetched(broker::FetchedMessages&& messages, std::string_view id,
                           std::string_view subject);

}  // namespace gophermq::http
