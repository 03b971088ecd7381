// Request smuggling (RFC 9112 §6.1-6.3, §3.2): every head whose body length a proxy could read
// differently is refused and its connection closed, so the bytes after it, here a publish, are
// never executed. Heads the RFC tells a server to accept are served.
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "support/api_texts.hpp"
#include "support/broker_process.hpp"
#include "support/http_client.hpp"

namespace gophermq::test {
namespace {

const std::string kSmuggled = post_request("/api/publish", R"({"subject":"s","data":"smuggled"})");

struct Attack {
  std::string name;
  std::string head;  // sent right before kSmuggled, on one connection
  unsigned status;
  std::string message;
};

void PrintTo(const Attack& attack, std::ostream* out) {
  *out << attack.name;
}

std::string message_body(std::string_view message) {
  return "{\"message\":\"" + std::string(message) + "\"}\n";
}

const std::vector<Attack>& attacks() {
  static const std::vector<Attack> list{
      // A coding other than chunked has no framing this server reads: Beast took such a request
      // as bodiless and executed its body as the next request.
      {"TeGzip", "POST /api/subscribe HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 400,
       "invalid Transfer-Encoding"},
      {"TeIdentity",
       "POST /api/subscribe HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: identity\r\n\r\n", 400,
       "invalid Transfer-Encoding"},
      {"TeChunkedThenGzip",
       "POST /api/subscribe HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400,
       "invalid Transfer-Encoding"},
      {"TeChunkedLineThenGzipLine",
       "POST /api/subscribe HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
       "Transfer-Encoding: gzip\r\n\r\n",
       400, "invalid Transfer-Encoding"},
      {"TeChunkedTwice",
       "POST /api/subscribe HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"
       "0\r\n\r\n",
       400, "invalid Transfer-Encoding"},
      {"TeWithParameter",
       "POST /api/subscribe HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked;x=1\r\n\r\n0\r\n\r\n",
       400, "invalid Transfer-Encoding"},
      {"TeGzipThenChunked",
       "POST /api/subscribe HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
       "0\r\n\r\n",
       501, "unsupported transfer coding"},
      {"TeGzipLineThenChunkedLine",
       "POST /api/subscribe HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n"
       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       501, "unsupported transfer coding"},
      {"TeInHttp10",
       "POST /api/subscribe HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n"
       "\r\n0\r\n\r\n",
       400, "Transfer-Encoding in an HTTP/1.0 request"},
      {"ContentLengthThenTeChunked",
       "POST /api/subscribe HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       400, "Content-Length with Transfer-Encoding"},
      {"TeChunkedThenContentLength",
       "POST /api/subscribe HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
       "Content-Length: 5\r\n\r\n0\r\n\r\n",
       400, "Content-Length with Transfer-Encoding"},
      {"TeGzipThenContentLength",
       "POST /api/subscribe HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\nContent-Length: 0\r\n"
       "\r\n",
       400, "Content-Length with Transfer-Encoding"},
      {"DifferingContentLengths",
       "POST /api/subscribe HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n",
       400, "invalid Content-Length"},
      {"DifferingContentLengthList",
       "POST /api/subscribe HTTP/1.1\r\nHost: t\r\nContent-Length: 0, 5\r\n\r\n", 400,
       "invalid Content-Length"},
      {"SignedContentLength",
       "POST /api/subscribe HTTP/1.1\r\nHost: t\r\nContent-Length: +0\r\n\r\n", 400,
       "invalid Content-Length"},
      {"ObsFoldedTransferEncoding",
       "POST /api/subscribe HTTP/1.1\r\nHost: t\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
       400, "obsolete line folding in a header"},
      {"ObsFoldedOtherField",
       "GET /ready HTTP/1.1\r\nHost: t\r\nX-Long: a\r\n\tb\r\nContent-Length: 0\r\n\r\n", 400,
       "obsolete line folding in a header"},
      {"ObsFoldedHost", "GET /ready HTTP/1.1\r\nHost: t\r\n  u\r\n\r\n", 400,
       "obsolete line folding in a header"},
      {"TwoHosts", "GET /ready HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n", 400,
       "more than one Host header"},
      {"TwoHostsInHttp10",
       "GET /ready HTTP/1.0\r\nConnection: keep-alive\r\nHost: t\r\nHost: t\r\n\r\n", 400,
       "more than one Host header"},
      {"NoHost", "GET /ready HTTP/1.1\r\n\r\n", 400, "missing Host header"},
  };
  return list;
}

class Connection : public testing::Test {
 protected:
  BrokerProcess broker{isolated_arguments()};
  HttpClient client{broker.api_port()};
  std::string id = id_of(client.post("/api/subscribe", R"({"subject":"s"})"));

  std::string fetch() { return client.post("/api/fetch", fetch_body("s", id)).body; }
  std::string fetched(std::string_view data) { return test::fetched("s", id, data); }
};

class Framing : public Connection, public testing::WithParamInterface<Attack> {};

TEST_P(Framing, IsRefusedAndClosedAndWhatFollowsIsNeverExecuted) {
  const Attack& attack = GetParam();
  HttpClient attacker(broker.api_port());
  attacker.send_raw(attack.head + kSmuggled);
  const auto response = attacker.read_response();
  EXPECT_EQ(response.status, attack.status);
  EXPECT_EQ(response.body, message_body(attack.message));
  EXPECT_EQ(response.header("connection"), "close");
  EXPECT_TRUE(attacker.closed_cleanly());  // no second answer, then EOF
  EXPECT_EQ(fetch(), fetched(""));
  // The same publish on its own connection is executed: the test would see a smuggled one.
  EXPECT_EQ(post_once(broker.api_port(), "/api/publish", R"({"subject":"s","data":"own"})").status,
            200U);
  EXPECT_EQ(fetch(), fetched("\"own\""));
}

std::string attack_name(const testing::TestParamInfo<Attack>& attack) {
  return attack.param.name;
}

INSTANTIATE_TEST_SUITE_P(Attacks, Framing, testing::ValuesIn(attacks()), attack_name);

class Accepted : public Connection {};

TEST_F(Accepted, AbsoluteFormTargetIsRoutedByItsPath) {
  client.send_raw(
      post_request("http://broker.example:8082/api/publish", R"({"subject":"s","data":"abs"})"));
  EXPECT_EQ(client.read_response().status, 200U);
  EXPECT_EQ(fetch(), fetched("\"abs\""));
  const auto stats = client.get("HTTPS://broker.example/api/stats?limit=0");
  EXPECT_EQ(stats.status, 200U);
  EXPECT_EQ(stats.body.find("{\"subjects\":[],"), 0U);
  // The path `/`: the web console's page.
  const auto page = client.get("http://broker.example");
  EXPECT_EQ(page.status, 200U);
  EXPECT_EQ(page.header("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(client.get("http://broker.example/nothing").status, 404U);
}

TEST_F(Accepted, EmptyLinesBeforeTheRequestLineAreIgnored) {
  client.send_raw("\r\n\r\n" + post_request("/api/publish", R"({"subject":"s","data":"a"})") +
                  "\r\n" + post_request("/api/publish", R"({"subject":"s","data":"b"})"));
  EXPECT_EQ(client.read_response().status, 200U);
  EXPECT_EQ(client.read_response().status, 200U);
  EXPECT_EQ(fetch(), fetched(R"("a","b")"));
  // Split from the request line, too.
  client.send_raw("\r\n");
  EXPECT_EQ(client.get("/ready").status, 204U);
}

TEST_F(Accepted, SingleChunkedAndEqualContentLengthsAndHttp10WithoutHost) {
  client.send_raw(
      "POST /api/publish HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: ChunKed\r\n\r\n"
      "1e\r\n{\"subject\":\"s\",\"data\":\"chunk\"}\r\n0\r\n\r\n");
  EXPECT_EQ(client.read_response().status, 200U);
  const std::string body = R"({"subject":"s","data":"cl"})";
  const std::string length = std::to_string(body.size());
  client.send_raw("POST /api/publish HTTP/1.1\r\nHost: t\r\nContent-Length: " + length +
                  "\r\nContent-Length: " + length + "\r\n\r\n" + body);
  EXPECT_EQ(client.read_response().status, 200U);
  EXPECT_EQ(fetch(), fetched(R"("chunk","cl")"));
  HttpClient old(broker.api_port());
  old.send_raw("GET /ready HTTP/1.0\r\n\r\n");
  EXPECT_EQ(old.read_response().status, 204U);
}

}  // namespace
}  // namespace gophermq::test
