// A real Prometheus (Debian's `prometheus`) scrapes the real broker with the shipped scrape config,
// and every PromQL expression of the shipped Grafana dashboard must return data, above 0 wherever
// the generated traffic moves it. A secured broker (monitoring.token, monitoring.tls) is scraped
// with the shipped secured scrape config: up with the right token, down with 401 with a wrong one.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "support/broker_process.hpp"
#include "support/http_client.hpp"
#include "support/temp_files.hpp"

namespace gophermq::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

std::uint16_t free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

std::string url_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char byte : text) {
    const auto c = static_cast<unsigned char>(byte);
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += {'%', kHex[c >> 4], kHex[c & 15]};
    }
  }
  return out;
}

// Every `expr` of every panel target, with Grafana's rate window replaced by one that covers a few
// of the test's one-second scrapes.
std::vector<std::string> dashboard_queries() {
  const auto dashboard = boost::json::parse(
      read_file(fs::path(GOPHERMQ_SOURCE_DIR) / "metrics/grafana/dashboards/gophermq.json"));
  std::vector<std::string> queries;
  for (const auto& panel : dashboard.at("panels").as_array()) {
    for (const auto& target : panel.at("targets").as_array()) {
      std::string expr(target.at("expr").as_string());
      replace_all(expr, "$__rate_interval", "10s");
      queries.push_back(expr);
    }
  }
  return queries;
}

// Fetches one message of the ack-mode subscription `id` on `subject` and answers it with `verb`
// (ack or nack); an empty verb leaves it in flight.
void fetch_one_and(HttpClient& client, const std::string& subject, const std::string& id,
                   const std::string& verb) {
  const std::string fetched =
      client.post("/api/fetch", R"({"subject":")" + subject + R"(","id":")" + id + R"(","max":1})")
          .body;
  std::smatch receipt;
  ASSERT_TRUE(std::regex_search(fetched, receipt, std::regex(R"re("receipt":"([^"]+)")re")))
      << fetched;
  if (!verb.empty()) {
    client.post("/api/" + verb, R"({"subject":")" + subject + R"(","id":")" + id +
                                    R"(","receipts":[")" + receipt[1].str() + R"("]})");
  }
}

// §9 traffic for the ack-mode panels: an ack, a nack and its redelivery (left in flight), a
// message dead-lettered to a subscribed subject, one whose dead_letter subject has no subscriber,
// one dropped at max_deliveries, and a duplicate msg_id. New subscriptions each time, as a
// subscription only gets what is published after it.
void generate_ack_traffic(HttpClient& client) {
  const std::string acked =
      id_of(client.post("/api/subscribe", R"({"subject":"obs.ack","ack":true})"));
  client.post("/api/publish/batch", R"({"subject":"obs.ack","data":["a","b"]})");
  fetch_one_and(client, "obs.ack", acked, "ack");
  fetch_one_and(client, "obs.ack", acked, "nack");
  fetch_one_and(client, "obs.ack", acked, "");
  client.post("/api/subscribe", R"({"subject":"obs.dead"})");
  for (const std::string dead_letter :
       {R"(,"dead_letter":"obs.dead")", R"(,"dead_letter":"obs.nowhere")", ""}) {
    const std::string id = id_of(
        client.post("/api/subscribe",
                    R"({"subject":"obs.last","ack":true,"max_deliveries":1)" + dead_letter + "}"));
    client.post("/api/publish", R"({"subject":"obs.last","data":"x"})");
    fetch_one_and(client, "obs.last", id, "nack");
    client.post("/api/unsubscribe", R"({"subject":"obs.last","id":")" + id + "\"}");
  }
  client.post("/api/publish", R"({"subject":"obs.kept","data":"x","msg_id":"obs"})");
  client.post("/api/publish", R"({"subject":"obs.kept","data":"x","msg_id":"obs"})");
}

// Requests of every route and outcome the dashboard plots, including drops and async failures.
void generate_traffic(HttpClient& client) {
  const auto subscribed = client.post("/api/subscribe", R"({"subject":"obs"})").body;
  const std::string id =
      std::regex_replace(subscribed, std::regex(R"re(.*"id":"([^"]+)".*\n?)re"), "$1");
  client.post("/api/publish", R"({"subject":"obs","data":"x"})");
  client.post("/api/publish/batch", R"({"subject":"obs","data":["a","b"]})");
  client.post("/api/publish/async", R"({"subject":"nobody","data":"x"})");
  client.post("/api/publish", R"({"subject":"nobody","data":"x"})");
  client.post("/api/fetch", R"({"subject":"obs","id":")" + id + R"(","max":1})");
  client.post("/api/unsubscribe", R"({"subject":"obs","id":")" + id + "\"}");
  client.post("/api/publish", R"({"subject":"obs.kept","data":"x"})");
  client.get("/ready");
  generate_ack_traffic(client);
}

// Queries the traffic leaves at 0: the async queue is drained at once, and the storage figures of
// a recovery (a fresh log replays nothing and cuts nothing) and of a full log move only in the
// storage tests, which restart the broker and fill its log.
bool may_stay_zero(std::string_view query) {
  for (const std::string_view name :
       {"gophermq_async_queue_depth", "gophermq_storage_recovered_records_total",
        "gophermq_storage_truncated_bytes_total", "storage.max-bytes", "storage_full"}) {
    if (query.find(name) != std::string_view::npos) {
      return true;
    }
  }
  return false;
}

// Whether the traffic keeps this series of this query above 0, so that a broker counter or gauge
// stuck at 0 fails the test. Only the queries above and the drop and failure reasons the traffic
// never causes are allowed to read 0.
bool moved_by_traffic(std::string_view query, const boost::json::object& labels) {
  const auto label = [&](std::string_view name) {
    const auto* value = labels.if_contains(name);
    return value != nullptr && value->is_string() ? std::string(value->get_string())
                                                  : std::string();
  };
  if (may_stay_zero(query)) {
    return false;
  }
  if (query.find("gophermq_dropped_messages_total") != std::string_view::npos) {
    return label("reason") == "unsubscribe" || label("reason") == "max_deliveries";
  }
  if (query.find("gophermq_async_publish_failed_total") != std::string_view::npos) {
    return label("reason") == "no_subscribers";
  }
  return true;
}

// What is wrong with one query's answer: no data, a series the traffic moves reading 0 (or NaN),
// or no series at all for a reason the traffic causes. Empty when all is well.
std::string problem_with(std::string_view query, const boost::json::value& answer) {
  const auto& result = answer.at("data").at("result").as_array();
  if (result.empty()) {
    return "no data";
  }
  bool any_moved = false;
  for (const auto& series : result) {
    const auto& labels = series.at("metric").as_object();
    if (!moved_by_traffic(query, labels)) {
      continue;
    }
    any_moved = true;
    const double value = std::stod(std::string(series.at("value").as_array().at(1).as_string()));
    if (!(value > 0)) {
      return "a series the traffic moves is not above 0: " + boost::json::serialize(series);
    }
  }
  if (!any_moved && !may_stay_zero(query)) {
    return "no series the traffic moves";
  }
  return {};
}

TEST(Observability, PrometheusScrapesTheBrokerAndEveryDashboardQueryReturnsData) {
  // With storage on, as the packaged deployments run, so the storage panels have a log to show.
  const TempDir storage;
  BrokerProcess broker(
      isolated_arguments({"--broker.max-wait-ms=600000", "--storage.dir=" + storage.string()}));
  HttpClient client(broker.api_port());
  // State the gauges show while the traffic runs: a subscription whose messages pile up, and a
  // long poll that waits for the whole test.
  client.post("/api/subscribe", R"({"subject":"obs.kept"})");
  const auto waiting_id = id_of(client.post("/api/subscribe", R"({"subject":"obs.quiet"})"));
  HttpClient waiting(broker.api_port());
  waiting.send_raw(post_request(
      "/api/fetch", R"({"subject":"obs.quiet","id":")" + waiting_id + R"(","wait_ms":600000})"));
  generate_traffic(client);

  const fs::path scratch =
      fs::path(testing::TempDir()) / ("gophermq-prometheus-" + std::to_string(getpid()));
  fs::remove_all(scratch);
  fs::create_directories(scratch);
  std::string config =
      read_file(fs::path(GOPHERMQ_SOURCE_DIR) / "metrics/prometheus/prometheus.yml");
  replace_all(config, "gophermq:9001", "127.0.0.1:" + std::to_string(broker.metrics_port()));
  replace_all(config, "scrape_interval: 5s", "scrape_interval: 1s");
  std::ofstream(scratch / "prometheus.yml") << config;

  const std::uint16_t port = free_port();
  BrokerProcess prometheus(GOPHERMQ_PROMETHEUS,
                           {"--config.file=" + (scratch / "prometheus.yml").string(),
                            "--storage.tsdb.path=" + (scratch / "data").string(),
                            "--web.listen-address=127.0.0.1:" + std::to_string(port)});
  prometheus.wait_for_log("Server is ready to receive web requests");
  HttpClient api(port);

  std::map<std::string, std::string> answers;
  std::map<std::string, std::string> problems;
  const auto deadline = std::chrono::steady_clock::now() + 45s;
  do {
    generate_traffic(client);
    problems.clear();
    for (const auto& query : dashboard_queries()) {
      answers[query] = api.get("/api/v1/query?query=" + url_encode(query)).body;
      if (auto problem = problem_with(query, boost::json::parse(answers[query]));
          !problem.empty()) {
        problems[query] = std::move(problem);
      }
    }
  } while (!problems.empty() && std::chrono::steady_clock::now() < deadline);
  for (const auto& [query, problem] : problems) {
    ADD_FAILURE() << problem << " for " << query << "\n" << answers[query];
  }
  EXPECT_EQ(dashboard_queries().size(), 33U);
  fs::remove_all(scratch);
}

// Runs a shell command (the openssl CLI), its output discarded; empty when it succeeded.
std::string run_quietly(const std::string& command) {
  const int status = std::system((command + " >/dev/null 2>&1").c_str());
  return status == 0 ? std::string() : "failed (" + std::to_string(status) + "): " + command;
}

// A throwaway CA and a certificate it signed for 127.0.0.1 (ca.pem, server.pem, server.key in
// `dir`), made with the openssl CLI as test/e2e/tls_test.py makes them.
void make_certificates(const fs::path& dir) {
  const std::string d = dir.string() + "/";
  const std::string new_key = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  std::ofstream(dir / "server.ext") << "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
  for (const auto& command : {"openssl req -x509" + new_key + " -keyout " + d + "ca.key -out " + d +
                                  "ca.pem -days 2 -subj /CN=gophermq-test-ca",
                              "openssl req" + new_key + " -keyout " + d + "server.key -out " + d +
                                  "server.csr -subj /CN=localhost",
                              "openssl x509 -req -in " + d + "server.csr -CA " + d +
                                  "ca.pem -CAkey " + d + "ca.key -CAcreateserial -out " + d +
                                  "server.pem -days 2 -extfile " + d + "server.ext"}) {
    ASSERT_EQ(run_quietly(command), "");
  }
}

// The first sample of an instant query, or -1 when it has none yet.
double sample_of(HttpClient& api, const std::string& query) {
  const auto answer = boost::json::parse(api.get("/api/v1/query?query=" + url_encode(query)).body);
  const auto& result = answer.at("data").at("result").as_array();
  if (result.empty()) {
    return -1;
  }
  return std::stod(std::string(result.at(0).at("value").as_array().at(1).as_string()));
}

// lastError of the active target of `job`, or "unscraped" before its first scrape ends.
std::string last_error_of(HttpClient& api, std::string_view job) {
  const auto answer = boost::json::parse(api.get("/api/v1/targets?state=active").body);
  for (const auto& target : answer.at("data").at("activeTargets").as_array()) {
    if (target.at("labels").at("job").as_string() == job &&
        target.at("health").as_string() != "unknown") {
      return std::string(target.at("lastError").as_string());
    }
  }
  return "unscraped";
}

TEST(Observability, PrometheusScrapesASecuredBrokerOverTlsWithTheBearerToken) {
  const TempDir scratch;
  make_certificates(scratch.path());
  ASSERT_FALSE(testing::Test::HasFatalFailure());
  std::ofstream(scratch.path() / "monitoring.token") << "scrape-secret\n";
  std::ofstream(scratch.path() / "wrong.token") << "not-the-scrape-secret\n";
  const std::string dir = scratch.string() + "/";
  BrokerProcess broker(isolated_arguments(
      {"--tls.cert-file=" + dir + "server.pem", "--tls.key-file=" + dir + "server.key",
       "--monitoring.tls=true", "--monitoring.token=scrape-secret"}));

  // The shipped job as it is, and a copy of it that presents a token the broker does not know.
  std::string config =
      read_file(fs::path(GOPHERMQ_SOURCE_DIR) / "metrics/prometheus/prometheus-secured.yml");
  replace_all(config, "gophermq:9001", "127.0.0.1:" + std::to_string(broker.metrics_port()));
  replace_all(config, "scrape_interval: 5s", "scrape_interval: 1s");
  replace_all(config, "/etc/prometheus/gophermq/", dir);
  const auto job_start = config.find("  - job_name: gophermq");
  ASSERT_NE(job_start, std::string::npos) << config;
  std::string wrong_job = config.substr(job_start);
  replace_all(wrong_job, "job_name: gophermq", "job_name: gophermq-wrong-token");
  replace_all(wrong_job, dir + "monitoring.token", dir + "wrong.token");
  ASSERT_NE(wrong_job.find(dir + "wrong.token"), std::string::npos) << wrong_job;
  config += wrong_job;
  std::ofstream(scratch.path() / "prometheus.yml") << config;

  const std::uint16_t port = free_port();
  BrokerProcess prometheus(
      GOPHERMQ_PROMETHEUS,
      {"--config.file=" + dir + "prometheus.yml", "--storage.tsdb.path=" + dir + "data",
       "--web.listen-address=127.0.0.1:" + std::to_string(port)});
  prometheus.wait_for_log("Server is ready to receive web requests");
  HttpClient api(port);

  // The refused scrapes show on the broker's own counter, read through the accepted ones.
  const std::string refusals = R"(gophermq_auth_failures_total{job="gophermq",reason="unknown"})";
  double up = -1;
  double refused = -1;
  double wrong_up = -1;
  std::string wrong_error;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  do {
    up = sample_of(api, R"(up{job="gophermq"})");
    refused = sample_of(api, refusals);
    wrong_up = sample_of(api, R"(up{job="gophermq-wrong-token"})");
    wrong_error = last_error_of(api, "gophermq-wrong-token");
  } while (
      !(up == 1 && refused > 0 && wrong_up == 0 && wrong_error.find("401") != std::string::npos) &&
      std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(up, 1) << "last error: " << last_error_of(api, "gophermq");
  EXPECT_GT(refused, 0);
  EXPECT_EQ(wrong_up, 0);
  EXPECT_NE(wrong_error.find("401"), std::string::npos) << wrong_error;
}

}  // namespace
}  // namespace gophermq::test
