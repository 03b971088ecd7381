// Arbitrary bytes as a connection's input: parsed as pipelined HTTP requests with the server's
// limits and its own framing (http::feed) and refusal mapping (http::refusal_for), routed and
// decoded by the real ApiHandler into a real BrokerService. Every answer must be a status from the
// contract with a JSON body (or none, for 204). "$ID" in a body is replaced by the last
// subscription id handed out, so the fuzzer can reach fetch and unsubscribe.
//
// Request smuggling: an independent reading of each request's raw head (below) flags what RFC 9112
// calls ambiguous framing; the server must refuse such a request, answer it at most once and
// execute nothing after it on the connection.
#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/json/parse.hpp>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>

#include "api_exchange.hpp"
#include "http/framing.hpp"

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
    case 501:
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

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// The oracle: reads a raw head (request line and field lines, without the blank line) the simple
// way RFC 9112 describes, and says whether its framing is one a server must refuse: obs-fold, a
// transfer coding list that is not exactly `chunked`, Transfer-Encoding in HTTP/1.0 or beside
// Content-Length, differing or malformed Content-Length values, a Host count other than one in
// HTTP/1.1 (or more than one before). Written apart from the server so a mistake in one shows.
bool ambiguous_framing(std::string_view head) {
  const std::size_t line_end = head.find("\r\n");
  const std::string_view request_line = head.substr(0, line_end);
  const bool http10 = request_line.ends_with(" HTTP/1.0");
  std::string_view fields = line_end == std::string_view::npos ? "" : head.substr(line_end + 2);
  int hosts = 0;
  int encodings = 0;
  int lengths = 0;
  std::string codings;
  std::optional<std::uint64_t> length;
  bool bad_length = false;
  while (!fields.empty()) {
    const std::size_t end = std::min(fields.find("\r\n"), fields.size());
    const std::string_view line = fields.substr(0, end);
    fields.remove_prefix(std::min(end + 2, fields.size()));
    if (line.starts_with(' ') || line.starts_with('\t')) return true;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;  // malformed: Beast refuses it anyway
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    if (beast::iequals(name, "host")) {
      ++hosts;
    } else if (beast::iequals(name, "transfer-encoding")) {
      ++encodings;
      codings.append(value).push_back(',');
    } else if (beast::iequals(name, "content-length")) {
      ++lengths;
      std::string_view list = value;
      while (true) {  // every comma-separated item a number, all equal
        const std::size_t comma = list.find(',');
        const std::string_view item = trim(list.substr(0, comma));
        std::uint64_t number = 0;
        const auto [rest, failure] =
            std::from_chars(item.data(), item.data() + item.size(), number);
        if (item.empty() || failure != std::errc{} || rest != item.data() + item.size()) {
          bad_length = true;
        } else if (!length) {
          length = number;
        } else if (*length != number) {
          bad_length = true;
        }
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
      }
    }
  }
  if (hosts > 1 || (hosts == 0 && !http10) || bad_length) return true;
  if (encodings == 0) return false;
  if (http10 || lengths > 0) return true;
  std::string only;  // the one non-empty coding, if that is all there is
  std::string_view list = codings;
  int count = 0;
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    const std::string_view item = trim(list.substr(0, comma));
    list.remove_prefix(comma + 1);
    if (!item.empty()) {
      ++count;
      only = item;
    }
  }
  return count != 1 || !beast::iequals(only, "chunked");
}

// The raw head of the request `input` begins with, empty lines before it skipped as the server
// skips them; empty when the head is not complete.
std::string_view raw_head(std::string_view input) {
  while (input.starts_with("\r\n")) input.remove_prefix(2);
  const std::size_t end = input.find("\r\n\r\n");
  return end == std::string_view::npos ? std::string_view{} : input.substr(0, end);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  gophermq::fuzz::ApiExchange exchange;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string last_id = "none";
  while (!input.empty()) {
    gophermq::http::RequestParser parser;
    parser.eager(true);
    parser.body_limit(kMaxBodyBytes);
    parser.header_limit(kMaxHeaderBytes);
    const std::string_view head = raw_head(input);
    const bool must_refuse = !head.empty() && ambiguous_framing(head);
    beast::error_code error;
    // The server feeds what it has buffered until the parser is done or fails; all of the input
    // is buffered here.
    std::size_t used = 0;
    do {
      used = gophermq::http::feed(parser, input, error);
      input.remove_prefix(used);
    } while (!error && !parser.is_done() && used > 0 && !input.empty());
    if (error == bhttp::error::need_more || (!error && !parser.is_done())) {
      return 0;  // the connection would wait for more bytes, then time out
    }
    if (error) {
      if (const auto refusal = gophermq::http::refusal_for(error, parser.get())) {
        check_answer(exchange.reject(parser.get(), refusal->status, refusal->message));
      }
      return 0;  // the server closes after a refusal: one answer at most, nothing executed after
    }
    if (must_refuse) {
      std::cerr << "ambiguous framing accepted:\n" << head << '\n';
      std::abort();
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
