// Arbitrary bytes as a connection's input: parsed as pipelined HTTP requests with the server's
// limits, routed and decoded by the real ApiHandler into a real BrokerService. Every answer must
// be a status from the contract with a JSON body (or none, for 204). "$ID" in a body is replaced
// by the last subscription id handed out, so the fuzzer can reach fetch and unsubscribe.
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/json/parse.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

#include "api_exchange.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using gophermq::http::Request;
using gophermq::http::Response;

constexpr std::size_t kMaxBodyBytes = 64 * 1024;
constexpr std::uint32_t kMaxHeaderBytes = 8 * 1024;

[[noreturn]] void fail(std::string_view what, const Response& response) {
  std::cerr << "bad answer (" << what << "): " << response.result_int() << ' ' << response.body()
            << '\n';
  std::abort();
}

void check_answer(const Response& response) {
  switch (response.result_int()) {
    case 200:
    case 400:
    case 404:
    case 405:
    case 413:
    case 429:
    case 431:
    case 503:
      break;
    case 204:
      if (!response.body().empty()) fail("204 with a body", response);
      return;
    default:
      fail("status outside the contract", response);
  }
  const std::string& body = response.body();
  if (body.empty() || body.back() != '\n') fail("body not newline-terminated", response);
  boost::system::error_code error;
  const auto value = boost::json::parse(body, error);
  if (error || !value.is_object()) fail("body not a JSON object", response);
  if (response.result_int() != 200 && !value.as_object().contains("message")) {
    fail("error without message", response);
  }
}

void substitute_id(std::string& body, const std::string& id) {
  for (auto at = body.find("$ID"); at != std::string::npos; at = body.find("$ID", at + id.size())) {
    body.replace(at, 3, id);
  }
}

Response refusal(gophermq::fuzz::ApiExchange& handler, const Request& head,
                 const beast::error_code& error) {
  if (error == bhttp::error::body_limit) {
    return handler.reject(head, bhttp::status::payload_too_large, "request body too large");
  }
  if (error == bhttp::error::header_limit) {
    return handler.reject(head, bhttp::status::request_header_fields_too_large,
                          "request header fields too large");
  }
  return handler.reject(head, bhttp::status::bad_request, "malformed HTTP request");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  gophermq::fuzz::ApiExchange exchange;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string last_id = "none";
  while (!input.empty()) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.eager(true);
    parser.body_limit(kMaxBodyBytes);
    parser.header_limit(kMaxHeaderBytes);
    beast::error_code error;
    const std::size_t used = parser.put(asio::buffer(input.data(), input.size()), error);
    input.remove_prefix(used);
    if (error == bhttp::error::need_more) {
      return 0;  // the connection would wait for more bytes, then time out
    }
    if (error) {
      check_answer(refusal(exchange, parser.get(), error));
      return 0;  // the server closes after a refusal
    }
    if (!parser.is_done()) {
      return 0;
    }
    Request request = parser.release();
    substitute_id(request.body(), last_id);
    const Response response = exchange.answer(request);
    check_answer(response);
    if (request.target() == "/api/subscribe" && response.result_int() == 200) {
      const auto value = boost::json::parse(response.body());
      last_id = std::string(value.at("id").as_string());
    }
    if (!request.keep_alive()) {
      return 0;
    }
  }
  return 0;
}
