#include <gtest/gtest.h>

#include <regex>

#include "support/api_texts.hpp"
#include "support/broker_process.hpp"
#include "support/http_client.hpp"

namespace gophermq::test {
namespace {

constexpr std::string_view kJson = "application/json; charset=UTF-8";

class Api : public testing::Test {
 protected:
  BrokerProcess broker{isolated_arguments()};
  HttpClient client{broker.api_port()};

  std::string subscribe(std::string_view subject) {
    const auto response = client.post("/api/subscribe", subscribe_body(subject));
    EXPECT_EQ(response.status, 200U);
    return id_of(response);
  }

  HttpResponse fetch(std::string_view subject, std::string_view id) {
    return client.post("/api/fetch", fetch_body(subject, id));
  }

  void expect_error(const HttpResponse& response, unsigned status, std::string_view message) {
    EXPECT_EQ(response.status, status);
    EXPECT_EQ(response.body, "{\"message\":\"" + std::string(message) + "\"}\n");
    EXPECT_EQ(response.header("content-type"), kJson);
  }
};

TEST_F(Api, SubscribeReturnsARandomUuidV4AndTheSubject) {
  const auto first = client.post("/api/subscribe", R"({"subject":"orders.created"})");
  const auto second = client.post("/api/subscribe", R"({"subject":"orders.created"})");
  EXPECT_EQ(first.status, 200U);
  EXPECT_EQ(first.header("content-type"), kJson);
  const std::regex shape(
      R"(\{"id":"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}","subject":"orders\.created"\}\n)");
  EXPECT_TRUE(std::regex_match(first.body, shape)) << first.body;
  EXPECT_NE(id_of(first), id_of(second));
}

TEST_F(Api, SubscribeWithGroupEchoesIt) {
  const auto response = client.post("/api/subscribe", R"({"subject":"jobs","group":"workers"})");
  EXPECT_EQ(response.status, 200U);
  EXPECT_EQ(response.body,
            R"({"group":"workers","id":")" + id_of(response) + R"(","subject":"jobs"})" + "\n");
}

TEST_F(Api, PublishThenFetchIsByteExact) {
  const std::string id = subscribe("a.b");
  const auto published =
      client.post("/api/publish", R"({"subject":"a.b","data":"hello <b> & \"q\""})");
  EXPECT_EQ(published.status, 200U);
  EXPECT_EQ(published.body, "{\"status\":\"ok\"}\n");
  EXPECT_EQ(published.header("content-type"), kJson);
  client.post("/api/publish", R"({"subject":"a.b"})");
  const auto fetched = fetch("a.b", id);
  EXPECT_EQ(fetched.status, 200U);
  EXPECT_EQ(fetched.body, R"({"data":["hello \u003cb\u003e \u0026 \"q\"",""],"id":")" + id +
                              R"(","subject":"a.b"})" + "\n");
  EXPECT_EQ(fetch("a.b", id).body, R"({"data":[],"id":")" + id + R"(","subject":"a.b"})" + "\n");
}

TEST_F(Api, KeysInAnyCaseAreReadAsTheOriginalReadsThem) {
  const auto subscribed = client.post("/api/subscribe", R"({"Subject":"a.b","GROUP":"g"})");
  EXPECT_EQ(subscribed.status, 200U);
  EXPECT_EQ(subscribed.body,
            R"({"group":"g","id":")" + id_of(subscribed) + R"(","subject":"a.b"})" + "\n");
  EXPECT_EQ(client.post("/api/publish", R"({"SUBJECT":"a.b","Data":"x"})").status, 200U);
  const auto fetched =
      client.post("/api/fetch", R"({"Subject":"a.b","ID":")" + id_of(subscribed) + R"(","MAX":1})");
  EXPECT_EQ(fetched.body,
            R"({"data":["x"],"id":")" + id_of(subscribed) + R"(","subject":"a.b"})" + "\n");
}

TEST_F(Api, EverySubscriberGetsEveryMessageInOrder) {
  const std::string first = subscribe("s");
  const std::string second = subscribe("s");
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(client.post("/api/publish", R"({"subject":"s","data":")" + std::to_string(i) + "\"}")
                  .status,
              200U);
  }
  std::string expected = R"({"data":[)";
  for (int i = 0; i < 50; ++i) {
    expected += (i > 0 ? ",\"" : "\"") + std::to_string(i) + "\"";
  }
  for (const auto& id : {first, second}) {
    EXPECT_EQ(fetch("s", id).body, expected + R"(],"id":")" + id + R"(","subject":"s"})" + "\n");
  }
}

TEST_F(Api, FetchMaxLimitsTheBatch) {
  const std::string id = subscribe("s");
  client.post("/api/publish/batch", R"({"subject":"s","data":["1","2","3"]})");
  const auto first = client.post("/api/fetch", fetch_body("s", id, R"(,"max":2)"));
  EXPECT_EQ(first.body, fetched("s", id, R"("1","2")"));
}

TEST_F(Api, BadBodiesAre400) {
  for (const std::string_view target : {"/api/subscribe", "/api/publish", "/api/publish/async",
                                        "/api/fetch", "/api/unsubscribe", "/api/publish/batch"}) {
    for (const char* body : {"", "null", "[]", "42", "{\"subject\":", "{\"subject\":7}"}) {
      expect_error(client.post(target, body), 400, "request's body is invalid");
    }
  }
  expect_error(client.post("/api/publish", R"({"subject":"a","data":1})"), 400,
               "request's body is invalid");
  expect_error(client.post("/api/fetch", R"({"subject":"a","id":"x","max":0})"), 400,
               "request's body is invalid");
  expect_error(client.post("/api/publish/batch", R"({"subject":"a","data":[]})"), 400,
               "request's body is invalid");
}

TEST_F(Api, InvalidSubjectsAre400) {
  for (const char* subject : {"", "a..b", "a b", "a.", "a.>.b"}) {
    const std::string field = std::string(R"("subject":")") + subject + "\"";
    expect_error(client.post("/api/subscribe", "{" + field + "}"), 400, "invalid subject");
    expect_error(client.post("/api/publish", "{" + field + "}"), 400, "invalid subject");
    expect_error(client.post("/api/publish/async", "{" + field + "}"), 400, "invalid subject");
    expect_error(client.post("/api/fetch", "{" + field + R"(,"id":"x"})"), 400, "invalid subject");
  }
  expect_error(client.post("/api/subscribe", "{}"), 400, "invalid subject");
  expect_error(client.post("/api/publish", R"({"subject":"a.*"})"), 400, "invalid subject");
  expect_error(client.post("/api/publish/async", R"({"subject":"a.>"})"), 400, "invalid subject");
  expect_error(client.post("/api/subscribe", R"({"subject":")" + std::string(257, 'x') + "\"}"),
               400, "invalid subject");
  expect_error(client.post("/api/subscribe", R"({"subject":"a","group":""})"), 400,
               "invalid group");
}

TEST_F(Api, PublishWithoutSubscriberIs404) {
  expect_error(client.post("/api/publish", R"({"subject":"nobody.home","data":"x"})"), 404,
               "subscriber not found");
}

TEST_F(Api, FetchWithWrongIdOrSubjectIs404) {
  const std::string id = subscribe("s");
  expect_error(fetch("s", "not-an-id"), 404, "bad id");
  expect_error(fetch("other", id), 404, "bad id");
  expect_error(client.post("/api/unsubscribe", R"({"subject":"s","id":"nope"})"), 404, "bad id");
}

TEST_F(Api, UnsubscribeEndsTheSubscription) {
  const std::string id = subscribe("s");
  client.post("/api/publish", R"({"subject":"s","data":"x"})");
  const auto response = client.post("/api/unsubscribe", R"({"subject":"s","id":")" + id + "\"}");
  EXPECT_EQ(response.status, 200U);
  EXPECT_EQ(response.body, "{\"status\":\"ok\"}\n");
  expect_error(fetch("s", id), 404, "bad id");
}

TEST_F(Api, QueueGroupMembersShareOneQueue) {
  const auto a = id_of(client.post("/api/subscribe", R"({"subject":"jobs","group":"w"})"));
  const auto b = id_of(client.post("/api/subscribe", R"({"subject":"jobs","group":"w"})"));
  client.post("/api/publish/batch", R"({"subject":"jobs","data":["1","2"]})");
  EXPECT_EQ(client.post("/api/fetch", R"({"subject":"jobs","id":")" + a + R"(","max":1})").body,
            R"({"data":["1"],"id":")" + a + R"(","subject":"jobs"})" + "\n");
  EXPECT_EQ(fetch("jobs", b).body, R"({"data":["2"],"id":")" + b + R"(","subject":"jobs"})" + "\n");
}

TEST_F(Api, WildcardSubscriptionIsFetchedByItsPattern) {
  const std::string id = subscribe("orders.>");
  client.post("/api/publish", R"({"subject":"orders.eu.created","data":"x"})");
  EXPECT_EQ(fetch("orders.>", id).body,
            R"({"data":["x"],"id":")" + id + R"(","subject":"orders.\u003e"})" + "\n");
}

TEST_F(Api, BatchPublishReportsTheCount) {
  subscribe("s");
  const auto response =
      client.post("/api/publish/batch", R"({"subject":"s","data":["a","b","c"]})");
  EXPECT_EQ(response.status, 200U);
  EXPECT_EQ(response.body, "{\"count\":3,\"status\":\"ok\"}\n");
}

TEST_F(Api, AsyncPublishesFromOneConnectionArriveInOrder) {
  const std::string id = subscribe("s");
  constexpr int kCount = 300;
  std::string pipelined;
  for (int i = 0; i < kCount; ++i) {
    pipelined += post_request("/api/publish/async",
                              R"({"subject":"s","data":")" + std::to_string(i) + "\"}");
  }
  client.send_raw(pipelined);
  for (int i = 0; i < kCount; ++i) {
    const auto response = client.read_response();
    ASSERT_EQ(response.status, 200U);
    ASSERT_EQ(response.body, "{\"status\":\"ok\"}\n");
  }
  // The worker applies them shortly after the 200s; fetch until all have arrived.
  std::vector<std::string> received;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  const std::regex item(R"x("(\d+)")x");
  while (received.size() < kCount && std::chrono::steady_clock::now() < deadline) {
    const std::string body = fetch("s", id).body;
    const std::string data = body.substr(0, body.find(']'));
    for (std::sregex_iterator match(data.begin(), data.end(), item), end; match != end; ++match) {
      received.push_back((*match)[1]);
    }
  }
  ASSERT_EQ(received.size(), static_cast<std::size_t>(kCount));
  for (int i = 0; i < kCount; ++i) {
    ASSERT_EQ(received[static_cast<std::size_t>(i)], std::to_string(i));
  }
}

TEST_F(Api, AsyncPublishToNobodyIsAcceptedAndCountedAsFailed) {
  EXPECT_EQ(client.post("/api/publish/async", R"({"subject":"nobody","data":"x"})").body,
            "{\"status\":\"ok\"}\n");
  HttpClient metrics(broker.metrics_port());
  const std::string line =
      metric_line("gophermq_async_publish_failed_total{reason=\"no_subscribers\"} 1");
  expect_eventually(metrics, "/metrics", line);
}

TEST_F(Api, UnknownPathIs404AndWrongMethodIs405WithAllow) {
  expect_error(client.post("/api/nope", "{}"), 404, "Not Found");
  expect_error(client.post("/api/publish/", "{}"), 404, "Not Found");
  const auto wrong = client.get("/api/publish");
  expect_error(wrong, 405, "Method Not Allowed");
  EXPECT_EQ(wrong.header("allow"), "POST");
  const auto ready = client.post("/ready", "{}");
  expect_error(ready, 405, "Method Not Allowed");
  EXPECT_EQ(ready.header("allow"), "GET, HEAD");
}

TEST_F(Api, ReadyIs204WithoutBody) {
  const auto response = client.get("/ready");
  EXPECT_EQ(response.status, 204U);
  EXPECT_EQ(response.body, "");
  EXPECT_FALSE(response.has_header("content-length"));
}

TEST_F(Api, HeadAnswersLikeGetWithoutTheBody) {
  const auto got = client.get("/api/stats?limit=0");
  ASSERT_EQ(got.status, 200U);
  client.send_raw("HEAD /api/stats?limit=0 HTTP/1.1\r\nHost: t\r\n\r\n");
  const auto head = client.read_response(true);
  EXPECT_EQ(head.status, 200U);
  EXPECT_EQ(head.body, "");
  EXPECT_GT(std::stoul(head.header("content-length")), 0U);
  // No body bytes were sent after the head: the next answer on the connection parses cleanly.
  EXPECT_EQ(client.get("/ready").status, 204U);
}

TEST_F(Api, MetricsCountRequestsByRouteAndCode) {
  subscribe("s");
  client.post("/api/publish", R"({"subject":"s","data":"x"})");
  client.post("/api/publish", R"({"subject":"nobody","data":"x"})");
  HttpClient metrics(broker.metrics_port());
  const auto response = metrics.get("/metrics");
  EXPECT_EQ(response.status, 200U);
  const std::string& text = response.body;
  for (const char* line :
       {"gophermq_client_request_rate{code=\"200\",method=\"/api/publish\"} 1",
        "gophermq_client_request_rate{code=\"404\",method=\"/api/publish\"} 1",
        "gophermq_request_duration_seconds_count{code=\"200\",method=\"/api/subscribe\"} 1",
        "gophermq_request_duration_seconds_bucket{code=\"200\",method=\"/api/"
        "publish\",le=\"+Inf\"} 1",
        "gophermq_pending_messages 1", "gophermq_pending_bytes 1", "gophermq_subscriptions 1",
        "gophermq_subjects 1", "gophermq_published_messages_total 1",
        "# TYPE gophermq_request_duration_seconds histogram"}) {
    EXPECT_NE(text.find(metric_line(line)), std::string::npos) << line;
  }
  // Series whose values the test cannot know: present, with the bucket bounds of the docs.
  for (const char* series : {"gophermq_request_duration_seconds_bucket{code=\"200\",method=\"/api/"
                             "publish\",le=\"0.0001\"} ",
                             "process_resident_memory_bytes ", "process_open_fds ",
                             "process_cpu_seconds_total ", "process_start_time_seconds "}) {
    EXPECT_NE(text.find("\n" + std::string(series)), std::string::npos) << series;
  }
}

TEST(ApiLimits, OverflowIs429AndStoresNothing) {
  BrokerProcess broker(isolated_arguments({"--broker.max-pending=3"}));
  HttpClient client(broker.api_port());
  const auto a = id_of(client.post("/api/subscribe", R"({"subject":"s"})"));
  const auto b = id_of(client.post("/api/subscribe", R"({"subject":"s"})"));
  EXPECT_EQ(client.post("/api/publish", R"({"subject":"s","data":"1"})").status, 200U);
  const auto overflow = client.post("/api/publish", R"({"subject":"s","data":"2"})");
  EXPECT_EQ(overflow.status, 429U);
  EXPECT_EQ(overflow.body, "{\"message\":\"broker overflow\"}\n");
  const auto batch = client.post("/api/publish/batch", R"({"subject":"s","data":["x","y"]})");
  EXPECT_EQ(batch.body, "{\"message\":\"broker overflow\"}\n");
  EXPECT_EQ(client.post("/api/fetch", fetch_body("s", a)).body, fetched("s", a, R"("1")"));
  EXPECT_EQ(client.post("/api/fetch", fetch_body("s", b)).body, fetched("s", b, R"("1")"));
}

TEST(ApiLimits, PendingBytesLimitIs429) {
  BrokerProcess broker(isolated_arguments({"--broker.max-pending-bytes=4"}));
  HttpClient client(broker.api_port());
  client.post("/api/subscribe", R"({"subject":"s"})");
  EXPECT_EQ(client.post("/api/publish", R"({"subject":"s","data":"1234"})").status, 200U);
  EXPECT_EQ(client.post("/api/publish", R"({"subject":"s","data":"5"})").body,
            "{\"message\":\"broker overflow\"}\n");
}

TEST(ApiLimits, FullAsyncQueueIs429) {
  BrokerProcess broker(isolated_arguments({"--broker.async-queue-size=1"}));
  HttpClient client(broker.api_port());
  client.post("/api/subscribe", R"({"subject":"s"})");
  constexpr int kCount = 3000;
  std::string pipelined;
  for (int i = 0; i < kCount; ++i) {
    pipelined += post_request("/api/publish/async", R"({"subject":"s","data":"x"})");
  }
  client.send_raw(pipelined);
  int refused = 0;
  for (int i = 0; i < kCount; ++i) {
    const auto response = client.read_response();
    if (response.status == 429) {
      EXPECT_EQ(response.body, "{\"message\":\"async queue full\"}\n");
      ++refused;
    } else {
      ASSERT_EQ(response.status, 200U);
    }
  }
  // With one slot and 3000 back-to-back requests the worker cannot keep up with all of them.
  EXPECT_GT(refused, 0);
}

// Clients of the original may send text that is not UTF-8; Go's encoding/json reads each byte that
// does not start well-formed UTF-8, and each unpaired surrogate escape, as U+FFFD. The expected
// answers are the bytes the original sends for these requests.
TEST(ApiText, InvalidUtf8AndUnpairedSurrogatesAreReadAsReplacementCharactersLikeGo) {
  BrokerProcess broker(isolated_arguments());
  HttpClient client(broker.api_port());
  const std::string r = "\xEF\xBF\xBD";
  const auto subscribed =
      client.post("/api/subscribe", "{\"subject\":\"u\xff.\\udfff\",\"group\":\"g\xc3\"}");
  ASSERT_EQ(subscribed.status, 200U) << subscribed.body;
  const std::string id = id_of(subscribed);
  const std::string subject = "u" + r + "." + r;
  EXPECT_EQ(subscribed.body,
            "{\"group\":\"g" + r + "\",\"id\":\"" + id + "\",\"subject\":\"" + subject + "\"}\n");

  EXPECT_EQ(client
                .post("/api/publish",
                      "{\"subject\":\"u\xfe.\\ud800\",\"data\":\"a\xff"
                      "b\xe2\x82<\\ud800\\udc00\\ud83d\\udc39\\udc00\xed\xa0\x80\\u2028\"}")
                .body,
            "{\"status\":\"ok\"}\n");
  EXPECT_EQ(
      client
          .post("/api/publish/batch",
                "{\"subject\":\"u\x80.\\uDBFF\",\"data\":[\"\xf4\x90\\ud800\\u0041\",\"ok\"]}")
          .body,
      "{\"count\":2,\"status\":\"ok\"}\n");
  EXPECT_EQ(
      client.post("/api/publish/async", "{\"subject\":\"u\xc0.\\udc00\",\"data\":\"\\udbff\"}")
          .body,
      "{\"status\":\"ok\"}\n");
  const std::string first =
      "a" + r + "b" + r + r + "\\u003c\xF0\x90\x80\x80\xF0\x9F\x90\xB9" + r + r + r + r + "\\u2028";
  const std::string expected = "{\"data\":[\"" + first + "\",\"" + r + r + r + "A\",\"ok\",\"" + r +
                               "\"],\"id\":\"" + id + "\",\"subject\":\"" + subject + "\"}\n";
  // The async publish lands on the broker's own time.
  const std::string all_in = "\"pending_messages\":4,\"published";
  ASSERT_NE(poll_until_contains(client, "/api/stats", all_in).find(all_in), std::string::npos);
  const std::string fetched =
      client.post("/api/fetch", "{\"subject\":\"" + subject + "\",\"id\":\"" + id + "\"}").body;
  EXPECT_EQ(fetched, expected);
}

TEST(ApiText, TextThatIsInvalidOutsideStringsIsStillRefused) {
  BrokerProcess broker(isolated_arguments());
  HttpClient client(broker.api_port());
  const auto refused = client.post("/api/subscribe", "{\"subject\":\"s\"\xff}");
  EXPECT_EQ(refused.status, 400U);
  EXPECT_EQ(client.post("/api/subscribe", "{\"subject\":\"s\\ud800\\x\"}").status, 400U);
}

}  // namespace
}  // namespace gophermq::test
