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
// Ack options arrive as given: a value out of its range stays out of it (a negative one or one
// beyond 32 bits reads as the largest), for the broker to refuse.
struct SubscribeRequest {
  // Which ack options the body named: the answer echoes exactly those (API.md §9), and any of them
  // without "ack": true is refused.
  struct GivenAckOptions {
    bool ack_wait_ms = false;
    bool max_deliveries = false;
    bool max_in_flight = false;
    bool dead_letter = false;
    [[nodiscard]] bool any() const noexcept {
      return ack_wait_ms || max_deliveries || max_in_flight || dead_letter;
    }
  };

  std::string subject;
  std::optional<std::string> group;
  broker::AckOptions ack;
  GivenAckOptions given;
};

// `msg_ids`: empty without msg_id / msg_ids; otherwise one valid msg_id per message (a body with
// any other is invalid).
struct PublishRequest {
  std::string subject;
  std::vector<broker::Message> messages;
  std::vector<std::string> msg_ids;
};

struct FetchRequest {
  std::string subject;
  std::string id;
  std::optional<std::size_t> max;
  std::uint64_t wait_ms = 0;
  bool meta = false;
};

// ack, nack and extend. The receipts are kept as sent: one that does not parse names no delivery
// and is answered as stale.
struct ReceiptsRequest {
  std::string subject;
  std::string id;
  std::vector<std::string> receipts;
  std::uint64_t delay_ms = 0;  // nack only
};

struct SubscriptionRequest {
  std::string subject;
  std::string id;
};

// The admin calls' bodies: a subject pattern, an id, or (purge) either; nullopt for an absent one.
struct AdminRequest {
  std::optional<std::string> subject;
  std::optional<std::string> id;
};

std::optional<SubscribeRequest> decode_subscribe(std::string_view body);
std::optional<PublishRequest> decode_publish(std::string_view body);
std::optional<PublishRequest> decode_publish_batch(std::string_view body);
std::optional<FetchRequest> decode_fetch(std::string_view body);
std::optional<SubscriptionRequest> decode_unsubscribe(std::string_view body);
// `delay` allows delay_ms (nack).
std::optional<ReceiptsRequest> decode_receipts(std::string_view body, bool delay);
std::optional<AdminRequest> decode_admin(std::string_view body);

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
// An ack-mode subscription's answer: "ack": true and the options the request gave, no defaults.
std::string encode_subscribed(std::string_view id, std::string_view subject,
                              const std::optional<std::string>& group,
                              const broker::AckOptions& options,
                              const SubscribeRequest::GivenAckOptions& given);
// A publish that gave a msg_id.
std::string encode_published(bool duplicate);
// A batch that gave msg_ids: `count` stored, `duplicates` refused.
std::string encode_batch_published(std::size_t count, std::size_t duplicates);
// The answer to ack, nack or extend; `verb` is acked, nacked or extended.
std::string encode_receipts_answer(std::string_view verb, std::size_t applied,
                                   const std::vector<std::string>& stale);
// GET /api/admin/subscriptions: "ack" only in ack mode, "group" only when grouped.
std::string encode_subscription_list(const broker::SubscriptionList& list);
// POST /api/admin/purge.
std::string encode_purged(std::uint64_t purged);
// GET /api/stats. Drop reasons are listed by name.
std::string encode_stats(const broker::Totals& totals,
                         const std::vector<broker::SubjectStats>& subjects,
                         std::uint64_t uptime_seconds);
// Consumes `messages`, freeing each as it is written, so the answer and the messages are not
// held in full at the same time.
std::string encode_fetched(broker::FetchedMessages&& messages, std::string_view id,
                           std::string_view subject);
// A fetch in ack mode or with meta: `messages` with data, seq and subject, and in ack mode
// deliveries and receipt.
std::string encode_deliveries(broker::Deliveries&& deliveries, bool ack, std::string_view id,
                              std::string_view subject);
// One entry of encode_deliveries' `messages`, on its own: an event of a stream (API.md §10).
std::string encode_delivery(const broker::Delivery& delivery, bool ack);

}  // namespace gophermq::http
