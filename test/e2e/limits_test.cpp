// Every configurable limit a client can hit: it holds, the client gets a clear answer (or, for a
// timeout, a closed connection), other clients are unaffected, and the hit is counted under the
// limit's config key.
#include <gtest/gtest.h>

#include <boost/system/system_error.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "support/api_texts.hpp"
#include "support/broker_process.hpp"
#include "support/http_client.hpp"
#include "support/stalled_reader.hpp"

namespace gophermq::test {
namespace {

void expect_hits(const BrokerProcess& broker, std::string_view key, int count) {
  HttpClient metrics(broker.metrics_port());
  expect_eventually(metrics, "/metrics", limit_hits(key, count));
}

// One hit counted under `key`, none under the limit it could be mistaken for.
void expect_only_hit(const BrokerProcess& broker, std::string_view key, std::string_view other) {
  expect_hits(broker, key, 1);
  expect_hits(broker, other, 0);
}

TEST(Limits, EveryLimitIsExportedFromTheStart) {
  BrokerProcess broker(isolated_arguments());
  HttpClient metrics(broker.metrics_port());
  const std::string text = metrics.get("/metrics").body;
  for (const char* key :
       {"max-connections", "max-header-bytes", "max-body-bytes", "max-message-bytes",
        "max-subject-length", "max-pending", "async-queue-size", "async-queue-bytes",
        "idle-timeout", "header-timeout", "read-timeout", "write-timeout", "max-receiving-bytes"}) {
    EXPECT_NE(text.find(limit_hits(key, 0)), std::string::npos) << key;
  }
}

TEST(Limits, ConnectionsOverMaxConnectionsGet503AndAreClosed) {
  BrokerProcess broker(isolated_arguments({"--broker.max-connections=2"}));
  std::optional<HttpClient> first(broker.api_port());
  HttpClient second(broker.api_port());
  ASSERT_EQ(first->get("/ready").status, 204U);
  ASSERT_EQ(second.get("/ready").status, 204U);

  HttpClient third(broker.api_port());
  const auto refused = third.get("/ready");
  EXPECT_EQ(refused.status, 503U);
  EXPECT_EQ(refused.body, "{\"message\":\"too many connections\"}\n");
  EXPECT_EQ(refused.header("connection"), "close");
  EXPECT_TRUE(third.closed_cleanly());
  EXPECT_EQ(second.get("/ready").status, 204U);  // the ones let in are unaffected
  expect_hits(broker, "max-connections", 1);

  // A freed slot is given to the next client once the server has seen the close; the bound is a
  // generous time, as a count of attempts would race the server on a loaded machine.
  first.reset();
  unsigned status = 0;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (status != 204U && std::chrono::steady_clock::now() < give_up) {
    HttpClient next(broker.api_port());
    status = next.get("/ready").status;
  }
  EXPECT_EQ(status, 204U);
}

TEST(Limits, MessageOverMaxMessageBytesIs413OnEveryPublishRoute) {
  BrokerProcess broker(isolated_arguments({"--broker.max-message-bytes=8"}));
  HttpClient client(broker.api_port());
  const std::string id = id_of(client.post("/api/subscribe", R"({"subject":"s"})"));
  const std::string too_large = "{\"message\":\"message too large\"}\n";

  auto response = client.post("/api/publish", R"({"subject":"s","data":"123456789"})");
  EXPECT_EQ(response.status, 413U);
  EXPECT_EQ(response.body, too_large);
  response = client.post("/api/publish/async", R"({"subject":"s","data":"123456789"})");
  EXPECT_EQ(response.status, 413U);
  EXPECT_EQ(response.body, too_large);
  response = client.post("/api/publish/batch", R"({"subject":"s","data":["1","123456789"]})");
  EXPECT_EQ(response.status, 413U);
  EXPECT_EQ(response.body, too_large);

  EXPECT_EQ(client.post("/api/publish", R"({"subject":"s","data":"12345678"})").status, 200U);
  EXPECT_EQ(client.post("/api/fetch", fetch_body("s", id)).body, fetched("s", id, R"("12345678")"));
  expect_hits(broker, "max-message-bytes", 3);
}

TEST(Limits, SubjectOverMaxSubjectLengthIs400AndCounted) {
  BrokerProcess broker(isolated_arguments({"--broker.max-subject-length=8"}));
  HttpClient client(broker.api_port());
  const auto response = client.post("/api/subscribe", R"({"subject":"abcd.efgh"})");
  EXPECT_EQ(response.status, 400U);
  EXPECT_EQ(response.body, "{\"message\":\"invalid subject\"}\n");
  EXPECT_EQ(client.post("/api/subscribe", R"({"subject":"abcd.efg"})").status, 200U);
  EXPECT_EQ(client.post("/api/subscribe", R"({"subject":"a..b"})").status, 400U);  // not a length
  expect_hits(broker, "max-subject-length", 1);
}

// Every route refuses a subject over the limit alike and counts it; other invalid subjects, on any
// route, are refused the same way but not counted against the length limit.
TEST(Limits, SubjectOverMaxSubjectLengthIsCountedOnEveryRouteAndNothingElseIs) {
  BrokerProcess broker(isolated_arguments({"--broker.max-subject-length=8"}));
  HttpClient client(broker.api_port());
  const std::string invalid = "{\"message\":\"invalid subject\"}\n";
  for (const std::string subject : {"abcd.efgh", "a..b"}) {
    const std::string named = "\"subject\":\"" + subject + "\"";
    for (const auto& [path, body] : std::vector<std::pair<std::string, std::string>>{
             {"/api/subscribe", "{" + named + "}"},
             {"/api/publish", "{" + named + ",\"data\":\"x\"}"},
             {"/api/publish/async", "{" + named + ",\"data\":\"x\"}"},
             {"/api/publish/batch", "{" + named + ",\"data\":[\"x\"]}"},
             {"/api/fetch", "{" + named + ",\"id\":\"x\"}"},
             {"/api/unsubscribe", "{" + named + ",\"id\":\"x\"}"}}) {
      const auto response = client.post(path, body);
      EXPECT_EQ(response.status, 400U) << path << " " << subject;
      EXPECT_EQ(response.body, invalid) << path << " " << subject;
    }
  }
  expect_hits(broker, "max-subject-length", 6);
}

TEST(Limits, BrokerOverflowIsCounted) {
  BrokerProcess broker(isolated_arguments({"--broker.max-pending=1"}));
  HttpClient client(broker.api_port());
  client.post("/api/subscribe", R"({"subject":"s"})");
  EXPECT_EQ(client.post("/api/publish", R"({"subject":"s","data":"a"})").status, 200U);
  EXPECT_EQ(client.post("/api/publish", R"({"subject":"s","data":"b"})").status, 429U);
  expect_hits(broker, "max-pending", 1);
}

TEST(Limits, AsyncPublishOverAsyncQueueBytesIs429) {
  BrokerProcess broker(isolated_arguments({"--broker.async-queue-bytes=4"}));
  HttpClient client(broker.api_port());
  client.post("/api/subscribe", R"({"subject":"s"})");
  const auto response = client.post("/api/publish/async", R"({"subject":"s","data":"12345"})");
  EXPECT_EQ(response.status, 429U);
  EXPECT_EQ(response.body, "{\"message\":\"async queue full\"}\n");
  EXPECT_EQ(client.post("/api/publish/async", R"({"subject":"s","data":"1234"})").status, 200U);
  expect_hits(broker, "async-queue-bytes", 1);
}

TEST(Limits, SlowlorisIsCutOffAtTheHeaderTimeoutWhileOthersAreServed) {
  BrokerProcess broker(
      isolated_arguments({"--broker.header-timeout=300ms", "--broker.read-timeout=60s"}));
  HttpClient slow(broker.api_port());
  slow.send_raw("GET /ready HTTP/1.1\r\nHost: t\r\n");
  // One header line every 20 ms: a timer restarted by each read would never fire. The pace is
  // the attack itself; the test waits on the server's close, not on the clock.
  bool cut_off = false;
  for (int line = 0; line < 1000 && !cut_off; ++line) {
    EXPECT_EQ(post_once(broker.api_port(), "/api/subscribe", R"({"subject":"s"})").status, 200U);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    try {
      slow.send_raw("X-Slow: " + std::to_string(line) + "\r\n");
    } catch (const boost::system::system_error&) {
      cut_off = true;
    }
  }
  EXPECT_TRUE(cut_off);
  EXPECT_TRUE(slow.wait_until_closed());
  expect_only_hit(broker, "header-timeout", "read-timeout");
}

TEST(Limits, IncompleteBodyIsCutOffAtTheReadTimeout) {
  BrokerProcess broker(isolated_arguments({"--broker.read-timeout=300ms"}));
  HttpClient client(broker.api_port());
  client.send_raw("POST /api/subscribe HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{\"su");
  EXPECT_TRUE(client.wait_until_closed());
  expect_only_hit(broker, "read-timeout", "header-timeout");
}

TEST(Limits, IdleKeepAliveConnectionIsClosedAndCounted) {
  BrokerProcess broker(isolated_arguments({"--broker.idle-timeout=200ms"}));
  HttpClient client(broker.api_port());
  EXPECT_EQ(client.get("/ready").status, 204U);
  const auto answered = std::chrono::steady_clock::now();
  EXPECT_TRUE(client.closed_cleanly());
  const auto idle = std::chrono::steady_clock::now() - answered;
  EXPECT_GE(idle, std::chrono::milliseconds(150));
  EXPECT_LT(idle, std::chrono::milliseconds(200) + std::chrono::seconds(1));
  expect_hits(broker, "idle-timeout", 1);
}

TEST(Limits, AnswerToAClientThatNeverReadsIsCutOffAtTheWriteTimeout) {
  BrokerProcess broker(large_answer_arguments({"--broker.write-timeout=500ms"}));
  const std::string request = large_answer_request(broker.api_port());
  const auto sent = std::chrono::steady_clock::now();
  StalledReader reader(broker.api_port(), request);
  HttpClient metrics(broker.metrics_port());
  const std::string text = poll_until_contains(metrics, "/metrics", limit_hits("write-timeout", 1));
  const auto waited = std::chrono::steady_clock::now() - sent;
  ASSERT_NE(text.find(limit_hits("write-timeout", 1)), std::string::npos) << text;
  EXPECT_GE(waited, std::chrono::milliseconds(500));
  EXPECT_LT(waited, std::chrono::milliseconds(1500));
  EXPECT_LT(reader.read_until_closed(), 16U * 1024 * 1024 - 256);  // the answer was cut off
  expect_hits(broker, "read-timeout", 0);
}

TEST(Limits, OversizedHeadAndBodyAreCounted) {
  BrokerProcess broker(isolated_arguments({"--broker.max-body-bytes=1024"}));
  HttpClient body(broker.api_port());
  EXPECT_EQ(body.post("/api/publish", std::string(2000, 'x')).status, 413U);
  HttpClient head(broker.api_port());
  head.send_raw("GET /ready HTTP/1.1\r\nX-Big: " + std::string(20000, 'h') + "\r\n\r\n");
  EXPECT_EQ(head.read_response().status, 431U);
  expect_hits(broker, "max-body-bytes", 1);
  expect_hits(broker, "max-header-bytes", 1);
}

}  // namespace
}  // namespace gophermq::test
