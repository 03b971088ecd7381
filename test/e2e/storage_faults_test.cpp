// Issue 14's fault tests: the real broker with storage on, killed with SIGKILL at random moments
// under concurrent load, with power loss simulated from what the fsync shim saw made durable,
// with EIO on fsync and with a full disk. The total-queue checker judges each history.
//
// GOPHERMQ_FAULT_CYCLES sets the number of kill cycles (the recorded runs use 200) and
// GOPHERMQ_FAULT_SEED replays a run; every test prints the seed it used.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json/parse.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/api_texts.hpp"
#include "support/broker_process.hpp"
#include "support/http_client.hpp"
#include "support/kill_cycles.hpp"
#include "support/power_loss.hpp"
#include "support/sanitizers.hpp"
#include "support/total_queue.hpp"

namespace gophermq::test {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;
using Clock = TotalQueue::Clock;

// The log's directory, and the shim's state and control files beside it.
struct Scratch {
  Scratch() {
    std::string pattern = (fs::temp_directory_path() / "gophermq-faults-XXXXXX").string();
    root = mkdtemp(pattern.data());
    dir = root / "data";
    fs::create_directory(dir);
  }
  ~Scratch() { fs::remove_all(root); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  // The broker on this directory; 64 KiB log files, so the runs rotate and compact files.
  [[nodiscard]] std::vector<std::string> arguments(const std::string& fsync,
                                                   std::vector<std::string> extra = {}) const {
    extra.insert(extra.begin(), {"--storage.dir=" + dir.string(), "--storage.fsync=" + fsync,
                                 "--storage.file-bytes=65536"});
    return isolated_arguments(extra);
  }

  [[nodiscard]] std::vector<std::string> shim() const {
    return {"LD_PRELOAD=" GOPHERMQ_FSYNC_SHIM, "GOPHERMQ_SHIM_DIR=" + dir.string(),
            "GOPHERMQ_SHIM_STATE=" + (root / "shim-state").string(),
            "GOPHERMQ_SHIM_CONTROL=" + (root / "shim-control").string()};
  }

  // Sets the shim's fault (`eio-fsync`, `enospc`, or "" for none), atomically.
  void fault(const std::string& text) const {
    std::ofstream(root / "shim-control.tmp") << text;
    fs::rename(root / "shim-control.tmp", root / "shim-control");
  }

  PowerLossReport lose_power(LostTail tail, std::mt19937_64& random) const {
    return simulate_power_loss(dir, root / "shim-state", tail, random);
  }

  fs::path root;
  fs::path dir;
};

// Polls gophermq_storage_write_stalled until it reads `value`, for up to 30 s: the gauge is all a
// client can see of the log's write waiting for space.
void write_stalled_reads(std::uint16_t metrics_port, double value) {
  const auto deadline = Clock::now() + 30s;
  while (Clock::now() < deadline &&
         metric(metrics_port, "gophermq_storage_write_stalled") != value) {
    std::this_thread::sleep_for(2ms);  // a poll interval, not a wait
  }
}

std::vector<std::string> data_of(const HttpResponse& response) {
  std::vector<std::string> data;
  const json::value answer = json::parse(response.body);
  for (const auto& item : answer.as_object().at("data").as_array()) {
    data.emplace_back(item.as_string());
  }
  return data;
}

std::string json_array(const std::vector<std::string>& bodies) {
  std::string text = "[";
  for (const auto& body : bodies) text += (text.size() > 1 ? ",\"" : "\"") + body + "\"";
  return text + "]";
}

json::object stats_totals(std::uint16_t port) {
  HttpClient client(port);
  return json::parse(client.get("/api/stats").body).as_object().at("totals").as_object();
}

// One queue of the broker, as the checker and the fetchers see it.
struct Queue {
  std::string name;
  std::string subject;  // the pattern it was subscribed with, and fetches with
  std::string group;    // empty: ungrouped
  std::size_t members = 1;
  bool fetched_under_load = true;
  std::vector<std::string> ids;
};

// Concurrent publishers (sync and batch) and fetchers (a subscription, a group of two members, a
// wildcard) against whichever broker runs now. Each worker records every request and its outcome
// in the history; a request cut by a kill is recorded as unknown.
class Load {
 public:
  Load(TotalQueue& history, std::uint64_t seed, bool fetchers)
      : history_(history),
        queues_{{"solo", "t.a", "", 1, true, {}},
                {"group", "t.a", "g", 2, true, {}},
                {"wild", "t.*", "", 1, true, {}},
                {"late", "t.b", "", 1, false, {}}} {
    for (auto& queue : queues_) {
      history_.add_queue(queue.name, queue.subject);
    }
    std::mt19937_64 seeds(seed);
    const auto publisher = [&](std::string name, std::string subject, std::size_t batch) {
      cycles_.add_worker([this, name, subject, batch, counter = std::size_t{0},
                          random = std::mt19937_64(seeds())](std::uint16_t port) mutable {
        HttpClient client(port);
        publishes(client, name, subject, batch, counter, random);
      });
    };
    publisher("ps1", "t.a", 1);
    publisher("ps2", "t.b", 1);
    publisher("pb", "", 5);
    if (fetchers) {
      for (std::size_t queue = 0; queue < queues_.size(); ++queue) {
        for (std::size_t member = 0; member < queues_[queue].members; ++member) {
          if (!queues_[queue].fetched_under_load) continue;
          cycles_.add_worker(
              [this, queue, member, random = std::mt19937_64(seeds())](std::uint16_t port) mutable {
                HttpClient client(port);
                fetches(client, queue, member, random);
              });
        }
      }
    }
  }

  Load(const Load&) = delete;
  Load& operator=(const Load&) = delete;

  void subscribe(std::uint16_t port) {
    HttpClient client(port);
    for (auto& queue : queues_) {
      for (std::size_t member = 0; member < queue.members; ++member) {
        const std::string group = queue.group.empty() ? "" : R"(,"group":")" + queue.group + "\"";
        const auto answer =
            client.post("/api/subscribe", R"({"subject":")" + queue.subject + "\"" + group + "}");
        ASSERT_EQ(answer.status, 200u) << answer.body;
        queue.ids.push_back(id_of(answer));
      }
    }
  }

  // One kill cycle on `broker` once the workers got `answers` answers.
  void cycle(BrokerProcess& broker, std::size_t answers) { cycles_.cycle(broker, answers); }

  // Fetches every queue empty, member by member.
  void drain(std::uint16_t port) {
    HttpClient client(port);
    for (const auto& queue : queues_) {
      for (const auto& id : queue.ids) {
        while (true) {
          const auto answer =
              client.post("/api/fetch", fetch_body(queue.subject, id, R"(,"max":1000)"));
          ASSERT_EQ(answer.status, 200u) << queue.name << " " << answer.body;
          const auto data = data_of(answer);
          history_.fetch(queue.name, id, 1000, data, Outcome::ok);
          if (data.empty()) break;
        }
      }
    }
  }

  [[nodiscard]] std::size_t subscriptions() const {
    std::size_t count = 0;
    for (const auto& queue : queues_) count += queue.members;
    return count;
  }

 private:
  // Sync publishes of one body to `subject`, or (`batch` > 1) batches of 1 to `batch` bodies to
  // t.a or t.b; every body is unique: the publisher's name and a counter.
  void publishes(HttpClient& client, const std::string& publisher, const std::string& subject,
                 std::size_t batch, std::size_t& counter, std::mt19937_64& random) {
    while (cycles_.running()) {
      std::vector<std::string> bodies;
      const std::size_t count =
          batch == 1 ? 1 : std::uniform_int_distribution<std::size_t>(1, batch)(random);
      for (std::size_t at = 0; at < count; ++at) {
        bodies.push_back(publisher + "-" + std::to_string(counter++));
      }
      const std::string to = !subject.empty() ? subject : (random() % 2 == 0 ? "t.a" : "t.b");
      HttpResponse answer;
      try {
        answer = batch == 1
                     ? client.post("/api/publish", publish_body(to, bodies[0]))
                     : client.post("/api/publish/batch", R"({"subject":")" + to + R"(","data":)" +
                                                             json_array(bodies) + "}");
      } catch (const std::exception&) {
        history_.publish(publisher, to, bodies, Outcome::unknown);
        throw;
      }
      EXPECT_EQ(answer.status, 200u) << answer.body;
      history_.publish(publisher, to, bodies,
                       answer.status == 200 ? Outcome::ok : Outcome::refused);
      cycles_.answered();
    }
  }

  // Fetches of 1 to 8 messages by one member of a queue, waiting up to 20 ms when it is empty.
  void fetches(HttpClient& client, std::size_t queue_index, std::size_t member,
               std::mt19937_64& random) {
    const Queue& queue = queues_[queue_index];
    const std::string& id = queue.ids[member];
    while (cycles_.running()) {
      const std::size_t max = std::uniform_int_distribution<std::size_t>(1, 8)(random);
      HttpResponse answer;
      try {
        answer = client.post(
            "/api/fetch",
            fetch_body(queue.subject, id, ",\"max\":" + std::to_string(max) + ",\"wait_ms\":20"));
      } catch (const std::exception&) {
        history_.fetch(queue.name, id, max, {}, Outcome::unknown);
        throw;
      }
      ASSERT_EQ(answer.status, 200u) << queue.name << " " << answer.body;
      history_.fetch(queue.name, id, max, data_of(answer), Outcome::ok);
      cycles_.answered();
    }
  }

  TotalQueue& history_;
  std::vector<Queue> queues_;
  KillCycles cycles_;  // last: its workers use the members above
};

// Subscribes every queue on a fresh broker and stops it cleanly.
void set_up_queues(Load& load, const std::vector<std::string>& arguments) {
  BrokerProcess broker(arguments);
  load.subscribe(broker.api_port());
  broker.send_signal(SIGTERM);
  ASSERT_EQ(broker.wait_for_exit(), 0) << broker.log();
}

// Drains every queue on a broker that recovered the directory, and checks that the
// subscriptions came back with their ids and nothing is left.
void drain(Load& load, const std::vector<std::string>& arguments,
           const std::vector<std::string>& environment = {}) {
  BrokerProcess broker(arguments, environment);
  load.drain(broker.api_port());
  const auto totals = stats_totals(broker.api_port());
  EXPECT_EQ(totals.at("subscriptions").as_int64(), static_cast<std::int64_t>(load.subscriptions()));
  EXPECT_EQ(totals.at("pending_messages").as_int64(), 0);
}

std::size_t random_answers(std::mt19937_64& random) {
  return std::uniform_int_distribution<std::size_t>(20, 200)(random);
}

TEST(StorageFaults, KillNineUnderLoadLosesNothingAnsweredAndDeliversItOnce) {
  Scratch scratch;
  TotalQueue history;
  const auto chosen = fault_seed();
  std::mt19937_64 random(chosen);
  Load load(history, chosen, true);
  const auto arguments = scratch.arguments("always");
  set_up_queues(load, arguments);
  const std::size_t cycles = fault_setting("GOPHERMQ_FAULT_CYCLES", 20);
  for (std::size_t cycle = 0; cycle < cycles && !HasFailure(); ++cycle) {
    BrokerProcess broker(arguments);
    load.cycle(broker, random_answers(random));
  }
  drain(load, arguments);
  const auto result = history.check(Delivery::exactly_once);
  std::cout << "kill -9, " << cycles << " cycles: " << result.describe() << "\n";
  EXPECT_TRUE(result.errors.empty()) << result.describe();
  EXPECT_GT(result.expected, cycles * 10);
}

TEST(StorageFaults, PowerLossWithFsyncAlwaysLosesNoAnsweredPublish) {
  Scratch scratch;
  TotalQueue history;
  const auto chosen = fault_seed();
  std::mt19937_64 random(chosen);
  Load load(history, chosen, true);
  const auto arguments = scratch.arguments("always");
  set_up_queues(load, arguments);
  const std::size_t cycles = fault_setting("GOPHERMQ_FAULT_CYCLES", 12);
  const LostTail tails[] = {LostTail::cut, LostTail::zeros, LostTail::torn_write,
                            LostTail::garbage};
  std::uint64_t bytes_lost = 0;
  for (std::size_t cycle = 0; cycle < cycles && !HasFailure(); ++cycle) {
    BrokerProcess broker(arguments, scratch.shim());
    load.cycle(broker, random_answers(random));
    bytes_lost += scratch.lose_power(tails[cycle % 4], random).bytes_lost;
  }
  drain(load, arguments);
  const auto result = history.check(Delivery::at_least_once);
  std::cout << "power loss, " << cycles << " cycles, " << bytes_lost
            << " unsynced bytes dropped: " << result.describe() << "\n";
  EXPECT_TRUE(result.errors.empty()) << result.describe();
  EXPECT_GT(result.expected, cycles * 10);
}

TEST(StorageFaults, PowerLossWithFsyncIntervalLosesOnlyTheLastIntervalsPublishes) {
  Scratch scratch;
  TotalQueue history;
  const auto chosen = fault_seed();
  std::mt19937_64 random(chosen);
  // Publishers only: with no fetch cut by a kill, every missing message is a loss.
  Load load(history, chosen, false);
  const auto arguments = scratch.arguments("interval", {"--storage.fsync-interval=20ms"});
  set_up_queues(load, arguments);
  const std::size_t cycles = fault_setting("GOPHERMQ_FAULT_CYCLES", 8);
  std::vector<Clock::time_point> kills;
  std::vector<PowerLossReport> losses;
  for (std::size_t cycle = 0; cycle < cycles && !HasFailure(); ++cycle) {
    BrokerProcess broker(arguments, scratch.shim());
    // Most cycles last many intervals, so a broker that never synced loses earlier answers.
    load.cycle(broker, 20 * random_answers(random));
    // Taken once every answer is recorded, so no answer is stamped after its kill.
    kills.push_back(Clock::now());
    losses.push_back(scratch.lose_power(LostTail::cut, random));
  }
  drain(load, arguments);
  const auto result = history.check(Delivery::at_least_once, true);
  EXPECT_TRUE(result.errors.empty()) << result.describe();
  // The bound is the shim's record, not a wall-clock tolerance: a publish answered before the
  // last sync of its file began was written before it, so that sync made it durable. What one
  // power loss may take is only what was answered after the last sync of a file that lost bytes
  // began: the interval the broker was in, and nothing answered earlier.
  std::set<std::string> lost;
  auto worst = 0ms;
  for (const auto& missing : result.missing) {
    lost.insert(missing.body);
    const auto kill = std::lower_bound(kills.begin(), kills.end(), missing.answered);
    ASSERT_NE(kill, kills.end()) << missing.body;
    const PowerLossReport& loss = losses[static_cast<std::size_t>(kill - kills.begin())];
    EXPECT_TRUE(loss.lost_writes) << missing.body << " is lost, but its power loss cut no write";
    EXPECT_GT(missing.answered, loss.lost_writes_after)
        << missing.body << " was answered "
        << std::chrono::duration_cast<std::chrono::microseconds>(loss.lost_writes_after -
                                                                 missing.answered)
               .count()
        << " us before the last sync of the files that lost bytes began, and is lost";
    worst = std::max(
        worst, std::chrono::duration_cast<std::chrono::milliseconds>(*kill - missing.answered));
  }
  std::cout << "fsync=interval (20ms), " << cycles << " power losses: " << lost.size()
            << " answered messages lost, the oldest answered " << worst.count()
            << " ms before its power loss; " << result.describe() << "\n";
  // The interval's fdatasync did run: what was published earlier survived.
  EXPECT_GT(result.received, 0u);
}

TEST(StorageFaults, EioOnFsyncStopsTheBrokerAndARestartRecoversEveryAnsweredPublish) {
  Scratch scratch;
  TotalQueue history;
  history.add_queue("solo", "t.a");
  const auto arguments = scratch.arguments("always");
  std::string id;
  {
    BrokerProcess broker(arguments, scratch.shim());
    HttpClient client(broker.api_port());
    id = subscribe(client, "t.a");
    for (int n = 0; n < 50; ++n) {
      const std::string body = "m-" + std::to_string(n);
      ASSERT_EQ(client.post("/api/publish", publish_body("t.a", body)).status, 200u);
      history.publish("p", "t.a", {body}, Outcome::ok);
    }
    scratch.fault("eio-fsync");
    Outcome outcome = Outcome::unknown;
    try {
      const auto answer = client.post("/api/publish", publish_body("t.a", "m-eio"));
      EXPECT_NE(answer.status, 200u) << "a publish whose fdatasync failed was answered";
      outcome = answer.status == 200 ? Outcome::ok : Outcome::refused;
    } catch (const std::exception&) {
      // The broker exited before answering.
    }
    history.publish("p", "t.a", {"m-eio"}, outcome);
    const int status = broker.wait_for_exit();
    EXPECT_NE(status, 0) << broker.log();
    EXPECT_LT(status, 128) << "ended by a signal, not an exit: " << broker.log();
  }
  scratch.fault("");
  std::mt19937_64 random(1);
  scratch.lose_power(LostTail::cut, random);
  BrokerProcess broker(arguments);
  HttpClient client(broker.api_port());
  const auto answer = client.post("/api/fetch", fetch_body("t.a", id));
  ASSERT_EQ(answer.status, 200u) << answer.body;
  history.fetch("solo", id, SIZE_MAX, data_of(answer), Outcome::ok);
  const auto result = history.check(Delivery::exactly_once);
  EXPECT_TRUE(result.errors.empty()) << result.describe();
}

// A message of about 1 KiB: the refused ones must not fit where the stored ones did not.
std::string kilobyte(const std::string& name) {
  return name + "-" + std::string(1000, 'x');
}

// Publishes 1 KiB messages until the broker answers 507; returns the bodies it stored.
std::vector<std::string> publish_until_full(HttpClient& client, TotalQueue& history,
                                            std::size_t& counter) {
  std::vector<std::string> stored;
  while (counter < 10000) {
    const std::string body = kilobyte("m-" + std::to_string(counter++));
    const auto answer = client.post("/api/publish", publish_body("t.a", body));
    if (answer.status == 507) {
      EXPECT_EQ(answer.body, "{\"message\":\"storage full\"}\n");
      history.publish("p", "t.a", {body}, Outcome::refused);
      return stored;
    }
    EXPECT_EQ(answer.status, 200u) << answer.body;
    history.publish("p", "t.a", {body}, Outcome::ok);
    stored.push_back(body);
  }
  ADD_FAILURE() << "the storage never filled";
  return stored;
}

// Publishes until one is stored again, as the broker retries allocating on its own time.
void publish_until_stored(HttpClient& client, TotalQueue& history, std::size_t& counter) {
  const auto deadline = Clock::now() + 10s;
  while (Clock::now() < deadline) {
    const std::string body = kilobyte("m-" + std::to_string(counter++));
    const auto answer = client.post("/api/publish", publish_body("t.a", body));
    history.publish("p", "t.a", {body}, answer.status == 200 ? Outcome::ok : Outcome::refused);
    if (answer.status == 200) return;
    ASSERT_EQ(answer.status, 507u) << answer.body;
    std::this_thread::sleep_for(2ms);  // a poll interval, not a wait
  }
  ADD_FAILURE() << "publishes never succeeded again";
}

void expect_full_then_recovered(const Scratch& scratch, const std::vector<std::string>& arguments,
                                const std::vector<std::string>& environment,
                                const std::function<void()>& fill,
                                const std::function<void()>& free) {
  TotalQueue history;
  history.add_queue("solo", "t.a");
  std::size_t counter = 0;
  std::string id;
  {
    BrokerProcess broker(arguments, environment);
    HttpClient client(broker.api_port());
    id = subscribe(client, "t.a");
    fill();
    const auto stored = publish_until_full(client, history, counter);
    // Full stays full, for a batch too, and nothing of a refused request is stored.
    const std::vector<std::string> refused{kilobyte("refused-1"), kilobyte("refused-2"),
                                           kilobyte("refused-3")};
    EXPECT_EQ(client.post("/api/publish", publish_body("t.a", refused[0])).status, 507u);
    history.publish("p", "t.a", {refused[0]}, Outcome::refused);
    EXPECT_EQ(client
                  .post("/api/publish/batch",
                        R"({"subject":"t.a","data":)" + json_array({refused[1], refused[2]}) + "}")
                  .status,
              507u);
    history.publish("p", "t.a", {refused[1], refused[2]}, Outcome::refused);
    // Fetches keep working while the disk is full.
    const auto fetched = client.post("/api/fetch", fetch_body("t.a", id));
    ASSERT_EQ(fetched.status, 200u) << fetched.body;
    EXPECT_EQ(data_of(fetched).size(), stored.size());
    history.fetch("solo", id, SIZE_MAX, data_of(fetched), Outcome::ok);
    free();
    publish_until_stored(client, history, counter);
    broker.send_signal(SIGKILL);
    EXPECT_EQ(broker.wait_for_exit(), 128 + SIGKILL);
  }
  scratch.fault("");
  BrokerProcess broker(arguments);
  const auto answer = post_once(broker.api_port(), "/api/fetch", fetch_body("t.a", id));
  ASSERT_EQ(answer.status, 200u) << answer.body;
  history.fetch("solo", id, SIZE_MAX, data_of(answer), Outcome::ok);
  const auto result = history.check(Delivery::exactly_once);
  EXPECT_TRUE(result.errors.empty()) << result.describe();
}

TEST(StorageFaults, EnospcRefusesPublishesWith507KeepsFetchingAndRecoversWhenSpaceReturns) {
  Scratch scratch;
  expect_full_then_recovered(
      scratch, scratch.arguments("always"), scratch.shim(), [&] { scratch.fault("enospc"); },
      [&] { scratch.fault(""); });
}

TEST(StorageFaults, MaxBytesRefusesPublishesWith507UntilFetchesFreeTheLog) {
  Scratch scratch;
  expect_full_then_recovered(
      scratch, scratch.arguments("always", {"--storage.max-bytes=262144"}), {}, [] {}, [] {});
}

// Messages from a third of a log file to more than a whole one, published at once from several
// connections while the disk is full: each publish either fits space reserved before the disk
// filled or is refused, and nothing is ever written beyond a reservation (the shim fails such a
// write with ENOSPC, as a full disk does, and the broker would stop).
TEST(StorageFaults, EnospcUnderConcurrentLargePublishesAnswersOnly200Or507AndKeepsServing) {
  Scratch scratch;
  BrokerProcess broker(scratch.arguments("always"), scratch.shim());
  HttpClient client(broker.api_port());
  const std::string id = subscribe(client, "t.a");
  scratch.fault("enospc");
  const std::vector<std::size_t> sizes{20000, 40000, 70000};
  constexpr std::size_t kPublishers = 4;
  constexpr std::size_t kEach = 12;
  std::vector<std::vector<std::string>> stored(kPublishers);
  std::vector<std::vector<unsigned>> statuses(kPublishers);
  {
    std::vector<std::jthread> publishers;
    for (std::size_t p = 0; p < kPublishers; ++p) {
      publishers.emplace_back([&, p] {
        HttpClient connection(broker.api_port());
        for (std::size_t n = 0; n < kEach; ++n) {
          const std::string name = std::to_string(p) + "-" + std::to_string(n);
          const std::string body = name + "-" + std::string(sizes[(p + n) % sizes.size()], 'x');
          try {
            const auto answer = connection.post("/api/publish", publish_body("t.a", body));
            statuses[p].push_back(answer.status);
            if (answer.status == 200) stored[p].push_back(name);
          } catch (const std::exception&) {
            statuses[p].push_back(0);  // no answer: the broker stopped
            return;
          }
        }
      });
    }
  }
  std::size_t refused = 0;
  for (const auto& answers : statuses) {
    for (const unsigned status : answers) {
      EXPECT_TRUE(status == 200 || status == 507) << "answered " << status << ": " << broker.log();
      refused += status == 507 ? 1 : 0;
    }
  }
  EXPECT_GT(refused, 0u) << "the disk never filled";
  // The broker still serves fetches, and they return exactly what was answered 200.
  const auto fetched = client.post("/api/fetch", fetch_body("t.a", id, R"(,"max":1000)"));
  ASSERT_EQ(fetched.status, 200u) << fetched.body;
  std::multiset<std::string> got;
  for (const auto& body : data_of(fetched)) got.insert(body.substr(0, body.rfind('-')));
  std::multiset<std::string> expected;
  for (const auto& names : stored) expected.insert(names.begin(), names.end());
  EXPECT_EQ(got, expected);
  // Space back: the largest publish is taken again, once the broker has made a file for it.
  scratch.fault("");
  const std::string large = "after-" + std::string(sizes.back(), 'x');
  const auto deadline = Clock::now() + 10s;
  unsigned status = 0;
  while (Clock::now() < deadline && status != 200) {
    status = client.post("/api/publish", publish_body("t.a", large)).status;
    ASSERT_TRUE(status == 200 || status == 507) << status;
    if (status != 200) std::this_thread::sleep_for(2ms);  // a poll interval, not a wait
  }
  EXPECT_EQ(status, 200u);
  EXPECT_EQ(data_of(client.post("/api/fetch", fetch_body("t.a", id))),
            std::vector<std::string>{large});
  broker.send_signal(SIGTERM);
  EXPECT_EQ(broker.wait_for_exit(), 0) << broker.log();
}

// On a disk that stays full, records other than publishes (fetch removals, subscribes) can use up
// the room each file keeps for them. The write past it waits for space instead of stopping the
// broker: the requests behind it are answered once space returns, and nothing is lost or fetched
// twice.
TEST(StorageFaults, WritesBeyondTheRoomKeptWaitForSpaceOnAFullDiskInsteadOfStoppingTheBroker) {
  Scratch scratch;
  const auto arguments = scratch.arguments("always");
  std::optional<BrokerProcess> broker;
  broker.emplace(arguments, scratch.shim());
  HttpClient client(broker->api_port());
  const std::string id = subscribe(client, "t.a");
  scratch.fault("enospc");
  std::vector<std::string> stored;
  while (stored.size() < 1000) {
    const std::string body = std::to_string(stored.size()) + "-" + std::string(1000, 'x');
    const unsigned status = client.post("/api/publish", publish_body("t.a", body)).status;
    if (status == 507) break;
    ASSERT_EQ(status, 200u);
    stored.push_back(body);
  }
  ASSERT_GT(stored.size(), 10u);
  // Each fetch and each subscribe writes a record that only the room kept can take.
  std::vector<std::string> got;
  std::vector<unsigned> statuses;
  std::jthread consumer([&] {
    try {
      HttpClient connection(broker->api_port());
      for (std::size_t n = 0; n < stored.size(); ++n) {
        const auto answer =
            connection.post("/api/fetch", fetch_body("t.a", id, R"(,"max":1)"), 60s);
        statuses.push_back(answer.status);
        for (auto& data : data_of(answer)) got.push_back(std::move(data));
      }
      for (int n = 0; n < 200; ++n) {
        statuses.push_back(connection.post("/api/subscribe", subscribe_body("t.b"), 60s).status);
      }
    } catch (const std::exception& error) {
      ADD_FAILURE() << "no answer: " << error.what();
    }
  });
  write_stalled_reads(broker->metrics_port(), 1.0);
  EXPECT_EQ(metric(broker->metrics_port(), "gophermq_storage_write_stalled"), 1.0)
      << "the room kept was never used up";
  // Still serving: a publish is refused at once, not made to wait for the disk.
  EXPECT_EQ(client.post("/api/publish", publish_body("t.a", "refused")).status, 507u);
  scratch.fault("");
  consumer.join();
  write_stalled_reads(broker->metrics_port(), 0.0);
  // A subscribe is refused 507 once the log knows its write waits, and answered once space
  // returns when it came before.
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 200u) +
                std::count(statuses.begin(), statuses.end(), 507u),
            static_cast<std::ptrdiff_t>(statuses.size()));
  EXPECT_EQ(got, stored);
  EXPECT_EQ(metric(broker->metrics_port(), "gophermq_storage_write_stalled"), 0.0);
  // A restart fetches nothing again: the stalled removals reached the disk.
  broker->send_signal(SIGTERM);
  EXPECT_EQ(broker->wait_for_exit(), 0) << broker->log();
  broker.emplace(arguments);
  EXPECT_EQ(post_once(broker->api_port(), "/api/fetch", fetch_body("t.a", id)).body,
            fetched("t.a", id, ""));
}

// Fills what a full disk left reserved with small messages on t.a, in batches of 50 and then one
// by one, until a publish is refused 507: what was stored, in order.
std::vector<std::string> fill_with_small_messages(std::uint16_t port) {
  HttpClient client(port);
  std::vector<std::string> stored;
  for (std::size_t batch = 50; batch > 0;) {
    std::vector<std::string> bodies;
    for (std::size_t n = 0; n < batch; ++n)
      bodies.push_back("m" + std::to_string(stored.size() + n));
    const unsigned status =
        client.post("/api/publish/batch", R"({"subject":"t.a","data":)" + json_array(bodies) + "}")
            .status;
    if (status == 507) {
      batch = batch == 50 ? 1 : 0;
      continue;
    }
    EXPECT_EQ(status, 200u);
    if (status != 200) break;
    stored.insert(stored.end(), bodies.begin(), bodies.end());
  }
  return stored;
}

// A broker on a full disk (the shim's enospc) with a subscription on t.a, whose queue holds as many
// small messages as the room reserved before the disk filled took. `before` runs first, while the
// disk has room.
struct FilledDisk {
  explicit FilledDisk(const std::function<void(HttpClient&)>& before = {})
      : arguments(scratch.arguments("always")) {
    broker.emplace(arguments, scratch.shim());
    HttpClient client(broker->api_port());
    id = subscribe(client, "t.a");
    if (before) before(client);
    scratch.fault("enospc");
    stored = fill_with_small_messages(broker->api_port());
  }

  Scratch scratch;
  std::vector<std::string> arguments;
  std::optional<BrokerProcess> broker;
  std::string id;
  std::vector<std::string> stored;
};

// One message by fetch, answered within `timeout`, or a failure saying the fetch hung.
std::vector<std::string> fetch_one(HttpClient& client, const std::string& id) {
  try {
    const auto answer = client.post("/api/fetch", fetch_body("t.a", id, R"(,"max":1)"), 10s);
    EXPECT_EQ(answer.status, 200u) << answer.body;
    return data_of(answer);
  } catch (const std::exception& error) {
    ADD_FAILURE() << "fetch not answered: " << error.what();
    return {};
  }
}

// API.md §8: on a full disk the broker keeps serving fetches. Small messages fetched one by one
// write more removal records than the room kept in a file holds, so the log's write waits for
// space long before the queue is empty; the fetches are still answered (before, the first one
// after the room ran out hung until space returned). Once space returns, every removal reaches
// the disk and nothing is fetched again after a restart.
TEST(StorageFaults, FetchesAreAnsweredWhileTheLogWaitsForSpaceOnAFullDisk) {
  FilledDisk disk;
  ASSERT_GT(disk.stored.size(), 1000u);
  HttpClient client(disk.broker->api_port());
  std::vector<std::string> got;
  bool stalled = false;
  while (got.size() < disk.stored.size()) {
    const auto data = fetch_one(client, disk.id);
    if (data.empty()) break;
    got.insert(got.end(), data.begin(), data.end());
    stalled = stalled || (got.size() % 25 == 0 && metric(disk.broker->metrics_port(),
                                                         "gophermq_storage_write_stalled") == 1.0);
  }
  EXPECT_EQ(got, disk.stored);
  EXPECT_TRUE(stalled) << "the room kept was never used up";
  EXPECT_EQ(client.post("/api/publish", publish_body("t.a", "refused")).status, 507u);
  disk.scratch.fault("");
  write_stalled_reads(disk.broker->metrics_port(), 0.0);
  EXPECT_EQ(client.post("/api/publish", publish_body("t.a", "after")).status, 200u);
  disk.broker->send_signal(SIGTERM);
  EXPECT_EQ(disk.broker->wait_for_exit(), 0) << disk.broker->log();
  disk.broker.emplace(disk.arguments);
  EXPECT_EQ(post_once(disk.broker->api_port(), "/api/fetch", fetch_body("t.a", disk.id)).body,
            fetched("t.a", disk.id, "\"after\""));
}

// A SIGTERM while the log waits for space ends the broker at once with exit 1 and one line, not
// when space returns (before, it waited for ever behind the requests that waited for the disk).
// The request waiting here is the subscribe whose record found the room kept used up: later ones
// are refused 507. Nothing answered is lost.
TEST(StorageFaults, ASigtermWhileTheLogWaitsForSpaceEndsTheBrokerAtOnce) {
  FilledDisk disk;
  ASSERT_GT(disk.stored.size(), 1000u);
  std::atomic<bool> cut{false};
  std::jthread subscriber([&] {
    try {
      HttpClient connection(disk.broker->api_port());
      for (int n = 0; n < 1000; ++n) {
        const auto answer = connection.post("/api/subscribe", subscribe_body("t.b"), 30s);
        if (answer.status != 200) {
          ADD_FAILURE() << "refused before its write waited: " << answer.status;
          return;
        }
      }
      ADD_FAILURE() << "the room kept was never used up";
    } catch (const std::exception&) {
      cut = true;  // by the exit: what the test expects
    }
  });
  write_stalled_reads(disk.broker->metrics_port(), 1.0);
  ASSERT_EQ(metric(disk.broker->metrics_port(), "gophermq_storage_write_stalled"), 1.0);
  const auto started = Clock::now();
  disk.broker->send_signal(SIGTERM);
  EXPECT_EQ(disk.broker->wait_for_exit(), 1) << disk.broker->log();
  EXPECT_LT(Clock::now() - started, 5s);
  EXPECT_NE(disk.broker->log().find("no room on the disk for the log's last "), std::string::npos)
      << disk.broker->log();
  subscriber.join();
  EXPECT_TRUE(cut.load());
  disk.scratch.fault("");
  disk.broker.emplace(disk.arguments);
  std::vector<std::string> again;
  HttpClient after(disk.broker->api_port());
  for (;;) {
    const auto data =
        data_of(after.post("/api/fetch", fetch_body("t.a", disk.id, R"(,"max":500)")));
    if (data.empty()) break;
    again.insert(again.end(), data.begin(), data.end());
  }
  EXPECT_EQ(again, disk.stored);
}

// While the log waits for space, what a client asks to change besides publishing and fetching
// (subscribe, unsubscribe, purge, ack) is refused 507 at once and changes nothing, instead of
// waiting for the disk with its connection held for as long as the disk stays full.
TEST(StorageFaults, WhileTheLogWaitsForSpaceChangesAre507AndFetchesAreServed) {
  std::string acked_id;
  std::string ack_body;
  FilledDisk disk([&](HttpClient& client) {
    const auto made = client.post("/api/subscribe", R"({"subject":"t.k","ack":true})");
    ASSERT_EQ(made.status, 200u) << made.body;
    acked_id = json::parse(made.body).as_object().at("id").as_string();
    ASSERT_EQ(client.post("/api/publish", publish_body("t.k", "k1")).status, 200u);
    const auto delivered = client.post("/api/fetch", fetch_body("t.k", acked_id));
    ASSERT_EQ(delivered.status, 200u) << delivered.body;
    const auto messages = json::parse(delivered.body).as_object().at("messages").as_array();
    ASSERT_EQ(messages.size(), 1u) << delivered.body;
    ack_body = R"({"subject":"t.k","id":")" + acked_id + R"(","receipts":[")" +
               std::string(messages[0].as_object().at("receipt").as_string()) + "\"]}";
  });
  ASSERT_FALSE(ack_body.empty());
  ASSERT_GT(disk.stored.size(), 1000u);
  HttpClient client(disk.broker->api_port());
  std::size_t fetched_count = 0;
  while (fetched_count < disk.stored.size() &&
         (fetched_count % 10 != 0 ||
          metric(disk.broker->metrics_port(), "gophermq_storage_write_stalled") != 1.0)) {
    const auto data = fetch_one(client, disk.id);
    if (data.empty()) break;
    fetched_count += data.size();
  }
  ASSERT_LT(fetched_count, disk.stored.size()) << "the room kept was never used up";
  const std::string full = "{\"message\":\"storage full\"}\n";
  for (const auto& [path, body] : std::vector<std::pair<std::string, std::string>>{
           {"/api/subscribe", subscribe_body("t.b")},
           {"/api/unsubscribe", fetch_body("t.a", disk.id)},
           {"/api/admin/unsubscribe", R"({"id":")" + disk.id + "\"}"},
           {"/api/admin/purge", R"({"subject":"t.>"})"},
           {"/api/ack", ack_body}}) {
    const auto answer = client.post(path, body, 10s);
    EXPECT_EQ(answer.status, 507u) << path;
    EXPECT_EQ(answer.body, full) << path;
  }
  // Nothing refused changed anything: the subscription is there with what it had, and the
  // message acked in vain is still in flight.
  EXPECT_EQ(
      data_of(client.post("/api/fetch", fetch_body("t.a", disk.id, R"(,"max":1)"), 10s)).size(),
      1u);
  disk.scratch.fault("");
  write_stalled_reads(disk.broker->metrics_port(), 0.0);
  const auto ack = client.post("/api/ack", ack_body);
  EXPECT_EQ(ack.status, 200u) << ack.body;
  EXPECT_NE(ack.body.find("\"acked\":1"), std::string::npos) << ack.body;
  EXPECT_EQ(client.post("/api/subscribe", subscribe_body("t.b")).status, 200u);
  EXPECT_EQ(client.post("/api/unsubscribe", fetch_body("t.a", disk.id)).status, 200u);
}

// A start needs a new file for its checkpoint. On a full disk the broker says so in one line and
// exits 1, instead of failing on the file it could not make; the log is untouched for a start
// once space returns.
TEST(StorageFaults, AStartOnAFullDiskFailsWithOneClearLineAndLosesNothing) {
  Scratch scratch;
  std::string id;
  {
    BrokerProcess broker(scratch.arguments("always"));
    HttpClient client(broker.api_port());
    id = subscribe(client, "t.a");
    ASSERT_EQ(client.post("/api/publish", publish_body("t.a", "kept")).status, 200u);
    broker.send_signal(SIGKILL);
    EXPECT_EQ(broker.wait_for_exit(), 128 + SIGKILL);
  }
  scratch.fault("enospc");
  {
    BrokerProcess broker(scratch.arguments("always"), scratch.shim(), false);
    EXPECT_EQ(broker.wait_for_exit(), 1) << broker.log();
    EXPECT_NE(broker.log().find("no room on the disk for the log file "), std::string::npos)
        << broker.log();
    EXPECT_NE(broker.log().find("No space left on device"), std::string::npos) << broker.log();
    EXPECT_EQ(broker.log().find("No such file or directory"), std::string::npos) << broker.log();
  }
  scratch.fault("");
  BrokerProcess broker(scratch.arguments("always"));
  EXPECT_EQ(post_once(broker.api_port(), "/api/fetch", fetch_body("t.a", id)).body,
            fetched("t.a", id, "\"kept\""));
}

// Consumption that empties the log compacts it at once: with nothing pending, the next publish
// finds room, instead of being the one that finds no room and starts the compaction (a 507).
TEST(StorageFaults, MaxBytesNeverRefusesAPublishOnceFetchesEmptiedTheLog) {
  Scratch scratch;
  BrokerProcess broker(scratch.arguments("always", {"--storage.max-bytes=300000"}));
  HttpClient client(broker.api_port());
  const std::string id = subscribe(client, "f.a");
  const std::string body(10000, 'x');
  for (int round = 0; round < 3; ++round) {
    int published = 0;
    while (published < 1000) {
      const auto answer = client.post("/api/publish", publish_body("f.a", body));
      if (answer.status == 507) break;
      ASSERT_EQ(answer.status, 200u) << answer.body;
      ++published;
    }
    ASSERT_GT(published, 2) << "round " << round;
    // Full: the log holds about max-bytes, in however many files (a periodic checkpoint may have
    // rewritten what was pending into one large file meanwhile).
    const double full = metric(broker.metrics_port(), "gophermq_storage_bytes");
    ASSERT_GT(full, 300000.0 - 2 * 65536) << "round " << round << ", " << published << " published";
    const auto fetched = client.post("/api/fetch", fetch_body("f.a", id, R"(,"max":1000)"));
    ASSERT_EQ(fetched.status, 200u);
    ASSERT_EQ(data_of(fetched).size(), static_cast<std::size_t>(published));
    // The checkpoint that lets the old files go.
    const auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline &&
           metric(broker.metrics_port(), "gophermq_storage_bytes") >= full) {
      std::this_thread::sleep_for(2ms);  // a poll interval, not a wait
    }
    ASSERT_LT(metric(broker.metrics_port(), "gophermq_storage_bytes"), full) << "round " << round;
    EXPECT_EQ(metric(broker.metrics_port(), "gophermq_pending_messages"), 0.0);
    const auto answer = client.post("/api/publish", publish_body("f.a", body));
    EXPECT_EQ(answer.status, 200u) << "round " << round << ": " << answer.body;
    ASSERT_EQ(data_of(client.post("/api/fetch", fetch_body("f.a", id))).size(), 1u);
  }
}

// Recovery is held at its first read of the log (the shim's hold FIFO) for as long as the test
// needs, so the 503 is observed without racing a fast recovery.
TEST(StorageFaults, ReadyAnswers503RecoveringUntilRecoveryIsDone) {
  Scratch scratch;
  std::string id;
  {
    BrokerProcess broker(scratch.arguments("always"));
    HttpClient client(broker.api_port());
    const auto subscribed = client.post("/api/subscribe", subscribe_body("r"));
    ASSERT_EQ(subscribed.status, 200u) << subscribed.body;
    id = json::parse(subscribed.body).as_object().at("id").as_string().c_str();
    ASSERT_EQ(client.post("/api/publish", publish_body("r", "kept")).status, 200u);
    broker.send_signal(SIGTERM);
    ASSERT_EQ(broker.wait_for_exit(), 0) << broker.log();
  }
  const fs::path hold = scratch.root / "hold";
  ASSERT_EQ(::mkfifo(hold.c_str(), 0600), 0);
  std::vector<std::string> environment = scratch.shim();
  environment.push_back("GOPHERMQ_SHIM_HOLD_READ=" + hold.string());
  BrokerProcess broker(scratch.arguments("always"), environment, false);
  const std::string listening = broker.wait_for_log("msg=listening listener=api");
  HttpClient client(
      static_cast<std::uint16_t>(std::stoul(listening.substr(listening.rfind("port=") + 5))));
  for (int i = 0; i < 3; ++i) {
    const auto waiting = client.get("/ready");
    EXPECT_EQ(waiting.status, 503u);
    EXPECT_EQ(waiting.body, "{\"message\":\"recovering\"}\n");
  }
  EXPECT_EQ(broker.log().find("msg=ready"), std::string::npos) << broker.log();
  // Opening the FIFO waits for the broker's end; closing it lets the read go on.
  const int writer = ::open(hold.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(writer, 0) << std::strerror(errno);
  ::close(writer);
  broker.wait_for_log("msg=ready");
  EXPECT_EQ(client.get("/ready").status, 204u);
  EXPECT_EQ(client.post("/api/fetch", fetch_body("r", id)).body, fetched("r", id, "\"kept\""));
}

}  // namespace
}  // namespace gophermq::test
