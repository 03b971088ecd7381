// API.md §11's access control against the real binary: tokens from an auth.file, 401 and 403 at
// the edge, subscriptions owned by the token that made them (also across a restart), tokens in
// the query string only for streams and never in the log, monitoring.token, SIGHUP reload under
// load, a bad file at start, and `gophermq token`.
#include "auth/auth.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/json/parse.hpp>
#include <csignal>
#include <cstdint>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/broker_process.hpp"
#include "support/http_client.hpp"
#include "support/temp_files.hpp"
#include "support/ws_client.hpp"

namespace gophermq::test {
namespace {

constexpr std::string_view kUnauthorized = "{\"message\":\"unauthorized\"}\n";
constexpr std::string_view kForbidden = "{\"message\":\"forbidden\"}\n";
constexpr std::string_view kBadId = "{\"message\":\"bad id\"}\n";

const std::string kAlice = "alice-secret-token";
const std::string kBob = "bob-secret-token";
const std::string kRoot = "root-secret-token";

std::string line_for(const std::string& name, const std::string& token,
                     const std::string& permissions) {
  return name + " " + auth::to_hex(auth::sha256(token)) + " " + permissions + "\n";
}

std::string tokens_file(bool with_bob = true) {
  return "# test tokens\n" + line_for("alice", kAlice, "pub:orders.* sub:orders.>") +
         (with_bob ? line_for("bob", kBob, "pub:orders.* sub:orders.>") : "") +
         line_for("root", kRoot, "admin");
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::trunc) << content;
}

std::string bearer(std::string_view token) {
  return "Authorization: Bearer " + std::string(token) + "\r\n";
}

HttpResponse post_with(HttpClient& client, std::string_view target, std::string_view body,
                       std::string_view headers) {
  client.send_raw(post_request(target, body, headers));
  return client.read_response();
}

HttpResponse get_with(HttpClient& client, std::string_view target, std::string_view headers) {
  client.send_raw("GET " + std::string(target) + " HTTP/1.1\r\nHost: test\r\n" +
                  std::string(headers) + "\r\n");
  return client.read_response();
}

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override { start(); }

  void start(std::vector<std::string> extra = {}) {
    client.reset();
    extra.push_back("--auth.file=" + file.path());
    broker.emplace(isolated_arguments(extra));
    client.emplace(broker->api_port());
  }

  HttpResponse post(std::string_view target, std::string_view body, std::string_view token) {
    return post_with(*client, target, body, token.empty() ? "" : bearer(token));
  }

  std::string subscribe_as(std::string_view token, std::string_view subject,
                           std::string_view extra = "") {
    const auto response =
        post("/api/subscribe",
             R"({"subject":")" + std::string(subject) + "\"" + std::string(extra) + "}", token);
    EXPECT_EQ(response.status, 200U) << response.body;
    return id_of(response);
  }

  TempFile file{tokens_file()};
  std::optional<BrokerProcess> broker;
  std::optional<HttpClient> client;
};

void expect_unauthorized(const HttpResponse& response) {
  EXPECT_EQ(response.status, 401U) << response.body;
  EXPECT_EQ(response.body, kUnauthorized);
  EXPECT_EQ(response.header("www-authenticate"), "Bearer");
}

void expect_forbidden(const HttpResponse& response) {
  EXPECT_EQ(response.status, 403U) << response.body;
  EXPECT_EQ(response.body, kForbidden);
}

TEST_F(AuthTest, EveryApiRequestWithoutAKnownBearerTokenGets401) {
  const std::string body = R"({"subject":"orders.eu","data":"x"})";
  expect_unauthorized(post_with(*client, "/api/publish", body, ""));
  expect_unauthorized(post_with(*client, "/api/publish", body, "Authorization: Basic YTpi\r\n"));
  expect_unauthorized(post_with(*client, "/api/publish", body, bearer("not-a-token")));
  expect_unauthorized(post_with(*client, "/api/publish", body, "Authorization: Bearer \r\n"));
  expect_unauthorized(post_with(*client, "/api/publish", body, "Authorization: Bearer\r\n"));
  expect_unauthorized(post_with(*client, "/api/publish", body, bearer(kAlice + "x")));
  // The query string is a credential for streams only.
  expect_unauthorized(post_with(*client, "/api/publish?access_token=" + kAlice, body, ""));
  expect_unauthorized(get_with(*client, "/api/stats?access_token=" + kRoot, ""));
  expect_unauthorized(post_with(*client, "/api/subscribe", R"({"subject":"orders.eu"})", ""));
  expect_unauthorized(get_with(*client, "/api/stream?subject=orders.eu", ""));
  expect_unauthorized(get_with(*client, "/api/stream?subject=orders.eu&access_token=nope", ""));
  // Unknown routes under /api/ too, so they do not reveal which routes exist.
  expect_unauthorized(get_with(*client, "/api/nothing", ""));
  // The same token is accepted in the header: the refusals above were about the credential.
  const auto accepted = post("/api/publish", body, kAlice);
  EXPECT_EQ(accepted.status, 404U) << accepted.body;  // allowed, but nobody subscribes
  EXPECT_EQ(
      post_with(*client, "/api/publish", body, "authorization: bearer  " + kAlice + "\r\n").status,
      404U);
}

TEST_F(AuthTest, ReadyAndTheConsoleStayOpen) {
  EXPECT_EQ(get_with(*client, "/ready", "").status, 204U);
  EXPECT_EQ(get_with(*client, "/", "").status, 200U);
}

TEST_F(AuthTest, WhatAPermissionDoesNotCoverGets403AndStoresNothing) {
  const std::string watcher = subscribe_as(kRoot, "billing");
  expect_forbidden(post("/api/publish", R"({"subject":"billing","data":"x"})", kAlice));
  expect_forbidden(post("/api/publish/async", R"({"subject":"billing","data":"x"})", kAlice));
  expect_forbidden(post("/api/publish/batch", R"({"subject":"billing","data":["a","b"]})", kAlice));
  expect_forbidden(post("/api/publish", R"({"subject":"orders.eu.x","data":"x"})", kAlice));
  expect_forbidden(post("/api/subscribe", R"({"subject":">"})", kAlice));
  expect_forbidden(post("/api/subscribe", R"({"subject":"orders"})", kAlice));
  expect_forbidden(post("/api/subscribe", R"({"subject":"billing.*","group":"g"})", kAlice));
  expect_forbidden(get_with(*client, "/api/stream?subject=billing", bearer(kAlice)));
  expect_forbidden(get_with(*client, "/api/stats", bearer(kAlice)));
  expect_forbidden(get_with(*client, "/api/admin/subscriptions?subject=%3E", bearer(kAlice)));
  expect_forbidden(get_with(*client, "/api/admin", bearer(kAlice)));
  // A dead letter is a publish by the broker on the subscriber's behalf.
  expect_forbidden(post(
      "/api/subscribe",
      R"({"subject":"orders.x","ack":true,"max_deliveries":1,"dead_letter":"billing"})", kAlice));
  // Nothing of the refused publishes reached the queue.
  const auto fetched =
      post("/api/fetch", R"({"subject":"billing","id":")" + watcher + "\"}", kRoot);
  EXPECT_EQ(fetched.status, 200U);
  EXPECT_NE(fetched.body.find("\"data\":[]"), std::string::npos) << fetched.body;
  // An invalid subject is still a 400, whoever asks.
  EXPECT_EQ(post("/api/publish", R"({"subject":"a..b","data":"x"})", kAlice).status, 400U);
  // What the permissions do cover.
  EXPECT_EQ(post("/api/subscribe", R"({"subject":"orders.*"})", kAlice).status, 200U);
  EXPECT_EQ(post("/api/subscribe", R"({"subject":"orders.eu.>"})", kAlice).status, 200U);
  EXPECT_EQ(
      post("/api/subscribe",
           R"({"subject":"orders.x","ack":true,"max_deliveries":1,"dead_letter":"orders.dead"})",
           kAlice)
          .status,
      200U);
  EXPECT_EQ(post("/api/publish/batch", R"({"subject":"orders.eu","data":["a"]})", kAlice).status,
            200U);
  EXPECT_EQ(get_with(*client, "/api/stats", bearer(kRoot)).status, 200U);
  EXPECT_EQ(get_with(*client, "/api/admin/nothing-yet", bearer(kRoot)).status, 404U);
}

TEST_F(AuthTest, AnotherTokensSubscriptionIsABadId) {
  const std::string id = subscribe_as(kAlice, "orders.>", R"(,"ack":true)");
  const std::string unknown = "00000000-0000-4000-8000-000000000000";
  EXPECT_EQ(post("/api/publish", R"({"subject":"orders.eu","data":"m"})", kAlice).status, 200U);
  for (const std::string_view target :
       {"/api/fetch", "/api/ack", "/api/nack", "/api/extend", "/api/unsubscribe"}) {
    for (const std::string& which : {id, unknown}) {
      const std::string body =
          R"({"subject":"orders.>","id":")" + which + R"(","receipts":["1.1"]})";
      const auto response = post(target, body, kBob);
      EXPECT_EQ(response.status, 404U) << target << " " << response.body;
      EXPECT_EQ(response.body, kBadId) << target;
    }
  }
  for (const std::string& target :
       {"/api/stream?id=" + id, "/api/stream?subject=orders.%3E&id=" + id, "/api/ws?id=" + id}) {
    const auto response = get_with(*client, target,
                                   bearer(kBob) +
                                       "Connection: Upgrade\r\nUpgrade: websocket\r\n"
                                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                       "Sec-WebSocket-Version: 13\r\n");
    EXPECT_EQ(response.status, 404U) << target;
    EXPECT_EQ(response.body, kBadId) << target;
  }
  // Nothing bob tried touched it: the message is still there for its owner.
  const auto fetched = post("/api/fetch", R"({"subject":"orders.>","id":")" + id + "\"}", kAlice);
  EXPECT_EQ(fetched.status, 200U) << fetched.body;
  EXPECT_NE(fetched.body.find("\"m\""), std::string::npos) << fetched.body;
  EXPECT_EQ(post("/api/unsubscribe", R"({"subject":"orders.>","id":")" + id + "\"}", kAlice).status,
            200U);
}

TEST_F(AuthTest, TheAdminListNamesTheTokenThatOwnsEachSubscription) {
  const std::string alices = subscribe_as(kAlice, "orders.eu");
  const std::string bobs = subscribe_as(kBob, "orders.us", R"(,"group":"g")");
  const auto listed = get_with(*client, "/api/admin/subscriptions", bearer(kRoot));
  ASSERT_EQ(listed.status, 200U) << listed.body;
  const auto rows = boost::json::parse(listed.body).at("subscriptions").as_array();
  ASSERT_EQ(rows.size(), 2U) << listed.body;
  for (const auto& row : rows) {
    const auto& id = row.at("id").as_string();
    EXPECT_EQ(row.at("owner").as_string(), id == alices ? "alice" : "bob") << listed.body;
    EXPECT_TRUE(id == alices || id == bobs) << listed.body;
  }
}

TEST(AuthStorage, OwnershipSurvivesARestart) {
  TempDir dir;
  TempFile file(tokens_file());
  const auto arguments =
      isolated_arguments({"--auth.file=" + file.path(), "--storage.dir=" + dir.string()});
  std::string id;
  {
    BrokerProcess broker(arguments);
    HttpClient client(broker.api_port());
    const auto subscribed =
        post_with(client, "/api/subscribe", R"({"subject":"orders.eu"})", bearer(kAlice));
    ASSERT_EQ(subscribed.status, 200U);
    id = id_of(subscribed);
    ASSERT_EQ(post_with(client, "/api/publish", R"({"subject":"orders.eu","data":"kept"})",
                        bearer(kAlice))
                  .status,
              200U);
    broker.send_signal(SIGTERM);
    ASSERT_EQ(broker.wait_for_exit(), 0);
  }
  BrokerProcess broker(arguments);
  HttpClient client(broker.api_port());
  const std::string fetch = R"({"subject":"orders.eu","id":")" + id + "\"}";
  const auto other = post_with(client, "/api/fetch", fetch, bearer(kBob));
  EXPECT_EQ(other.status, 404U);
  EXPECT_EQ(other.body, kBadId);
  const auto owner = post_with(client, "/api/fetch", fetch, bearer(kAlice));
  EXPECT_EQ(owner.status, 200U);
  EXPECT_NE(owner.body.find("\"kept\""), std::string::npos) << owner.body;
}

TEST(AuthStreams, AccessTokenInTheQueryWorksForStreamsAndIsNeverLogged) {
  TempFile file(tokens_file());
  BrokerProcess broker(isolated_arguments(
      {"--auth.file=" + file.path(), "--logger.level=debug", "--broker.shutdown-timeout=200ms"}));
  HttpClient stream(broker.api_port());
  stream.send_raw("GET /api/stream?subject=orders.eu&access_token=" + kAlice +
                  " HTTP/1.1\r\nHost: test\r\n\r\n");
  // Once the upgrade is answered the WebSocket's subscription exists.
  WsClient ws(broker.api_port(), "/api/ws?subject=orders.eu&access_token=" + kAlice);
  HttpClient publisher(broker.api_port());
  const HttpResponse published = post_with(
      publisher, "/api/publish", R"({"subject":"orders.eu","data":"hello"})", bearer(kAlice));
  EXPECT_EQ(published.status, 200U) << published.body;
  EXPECT_NE(ws.read().find("hello"), std::string::npos);
  // A stream answer has no Content-Length: read_response with head_request reads only the head.
  const HttpResponse head = stream.read_response(true);
  EXPECT_EQ(head.status, 200U);
  EXPECT_EQ(head.header("content-type"), "text/event-stream");
  broker.send_signal(SIGTERM);
  broker.wait_for_exit();
  EXPECT_EQ(broker.log().find(kAlice), std::string::npos) << broker.log();
  EXPECT_NE(broker.log().find("msg=stopped"), std::string::npos);
}

// API.md §10 and §11: a reload that removes a token ends the streams it has open, the WebSocket
// with 1008; what is published after that stays queued for the subscription.
TEST(AuthStreams, RemovingATokenEndsItsOpenStreams) {
  TempFile file(tokens_file());
  BrokerProcess broker(isolated_arguments({"--auth.file=" + file.path()}));
  HttpClient api(broker.api_port());
  const auto subscribe = [&](std::string_view subject) {
    const auto answer = post_with(api, "/api/subscribe",
                                  R"({"subject":")" + std::string(subject) + "\"}", bearer(kBob));
    EXPECT_EQ(answer.status, 200U) << answer.body;
    return boost::json::parse(answer.body).at("id").as_string();
  };
  const std::string sse_id(subscribe("orders.sse"));
  const std::string ws_id(subscribe("orders.ws"));
  HttpClient stream(broker.api_port());
  stream.send_raw("GET /api/stream?id=" + sse_id + "&access_token=" + kBob +
                  " HTTP/1.1\r\nHost: test\r\n\r\n");
  EXPECT_EQ(stream.read_response(true).status, 200U);
  WsClient ws(broker.api_port(), "/api/ws?id=" + ws_id + "&access_token=" + kBob);
  // Alice's stream of her own subject goes on: only the removed token's streams end.
  WsClient kept(broker.api_port(), "/api/ws?subject=orders.eu&access_token=" + kAlice);

  write_file(file.path(), tokens_file(/*with_bob=*/false));
  broker.send_signal(SIGHUP);
  broker.wait_for_log("auth file reloaded");
  const auto reason = ws.read_until_closed();
  ASSERT_TRUE(reason);
  EXPECT_EQ(reason->code, boost::beast::websocket::close_code::policy_error);
  EXPECT_TRUE(stream.wait_until_closed());

  for (const char* subject : {"orders.sse", "orders.ws", "orders.eu"}) {
    const auto published =
        post_with(api, "/api/publish",
                  R"({"subject":")" + std::string(subject) + R"(","data":"after"})", bearer(kRoot));
    EXPECT_EQ(published.status, 200U) << published.body;
  }
  EXPECT_NE(kept.read().find("\"after\""), std::string::npos);
  const auto totals =
      boost::json::parse(get_with(api, "/api/stats", bearer(kRoot)).body).at("totals");
  EXPECT_EQ(totals.at("pending_messages").as_int64(), 2) << totals;
}

TEST(AuthMetricsPort, MonitoringTokenProtectsMetrics) {
  BrokerProcess broker(isolated_arguments({"--monitoring.token=scrape-me"}));
  HttpClient client(broker.metrics_port());
  expect_unauthorized(get_with(client, "/metrics", ""));
  expect_unauthorized(get_with(client, "/metrics", bearer("scrape-you")));
  const auto scraped = get_with(client, "/metrics", bearer("scrape-me"));
  EXPECT_EQ(scraped.status, 200U);
  EXPECT_NE(scraped.body.find(metric_line("gophermq_auth_failures_total{reason=\"missing\"} 1")),
            std::string::npos)
      << scraped.body;
  EXPECT_NE(scraped.body.find(metric_line("gophermq_auth_failures_total{reason=\"unknown\"} 1")),
            std::string::npos);
  // The API itself stays open without auth.file.
  HttpClient api(broker.api_port());
  EXPECT_EQ(post_with(api, "/api/subscribe", R"({"subject":">"})", "").status, 200U);
}

TEST_F(AuthTest, FailuresAreCounted) {
  post_with(*client, "/api/publish", "{}", "");
  post_with(*client, "/api/publish", "{}", bearer("nope"));
  post_with(*client, "/api/publish", "{}", bearer("nope"));
  post("/api/publish", R"({"subject":"billing","data":"x"})", kAlice);
  EXPECT_EQ(metric(broker->metrics_port(), "gophermq_auth_failures_total{reason=\"missing\"}"), 1);
  EXPECT_EQ(metric(broker->metrics_port(), "gophermq_auth_failures_total{reason=\"unknown\"}"), 2);
  EXPECT_EQ(metric(broker->metrics_port(), "gophermq_auth_failures_total{reason=\"forbidden\"}"),
            1);
}

TEST_F(AuthTest, SighupReloadsUnderLoadAndABadFileKeepsTheOldTable) {
  subscribe_as(kRoot, "orders.eu");
  std::atomic<bool> stop{false};
  std::atomic<unsigned> done{0};
  std::atomic<unsigned> failed{0};
  std::thread load([&] {
    HttpClient loader(broker->api_port());
    while (!stop.load()) {
      const auto response = post_with(loader, "/api/publish",
                                      R"({"subject":"orders.eu","data":"x"})", bearer(kAlice));
      if (response.status != 200U) {
        failed.fetch_add(1);
      }
      done.fetch_add(1);
    }
  });
  const auto wait_for_more = [&done](unsigned more) {
    const unsigned target = done.load() + more;
    while (done.load() < target) {
      std::this_thread::yield();
    }
  };
  wait_for_more(20);
  EXPECT_EQ(post("/api/subscribe", R"({"subject":"orders.eu"})", kBob).status, 200U);
  write_file(file.path(), tokens_file(/*with_bob=*/false));
  broker->send_signal(SIGHUP);
  broker->wait_for_log("auth file reloaded");
  wait_for_more(20);
  expect_unauthorized(post("/api/subscribe", R"({"subject":"orders.eu"})", kBob));
  write_file(file.path(), tokens_file() + "broken line-without-a-hash\n");
  broker->send_signal(SIGHUP);
  const std::string logged = broker->wait_for_log("auth file not reloaded");
  EXPECT_NE(logged.find("line 5"), std::string::npos) << logged;
  wait_for_more(20);
  // The old table stays: bob is still out, alice still in.
  expect_unauthorized(post("/api/subscribe", R"({"subject":"orders.eu"})", kBob));
  EXPECT_EQ(post("/api/subscribe", R"({"subject":"orders.eu"})", kAlice).status, 200U);
  stop.store(true);
  load.join();
  EXPECT_EQ(failed.load(), 0U) << "of " << done.load();
}

TEST(AuthStart, ABadFileEndsTheStartWithOneLineAndExit2) {
  TempFile bad(tokens_file() + "carol 1234 admin\n");
  const auto run = run_to_exit(isolated_arguments({"--auth.file=" + bad.path()}));
  EXPECT_EQ(run.status, 2);
  EXPECT_EQ(std::count(run.output.begin(), run.output.end(), '\n'), 1) << run.output;
  EXPECT_NE(run.output.find("line 5: bad hex"), std::string::npos) << run.output;
  const auto missing = run_to_exit(isolated_arguments({"--auth.file=/nonexistent/tokens"}));
  EXPECT_EQ(missing.status, 2);
  EXPECT_EQ(std::count(missing.output.begin(), missing.output.end(), '\n'), 1) << missing.output;
}

TEST(AuthTokenCommand, AMintedTokenWorksOnceItsLineIsInTheFile) {
  const auto minted = run_to_exit({"token", "ci-runner", "sub:orders.>", "pub:orders.*"});
  ASSERT_EQ(minted.status, 0) << minted.output;
  std::istringstream lines(minted.output);
  std::string token;
  std::string comment;
  std::string line;
  std::getline(lines, token);
  std::getline(lines, comment);
  std::getline(lines, line);
  EXPECT_EQ(token.size(), 43U);
  EXPECT_EQ(line.find("ci-runner "), 0U) << line;
  EXPECT_EQ(line.find(token), std::string::npos);  // the file holds only its hash
  TempFile file(line + "\n");
  BrokerProcess broker(isolated_arguments({"--auth.file=" + file.path()}));
  HttpClient client(broker.api_port());
  EXPECT_EQ(post_with(client, "/api/subscribe", R"({"subject":"orders.eu"})", bearer(token)).status,
            200U);
  expect_forbidden(post_with(client, "/api/subscribe", R"({"subject":">"})", bearer(token)));

  EXPECT_EQ(run_to_exit({"token", "bad name"}).status, 2);
  EXPECT_EQ(run_to_exit({"token"}).status, 2);
  // Help is help, and a name that looks like an option mints nothing.
  for (const char* help : {"--help", "-h"}) {
    const auto usage = run_to_exit({"token", help});
    EXPECT_EQ(usage.status, 0) << help;
    EXPECT_EQ(usage.output.rfind("usage: gophermq token NAME", 0), 0U) << usage.output;
  }
  const auto option = run_to_exit({"token", "--name", "admin"});
  EXPECT_EQ(option.status, 2);
  EXPECT_EQ(option.output.find("# add to auth.file"), std::string::npos) << option.output;
  const auto bad_permission = run_to_exit({"token", "ci", "sub:a..b"});
  EXPECT_EQ(bad_permission.status, 2);
  EXPECT_NE(bad_permission.output.find("invalid permission"), std::string::npos);
}

}  // namespace
}  // namespace gophermq::test
