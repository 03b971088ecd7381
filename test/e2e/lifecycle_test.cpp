#include <gtest/gtest.h>

#include <chrono>
#include <csignal>

#include "support/broker_process.hpp"
#include "support/clock.hpp"
#include "support/http_client.hpp"
#include "support/stalled_reader.hpp"

namespace gophermq::test {
namespace {

using std::chrono::milliseconds;

constexpr std::size_t kLargeAnswerBytes = 16 * 1024 * 1024 - 256;

TEST(Lifecycle, SigtermClosesConnectionsWithoutARequestInFlightAtOnceAndExitsZero) {
  BrokerProcess broker(isolated_arguments({"--broker.shutdown-timeout=20s"}));
  HttpClient idle(broker.api_port());
  EXPECT_EQ(idle.get("/ready").status, 204U);

  // A client that stopped in the middle of its body, and one in the middle of its head: neither
  // has an answer in flight, so neither may hold the shutdown.
  HttpClient half_body(broker.api_port());
  half_body.send_raw("POST /api/subscribe HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{\"su");
  HttpClient half_head(broker.api_port());
  half_head.send_raw("GET /ready HTTP/1.1\r\n");
  EXPECT_EQ(post_once(broker.api_port(), "/api/subscribe", R"({"subject":"s"})").status, 200U);

  const auto signalled = Clock::now();
  broker.send_signal(SIGTERM);
  EXPECT_EQ(broker.wait_for_exit(), 0);
  EXPECT_LT(since(signalled), milliseconds(1000));

  EXPECT_TRUE(idle.closed_cleanly());
  EXPECT_TRUE(half_body.closed_cleanly());  // closed without an answer
  EXPECT_TRUE(half_head.closed_cleanly());
}

TEST(Lifecycle, SigtermWaitsForAStalledAnswerUntilTheShutdownTimeoutAndNoLonger) {
  BrokerProcess broker(
      large_answer_arguments({"--broker.shutdown-timeout=1s", "--broker.write-timeout=30s"}));
  StalledReader reader(broker.api_port(), large_answer_request(broker.api_port()));
  ASSERT_TRUE(reader.wait_for_answer_start());

  const auto signalled = Clock::now();
  broker.send_signal(SIGTERM);
  EXPECT_EQ(broker.wait_for_exit(), 0);
  const auto waited = since(signalled);
  EXPECT_GE(waited, milliseconds(1000));
  EXPECT_LT(waited, milliseconds(2500));
  EXPECT_LT(reader.read_until_closed(), kLargeAnswerBytes);  // the answer was cut off
}

TEST(Lifecycle, ASecondSignalExitsAtOnceNonZeroWhenARequestIsAbandoned) {
  BrokerProcess broker(
      large_answer_arguments({"--broker.shutdown-timeout=20s", "--broker.write-timeout=30s"}));
  StalledReader reader(broker.api_port(), large_answer_request(broker.api_port()));
  ASSERT_TRUE(reader.wait_for_answer_start());

  broker.send_signal(SIGTERM);
  broker.wait_for_log("shutting down");
  const auto signalled = Clock::now();
  broker.send_signal(SIGINT);
  EXPECT_EQ(broker.wait_for_exit(), 1);
  EXPECT_LT(since(signalled), milliseconds(1000));
  EXPECT_NE(broker.log().find("msg=\"forced shutdown\" signal=2 requests_in_flight=1"),
            std::string::npos)
      << broker.log();
  EXPECT_LT(reader.read_until_closed(), kLargeAnswerBytes);
}

TEST(Lifecycle, SigintOnAnIdleBrokerExitsZero) {
  BrokerProcess broker(isolated_arguments());
  broker.send_signal(SIGINT);
  EXPECT_EQ(broker.wait_for_exit(), 0);
  EXPECT_NE(broker.log().find("msg=stopped"), std::string::npos);
}

}  // namespace
}  // namespace gophermq::test
