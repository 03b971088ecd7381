#include "http/json_codec.hpp"

#include <algorithm>
#include <array>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <charconv>
#include <chrono>
#include <limits>
#include <utility>

namespace gophermq::http {
namespace json = boost::json;

namespace {

// The length of the well-formed UTF-8 sequence (RFC 3629, as Go's utf8.DecodeRune accepts it)
// starting at `at`, or 0 when the byte there starts none.
std::size_t utf8_sequence_length(std::string_view text, std::size_t at) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[at + k]); };
  const unsigned char lead = byte(0);
  unsigned char second_low = 0x80;
  unsigned char second_high = 0xBF;
  std::size_t length = 0;
  if (lead < 0x80) {
    return 1;
  }
  if (lead < 0xC2) {
    return 0;
  }
  if (lead < 0xE0) {
    length = 2;
  } else if (lead < 0xF0) {
    length = 3;
    second_low = lead == 0xE0 ? 0xA0 : second_low;    // overlong
    second_high = lead == 0xED ? 0x9F : second_high;  // encoded surrogate
  } else if (lead < 0xF5) {
    length = 4;
    second_low = lead == 0xF0 ? 0x90 : second_low;    // overlong
    second_high = lead == 0xF4 ? 0x8F : second_high;  // beyond U+10FFFF
  } else {
    return 0;
  }
  if (text.size() - at < length || byte(1) < second_low || byte(1) > second_high) {
    return 0;
  }
  for (std::size_t k = 2; k < length; ++k) {
    if ((byte(k) & 0xC0) != 0x80) {
      return 0;
    }
  }
  return length;
}

// The UTF-16 code unit of the `\uXXXX` escape at `at`, if there is one.
std::optional<unsigned> unicode_escape(std::string_view text, std::size_t at) {
  if (text.size() < at + 6 || text[at] != '\\' || text[at + 1] != 'u') {
    return std::nullopt;
  }
  unsigned unit = 0;
  for (std::size_t k = at + 2; k < at + 6; ++k) {
    const char digit = text[k];
    unit <<= 4;
    if (digit >= '0' && digit <= '9') {
      unit |= static_cast<unsigned>(digit - '0');
    } else if (digit >= 'a' && digit <= 'f') {
      unit |= static_cast<unsigned>(digit - 'a' + 10);
    } else if (digit >= 'A' && digit <= 'F') {
      unit |= static_cast<unsigned>(digit - 'A' + 10);
    } else {
      return std::nullopt;
    }
  }
  return unit;
}

// Go's encoding/json decodes every byte of a string that does not start well-formed UTF-8, and
// every `\u` escape of a UTF-16 surrogate that is not the high half of a pair, to U+FFFD;
// Boost.JSON refuses both. Returns `body` with its strings rewritten so that they read the way Go
// reads them, or nullopt when nothing needed rewriting (the body is refused for another reason).
std::optional<std::string> as_go_reads_it(std::string_view body) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(body.size() + 16);
  bool changed = false;
  bool in_string = false;
  std::size_t i = 0;
  while (i < body.size()) {
    const char c = body[i];
    if (!in_string) {
      in_string = c == '"';
      out.push_back(c);
      ++i;
    } else if (c == '"') {
      in_string = false;
      out.push_back(c);
      ++i;
    } else if (c == '\\') {
      const auto unit = unicode_escape(body, i);
      if (!unit || *unit < 0xD800 || *unit > 0xDFFF) {
        out.append(body.substr(i, 2));
        i += 2;
        continue;
      }
      const auto low = unicode_escape(body, i + 6);
      if (*unit < 0xDC00 && low && *low >= 0xDC00 && *low <= 0xDFFF) {
        out.append(body.substr(i, 12));
        i += 12;
        continue;
      }
      out.append("\\ufffd");
      changed = true;
      i += 6;
    } else if (const std::size_t length = utf8_sequence_length(body, i); length > 0) {
      out.append(body.substr(i, length));
      i += length;
    } else {
      out.append(kReplacement);
      changed = true;
      ++i;
    }
  }
  if (!changed) {
    return std::nullopt;
  }
  return out;
}

// Whether `key` equals the lower-case ASCII field `name` under Unicode simple case folding, as Go's
// encoding/json matches keys to fields: ASCII letters in either case, and the two non-ASCII
// letters that fold to ASCII ones, U+212A KELVIN SIGN to k and U+017F LATIN SMALL LETTER LONG S
// to s.
bool folds_to(std::string_view key, std::string_view name) {
  static constexpr std::string_view kKelvin = "\xE2\x84\xAA";
  static constexpr std::string_view kLongS = "\xC5\xBF";
  // Every body of every request comes through here once per field, so the usual cases are
  // decided before the folding loop: the key as written in the spec, and a key too short to fold
  // to the name (each folded character takes at least the byte of its ASCII letter).
  if (key == name) {
    return true;
  }
  if (key.size() < name.size()) {
    return false;
  }
  std::size_t at = 0;
  for (const char wanted : name) {
    const bool letter = wanted >= 'a' && wanted <= 'z';
    if (at < key.size() && (key[at] == wanted || (letter && (key[at] ^ 0x20) == wanted))) {
      ++at;
    } else if (wanted == 'k' && key.substr(at).starts_with(kKelvin)) {
      at += kKelvin.size();
    } else if (wanted == 's' && key.substr(at).starts_with(kLongS)) {
      at += kLongS.size();
    } else {
      return false;
    }
  }
  return at == key.size();
}

// Go's encoding/json takes up to 10 000 levels of nesting; Boost.JSON's default stops at 32. Its
// parser keeps its own stack, so depth costs memory the body size limit bounds, not call stack.
json::parse_options as_deep_as_go() {
  json::parse_options options;
  options.max_depth = 10000;
  return options;
}

// Parses with a stack buffer as the arena, so a small request body costs no heap allocation.
class ParsedObject {
 public:
  explicit ParsedObject(std::string_view body) {
    json::error_code error;
    static const json::parse_options options = as_deep_as_go();
    value_ = json::parse(body, error, json::storage_ptr(&arena_), options);
    // Valid bodies never pay for the rewrite: only a refused one is looked at again.
    if (error) {
      if (const auto rewritten = as_go_reads_it(body); rewritten) {
        error = {};
        value_ = json::parse(*rewritten, error, json::storage_ptr(&arena_), options);
      }
    }
    if (!error && value_.is_object()) {
      object_ = &value_.get_object();
    }
  }
  ParsedObject(const ParsedObject&) = delete;
  ParsedObject& operator=(const ParsedObject&) = delete;

  [[nodiscard]] bool valid() const noexcept { return object_ != nullptr; }

  // nullopt: the field has the wrong type. An absent field gives an empty string.
  [[nodiscard]] std::optional<std::string_view> string_field(std::string_view key) const {
    const json::value* field = this->field(key);
    if (field == nullptr) {
      return std::string_view{};
    }
    if (!field->is_string()) {
      return std::nullopt;
    }
    return std::string_view(field->get_string());
  }

  // As Go's encoding/json fills a struct field: from every key equal to its name under Unicode
  // case folding, the last one winning, so {"Subject":..} and {"SUBJECT":..} work as they do with
  // the original.
  [[nodiscard]] const json::value* field(std::string_view key) const {
    const json::value* found = nullptr;
    for (const auto& member : *object_) {
      if (folds_to(member.key(), key)) {
        found = &member.value();
      }
    }
    return found;
  }

 private:
  // Left uninitialised: the arena only reads what the parser wrote, and zeroing 4 KiB per request
  // cost more than the parse of a small body.
  std::array<unsigned char, 4096> buffer_;  // NOLINT(cppcoreguidelines-pro-type-member-init)
  json::monotonic_resource arena_{buffer_.data(), buffer_.size()};
  json::value value_;
  const json::object* object_ = nullptr;
};

std::optional<std::string> owned(std::optional<std::string_view> text) {
  if (!text) {
    return std::nullopt;
  }
  return std::string(*text);
}

std::optional<std::uint64_t> non_negative_integer(const json::value& value) {
  if (value.is_int64() && value.get_int64() >= 0) {
    return static_cast<std::uint64_t>(value.get_int64());
  }
  if (value.is_uint64()) {
    return value.get_uint64();
  }
  return std::nullopt;
}

std::optional<std::size_t> positive_integer(const json::value& value) {
  if (value.is_int64() && value.get_int64() >= 1) {
    return static_cast<std::size_t>(value.get_int64());
  }
  if (value.is_uint64() && value.get_uint64() >= 1) {
    return static_cast<std::size_t>(value.get_uint64());
  }
  return std::nullopt;
}

// A JSON integer as an ack option: out of range reads as the largest value, which no range
// allows; nullopt for another JSON type.
std::optional<std::uint64_t> option_integer(const json::value& value) {
  if (value.is_int64()) {
    return value.get_int64() < 0 ? std::numeric_limits<std::uint64_t>::max()
                                 : static_cast<std::uint64_t>(value.get_int64());
  }
  if (value.is_uint64()) {
    return value.get_uint64();
  }
  return std::nullopt;
}

std::uint32_t clamp32(std::uint64_t value) {
  return static_cast<std::uint32_t>(
      std::min<std::uint64_t>(value, std::numeric_limits<std::uint32_t>::max()));
}

// Fills the ack options of a subscribe body; false when one has the wrong JSON type.
bool decode_ack_options(const ParsedObject& parsed, SubscribeRequest& request) {
  if (const json::value* ack = parsed.field("ack"); ack != nullptr) {
    if (!ack->is_bool()) {
      return false;
    }
    request.ack.ack = ack->get_bool();
  }
  if (const json::value* wait = parsed.field("ack_wait_ms"); wait != nullptr) {
    const auto value = option_integer(*wait);
    if (!value) {
      return false;
    }
    request.ack.ack_wait = std::chrono::milliseconds(static_cast<std::int64_t>(
        std::min<std::uint64_t>(*value, std::numeric_limits<std::int64_t>::max())));
    request.given.ack_wait_ms = true;
  }
  using Given = SubscribeRequest::GivenAckOptions;
  for (const auto& [name, field, flag] :
       {std::tuple{"max_deliveries", &broker::AckOptions::max_deliveries, &Given::max_deliveries},
        std::tuple{"max_in_flight", &broker::AckOptions::max_in_flight, &Given::max_in_flight}}) {
    if (const json::value* given = parsed.field(name); given != nullptr) {
      const auto value = option_integer(*given);
      if (!value) {
        return false;
      }
      request.ack.*field = clamp32(*value);
      request.given.*flag = true;
    }
  }
  if (const json::value* dead_letter = parsed.field("dead_letter"); dead_letter != nullptr) {
    if (!dead_letter->is_string()) {
      return false;
    }
    request.ack.dead_letter = dead_letter->get_string();
    request.given.dead_letter = true;
  }
  return true;
}

// Fills `msg_ids` from a string field (single) or an array of strings (batch); false when it
// has the wrong type, a msg_id is not 1 to 128 bytes, or there is not one per message.
bool decode_msg_ids(const ParsedObject& parsed, bool batch, PublishRequest& request) {
  const json::value* given = parsed.field(batch ? "msg_ids" : "msg_id");
  if (given == nullptr) {
    return true;
  }
  const auto add = [&request](const json::value& item) {
    if (!item.is_string() || !broker::is_valid_msg_id(item.get_string())) {
      return false;
    }
    request.msg_ids.emplace_back(item.get_string());
    return true;
  };
  if (!batch) {
    return add(*given);
  }
  if (!given->is_array() || given->get_array().size() != request.messages.size()) {
    return false;
  }
  return std::ranges::all_of(given->get_array(), add);
}

// The subject and id of a valid object body; nothing for any other body.
std::optional<SubscriptionRequest> decode_subject_and_id(const ParsedObject& body) {
  if (!body.valid()) {
    return std::nullopt;
  }
  const auto subject = owned(body.string_field("subject"));
  const auto id = owned(body.string_field("id"));
  if (!subject || !id) {
    return std::nullopt;
  }
  return SubscriptionRequest{*subject, *id};
}

// How append_json_string writes each byte: kCopy as it is, 'u' as \u00XX, kLineSeparatorLead
// (0xE2) as the start of U+2028 or U+2029 or else as it is, any other value v as the two characters
// \v. The ASCII bytes escaped are the ones Go's HTML-safe encoder escapes.
constexpr char kCopy = 0;
constexpr char kLineSeparatorLead = 1;
constexpr std::array<char, 256> kEscapeOf = [] {
  std::array<char, 256> table{};
  const auto set = [&](char byte, char escape) {
    table[static_cast<unsigned char>(byte)] = escape;
  };
  for (char byte = 0; byte < 0x20; ++byte) {
    set(byte, 'u');
  }
  for (const char byte : {'<', '>', '&'}) {
    set(byte, 'u');
  }
  set('\b', 'b');
  set('\f', 'f');
  set('\n', 'n');
  set('\r', 'r');
  set('\t', 't');
  set('"', '"');
  set('\\', '\\');
  table[0xE2] = kLineSeparatorLead;
  return table;
}();

}  // namespace

std::optional<SubscribeRequest> decode_subscribe(std::string_view body) {
  const ParsedObject parsed(body);
  if (!parsed.valid()) {
    return std::nullopt;
  }
  const auto subject = owned(parsed.string_field("subject"));
  if (!subject) {
    return std::nullopt;
  }
  SubscribeRequest request{*subject, std::nullopt, {}, {}};
  if (const json::value* group = parsed.field("group"); group != nullptr) {
    if (!group->is_string()) {
      return std::nullopt;
    }
    request.group = std::string(group->get_string());
  }
  if (!decode_ack_options(parsed, request)) {
    return std::nullopt;
  }
  return request;
}

std::optional<PublishRequest> decode_publish(std::string_view body) {
  const ParsedObject parsed(body);
  if (!parsed.valid()) {
    return std::nullopt;
  }
  const auto subject = owned(parsed.string_field("subject"));
  const auto data = parsed.string_field("data");
  if (!subject || !data) {
    return std::nullopt;
  }
  PublishRequest request{*subject, {broker::Message::create(*data)}, {}};
  if (!decode_msg_ids(parsed, false, request)) {
    return std::nullopt;
  }
  return request;
}

std::optional<PublishRequest> decode_publish_batch(std::string_view body) {
  const ParsedObject parsed(body);
  if (!parsed.valid()) {
    return std::nullopt;
  }
  const auto subject = owned(parsed.string_field("subject"));
  const json::value* data = parsed.field("data");
  if (!subject || data == nullptr || !data->is_array() || data->get_array().empty()) {
    return std::nullopt;
  }
  PublishRequest request{*subject, {}, {}};
  request.messages.reserve(data->get_array().size());
  for (const json::value& item : data->get_array()) {
    if (!item.is_string()) {
      return std::nullopt;
    }
    request.messages.push_back(broker::Message::create(item.get_string()));
  }
  if (!decode_msg_ids(parsed, true, request)) {
    return std::nullopt;
  }
  return request;
}

std::optional<FetchRequest> decode_fetch(std::string_view body) {
  const ParsedObject parsed(body);
  const auto subject_and_id = decode_subject_and_id(parsed);
  if (!subject_and_id) {
    return std::nullopt;
  }
  FetchRequest request{subject_and_id->subject, subject_and_id->id, std::nullopt, 0, false};
  if (const json::value* meta = parsed.field("meta"); meta != nullptr) {
    if (!meta->is_bool()) {
      return std::nullopt;
    }
    request.meta = meta->get_bool();
  }
  if (const json::value* max = parsed.field("max"); max != nullptr) {
    request.max = positive_integer(*max);
    if (!request.max) {
      return std::nullopt;
    }
  }
  if (const json::value* wait = parsed.field("wait_ms"); wait != nullptr) {
    const auto wait_ms = non_negative_integer(*wait);
    if (!wait_ms) {
      return std::nullopt;
    }
    request.wait_ms = *wait_ms;
  }
  return request;
}

std::optional<SubscriptionRequest> decode_unsubscribe(std::string_view body) {
  return decode_subject_and_id(ParsedObject(body));
}

std::optional<AdminRequest> decode_admin(std::string_view body) {
  const ParsedObject parsed(body);
  if (!parsed.valid()) {
    return std::nullopt;
  }
  AdminRequest request;
  for (auto [key, field] : {std::pair{"subject", &request.subject}, std::pair{"id", &request.id}}) {
    if (const json::value* value = parsed.field(key); value != nullptr) {
      if (!value->is_string()) {
        return std::nullopt;
      }
      *field = std::string(value->get_string());
    }
  }
  return request;
}

std::optional<ReceiptsRequest> decode_receipts(std::string_view body, bool delay) {
  const ParsedObject parsed(body);
  const auto subject_and_id = decode_subject_and_id(parsed);
  if (!subject_and_id) {
    return std::nullopt;
  }
  ReceiptsRequest request{subject_and_id->subject, subject_and_id->id, {}, 0};
  if (const json::value* receipts = parsed.field("receipts"); receipts != nullptr) {
    if (!receipts->is_array()) {
      return std::nullopt;
    }
    request.receipts.reserve(receipts->get_array().size());
    for (const json::value& receipt : receipts->get_array()) {
      if (!receipt.is_string()) {
        return std::nullopt;
      }
      request.receipts.emplace_back(receipt.get_string());
    }
  }
  if (const json::value* delay_ms = parsed.field("delay_ms"); delay && delay_ms != nullptr) {
    const auto value = non_negative_integer(*delay_ms);
    if (!value) {
      return std::nullopt;
    }
    request.delay_ms = *value;
  }
  return request;
}

void append_json_string(std::string& out, std::string_view text) {
  static constexpr std::string_view kHex = "0123456789abcdef";
  out.push_back('"');
  // Runs of bytes that need no escape are copied whole: most text is one run.
  std::size_t copied = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    char escape = kEscapeOf[byte];
    if (escape == kCopy) {
      continue;
    }
    unsigned code = byte;
    std::size_t length = 1;
    if (escape == kLineSeparatorLead) {
      // Input reached us through the decoder, which leaves only well-formed UTF-8; of it only the
      // two line separators that break JavaScript need escaping, as Go does.
      const auto at = [&](std::size_t k) { return static_cast<unsigned char>(text[i + k]); };
      if (text.size() - i < 3 || at(1) != 0x80 || (at(2) & 0xFE) != 0xA8) {
        continue;
      }
      escape = 'u';
      code = 0x2028U | (at(2) & 1U);
      length = 3;
    }
    out.append(text.substr(copied, i - copied));
    if (escape == 'u') {
      const std::array<char, 6> unicode{'\\',
                                        'u',
                                        kHex[code >> 12],
                                        kHex[(code >> 8) & 0xF],
                                        kHex[(code >> 4) & 0xF],
                                        kHex[code & 0xF]};
      out.append(unicode.data(), unicode.size());
    } else {
      const std::array<char, 2> pair{'\\', escape};
      out.append(pair.data(), pair.size());
    }
    i += length - 1;
    copied = i + 1;
  }
  out.append(text.substr(copied));
  out.push_back('"');
}

JsonWriter& JsonWriter::key(std::string_view name) {
  separate();
  out_.push_back('"');
  out_.append(name);
  out_.append("\":");
  first_ = true;  // the value that follows takes no comma
  return *this;
}

JsonWriter& JsonWriter::string(std::string_view text) {
  separate();
  append_json_string(out_, text);
  return *this;
}

JsonWriter& JsonWriter::number(std::uint64_t value) {
  separate();
  std::array<char, std::numeric_limits<std::uint64_t>::digits10 + 1> digits{};
  const auto written = std::to_chars(digits.data(), digits.data() + digits.size(), value);
  out_.append(digits.data(), written.ptr);
  return *this;
}

JsonWriter& JsonWriter::boolean(bool value) {
  separate();
  out_.append(value ? "true" : "false");
  return *this;
}

std::string JsonWriter::finish() && {
  out_.push_back('\n');
  return std::move(out_);
}

std::string encode_message(std::string_view message) {
  JsonWriter json(message.size() + 16);
  json.begin_object().key("message").string(message).end_object();
  return std::move(json).finish();
}

std::string encode_status_ok() {
  // Every publish answers this: written once, then only copied.
  static const std::string kOk = [] {
    JsonWriter json(16);
    json.begin_object().key("status").string("ok").end_object();
    return std::move(json).finish();
  }();
  return kOk;
}

std::string encode_batch_ok(std::size_t count) {
  JsonWriter json(48);
  json.begin_object().key("count").number(count).key("status").string("ok").end_object();
  return std::move(json).finish();
}

std::string encode_subscribed(std::string_view id, std::string_view subject,
                              const std::optional<std::string>& group) {
  JsonWriter json(48 + id.size() + subject.size() + (group ? group->size() : 0));
  json.begin_object();
  if (group) {
    json.key("group").string(*group);
  }
  json.key("id").string(id).key("subject").string(subject).end_object();
  return std::move(json).finish();
}

std::string encode_subscribed(std::string_view id, std::string_view subject,
                              const std::optional<std::string>& group,
                              const broker::AckOptions& options,
                              const SubscribeRequest::GivenAckOptions& given) {
  JsonWriter json(160 + id.size() + subject.size() + (group ? group->size() : 0) +
                  options.dead_letter.size());
  json.begin_object().key("ack").boolean(options.ack);
  if (given.ack_wait_ms) {
    json.key("ack_wait_ms").number(static_cast<std::uint64_t>(options.ack_wait.count()));
  }
  if (given.dead_letter) {
    json.key("dead_letter").string(options.dead_letter);
  }
  if (group) {
    json.key("group").string(*group);
  }
  json.key("id").string(id);
  if (given.max_deliveries) {
    json.key("max_deliveries").number(options.max_deliveries);
  }
  if (given.max_in_flight) {
    json.key("max_in_flight").number(options.max_in_flight);
  }
  json.key("subject").string(subject).end_object();
  return std::move(json).finish();
}

std::string encode_published(bool duplicate) {
  return duplicate ? "{\"duplicate\":true,\"status\":\"ok\"}\n"
                   : "{\"duplicate\":false,\"status\":\"ok\"}\n";
}

std::string encode_batch_published(std::size_t count, std::size_t duplicates) {
  JsonWriter json;
  json.begin_object().key("count").number(count).key("duplicates").number(duplicates);
  json.key("status").string("ok").end_object();
  return std::move(json).finish();
}

std::string encode_receipts_answer(std::string_view verb, std::size_t applied,
                                   const std::vector<std::string>& stale) {
  std::size_t size = 48;
  for (const std::string& receipt : stale) {
    size += receipt.size() + 3;
  }
  JsonWriter json(size);
  json.begin_object().key(verb).number(applied).key("stale").begin_array();
  for (const std::string& receipt : stale) {
    json.string(receipt);
  }
  json.end_array().key("status").string("ok").end_object();
  return std::move(json).finish();
}

std::string encode_deliveries(broker::Deliveries&& deliveries, bool ack, std::string_view id,
                              std::string_view subject) {
  std::size_t size = 64 + id.size() + subject.size();
  for (const broker::Delivery& delivery : deliveries) {
    size += delivery.message.size() + delivery.subject.size() + 100;
  }
  JsonWriter json(size);
  json.begin_object().key("id").string(id).key("messages").begin_array();
  for (broker::Delivery& delivery : deliveries) {
    json.begin_object().key("data").string(delivery.message.data());
    if (ack) {
      json.key("deliveries").number(delivery.deliveries);
      json.key("receipt").string(broker::format_receipt(delivery.receipt));
    }
    json.key("seq").number(delivery.message.seq()).key("subject").string(delivery.subject);
    json.end_object();
    delivery.message = broker::Message();
  }
  json.end_array().key("subject").string(subject).end_object();
  return std::move(json).finish();
}

std::string encode_delivery(const broker::Delivery& delivery, bool ack) {
  JsonWriter json(delivery.message.size() + delivery.subject.size() + 100);
  json.begin_object().key("data").string(delivery.message.data());
  if (ack) {
    json.key("deliveries").number(delivery.deliveries);
    json.key("receipt").string(broker::format_receipt(delivery.receipt));
  }
  json.key("seq").number(delivery.message.seq()).key("subject").string(delivery.subject);
  return std::move(json.end_object()).finish();
}

std::string encode_fetched(broker::FetchedMessages&& messages, std::string_view id,
                           std::string_view subject) {
  std::size_t size = 64 + id.size() + subject.size();
  for (const broker::Message& message : messages) {
    size += message.size() + 3;
  }
  JsonWriter json(size);
  json.begin_object().key("data").begin_array();
  for (; !messages.empty(); messages.pop_front()) {
    json.string(messages.front().data());
  }
  json.end_array().key("id").string(id).key("subject").string(subject).end_object();
  return std::move(json).finish();
}

std::string encode_subscription_list(const broker::SubscriptionList& list) {
  // About 150 bytes a row besides its strings.
  std::size_t size = 64;
  for (const broker::SubscriptionInfo& row : list.subscriptions) {
    size += 150 + row.id.size() + row.subject.size() + row.group.size() + row.owner.size();
  }
  JsonWriter json(size);
  json.begin_object().key("subscriptions").begin_array();
  for (const broker::SubscriptionInfo& row : list.subscriptions) {
    json.begin_object();
    if (row.ack) {
      json.key("ack").boolean(true);
    }
    if (!row.group.empty()) {
      json.key("group").string(row.group);
    }
    json.key("id")
        .string(row.id)
        .key("idle_ms")
        .number(static_cast<std::uint64_t>(row.idle.count()))
        .key("in_flight")
        .number(row.in_flight);
    if (!row.owner.empty()) {
      json.key("owner").string(row.owner);
    }
    json.key("pending").number(row.pending).key("subject").string(row.subject).end_object();
  }
  json.end_array().key("truncated").boolean(list.truncated).end_object();
  return std::move(json).finish();
}

std::string encode_purged(std::uint64_t purged) {
  JsonWriter json(24);
  json.begin_object().key("purged").number(purged).end_object();
  return std::move(json).finish();
}

std::string encode_stats(const broker::Totals& totals,
                         const std::vector<broker::SubjectStats>& subjects,
                         std::uint64_t uptime_seconds) {
  // About 120 bytes a row besides its subject, and 300 for the rest.
  std::size_t size = 300;
  for (const broker::SubjectStats& row : subjects) {
    size += 120 + row.subject.size();
  }
  JsonWriter json(size);
  json.begin_object().key("subjects").begin_array();
  for (const broker::SubjectStats& row : subjects) {
    json.begin_object()
        .key("groups")
        .number(row.groups)
        .key("in_flight")
        .number(row.in_flight)
        .key("pending_bytes")
        .number(row.pending_bytes)
        .key("pending_messages")
        .number(row.pending_messages)
        .key("subject")
        .string(row.subject)
        .key("subscriptions")
        .number(row.subscriptions)
        .end_object();
  }
  json.end_array().key("totals").begin_object();
  json.key("delivered_messages").number(totals.counters.delivered);
  json.key("dropped_messages").begin_object();
  for (const broker::DropReason reason : broker::drop_reasons_by_name) {
    json.key(broker::name_of(reason))
        .number(totals.counters.dropped[static_cast<std::size_t>(reason)]);
  }
  json.end_object();
  json.key("in_flight").number(totals.in_flight);
  json.key("pending_bytes").number(totals.pending_bytes);
  json.key("pending_messages").number(totals.pending_messages);
  json.key("published_messages").number(totals.counters.published);
  json.key("subjects").number(totals.subjects);
  json.key("subscriptions").number(totals.subscriptions);
  json.key("waiting_fetches").number(totals.waiting_fetches);
  json.end_object();
  json.key("uptime_seconds").number(uptime_seconds);
  json.end_object();
  return std::move(json).finish();
}

}  // namespace gophermq::http
