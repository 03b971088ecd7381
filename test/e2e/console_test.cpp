// The built-in web console (API.md §10, docs/console.md) served by the real binary: its files with
// their types and security headers, HEAD, ETag revalidation, http.console=false, and paths that
// try to name anything else.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "support/api_texts.hpp"
#include "support/broker_process.hpp"
#include "support/http_client.hpp"

namespace gophermq::test {
namespace {

constexpr std::string_view kNotFound = "{\"message\":\"Not Found\"}\n";
constexpr std::string_view kJson = "application/json; charset=UTF-8";

struct Asset {
  std::string path;
  std::string content_type;
};

const std::vector<Asset> kAssets = {
    {"/", "text/html; charset=utf-8"},
    {"/console.css", "text/css; charset=utf-8"},
    {"/console.js", "text/javascript; charset=utf-8"},
    {"/favicon.svg", "image/svg+xml"},
};

HttpResponse get_with(HttpClient& client, std::string_view target, std::string_view headers) {
  client.send_raw("GET " + std::string(target) + " HTTP/1.1\r\nHost: t\r\n" + std::string(headers) +
                  "\r\n");
  return client.read_response();
}

void expect_not_found(const HttpResponse& response, std::string_view target) {
  EXPECT_EQ(response.status, 404U) << target;
  EXPECT_EQ(response.body, kNotFound) << target;
  EXPECT_EQ(response.header("content-type"), kJson) << target;
}

class Console : public ::testing::Test {
 protected:
  BrokerProcess broker{isolated_arguments()};
  HttpClient client{broker.api_port()};
};

TEST_F(Console, IndexIsHtmlThatLoadsOnlyItsOwnFilesUnderASelfOnlyPolicy) {
  const auto index = client.get("/");
  ASSERT_EQ(index.status, 200U);
  EXPECT_EQ(index.header("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(index.header("content-security-policy"),
            "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "
            "object-src 'none'");
  EXPECT_EQ(index.header("x-content-type-options"), "nosniff");
  EXPECT_EQ(index.header("x-frame-options"), "DENY");
  EXPECT_EQ(index.header("referrer-policy"), "no-referrer");
  EXPECT_EQ(index.header("cache-control"), "no-cache");
  EXPECT_TRUE(index.body.starts_with("<!doctype html>")) << index.body.substr(0, 40);
  for (const std::string_view reference :
       {R"(src="/console.js")", R"(href="/console.css")", R"(href="/favicon.svg")"}) {
    EXPECT_NE(index.body.find(reference), std::string::npos) << reference;
  }
  // The query of the page's URL does not change what is served.
  EXPECT_EQ(client.get("/?subject=orders").body, index.body);
}

TEST_F(Console, EveryFileHasItsTypeAStrongETagAndNoExternalReference) {
  for (const Asset& asset : kAssets) {
    const auto response = client.get(asset.path);
    ASSERT_EQ(response.status, 200U) << asset.path;
    EXPECT_EQ(response.header("content-type"), asset.content_type) << asset.path;
    EXPECT_EQ(response.header("x-content-type-options"), "nosniff") << asset.path;
    EXPECT_FALSE(response.body.empty()) << asset.path;
    const std::string etag = response.header("etag");
    EXPECT_TRUE(etag.size() > 2 && etag.front() == '"' && etag.back() == '"') << etag;
    // No CDN, no web font, no analytics: nothing outside the broker is fetched. (SVG's xmlns is
    // a name, never fetched.)
    if (asset.path != "/favicon.svg") {
      EXPECT_EQ(response.body.find("http://"), std::string::npos) << asset.path;
      EXPECT_EQ(response.body.find("https://"), std::string::npos) << asset.path;
    }
  }
  EXPECT_NE(client.get("/console.js").header("etag"), client.get("/console.css").header("etag"));
}

TEST_F(Console, HeadAnswersTheHeadersOfGetWithoutTheBody) {
  for (const Asset& asset : kAssets) {
    const auto got = client.get(asset.path);
    ASSERT_EQ(got.status, 200U) << asset.path;
    client.send_raw("HEAD " + asset.path + " HTTP/1.1\r\nHost: t\r\n\r\n");
    const auto head = client.read_response(true);
    EXPECT_EQ(head.status, 200U) << asset.path;
    EXPECT_EQ(head.body, "") << asset.path;
    EXPECT_EQ(head.header("content-length"), std::to_string(got.body.size())) << asset.path;
    EXPECT_EQ(head.header("content-type"), asset.content_type) << asset.path;
    EXPECT_EQ(head.header("etag"), got.header("etag")) << asset.path;
  }
  // No body bytes followed any head: the next answer on the connection parses cleanly.
  EXPECT_EQ(client.get("/ready").status, 204U);
}

TEST_F(Console, IfNoneMatchWithTheETagIs304WithoutBody) {
  for (const Asset& asset : kAssets) {
    const std::string etag = client.get(asset.path).header("etag");
    for (const std::string& header : {etag, "W/" + etag, "\"other\", " + etag,
                                      "\"other\" ,W/" + etag + " , \"more\"", std::string("*")}) {
      const auto response = get_with(client, asset.path, "If-None-Match: " + header + "\r\n");
      EXPECT_EQ(response.status, 304U) << asset.path << " " << header;
      EXPECT_EQ(response.body, "") << header;
      EXPECT_FALSE(response.has_header("content-length")) << header;
      EXPECT_EQ(response.header("etag"), etag) << header;
      EXPECT_EQ(response.header("cache-control"), "no-cache") << header;
    }
    for (const std::string& header :
         {std::string("\"other\""), etag.substr(1), etag.substr(0, etag.size() - 1),
          "\"other\" " + etag, std::string(), std::string(","), std::string("W/"), "*, " + etag}) {
      const auto response = get_with(client, asset.path, "If-None-Match: " + header + "\r\n");
      EXPECT_EQ(response.status, 200U) << asset.path << " [" << header << "]";
      EXPECT_FALSE(response.body.empty()) << header;
    }
  }
  EXPECT_EQ(client.get("/ready").status, 204U);
}

TEST_F(Console, OtherMethodsAre405WithAllow) {
  for (const Asset& asset : kAssets) {
    const auto response = client.post(asset.path, "{}");
    EXPECT_EQ(response.status, 405U) << asset.path;
    EXPECT_EQ(response.body, "{\"message\":\"Method Not Allowed\"}\n");
    EXPECT_EQ(response.header("allow"), "GET, HEAD");
  }
}

TEST_F(Console, UnknownFilesAndPathTraversalAre404NeverAFile) {
  for (const std::string_view target : {"/index.html",
                                        "/console.txt",
                                        "/favicon.ico",
                                        "/console.js/",
                                        "/console.js.map",
                                        "//console.js",
                                        "/./console.js",
                                        "/console/../console.js",
                                        "/../",
                                        "/..",
                                        "/%2e%2e/",
                                        "/%2E%2E/%2E%2E/etc/passwd",
                                        "/../../../../etc/passwd",
                                        "/..%2f..%2fetc%2fpasswd",
                                        "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
                                        "/..%5c..%5cetc%5cpasswd",
                                        "/%2fetc%2fpasswd",
                                        "/console.js%00",
                                        "/console%2ejs",
                                        "/%63onsole.js",
                                        "/CONSOLE.JS",
                                        "/etc/passwd",
                                        "/proc/self/environ",
                                        "/../CMakeLists.txt",
                                        "/console/console.js",
                                        "/README.md"}) {
    const auto response = client.get(target);
    expect_not_found(response, target);
  }
  EXPECT_EQ(client.get("/").status, 200U);
}

TEST(ConsoleOff, EveryConsolePathIsAnUnknownRoute) {
  BrokerProcess broker(isolated_arguments({"--http.console=false"}));
  HttpClient client(broker.api_port());
  for (const Asset& asset : kAssets) {
    expect_not_found(client.get(asset.path), asset.path);
  }
  // The API is unchanged.
  EXPECT_EQ(client.get("/api/stats?limit=0").status, 200U);
}

TEST_F(Console, RequestsAreCountedUnderTheConsoleRoute) {
  ASSERT_EQ(client.get("/").status, 200U);
  ASSERT_EQ(client.get("/console.js").status, 200U);
  HttpClient metrics(broker.metrics_port());
  expect_eventually(metrics, "/metrics", request_rate("console", 200, 2));
}

}  // namespace
}  // namespace gophermq::test
