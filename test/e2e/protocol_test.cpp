#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "support/api_texts.hpp"
#include "support/broker_process.hpp"
#include "support/http_client.hpp"

namespace gophermq::test {
namespace {

constexpr std::string_view kTooLarge = "{\"message\":\"request body too large\"}\n";

void expect_too_large(const HttpResponse& response) {
  EXPECT_EQ(response.status, 413U);
  EXPECT_EQ(response.body, kTooLarge);
}

class Protocol : public testing::Test {
 protected:
  BrokerProcess broker{isolated_arguments({"--broker.max-body-bytes=1024"})};

  // The status of the answer to `request`, sent as it is on a connection of its own.
  unsigned status_of(std::string_view request) {
    HttpClient client(broker.api_port());
    client.send_raw(request);
    return client.read_response().status;
  }
};

TEST_F(Protocol, KeepAliveServesManyRequestsOnOneConnection) {
  HttpClient client(broker.api_port());
  for (int i = 0; i < 20; ++i) {
    const auto response = client.post("/api/subscribe", R"({"subject":"s"})");
    ASSERT_EQ(response.status, 200U);
    EXPECT_NE(response.header("connection"), "close");
  }
}

TEST_F(Protocol, PipelinedRequestsAreAnsweredInOrder) {
  HttpClient client(broker.api_port());
  client.send_raw(post_request("/api/subscribe", R"({"subject":"p"})") +
                  post_request("/api/publish", R"({"subject":"p","data":"1"})") +
                  post_request("/api/publish", R"({"subject":"nobody","data":"1"})") +
                  "GET /ready HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(client.read_response().status, 200U);
  EXPECT_EQ(client.read_response().body, "{\"status\":\"ok\"}\n");
  EXPECT_EQ(client.read_response().body, "{\"message\":\"subscriber not found\"}\n");
  EXPECT_EQ(client.read_response().status, 204U);
}

TEST_F(Protocol, RequestArrivingInPiecesIsServed) {
  // Whatever part of a request is buffered is parsed at once; the rest is awaited. Each cut here
  // leaves the parser in another state: inside the head, at the end of the head, inside the body.
  const std::string request = post_request("/api/subscribe", R"({"subject":"pieces"})");
  const std::size_t head_end = request.find("\r\n\r\n") + 4;
  for (const std::size_t cut : {std::size_t{10}, head_end, head_end + 5}) {
    HttpClient client(broker.api_port());
    client.send_raw(std::string_view(request).substr(0, cut));
    client.send_raw(std::string_view(request).substr(cut));
    const auto response = client.read_response();
    EXPECT_EQ(response.status, 200U) << "cut at " << cut;
    EXPECT_NE(response.body.find(R"("subject":"pieces")"), std::string::npos);
  }
}

TEST_F(Protocol, Http10ClosesUnlessKeepAliveIsAsked) {
  HttpClient plain(broker.api_port());
  plain.send_raw("GET /ready HTTP/1.0\r\n\r\n");
  const auto response = plain.read_response();
  EXPECT_EQ(response.status, 204U);
  EXPECT_EQ(response.version, 10U);
  EXPECT_TRUE(plain.closed_cleanly());

  HttpClient kept(broker.api_port());
  const std::string body = R"({"subject":"s"})";
  const std::string request =
      "POST /api/subscribe HTTP/1.0\r\nConnection: keep-alive\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  kept.send_raw(request);
  const auto first = kept.read_response();
  EXPECT_EQ(first.status, 200U);
  EXPECT_EQ(first.header("connection"), "keep-alive");
  kept.send_raw(request);
  EXPECT_EQ(kept.read_response().status, 200U);
}

TEST_F(Protocol, BodyIsJsonWhateverTheContentType) {
  EXPECT_EQ(status_of(post_request("/api/subscribe", R"({"subject":"form"})",
                                   "Content-Type: application/x-www-form-urlencoded\r\n")),
            200U);
}

TEST_F(Protocol, ChunkedBodiesAreRead) {
  EXPECT_EQ(
      status_of("POST /api/subscribe HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                "5\r\n{\"sub\r\na\r\nject\":\"c\"}\r\n0\r\n\r\n"),
      200U);
}

TEST_F(Protocol, OversizedBodyIs413ThenCleanCloseAndTheServerStaysHealthy) {
  HttpClient client(broker.api_port());
  const std::string big = R"({"subject":"s","data":")" + std::string(4000, 'x') + "\"}";
  client.send_raw(post_request("/api/publish", big));
  const auto response = client.read_response();
  expect_too_large(response);
  EXPECT_EQ(response.header("connection"), "close");
  EXPECT_TRUE(client.closed_cleanly());
  EXPECT_EQ(post_once(broker.api_port(), "/api/subscribe", R"({"subject":"s"})").status, 200U);
}

TEST_F(Protocol, OversizedChunkedBodyIs413) {
  HttpClient client(broker.api_port());
  std::string request =
      "POST /api/publish HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) {
    request += "200\r\n" + std::string(512, 'x') + "\r\n";
  }
  client.send_raw(request);
  expect_too_large(client.read_response());
}

TEST_F(Protocol, ExpectContinueGetsA100OrAnEarly413) {
  HttpClient small(broker.api_port());
  small.send_raw(
      "POST /api/subscribe HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
      "Content-Length: 15\r\n\r\n");
  EXPECT_EQ(small.read_response().status, 100U);
  small.send_raw(R"({"subject":"s"})");
  EXPECT_EQ(small.read_response().status, 200U);

  HttpClient large(broker.api_port());
  large.send_raw(
      "POST /api/publish HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
      "Content-Length: 1000000\r\n\r\n");
  expect_too_large(large.read_response());
}

TEST_F(Protocol, HugeHeaderIs431) {
  HttpClient client(broker.api_port());
  client.send_raw("GET /ready HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(20000, 'h') +
                  "\r\n\r\n");
  const auto response = client.read_response();
  EXPECT_EQ(response.status, 431U);
  EXPECT_EQ(response.body, "{\"message\":\"request header fields too large\"}\n");
}

TEST_F(Protocol, MalformedRequestIs400AndClosed) {
  HttpClient client(broker.api_port());
  client.send_raw("THIS IS NOT HTTP\r\n\r\n");
  const auto response = client.read_response();
  EXPECT_EQ(response.status, 400U);
  EXPECT_EQ(response.body, "{\"message\":\"malformed HTTP request\"}\n");
  EXPECT_TRUE(client.closed_cleanly());
}

TEST_F(Protocol, HeadOnReadyHasNoBody) {
  HttpClient client(broker.api_port());
  client.send_raw("HEAD /ready HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(client.read_response(true).status, 204U);
  EXPECT_EQ(client.get("/ready").status, 204U);
}

std::string fetch_request(std::string_view id, std::string_view fields = "") {
  return post_request("/api/fetch", fetch_body("s", id, fields));
}

TEST_F(Protocol, HalfClosedClientGetsItsLongPollAnswered) {
  HttpClient client(broker.api_port());
  const std::string id = id_of(client.post("/api/subscribe", R"({"subject":"s"})"));
  HttpClient waiting(broker.api_port());
  waiting.send_raw(fetch_request(id, R"(,"wait_ms":20000)"));
  waiting.shutdown_send();  // a FIN: "I send no more", not "I am gone"
  poll_until_contains(client, "/api/stats", waiting_fetches(1));
  EXPECT_EQ(client.post("/api/publish", R"({"subject":"s","data":"late"})").status, 200U);
  const auto response = waiting.read_response();
  EXPECT_EQ(response.status, 200U);
  EXPECT_EQ(response.body, R"({"data":["late"],"id":")" + id + "\",\"subject\":\"s\"}\n");
  EXPECT_TRUE(waiting.closed_cleanly());
}

TEST_F(Protocol, ClientThatHangsUpDuringALongPollIsCountedAndNothingIsLost) {
  HttpClient client(broker.api_port());
  const std::string id = id_of(client.post("/api/subscribe", R"({"subject":"s"})"));
  HttpClient reset(broker.api_port());
  reset.send_raw(fetch_request(id, R"(,"wait_ms":20000)"));
  poll_until_contains(client, "/api/stats", waiting_fetches(1));
  reset.abort();
  HttpClient metrics(broker.metrics_port());
  expect_eventually(metrics, "/metrics", request_rate("/api/fetch", 499, 1));
  EXPECT_EQ(client.post("/api/publish", R"({"subject":"s","data":"kept"})").status, 200U);
  EXPECT_EQ(client.post("/api/fetch", fetch_body("s", id)).body, fetched("s", id, R"("kept")"));

  // A client that closes normally is only seen to have stopped sending: its poll runs to the end
  // and is answered into the void.
  {
    HttpClient closed(broker.api_port());
    closed.send_raw(fetch_request(id, R"(,"wait_ms":100)"));
  }
  expect_eventually(metrics, "/metrics", request_rate("/api/fetch", 200, 2));
  EXPECT_EQ(client.get("/ready").status, 204U);
}

TEST(ProtocolTimeouts, IdleConnectionIsClosedAfterTheIdleTimeout) {
  BrokerProcess broker(isolated_arguments({"--broker.idle-timeout=200ms"}));
  HttpClient client(broker.api_port());
  EXPECT_EQ(client.get("/ready").status, 204U);
  const auto answered = std::chrono::steady_clock::now();
  EXPECT_TRUE(client.closed_cleanly());  // blocks until the server closes it
  const auto idle = std::chrono::steady_clock::now() - answered;
  // The timer starts once the answer is written, a little before the client has read it.
  EXPECT_GE(idle, std::chrono::milliseconds(150));
  EXPECT_LT(idle, std::chrono::milliseconds(200) + std::chrono::seconds(1));
}

TEST(ProtocolTimeouts, ClientThatPipelinesAndNeverReadsIsCutOffAtTheWriteTimeout) {
  BrokerProcess broker(isolated_arguments({"--broker.write-timeout=1s"}));
  HttpClient client(broker.api_port());
  constexpr int kAnswers = 12;  // of ~900 KB each: far more than both sockets' buffers hold
  std::vector<std::string> ids;
  for (int i = 0; i < kAnswers; ++i) {
    ids.push_back(id_of(client.post("/api/subscribe", R"({"subject":"s"})")));
  }
  ASSERT_EQ(
      client.post("/api/publish", R"({"subject":"s","data":")" + std::string(900'000, 'x') + "\"}")
          .status,
      200U);
  HttpClient greedy(broker.api_port());
  greedy.set_receive_buffer(4096);
  std::string pipelined;
  for (const auto& id : ids) {
    pipelined += fetch_request(id);
  }
  const auto sent = std::chrono::steady_clock::now();
  greedy.send_raw(pipelined);
  HttpClient metrics(broker.metrics_port());
  const std::string text = poll_until_contains(metrics, "/metrics", limit_hits("write-timeout", 1),
                                               std::chrono::seconds(30));
  const auto elapsed = std::chrono::steady_clock::now() - sent;
  EXPECT_NE(text.find(limit_hits("write-timeout", 1)), std::string::npos) << text;
  EXPECT_NE(text.find(limit_hits("header-timeout", 0)), std::string::npos) << text;
  EXPECT_GE(elapsed, std::chrono::seconds(1));
  EXPECT_LT(elapsed, std::chrono::seconds(2));
  greedy.abort();  // draining what the server's kernel still holds at 4 KB a round trip is slow
}

TEST(ProtocolLimits, TooManyConnectionsAnswersAreCountedAsRequests) {
  BrokerProcess broker(isolated_arguments({"--broker.max-connections=1"}));
  HttpClient admitted(broker.api_port());
  ASSERT_EQ(admitted.get("/ready").status, 204U);
  for (int i = 0; i < 2; ++i) {
    HttpClient refused(broker.api_port());
    EXPECT_EQ(refused.get("/ready").status, 503U);
  }
  HttpClient metrics(broker.metrics_port());
  expect_eventually(metrics, "/metrics", request_rate("unmatched", 503, 2));
}

}  // namespace
}  // namespace gophermq::test
