// The request-side rules of GET /api/stream and CORS (API.md §10) that need no connection.
#include "http/event_stream.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "http/cors.hpp"

namespace gophermq::http {
namespace {

TEST(StreamQueryTest, DecodesKnownParametersAndIgnoresOthers) {
  const auto query = parse_stream_query(
      "/api/stream?subject=orders.%3E&group=w%31&access_token=x&last_event_id=7");
  ASSERT_TRUE(query);
  EXPECT_EQ(query->subject, std::optional<std::string>("orders.>"));
  EXPECT_EQ(query->group, std::optional<std::string>("w1"));
  EXPECT_EQ(query->id, std::nullopt);
  EXPECT_EQ(query->last_event_id, std::optional<std::string>("7"));
  EXPECT_EQ(parse_stream_query("/api/ws?access_token=a%2Db_c")->access_token,
            std::optional<std::string>("a-b_c"));
  EXPECT_EQ(parse_stream_query("/api/ws?access_token=a&access_token=b"), std::nullopt);
  const auto bare = parse_stream_query("/api/stream");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->subject, std::nullopt);
  const auto empty = parse_stream_query("/api/stream?subject=&id");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->subject, std::optional<std::string>(""));
  EXPECT_EQ(empty->id, std::optional<std::string>(""));
  EXPECT_EQ(parse_stream_query("/api/stream?subject=a+b")->subject,
            std::optional<std::string>("a b"));
}

TEST(StreamQueryTest, RefusesBadEscapesAndRepeatedParameters) {
  for (const std::string target :
       {"/api/stream?subject=%", "/api/stream?subject=%4", "/api/stream?subject=%g0",
        "/api/stream?subject=%+1", "/api/stream?subject=%-1", "/api/stream?subject=%0x",
        "/api/stream?id=a&id=b", "/api/stream?subject=a&subject=a"}) {
    EXPECT_EQ(parse_stream_query(target), std::nullopt) << target;
  }
}

TEST(StreamQueryTest, AnEventIdIsADecimalSeq) {
  EXPECT_EQ(parse_event_id("0"), std::optional<std::uint64_t>(0));
  EXPECT_EQ(parse_event_id("18446744073709551615"),
            std::optional<std::uint64_t>(18446744073709551615ULL));
  for (const std::string bad : {"", "-1", "+1", "1 ", " 1", "0x10", "18446744073709551616", "a"}) {
    EXPECT_EQ(parse_event_id(bad), std::nullopt) << bad;
  }
}

TEST(StreamHeadTest, CarriesTheContractsHeadersAndTheExtraLines) {
  EXPECT_EQ(event_stream_head("Vary: Origin\r\n"),
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            "X-Accel-Buffering: no\r\nVary: Origin\r\n\r\n");
}

TEST(CorsPolicyTest, AllowsListedOriginsOnlyAndAnyWithAStar) {
  const CorsPolicy off;
  EXPECT_FALSE(off.enabled());
  EXPECT_EQ(off.allow_origin("http://a.example"), std::nullopt);

  const CorsPolicy listed(std::vector<std::string>{"http://a.example", "https://b.example:8443"});
  EXPECT_TRUE(listed.enabled());
  EXPECT_EQ(listed.allow_origin("https://b.example:8443"),
            std::optional<std::string>("https://b.example:8443"));
  EXPECT_EQ(listed.allow_origin("https://b.example"), std::nullopt);
  EXPECT_EQ(listed.allow_origin("http://a.example.evil"), std::nullopt);
  EXPECT_EQ(listed.allow_origin(""), std::nullopt);

  const CorsPolicy any(std::vector<std::string>{"*"});
  EXPECT_EQ(any.allow_origin("null"), std::optional<std::string>("*"));
  EXPECT_EQ(any.allow_origin(""), std::nullopt);
}

TEST(CorsPolicyTest, OnlyOriginsAsBrowsersSendThemAreValid) {
  for (const std::string good : {"*", "http://a.example", "https://a.example:8443",
                                 "http://127.0.0.1:3000", "http://[::1]:8080", "app://x"}) {
    EXPECT_TRUE(is_valid_cors_origin(good)) << good;
  }
  for (const std::string bad : {"", "a.example", "http://", "://a", "http://a/", "http://a?x",
                                "HTTP://a", "http://A", "http://a b", "http://u@a", "**"}) {
    EXPECT_FALSE(is_valid_cors_origin(bad)) << bad;
  }
}

}  // namespace
}  // namespace gophermq::http
