// API.md §10's event streams (GET /api/stream) and CORS against the real binary, over raw
// sockets: the answers are compared byte for byte. Every read has a deadline, so a stream that
// never sends fails a test instead of hanging it.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "support/broker_process.hpp"
#include "support/http_client.hpp"
#include "support/sanitizers.hpp"
#include "support/temp_files.hpp"

namespace gophermq::test {
namespace {

using namespace std::chrono_literals;

const std::string kStreamHead =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/event-stream\r\n"
    "Cache-Control: no-cache\r\n"
    "X-Accel-Buffering: no\r\n";

// One connection that sends a request and reads what comes back, as bytes, with deadlines.
class RawConnection {
 public:
  // `receive_buffer` above zero shrinks the kernel's buffer before connecting, so a reader that
  // stops reading makes the server's writes block early.
  explicit RawConnection(std::uint16_t port, int receive_buffer = 0)
      : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    if (fd_ < 0) {
      throw std::runtime_error("socket");
    }
    if (receive_buffer > 0) {
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    }
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
      throw std::runtime_error("connect");
    }
  }
  ~RawConnection() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  void send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (sent <= 0) {
        throw std::runtime_error("send");
      }
      bytes.remove_prefix(static_cast<std::size_t>(sent));
    }
  }

  // Reads until what arrived holds `needle` at or after `from`; false when the connection ended
  // or `timeout` passed first.
  bool read_until(std::string_view needle, std::size_t from = 0,
                  std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (received_.find(needle, from) == std::string::npos) {
      if (!read_some(deadline)) {
        return false;
      }
    }
    return true;
  }

  // Reads until the server ends the connection; false when `timeout` passed first.
  bool read_until_closed(std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!closed_) {
      if (!read_some(deadline) && !closed_) {
        return false;
      }
    }
    return true;
  }

  // A reset, as a client that crashed leaves.
  void abort() {
    const linger hard{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    ::close(fd_);
    fd_ = -1;
  }

  [[nodiscard]] const std::string& received() const { return received_; }

 private:
  bool read_some(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || closed_) {
      return false;
    }
    pollfd wanted{fd_, POLLIN, 0};
    if (::poll(&wanted, 1, static_cast<int>(left.count())) <= 0) {
      return false;
    }
    char chunk[65536];
    const ssize_t read = ::recv(fd_, chunk, sizeof chunk, 0);
    if (read <= 0) {
      closed_ = true;
      return false;
    }
    received_.append(chunk, static_cast<std::size_t>(read));
    return true;
  }

  int fd_;
  std::string received_;
  bool closed_ = false;
};

std::string stream_request(std::string_view query, std::string_view headers = "") {
  return "GET /api/stream" + std::string(query) + " HTTP/1.1\r\nHost: gophermq\r\n" +
         std::string(headers) + "\r\n";
}

// The id in a stream's `event: subscribed`, which must be its first event.
std::string subscribed_id(const std::string& received) {
  const std::string marker = "\r\n\r\nevent: subscribed\ndata: {";
  const auto at = received.find(marker);
  const std::string key = "\"id\":\"";
  if (at == std::string::npos || received.find(key, at) == std::string::npos) {
    ADD_FAILURE() << "no subscribed event in: " << received;
    return {};
  }
  const auto start = received.find(key, at) + key.size();
  return received.substr(start, received.find('"', start) - start);
}

std::string message_event(std::uint64_t seq, const std::string& entry) {
  return "id: " + std::to_string(seq) + "\nevent: message\ndata: " + entry + "\n\n";
}

HttpResponse publish(std::uint16_t port, const std::string& subject, const std::string& data) {
  HttpClient client(port);
  return client.post("/api/publish", "{\"subject\":\"" + subject + "\",\"data\":\"" + data + "\"}");
}

std::string stats(std::uint16_t port) {
  return HttpClient(port).get("/api/stats").body;
}

// Re-reads the stats until they contain `needle`: state the broker reaches on its own time.
bool stats_reach(std::uint16_t port, std::string_view needle,
                 std::chrono::milliseconds timeout = 10s) {
  HttpClient client(port);
  return poll_until_contains(client, "/api/stats", needle, timeout).find(needle) !=
         std::string::npos;
}

TEST(Stream, EphemeralStreamFramesEventsByteForByteAndConsumesThem) {
  BrokerProcess broker(isolated_arguments());
  RawConnection stream(broker.api_port());
  stream.send(stream_request("?subject=news.eu"));
  ASSERT_TRUE(stream.read_until("}\n\n"));
  const std::string id = subscribed_id(stream.received());
  ASSERT_EQ(stream.received(), kStreamHead + "\r\nevent: subscribed\ndata: {\"id\":\"" + id +
                                   "\",\"subject\":\"news.eu\"}\n\n");
  const std::size_t head_size = stream.received().size();

  ASSERT_EQ(publish(broker.api_port(), "news.eu", "a<b & \\\"c\\\"").status, 200U);
  ASSERT_EQ(publish(broker.api_port(), "news.eu", "second").status, 200U);
  ASSERT_TRUE(stream.read_until("\"second\"", head_size));
  ASSERT_TRUE(stream.read_until("\n\n", stream.received().find("\"second\"")));
  EXPECT_EQ(stream.received().substr(head_size),
            message_event(1,
                          "{\"data\":\"a\\u003cb \\u0026 \\\"c\\\"\",\"seq\":1,"
                          "\"subject\":\"news.eu\"}") +
                message_event(2, "{\"data\":\"second\",\"seq\":2,\"subject\":\"news.eu\"}"));
  // Written to the stream is consumed, as by a fetch.
  EXPECT_NE(stats(broker.api_port()).find("\"pending_messages\":0,\"published_messages\":2"),
            std::string::npos);
  EXPECT_EQ(metric(broker.metrics_port(), "gophermq_open_streams"), 1);
  EXPECT_EQ(metric(broker.metrics_port(), "gophermq_pushed_messages_total"), 2);
}

TEST(Stream, AGroupStreamSaysItsGroupAndSharesTheGroupsQueue) {
  BrokerProcess broker(isolated_arguments());
  RawConnection stream(broker.api_port());
  stream.send(stream_request("?subject=jobs.%3E&group=workers"));
  ASSERT_TRUE(stream.read_until("}\n\n"));
  const std::string id = subscribed_id(stream.received());
  EXPECT_EQ(stream.received(), kStreamHead +
                                   "\r\nevent: subscribed\ndata: {\"group\":\"workers\","
                                   "\"id\":\"" +
                                   id + "\",\"subject\":\"jobs.\\u003e\"}\n\n");
  HttpClient client(broker.api_port());
  const HttpResponse member =
      client.post("/api/subscribe", R"({"subject":"jobs.>","group":"workers"})");
  ASSERT_EQ(member.status, 200U);
  ASSERT_EQ(publish(broker.api_port(), "jobs.a", "one").status, 200U);
  ASSERT_TRUE(stream.read_until("\"one\""));
  // Delivered once to the group: the other member finds nothing.
  EXPECT_EQ(
      client.post("/api/fetch", "{\"subject\":\"jobs.>\",\"id\":\"" + id_of(member) + "\"}").body,
      "{\"data\":[],\"id\":\"" + id_of(member) + "\",\"subject\":\"jobs.\\u003e\"}\n");
}

TEST(Stream, AnEphemeralSubscriptionIsRemovedWhenItsClientGoes) {
  BrokerProcess broker(isolated_arguments());
  for (const bool reset : {false, true}) {
    auto stream = std::make_unique<RawConnection>(broker.api_port());
    stream->send(stream_request("?subject=gone"));
    ASSERT_TRUE(stream->read_until("}\n\n"));
    ASSERT_TRUE(stats_reach(broker.api_port(), "\"subscriptions\":1,"));
    if (reset) {
      stream->abort();
    }
    stream.reset();
    EXPECT_TRUE(stats_reach(broker.api_port(), "\"subscriptions\":0,")) << "reset " << reset;
  }
  EXPECT_EQ(publish(broker.api_port(), "gone", "x").status, 404U);
  EXPECT_EQ(metric(broker.metrics_port(), "gophermq_open_streams"), 0);
}

TEST(Stream, AnIdleStreamSendsAPingEveryHeartbeat) {
  BrokerProcess broker(isolated_arguments({"--broker.stream-heartbeat=100ms"}));
  RawConnection stream(broker.api_port());
  stream.send(stream_request("?subject=quiet"));
  ASSERT_TRUE(stream.read_until("}\n\n"));
  const std::size_t events = stream.received().size();
  ASSERT_TRUE(stream.read_until(": ping\n\n: ping\n\n", events, 5s));
  EXPECT_EQ(stream.received().substr(events, 16), ": ping\n\n: ping\n\n");
}

TEST(Stream, ABusyStreamPingsEveryHeartbeatToo) {
  BrokerProcess broker(isolated_arguments({"--broker.stream-heartbeat=200ms"}));
  RawConnection stream(broker.api_port());
  stream.send(stream_request("?subject=busy"));
  ASSERT_TRUE(stream.read_until("}\n\n"));
  const std::size_t start = stream.received().size();
  HttpClient client(broker.api_port());
  // Never idle for a heartbeat: each message follows the last one's event at once.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  int sent = 0;
  while (stream.received().find(": ping\n\n", start) == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    const std::string data = "m" + std::to_string(++sent);
    ASSERT_EQ(
        client.post("/api/publish", "{\"subject\":\"busy\",\"data\":\"" + data + "\"}").status,
        200U);
    ASSERT_TRUE(stream.read_until("\"" + data + "\"", start));
  }
  EXPECT_NE(stream.received().find(": ping\n\n", start), std::string::npos);
  EXPECT_GT(sent, 1);
}

TEST(Stream, AnExistingSubscriptionStreamsWithoutASubscribedEventAndEndsWhenUnsubscribed) {
  BrokerProcess broker(isolated_arguments());
  HttpClient client(broker.api_port());
  const std::string id = id_of(client.post("/api/subscribe", R"({"subject":"orders"})"));
  ASSERT_EQ(publish(broker.api_port(), "orders", "waiting").status, 200U);
  for (const std::string& query : {"?subject=orders&id=" + id, "?id=" + id}) {
    RawConnection stream(broker.api_port());
    stream.send(stream_request(query));
    ASSERT_TRUE(stream.read_until("\r\n\r\n"));
    const std::size_t head = stream.received().find("\r\n\r\n") + 4;
    ASSERT_EQ(stream.received().substr(0, head), kStreamHead + "\r\n");
    if (query.starts_with("?subject")) {
      ASSERT_TRUE(stream.read_until("}\n\n"));
      EXPECT_EQ(stream.received().substr(head),
                message_event(1, R"({"data":"waiting","seq":1,"subject":"orders"})"));
      continue;
    }
    ASSERT_EQ(
        client.post("/api/unsubscribe", "{\"subject\":\"orders\",\"id\":\"" + id + "\"}").status,
        200U);
    EXPECT_TRUE(stream.read_until_closed());
    EXPECT_EQ(stream.received().size(), head);
  }
}

TEST(Stream, BadParametersGetTheContractsErrors) {
  BrokerProcess broker(isolated_arguments({"--broker.max-subject-length=8"}));
  HttpClient client(broker.api_port());
  const std::string id = id_of(client.post("/api/subscribe", R"({"subject":"a"})"));
  const std::string bad_id = "{\"message\":\"bad id\"}\n";
  const std::string invalid_subject = "{\"message\":\"invalid subject\"}\n";
  const std::string invalid_query = "{\"message\":\"invalid query\"}\n";
  const struct {
    std::string query;
    std::string headers;
    unsigned status;
    std::string body;
  } cases[] = {
      {"", "", 400, invalid_subject},
      {"?group=g", "", 400, invalid_subject},
      {"?subject=", "", 400, invalid_subject},
      {"?subject=a..b", "", 400, invalid_subject},
      {"?subject=a+b", "", 400, invalid_subject},
      {"?subject=a.%3E.b", "", 400, invalid_subject},
      {"?subject=abcdefghi", "", 400, invalid_subject},
      {"?subject=a&group=", "", 400, "{\"message\":\"invalid group\"}\n"},
      {"?subject=a&group=x.y", "", 400, "{\"message\":\"invalid group\"}\n"},
      {"?subject=a&subject=b", "", 400, invalid_query},
      {"?subject=%zz", "", 400, invalid_query},
      {"?subject=a%4", "", 400, invalid_query},
      {"?id=nobody", "", 404, bad_id},
      {"?subject=b&id=" + id, "", 404, bad_id},
      {"?subject=a&id=" + id + "&last_event_id=x", "", 400,
       "{\"message\":\"invalid last event id\"}\n"},
      {"?subject=a&id=" + id, "Last-Event-ID: -1\r\n", 400,
       "{\"message\":\"invalid last event id\"}\n"},
  };
  for (const auto& bad : cases) {
    client.send_raw(stream_request(bad.query, bad.headers));
    const HttpResponse answer = client.read_response();
    EXPECT_EQ(answer.status, bad.status) << bad.query;
    EXPECT_EQ(answer.body, bad.body) << bad.query;
    EXPECT_EQ(answer.header("content-type"), "application/json; charset=UTF-8") << bad.query;
  }
  EXPECT_EQ(client.post("/api/stream", "{}").status, 405U);
  EXPECT_NE(stats(broker.api_port()).find("\"subscriptions\":1,"), std::string::npos);
}

TEST(Stream, AnEphemeralStreamCountsTowardMaxSubscriptionsAndHeadSubscribesNothing) {
  BrokerProcess broker(isolated_arguments({"--broker.max-subscriptions=1"}));
  HttpClient client(broker.api_port());
  client.send_raw("HEAD /api/stream?subject=s HTTP/1.1\r\nHost: x\r\n\r\n");
  const HttpResponse head = client.read_response();
  EXPECT_EQ(head.status, 200U);
  EXPECT_EQ(head.header("content-type"), "text/event-stream");
  EXPECT_NE(stats(broker.api_port()).find("\"subscriptions\":0,"), std::string::npos);

  RawConnection first(broker.api_port());
  first.send(stream_request("?subject=s"));
  ASSERT_TRUE(first.read_until("}\n\n"));
  client.send_raw(stream_request("?subject=s"));
  const HttpResponse refused = client.read_response();
  EXPECT_EQ(refused.status, 429U);
  EXPECT_EQ(refused.body, "{\"message\":\"too many subscriptions\"}\n");
}

// Every message event in `received`: its seq, and its deliveries and receipt in ack mode.
struct Event {
  std::uint64_t seq = 0;
  std::string deliveries;
  std::string receipt;
};
std::vector<Event> events_in(const std::string& received) {
  std::vector<Event> events;
  for (auto at = received.find("\nid: "); at != std::string::npos;
       at = received.find("\nid: ", at + 1)) {
    const std::string_view event_text =
        std::string_view(received).substr(at, received.find("\n\n", at) - at);
    Event event;
    std::from_chars(event_text.data() + 5, event_text.data() + event_text.size(), event.seq);
    const auto field = [&](std::string_view key) {
      const auto start = event_text.find(key);
      if (start == std::string_view::npos) {
        return std::string();
      }
      const auto value = start + key.size();
      return std::string(event_text.substr(value, event_text.find_first_of(",\"", value) - value));
    };
    event.deliveries = field("\"deliveries\":");
    event.receipt = field("\"receipt\":\"");
    events.push_back(event);
  }
  return events;
}

TEST(Stream, AckModeResumeAcksUpToLastEventIdAndRedeliversTheRestAtOnce) {
  BrokerProcess broker(isolated_arguments());
  HttpClient client(broker.api_port());
  const std::string id =
      id_of(client.post("/api/subscribe", R"({"subject":"pay","ack":true,"ack_wait_ms":600000})"));
  for (int i = 1; i <= 5; ++i) {
    ASSERT_EQ(publish(broker.api_port(), "pay", "m" + std::to_string(i)).status, 200U);
  }
  {
    RawConnection first(broker.api_port());
    first.send(stream_request("?subject=pay&id=" + id));
    ASSERT_TRUE(first.read_until("\"m5\""));
    ASSERT_TRUE(first.read_until("}\n\n", first.received().find("\"m5\"")));
    const auto events = events_in(first.received());
    ASSERT_EQ(events.size(), 5U);
    EXPECT_EQ(first.received().substr(first.received().find("id: 1\n")), [&] {
      std::string expected;
      for (int i = 1; i <= 5; ++i) {
        const auto& event = events[static_cast<std::size_t>(i - 1)];
        expected += message_event(static_cast<std::uint64_t>(i),
                                  "{\"data\":\"m" + std::to_string(i) +
                                      "\",\"deliveries\":1,\"receipt\":\"" + event.receipt +
                                      "\",\"seq\":" + std::to_string(i) + ",\"subject\":\"pay\"}");
      }
      return expected;
    }());
    // Ack over HTTP with a receipt the stream carried.
    const HttpResponse acked =
        client.post("/api/ack", "{\"subject\":\"pay\",\"id\":\"" + id + "\",\"receipts\":[\"" +
                                    events[0].receipt + "\"]}");
    EXPECT_EQ(acked.body, "{\"acked\":1,\"stale\":[],\"status\":\"ok\"}\n");
  }
  ASSERT_TRUE(stats_reach(broker.api_port(), "\"in_flight\":4,"));
  // The client read up to seq 3: 2 and 3 are acked, 4 and 5 come again at once, nothing else.
  RawConnection second(broker.api_port());
  second.send(stream_request("?subject=pay&id=" + id, "Last-Event-ID: 3\r\n"));
  ASSERT_TRUE(second.read_until("\"m5\""));
  ASSERT_TRUE(second.read_until("}\n\n", second.received().find("\"m5\"")));
  const auto again = events_in(second.received());
  ASSERT_EQ(again.size(), 2U);
  EXPECT_EQ(again[0].seq, 4U);
  EXPECT_EQ(again[0].deliveries, "2");
  EXPECT_EQ(again[1].seq, 5U);
  EXPECT_TRUE(stats_reach(broker.api_port(),
                          "\"in_flight\":2,\"pending_bytes\":4,"
                          "\"pending_messages\":2,"));
  // The parameter does the same for a client that cannot set headers.
  RawConnection third(broker.api_port());
  third.send(stream_request("?id=" + id + "&last_event_id=5"));
  ASSERT_TRUE(third.read_until("\r\n\r\n"));
  EXPECT_TRUE(stats_reach(broker.api_port(),
                          "\"in_flight\":0,\"pending_bytes\":0,"
                          "\"pending_messages\":0,"));
}

// API.md §10: a resume acks what is in flight "to that subscription". In a group, what another
// member fetched stays in flight, and its receipt stays good.
TEST(Stream, AGroupMembersResumeLeavesAnotherMembersDeliveriesInFlight) {
  BrokerProcess broker(isolated_arguments());
  HttpClient client(broker.api_port());
  const std::string member = R"({"subject":"jobs","group":"w","ack":true,"ack_wait_ms":600000})";
  const std::string first = id_of(client.post("/api/subscribe", member));
  const std::string second = id_of(client.post("/api/subscribe", member));
  ASSERT_EQ(publish(broker.api_port(), "jobs", "a").status, 200U);
  const HttpResponse fetched =
      client.post("/api/fetch", R"({"subject":"jobs","id":")" + first + R"("})");
  const std::size_t at = fetched.body.find("\"receipt\":\"");
  ASSERT_NE(at, std::string::npos) << fetched.body;
  const std::size_t from = at + 11;
  const std::string receipt = fetched.body.substr(from, fetched.body.find('"', from) - from);

  RawConnection stream(broker.api_port());
  stream.send(stream_request("?subject=jobs&id=" + second, "Last-Event-ID: 1\r\n"));
  ASSERT_TRUE(stream.read_until("\r\n\r\n"));  // the resume is done before the head
  const HttpResponse acked = client.post(
      "/api/ack", R"({"subject":"jobs","id":")" + first + R"(","receipts":[")" + receipt + "\"]}");
  EXPECT_EQ(acked.body, "{\"acked\":1,\"stale\":[],\"status\":\"ok\"}\n");
}

TEST(Stream, AnAckModeStreamStopsAtMaxInFlightAndAnAckOverHttpLetsTheNextOneOut) {
  BrokerProcess broker(isolated_arguments());
  HttpClient client(broker.api_port());
  const std::string id =
      id_of(client.post("/api/subscribe", R"({"subject":"q","ack":true,"max_in_flight":2})"));
  RawConnection stream(broker.api_port());
  stream.send(stream_request("?subject=q&id=" + id));
  ASSERT_TRUE(stream.read_until("\r\n\r\n"));
  for (const std::string data : {"one", "two", "three"}) {
    ASSERT_EQ(publish(broker.api_port(), "q", data).status, 200U);
  }
  ASSERT_TRUE(stream.read_until("\"two\""));
  ASSERT_TRUE(stats_reach(broker.api_port(), "\"in_flight\":2,\"pending_bytes\":11,"));
  EXPECT_EQ(events_in(stream.received()).size(), 2U);
  const std::string receipt = events_in(stream.received())[0].receipt;
  EXPECT_EQ(client
                .post("/api/ack", "{\"subject\":\"q\",\"id\":\"" + id + "\",\"receipts\":[\"" +
                                      receipt + "\"]}")
                .body,
            "{\"acked\":1,\"stale\":[],\"status\":\"ok\"}\n");
  ASSERT_TRUE(stream.read_until("\"three\""));
  const auto events = events_in(stream.received());
  ASSERT_EQ(events.size(), 3U);
  EXPECT_EQ(events[2].seq, 3U);
  EXPECT_EQ(events[2].deliveries, "1");
}

TEST(Stream, AStalledReaderHoldsABoundedBatchWhileAnotherStreamKeepsReceiving) {
  constexpr int kRounds = 100;
  constexpr int kBatch = 500;
  constexpr std::size_t kDataBytes = 1000;
  BrokerProcess broker(isolated_arguments(
      {"--broker.max-pending-per-queue=1000", "--broker.slow-queue-policy=drop-oldest"}));
  RawConnection stalled(broker.api_port(), 4096);
  stalled.send(stream_request("?subject=firehose"));
  ASSERT_TRUE(stalled.read_until("}\n\n"));
  RawConnection reader(broker.api_port());
  reader.send(stream_request("?subject=firehose"));
  ASSERT_TRUE(reader.read_until("}\n\n"));
  const double baseline = metric(broker.metrics_port(), "process_resident_memory_bytes");

  const std::string data(kDataBytes, 'x');
  std::string batch = "{\"subject\":\"firehose\",\"data\":[";
  for (int i = 0; i < kBatch; ++i) {
    batch += (i > 0 ? ",\"" : "\"") + data + "\"";
  }
  batch += "]}";
  HttpClient client(broker.api_port());
  double peak = baseline;
  for (int round = 1; round <= kRounds; ++round) {
    const std::size_t read_before = reader.received().size();
    ASSERT_EQ(client.post("/api/publish/batch", batch).status, 200U);
    // The reader gets every message, in order, while the other stream reads nothing.
    const std::string last = "id: " + std::to_string(round * kBatch) + "\n";
    ASSERT_TRUE(reader.read_until(last, read_before, 20s)) << "round " << round;
    if (round % 20 == 0) {
      peak = std::max(peak, metric(broker.metrics_port(), "process_resident_memory_bytes"));
    }
  }
  const auto events = events_in(reader.received());
  ASSERT_EQ(events.size(), static_cast<std::size_t>(kRounds * kBatch));
  for (std::size_t i = 0; i < events.size(); ++i) {
    ASSERT_EQ(events[i].seq, i + 1);
  }
  // 50 MB went through. The stalled stream's messages stayed in its queue, which dropped its
  // oldest at 1000: had the stream taken them, the queue would not have filled.
  const std::string now = stats(broker.api_port());
  EXPECT_NE(now.find("\"pending_messages\":1000,"), std::string::npos) << now;
  EXPECT_NE(now.find("\"queue_full\":"), std::string::npos);
  EXPECT_EQ(now.find("\"queue_full\":0"), std::string::npos) << now;
  // Its queue (1 MB), one batch (64 kB), the socket buffers and a margin for the allocator:
  // nowhere near the 50 MB a stream that buffered what it could not write would hold.
  // Sanitizers' shadow memory and quarantine make RSS say nothing about the broker's own use.
#ifndef GOPHERMQ_TEST_SANITIZED
  EXPECT_LT(peak - baseline, 24.0 * 1024 * 1024) << "baseline " << baseline << " peak " << peak;
#endif
  EXPECT_GE(metric(broker.metrics_port(), "gophermq_stream_slow_reader_waits_total"), 1);
}

TEST(Stream, AStreamThatStopsReadingIsEndedAtTheWriteTimeout) {
  BrokerProcess broker(isolated_arguments({"--broker.write-timeout=500ms"}));
  RawConnection stalled(broker.api_port(), 4096);
  stalled.send(stream_request("?subject=big"));
  ASSERT_TRUE(stalled.read_until("}\n\n"));
  // Far more than the socket buffers on both sides hold: the stream's write blocks.
  const std::string data(500'000, 'x');
  HttpClient client(broker.api_port());
  for (int i = 0; i < 40; ++i) {
    const unsigned status =
        client.post("/api/publish", "{\"subject\":\"big\",\"data\":\"" + data + "\"}").status;
    // 404 once the timeout ended the stream and its subscription.
    ASSERT_TRUE(status == 200 || (status == 404 && i > 0)) << status;
    if (status == 404) {
      break;
    }
  }
  // The stream ended (its ephemeral subscription with it) without the client reading a byte.
  EXPECT_TRUE(stats_reach(broker.api_port(), "\"subscriptions\":0,"));
  EXPECT_EQ(metric(broker.metrics_port(), "gophermq_open_streams"), 0);
  EXPECT_EQ(metric(broker.metrics_port(), "gophermq_limit_hits_total{limit=\"write-timeout\"}"), 1);
  EXPECT_GE(metric(broker.metrics_port(), "gophermq_stream_slow_reader_waits_total"), 1);
}

TEST(Stream, StreamsCountTowardMaxConnections) {
  BrokerProcess broker(isolated_arguments({"--broker.max-connections=2"}));
  RawConnection first(broker.api_port());
  first.send(stream_request("?subject=s"));
  ASSERT_TRUE(first.read_until("}\n\n"));
  RawConnection second(broker.api_port());
  second.send(stream_request("?subject=s"));
  ASSERT_TRUE(second.read_until("}\n\n"));
  RawConnection third(broker.api_port());
  third.send("GET /ready HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(third.read_until_closed());
  EXPECT_TRUE(third.received().starts_with("HTTP/1.1 503 "));
  EXPECT_NE(third.received().find("{\"message\":\"too many connections\"}\n"), std::string::npos);
}

TEST(Stream, SigtermEndsStreamsPromptlyAndTheBrokerExitsZero) {
  BrokerProcess broker(isolated_arguments({"--broker.shutdown-timeout=20s"}));
  RawConnection ephemeral(broker.api_port());
  ephemeral.send(stream_request("?subject=s"));
  ASSERT_TRUE(ephemeral.read_until("}\n\n"));
  HttpClient client(broker.api_port());
  const std::string id = id_of(client.post("/api/subscribe", R"({"subject":"t"})"));
  RawConnection existing(broker.api_port());
  existing.send(stream_request("?id=" + id));
  ASSERT_TRUE(existing.read_until("\r\n\r\n"));
  const auto signalled = std::chrono::steady_clock::now();
  broker.send_signal(SIGTERM);
  EXPECT_TRUE(ephemeral.read_until_closed(5s));
  EXPECT_TRUE(existing.read_until_closed(5s));
  EXPECT_EQ(broker.wait_for_exit(10s), 0);
  // Well within the shutdown-timeout: the streams did not hold the drain.
  EXPECT_LT(std::chrono::steady_clock::now() - signalled, 5s);
}

// An ephemeral stream's subscription is journaled as such: after kill -9 the restarted broker
// has dropped it, and its id, plain or grouped, is a bad id, while a lasting subscription
// made beside it keeps its message.
TEST(Stream, AfterAKillTheRestartedBrokerHasNoEphemeralSubscription) {
  TempDir dir;
  const auto arguments = isolated_arguments({"--storage.dir=" + dir.string()});
  std::string lasting;
  std::vector<std::string> ephemeral;
  {
    BrokerProcess broker(arguments);
    HttpClient client(broker.api_port());
    lasting = id_of(client.post("/api/subscribe", R"({"subject":"s"})"));
    RawConnection plain(broker.api_port());
    plain.send(stream_request("?subject=s"));
    ASSERT_TRUE(plain.read_until("}\n\n"));
    RawConnection grouped(broker.api_port());
    grouped.send(stream_request("?subject=jobs&group=w"));
    ASSERT_TRUE(grouped.read_until("}\n\n"));
    ephemeral = {subscribed_id(plain.received()), subscribed_id(grouped.received())};
    ASSERT_EQ(publish(broker.api_port(), "s", "kept").status, 200U);
    ASSERT_TRUE(plain.read_until("\"kept\""));
    EXPECT_NE(stats(broker.api_port()).find("\"subscriptions\":3,"), std::string::npos);
    broker.send_signal(SIGKILL);
    ASSERT_EQ(broker.wait_for_exit(), 128 + SIGKILL);
  }
  BrokerProcess restarted(arguments);
  const std::string after = stats(restarted.api_port());
  EXPECT_NE(after.find("\"subscriptions\":1,"), std::string::npos) << after;
  EXPECT_EQ(after.find("jobs"), std::string::npos) << after;
  for (const std::string& id : ephemeral) {
    HttpClient client(restarted.api_port());
    client.send_raw(stream_request("?id=" + id));
    const HttpResponse refused = client.read_response();
    EXPECT_EQ(refused.status, 404U) << id;
    EXPECT_EQ(refused.body, "{\"message\":\"bad id\"}\n");
  }
  HttpClient client(restarted.api_port());
  EXPECT_NE(client.post("/api/fetch", "{\"subject\":\"s\",\"id\":\"" + lasting + "\"}")
                .body.find("\"data\":[\"kept\"]"),
            std::string::npos);
}

TEST(Cors, AllowedOriginsGetTheHeadersAndPreflightsOthersGetNone) {
  BrokerProcess broker(
      isolated_arguments({"--http.cors-origins=http://app.example:8000, https://b.example"}));
  HttpClient client(broker.api_port());
  client.send_raw("GET /api/stats HTTP/1.1\r\nHost: x\r\nOrigin: http://app.example:8000\r\n\r\n");
  const HttpResponse allowed = client.read_response();
  EXPECT_EQ(allowed.header("access-control-allow-origin"), "http://app.example:8000");
  EXPECT_EQ(allowed.header("vary"), "Origin");

  client.send_raw("GET /api/stats HTTP/1.1\r\nHost: x\r\nOrigin: http://evil.example\r\n\r\n");
  const HttpResponse other = client.read_response();
  EXPECT_EQ(other.status, 200U);
  EXPECT_FALSE(other.has_header("access-control-allow-origin"));

  client.send_raw(
      "OPTIONS /api/publish HTTP/1.1\r\nHost: x\r\nOrigin: https://b.example\r\n"
      "Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: "
      "content-type\r\n\r\n");
  const HttpResponse preflight = client.read_response();
  EXPECT_EQ(preflight.status, 204U);
  EXPECT_EQ(preflight.header("access-control-allow-origin"), "https://b.example");
  EXPECT_EQ(preflight.header("access-control-allow-methods"), "POST");
  EXPECT_EQ(preflight.header("access-control-allow-headers"),
            "Content-Type, Last-Event-ID, Authorization");
  EXPECT_EQ(preflight.header("access-control-max-age"), "7200");
  EXPECT_EQ(preflight.body, "");

  client.send_raw(
      "OPTIONS /api/stream HTTP/1.1\r\nHost: x\r\nOrigin: http://evil.example\r\n"
      "Access-Control-Request-Method: GET\r\n\r\n");
  const HttpResponse refused = client.read_response();
  EXPECT_FALSE(refused.has_header("access-control-allow-origin"));
  EXPECT_FALSE(refused.has_header("access-control-allow-methods"));

  client.send_raw("OPTIONS /nowhere HTTP/1.1\r\nHost: x\r\nOrigin: https://b.example\r\n\r\n");
  const HttpResponse unknown = client.read_response();
  EXPECT_EQ(unknown.status, 404U);
  EXPECT_EQ(unknown.header("access-control-allow-origin"), "https://b.example");

  // A refusal before the body is read carries them too, so the page can read why.
  RawConnection large(broker.api_port());
  large.send(
      "POST /api/publish HTTP/1.1\r\nHost: x\r\nOrigin: https://b.example\r\n"
      "Content-Length: 2000000\r\n\r\n");
  ASSERT_TRUE(large.read_until("\r\n\r\n"));
  EXPECT_TRUE(large.received().starts_with("HTTP/1.1 413 ")) << large.received();
  EXPECT_NE(large.received().find("Access-Control-Allow-Origin: https://b.example\r\n"),
            std::string::npos)
      << large.received();

  RawConnection stream(broker.api_port());
  stream.send(stream_request("?subject=s", "Origin: https://b.example\r\n"));
  ASSERT_TRUE(stream.read_until("\r\n\r\n"));
  EXPECT_EQ(stream.received().substr(0, stream.received().find("\r\n\r\n") + 4),
            kStreamHead + "Vary: Origin\r\nAccess-Control-Allow-Origin: https://b.example\r\n\r\n");
}

TEST(Cors, OffByDefaultAndAnyOriginWithAStar) {
  {
    BrokerProcess broker(isolated_arguments());
    HttpClient client(broker.api_port());
    client.send_raw("GET /api/stats HTTP/1.1\r\nHost: x\r\nOrigin: http://a.example\r\n\r\n");
    const HttpResponse plain = client.read_response();
    EXPECT_FALSE(plain.has_header("access-control-allow-origin"));
    EXPECT_FALSE(plain.has_header("vary"));
    client.send_raw("OPTIONS /api/publish HTTP/1.1\r\nHost: x\r\nOrigin: http://a.example\r\n\r\n");
    EXPECT_EQ(client.read_response().status, 405U);
  }
  BrokerProcess broker(isolated_arguments({"--http.cors-origins=*"}));
  HttpClient client(broker.api_port());
  client.send_raw("GET /ready HTTP/1.1\r\nHost: x\r\nOrigin: http://anything.example\r\n\r\n");
  EXPECT_EQ(client.read_response().header("access-control-allow-origin"), "*");
}

TEST(Cors, BadOriginsAndHeartbeatsAreRefusedAtStart) {
  for (const std::string bad :
       {"--http.cors-origins=app.example", "--http.cors-origins=http://a.example/path",
        "--http.cors-origins=http://a.example,,http://b.example",
        "--http.cors-origins=HTTP://A.EXAMPLE", "--broker.stream-heartbeat=0",
        "--broker.stream-heartbeat=soon"}) {
    const RunResult result = run_to_exit(isolated_arguments({bad}));
    EXPECT_EQ(result.status, 2) << bad;
    const std::string key = bad.substr(2, bad.find('=') - 2);
    EXPECT_NE(result.output.find(key), std::string::npos) << result.output;
  }
}

}  // namespace
}  // namespace gophermq::test
