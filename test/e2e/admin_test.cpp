// The operator's endpoints through the real binary (docs/api.md, Admin): every status of each,
// purge then fetch, purge across a restart with storage, limit and truncated, idle_ms.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "support/api_texts.hpp"
#include "support/broker_process.hpp"
#include "support/http_client.hpp"
#include "support/temp_files.hpp"

namespace gophermq::test {
namespace {

constexpr std::string_view kJson = "application/json; charset=UTF-8";

class Admin : public testing::Test {
 protected:
  void start(std::vector<std::string> extra = {}) {
    client.reset();
    broker.emplace(isolated_arguments(std::move(extra)));
    client.emplace(broker->api_port());
  }

  void SetUp() override { start(); }

  std::string subscribe(std::string_view subject, std::string_view extra = "") {
    const HttpResponse response =
        client->post("/api/subscribe",
                     R"({"subject":")" + std::string(subject) + "\"" + std::string(extra) + "}");
    EXPECT_EQ(response.status, 200U) << response.body;
    return id_of(response);
  }

  void publish(std::string_view subject, std::string_view data) {
    const HttpResponse response = client->post("/api/publish", publish_body(subject, data));
    EXPECT_EQ(response.status, 200U) << response.body;
  }

  // The idle_ms the listing shows for subscription `id`.
  std::uint64_t idle_ms(const std::string& id) {
    const HttpResponse response = client->get("/api/admin/subscriptions");
    const std::regex row("\"id\":\"" + id + "\",\"idle_ms\":([0-9]+)");
    std::smatch match;
    EXPECT_TRUE(std::regex_search(response.body, match, row)) << response.body;
    return std::stoull(match[1]);
  }

  std::optional<BrokerProcess> broker;
  std::optional<HttpClient> client;
};

TEST_F(Admin, ListsSubscriptionsWithinAPatternWithTheirState) {
  const std::string plain = subscribe("orders.eu");
  const std::string grouped = subscribe("orders.*", R"(,"group":"workers")");
  const std::string acked = subscribe("audit", R"(,"ack":true)");
  publish("orders.eu", "a");
  publish("audit", "b");
  publish("audit", "c");
  ASSERT_EQ(client->post("/api/fetch", fetch_body("audit", acked, R"(,"max":1)")).status, 200U);

  const HttpResponse all = client->get("/api/admin/subscriptions");
  EXPECT_EQ(all.status, 200U);
  EXPECT_EQ(all.header("content-type"), kJson);
  EXPECT_NE(all.body.find("{\"ack\":true,\"id\":\"" + acked + "\",\"idle_ms\":"), std::string::npos)
      << all.body;
  EXPECT_NE(all.body.find("\"in_flight\":1,\"pending\":1,\"subject\":\"audit\"}"),
            std::string::npos)
      << all.body;
  EXPECT_NE(all.body.find("{\"group\":\"workers\",\"id\":\"" + grouped + "\""), std::string::npos)
      << all.body;
  EXPECT_TRUE(all.body.ends_with("],\"truncated\":false}\n")) << all.body;

  // orders.* lies within orders.>; audit does not; `>` and `*` percent-encoded or not.
  for (const std::string target : {"/api/admin/subscriptions?subject=orders.%3E",
                                   "/api/admin/subscriptions?subject=orders.>"}) {
    const HttpResponse within = client->get(target);
    EXPECT_EQ(within.status, 200U);
    EXPECT_NE(within.body.find(plain), std::string::npos);
    EXPECT_NE(within.body.find(grouped), std::string::npos);
    EXPECT_EQ(within.body.find(acked), std::string::npos) << within.body;
  }
  const HttpResponse narrow = client->get("/api/admin/subscriptions?subject=orders.eu");
  EXPECT_NE(narrow.body.find(plain), std::string::npos);
  EXPECT_EQ(narrow.body.find(grouped), std::string::npos) << narrow.body;
}

TEST_F(Admin, ListingRefusesBadQueriesAndMethods) {
  const auto refused = [this](const std::string& target, const std::string& message) {
    const HttpResponse response = client->get(target);
    EXPECT_EQ(response.status, 400U) << target;
    EXPECT_EQ(response.body, "{\"message\":\"" + message + "\"}\n") << target;
  };
  refused("/api/admin/subscriptions?subject=a..b", "invalid subject");
  refused("/api/admin/subscriptions?subject=", "invalid subject");
  refused("/api/admin/subscriptions?subject=%3E.a", "invalid subject");
  refused("/api/admin/subscriptions?subject=" + std::string(300, 'a'), "invalid subject");
  refused("/api/admin/subscriptions?limit=10001", "invalid limit");
  refused("/api/admin/subscriptions?limit=-1", "invalid limit");
  refused("/api/admin/subscriptions?limit=", "invalid limit");
  refused("/api/admin/subscriptions?subject=%zz", "invalid query");
  refused("/api/admin/subscriptions?subject=a&subject=b", "invalid query");
  const HttpResponse post = client->post("/api/admin/subscriptions", "{}");
  EXPECT_EQ(post.status, 405U);
  EXPECT_EQ(post.header("allow"), "GET, HEAD");
  for (const std::string path : {"/api/admin/unsubscribe", "/api/admin/purge"}) {
    const HttpResponse get = client->get(path);
    EXPECT_EQ(get.status, 405U) << path;
    EXPECT_EQ(get.header("allow"), "POST");
  }
}

TEST_F(Admin, ListingIsBoundedByLimitSortedById) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(subscribe("s" + std::to_string(i)));
  }
  std::ranges::sort(ids);
  const HttpResponse two = client->get("/api/admin/subscriptions?limit=2");
  ASSERT_EQ(two.status, 200U);
  const std::size_t first = two.body.find(ids[0]);
  const std::size_t second = two.body.find(ids[1]);
  EXPECT_NE(first, std::string::npos) << two.body;
  EXPECT_LT(first, second);
  EXPECT_EQ(two.body.find(ids[2]), std::string::npos) << two.body;
  EXPECT_TRUE(two.body.ends_with("\"truncated\":true}\n")) << two.body;
  EXPECT_EQ(client->get("/api/admin/subscriptions?limit=0").body,
            "{\"subscriptions\":[],\"truncated\":true}\n");
  const HttpResponse five = client->get("/api/admin/subscriptions?limit=5");
  EXPECT_TRUE(five.body.ends_with("\"truncated\":false}\n")) << five.body;
  EXPECT_EQ(client->get("/api/admin/subscriptions?subject=none&limit=10000").body,
            "{\"subscriptions\":[],\"truncated\":false}\n");
}

// Time passes on the broker's clock while another subscription's long poll runs out: no sleep.
TEST_F(Admin, IdleTimeGrowsUntilTheNextFetch) {
  const std::string idle = subscribe("idle");
  const std::string timer = subscribe("timer");
  const std::uint64_t before = idle_ms(idle);
  ASSERT_EQ(client->post("/api/fetch", fetch_body("timer", timer, R"(,"wait_ms":300)")).status,
            200U);
  const std::uint64_t after = idle_ms(idle);
  EXPECT_GE(after, before + 300);
  ASSERT_EQ(client->post("/api/fetch", fetch_body("idle", idle)).status, 200U);
  EXPECT_LT(idle_ms(idle), after);
}

TEST_F(Admin, UnsubscribeRemovesAnySubscriptionById) {
  const std::string id = subscribe("orders.*");
  publish("orders.eu", "x");
  const HttpResponse removed = client->post("/api/admin/unsubscribe", R"({"id":")" + id + "\"}");
  EXPECT_EQ(removed.status, 200U);
  EXPECT_EQ(removed.body, "{\"status\":\"ok\"}\n");
  EXPECT_EQ(client->post("/api/fetch", fetch_body("orders.*", id)).status, 404U);
  const auto bad_id = [this](std::string_view body) {
    const HttpResponse response = client->post("/api/admin/unsubscribe", body);
    EXPECT_EQ(response.status, 404U) << body;
    EXPECT_EQ(response.body, "{\"message\":\"bad id\"}\n");
  };
  bad_id(R"({"id":")" + id + "\"}");
  bad_id("{}");
  bad_id(R"({"id":"00000000-0000-4000-8000-000000000000"})");
  for (const std::string_view body : {"", "null", "[]", R"({"id":1})"}) {
    const HttpResponse response = client->post("/api/admin/unsubscribe", body);
    EXPECT_EQ(response.status, 400U) << body;
    EXPECT_EQ(response.body, "{\"message\":\"request's body is invalid\"}\n");
  }
  const HttpResponse metrics = HttpClient(broker->metrics_port()).get("/metrics");
  EXPECT_NE(metrics.body.find(dropped("unsubscribe", 1)), std::string::npos);
}

TEST_F(Admin, PurgeDropsPendingMessagesOfMatchingSubjects) {
  const std::string all = subscribe("orders.>");
  const std::string eu = subscribe("orders.eu");
  const std::string us = subscribe("orders.us");
  publish("orders.eu", "e1");
  publish("orders.us", "u1");
  publish("orders.eu.north", "n1");

  const HttpResponse purge = client->post("/api/admin/purge", R"({"subject":"orders.eu.>"})");
  EXPECT_EQ(purge.status, 200U);
  EXPECT_EQ(purge.header("content-type"), kJson);
  EXPECT_EQ(purge.body, "{\"purged\":1}\n");
  EXPECT_EQ(client->post("/api/admin/purge", R"({"subject":"orders.eu"})").body,
            "{\"purged\":2}\n");
  EXPECT_EQ(client->post("/api/fetch", fetch_body("orders.eu", eu)).body,
            fetched("orders.eu", eu, ""));
  EXPECT_EQ(client->post("/api/fetch", fetch_body("orders.>", all)).body,
            fetched(R"(orders.\u003e)", all, R"("u1")"));
  EXPECT_EQ(client->post("/api/admin/purge", R"({"id":")" + us + "\"}").body, "{\"purged\":1}\n");
  EXPECT_EQ(client->post("/api/fetch", fetch_body("orders.us", us)).body,
            fetched("orders.us", us, ""));

  const HttpResponse metrics = HttpClient(broker->metrics_port()).get("/metrics");
  EXPECT_NE(metrics.body.find(dropped("purged", 4)), std::string::npos) << metrics.body;
  EXPECT_NE(client->get("/api/stats").body.find("\"purged\":4"), std::string::npos);
}

// In ack mode a purge takes what waits to be delivered; what is in flight stays, and its receipt
// still acks it.
TEST_F(Admin, PurgeLeavesInFlightMessagesToTheirReceipts) {
  const std::string id = subscribe("jobs", R"(,"ack":true)");
  publish("jobs", "first");
  publish("jobs", "second");
  const HttpResponse fetched_one =
      client->post("/api/fetch", fetch_body("jobs", id, R"(,"max":1)"));
  const std::regex receipt_field(R"re("receipt":"([^"]+)")re");
  std::smatch receipt;
  ASSERT_TRUE(std::regex_search(fetched_one.body, receipt, receipt_field)) << fetched_one.body;
  EXPECT_EQ(client->post("/api/admin/purge", R"({"id":")" + id + "\"}").body, "{\"purged\":1}\n");
  EXPECT_NE(client->get("/api/admin/subscriptions").body.find("\"in_flight\":1,\"pending\":0"),
            std::string::npos);
  const HttpResponse acked =
      client->post("/api/ack", R"({"subject":"jobs","id":")" + id + R"(","receipts":[")" +
                                   receipt.str(1) + "\"]}");
  EXPECT_EQ(acked.body, "{\"acked\":1,\"stale\":[],\"status\":\"ok\"}\n");
  EXPECT_EQ(client->post("/api/fetch", fetch_body("jobs", id)).body,
            "{\"id\":\"" + id + "\",\"messages\":[],\"subject\":\"jobs\"}\n");
}

TEST_F(Admin, PurgeRefusesWhatNamesNoTarget) {
  const auto refused = [this](std::string_view body, unsigned status, std::string_view message) {
    const HttpResponse response = client->post("/api/admin/purge", body);
    EXPECT_EQ(response.status, status) << body;
    EXPECT_EQ(response.body, "{\"message\":\"" + std::string(message) + "\"}\n") << body;
  };
  refused("{}", 400, "invalid subject");
  refused(R"({"subject":""})", 400, "invalid subject");
  refused(R"({"subject":"a.>.b"})", 400, "invalid subject");
  refused(R"({"subject":"a b"})", 400, "invalid subject");
  refused(R"({"id":"nope"})", 404, "bad id");
  refused(R"({"subject":"a","id":"nope"})", 400, "request's body is invalid");
  refused(R"({"subject":1})", 400, "request's body is invalid");
  refused("null", 400, "request's body is invalid");
  refused("", 400, "request's body is invalid");
  EXPECT_EQ(client->post("/api/admin/purge", R"({"subject":">"})").body, "{\"purged\":0}\n");
}

TEST_F(Admin, PurgeSurvivesARestartWithStorage) {
  TempDir dir;
  const std::vector<std::string> storage{"--storage.dir=" + dir.string()};
  start(storage);
  const std::string id = subscribe("jobs.*");
  publish("jobs.a", "a1");
  publish("jobs.b", "b1");
  publish("jobs.a", "a2");
  ASSERT_EQ(client->post("/api/admin/purge", R"({"subject":"jobs.a"})").body, "{\"purged\":2}\n");
  for (const int signal : {SIGKILL, SIGTERM}) {
    client.reset();
    broker->send_signal(signal);
    broker->wait_for_exit();
    start(storage);
    const HttpResponse listed = client->get("/api/admin/subscriptions");
    EXPECT_NE(listed.body.find("\"pending\":1"), std::string::npos) << listed.body;
  }
  EXPECT_EQ(client->post("/api/fetch", fetch_body("jobs.*", id)).body,
            fetched("jobs.*", id, R"("b1")"));
}

}  // namespace
}  // namespace gophermq::test
