// API.md §9 over HTTP against the real binary: ack-mode subscriptions, fetch in flight, ack, nack,
// extend, redelivery, dead letters, "meta" fetches and idempotent publish, with and without
// storage. Every request has a deadline (HttpClient), so a broker that does not answer fails a
// test instead of hanging it. Receipts are opaque: answers are compared byte for byte after the
// receipts and sequence numbers they carry are read back from them.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <csignal>
#include <cstdint>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/api_texts.hpp"
#include "support/broker_process.hpp"
#include "support/clock.hpp"
#include "support/http_client.hpp"
#include "support/temp_files.hpp"

namespace gophermq::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

const std::string invalid_ack_options = "{\"message\":\"invalid ack options\"}\n";
const std::string invalid_body = "{\"message\":\"request's body is invalid\"}\n";
const std::string bad_id = "{\"message\":\"bad id\"}\n";
const std::string invalid_subject = "{\"message\":\"invalid subject\"}\n";
const std::string status_ok = "{\"status\":\"ok\"}\n";

// One entry of a fetch answer's `messages`.
struct Delivered {
  std::string data;
  std::size_t deliveries = 0;  // 0: not in ack mode, the entry has none
  std::string receipt;
  std::uint64_t seq = 0;
  std::string subject;
};

// A JSON string as Go's encoding/json writes it (§1) for the ASCII the tests send.
std::string quoted(const std::string& text) {
  static const char* const hex = "0123456789abcdef";
  std::string out = "\"";
  for (std::size_t at = 0; at < text.size(); ++at) {
    const auto byte = static_cast<unsigned char>(text[at]);
    if (byte == '"' || byte == '\\') {
      out += '\\';
      out += static_cast<char>(byte);
    } else if (byte == '\n') {
      out += "\\n";
    } else if (byte == '\r') {
      out += "\\r";
    } else if (byte == '\t') {
      out += "\\t";
    } else if (byte < 0x20 || byte == '<' || byte == '>' || byte == '&') {
      out += "\\u00";
      out += hex[byte >> 4];
      out += hex[byte & 0xf];
    } else {
      out += static_cast<char>(byte);
    }
  }
  return out + "\"";
}

std::string json_strings(const std::vector<std::string>& texts) {
  std::string list = "[";
  for (const auto& text : texts) list += (list.size() > 1 ? "," : "") + quoted(text);
  return list + "]";
}

// The bytes §9 fixes for a fetch answer holding `messages`.
std::string messages_answer(const std::string& subject, const std::string& id,
                            const std::vector<Delivered>& messages) {
  std::string list;
  for (const auto& message : messages) {
    list += (list.empty() ? "{" : ",{") + std::string("\"data\":") + quoted(message.data);
    if (message.deliveries != 0) {
      list += ",\"deliveries\":" + std::to_string(message.deliveries) +
              ",\"receipt\":" + quoted(message.receipt);
    }
    list +=
        ",\"seq\":" + std::to_string(message.seq) + ",\"subject\":" + quoted(message.subject) + "}";
  }
  return "{\"id\":" + quoted(id) + ",\"messages\":[" + list + "],\"subject\":" + quoted(subject) +
         "}\n";
}

std::vector<std::string> receipts_of(const std::vector<Delivered>& messages) {
  std::vector<std::string> receipts;
  for (const auto& message : messages) receipts.push_back(message.receipt);
  return receipts;
}

std::vector<std::string> data_of(const std::vector<Delivered>& messages) {
  std::vector<std::string> data;
  for (const auto& message : messages) data.push_back(message.data);
  return data;
}

std::vector<std::size_t> deliveries_of(const std::vector<Delivered>& messages) {
  std::vector<std::size_t> counts;
  for (const auto& message : messages) counts.push_back(message.deliveries);
  return counts;
}

// The answer to an ack, nack or extend: `verb` is acked, nacked or extended.
std::string receipts_answer(const std::string& verb, std::size_t count,
                            const std::vector<std::string>& stale) {
  return "{\"" + verb + "\":" + std::to_string(count) + ",\"stale\":" + json_strings(stale) +
         ",\"status\":\"ok\"}\n";
}

// The sum of every series of the metric `name` in a Prometheus exposition.
double metric_sum(const std::string& exposition, const std::string& name) {
  std::istringstream lines(exposition);
  std::string line;
  double sum = 0;
  while (std::getline(lines, line)) {
    if (line.rfind(name, 0) != 0 || line.size() <= name.size()) continue;
    const char next = line[name.size()];
    if (next != '{' && next != ' ') continue;
    sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

// A broker (restartable on the same storage directory when `storage` is set) and a client.
class Ack : public testing::Test {
 protected:
  void start(std::vector<std::string> extra = {}, bool storage = false) {
    options_ = std::move(extra);
    if (storage) options_.push_back("--storage.dir=" + dir_.string());
    restart();
  }

  void restart() {
    client_.reset();
    broker_.emplace(isolated_arguments(options_));
    client_.emplace(broker_->api_port());
  }

  void kill_and_restart() {
    client_.reset();
    broker_->send_signal(SIGKILL);
    EXPECT_EQ(broker_->wait_for_exit(), 128 + SIGKILL);
    restart();
  }

  void SetUp() override { start(); }

  HttpResponse post(const std::string& target, const std::string& body,
                    std::chrono::milliseconds timeout = HttpClient::default_timeout) {
    return client_->post(target, body, timeout);
  }

  // Subscribes with `fields` (the rest of the object, with its leading comma) and returns the id.
  std::string subscribe_with(const std::string& subject, const std::string& fields) {
    const auto answer = post("/api/subscribe", "{\"subject\":" + quoted(subject) + fields + "}");
    EXPECT_EQ(answer.status, 200U) << answer.body;
    return id_of(answer);
  }

  // An ack-mode subscription; its answer must say so.
  std::string subscribe_ack(const std::string& subject, const std::string& fields = "") {
    const auto answer =
        post("/api/subscribe", "{\"subject\":" + quoted(subject) + ",\"ack\":true" + fields + "}");
    EXPECT_EQ(answer.status, 200U) << answer.body;
    EXPECT_NE(answer.body.find("\"ack\":true"), std::string::npos)
        << "the subscribe answer does not echo \"ack\":true: " << answer.body;
    return id_of(answer);
  }

  void publish(const std::string& subject, const std::string& data) {
    const auto answer = post("/api/publish", publish_body(subject, data));
    EXPECT_EQ(answer.status, 200U) << answer.body;
    EXPECT_EQ(answer.body, status_ok);
  }

  // A fetch whose answer holds `messages`, checked byte for byte once read.
  std::vector<Delivered> fetch_messages(const std::string& subject, const std::string& id,
                                        const std::string& fields = "",
                                        std::chrono::milliseconds timeout = 10s) {
    return read_messages(post("/api/fetch", fetch_body(subject, id, fields), timeout), subject, id);
  }

  static std::vector<Delivered> read_messages(const HttpResponse& answer,
                                              const std::string& subject, const std::string& id) {
    std::vector<Delivered> messages;
    EXPECT_EQ(answer.status, 200U) << answer.body;
    json::value parsed;
    try {
      parsed = json::parse(answer.body);
    } catch (const std::exception& error) {
      ADD_FAILURE() << "not JSON (" << error.what() << "): " << answer.body;
      return messages;
    }
    const auto* found = parsed.is_object() ? parsed.as_object().if_contains("messages") : nullptr;
    if (found == nullptr || !found->is_array()) {
      ADD_FAILURE() << "the fetch answer has no \"messages\": " << answer.body;
      return messages;
    }
    for (const auto& item : found->as_array()) {
      const auto& entry = item.as_object();
      Delivered message;
      message.data = std::string(entry.at("data").as_string());
      message.subject = std::string(entry.at("subject").as_string());
      message.seq = entry.at("seq").to_number<std::uint64_t>();
      if (const auto* deliveries = entry.if_contains("deliveries")) {
        message.deliveries = deliveries->to_number<std::size_t>();
        message.receipt = std::string(entry.at("receipt").as_string());
      }
      messages.push_back(message);
    }
    EXPECT_EQ(answer.body, messages_answer(subject, id, messages));
    return messages;
  }

  HttpResponse receipts_request(const std::string& verb, const std::string& subject,
                                const std::string& id, const std::vector<std::string>& receipts,
                                const std::string& fields = "") {
    return post("/api/" + verb, "{\"subject\":" + quoted(subject) + ",\"id\":" + quoted(id) +
                                    ",\"receipts\":" + json_strings(receipts) + fields + "}");
  }

  void expect_acked(const std::string& subject, const std::string& id,
                    const std::vector<std::string>& receipts, std::size_t count,
                    const std::vector<std::string>& stale = {}) {
    const auto answer = receipts_request("ack", subject, id, receipts);
    EXPECT_EQ(answer.status, 200U);
    EXPECT_EQ(answer.body, receipts_answer("acked", count, stale));
  }

  void expect_nacked(const std::string& subject, const std::string& id,
                     const std::vector<std::string>& receipts, std::size_t count,
                     const std::vector<std::string>& stale = {}, const std::string& fields = "") {
    const auto answer = receipts_request("nack", subject, id, receipts, fields);
    EXPECT_EQ(answer.status, 200U);
    EXPECT_EQ(answer.body, receipts_answer("nacked", count, stale));
  }

  // Waits, by a long-poll on a subscription nothing is published to, for about `duration`: for
  // the tests that check something does NOT happen before a deadline.
  void idle_for(std::chrono::milliseconds duration) {
    if (!idle_id_) idle_id_ = subscribe_with("idle.clock", "");
    const auto answer = post(
        "/api/fetch",
        fetch_body("idle.clock", *idle_id_, ",\"wait_ms\":" + std::to_string(duration.count())),
        duration + 10s);
    EXPECT_EQ(answer.status, 200U) << answer.body;
  }

  std::string metrics() {
    HttpClient metrics_client(broker_->metrics_port());
    return metrics_client.get("/metrics").body;
  }

  std::int64_t total(const std::string& key) {
    const auto stats = client_->get("/api/stats");
    return json::parse(stats.body).as_object().at("totals").as_object().at(key).as_int64();
  }

  // The broker has linked `count` fetches to their queues.
  void expect_waiting(std::size_t count) {
    const auto deadline = Clock::now() + 10s;
    std::string body;
    while (Clock::now() < deadline) {
      body = client_->get("/api/stats").body;
      if (body.find(waiting_fetches(count)) != std::string::npos) return;
    }
    ADD_FAILURE() << "never " << count << " waiting fetches: " << body;
  }

  TempDir dir_;
  std::vector<std::string> options_;
  std::optional<BrokerProcess> broker_;
  std::optional<HttpClient> client_;
  std::optional<std::string> idle_id_;
};

// ---- Subscribe options ----

TEST_F(Ack, SubscribeEchoesEveryOptionGivenInKeyOrder) {
  auto answer = post("/api/subscribe",
                     R"({"subject":"orders","ack":true,"ack_wait_ms":1500,"max_deliveries":3,)"
                     R"("dead_letter":"orders.dead","max_in_flight":7})");
  ASSERT_EQ(answer.status, 200U) << answer.body;
  EXPECT_EQ(answer.body,
            "{\"ack\":true,\"ack_wait_ms\":1500,\"dead_letter\":\"orders.dead\","
            "\"id\":\"" +
                id_of(answer) +
                "\",\"max_deliveries\":3,\"max_in_flight\":7,\"subject\":\"orders\"}\n");

  answer = post("/api/subscribe",
                R"({"subject":"orders.*","group":"workers","ack":true,"ack_wait_ms":2000,)"
                R"("max_deliveries":1000,"dead_letter":"dlq","max_in_flight":100000})");
  ASSERT_EQ(answer.status, 200U) << answer.body;
  EXPECT_EQ(answer.body,
            "{\"ack\":true,\"ack_wait_ms\":2000,\"dead_letter\":\"dlq\","
            "\"group\":\"workers\",\"id\":\"" +
                id_of(answer) +
                "\",\"max_deliveries\":1000,\"max_in_flight\":100000,"
                "\"subject\":\"orders.*\"}\n");
}

// §9: "The response echoes every option given": the given ones, not the defaults filled in.
TEST_F(Ack, SubscribeEchoesExactlyTheOptionsGiven) {
  auto answer = post("/api/subscribe", R"({"subject":"jobs","ack":true,"ack_wait_ms":1000})");
  ASSERT_EQ(answer.status, 200U) << answer.body;
  EXPECT_EQ(answer.body, "{\"ack\":true,\"ack_wait_ms\":1000,\"id\":\"" + id_of(answer) +
                             "\",\"subject\":\"jobs\"}\n");
  answer = post("/api/subscribe", R"({"subject":"jobs","ack":true})");
  ASSERT_EQ(answer.status, 200U) << answer.body;
  EXPECT_EQ(answer.body, "{\"ack\":true,\"id\":\"" + id_of(answer) + "\",\"subject\":\"jobs\"}\n");
}

TEST_F(Ack, SubscribeWithAckAloneGetsTheDefaults) {
  const auto answer = post("/api/subscribe", R"({"subject":"orders","ack":true})");
  ASSERT_EQ(answer.status, 200U) << answer.body;
  const auto object = json::parse(answer.body).as_object();
  EXPECT_EQ(object.at("ack"), json::value(true));
  EXPECT_EQ(object.at("subject"), json::value("orders"));
  // The defaults, if the answer shows them.
  const std::vector<std::pair<std::string, std::int64_t>> defaults{
      {"ack_wait_ms", 30000}, {"max_in_flight", 1000}, {"max_deliveries", 0}};
  for (const auto& [key, value] : defaults) {
    if (const auto* shown = object.if_contains(key)) {
      EXPECT_EQ(*shown, json::value(value)) << key;
    }
  }
  EXPECT_EQ(object.if_contains("dead_letter"), nullptr) << answer.body;
}

TEST_F(Ack, EachRangeBoundIsAcceptedJustInsideAndRefusedJustOutside) {
  struct Bound {
    std::string field;
    std::vector<std::string> inside;
    std::vector<std::string> outside;
  };
  const std::vector<Bound> bounds{
      {"ack_wait_ms", {"1000", "43200000"}, {"999", "43200001", "0", "-1"}},
      {"max_deliveries", {"1", "1000"}, {"1001", "0", "-1"}},
      {"max_in_flight", {"1", "100000"}, {"0", "100001", "-1"}},
  };
  for (const auto& bound : bounds) {
    for (const auto& value : bound.inside) {
      const auto answer = post(
          "/api/subscribe", R"({"subject":"in","ack":true,")" + bound.field + "\":" + value + "}");
      EXPECT_EQ(answer.status, 200U) << bound.field << "=" << value << ": " << answer.body;
      EXPECT_NE(answer.body.find("\"" + bound.field + "\":" + value + ","), std::string::npos)
          << bound.field << "=" << value << " is not echoed: " << answer.body;
    }
    for (const auto& value : bound.outside) {
      const auto answer = post(
          "/api/subscribe", R"({"subject":"out","ack":true,")" + bound.field + "\":" + value + "}");
      EXPECT_EQ(answer.status, 400U) << bound.field << "=" << value;
      EXPECT_EQ(answer.body, invalid_ack_options) << bound.field << "=" << value;
    }
  }
  // Nothing was subscribed to "out".
  EXPECT_EQ(post("/api/publish", publish_body("out", "x")).status, 404U);
}

TEST_F(Ack, MisplacedAckOptionsAreRefusedAndSubscribeNothing) {
  const std::vector<std::string> misplaced{
      R"({"subject":"m","ack_wait_ms":1000})",
      R"({"subject":"m","max_deliveries":3})",
      R"({"subject":"m","max_in_flight":5})",
      R"({"subject":"m","max_deliveries":3,"dead_letter":"dlq"})",
      R"({"subject":"m","ack":false,"ack_wait_ms":1000})",
      R"({"subject":"m","ack":false,"max_in_flight":5})",
      R"({"subject":"m","group":"g","max_deliveries":2})",
      R"({"subject":"m","ack":true,"dead_letter":"dlq"})",
      R"({"subject":"m","ack":true,"max_deliveries":2,"dead_letter":"dlq.*"})",
      R"({"subject":"m","ack":true,"max_deliveries":2,"dead_letter":"dlq.>"})",
      R"({"subject":"m","ack":true,"max_deliveries":2,"dead_letter":">"})",
      R"({"subject":"m","ack":true,"max_deliveries":2,"dead_letter":""})",
      R"({"subject":"m","ack":true,"max_deliveries":2,"dead_letter":"a..b"})",
  };
  for (const auto& body : misplaced) {
    const auto answer = post("/api/subscribe", body);
    EXPECT_EQ(answer.status, 400U) << body;
    EXPECT_EQ(answer.body, invalid_ack_options) << body;
  }
  EXPECT_EQ(post("/api/publish", publish_body("m", "x")).status, 404U);
  EXPECT_EQ(total("subscriptions"), 0);
}

// §1: a known field of the wrong JSON type is an invalid body, ack options included.
TEST_F(Ack, AckOptionsOfTheWrongJsonTypeAreAnInvalidBody) {
  const std::vector<std::string> wrong{
      R"({"subject":"w","ack":"true"})",
      R"({"subject":"w","ack":1})",
      R"({"subject":"w","ack":true,"ack_wait_ms":"1000"})",
      R"({"subject":"w","ack":true,"max_deliveries":true})",
      R"({"subject":"w","ack":true,"max_deliveries":2,"dead_letter":5})",
      R"({"subject":"w","ack":true,"max_in_flight":[1]})",
  };
  for (const auto& body : wrong) {
    const auto answer = post("/api/subscribe", body);
    EXPECT_EQ(answer.status, 400U) << body;
    EXPECT_EQ(answer.body, invalid_body) << body;
  }
  EXPECT_EQ(total("subscriptions"), 0);
}

TEST_F(Ack, AckFalseIsAPlainSubscription) {
  const auto id = subscribe_with("plain", R"(,"ack":false)");
  publish("plain", "a");
  const auto answer = post("/api/fetch", fetch_body("plain", id));
  EXPECT_EQ(answer.body, fetched("plain", id, "\"a\""));
}

// ---- Fetch in ack mode ----

TEST_F(Ack, FetchHandsOutMessagesWithDeliveriesReceiptSeqAndPublishedSubject) {
  const auto id = subscribe_ack("orders.*");
  EXPECT_EQ(post("/api/fetch", fetch_body("orders.*", id)).body,
            messages_answer("orders.*", id, {}));
  publish("orders.eu", "a");
  publish("orders.us", "b<&>");
  publish("orders.eu", "c");
  const auto messages = fetch_messages("orders.*", id);
  ASSERT_EQ(messages.size(), 3U);
  EXPECT_EQ(data_of(messages), (std::vector<std::string>{"a", "b<&>", "c"}));
  EXPECT_EQ(messages[0].subject, "orders.eu");
  EXPECT_EQ(messages[1].subject, "orders.us");
  EXPECT_EQ(messages[2].subject, "orders.eu");
  EXPECT_LT(messages[0].seq, messages[1].seq);
  EXPECT_LT(messages[1].seq, messages[2].seq);
  EXPECT_EQ(deliveries_of(messages), (std::vector<std::size_t>{1, 1, 1}));
  const auto receipts = receipts_of(messages);
  EXPECT_EQ(std::set<std::string>(receipts.begin(), receipts.end()).size(), 3U);
  // In flight, not pending: a second fetch gets nothing.
  EXPECT_EQ(fetch_messages("orders.*", id).size(), 0U);
}

TEST_F(Ack, SeqIsBrokerWideAcrossSubjects) {
  const auto first = subscribe_ack("one");
  const auto second = subscribe_ack("two");
  publish("one", "a");
  publish("two", "b");
  publish("one", "c");
  const auto ones = fetch_messages("one", first);
  const auto twos = fetch_messages("two", second);
  ASSERT_EQ(ones.size(), 2U);
  ASSERT_EQ(twos.size(), 1U);
  EXPECT_LT(ones[0].seq, twos[0].seq);
  EXPECT_LT(twos[0].seq, ones[1].seq);
}

TEST_F(Ack, MaxAndEscapedDataInAnAckFetch) {
  const auto id = subscribe_ack("orders");
  publish("orders", "x<y");
  publish("orders", "2");
  const auto answer = post("/api/fetch", fetch_body("orders", id, R"(,"max":1)"));
  EXPECT_NE(answer.body.find("\"data\":\"x\\u003cy\""), std::string::npos) << answer.body;
  const auto messages = read_messages(answer, "orders", id);
  ASSERT_EQ(messages.size(), 1U);
  EXPECT_EQ(messages[0].data, "x<y");
}

TEST_F(Ack, MaxInFlightCapsWhatASubscriptionHoldsOut) {
  const auto id = subscribe_ack("orders", R"(,"max_in_flight":2)");
  for (const auto* data : {"a", "b", "c"}) publish("orders", data);
  const auto first = fetch_messages("orders", id, R"(,"max":10)");
  EXPECT_EQ(data_of(first), (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(first.size(), 2U);
  EXPECT_EQ(fetch_messages("orders", id, R"(,"max":10)").size(), 0U);
  expect_acked("orders", id, {first[0].receipt}, 1);
  const auto second = fetch_messages("orders", id, R"(,"max":10)");
  EXPECT_EQ(data_of(second), (std::vector<std::string>{"c"}));
}

TEST_F(Ack, MaxInFlightCapsAGroupAndAnyMemberMayAck) {
  const std::string options = R"(,"group":"g","max_in_flight":2)";
  const auto member_a = subscribe_ack("jobs", options);
  const auto member_b = subscribe_ack("jobs", options);
  for (const auto* data : {"a", "b", "c"}) publish("jobs", data);
  const auto held = fetch_messages("jobs", member_a, R"(,"max":10)");
  EXPECT_EQ(data_of(held), (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(held.size(), 2U);
  EXPECT_EQ(fetch_messages("jobs", member_b, R"(,"max":10)").size(), 0U);
  expect_acked("jobs", member_b, {held[1].receipt}, 1);
  EXPECT_EQ(data_of(fetch_messages("jobs", member_b)), (std::vector<std::string>{"c"}));
  // b's receipt is acked already, whoever sends it.
  expect_acked("jobs", member_a, {held[1].receipt, held[0].receipt}, 1, {held[1].receipt});
}

TEST_F(Ack, DefaultMaxInFlightIsOneThousand) {
  const auto id = subscribe_ack("bulk");
  std::vector<std::string> data;
  for (int n = 0; n < 1001; ++n) data.push_back("m" + std::to_string(n));
  const auto answer =
      post("/api/publish/batch", R"({"subject":"bulk","data":)" + json_strings(data) + "}");
  ASSERT_EQ(answer.status, 200U) << answer.body;
  EXPECT_EQ(fetch_messages("bulk", id, R"(,"max":5000)").size(), 1000U);
  EXPECT_EQ(fetch_messages("bulk", id).size(), 0U);
}

// ---- Ack, nack, extend ----

TEST_F(Ack, AckAnswersItsCountAndStaleReceiptsInInputOrder) {
  const auto id = subscribe_ack("orders");
  for (const auto* data : {"a", "b", "c"}) publish("orders", data);
  const auto held = receipts_of(fetch_messages("orders", id));
  ASSERT_EQ(held.size(), 3U);
  expect_acked("orders", id, {held[1]}, 1);
  expect_acked("orders", id, {held[2], held[1], held[0]}, 2, {held[1]});
  expect_acked("orders", id, {held[2], held[0], held[1]}, 0, {held[2], held[0], held[1]});
  // Acked is gone for good: no redelivery, nothing pending.
  EXPECT_EQ(fetch_messages("orders", id).size(), 0U);
}

TEST_F(Ack, NackMakesMessagesPendingAgainFirstAndInPublishOrder) {
  const auto id = subscribe_ack("orders");
  for (const auto* data : {"a", "b", "c", "d"}) publish("orders", data);
  const auto held = fetch_messages("orders", id, R"(,"max":3)");
  ASSERT_EQ(held.size(), 3U);
  expect_nacked("orders", id, {held[2].receipt, held[0].receipt}, 2);
  const auto again = fetch_messages("orders", id, R"(,"max":10)");
  EXPECT_EQ(data_of(again), (std::vector<std::string>{"a", "c", "d"}));
  EXPECT_EQ(deliveries_of(again), (std::vector<std::size_t>{2, 2, 1}));
  EXPECT_EQ(again[0].seq, held[0].seq);
  // The first deliveries' receipts are stale now, for nack and ack alike; b's is not.
  expect_nacked("orders", id, {held[0].receipt}, 0, {held[0].receipt});
  expect_acked("orders", id, {held[2].receipt, held[1].receipt}, 1, {held[2].receipt});
  expect_acked("orders", id, receipts_of(again), 3);
}

TEST_F(Ack, NackWithDelayMsKeepsTheMessageBackThatLong) {
  const auto id = subscribe_ack("orders");
  publish("orders", "a");
  const auto held = fetch_messages("orders", id);
  ASSERT_EQ(held.size(), 1U);
  const auto nacked = Clock::now();
  expect_nacked("orders", id, {held[0].receipt}, 1, {}, R"(,"delay_ms":1000)");
  EXPECT_EQ(fetch_messages("orders", id).size(), 0U);
  const auto again = fetch_messages("orders", id, R"(,"wait_ms":5000)", 15s);
  EXPECT_GE(Clock::now() - nacked, 1000ms);
  ASSERT_EQ(again.size(), 1U);
  EXPECT_EQ(again[0].data, "a");
  EXPECT_EQ(again[0].deliveries, 2U);
}

TEST_F(Ack, ANackWakesAWaitingFetch) {
  const auto id = subscribe_ack("orders");
  publish("orders", "a");
  const auto held = fetch_messages("orders", id);
  ASSERT_EQ(held.size(), 1U);
  HttpClient waiting(broker_->api_port());
  waiting.send_raw(post_request("/api/fetch", fetch_body("orders", id, R"(,"wait_ms":20000)")));
  expect_waiting(1);
  const auto nacked = Clock::now();
  expect_nacked("orders", id, {held[0].receipt}, 1);
  const auto again = read_messages(waiting.read_response(25s), "orders", id);
  EXPECT_LT(Clock::now() - nacked, 5s);
  ASSERT_EQ(again.size(), 1U);
  EXPECT_EQ(again[0].deliveries, 2U);
}

TEST_F(Ack, ExtendRestartsTheAckTimer) {
  const auto id = subscribe_ack("orders", R"(,"ack_wait_ms":2000)");
  publish("orders", "a");
  const auto delivered = Clock::now();
  const auto held = fetch_messages("orders", id);
  ASSERT_EQ(held.size(), 1U);
  idle_for(1000ms);
  const auto extended = Clock::now();
  auto answer = receipts_request("extend", "orders", id, {held[0].receipt});
  EXPECT_EQ(answer.body, receipts_answer("extended", 1, {}));
  idle_for(1300ms);
  ASSERT_GT(Clock::now() - delivered, 2000ms);
  // Past the first deadline, before the extended one: still in flight.
  EXPECT_EQ(fetch_messages("orders", id).size(), 0U);
  const auto again = fetch_messages("orders", id, R"(,"wait_ms":5000)", 15s);
  EXPECT_GE(Clock::now() - extended, 2000ms);
  ASSERT_EQ(again.size(), 1U);
  EXPECT_EQ(again[0].deliveries, 2U);
  answer = receipts_request("extend", "orders", id, {again[0].receipt, held[0].receipt});
  EXPECT_EQ(answer.body, receipts_answer("extended", 1, {held[0].receipt}));
}

TEST_F(Ack, WrongSubjectOrIdIsAnsweredAsForAFetch) {
  const auto id = subscribe_ack("orders");
  const auto other = subscribe_ack("other");
  publish("orders", "a");
  const auto held = receipts_of(fetch_messages("orders", id));
  ASSERT_EQ(held.size(), 1U);
  for (const std::string verb : {"ack", "nack", "extend"}) {
    auto answer = receipts_request(verb, "orders", "00000000-0000-4000-8000-000000000000", held);
    EXPECT_EQ(answer.status, 404U) << verb;
    EXPECT_EQ(answer.body, bad_id) << verb;
    answer = receipts_request(verb, "other", id, held);
    EXPECT_EQ(answer.status, 404U) << verb;
    EXPECT_EQ(answer.body, bad_id) << verb;
    answer = receipts_request(verb, "orders", other, held);
    EXPECT_EQ(answer.status, 404U) << verb;
    EXPECT_EQ(answer.body, bad_id) << verb;
    for (const std::string subject : {"", "orders..eu", "orders.*.>.x"}) {
      answer = receipts_request(verb, subject, id, held);
      EXPECT_EQ(answer.status, 400U) << verb << " " << subject;
      EXPECT_EQ(answer.body, invalid_subject) << verb << " " << subject;
    }
  }
  expect_acked("orders", id, held, 1);
}

TEST_F(Ack, AnotherUngroupedSubscriptionAcksNothingOfMine) {
  const auto mine = subscribe_ack("orders");
  const auto theirs = subscribe_ack("orders");
  publish("orders", "a");
  const auto held = receipts_of(fetch_messages("orders", mine));
  ASSERT_EQ(held.size(), 1U);
  const auto answer = receipts_request("ack", "orders", theirs, held);
  if (answer.status == 200U) {
    EXPECT_EQ(answer.body, receipts_answer("acked", 0, held));
  } else {
    EXPECT_EQ(answer.status / 100, 4U) << answer.body;
  }
  expect_acked("orders", mine, held, 1);
}

TEST_F(Ack, MalformedReceiptBodiesAreRefusedAndAckNothing) {
  const auto id = subscribe_ack("orders");
  publish("orders", "a");
  const auto held = receipts_of(fetch_messages("orders", id));
  ASSERT_EQ(held.size(), 1U);
  const std::string prefix = R"({"subject":"orders","id":")" + id + "\"";
  for (const std::string verb : {"ack", "nack", "extend"}) {
    for (const std::string& body :
         {prefix + R"(,"receipts":")" + held[0] + "\"}", prefix + R"(,"receipts":[1]})",
          prefix + R"(,"receipts":[null]})", prefix + R"(,"receipts":{"r":1}})",
          prefix + R"(,"receipts":[)" + quoted(held[0]) + ",[]]}", std::string("[]"),
          std::string("null"), std::string(""), std::string("{\"subject\":")}) {
      const auto answer = post("/api/" + verb, body);
      EXPECT_EQ(answer.status, 400U) << verb << " " << body;
      EXPECT_EQ(answer.body, invalid_body) << verb << " " << body;
    }
  }
  const auto delayed = post("/api/nack", prefix + R"(,"receipts":[],"delay_ms":"5"})");
  EXPECT_EQ(delayed.status, 400U);
  EXPECT_EQ(delayed.body, invalid_body);
  // A body without receipts is not clear from §9: it must at least ack nothing.
  const auto missing = post("/api/ack", prefix + "}");
  EXPECT_LT(missing.status, 500U) << missing.body;
  // Receipts no fetch handed out name no delivery: they ack nothing, stale or refused.
  for (const std::string& garbage :
       std::vector<std::string>{"", "nope", "0", std::string(300, 'r')}) {
    const auto answer = receipts_request("ack", "orders", id, {garbage});
    if (answer.status == 200U) {
      EXPECT_EQ(answer.body, receipts_answer("acked", 0, {garbage}));
    } else {
      EXPECT_EQ(answer.status, 400U) << answer.body;
      EXPECT_EQ(answer.body, invalid_body);
    }
  }
  expect_acked("orders", id, held, 1);
}

// ---- Redelivery ----

TEST_F(Ack, AMessageNotAckedWithinAckWaitIsRedeliveredAndOldReceiptsGoStale) {
  const auto id = subscribe_ack("orders", R"(,"ack_wait_ms":1000)");
  publish("orders", "a");
  publish("orders", "b");
  const auto sent = Clock::now();
  const auto first = fetch_messages("orders", id);
  ASSERT_EQ(first.size(), 2U);
  const auto again = fetch_messages("orders", id, R"(,"wait_ms":5000)", 15s);
  EXPECT_GE(Clock::now() - sent, 1000ms);
  EXPECT_EQ(data_of(again), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(deliveries_of(again), (std::vector<std::size_t>{2, 2}));
  ASSERT_EQ(again.size(), 2U);
  EXPECT_EQ(again[0].seq, first[0].seq);
  EXPECT_NE(again[0].receipt, first[0].receipt);
  expect_acked("orders", id, receipts_of(first), 0, receipts_of(first));
  expect_acked("orders", id, receipts_of(again), 2);
}

TEST_F(Ack, RedeliveredMessagesGoOutBeforeNewOnes) {
  const auto id = subscribe_ack("orders", R"(,"ack_wait_ms":1000)");
  const auto clock = subscribe_ack("clock", R"(,"ack_wait_ms":1000)");
  publish("orders", "a");
  ASSERT_EQ(fetch_messages("orders", id).size(), 1U);
  publish("orders", "b");
  publish("clock", "tick");
  // The clock's message went out after a: once it is back, a's deadline has passed too.
  ASSERT_EQ(fetch_messages("clock", clock).size(), 1U);
  ASSERT_EQ(fetch_messages("clock", clock, R"(,"wait_ms":5000)", 15s).size(), 1U);
  const auto next = fetch_messages("orders", id, R"(,"max":10)");
  EXPECT_EQ(data_of(next), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(deliveries_of(next), (std::vector<std::size_t>{2, 1}));
}

TEST_F(Ack, AWaitingFetchWakesWhenAMessageTimesOut) {
  const auto id = subscribe_ack("orders", R"(,"ack_wait_ms":1000)");
  publish("orders", "a");
  ASSERT_EQ(fetch_messages("orders", id).size(), 1U);
  const auto again = fetch_messages("orders", id, R"(,"wait_ms":20000)", 25s);
  ASSERT_EQ(again.size(), 1U);
  EXPECT_EQ(again[0].deliveries, 2U);
}

// ---- max_deliveries and dead letters ----

TEST_F(Ack, AtMaxDeliveriesANackedMessageGoesToTheDeadLetterSubject) {
  const auto id = subscribe_ack("orders", R"(,"max_deliveries":2,"dead_letter":"orders.dead")");
  const auto dead = subscribe_with("orders.dead", "");
  const double before = metric_sum(metrics(), "gophermq_dead_letter_messages_total");
  publish("orders", "poison");
  publish("orders", "fine");
  auto held = fetch_messages("orders", id, R"(,"max":1)");
  ASSERT_EQ(held.size(), 1U);
  expect_nacked("orders", id, receipts_of(held), 1);
  held = fetch_messages("orders", id, R"(,"max":1)");
  ASSERT_EQ(held.size(), 1U);
  EXPECT_EQ(held[0].deliveries, 2U);
  expect_nacked("orders", id, receipts_of(held), 1);
  EXPECT_EQ(post("/api/fetch", fetch_body("orders.dead", dead)).body,
            fetched("orders.dead", dead, "\"poison\""));
  const auto rest = fetch_messages("orders", id, R"(,"max":10)");
  EXPECT_EQ(data_of(rest), (std::vector<std::string>{"fine"}));
  EXPECT_EQ(metric_sum(metrics(), "gophermq_dead_letter_messages_total"), before + 1);
}

TEST_F(Ack, AtMaxDeliveriesATimedOutMessageGoesToTheDeadLetterSubject) {
  const auto id = subscribe_ack("orders", R"(,"ack_wait_ms":1000,"max_deliveries":1,)"
                                          R"("dead_letter":"dlq")");
  const auto dead = subscribe_with("dlq", "");
  publish("orders", "slow");
  ASSERT_EQ(fetch_messages("orders", id).size(), 1U);
  const auto answer = post("/api/fetch", fetch_body("dlq", dead, R"(,"wait_ms":5000)"), 15s);
  EXPECT_EQ(answer.body, fetched("dlq", dead, "\"slow\""));
  EXPECT_EQ(fetch_messages("orders", id).size(), 0U);
}

TEST_F(Ack, ADeadLetterIsAnOrdinaryPublishToAckModeSubscribersToo) {
  const auto id = subscribe_ack("orders", R"(,"max_deliveries":1,"dead_letter":"dlq")");
  const auto dead = subscribe_ack("dlq");
  publish("orders", "poison");
  const auto held = fetch_messages("orders", id);
  ASSERT_EQ(held.size(), 1U);
  expect_nacked("orders", id, receipts_of(held), 1);
  const auto letters = fetch_messages("dlq", dead);
  ASSERT_EQ(letters.size(), 1U);
  EXPECT_EQ(letters[0].data, "poison");
  EXPECT_EQ(letters[0].subject, "dlq");
  EXPECT_EQ(letters[0].deliveries, 1U);
}

TEST_F(Ack, ADeadLetterWithoutSubscribersIsDroppedAndCounted) {
  const auto id = subscribe_ack("orders", R"(,"max_deliveries":1,"dead_letter":"nobody")");
  const double before = metric_sum(metrics(), "gophermq_dead_letter_messages_total");
  publish("orders", "poison");
  const auto held = fetch_messages("orders", id);
  ASSERT_EQ(held.size(), 1U);
  expect_nacked("orders", id, receipts_of(held), 1);
  EXPECT_EQ(fetch_messages("orders", id).size(), 0U);
  EXPECT_EQ(metric_sum(metrics(), "gophermq_dead_letter_messages_total"), before + 1);
  EXPECT_EQ(total("pending_messages"), 0);
}

TEST_F(Ack, WithoutADeadLetterSubjectMaxDeliveriesDropsTheMessage) {
  const auto id = subscribe_ack("orders", R"(,"max_deliveries":1)");
  publish("orders", "poison");
  const auto held = fetch_messages("orders", id);
  ASSERT_EQ(held.size(), 1U);
  expect_nacked("orders", id, receipts_of(held), 1);
  EXPECT_EQ(fetch_messages("orders", id).size(), 0U);
  EXPECT_NE(metrics().find("\n" + dropped("max_deliveries", 1)), std::string::npos);
  EXPECT_EQ(total("pending_messages"), 0);
}

// ---- In flight, limits and unsubscribe ----

class AckLimits : public Ack {
 protected:
  void SetUp() override { start({"--broker.max-pending=2"}); }
};

TEST_F(AckLimits, InFlightMessagesCountTowardMaxPendingUntilAcked) {
  const auto id = subscribe_ack("orders");
  publish("orders", "a");
  publish("orders", "b");
  const auto held = fetch_messages("orders", id);
  ASSERT_EQ(held.size(), 2U);
  auto answer = post("/api/publish", publish_body("orders", "c"));
  EXPECT_EQ(answer.status, 429U);
  EXPECT_EQ(answer.body, "{\"message\":\"broker overflow\"}\n");
  expect_acked("orders", id, {held[0].receipt}, 1);
  publish("orders", "c");
}

TEST_F(AckLimits, UnsubscribeDropsInFlightMessages) {
  const auto id = subscribe_ack("orders");
  publish("orders", "a");
  publish("orders", "b");
  const auto held = fetch_messages("orders", id);
  ASSERT_EQ(held.size(), 2U);
  const auto answer = post("/api/unsubscribe", fetch_body("orders", id));
  EXPECT_EQ(answer.body, status_ok);
  EXPECT_EQ(total("pending_messages"), 0);
  const auto next = subscribe_ack("orders");
  publish("orders", "c");
  publish("orders", "d");
  const auto stale = receipts_request("ack", "orders", id, receipts_of(held));
  EXPECT_EQ(stale.status, 404U);
  EXPECT_EQ(stale.body, bad_id);
  EXPECT_EQ(data_of(fetch_messages("orders", next)), (std::vector<std::string>{"c", "d"}));
}

// ---- "meta": true ----

TEST_F(Ack, MetaOnAPlainFetchAnswersMessagesWithoutReceipts) {
  const auto id = subscribe_with("orders.*", "");
  publish("orders.eu", "a");
  publish("orders.us", "b");
  const auto messages = fetch_messages("orders.*", id, R"(,"meta":true)");
  ASSERT_EQ(messages.size(), 2U);
  EXPECT_EQ(messages[0].subject, "orders.eu");
  EXPECT_EQ(messages[1].subject, "orders.us");
  EXPECT_LT(messages[0].seq, messages[1].seq);
  EXPECT_EQ(deliveries_of(messages), (std::vector<std::size_t>{0, 0}));
  // A plain fetch consumes, meta or not.
  EXPECT_EQ(post("/api/fetch", fetch_body("orders.*", id, R"(,"meta":true)")).body,
            messages_answer("orders.*", id, {}));
  publish("orders.eu", "c");
  EXPECT_EQ(post("/api/fetch", fetch_body("orders.*", id, R"(,"meta":false)")).body,
            fetched("orders.*", id, "\"c\""));
  const auto wrong = post("/api/fetch", fetch_body("orders.*", id, R"(,"meta":"yes")"));
  EXPECT_EQ(wrong.status, 400U);
  EXPECT_EQ(wrong.body, invalid_body);
}

TEST_F(Ack, MetaOnAnAckFetchChangesNothing) {
  const auto id = subscribe_ack("orders");
  publish("orders", "a");
  const auto messages = fetch_messages("orders", id, R"(,"meta":true)");
  ASSERT_EQ(messages.size(), 1U);
  EXPECT_EQ(messages[0].deliveries, 1U);
  expect_acked("orders", id, receipts_of(messages), 1);
}

// ---- Idempotent publish ----

const std::string not_duplicate = "{\"duplicate\":false,\"status\":\"ok\"}\n";
const std::string duplicate = "{\"duplicate\":true,\"status\":\"ok\"}\n";

TEST_F(Ack, APublishWithAMsgIdSeenBeforeIsNotStoredAgain) {
  const auto id = subscribe_with("orders", "");
  const auto other = subscribe_with("other", "");
  EXPECT_EQ(post("/api/publish", R"({"subject":"orders","data":"a","msg_id":"k1"})").body,
            not_duplicate);
  EXPECT_EQ(post("/api/publish", R"({"subject":"orders","data":"a2","msg_id":"k1"})").body,
            duplicate);
  EXPECT_EQ(post("/api/publish", R"({"subject":"orders","data":"b","msg_id":"k2"})").body,
            not_duplicate);
  // Per subject: the same msg_id elsewhere is a new message.
  EXPECT_EQ(post("/api/publish", R"({"subject":"other","data":"c","msg_id":"k1"})").body,
            not_duplicate);
  EXPECT_EQ(post("/api/publish", R"({"subject":"orders","data":"d"})").body, status_ok);
  EXPECT_EQ(post("/api/fetch", fetch_body("orders", id)).body,
            fetched("orders", id, R"("a","b","d")"));
  EXPECT_EQ(post("/api/fetch", fetch_body("other", other)).body, fetched("other", other, "\"c\""));
  // Consumed does not mean forgotten: still a duplicate within the window.
  EXPECT_EQ(post("/api/publish", R"({"subject":"orders","data":"a3","msg_id":"k1"})").body,
            duplicate);
  EXPECT_EQ(post("/api/fetch", fetch_body("orders", id)).body, fetched("orders", id, ""));
}

TEST_F(Ack, BatchMsgIdsCountDuplicatesAndStoreTheRestInOrder) {
  const auto id = subscribe_with("orders", "");
  EXPECT_EQ(
      post("/api/publish/batch", R"({"subject":"orders","data":["a","b"],"msg_ids":["ka","kb"]})")
          .body,
      "{\"count\":2,\"duplicates\":0,\"status\":\"ok\"}\n");
  EXPECT_EQ(post("/api/publish/batch",
                 R"({"subject":"orders","data":["b","c","a","d"],"msg_ids":["kb","kc","ka","kd"]})")
                .body,
            "{\"count\":2,\"duplicates\":2,\"status\":\"ok\"}\n");
  EXPECT_EQ(post("/api/publish/batch", R"({"subject":"orders","data":["e"]})").body,
            "{\"count\":1,\"status\":\"ok\"}\n");
  EXPECT_EQ(post("/api/publish", R"({"subject":"orders","data":"x","msg_id":"kc"})").body,
            duplicate);
  EXPECT_EQ(post("/api/fetch", fetch_body("orders", id)).body,
            fetched("orders", id, R"("a","b","c","d","e")"));
}

TEST_F(Ack, MsgIdLengthAndTypeAreChecked) {
  const auto id = subscribe_with("orders", "");
  const std::string longest(128, 'k');
  EXPECT_EQ(post("/api/publish", R"({"subject":"orders","data":"a","msg_id":"k"})").body,
            not_duplicate);
  EXPECT_EQ(
      post("/api/publish", R"({"subject":"orders","data":"b","msg_id":")" + longest + "\"}").body,
      not_duplicate);
  const std::vector<std::string> refused{
      R"({"subject":"orders","data":"c","msg_id":""})",
      R"({"subject":"orders","data":"c","msg_id":")" + longest + "k\"}",
      R"({"subject":"orders","data":"c","msg_id":7})",
      R"({"subject":"orders","data":["c"],"msg_ids":[""]})",
      R"({"subject":"orders","data":["c"],"msg_ids":[")" + longest + "k\"]}",
      R"({"subject":"orders","data":["c"],"msg_ids":"k"})",
      R"({"subject":"orders","data":["c"],"msg_ids":[1]})",
      R"({"subject":"orders","data":["c","d"],"msg_ids":["kx"]})",
      R"({"subject":"orders","data":["c"],"msg_ids":["ky","kz"]})",
  };
  for (const auto& body : refused) {
    const std::string target =
        body.find("msg_ids") == std::string::npos ? "/api/publish" : "/api/publish/batch";
    const auto answer = post(target, body);
    EXPECT_EQ(answer.status, 400U) << body;
    EXPECT_EQ(answer.body, invalid_body) << body;
  }
  const auto async = post("/api/publish/async", R"({"subject":"orders","data":"c","msg_id":""})");
  EXPECT_EQ(async.status, 400U);
  EXPECT_EQ(async.body, invalid_body);
  EXPECT_EQ(post("/api/fetch", fetch_body("orders", id)).body, fetched("orders", id, R"("a","b")"));
}

TEST_F(Ack, AsyncPublishesWithAMsgIdAreStoredOnce) {
  const auto id = subscribe_with("orders", "");
  for (const auto* data : {"a", "a-again"}) {
    const auto answer = post("/api/publish/async", R"({"subject":"orders","data":")" +
                                                       std::string(data) + R"(","msg_id":"k1"})");
    EXPECT_EQ(answer.status, 200U) << answer.body;
    EXPECT_NE(answer.body.find("\"duplicate\":"), std::string::npos) << answer.body;
  }
  EXPECT_EQ(post("/api/publish/async", R"({"subject":"orders","data":"end"})").body, status_ok);
  // One connection's async publishes arrive in order: once "end" is in, both k1s were handled.
  std::vector<std::string> seen;
  const auto deadline = Clock::now() + 10s;
  while (Clock::now() < deadline && (seen.empty() || seen.back() != "end")) {
    const auto answer = post("/api/fetch", fetch_body("orders", id, R"(,"wait_ms":1000)"));
    const json::value parsed = json::parse(answer.body);
    for (const auto& item : parsed.as_object().at("data").as_array()) {
      seen.emplace_back(item.as_string());
    }
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "end"}));
  EXPECT_EQ(post("/api/publish", R"({"subject":"orders","data":"x","msg_id":"k1"})").body,
            duplicate);
}

TEST_F(Ack, ADedupeWindowOfZeroTurnsDeduplicationOff) {
  start({"--broker.dedupe-window=0"});
  const auto id = subscribe_with("orders", "");
  for (const auto* data : {"a", "b"}) {
    const auto answer = post("/api/publish", R"({"subject":"orders","data":")" + std::string(data) +
                                                 R"(","msg_id":"k1"})");
    EXPECT_EQ(answer.status, 200U) << answer.body;
  }
  EXPECT_EQ(post("/api/fetch", fetch_body("orders", id)).body, fetched("orders", id, R"("a","b")"));
}

TEST_F(Ack, AMsgIdIsForgottenOnceTheDedupeWindowHasPassed) {
  start({"--broker.dedupe-window=1s"});
  const auto id = subscribe_with("orders", "");
  const auto first = Clock::now();
  EXPECT_EQ(post("/api/publish", R"({"subject":"orders","data":"a","msg_id":"k1"})").body,
            not_duplicate);
  EXPECT_EQ(post("/api/publish", R"({"subject":"orders","data":"b","msg_id":"k1"})").body,
            duplicate);
  idle_for(1500ms);
  ASSERT_GT(Clock::now() - first, 1000ms);
  EXPECT_EQ(post("/api/publish", R"({"subject":"orders","data":"c","msg_id":"k1"})").body,
            not_duplicate);
  EXPECT_EQ(post("/api/fetch", fetch_body("orders", id)).body, fetched("orders", id, R"("a","c")"));
}

// ---- With storage on ----

class AckStorage : public Ack {
 protected:
  void SetUp() override { start({}, true); }
};

TEST_F(AckStorage, ARestartKeepsDeliveryCountsAndMakesInFlightPending) {
  const auto id = subscribe_ack("orders", R"(,"max_in_flight":10)");
  publish("orders", "a");
  publish("orders", "b");
  publish("orders", "c");
  auto held = fetch_messages("orders", id);
  ASSERT_EQ(held.size(), 3U);
  expect_acked("orders", id, {held[2].receipt}, 1);
  expect_nacked("orders", id, {held[0].receipt}, 1);
  held = fetch_messages("orders", id, R"(,"max":1)");
  ASSERT_EQ(held.size(), 1U);
  EXPECT_EQ(held[0].deliveries, 2U);
  kill_and_restart();
  // a was delivered twice, b once; both were in flight (ack_wait 30 s) and are pending at once.
  const auto after = fetch_messages("orders", id, R"(,"max":10)");
  EXPECT_EQ(data_of(after), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(deliveries_of(after), (std::vector<std::size_t>{3, 2}));
  expect_acked("orders", id, receipts_of(after), 2);
  kill_and_restart();
  EXPECT_EQ(fetch_messages("orders", id).size(), 0U);
}

TEST_F(AckStorage, ACrashLoopCannotResetDeliveriesPastMaxDeliveries) {
  const auto id = subscribe_ack("orders", R"(,"max_deliveries":2,"dead_letter":"dlq")");
  const auto dead = subscribe_with("dlq", "");
  publish("orders", "poison");
  for (std::size_t delivery = 1; delivery <= 2; ++delivery) {
    const auto held = fetch_messages("orders", id);
    ASSERT_EQ(held.size(), 1U);
    EXPECT_EQ(held[0].deliveries, delivery);
    kill_and_restart();
  }
  // Twice delivered, twice in flight at a crash: the third time is past max_deliveries.
  EXPECT_EQ(fetch_messages("orders", id).size(), 0U);
  EXPECT_EQ(post("/api/fetch", fetch_body("dlq", dead, R"(,"wait_ms":5000)"), 15s).body,
            fetched("dlq", dead, "\"poison\""));
}

TEST_F(AckStorage, AMsgIdIsStillADuplicateAfterARestart) {
  const auto id = subscribe_with("orders", "");
  EXPECT_EQ(post("/api/publish", R"({"subject":"orders","data":"a","msg_id":"k1"})").body,
            not_duplicate);
  EXPECT_EQ(
      post("/api/publish/batch", R"({"subject":"orders","data":["b"],"msg_ids":["k2"]})").body,
      "{\"count\":1,\"duplicates\":0,\"status\":\"ok\"}\n");
  EXPECT_EQ(post("/api/fetch", fetch_body("orders", id)).body, fetched("orders", id, R"("a","b")"));
  kill_and_restart();
  EXPECT_EQ(post("/api/publish", R"({"subject":"orders","data":"a","msg_id":"k1"})").body,
            duplicate);
  EXPECT_EQ(
      post("/api/publish/batch", R"({"subject":"orders","data":["b","c"],"msg_ids":["k2","k3"]})")
          .body,
      "{\"count\":1,\"duplicates\":1,\"status\":\"ok\"}\n");
  EXPECT_EQ(post("/api/fetch", fetch_body("orders", id)).body, fetched("orders", id, "\"c\""));
}

TEST_F(AckStorage, AnAckSurvivesARestart) {
  const auto id = subscribe_ack("orders");
  publish("orders", "a");
  publish("orders", "b");
  const auto held = fetch_messages("orders", id);
  ASSERT_EQ(held.size(), 2U);
  expect_acked("orders", id, {held[0].receipt}, 1);
  kill_and_restart();
  const auto after = fetch_messages("orders", id);
  EXPECT_EQ(data_of(after), (std::vector<std::string>{"b"}));
  EXPECT_EQ(deliveries_of(after), (std::vector<std::size_t>{2}));
}

}  // namespace
}  // namespace gophermq::test
