// The default HTTP thread count follows the CPUs the broker may run on, not the machine's; with one
// HTTP thread the broker runs on that thread too.
#include <gtest/gtest.h>
#include <sched.h>

#include <csignal>
#include <string>
#include <vector>

#include "support/api_texts.hpp"
#include "support/broker_process.hpp"
#include "support/http_client.hpp"

namespace gophermq::test {
namespace {

// Runs `body` with this thread pinned to the first CPU it may use, so a child started meanwhile
// inherits that mask, and restores the mask afterwards.
template <typename Body>
void pinned_to_one_cpu(Body body) {
  cpu_set_t original;
  ASSERT_EQ(sched_getaffinity(0, sizeof(original), &original), 0);
  cpu_set_t one;
  CPU_ZERO(&one);
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &original)) {
      CPU_SET(cpu, &one);
      break;
    }
  }
  ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
  body();
  ASSERT_EQ(sched_setaffinity(0, sizeof(original), &original), 0);
}

// isolated_arguments() without its fixed thread count.
std::vector<std::string> arguments_without_threads(std::vector<std::string> extra = {}) {
  std::vector<std::string> arguments = isolated_arguments();
  std::erase_if(arguments,
                [](const std::string& argument) { return argument.starts_with("--threads="); });
  arguments.insert(arguments.end(), extra.begin(), extra.end());
  return arguments;
}

TEST(Threads, ABrokerPinnedToOneCpuStartsOneHttpThread) {
  pinned_to_one_cpu([] {
    BrokerProcess broker(arguments_without_threads());
    EXPECT_NE(broker.log().find("msg=ready http_threads=1\n"), std::string::npos) << broker.log();
  });
}

TEST(Threads, AnExplicitThreadCountWinsOverTheCpus) {
  pinned_to_one_cpu([] {
    BrokerProcess broker(arguments_without_threads({"--threads=3"}));
    EXPECT_NE(broker.log().find("msg=ready http_threads=3\n"), std::string::npos) << broker.log();
  });
}

// Everything that runs on the broker strand besides the calls (the async worker, a waiting fetch,
// the expiry timer, the shutdown steps) still runs when the strand shares the only HTTP thread.
TEST(Threads, OneHttpThreadServesEveryRouteAndShutsDownCleanly) {
  BrokerProcess broker(arguments_without_threads({"--threads=1", "--broker.message-ttl=1s"}));
  ASSERT_NE(broker.log().find("msg=ready http_threads=1\n"), std::string::npos) << broker.log();
  HttpClient client(broker.api_port());
  const std::string id = subscribe(client, "s");

  EXPECT_EQ(client.post("/api/publish", publish_body("s", "sync")).status, 200U);
  EXPECT_EQ(client.post("/api/publish/batch", R"({"subject":"s","data":["b1","b2"]})").status,
            200U);
  EXPECT_EQ(client.post("/api/fetch", fetch_body("s", id)).body,
            fetched("s", id, R"("sync","b1","b2")"));

  HttpClient waiting(broker.api_port());
  waiting.send_raw(post_request("/api/fetch", fetch_body("s", id, R"(,"wait_ms":20000)")));
  expect_eventually(client, "/api/stats", waiting_fetches(1));
  EXPECT_EQ(client.post("/api/publish", publish_body("s", "woke")).status, 200U);
  EXPECT_EQ(waiting.read_response().body, fetched("s", id, R"("woke")"));

  EXPECT_EQ(client.post("/api/publish/async", publish_body("s", "async")).status, 200U);
  EXPECT_EQ(client.post("/api/fetch", fetch_body("s", id, R"(,"wait_ms":20000)")).body,
            fetched("s", id, R"("async")"));

  EXPECT_EQ(client.post("/api/publish", publish_body("s", "stale")).status, 200U);
  expect_eventually(client, "/api/stats", R"("message_ttl":1,)");
  HttpClient metrics(broker.metrics_port());
  EXPECT_NE(metrics.get("/metrics").body.find("\n" + dropped("message_ttl", 1)), std::string::npos);

  waiting.send_raw(post_request("/api/fetch", fetch_body("s", id, R"(,"wait_ms":20000)")));
  expect_eventually(client, "/api/stats", waiting_fetches(1));
  broker.send_signal(SIGTERM);
  EXPECT_EQ(waiting.read_response().body, fetched("s", id, ""));
  EXPECT_EQ(broker.wait_for_exit(), 0);
  EXPECT_NE(broker.log().find("msg=stopped"), std::string::npos) << broker.log();
}

}  // namespace
}  // namespace gophermq::test
