// The broker core's bounds through the real binary: durations of any accepted size, the number of
// subscriptions, the per-queue bound with both policies, and the byte bound under fan-out.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/api_texts.hpp"
#include "support/broker_process.hpp"
#include "support/http_client.hpp"

namespace gophermq::test {
namespace {

class CoreLimits : public testing::Test {
 protected:
  void start(std::vector<std::string> extra) {
    broker_ = std::make_unique<BrokerProcess>(isolated_arguments(std::move(extra)));
    client_ = std::make_unique<HttpClient>(broker_->api_port());
  }

  std::string subscribe(std::string_view subject) { return test::subscribe(client(), subject); }

  HttpResponse publish(std::string_view subject, std::string_view data) {
    return client().post("/api/publish", publish_body(subject, data));
  }

  HttpResponse fetch(std::string_view subject, std::string_view id) {
    return client().post("/api/fetch", fetch_body(subject, id));
  }

  // Waits until /metrics shows `line`, and fails the test if it never does.
  void expect_metric(const std::string& line) {
    HttpClient metrics(broker_->metrics_port());
    expect_eventually(metrics, "/metrics", line);
  }

  // Waits until GET /api/stats contains `needle`, and returns the body.
  std::string await_stats(const std::string& needle) {
    return expect_eventually(client(), "/api/stats", needle);
  }

  HttpClient& client() { return *client_; }
  BrokerProcess& broker() { return *broker_; }

 private:
  std::unique_ptr<BrokerProcess> broker_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(CoreLimits, NewLimitsAndReasonsAreExportedFromTheStart) {
  start({});
  HttpClient metrics(broker().metrics_port());
  const std::string text = metrics.get("/metrics").body;
  for (const std::string& line :
       {limit_hits("max-subscriptions", 0), limit_hits("max-pending-per-queue", 0),
        dropped("queue_full", 0),
        series("gophermq_async_publish_failed_total", "reason", "queue_full", 0)}) {
    EXPECT_NE(text.find(line), std::string::npos) << line;
  }
}

// A message-ttl too large for the clock's time points must not wrap into the past: the message
// stays until its subscription expires (300 ms, tens of expiry rounds later), which drops it as
// subscriber_ttl, never as message_ttl.
TEST_F(CoreLimits, HugeMessageTtlNeverDropsEarly) {
  for (const char* ttl : {"2562048h", "3000000h", "2562047h", "8760000h"}) {
    SCOPED_TRACE(ttl);
    start({std::string("--broker.message-ttl=") + ttl, "--broker.subscriber-ttl=300ms"});
    subscribe("kept");
    ASSERT_EQ(publish("kept", "x").status, 200U);
    const std::string stats = await_stats("\"subscriber_ttl\":1");
    EXPECT_NE(stats.find("\"message_ttl\":0,"), std::string::npos) << stats;
    expect_metric(dropped("message_ttl", 0));
  }
}

// A subscriber-ttl too large for the clock keeps an idle subscription across expiry rounds; each
// round is observed as a probe message expiring under a short message-ttl.
TEST_F(CoreLimits, HugeSubscriberTtlNeverRemovesEarly) {
  for (const char* ttl : {"3000000h", "2562048h", "8760000h"}) {
    SCOPED_TRACE(ttl);
    start({std::string("--broker.subscriber-ttl=") + ttl, "--broker.message-ttl=100ms"});
    const std::string idle = subscribe("idle");
    subscribe("probe");
    for (int round = 1; round <= 3; ++round) {
      ASSERT_EQ(publish("probe", "p").status, 200U) << "round " << round;
      await_stats("\"message_ttl\":" + std::to_string(round) + ",");
    }
    EXPECT_NE(await_stats("\"subscriptions\":2,").find("\"subscriber_ttl\":0,"), std::string::npos);
    EXPECT_EQ(fetch("idle", idle).status, 200U);
  }
}

TEST_F(CoreLimits, SubscriptionsBeyondMaxSubscriptionsGet429) {
  start({"--broker.max-subscriptions=2"});
  const std::string first = subscribe("a");
  subscribe("b");
  const std::string too_many = "{\"message\":\"too many subscriptions\"}\n";
  for (const char* body : {R"({"subject":"c"})", R"({"subject":"c","group":"g"})"}) {
    const auto refused = client().post("/api/subscribe", body);
    EXPECT_EQ(refused.status, 429U);
    EXPECT_EQ(refused.body, too_many);
  }
  expect_metric(limit_hits("max-subscriptions", 2));
  await_stats("\"subscriptions\":2,");

  // A freed slot can be taken again.
  ASSERT_EQ(client().post("/api/unsubscribe", fetch_body("a", first)).status, 200U);
  EXPECT_EQ(client().post("/api/subscribe", R"({"subject":"c","group":"g"})").status, 200U);
  EXPECT_EQ(client().post("/api/subscribe", R"({"subject":"d"})").status, 429U);
}

// max-pending-bytes counts each subscriber's copy: 6 bytes fit once under 10, not twice.
TEST_F(CoreLimits, FanOutCountsEveryCopyAgainstMaxPendingBytes) {
  start({"--broker.max-pending-bytes=10"});
  const std::string first = subscribe("s");
  EXPECT_EQ(publish("s", "123456").status, 200U);
  EXPECT_EQ(fetch("s", first).body, fetched("s", first, "\"123456\""));

  const std::string second = subscribe("s");
  const auto refused = publish("s", "123456");
  EXPECT_EQ(refused.status, 429U);
  EXPECT_EQ(refused.body, "{\"message\":\"broker overflow\"}\n");
  EXPECT_EQ(client().post("/api/publish/batch", R"({"subject":"s","data":["123","456"]})").status,
            429U);
  EXPECT_EQ(fetch("s", first).body, fetched("s", first, ""));
  EXPECT_EQ(fetch("s", second).body, fetched("s", second, ""));
  EXPECT_EQ(publish("s", "12345").status, 200U);  // 2 x 5 bytes fit exactly
  expect_metric(limit_hits("max-pending", 2));
}

TEST_F(CoreLimits, RejectPolicyRefusesOnlyPublishesThatReachAFullQueue) {
  start({"--broker.max-pending-per-queue=2"});
  const std::string slow = subscribe("orders");
  const std::string fast = subscribe("orders");
  const std::string other = subscribe("other");
  ASSERT_EQ(publish("orders", "1").status, 200U);
  ASSERT_EQ(publish("orders", "2").status, 200U);

  const std::string queue_full = "{\"message\":\"subscriber queue full\"}\n";
  auto refused = publish("orders", "3");
  EXPECT_EQ(refused.status, 429U);
  EXPECT_EQ(refused.body, queue_full);
  // Emptying one queue is not enough while the other is still full, and nothing is stored in it.
  EXPECT_EQ(fetch("orders", fast).body, fetched("orders", fast, R"("1","2")"));
  refused = client().post("/api/publish/batch", R"({"subject":"orders","data":["3","4"]})");
  EXPECT_EQ(refused.status, 429U);
  EXPECT_EQ(refused.body, queue_full);
  EXPECT_EQ(fetch("orders", fast).body, fetched("orders", fast, ""));
  // Publishes that reach no full queue succeed.
  EXPECT_EQ(publish("other", "o").status, 200U);
  EXPECT_EQ(fetch("other", other).body, fetched("other", other, R"("o")"));

  // Async publishes are accepted, then refused by the broker and counted.
  EXPECT_EQ(client().post("/api/publish/async", publish_body("orders", "a")).status, 200U);
  expect_metric(series("gophermq_async_publish_failed_total", "reason", "queue_full", 1));

  EXPECT_EQ(fetch("orders", slow).body, fetched("orders", slow, R"("1","2")"));
  // A batch larger than the bound can never fit.
  EXPECT_EQ(
      client().post("/api/publish/batch", R"({"subject":"orders","data":["a","b","c"]})").status,
      429U);
  EXPECT_EQ(client().post("/api/publish/batch", R"({"subject":"orders","data":["a","b"]})").status,
            200U);
  EXPECT_EQ(fetch("orders", slow).body, fetched("orders", slow, R"("a","b")"));
  expect_metric(limit_hits("max-pending-per-queue", 3));
  EXPECT_NE(await_stats("\"published_messages\":5,").find("\"queue_full\":0,"), std::string::npos);
}

TEST_F(CoreLimits, RejectPolicyWithAStalledWildcardRefusesEverything) {
  start({"--broker.max-pending-per-queue=1"});
  subscribe(">");
  const std::string a = subscribe("a");
  ASSERT_EQ(publish("a", "1").status, 200U);
  EXPECT_EQ(fetch("a", a).body, fetched("a", a, R"("1")"));
  EXPECT_EQ(publish("a", "2").status, 429U);
  EXPECT_EQ(publish("b.c", "3").status, 429U);
}

TEST_F(CoreLimits, DropOldestPolicyKeepsTheNewestAndCountsTheRest) {
  start({"--broker.max-pending-per-queue=2", "--broker.slow-queue-policy=drop-oldest"});
  const std::string slow = subscribe("s");
  for (const char* data : {"1", "2", "3"}) {
    EXPECT_EQ(publish("s", data).status, 200U);
  }
  EXPECT_EQ(fetch("s", slow).body, fetched("s", slow, R"("2","3")"));
  EXPECT_EQ(
      client().post("/api/publish/batch", R"({"subject":"s","data":["4","5","6","7"]})").status,
      200U);
  EXPECT_EQ(fetch("s", slow).body, fetched("s", slow, R"("6","7")"));
  expect_metric(dropped("queue_full", 3));
  expect_metric(limit_hits("max-pending-per-queue", 0));
  const std::string stats = await_stats("\"queue_full\":3,");
  EXPECT_NE(stats.find("\"published_messages\":7,"), std::string::npos) << stats;
  EXPECT_NE(stats.find("\"delivered_messages\":4,"), std::string::npos) << stats;

  // A waiting fetch is still woken by a publish that drops.
  ASSERT_EQ(publish("s", "8").status, 200U);
  ASSERT_EQ(publish("s", "9").status, 200U);
  HttpClient waiting(broker().api_port());
  EXPECT_EQ(fetch("s", slow).body, fetched("s", slow, R"("8","9")"));
  waiting.send_raw(post_request("/api/fetch", fetch_body("s", slow, R"(,"wait_ms":20000)")));
  await_stats(waiting_fetches(1));
  ASSERT_EQ(client().post("/api/publish/batch", R"({"subject":"s","data":["x","y","z"]})").status,
            200U);
  EXPECT_EQ(waiting.read_response().body, fetched("s", slow, R"("y","z")"));
}

}  // namespace
}  // namespace gophermq::test
