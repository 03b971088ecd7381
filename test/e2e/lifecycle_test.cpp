#include <gtest/gtest.h>

#include <chrono>
#include <csignal>

#include "support/broker_process.hpp"
#include "support/http_client.hpp"

namespace gophermq::test {
namespace {

TEST(Lifecycle, SigtermAnswersTheRequestInFlightClosesIdleOnesAndExitsZero) {
  BrokerProcess broker(isolated_arguments());
  HttpClient idle(broker.api_port());
  EXPECT_EQ(idle.get("/ready").status, 204U);

  // A request whose body is still arriving when the signal comes.
  HttpClient in_flight(broker.api_port());
  const std::string body = R"({"subject":"late"})";
  in_flight.send_raw("POST /api/subscribe HTTP/1.1\r\nHost: t\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n" + body.substr(0, 5));
  // A readiness probe begun before the signal and finished after it.
  HttpClient probe(broker.api_port());
  probe.send_raw("GET /ready HTTP/1.1\r\n");

  const auto signalled = std::chrono::steady_clock::now();
  broker.send_signal(SIGTERM);
  broker.wait_for_log("shutting down");

  in_flight.send_raw(body.substr(5));
  const auto answered = in_flight.read_response();
  EXPECT_EQ(answered.status, 200U);
  EXPECT_EQ(answered.header("connection"), "close");
  EXPECT_TRUE(in_flight.closed_cleanly());

  probe.send_raw("Host: t\r\n\r\n");
  const auto ready = probe.read_response();
  EXPECT_EQ(ready.status, 503U);
  EXPECT_EQ(ready.body, "{\"message\":\"shutting down\"}\n");

  EXPECT_TRUE(idle.closed_cleanly());
  EXPECT_LT(std::chrono::steady_clock::now() - signalled, std::chrono::seconds(1));
  EXPECT_EQ(broker.wait_for_exit(), 0);
}

TEST(Lifecycle, SigintOnAnIdleBrokerExitsZero) {
  BrokerProcess broker(isolated_arguments());
  broker.send_signal(SIGINT);
  EXPECT_EQ(broker.wait_for_exit(), 0);
  EXPECT_NE(broker.log().find("msg=stopped"), std::string::npos);
}

}  // namespace
}  // namespace gophermq::test
