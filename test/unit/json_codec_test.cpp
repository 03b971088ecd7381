#include "http/json_codec.hpp"

#include <gtest/gtest.h>

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

TEST(JsonDecoding, DecodesEscapesAndLongBodies) {
  const std::string big(10000, 'z');
  const auto publish = decode_publish(R"({"subject":"a","data":"x\u00e9\n)" + big + "\"}");
  ASSERT_TRUE(publish);
  EXPECT_EQ(publish->messages.front().data(), "x\xC3\xA9\n" + big);
}

TEST(JsonDecoding, RejectsInvalidUtf8) {
  EXPECT_FALSE(decode_publish("{\"subject\":\"a\",\"data\":\"\xff\"}"));
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

}  // namespace
}  // namespace gophermq::http
