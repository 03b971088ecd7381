// API.md §10's WebSocket (GET /api/ws) against the real binary, with Beast's WebSocket client
// (support/ws_client): frames, ack and nack frames, pings, close codes, resume and the limits.
// Every read has a deadline, so a socket that never sends fails a test instead of hanging it.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "support/broker_process.hpp"
#include "support/http_client.hpp"
#include "support/sanitizers.hpp"
#include "support/temp_files.hpp"
#include "support/ws_client.hpp"

namespace gophermq::test {
namespace {

using namespace std::chrono_literals;
namespace websocket = boost::beast::websocket;

HttpResponse publish(std::uint16_t port, const std::string& subject, const std::string& data) {
  return HttpClient(port).post("/api/publish",
                               "{\"subject\":\"" + subject + "\",\"data\":\"" + data + "\"}");
}

bool stats_reach(std::uint16_t port, std::string_view needle) {
  HttpClient client(port);
  return poll_until_contains(client, "/api/stats", needle).find(needle) != std::string::npos;
}

bool metrics_reach(const BrokerProcess& broker, std::string_view line) {
  HttpClient client(broker.metrics_port());
  const std::string wanted = metric_line(line);
  return poll_until_contains(client, "/metrics", wanted).find(wanted) != std::string::npos;
}

std::string receipt_of(const std::string& frame) {
  const boost::json::value entry = boost::json::parse(frame);
  const boost::json::string& receipt = entry.at("receipt").as_string();
  return {receipt.data(), receipt.size()};
}

std::int64_t deliveries_of(const std::string& frame) {
  return boost::json::parse(frame).at("deliveries").as_int64();
}

// The answer to a request to /api/ws that the broker does not upgrade.
HttpResponse refused(std::uint16_t port, std::string_view headers) {
  HttpClient client(port);
  client.send_raw("GET /api/ws?subject=s HTTP/1.1\r\nHost: gophermq\r\n" + std::string(headers) +
                  "\r\n");
  return client.read_response();
}

constexpr std::string_view kUpgrade =
    "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

TEST(WebSocket, OneTextFramePerMessageTheEventStreamsJsonConsumedAsWritten) {
  BrokerProcess broker(isolated_arguments());
  WsClient ws(broker.api_port(), "/api/ws?subject=news.eu");
  // The subscription exists once the upgrade is answered: no frame announces it.
  ASSERT_EQ(publish(broker.api_port(), "news.eu", "a<b & \\\"c\\\"").status, 200U);
  ASSERT_EQ(publish(broker.api_port(), "news.eu", "second").status, 200U);
  EXPECT_EQ(ws.read(),
            "{\"data\":\"a\\u003cb \\u0026 \\\"c\\\"\",\"seq\":1,\"subject\":\"news.eu\"}");
  EXPECT_EQ(ws.read(), "{\"data\":\"second\",\"seq\":2,\"subject\":\"news.eu\"}");
  EXPECT_TRUE(stats_reach(broker.api_port(), "\"pending_messages\":0,\"published_messages\":2"));
  EXPECT_TRUE(metrics_reach(broker, "gophermq_open_streams 1"));
  EXPECT_TRUE(metrics_reach(broker, "gophermq_pushed_messages_total 2"));
}

TEST(WebSocket, AnAckFrameRemovesAMessageAndANackFrameBringsItBackDeliveredAgain) {
  BrokerProcess broker(isolated_arguments());
  HttpClient client(broker.api_port());
  const std::string id =
      id_of(client.post("/api/subscribe", R"({"subject":"jobs","ack":true,"ack_wait_ms":600000})"));
  WsClient ws(broker.api_port(), "/api/ws?subject=jobs&id=" + id);
  ASSERT_EQ(publish(broker.api_port(), "jobs", "one").status, 200U);
  ASSERT_EQ(publish(broker.api_port(), "jobs", "two").status, 200U);
  const std::string one = ws.read();
  const std::string two = ws.read();
  EXPECT_EQ(one, "{\"data\":\"one\",\"deliveries\":1,\"receipt\":\"" + receipt_of(one) +
                     "\",\"seq\":1,\"subject\":\"jobs\"}");
  ws.send_text("{\"ack\":[\"" + receipt_of(one) + "\"]}");
  ws.send_text("{\"nack\":[\"" + receipt_of(two) + "\"]}");
  const std::string again = ws.read();
  EXPECT_NE(again.find("\"data\":\"two\""), std::string::npos) << again;
  EXPECT_EQ(deliveries_of(again), 2);
  EXPECT_NE(receipt_of(again), receipt_of(two));
  EXPECT_TRUE(stats_reach(broker.api_port(), "\"in_flight\":1,\"pending_bytes\":3,"));
  ws.send_text("{\"ack\":[\"" + receipt_of(again) + "\"],\"extra\":1}");
  EXPECT_TRUE(stats_reach(broker.api_port(), "\"in_flight\":0,\"pending_bytes\":0,"));
}

TEST(WebSocket, PingsAreAnswered) {
  BrokerProcess broker(isolated_arguments());
  WsClient ws(broker.api_port(), "/api/ws?subject=s");
  EXPECT_TRUE(ws.ping("are you there"));
  ASSERT_EQ(publish(broker.api_port(), "s", "after").status, 200U);
  EXPECT_NE(ws.read().find("\"after\""), std::string::npos);
}

TEST(WebSocket, TheBrokerPingsSilentClientsAndDropsOnesThatNeverAnswer) {
  BrokerProcess broker(isolated_arguments({"--broker.idle-timeout=1s"}));
  WsClient silent(broker.api_port(), "/api/ws?subject=s");  // never reads, so never pongs
  WsClient answering(broker.api_port(), "/api/ws?subject=s");
  // Nothing comes for well over the idle-timeout; meanwhile the pending read answers pings.
  EXPECT_THROW(answering.read(2500ms), RequestFailed);
  EXPECT_TRUE(stats_reach(broker.api_port(), "\"subscriptions\":1,"));
  ASSERT_EQ(publish(broker.api_port(), "s", "still here").status, 200U);
  EXPECT_NE(answering.read().find("\"still here\""), std::string::npos);
}

TEST(WebSocket, AFrameThatIsNoAckOrNackClosesWith1007AndABinaryOneWith1003) {
  BrokerProcess broker(isolated_arguments({"--broker.max-body-bytes=1024"}));
  for (const std::string_view bad :
       {"not json", "[]", "{\"ack\":\"r\"}", "{\"ack\":[]}", "{\"ack\":[1]}",
        "{\"ack\":[\"r\"],\"nack\":[\"r\"]}", "{\"other\":[\"r\"]}"}) {
    WsClient ws(broker.api_port(), "/api/ws?subject=s");
    ws.send_text(bad);
    const auto reason = ws.read_until_closed();
    ASSERT_TRUE(reason.has_value()) << bad;
    EXPECT_EQ(reason->code, websocket::close_code::bad_payload) << bad;
    EXPECT_NE(std::string(reason->reason.c_str()).find("ack"), std::string::npos);
  }
  {
    WsClient ws(broker.api_port(), "/api/ws?subject=s");
    ws.send_binary("{\"ack\":[\"r\"]}");
    const auto reason = ws.read_until_closed();
    ASSERT_TRUE(reason.has_value());
    EXPECT_EQ(reason->code, websocket::close_code::unknown_data);
  }
  {
    // Larger than max-body-bytes: Beast closes with 1009 before buffering it. The payload it did
    // not read may reset the connection before the client reads the close frame.
    WsClient ws(broker.api_port(), "/api/ws?subject=s");
    ws.send_text(std::string(4096, 'x'));
    const auto reason = ws.read_until_closed();
    if (reason) {
      EXPECT_EQ(reason->code, websocket::close_code::too_big);
    }
  }
  // Every one of them ended its session and its subscription.
  EXPECT_TRUE(stats_reach(broker.api_port(), "\"subscriptions\":0,"));
  EXPECT_TRUE(metrics_reach(broker, "gophermq_open_streams 0"));
}

TEST(WebSocket, AnEphemeralSubscriptionIsRemovedWhenItsClientGoes) {
  BrokerProcess broker(isolated_arguments());
  {
    WsClient ws(broker.api_port(), "/api/ws?subject=gone&group=g");
    ASSERT_TRUE(stats_reach(broker.api_port(), "\"subscriptions\":1,"));
  }
  EXPECT_TRUE(stats_reach(broker.api_port(), "\"subscriptions\":0,"));
  EXPECT_EQ(publish(broker.api_port(), "gone", "x").status, 404U);
}

// A socket's own subscription is journaled as ephemeral: the broker restarted after kill -9 no
// longer has it, so a publish to its subject finds nobody.
TEST(WebSocket, AfterAKillTheRestartedBrokerHasNoEphemeralSubscription) {
  TempDir dir;
  const auto arguments = isolated_arguments({"--storage.dir=" + dir.string()});
  {
    BrokerProcess broker(arguments);
    WsClient ws(broker.api_port(), "/api/ws?subject=w&group=g");
    ASSERT_EQ(publish(broker.api_port(), "w", "pushed").status, 200U);
    EXPECT_NE(ws.read().find("\"pushed\""), std::string::npos);
    broker.send_signal(SIGKILL);
    ASSERT_EQ(broker.wait_for_exit(), 128 + SIGKILL);
  }
  BrokerProcess restarted(arguments);
  EXPECT_NE(HttpClient(restarted.api_port()).get("/api/stats").body.find("\"subscriptions\":0,"),
            std::string::npos);
  EXPECT_EQ(publish(restarted.api_port(), "w", "x").status, 404U);
}

TEST(WebSocket, LastEventIdInTheQueryAcksUpToItAndRedeliversTheRest) {
  BrokerProcess broker(isolated_arguments());
  HttpClient client(broker.api_port());
  const std::string id =
      id_of(client.post("/api/subscribe", R"({"subject":"pay","ack":true,"ack_wait_ms":600000})"));
  for (int i = 1; i <= 4; ++i) {
    ASSERT_EQ(publish(broker.api_port(), "pay", "m" + std::to_string(i)).status, 200U);
  }
  {
    WsClient first(broker.api_port(), "/api/ws?id=" + id);
    for (int i = 1; i <= 4; ++i) {
      EXPECT_NE(first.read().find("\"m" + std::to_string(i) + "\""), std::string::npos);
    }
  }
  ASSERT_TRUE(stats_reach(broker.api_port(), "\"in_flight\":4,"));
  WsClient second(broker.api_port(), "/api/ws?id=" + id + "&last_event_id=2");
  const std::string three = second.read();
  const std::string four = second.read();
  EXPECT_NE(three.find("\"seq\":3"), std::string::npos) << three;
  EXPECT_EQ(deliveries_of(three), 2);
  EXPECT_NE(four.find("\"seq\":4"), std::string::npos) << four;
  EXPECT_TRUE(stats_reach(broker.api_port(), "\"in_flight\":2,\"pending_bytes\":4,"));
}

TEST(WebSocket, SigtermClosesWith1001AndTheBrokerExitsZero) {
  BrokerProcess broker(isolated_arguments({"--broker.shutdown-timeout=20s"}));
  WsClient ws(broker.api_port(), "/api/ws?subject=s");
  ASSERT_TRUE(metrics_reach(broker, "gophermq_open_streams 1"));
  const auto signalled = std::chrono::steady_clock::now();
  broker.send_signal(SIGTERM);
  const auto reason = ws.read_until_closed(5s);
  ASSERT_TRUE(reason.has_value());
  EXPECT_EQ(reason->code, websocket::close_code::going_away);
  EXPECT_EQ(broker.wait_for_exit(10s), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - signalled, 5s);
}

TEST(WebSocket, SocketsCountTowardMaxConnections) {
  BrokerProcess broker(isolated_arguments({"--broker.max-connections=2"}));
  WsClient first(broker.api_port(), "/api/ws?subject=s");
  WsClient second(broker.api_port(), "/api/ws?subject=s");
  HttpClient third(broker.api_port());
  const HttpResponse answer = third.get("/ready");
  EXPECT_EQ(answer.status, 503U);
  EXPECT_EQ(answer.body, "{\"message\":\"too many connections\"}\n");
}

TEST(WebSocket, ASocketThatStopsReadingIsEndedAtTheWriteTimeout) {
  BrokerProcess broker(isolated_arguments({"--broker.write-timeout=500ms"}));
  WsClient stalled(broker.api_port(), "/api/ws?subject=big",
                   {.headers = {}, .receive_buffer = 4096});
  // Far more than the socket buffers on both sides hold: the session's write blocks.
  const std::string data(500'000, 'x');
  HttpClient client(broker.api_port());
  for (int i = 0; i < 40; ++i) {
    const unsigned status =
        client.post("/api/publish", "{\"subject\":\"big\",\"data\":\"" + data + "\"}").status;
    // 404 once the timeout ended the session and its subscription.
    ASSERT_TRUE(status == 200 || (status == 404 && i > 0)) << status;
    if (status == 404) {
      break;
    }
  }
  EXPECT_TRUE(stats_reach(broker.api_port(), "\"subscriptions\":0,"));
  EXPECT_TRUE(metrics_reach(broker, "gophermq_open_streams 0"));
  EXPECT_TRUE(metrics_reach(broker, "gophermq_limit_hits_total{limit=\"write-timeout\"} 1"));
  HttpClient metrics(broker.metrics_port());
  EXPECT_EQ(
      metrics.get("/metrics").body.find(metric_line("gophermq_stream_slow_reader_waits_total 0")),
      std::string::npos);
}

TEST(WebSocket, AStalledReaderHoldsABoundedBatchWhileAnotherSocketKeepsReceiving) {
  constexpr int kRounds = 40;
  constexpr int kBatch = 500;
  BrokerProcess broker(isolated_arguments(
      {"--broker.max-pending-per-queue=1000", "--broker.slow-queue-policy=drop-oldest"}));
  WsClient stalled(broker.api_port(), "/api/ws?subject=firehose",
                   {.headers = {}, .receive_buffer = 4096});
  WsClient reader(broker.api_port(), "/api/ws?subject=firehose");
  const double baseline = metric(broker.metrics_port(), "process_resident_memory_bytes");
  const std::string data(1000, 'x');
  std::string batch = "{\"subject\":\"firehose\",\"data\":[";
  for (int i = 0; i < kBatch; ++i) {
    batch += (i > 0 ? ",\"" : "\"") + data + "\"";
  }
  batch += "]}";
  HttpClient client(broker.api_port());
  double peak = baseline;
  std::int64_t expected_seq = 1;
  for (int round = 1; round <= kRounds; ++round) {
    ASSERT_EQ(client.post("/api/publish/batch", batch).status, 200U);
    // The reader gets every message, in order, while the other socket reads nothing.
    for (int i = 0; i < kBatch; ++i, ++expected_seq) {
      const boost::json::value entry = boost::json::parse(reader.read());
      ASSERT_EQ(entry.at("seq").as_int64(), expected_seq);
    }
    if (round % 10 == 0) {
      peak = std::max(peak, metric(broker.metrics_port(), "process_resident_memory_bytes"));
    }
  }
  // 20 MB went through; the stalled socket's messages stayed in its queue, which dropped its
  // oldest at 1000: had the session taken them, the queue would not have filled.
  const std::string now = HttpClient(broker.api_port()).get("/api/stats").body;
  EXPECT_NE(now.find("\"pending_messages\":1000,"), std::string::npos) << now;
  EXPECT_EQ(now.find("\"queue_full\":0"), std::string::npos) << now;
  // Its queue (1 MB), one batch (64 kB), the socket buffers and a margin for the allocator.
#ifndef GOPHERMQ_TEST_SANITIZED
  EXPECT_LT(peak - baseline, 16.0 * 1024 * 1024) << "baseline " << baseline << " peak " << peak;
#endif
  EXPECT_GE(metric(broker.metrics_port(), "gophermq_stream_slow_reader_waits_total"), 1);
}

TEST(WebSocket, ARequestThatIsNoValidUpgradeGetsAClearError) {
  BrokerProcess broker(isolated_arguments());
  const HttpResponse plain = refused(broker.api_port(), "");
  EXPECT_EQ(plain.status, 426U);
  EXPECT_EQ(plain.body, "{\"message\":\"websocket upgrade required\"}\n");
  EXPECT_EQ(plain.header("upgrade"), "websocket");
  const HttpResponse old_version =
      refused(broker.api_port(),
              "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n");
  EXPECT_EQ(old_version.status, 426U);
  EXPECT_EQ(old_version.header("sec-websocket-version"), "13");
  const HttpResponse no_key =
      refused(broker.api_port(),
              "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
  EXPECT_EQ(no_key.status, 400U);
  EXPECT_EQ(no_key.body, "{\"message\":\"invalid websocket handshake\"}\n");
  HttpClient client(broker.api_port());
  const HttpResponse post = client.post("/api/ws", "{}");
  EXPECT_EQ(post.status, 405U);
  // A valid upgrade with a bad subject is refused before anything is subscribed.
  HttpClient bad(broker.api_port());
  bad.send_raw("GET /api/ws?subject=a..b HTTP/1.1\r\nHost: x\r\n" + std::string(kUpgrade) + "\r\n");
  const HttpResponse invalid = bad.read_response();
  EXPECT_EQ(invalid.status, 400U);
  EXPECT_EQ(invalid.body, "{\"message\":\"invalid subject\"}\n");
  EXPECT_TRUE(stats_reach(broker.api_port(), "\"subscriptions\":0,"));
}

TEST(WebSocket, OriginsAreCheckedAgainstCorsOriginsAndTheBrokersOwn) {
  BrokerProcess broker(isolated_arguments({"--http.cors-origins=http://app.example"}));
  const auto port = broker.api_port();
  const auto with_origin = [](std::string origin) {
    return WsClient::Options{.headers = {{"Origin", std::move(origin)}}, .receive_buffer = 0};
  };
  EXPECT_NO_THROW(WsClient(port, "/api/ws?subject=s", with_origin("http://app.example")));
  EXPECT_NO_THROW(WsClient(port, "/api/ws?subject=s"));  // no browser, no Origin
  EXPECT_NO_THROW(
      WsClient(port, "/api/ws?subject=s", with_origin("http://127.0.0.1:" + std::to_string(port))));
  EXPECT_THROW(WsClient(port, "/api/ws?subject=s", with_origin("http://evil.example")),
               RequestFailed);
  const HttpResponse answer =
      refused(port, std::string(kUpgrade) + "Origin: http://evil.example\r\n");
  EXPECT_EQ(answer.status, 403U);
  EXPECT_EQ(answer.body, "{\"message\":\"origin not allowed\"}\n");
  EXPECT_TRUE(stats_reach(port, "\"subscriptions\":0,"));
}

}  // namespace
}  // namespace gophermq::test
