// Issue 15's total-queue check under faults: publishers with msg_ids that retry every request
// that failed or went unanswered, the members of an ack-mode group that ack, ack late, nack, stall
// past ack_wait_ms and crash mid-batch, and the broker (storage on) killed with SIGKILL and
// restarted several times. Drained at the end, the AckQueue checker judges the whole history.
//
// GOPHERMQ_ACK_FAULT_CYCLES sets the number of kill cycles (the recorded runs use 100) and
// GOPHERMQ_FAULT_SEED replays a run; the test prints the seed it used.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json/parse.hpp>
#include <iostream>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "support/ack_queue.hpp"
#include "support/broker_process.hpp"
#include "support/http_client.hpp"
#include "support/kill_cycles.hpp"
#include "support/temp_files.hpp"

namespace gophermq::test {
namespace {
namespace json = boost::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::size_t max_deliveries = 4;
constexpr auto ack_wait = 1000ms;
const std::string subject = "work";
const std::string dead_subject = "work.dead";

std::string json_strings(const std::vector<std::string>& texts) {
  std::string list = "[";
  for (const auto& text : texts) list += (list.size() > 1 ? ",\"" : "\"") + text + "\"";
  return list + "]";
}

std::string receipts_body(const std::string& id, const std::vector<std::string>& receipts) {
  return R"({"subject":")" + subject + R"(","id":")" + id + R"(","receipts":)" +
         json_strings(receipts) + "}";
}

struct Fetched {
  std::string msg_id;
  std::uint64_t seq = 0;
  std::size_t deliveries = 0;
  std::string receipt;
};

// The messages of an ack-mode fetch answer (data is the msg_id); a failure when it has none.
std::vector<Fetched> messages_of(const HttpResponse& answer) {
  std::vector<Fetched> messages;
  const json::value parsed = json::parse(answer.body);
  const auto* list = parsed.as_object().if_contains("messages");
  if (list == nullptr) throw std::runtime_error("not an ack-mode answer: " + answer.body);
  for (const auto& item : list->as_array()) {
    const auto& entry = item.as_object();
    messages.push_back({std::string(entry.at("data").as_string()),
                        entry.at("seq").to_number<std::uint64_t>(),
                        entry.at("deliveries").to_number<std::size_t>(),
                        std::string(entry.at("receipt").as_string())});
  }
  return messages;
}

// Records an ack or nack request and its answer in the history.
void acknowledge(HttpClient& client, AckQueue& history, const std::string& verb,
                 const std::string& id, const std::vector<std::string>& receipts) {
  HttpResponse answer;
  const bool ack = verb == "ack";
  try {
    answer = client.post("/api/" + verb, receipts_body(id, receipts), 5s);
  } catch (const RequestFailed&) {
    ack ? history.ack(receipts, Outcome::unknown) : history.nack(receipts, Outcome::unknown);
    throw;
  }
  if (answer.status != 200) {
    ADD_FAILURE() << verb << ": " << answer.status << " " << answer.body;
    ack ? history.ack(receipts, Outcome::refused) : history.nack(receipts, Outcome::refused);
    return;
  }
  const auto object = json::parse(answer.body).as_object();
  std::vector<std::string> stale;
  for (const auto& receipt : object.at("stale").as_array()) stale.emplace_back(receipt.as_string());
  const auto count = object.at(ack ? "acked" : "nacked").to_number<std::size_t>();
  ack ? history.ack(receipts, Outcome::ok, count, stale)
      : history.nack(receipts, Outcome::ok, count, stale);
}

// The publishers and the group's members against whichever broker runs now. A worker's request
// cut by a kill is recorded as unknown and the worker waits for the next broker.
class Load {
 public:
  Load(AckQueue& history, std::vector<std::string> members, std::uint64_t seed)
      : history_(history), members_(std::move(members)), pending_(2) {
    std::mt19937_64 seeds(seed);
    for (std::size_t publisher = 0; publisher < pending_.size(); ++publisher) {
      cycles_.add_worker([this, publisher, counter = std::size_t{0},
                          random = std::mt19937_64(seeds())](std::uint16_t port) mutable {
        publishes(port, publisher, counter, random);
      });
    }
    for (const auto& member : members_) {
      cycles_.add_worker([this, member, late = std::vector<Held>(),
                          random = std::mt19937_64(seeds())](std::uint16_t port) mutable {
        consumes(port, member, late, random);
      });
    }
  }

  Load(const Load&) = delete;
  Load& operator=(const Load&) = delete;

  // One kill cycle on `broker` once the workers got `answers` answers and at least `least`
  // passed, so that stalled messages reach their ack_wait_ms within the cycle.
  void cycle(BrokerProcess& broker, std::size_t answers, std::chrono::milliseconds least) {
    cycles_.cycle(broker, answers, least);
  }

  // Publishes what the publishers were retrying when the last broker was killed.
  void finish_publishes(HttpClient& client) {
    for (auto& pending : pending_) {
      if (!pending.empty()) publish(client, pending);
    }
  }

 private:
  struct Held {
    std::vector<std::string> receipts;
    Clock::time_point fetched;
  };

  static std::string publish_request(const std::vector<std::string>& msg_ids) {
    return msg_ids.size() == 1
               ? post_request("/api/publish", R"({"subject":")" + subject + R"(","data":")" +
                                                  msg_ids[0] + R"(","msg_id":")" + msg_ids[0] +
                                                  "\"}")
               : post_request("/api/publish/batch", R"({"subject":")" + subject + R"(","data":)" +
                                                        json_strings(msg_ids) + R"(,"msg_ids":)" +
                                                        json_strings(msg_ids) + "}");
  }

  // One publish (a batch when there are several msg_ids), retried with the same msg_ids until
  // answered 200; a refusal that a retry cannot cure ends it.
  void publish(HttpClient& client, std::vector<std::string>& msg_ids) {
    for (int attempt = 0; !msg_ids.empty(); ++attempt) {
      HttpResponse answer;
      try {
        client.send_raw(publish_request(msg_ids), 5s);
        answer = client.read_response(5s);
      } catch (const RequestFailed&) {
        for (const auto& msg_id : msg_ids) history_.publish(msg_id, Outcome::unknown);
        throw;
      }
      const Outcome outcome = answer.status == 200 ? Outcome::ok : Outcome::refused;
      EXPECT_EQ(answer.status, 200U) << answer.body;
      for (const auto& msg_id : msg_ids) history_.publish(msg_id, outcome);
      cycles_.answered();
      const bool retry = answer.status == 429 || answer.status == 503 || answer.status == 507;
      if (outcome == Outcome::ok || !retry || attempt == 100) msg_ids.clear();
    }
  }

  // Publishes new messages; now and then gives up waiting for an answer (drops the connection
  // right after sending, as a client that timed out) and retries on a new one, so the broker
  // sees the same msg_ids twice.
  void publishes(std::uint16_t port, std::size_t publisher, std::size_t& counter,
                 std::mt19937_64& random) {
    std::optional<HttpClient> client(std::in_place, port);
    auto& pending = pending_[publisher];
    while (cycles_.running()) {
      if (pending.empty()) {
        const std::size_t count =
            publisher == 0 ? 1 : std::uniform_int_distribution<std::size_t>(1, 3)(random);
        for (std::size_t at = 0; at < count; ++at) {
          pending.push_back("p" + std::to_string(publisher) + "-" + std::to_string(counter++));
        }
      }
      if (random() % 10 == 0) {
        client->send_raw(publish_request(pending), 5s);
        client->abort();
        for (const auto& msg_id : pending) history_.publish(msg_id, Outcome::unknown);
        client.emplace(port);
      }
      publish(*client, pending);
    }
  }

  // Fetches and then, at random: acks, nacks, acks later (after ack_wait_ms, so the ack may be
  // stale), stalls (never acks: the message times out), or crashes (drops the connection).
  void consumes(std::uint16_t port, const std::string& member, std::vector<Held>& late,
                std::mt19937_64& random) {
    std::optional<HttpClient> client(std::in_place, port);
    while (cycles_.running()) {
      const std::size_t max = std::uniform_int_distribution<std::size_t>(1, 5)(random);
      HttpResponse answer;
      try {
        answer = client->post("/api/fetch",
                              R"({"subject":")" + subject + R"(","id":")" + member + R"(","max":)" +
                                  std::to_string(max) + R"(,"wait_ms":50})",
                              5s);
      } catch (const RequestFailed&) {
        history_.fetch_unknown(max);
        throw;
      }
      ASSERT_EQ(answer.status, 200U) << answer.body;
      std::vector<std::string> receipts;
      for (const auto& message : messages_of(answer)) {
        history_.deliver(message.msg_id, message.seq, message.deliveries, message.receipt);
        receipts.push_back(message.receipt);
      }
      cycles_.answered();
      while (!late.empty() && Clock::now() - late.front().fetched > ack_wait + 200ms) {
        acknowledge(*client, history_, "ack", member, late.front().receipts);
        late.erase(late.begin());
      }
      if (receipts.empty()) continue;
      const auto choice = std::uniform_int_distribution<int>(0, 99)(random);
      if (choice < 60) {
        acknowledge(*client, history_, "ack", member, receipts);
      } else if (choice < 72) {
        acknowledge(*client, history_, "nack", member, receipts);
      } else if (choice < 82) {
        late.push_back({receipts, Clock::now()});
      } else if (choice < 90) {
        continue;
      } else {
        client->abort();
        client.emplace(port);
      }
    }
  }

  AckQueue& history_;
  std::vector<std::string> members_;
  std::vector<std::vector<std::string>> pending_;  // per publisher: msg_ids not yet answered 200
  KillCycles cycles_;                              // last: its workers use the members above
};

TEST(AckFaults, KillNineUnderAckLoadAcksOrDeadLettersEveryAnsweredMessageOnce) {
  TempDir dir;
  const auto arguments = isolated_arguments(
      {"--storage.dir=" + dir.string(), "--storage.fsync=always", "--storage.file-bytes=65536"});
  const auto seed = fault_seed();
  std::mt19937_64 random(seed);

  std::vector<std::string> members;
  std::string dead_id;
  {
    BrokerProcess broker(arguments);
    HttpClient client(broker.api_port());
    for (int member = 0; member < 3; ++member) {
      const auto answer = client.post(
          "/api/subscribe", R"({"subject":")" + subject +
                                R"(","group":"g","ack":true,"ack_wait_ms":1000,"max_deliveries":)" +
                                std::to_string(max_deliveries) + R"(,"dead_letter":")" +
                                dead_subject + R"(","max_in_flight":50})");
      ASSERT_EQ(answer.status, 200U) << answer.body;
      ASSERT_NE(answer.body.find("\"ack\":true"), std::string::npos)
          << "not an ack-mode subscription: " << answer.body;
      members.push_back(id_of(answer));
    }
    const auto answer = client.post("/api/subscribe", R"({"subject":")" + dead_subject + "\"}");
    ASSERT_EQ(answer.status, 200U) << answer.body;
    dead_id = id_of(answer);
    broker.send_signal(SIGTERM);
    ASSERT_EQ(broker.wait_for_exit(), 0) << broker.log();
  }

  AckQueue history(max_deliveries);
  const std::size_t cycles = fault_setting("GOPHERMQ_ACK_FAULT_CYCLES", 4);
  {
    Load load(history, members, seed);
    for (std::size_t cycle = 0; cycle < cycles && !testing::Test::HasFailure(); ++cycle) {
      BrokerProcess broker(arguments);
      const auto answers = std::uniform_int_distribution<std::size_t>(50, 300)(random);
      const auto least =
          std::chrono::milliseconds(std::uniform_int_distribution<int>(200, 2500)(random));
      load.cycle(broker, answers, least);
    }
    ASSERT_FALSE(testing::Test::HasFailure());

    // Drained on a broker that recovered: what was in flight at the last kill is pending again.
    BrokerProcess broker(arguments);
    HttpClient client(broker.api_port());
    load.finish_publishes(client);
    while (true) {
      const auto answer = client.post("/api/fetch", R"({"subject":")" + subject + R"(","id":")" +
                                                        members[0] + R"(","max":50})");
      ASSERT_EQ(answer.status, 200U) << answer.body;
      std::vector<std::string> receipts;
      for (const auto& message : messages_of(answer)) {
        history.deliver(message.msg_id, message.seq, message.deliveries, message.receipt);
        receipts.push_back(message.receipt);
      }
      if (receipts.empty()) break;
      acknowledge(client, history, "ack", members[0], receipts);
    }
    const auto answer = client.post(
        "/api/fetch", R"({"subject":")" + dead_subject + R"(","id":")" + dead_id + R"("})");
    ASSERT_EQ(answer.status, 200U) << answer.body;
    const json::value letters = json::parse(answer.body);
    for (const auto& item : letters.as_object().at("data").as_array()) {
      history.dead_letter(std::string(item.as_string()));
    }
    const auto stats = json::parse(client.get("/api/stats").body).as_object();
    EXPECT_EQ(stats.at("totals").as_object().at("pending_messages").as_int64(), 0);
  }
  const auto result = history.check();
  std::cout << "ack mode, kill -9, " << cycles << " cycles: " << result.describe() << "\n";
  EXPECT_TRUE(result.errors.empty()) << result.describe();
  EXPECT_GT(result.answered, cycles * 10);
}

}  // namespace
}  // namespace gophermq::test
