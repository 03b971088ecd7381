#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "broker/journal.hpp"
#include "storage/frame.hpp"
#include "support/api_texts.hpp"
#include "support/broker_process.hpp"
#include "support/http_client.hpp"
#include "support/temp_files.hpp"

namespace gophermq::test {
namespace {

namespace fs = std::filesystem;

// A broker with its log in a directory of its own, restarted on the same directory at will.
class Storage : public testing::Test {
 protected:
  TempDir dir;
  std::vector<std::string> options;
  std::optional<BrokerProcess> broker;
  std::optional<HttpClient> client;

  void start(std::vector<std::string> extra = {}) {
    options = std::move(extra);
    restart_process();
  }

  void restart_process() {
    client.reset();
    std::vector<std::string> arguments{"--storage.dir=" + dir.string()};
    arguments.insert(arguments.end(), options.begin(), options.end());
    broker.emplace(isolated_arguments(arguments));
    client.emplace(broker->api_port());
  }

  void stop(int signal) {
    client.reset();
    broker->send_signal(signal);
    broker->wait_for_exit();
    broker.reset();
  }

  std::string subscribe(std::string_view subject, std::string_view group = "") {
    const std::string body = group.empty() ? subscribe_body(subject)
                                           : R"({"subject":")" + std::string(subject) +
                                                 R"(","group":")" + std::string(group) + "\"}";
    const auto response = client->post("/api/subscribe", body);
    EXPECT_EQ(response.status, 200U) << response.body;
    return id_of(response);
  }

  unsigned publish(std::string_view subject, std::string_view data) {
    return client->post("/api/publish", publish_body(subject, data)).status;
  }

  // Publishes `data` to `subject` until a publish is refused or `most` are stored: how many were
  // stored, and the refusal's status (200 when none came).
  std::pair<int, unsigned> fill(std::string_view subject, std::string_view data, int most) {
    unsigned status = 200;
    int stored = 0;
    while (status == 200 && stored < most) {
      status = publish(subject, data);
      stored += status == 200 ? 1 : 0;
    }
    return {stored, status};
  }

  // Publishes until one is taken: once a checkpoint frees the log, which is disk work a loaded
  // machine may take its time over, so the bound is a generous time. The last status.
  unsigned publish_until_taken(std::string_view subject, std::string_view data) {
    unsigned status = 507;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (status != 200 && std::chrono::steady_clock::now() < give_up) {
      status = publish(subject, data);
    }
    return status;
  }

  HttpResponse fetch(std::string_view subject, std::string_view id, int max = 1000) {
    return client->post("/api/fetch", fetch_body(subject, id, ",\"max\":" + std::to_string(max)));
  }

  [[nodiscard]] std::vector<fs::path> log_files() const {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir.path())) {
      if (entry.path().extension() == ".wal") {
        files.push_back(entry.path());
      }
    }
    std::sort(files.begin(), files.end());
    return files;
  }
};

// Operators find the threads in top -H, perf and gdb by name, and bench/storage.sh reads the
// sync thread's CPU time by it.
TEST_F(Storage, TheBrokersThreadsAreNamed) {
  start();
  std::multiset<std::string> names;
  for (const auto& task :
       fs::directory_iterator("/proc/" + std::to_string(broker->pid()) + "/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    names.insert(name);
  }
  EXPECT_GE(names.count("gophermq-io"), 1U);
  EXPECT_EQ(names.count("gophermq-write"), 1U);
  EXPECT_EQ(names.count("gophermq-sync"), 1U);
}

TEST_F(Storage, ARestartKeepsSubscriptionsAndPendingMessagesInOrder) {
  start();
  const std::string plain = subscribe("orders.created");
  const std::string wildcard = subscribe("orders.>");
  const std::string worker = subscribe("jobs", "workers");
  ASSERT_EQ(publish("orders.created", "one"), 200U);
  ASSERT_EQ(publish("orders.created", "two"), 200U);
  ASSERT_EQ(publish("orders.paid", "three"), 200U);
  ASSERT_EQ(publish("jobs", "job"), 200U);
  ASSERT_EQ(
      client->post("/api/publish/batch", R"({"subject":"orders.created","data":["four","five"]})")
          .status,
      200U);
  EXPECT_EQ(fetch("orders.created", plain, 1).body, fetched("orders.created", plain, "\"one\""));

  for (const int signal : {SIGTERM, SIGKILL}) {
    stop(signal);
    restart_process();
    EXPECT_EQ(broker->log().find("truncated_bytes=0") != std::string::npos, true) << broker->log();
  }
  EXPECT_EQ(fetch("orders.created", plain).body,
            fetched("orders.created", plain, R"("two","four","five")"));
  // `>` is escaped in JSON answers as the original escapes it.
  EXPECT_EQ(fetch("orders.>", wildcard).body,
            fetched("orders.\\u003e", wildcard, R"("one","two","three","four","five")"));
  EXPECT_EQ(fetch("jobs", worker).body, fetched("jobs", worker, "\"job\""));
  // A fetched message stays fetched: its removal was written before the answer.
  stop(SIGKILL);
  restart_process();
  EXPECT_EQ(fetch("orders.created", plain).body, fetched("orders.created", plain, ""));
  EXPECT_EQ(fetch("orders.>", wildcard).body, fetched("orders.\\u003e", wildcard, ""));
  // And a new publish numbers on from where the log left off.
  ASSERT_EQ(publish("orders.created", "six"), 200U);
  EXPECT_EQ(fetch("orders.created", plain).body, fetched("orders.created", plain, "\"six\""));
}

TEST_F(Storage, AsyncPublishesAcceptedBeforeSigtermAreKept) {
  start();
  const std::string id = subscribe("s");
  std::string expected;
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(client->post("/api/publish/async", publish_body("s", std::to_string(i))).status,
              200U);
    expected += (i == 0 ? "\"" : ",\"") + std::to_string(i) + "\"";
  }
  stop(SIGTERM);
  restart_process();
  EXPECT_EQ(fetch("s", id).body, fetched("s", id, expected));
}

TEST_F(Storage, AnUnsubscribeSurvivesARestart) {
  start();
  const std::string id = subscribe("a");
  ASSERT_EQ(client->post("/api/unsubscribe", fetch_body("a", id)).status, 200U);
  stop(SIGKILL);
  restart_process();
  EXPECT_EQ(fetch("a", id).status, 404U);
}

// A message queued on a wildcard pattern keeps the subject it was published to, delivered (ack
// mode) or not: the second restart reads both from the checkpoint the first one wrote.
TEST_F(Storage, AQueuedMessageKeepsItsSubjectThroughACheckpoint) {
  start();
  const std::string plain = subscribe("orders.*");
  const auto acked = client->post("/api/subscribe", R"({"subject":"orders.*","ack":true})");
  ASSERT_EQ(acked.status, 200U) << acked.body;
  const std::string ack = id_of(acked);
  ASSERT_EQ(publish("orders.eu", "one"), 200U);
  ASSERT_EQ(publish("orders.us", "two"), 200U);
  ASSERT_EQ(client->post("/api/fetch", fetch_body("orders.*", ack, R"(,"max":1)")).status, 200U);
  // A clean stop: the checkpoint the first restart wrote is whole on disk.
  for (int restart = 0; restart < 2; ++restart) {
    stop(SIGTERM);
    restart_process();
  }
  for (const std::string& id : {plain, ack}) {
    const auto answer = client->post("/api/fetch", fetch_body("orders.*", id, R"(,"meta":true)"));
    ASSERT_EQ(answer.status, 200U);
    const auto eu = answer.body.find(R"("subject":"orders.eu")");
    const auto us = answer.body.find(R"("subject":"orders.us")");
    ASSERT_NE(eu, std::string::npos) << answer.body;
    ASSERT_NE(us, std::string::npos) << answer.body;
    EXPECT_LT(eu, us) << answer.body;
  }
}

TEST_F(Storage, ManyRestartsAndFilesLoseNothing) {
  // Small files: the log rolls and checkpoints many times over.
  start({"--storage.file-bytes=4096", "--storage.max-bytes=1048576"});
  const std::string id = subscribe("s");
  std::string expected;
  int next = 0;
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 60; ++i, ++next) {
      ASSERT_EQ(publish("s", "message-" + std::to_string(next)), 200U);
      expected += (expected.empty() ? "" : ",") + ("\"message-" + std::to_string(next) + "\"");
    }
    stop(round % 2 == 0 ? SIGKILL : SIGTERM);
    restart_process();
  }
  EXPECT_EQ(fetch("s", id).body, fetched("s", id, expected));
}

// Publishers filling 4 KiB files faster than the log makes the next one: a publish that finds no
// file ready waits for it, since the disk has room, instead of being refused 507 "storage full".
TEST_F(Storage, PublishersOutpacingSmallFilesAreNeverRefusedWhileTheDiskHasRoom) {
  start({"--storage.file-bytes=4096", "--storage.max-bytes=1073741824"});
  const std::string id = subscribe("s");
  constexpr std::size_t kPublishers = 8;
  constexpr std::ptrdiff_t kEach = 50;
  const std::string data(2000, 'x');  // one a file: every publish needs the next file
  std::vector<std::vector<unsigned>> statuses(kPublishers);
  {
    std::vector<std::jthread> publishers;
    for (std::size_t p = 0; p < kPublishers; ++p) {
      publishers.emplace_back([&, p] {
        HttpClient connection(broker->api_port());
        for (std::ptrdiff_t n = 0; n < kEach; ++n) {
          statuses[p].push_back(connection.post("/api/publish", publish_body("s", data)).status);
        }
      });
    }
  }
  for (const auto& answers : statuses) {
    EXPECT_EQ(std::count(answers.begin(), answers.end(), 200U), kEach);
  }
  HttpClient metrics(broker->metrics_port());
  EXPECT_NE(metrics.get("/metrics").body.find(limit_hits("storage.max-bytes", 0)),
            std::string::npos);
  const std::string one = '"' + data + '"';
  std::string expected = one;
  for (std::size_t n = 1; n < kPublishers * static_cast<std::size_t>(kEach); ++n) {
    expected += "," + one;
  }
  EXPECT_EQ(fetch("s", id, 100000).body, fetched("s", id, expected));
}

// A checkpoint due (here: consumption drained files larger than file-bytes) waits for the write
// in flight before it starts; a publish needing a new file meanwhile waits for the checkpoint
// instead of being refused 507, since the log holds far less than max-bytes.
TEST_F(Storage, APublishWaitsForADueCheckpointInsteadOfBeingRefused) {
  start({"--storage.file-bytes=4096", "--storage.max-bytes=65536"});
  const std::string id = subscribe("s");
  const std::string data(9000, 'x');
  ASSERT_EQ(publish("s", data), 200U);
  const std::string one = '"' + data + '"';
  ASSERT_EQ(client
                ->post("/api/publish/batch",
                       R"({"subject":"s","data":[)" + one + "," + one + "," + one + "]}")
                .status,
            200U);
  ASSERT_EQ(client->post("/api/publish/async", publish_body("s", data)).status, 200U);
  ASSERT_EQ(fetch("s", id).status, 200U);
  const std::string large(20000, 'y');
  const auto answer = client->post("/api/publish", publish_body("s", large));
  EXPECT_EQ(answer.status, 200U) << answer.body;
  HttpClient metrics(broker->metrics_port());
  EXPECT_NE(metrics.get("/metrics").body.find(limit_hits("storage.max-bytes", 0)),
            std::string::npos);
  EXPECT_NE(fetch("s", id).body.find('"' + large + "\"]"), std::string::npos);
}

// A message of most of max-bytes, fetched, leaves the log's checkpoint in the large file made for
// it. Messages larger than a file are taken again after it (they used to be refused 507 until
// small publishes moved the log on), and one larger than max-bytes still is not.
TEST_F(Storage, AfterALargeMessageIsFetchedTheNextLargeOnesAreTaken) {
  start({"--storage.file-bytes=4096", "--storage.max-bytes=65536"});
  const std::string id = subscribe("s");
  ASSERT_EQ(publish("s", std::string(60000, 'x')), 200U);
  ASSERT_EQ(fetch("s", id).status, 200U);
  const std::string data(10000, 'y');
  for (int n = 0; n < 3; ++n) {
    EXPECT_EQ(publish("s", data), 200U) << n;
  }
  const std::string one = '"' + data + '"';
  EXPECT_EQ(fetch("s", id).body, fetched("s", id, one + "," + one + "," + one));
  EXPECT_EQ(publish("s", std::string(70000, 'z')), 507U);
}

TEST_F(Storage, DiskUseFollowsWhatIsPendingAndAFullLogAnswers507) {
  start({"--storage.file-bytes=4096", "--storage.max-bytes=16384"});
  const std::string id = subscribe("s");
  const std::string data(200, 'x');
  const int stored = fill("s", data, 1000).first;
  const auto refused = client->post("/api/publish", publish_body("s", data));
  EXPECT_EQ(refused.status, 507U);
  EXPECT_EQ(refused.body, "{\"message\":\"storage full\"}\n");
  EXPECT_GT(stored, 20);
  // Nothing of a refused publish is stored; fetches keep working and free the log.
  const auto all = fetch("s", id, 100000);
  EXPECT_EQ(all.status, 200U);
  EXPECT_EQ(all.body.size(),
            fetched("s", id, "").size() + static_cast<std::size_t>(stored) * (data.size() + 3) - 1);
  HttpClient metrics(broker->metrics_port());
  const std::string text = metrics.get("/metrics").body;
  EXPECT_NE(text.find(limit_hits("storage.max-bytes", 2)), std::string::npos) << text;
  // Once a checkpoint lets the old files go, publishes are taken again.
  EXPECT_EQ(publish_until_taken("s", data), 200U);
  // Within max-bytes but for the one file a checkpoint may take beyond it to free the others.
  const std::string after = metrics.get("/metrics").body;
  const std::size_t at = after.find("\ngophermq_storage_bytes ");
  ASSERT_NE(at, std::string::npos);
  EXPECT_LE(std::stoull(after.substr(at + 24)), 16384U + 4096U) << after.substr(at, 40);
}

// The contract's key alone (no storage.file-bytes, which is ours): the broker starts, fills up to
// 507 and takes publishes again once fetches free the log.
TEST_F(Storage, ASmallMaxBytesAloneBoundsTheLog) {
  start({"--storage.max-bytes=65536"});
  const std::string id = subscribe("s");
  const auto [stored, refusal] = fill("s", std::string(200, 'x'), 10000);
  EXPECT_EQ(refusal, 507U);
  EXPECT_GT(stored, 100);
  EXPECT_EQ(fetch("s", id, 100000).status, 200U);
  EXPECT_EQ(publish_until_taken("s", "x"), 200U);
}

TEST_F(Storage, ATornTailIsCutCountedAndLogged) {
  start();
  const std::string id = subscribe("s");
  ASSERT_EQ(publish("s", "kept"), 200U);
  stop(SIGKILL);
  // Right after the last record (files are preallocated with zeros): a torn write.
  const fs::path newest = log_files().front();
  std::string bytes(fs::file_size(newest), '\0');
  std::ifstream(newest, std::ios::binary)
      .read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  const std::size_t end = bytes.find_last_not_of('\0') + 1;
  {
    std::fstream file(newest, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(end));
    file.write("torn sector data", 16);
  }
  restart_process();
  EXPECT_NE(broker->log().find("truncated_bytes=16 "), std::string::npos) << broker->log();
  HttpClient metrics(broker->metrics_port());
  EXPECT_NE(
      metrics.get("/metrics").body.find(metric_line("gophermq_storage_truncated_bytes_total 16")),
      std::string::npos);
  EXPECT_EQ(fetch("s", id).body, fetched("s", id, "\"kept\""));
}

TEST_F(Storage, CorruptionInAnOlderFileRefusesTheStart) {
  start({"--storage.file-bytes=4096", "--storage.max-bytes=1048576"});
  subscribe("s");
  for (int i = 0; i < 40; ++i) {
    ASSERT_EQ(publish("s", std::string(100, 'a')), 200U);
  }
  stop(SIGKILL);
  const auto files = log_files();
  ASSERT_GE(files.size(), 3U);
  {
    std::fstream file(files.front(), std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(100);
    file.put('\x7f');
  }
  const auto run = run_to_exit(isolated_arguments({"--storage.dir=" + dir.string()}));
  EXPECT_EQ(run.status, 1);
  EXPECT_NE(run.output.find("corrupt record in " + files.front().string() + " at byte "),
            std::string::npos)
      << run.output;
}

// The reviewer's case: one flipped byte inside the first of ten answered publishes, the nine
// frames after it intact, in the newest file. Cutting there would lose ten answered messages.
TEST_F(Storage, CorruptionInsideTheNewestFileRefusesTheStartAndKeepsEveryFile) {
  start();
  subscribe("c.a");
  for (int i = 1; i <= 10; ++i) {
    ASSERT_EQ(publish("c.a", "message " + std::to_string(i) + " of ten"), 200U);
  }
  stop(SIGKILL);
  const fs::path newest = dir.path() / "00000000000000000001.wal";
  std::string bytes(fs::file_size(newest), '\0');
  std::ifstream(newest, std::ios::binary)
      .read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  std::optional<std::size_t> first_publish;
  storage::scan_frames(bytes, [&](std::string_view payload, std::size_t offset) {
    if (payload.find("message 1 of ten") != std::string_view::npos) {
      first_publish = offset;
    }
    return !first_publish;
  });
  ASSERT_TRUE(first_publish);
  const std::size_t flipped = bytes.find("message 1 of ten") + 3;
  bytes[flipped] = 'X';
  std::ofstream(newest, std::ios::binary | std::ios::in)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  const auto before = log_files();

  const auto run = run_to_exit(isolated_arguments({"--storage.dir=" + dir.string()}));
  EXPECT_EQ(run.status, 1);
  const std::string line = "storage: corrupt record in " + newest.string() + " at byte " +
                           std::to_string(*first_publish);
  EXPECT_NE(run.output.find(line), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find(line), run.output.rfind(line)) << run.output;
  EXPECT_EQ(log_files(), before);
  std::string after(fs::file_size(newest), '\0');
  std::ifstream(newest, std::ios::binary)
      .read(after.data(), static_cast<std::streamsize>(after.size()));
  EXPECT_EQ(after, bytes);
}

TEST_F(Storage, ALogOfAnOlderFormatRefusesTheStart) {
  // Format 1 wrote a checkpoint as its type, reason 0, grouped 0, time, seq and count in eight
  // bytes each, three four-byte string lengths and a four-byte message count.
  std::string payload(43, '\0');
  payload[0] = static_cast<char>(broker::RecordType::checkpoint);
  payload[11] = 5;
  std::string bytes;
  const std::size_t start = storage::open_frame(bytes);
  bytes += payload;
  storage::seal_frame(bytes, start);
  const fs::path file = dir.path() / "00000000000000000001.wal";
  std::ofstream(file, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  const auto run = run_to_exit(isolated_arguments({"--storage.dir=" + dir.string()}));
  EXPECT_EQ(run.status, 1);
  EXPECT_NE(run.output.find("storage: " + file.string() +
                            " is in log format 1, this broker reads format 3 only"),
            std::string::npos)
      << run.output;
  EXPECT_EQ(fs::file_size(file), bytes.size());
}

TEST_F(Storage, TwoBrokersCannotShareALog) {
  start();
  const auto second = run_to_exit(isolated_arguments({"--storage.dir=" + dir.string()}));
  EXPECT_EQ(second.status, 1);
  EXPECT_NE(second.output.find("in use by another broker"), std::string::npos) << second.output;
}

TEST_F(Storage, SyncedPublishesAreTimedInTheFsyncHistogram) {
  start();
  subscribe("s");
  ASSERT_EQ(publish("s", "x"), 200U);
  HttpClient metrics(broker->metrics_port());
  const std::string text = metrics.get("/metrics").body;
  EXPECT_EQ(text.find(metric_line("gophermq_storage_fsync_seconds_count 0")), std::string::npos);
  EXPECT_NE(text.find("gophermq_storage_fsync_seconds_count "), std::string::npos);
  EXPECT_NE(text.find(metric_line("gophermq_storage_files 2")), std::string::npos) << text;
}

TEST(StorageConfig, BadValuesAreRefusedNamingTheKey) {
  const auto fsync = run_to_exit({"broker", "--storage.fsync=sometimes"});
  EXPECT_EQ(fsync.status, 2);
  EXPECT_NE(fsync.output.find("storage.fsync"), std::string::npos) << fsync.output;
  const auto sizes =
      run_to_exit({"broker", "--storage.file-bytes=1048576", "--storage.max-bytes=1048576"});
  EXPECT_EQ(sizes.status, 2);
  EXPECT_NE(sizes.output.find("storage.max-bytes must be at least three times storage.file-bytes"),
            std::string::npos)
      << sizes.output;
}

}  // namespace
}  // namespace gophermq::test
