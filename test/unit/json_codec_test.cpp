#include "http/json_codec.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace gophermq::http {
namespace {

std::string escaped(std::string_view text) {
  std::string out;
  append_json_string(out, text);
  return out;
}

TEST(JsonEncoding, EscapesLikeGoEncodingJson) {
  EXPECT_EQ(escaped("plain"), "\"plain\"");
  EXPECT_EQ(escaped("q\"b\\"), R"("q\"b\\")");
  EXPECT_EQ(escaped("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(escaped(std::string_view("\x00\x01\x1f", 3)), R"("\u0000\u0001\u001f")");
  EXPECT_EQ(escaped("<a&b>"), R"("\u003ca\u0026b\u003e")");
  EXPECT_EQ(escaped("\xE2\x80\xA8\xE2\x80\xA9"), R"("\u2028\u2029")");
  EXPECT_EQ(escaped("h\xC3\xA9llo \xF0\x9F\x90\xB9 \x7f"),
            "\"h\xC3\xA9llo \xF0\x9F\x90\xB9 \x7f\"");
}

// What Go's HTML-safe encoder writes for one ASCII byte inside a string.
std::string go_escape(unsigned char byte) {
  static constexpr std::string_view kHex = "0123456789abcdef";
  switch (byte) {
    case '"':
      return "\\\"";
    case '\\':
      return "\\\\";
    case '\b':
      return "\\b";
    case '\f':
      return "\\f";
    case '\n':
      return "\\n";
    case '\r':
      return "\\r";
    case '\t':
      return "\\t";
    default:
      break;
  }
  if (byte < 0x20 || byte == '<' || byte == '>' || byte == '&') {
    return std::string("\\u00") + kHex[byte >> 4] + kHex[byte & 0xF];
  }
  return std::string(1, static_cast<char>(byte));
}

TEST(JsonEncoding, EscapesEveryAsciiByteAloneAndBetweenOthers) {
  for (unsigned byte = 0; byte < 0x80; ++byte) {
    const std::string one(1, static_cast<char>(byte));
    const std::string expected = go_escape(static_cast<unsigned char>(byte));
    EXPECT_EQ(escaped(one), "\"" + expected + "\"") << byte;
    EXPECT_EQ(escaped("ab" + one + one + "cd"), "\"ab" + expected + expected + "cd\"") << byte;
  }
  EXPECT_EQ(escaped(""), "\"\"");
}

TEST(JsonEncoding, EscapesOnlyTheTwoLineSeparatorsOutsideAscii) {
  EXPECT_EQ(escaped("a\xE2\x80\xA8"), R"("a\u2028")");
  EXPECT_EQ(escaped("\xE2\x80\xA9z"), R"("\u2029z")");
  // Their neighbours, and other sequences led by 0xE2, stay as they are.
  for (const std::string_view kept :
       {"\xE2\x80\xA7", "\xE2\x80\xAA", "\xE2\x82\xAC", "\xE2\x81\xA8", "\xC3\xA9",
        "\xF0\x9F\x90\xB9", "\xEF\xBF\xBD"}) {
    EXPECT_EQ(escaped(kept), "\"" + std::string(kept) + "\"");
  }
  // A cut-off separator at the end is not read past.
  EXPECT_EQ(escaped(std::string_view("x\xE2\x80", 3)), "\"x\xE2\x80\"");
  EXPECT_EQ(escaped(std::string_view("\xE2", 1)), "\"\xE2\"");
}

TEST(JsonWriter, EmptyObjectsAndArrays) {
  JsonWriter object;
  object.begin_object().end_object();
  EXPECT_EQ(std::move(object).finish(), "{}\n");
  JsonWriter array;
  array.begin_array().end_array();
  EXPECT_EQ(std::move(array).finish(), "[]\n");
  JsonWriter nested(0);
  nested.begin_object().key("a").begin_array().end_array().key("o").begin_object().end_object();
  nested.end_object();
  EXPECT_EQ(std::move(nested).finish(), "{\"a\":[],\"o\":{}}\n");
}

TEST(JsonWriter, PlacesCommasBetweenElementsAtEveryDepth) {
  JsonWriter json;
  json.begin_object().key("a").begin_array();
  json.begin_object().end_object().begin_array().end_array();
  json.string("s").number(0).boolean(true).boolean(false);
  json.begin_array().number(1).begin_array().number(2).number(3).end_array().end_array();
  json.end_array().key("b").number(std::numeric_limits<std::uint64_t>::max());
  json.key("c").begin_object().key("d").string("<\n>").end_object().end_object();
  EXPECT_EQ(std::move(json).finish(),
            "{\"a\":[{},[],\"s\",0,true,false,[1,[2,3]]],\"b\":18446744073709551615,"
            "\"c\":{\"d\":\"\\u003c\\n\\u003e\"}}\n");
}

// The answers of the second stage (API.md §9) in the writer's terms.
TEST(JsonWriter, WritesMessageObjectsAndStaleArrays) {
  JsonWriter fetched;
  fetched.begin_object().key("id").string("i").key("messages").begin_array();
  for (const std::uint64_t seq : {7U, 8U}) {
    fetched.begin_object().key("data").string("d").key("deliveries").number(1);
    fetched.key("receipt").string("r").key("seq").number(seq).key("subject").string("a.b");
    fetched.end_object();
  }
  fetched.end_array().key("subject").string("a.*").end_object();
  EXPECT_EQ(std::move(fetched).finish(),
            R"({"id":"i","messages":[{"data":"d","deliveries":1,"receipt":"r","seq":7,)"
            R"("subject":"a.b"},{"data":"d","deliveries":1,"receipt":"r","seq":8,)"
            R"("subject":"a.b"}],"subject":"a.*"})"
            "\n");
  JsonWriter acked;
  acked.begin_object().key("acked").number(2).key("stale").begin_array().string("r1").string("r2");
  acked.end_array().key("status").string("ok").end_object();
  EXPECT_EQ(std::move(acked).finish(),
            "{\"acked\":2,\"stale\":[\"r1\",\"r2\"],\"status\":\"ok\"}\n");
}

TEST(JsonEncoding, StatsListRowsTotalsAndEveryDropReason) {
  broker::Totals totals{};
  totals.counters.published = 5;
  totals.counters.delivered = 4;
  totals.counters.dropped[static_cast<std::size_t>(broker::DropReason::queue_full)] = 3;
  totals.pending_messages = 1;
  totals.pending_bytes = 2;
  totals.subjects = 1;
  totals.subscriptions = 2;
  totals.waiting_fetches = 1;
  totals.in_flight = 1;
  totals.counters.dropped[static_cast<std::size_t>(broker::DropReason::max_deliveries)] = 6;
  const std::vector<broker::SubjectStats> rows{{"a\"b", 2, 1, 1, 2, 1}, {"c", 0, 0, 0, 0, 0}};
  EXPECT_EQ(encode_stats(totals, rows, 9),
            R"({"subjects":[{"groups":1,"in_flight":1,"pending_bytes":2,"pending_messages":1,)"
            R"("subject":"a\"b","subscriptions":2},{"groups":0,"in_flight":0,"pending_bytes":0,)"
            R"("pending_messages":0,"subject":"c","subscriptions":0}],"totals":{)"
            R"("delivered_messages":4,"dropped_messages":{"max_deliveries":6,"message_ttl":0,)"
            R"("purged":0,"queue_full":3,"subscriber_ttl":0,"unsubscribe":0},"in_flight":1,)"
            R"("pending_bytes":2,"pending_messages":1,"published_messages":5,)"
            R"("subjects":1,"subscriptions":2,"waiting_fetches":1},"uptime_seconds":9})"
            "\n");
  EXPECT_EQ(encode_stats({}, {}, 0).substr(0, 27), "{\"subjects\":[],\"totals\":{\"d");
}

TEST(JsonEncoding, AckModeAnswersHaveSortedKeys) {
  broker::AckOptions options;
  options.ack = true;
  options.max_deliveries = 3;
  options.dead_letter = "dlq";
  SubscribeRequest::GivenAckOptions given;
  given.max_deliveries = true;
  given.dead_letter = true;
  EXPECT_EQ(encode_subscribed("i", "s", std::string("g"), options, given),
            R"({"ack":true,"dead_letter":"dlq","group":"g","id":"i","max_deliveries":3,)"
            R"("subject":"s"})"
            "\n");
  given = {true, true, true, true};
  EXPECT_EQ(encode_subscribed("i", "s", std::string("g"), options, given),
            R"({"ack":true,"ack_wait_ms":30000,"dead_letter":"dlq","group":"g","id":"i",)"
            R"("max_deliveries":3,"max_in_flight":1000,"subject":"s"})"
            "\n");
  EXPECT_EQ(encode_published(true), "{\"duplicate\":true,\"status\":\"ok\"}\n");
  EXPECT_EQ(encode_published(false), "{\"duplicate\":false,\"status\":\"ok\"}\n");
  EXPECT_EQ(encode_batch_published(2, 1), "{\"count\":2,\"duplicates\":1,\"status\":\"ok\"}\n");
  EXPECT_EQ(encode_receipts_answer("nacked", 1, {"x"}),
            "{\"nacked\":1,\"stale\":[\"x\"],\"status\":\"ok\"}\n");
  auto message = broker::Message::create("a<");
  message.set_seq(7);
  broker::Deliveries one{{message, "s.x", 2, broker::Receipt{7, 2}}};
  EXPECT_EQ(encode_deliveries(broker::Deliveries(one), true, "i", "s.*"),
            R"({"id":"i","messages":[{"data":"a\u003c","deliveries":2,"receipt":"7-2",)"
            R"("seq":7,"subject":"s.x"}],"subject":"s.*"})"
            "\n");
  EXPECT_EQ(encode_deliveries(std::move(one), false, "i", "s.*"),
            R"({"id":"i","messages":[{"data":"a\u003c","seq":7,"subject":"s.x"}],)"
            R"("subject":"s.*"})"
            "\n");
}

TEST(JsonDecoding, AckOptionsKeepOutOfRangeValuesOutOfRange) {
  auto request =
      decode_subscribe(R"({"subject":"s","ack":true,"ack_wait_ms":-1,"max_deliveries":99999999999,)"
                       R"("max_in_flight":5,"dead_letter":"d"})");
  ASSERT_TRUE(request);
  EXPECT_TRUE(request->ack.ack);
  EXPECT_TRUE(request->given.any());
  EXPECT_FALSE(broker::is_valid(request->ack, 256));
  EXPECT_EQ(request->ack.max_in_flight, 5U);
  EXPECT_EQ(request->ack.dead_letter, "d");
  request = decode_subscribe(R"({"subject":"s","max_in_flight":5})");
  ASSERT_TRUE(request);
  EXPECT_FALSE(request->ack.ack);
  EXPECT_TRUE(request->given.any());
  EXPECT_FALSE(decode_subscribe(R"({"subject":"s","ack":1})"));
  EXPECT_FALSE(decode_subscribe(R"({"subject":"s","ack":true,"ack_wait_ms":1000.5})"));
}

TEST(JsonDecoding, MsgIdsAreOnePerMessageOfOneTo128Bytes) {
  const auto single = decode_publish(R"({"subject":"s","data":"a","msg_id":"k"})");
  ASSERT_TRUE(single);
  EXPECT_EQ(single->msg_ids, std::vector<std::string>{"k"});
  EXPECT_FALSE(decode_publish(R"({"subject":"s","data":"a","msg_id":""})"));
  EXPECT_FALSE(
      decode_publish(R"({"subject":"s","data":"a","msg_id":")" + std::string(129, 'k') + "\"}"));
  EXPECT_TRUE(
      decode_publish(R"({"subject":"s","data":"a","msg_id":")" + std::string(128, 'k') + "\"}"));
  EXPECT_FALSE(decode_publish_batch(R"({"subject":"s","data":["a","b"],"msg_ids":["k"]})"));
  EXPECT_FALSE(decode_publish_batch(R"({"subject":"s","data":["a"],"msg_ids":[1]})"));
  const auto batch =
      decode_publish_batch(R"({"subject":"s","data":["a","b"],"msg_ids":["k","l"]})");
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->msg_ids, (std::vector<std::string>{"k", "l"}));
}

TEST(JsonDecoding, ReceiptsAreStringsAndDelayOnlyForNack) {
  const auto nack =
      decode_receipts(R"({"subject":"s","id":"i","receipts":["a","b"],"delay_ms":5})", true);
  ASSERT_TRUE(nack);
  EXPECT_EQ(nack->receipts, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(nack->delay_ms, 5U);
  EXPECT_FALSE(decode_receipts(R"({"subject":"s","id":"i","receipts":[1]})", false));
  EXPECT_FALSE(decode_receipts(R"({"subject":"s","id":"i","receipts":"a"})", false));
  EXPECT_FALSE(decode_receipts(R"({"subject":"s","id":"i","delay_ms":"5"})", true));
  EXPECT_FALSE(decode_receipts("[]", false));
}

TEST(JsonEncoding, ResponsesHaveSortedKeysAndATrailingNewline) {
  EXPECT_EQ(encode_status_ok(), "{\"status\":\"ok\"}\n");
  EXPECT_EQ(encode_message("bad id"), "{\"message\":\"bad id\"}\n");
  EXPECT_EQ(encode_batch_ok(3), "{\"count\":3,\"status\":\"ok\"}\n");
  EXPECT_EQ(encode_subscribed("i", "s", std::nullopt), "{\"id\":\"i\",\"subject\":\"s\"}\n");
  EXPECT_EQ(encode_subscribed("i", "s", std::string("g")),
            "{\"group\":\"g\",\"id\":\"i\",\"subject\":\"s\"}\n");
  broker::FetchedMessages two{broker::Message::create("a"), broker::Message::create("b")};
  EXPECT_EQ(encode_fetched(std::move(two), "i", "s"),
            "{\"data\":[\"a\",\"b\"],\"id\":\"i\",\"subject\":\"s\"}\n");
  EXPECT_EQ(encode_fetched({}, "i", "s"), "{\"data\":[],\"id\":\"i\",\"subject\":\"s\"}\n");
}

TEST(JsonDecoding, RejectsNonObjectsAndWrongTypes) {
  for (const char* body :
       {"", "null", "[]", "\"s\"", "1", "{", "{\"subject\":1}", "{\"subject\":\"a\",\"data\":5}",
        "{\"subject\":\"a\",\"data\":null}", "{\"subject\":\"a\"} x"}) {
    EXPECT_FALSE(decode_publish(body)) << body;
  }
}

TEST(JsonDecoding, MissingFieldsAreEmptyAndUnknownOnesIgnored) {
  const auto publish = decode_publish(R"({"subject":"a","extra":[1,2]})");
  ASSERT_TRUE(publish);
  EXPECT_EQ(publish->subject, "a");
  EXPECT_EQ(publish->messages.front().data(), "");
  const auto subscribe = decode_subscribe("{}");
  ASSERT_TRUE(subscribe);
  EXPECT_EQ(subscribe->subject, "");
  EXPECT_FALSE(subscribe->group);
}

// Go's encoding/json takes an unknown field nested up to 10 000 levels deep (the object itself is
// one), and no deeper.
TEST(JsonDecoding, UnknownFieldsNestAsDeepAsGoAllows) {
  const auto nested = [](std::size_t depth) {
    return R"({"subject":"a","extra":)" + std::string(depth, '[') + std::string(depth, ']') + "}";
  };
  EXPECT_TRUE(decode_publish(nested(32)));
  EXPECT_TRUE(decode_publish(nested(9999)));
  EXPECT_FALSE(decode_publish(nested(10000)));
}

TEST(JsonDecoding, DecodesEscapesAndLongBodies) {
  const std::string big(10000, 'z');
  const auto publish = decode_publish(R"({"subject":"a","data":"x\u00e9\n)" + big + "\"}");
  ASSERT_TRUE(publish);
  EXPECT_EQ(publish->messages.front().data(), "x\xC3\xA9\n" + big);
}

// The data of `{"subject":"a","data":"<raw>"}`, decoded.
std::string decoded_data(std::string_view raw) {
  const auto publish = decode_publish(R"({"subject":"a","data":")" + std::string(raw) + "\"}");
  EXPECT_TRUE(publish) << raw;
  return publish ? std::string(publish->messages.front().data()) : std::string("<refused>");
}

constexpr std::string_view kFffd = "\xEF\xBF\xBD";

std::string fffd(std::size_t count) {
  std::string out;
  for (std::size_t i = 0; i < count; ++i) {
    out.append(kFffd);
  }
  return out;
}

// Expectations are what Go's encoding/json decodes: utf8.DecodeRune consumes one byte of anything
// that does not start a well-formed sequence, so each such byte becomes one U+FFFD.
TEST(JsonDecoding, ReplacesEachInvalidUtf8ByteAsGoDoes) {
  EXPECT_EQ(decoded_data("\xff"), fffd(1));
  EXPECT_EQ(decoded_data("a\xff"
                         "b\xfe"),
            "a" + fffd(1) + "b" + fffd(1));
  EXPECT_EQ(decoded_data("\x80\xbf"), fffd(2));          // stray continuation bytes
  EXPECT_EQ(decoded_data("\xc3"), fffd(1));              // truncated at the end
  EXPECT_EQ(decoded_data("\xe2\x82x"), fffd(2) + "x");   // truncated 3-byte sequence
  EXPECT_EQ(decoded_data("\xf0\x9f\x90"), fffd(3));      // truncated 4-byte sequence
  EXPECT_EQ(decoded_data("\xc0\xaf\xc1\xbf"), fffd(4));  // overlong 2-byte
  EXPECT_EQ(decoded_data("\xe0\x80\xaf"), fffd(3));      // overlong 3-byte
  EXPECT_EQ(decoded_data("\xf0\x80\x80\xaf"), fffd(4));  // overlong 4-byte
  EXPECT_EQ(decoded_data("\xed\xa0\x80"), fffd(3));      // encoded surrogate
  EXPECT_EQ(decoded_data("\xf4\x90\x80\x80"), fffd(4));  // beyond U+10FFFF
  EXPECT_EQ(decoded_data("\xf5\x80\x80\x80"), fffd(4));  // lead byte never valid
  EXPECT_EQ(decoded_data("\xe2\x82\xac\xc3"), "\xe2\x82\xac" + fffd(1));  // valid then not
  EXPECT_EQ(decoded_data("\xed\x9f\xbf\xf4\x8f\xbf\xbf\xee\x80\x80"),
            "\xed\x9f\xbf\xf4\x8f\xbf\xbf\xee\x80\x80");  // the edges that are valid
  EXPECT_EQ(decoded_data("\xff\\n\xfe\\\"q"), fffd(1) + "\n" + fffd(1) + "\"q");
}

TEST(JsonDecoding, ReplacesUnpairedSurrogateEscapesAsGoDoes) {
  EXPECT_EQ(decoded_data(R"(\ud800)"), fffd(1));
  EXPECT_EQ(decoded_data(R"(\uDBFFx)"), fffd(1) + "x");
  EXPECT_EQ(decoded_data(R"(\udc00)"), fffd(1));
  EXPECT_EQ(decoded_data(R"(\udc00\ud800)"), fffd(2));        // low then high is no pair
  EXPECT_EQ(decoded_data(R"(\udc00\udfff)"), fffd(2));        // nor are two lows
  EXPECT_EQ(decoded_data(R"(\ud800\u0041)"), fffd(1) + "A");  // the next escape is kept
  EXPECT_EQ(decoded_data(R"(\ud800\ud83d\udc39)"), fffd(1) + "\xF0\x9F\x90\xB9");
  EXPECT_EQ(decoded_data(R"(\ud83d\udc39)"), "\xF0\x9F\x90\xB9");  // a pair is the character
  // An escaped backslash or quote, not an escape or the end of the string.
  EXPECT_EQ(decoded_data("\\\\ud800\xff"), "\\ud800" + fffd(1));
  EXPECT_EQ(decoded_data("\\\"\xff\\\"\\ud800"), "\"" + fffd(1) + "\"" + fffd(1));
}

TEST(JsonDecoding, ReplacesInvalidTextInEveryStringField) {
  const auto subscribe = decode_subscribe("{\"subject\":\"s\xff\",\"group\":\"g\\udfff\"}");
  ASSERT_TRUE(subscribe);
  EXPECT_EQ(subscribe->subject, "s" + fffd(1));
  EXPECT_EQ(subscribe->group, "g" + fffd(1));
  const auto fetch = decode_fetch("{\"subject\":\"a\",\"id\":\"\xc3(\",\"max\":1}");
  ASSERT_TRUE(fetch);
  EXPECT_EQ(fetch->id, fffd(1) + "(");
  const auto batch = decode_publish_batch("{\"subject\":\"a\",\"data\":[\"ok\",\"\xe0\xa0\"]}");
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->messages.back().data(), fffd(2));
  const auto unsubscribe = decode_unsubscribe("{\"subject\":\"\\udbff\\udfff\",\"id\":\"i\"}");
  ASSERT_TRUE(unsubscribe);
  EXPECT_EQ(unsubscribe->subject, "\xF4\x8F\xBF\xBF");
}

TEST(JsonDecoding, InvalidTextOutsideStringsIsStillRefused) {
  for (const std::string body :
       {"{\"subject\":\"a\",\"data\":\"x\"}\xff", "\xff{\"subject\":\"a\"}",
        "{\"subject\":\"a\",\"data\":\"x\xff}", "{\"subject\":\"a\",\"data\":\"\x01\xff\"}",
        "{\"subject\":\"a\" \xff: 1}", R"({"subject":"a","data":"\ud800\x"})"}) {
    EXPECT_FALSE(decode_publish(body)) << body;
  }
}

TEST(JsonDecoding, FetchMaxMustBeAPositiveInteger) {
  EXPECT_EQ(decode_fetch(R"({"subject":"a","id":"b","max":2})")->max, 2U);
  EXPECT_FALSE(decode_fetch(R"({"subject":"a","id":"b"})")->max);
  for (const char* body :
       {R"({"subject":"a","id":"b","max":0})", R"({"subject":"a","id":"b","max":-1})",
        R"({"subject":"a","id":"b","max":1.5})", R"({"subject":"a","id":"b","max":"2"})",
        R"({"subject":"a","id":7})"}) {
    EXPECT_FALSE(decode_fetch(body)) << body;
  }
}

TEST(JsonDecoding, BatchNeedsANonEmptyArrayOfStrings) {
  EXPECT_EQ(decode_publish_batch(R"({"subject":"a","data":["x","y"]})")->messages.size(), 2U);
  for (const char* body : {R"({"subject":"a","data":[]})", R"({"subject":"a","data":"x"})",
                           R"({"subject":"a","data":["x",1]})", R"({"subject":"a"})"}) {
    EXPECT_FALSE(decode_publish_batch(body)) << body;
  }
}

TEST(JsonDecoding, GroupMustBeAString) {
  EXPECT_FALSE(decode_subscribe(R"({"subject":"a","group":1})"));
  EXPECT_EQ(decode_subscribe(R"({"subject":"a","group":""})")->group, "");
}

TEST(JsonDecoding, MatchesKeysToFieldsUnderCaseFoldingLikeGo) {
  const auto any_case = decode_fetch(R"({"SUBJECT":"a","Id":"i","mAx":2,"Wait_MS":5})");
  ASSERT_TRUE(any_case);
  EXPECT_EQ(any_case->subject, "a");
  EXPECT_EQ(any_case->id, "i");
  EXPECT_EQ(any_case->max, 2U);
  EXPECT_EQ(any_case->wait_ms, 5U);
  // U+017F (long s) folds to s and U+212A (Kelvin sign) to k, as in Go; other letters do not.
  const auto folded = decode_subscribe("{\"\xC5\xBFubject\":\"a\"}");
  ASSERT_TRUE(folded);
  EXPECT_EQ(folded->subject, "a");
  EXPECT_EQ(decode_subscribe(R"({"subjects":"a"})").value().subject, "");
  EXPECT_EQ(decode_subscribe(R"({"subjec":"a"})").value().subject, "");
  EXPECT_EQ(decode_subscribe("{\"subj\xC3\xA9"
                             "ct\":\"a\"}")
                .value()
                .subject,
            "");
  // Every key that matches sets the field, so the last one wins.
  EXPECT_EQ(decode_subscribe(R"({"subject":"a","Subject":"b"})").value().subject, "b");
  EXPECT_EQ(decode_subscribe(R"({"Subject":"b","subject":"a"})").value().subject, "a");
  // A key in another case is still type-checked.
  EXPECT_FALSE(decode_subscribe(R"({"SUBJECT":1})"));
}

}  // namespace
}  // namespace gophermq::http
