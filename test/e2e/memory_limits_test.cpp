// Request bodies being received share one budget, max-receiving-bytes: uploads that would take
// the process over it are refused with 503, stalled uploads cannot hold more memory than it, and
// the memory they held is returned once they are gone (issue 12, item 5).
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/api_texts.hpp"
#include "support/broker_process.hpp"
#include "support/http_client.hpp"
#include "support/sanitizers.hpp"

namespace gophermq::test {
namespace {

// Sanitizers' shadow memory and quarantine make RSS say nothing about the broker's own use.
#ifdef GOPHERMQ_TEST_SANITIZED
constexpr bool kMeasuresRss = false;
#else
constexpr bool kMeasuresRss = true;
#endif

constexpr std::size_t kMiB = 1024 * 1024;
constexpr std::size_t kBudget = 8 * kMiB;
constexpr std::size_t kBody = kMiB;
constexpr std::size_t kStalledConnections = 64;
// What 64 connections, the metrics client and the allocator's caches may add to RSS beside the
// bodies the budget admits.
constexpr double kOverheadBytes = 8.0 * static_cast<double>(kMiB);
// How far above its baseline RSS may stay once the clients are gone.
constexpr double kAfterAllowanceBytes = 2.0 * static_cast<double>(kMiB);

std::vector<std::string> flood_arguments(std::size_t max_body_bytes,
                                         std::string_view read_timeout) {
  return isolated_arguments({"--broker.max-receiving-bytes=" + std::to_string(kBudget),
                             "--broker.max-body-bytes=" + std::to_string(max_body_bytes),
                             "--broker.read-timeout=" + std::string(read_timeout)});
}

double metric(HttpClient& metrics, std::string_view name) {
  const std::string text = metrics.get("/metrics").body;
  const std::string prefix = "\n" + std::string(name) + " ";
  const auto at = text.find(prefix);
  if (at == std::string::npos) {
    ADD_FAILURE() << name << " missing";
    return 0;
  }
  return std::stod(text.substr(at + prefix.size()));
}

// Bytes sent to or by `port` on loopback that the receiving process has not read yet: 0 once the
// broker has taken in everything the clients sent.
std::size_t unread_bytes(std::uint16_t port) {
  std::ifstream table("/proc/net/tcp");
  std::string line;
  std::getline(table, line);
  std::size_t unread = 0;
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string slot;
    std::string local;
    std::string remote;
    std::string state;
    std::string queues;
    fields >> slot >> local >> remote >> state >> queues;
    const auto port_of = [](const std::string& address) {
      return std::stoul(address.substr(address.find(':') + 1), nullptr, 16);
    };
    constexpr std::string_view kEstablished = "01";  // a closed peer's FIN counts as a byte
    if (state != kEstablished || (port_of(local) != port && port_of(remote) != port)) {
      continue;
    }
    const auto colon = queues.find(':');
    unread += std::stoul(queues.substr(0, colon), nullptr, 16) +
              std::stoul(queues.substr(colon + 1), nullptr, 16);
  }
  return unread;
}

bool wait_until_read(std::uint16_t port) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (unread_bytes(port) != 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

std::string upload_head(std::size_t length) {
  return "POST /api/publish HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
         "Expect: 100-continue\r\nContent-Length: " +
         std::to_string(length) + "\r\n\r\n";
}

void expect_busy(const HttpResponse& response) {
  EXPECT_EQ(response.status, 503U);
  EXPECT_EQ(response.body, "{\"message\":\"server busy\"}\n");
  EXPECT_EQ(response.header("retry-after"), "1");
  EXPECT_EQ(response.header("connection"), "close");
}

TEST(MemoryLimits, StalledUploadsOverTheReceiveBudgetAre503AndTheirMemoryIsReturned) {
  BrokerProcess broker(flood_arguments(kBody, "60s"));
  // A large body freed moves glibc's mmap threshold above it, so from now on bodies of this size
  // live in the allocator's arenas, as on a broker that has served traffic: nothing gives their
  // memory back to the system but the broker itself.
  for (int i = 0; i < 2; ++i) {
    HttpClient warm_up(broker.api_port());
    warm_up.send_raw(upload_head(kBody));
    ASSERT_EQ(warm_up.read_response().status, 100U);
    warm_up.send_raw(std::string(kBody, 'x'));
    EXPECT_EQ(warm_up.read_response().status, 400U);
  }
  HttpClient metrics(broker.metrics_port());
  const double baseline_rss = metric(metrics, "process_resident_memory_bytes");
  const double baseline_fds = metric(metrics, "process_open_fds");

  // Each client declares 1 MiB and sends all of it but 100 bytes. The server reserves the body
  // before it answers 100 Continue, so the clients are admitted strictly in order.
  std::vector<std::unique_ptr<HttpClient>> clients;
  std::size_t admitted = 0;
  std::size_t refused = 0;
  for (std::size_t i = 0; i < kStalledConnections; ++i) {
    auto& client = clients.emplace_back(std::make_unique<HttpClient>(broker.api_port()));
    client->send_raw(upload_head(kBody));
    const auto interim = client->read_response();
    if (interim.status == 100U) {
      ++admitted;
      client->send_raw(std::string(kBody - 100, 'x'));
    } else {
      ++refused;
      expect_busy(interim);
      EXPECT_TRUE(client->closed_cleanly());
    }
  }
  EXPECT_EQ(admitted, kBudget / kBody);
  EXPECT_EQ(refused, kStalledConnections - kBudget / kBody);
  expect_eventually(metrics, "/metrics",
                    limit_hits("max-receiving-bytes", static_cast<int>(refused)));

  // The budget is the broker's, not one connection's: other clients are refused too, and requests
  // without a body to receive still work.
  HttpClient other(broker.api_port());
  other.send_raw("POST /api/publish HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n{");
  expect_busy(other.read_response());
  EXPECT_EQ(HttpClient(broker.api_port()).get("/ready").status, 204U);

  if (kMeasuresRss) {
    ASSERT_TRUE(wait_until_read(broker.api_port()));
    const double during = metric(metrics, "process_resident_memory_bytes");
    EXPECT_LT(during - baseline_rss, static_cast<double>(kBudget) + kOverheadBytes)
        << "baseline " << baseline_rss << " during " << during;
  }

  clients.clear();
  // The broker has seen every close once its descriptors are back to the baseline.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (metric(metrics, "process_open_fds") > baseline_fds &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(metric(metrics, "process_open_fds"), baseline_fds);

  // The budget is whole again: eight more uploads are admitted, the ninth is not.
  for (std::size_t i = 0; i < kBudget / kBody; ++i) {
    auto& client = clients.emplace_back(std::make_unique<HttpClient>(broker.api_port()));
    client->send_raw(upload_head(kBody));
    EXPECT_EQ(client->read_response().status, 100U);
  }
  HttpClient ninth(broker.api_port());
  ninth.send_raw(upload_head(kBody));
  expect_busy(ninth.read_response());
  clients.clear();

  if (kMeasuresRss) {
    // Freed memory goes back to the system on the broker's own time: a bounded poll on RSS.
    double after = metric(metrics, "process_resident_memory_bytes");
    const auto rss_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (after - baseline_rss > kAfterAllowanceBytes &&
           std::chrono::steady_clock::now() < rss_deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      after = metric(metrics, "process_resident_memory_bytes");
    }
    EXPECT_LT(after - baseline_rss, kAfterAllowanceBytes)
        << "baseline " << baseline_rss << " after " << after;
  }
}

TEST(MemoryLimits, AChunkedBodyIsCountedAsItGrows) {
  // A body the budget failed to stop would hang in the server until the read-timeout.
  BrokerProcess broker(flood_arguments(16 * kMiB, "5s"));
  HttpClient client(broker.api_port());
  client.send_raw(
      "POST /api/publish HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
      "Expect: 100-continue\r\n\r\n");
  ASSERT_EQ(client.read_response().status, 100U);
  // 9 MiB in chunks of 64 KiB: the server refuses once the body would pass the 8 MiB budget and
  // discards the rest while the answer is read.
  const std::string chunk = "10000\r\n" + std::string(64 * 1024, 'x') + "\r\n";
  for (std::size_t sent = 0; sent < 9 * kMiB; sent += 64 * 1024) {
    client.send_raw(chunk);
  }
  expect_busy(client.read_response());
  HttpClient metrics(broker.metrics_port());
  expect_eventually(metrics, "/metrics", limit_hits("max-receiving-bytes", 1));

  // A chunked body within the budget is received as before.
  HttpClient small(broker.api_port());
  small.send_raw(
      "POST /api/subscribe HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
      "e\r\n{\"subject\":\"s\"\r\n1\r\n}\r\n0\r\n\r\n");
  EXPECT_EQ(small.read_response().status, 200U);
}

}  // namespace
}  // namespace gophermq::test
