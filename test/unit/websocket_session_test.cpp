// The client frames of GET /api/ws (API.md §10) that need no connection.
#include "http/websocket_session.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace gophermq::http {
namespace {

TEST(ReceiptsFrameTest, AckAndNackCarryTheirReceiptsInOrderAndOtherFieldsAreIgnored) {
  const auto ack = parse_receipts_frame(R"({"ack":["b","a"],"note":1})");
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->verb, service::ReceiptsVerb::ack);
  EXPECT_EQ(ack->receipts, (std::vector<std::string>{"b", "a"}));
  const auto nack = parse_receipts_frame(R"( {"nack":["r\u0031"]} )");
  ASSERT_TRUE(nack);
  EXPECT_EQ(nack->verb, service::ReceiptsVerb::nack);
  EXPECT_EQ(nack->receipts, (std::vector<std::string>{"r1"}));
}

TEST(ReceiptsFrameTest, AnythingElseIsRefused) {
  for (const std::string_view bad :
       {"", "not json", "null", "[]", "\"ack\"", "{}", R"({"other":["r"]})", R"({"ack":"r"})",
        R"({"ack":[]})", R"({"ack":[1]})", R"({"ack":["r",null]})", R"({"ack":["r"],"nack":["s"]})",
        R"({"ack":["r"]} trailing)", R"({"ack":["r"])"}) {
    EXPECT_FALSE(parse_receipts_frame(bad)) << bad;
  }
}

}  // namespace
}  // namespace gophermq::http
