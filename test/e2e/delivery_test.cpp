// Long-poll fetch, expiry and stats, over HTTP against the real binary.
#include <gtest/gtest.h>

#include <csignal>
#include <memory>
#include <regex>
#include <set>
#include <vector>

#include "support/api_texts.hpp"
#include "support/broker_process.hpp"
#include "support/clock.hpp"
#include "support/http_client.hpp"

namespace gophermq::test {
namespace {

using namespace std::chrono_literals;

class Delivery : public testing::Test {
 protected:
  explicit Delivery(std::vector<std::string> extra = {})
      : broker(isolated_arguments(std::move(extra))) {}

  std::string subscribe(std::string_view subject) { return test::subscribe(client, subject); }

  // Sends a waiting fetch on a connection of its own and returns that connection, so the test
  // reads the answer when it chooses.
  std::unique_ptr<HttpClient> start_waiting_fetch(std::string_view subject, std::string_view id,
                                                  std::string_view fields = R"(,"wait_ms":20000)") {
    auto waiting = std::make_unique<HttpClient>(broker.api_port());
    waiting->send_raw(post_request("/api/fetch", fetch_body(subject, id, fields)));
    return waiting;
  }

  // The broker has linked `count` fetches to their queues.
  void expect_waiting(std::size_t count) {
    expect_eventually(client, "/api/stats", waiting_fetches(count));
  }

  BrokerProcess broker;
  HttpClient client{broker.api_port()};
};

TEST_F(Delivery, LongPollReturnsAsSoonAsAMessageIsPublished) {
  const auto id = subscribe("orders");
  auto waiting = start_waiting_fetch("orders", id);
  expect_waiting(1);
  EXPECT_EQ(client.post("/api/publish", R"({"subject":"orders","data":"hi"})").status, 200U);
  const auto published = Clock::now();
  const auto response = waiting->read_response();
  EXPECT_EQ(response.status, 200U);
  EXPECT_EQ(response.body, fetched("orders", id, "\"hi\""));
  EXPECT_LT(Clock::now() - published, 1s);
}

TEST_F(Delivery, LongPollWithNothingPublishedReturnsEmptyAfterAboutWaitMs) {
  const auto id = subscribe("orders");
  const auto started = Clock::now();
  const auto response = client.post("/api/fetch", fetch_body("orders", id, R"(,"wait_ms":300)"));
  const auto elapsed = Clock::now() - started;
  EXPECT_EQ(response.body, fetched("orders", id, ""));
  EXPECT_GE(elapsed, 300ms);
  EXPECT_LT(elapsed, 300ms + 1s);
}

TEST_F(Delivery, LongPollReturnsPendingMessagesAtOnceUpToMax) {
  const auto id = subscribe("s");
  client.post("/api/publish/batch", R"({"subject":"s","data":["1","2","3"]})");
  const auto started = Clock::now();
  const auto response =
      client.post("/api/fetch", fetch_body("s", id, R"(,"wait_ms":20000,"max":2)"));
  EXPECT_EQ(response.body, fetched("s", id, R"("1","2")"));
  EXPECT_LT(Clock::now() - started, 1s);
}

TEST_F(Delivery, WaitMsMustBeANonNegativeInteger) {
  const auto id = subscribe("s");
  for (const char* wait :
       {R"(,"wait_ms":-1)", R"(,"wait_ms":"10")", R"(,"wait_ms":1.5)", R"(,"wait_ms":null)"}) {
    const auto response = client.post("/api/fetch", fetch_body("s", id, wait));
    EXPECT_EQ(response.status, 400U) << wait;
    EXPECT_EQ(response.body, "{\"message\":\"request's body is invalid\"}\n") << wait;
  }
  EXPECT_EQ(client.post("/api/fetch", fetch_body("s", "nobody", R"(,"wait_ms":20000)")).status,
            404U);
}

TEST_F(Delivery, UnsubscribeEndsAWaitingFetchWithNothing) {
  const auto id = subscribe("s");
  auto waiting = start_waiting_fetch("s", id);
  expect_waiting(1);
  EXPECT_EQ(client.post("/api/unsubscribe", fetch_body("s", id)).status, 200U);
  EXPECT_EQ(waiting->read_response().body, fetched("s", id, ""));
}

TEST_F(Delivery, ManyWaitingFetchesAreAllWokenByOnePublish) {
  constexpr int kWaiters = 200;
  std::vector<std::string> ids;
  std::vector<std::unique_ptr<HttpClient>> waiting;
  for (int i = 0; i < kWaiters; ++i) {
    ids.push_back(subscribe("fan"));
    waiting.push_back(start_waiting_fetch("fan", ids.back()));
  }
  expect_waiting(kWaiters);
  EXPECT_EQ(client.post("/api/publish", R"({"subject":"fan","data":"go"})").status, 200U);
  for (int i = 0; i < kWaiters; ++i) {
    EXPECT_EQ(waiting[static_cast<std::size_t>(i)]->read_response().body,
              fetched("fan", ids[static_cast<std::size_t>(i)], "\"go\""));
  }
}

TEST_F(Delivery, GroupMembersWaitingTogetherGetEachMessageOnce) {
  const auto first =
      id_of(client.post("/api/subscribe", R"({"subject":"jobs","group":"workers"})"));
  const auto second =
      id_of(client.post("/api/subscribe", R"({"subject":"jobs","group":"workers"})"));
  auto one = start_waiting_fetch("jobs", first, R"(,"wait_ms":20000,"max":1)");
  auto two = start_waiting_fetch("jobs", second, R"(,"wait_ms":20000,"max":1)");
  expect_waiting(2);
  client.post("/api/publish/batch", R"({"subject":"jobs","data":["a","b"]})");
  // Which member waited first is up to the network; each gets one message, none gets both.
  std::set<std::string> delivered;
  static const std::regex one_message(R"re(^\{"data":\["([ab])"\],)re");
  for (auto* waiting : {one.get(), two.get()}) {
    const auto body = waiting->read_response().body;
    std::smatch match;
    ASSERT_TRUE(std::regex_search(body, match, one_message)) << body;
    delivered.insert(match[1]);
  }
  EXPECT_EQ(delivered, (std::set<std::string>{"a", "b"}));
}

TEST_F(Delivery, AClientThatResetsStopsWaitingAndLosesNothing) {
  const auto id = subscribe("s");
  auto waiting = start_waiting_fetch("s", id);
  expect_waiting(1);
  waiting->abort();
  expect_waiting(0);
  client.post("/api/publish", R"({"subject":"s","data":"kept"})");
  EXPECT_EQ(client.post("/api/fetch", fetch_body("s", id)).body, fetched("s", id, "\"kept\""));
}

TEST_F(Delivery, StatsShowTotalsAndTheBusiestSubjects) {
  subscribe("quiet");
  subscribe("busy");
  client.post("/api/subscribe", R"({"subject":"busy","group":"g"})");
  client.post("/api/publish/batch", R"({"subject":"busy","data":["ab","c"]})");
  const auto response = client.get("/api/stats");
  EXPECT_EQ(response.status, 200U);
  EXPECT_EQ(response.header("content-type"), "application/json; charset=UTF-8");
  const std::regex shape(
      R"(\{"subjects":\[)"
      R"(\{"groups":1,"in_flight":0,"pending_bytes":6,"pending_messages":4,"subject":"busy",)"
      R"("subscriptions":2\},)"
      R"(\{"groups":0,"in_flight":0,"pending_bytes":0,"pending_messages":0,"subject":"quiet",)"
      R"("subscriptions":1\}\],)"
      R"("totals":\{"delivered_messages":0,)"
      R"("dropped_messages":\{"max_deliveries":0,"message_ttl":0,"purged":0,"queue_full":0,"subscriber_ttl":0,)"
      R"("unsubscribe":0\},"in_flight":0,)"
      R"("pending_bytes":6,"pending_messages":4,"published_messages":2,"subjects":2,)"
      R"("subscriptions":3,"waiting_fetches":0\},"uptime_seconds":\d+\}\n)");
  EXPECT_TRUE(std::regex_match(response.body, shape)) << response.body;

  const auto limited = client.get("/api/stats?limit=1").body;
  EXPECT_NE(limited.find("\"subject\":\"busy\""), std::string::npos);
  EXPECT_EQ(limited.find("\"subject\":\"quiet\""), std::string::npos);
  EXPECT_NE(client.get("/api/stats?limit=0").body.find("{\"subjects\":[],"), std::string::npos);
  for (const char* bad : {"/api/stats?limit=-1", "/api/stats?limit=x",
                          "/api/stats?limit=", "/api/stats?limit=1001"}) {
    const auto refused = client.get(bad);
    EXPECT_EQ(refused.status, 400U) << bad;
    EXPECT_EQ(refused.body, "{\"message\":\"invalid limit\"}\n") << bad;
  }
  EXPECT_EQ(client.post("/api/stats", "{}").status, 405U);
}

class DeliveryCappedWait : public Delivery {
 protected:
  DeliveryCappedWait() : Delivery({"--broker.max-wait-ms=200"}) {}
};

TEST_F(DeliveryCappedWait, WaitIsCappedByMaxWaitMs) {
  const auto id = subscribe("s");
  const auto started = Clock::now();
  const auto response = client.post("/api/fetch", fetch_body("s", id, R"(,"wait_ms":600000)"));
  EXPECT_EQ(response.body, fetched("s", id, ""));
  EXPECT_GE(Clock::now() - started, 200ms);
  EXPECT_LT(Clock::now() - started, 200ms + 1s);
}

class DeliveryWithTtls : public Delivery {
 protected:
  DeliveryWithTtls() : Delivery({"--broker.subscriber-ttl=400ms", "--broker.message-ttl=200ms"}) {}
};

TEST_F(DeliveryWithTtls, OldMessagesAndIdleSubscriptionsExpireAndAreCounted) {
  const auto id = subscribe("s");
  client.post("/api/publish", R"({"subject":"s","data":"stale"})");
  HttpClient metrics(broker.metrics_port());
  const auto dropped = metric_line("gophermq_dropped_messages_total{reason=\"message_ttl\"} 1");
  expect_eventually(metrics, "/metrics", dropped);
  EXPECT_EQ(client.post("/api/fetch", fetch_body("s", id)).body, fetched("s", id, ""));

  const auto none = metric_line("gophermq_subscriptions 0");
  expect_eventually(metrics, "/metrics", none);
  EXPECT_EQ(client.post("/api/fetch", fetch_body("s", id)).status, 404U);
}

class DeliveryWithSubscriberTtl : public Delivery {
 protected:
  DeliveryWithSubscriberTtl() : Delivery({"--broker.subscriber-ttl=300ms"}) {}
};

TEST_F(DeliveryWithSubscriberTtl, IdleSubscriptionGoesWithItsMessagesWhileABusyOneStays) {
  const auto busy = subscribe("s");
  const auto idle = subscribe("t");
  client.post("/api/publish", R"({"subject":"t","data":"x"})");
  HttpClient poller(broker.api_port());
  HttpClient metrics(broker.metrics_port());
  const auto deadline = Clock::now() + 10s;
  std::string text;
  while (text.find(metric_line("gophermq_subscriptions 1")) == std::string::npos &&
         Clock::now() < deadline) {
    // Long polls of 100 ms keep `busy` active while `idle` passes its 300 ms.
    EXPECT_EQ(poller.post("/api/fetch", fetch_body("s", busy, R"(,"wait_ms":100)")).status, 200U);
    text = metrics.get("/metrics").body;
  }
  EXPECT_NE(text.find(metric_line("gophermq_dropped_messages_total{reason=\"subscriber_ttl\"} 1")),
            std::string::npos)
      << text;
  EXPECT_EQ(client.post("/api/fetch", fetch_body("t", idle)).status, 404U);
  EXPECT_EQ(client.post("/api/fetch", fetch_body("s", busy)).status, 200U);
}

TEST(DeliveryShutdown, SigtermEndsLongPollsWithWhatTheyHave) {
  BrokerProcess broker(isolated_arguments());
  HttpClient client(broker.api_port());
  const auto id = id_of(client.post("/api/subscribe", R"({"subject":"s"})"));
  HttpClient waiting(broker.api_port());
  waiting.send_raw(post_request("/api/fetch", fetch_body("s", id, R"(,"wait_ms":30000)")));
  const std::string needle = waiting_fetches(1);
  ASSERT_NE(poll_until_contains(client, "/api/stats", needle).find(needle), std::string::npos);
  const auto started = Clock::now();
  broker.send_signal(SIGTERM);
  const auto response = waiting.read_response();
  EXPECT_LT(Clock::now() - started, 1s);
  EXPECT_EQ(response.status, 200U);
  EXPECT_EQ(response.body, fetched("s", id, ""));
  EXPECT_EQ(response.header("connection"), "close");
  EXPECT_EQ(broker.wait_for_exit(), 0);
  EXPECT_LT(Clock::now() - started, 10s);
}

}  // namespace
}  // namespace gophermq::test
