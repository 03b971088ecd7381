#include "support/http_client.hpp"

#include <gtest/gtest.h>

#include <array>
#include <boost/asio/write.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cctype>
#include <regex>
#include <thread>

#include "support/api_texts.hpp"

namespace gophermq::test {
namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

HttpClient::HttpClient(std::uint16_t port, std::chrono::milliseconds timeout) : socket_(context_) {
  boost::system::error_code error;
  bool done = false;
  socket_.async_connect({asio::ip::make_address("127.0.0.1"), port},
                        [&](const boost::system::error_code& result) {
                          error = result;
                          done = true;
                        });
  finish(timeout, error, done, "connect");
}

void HttpClient::finish(std::chrono::milliseconds timeout, const boost::system::error_code& error,
                        const bool& done, std::string_view what) {
  context_.restart();
  context_.run_for(timeout);
  if (!done) {
    // The operation is still queued: closing cancels it, and running completes the cancellation.
    boost::system::error_code ignored;
    socket_.close(ignored);
    context_.restart();
    context_.run();
    throw RequestFailed(asio::error::timed_out, std::string(what) + ": no answer within " +
                                                    std::to_string(timeout.count()) + " ms");
  }
  if (error) {
    throw RequestFailed(error, std::string(what));
  }
}

void HttpClient::send_raw(std::string_view bytes, std::chrono::milliseconds timeout) {
  boost::system::error_code error;
  bool done = false;
  asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()),
                    [&](const boost::system::error_code& result, std::size_t) {
                      error = result;
                      done = true;
                    });
  finish(timeout, error, done, "send");
}

HttpResponse HttpClient::read_response(bool head_request) {
  return read_response(default_timeout, head_request);
}

HttpResponse HttpClient::read_response(std::chrono::milliseconds timeout, bool head_request) {
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  parser.skip(head_request);
  boost::system::error_code error;
  bool done = false;
  bhttp::async_read(socket_, buffer_, parser,
                    [&](const boost::system::error_code& result, std::size_t) {
                      error = result;
                      done = true;
                    });
  finish(timeout, error, done, "read");
  const auto& message = parser.get();
  HttpResponse response;
  response.status = message.result_int();
  response.version = message.version();
  for (const auto& field : message) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    response.headers[name] = std::string(field.value());
  }
  response.body = message.body();
  return response;
}

HttpResponse HttpClient::post(std::string_view target, std::string_view body,
                              std::chrono::milliseconds timeout) {
  send_raw(post_request(target, body), timeout);
  return read_response(timeout);
}

HttpResponse HttpClient::get(std::string_view target, std::chrono::milliseconds timeout) {
  send_raw("GET " + std::string(target) + " HTTP/1.1\r\nHost: test\r\n\r\n", timeout);
  return read_response(timeout);
}

bool HttpClient::closed_cleanly() {
  if (buffer_.size() != 0) {
    return false;
  }
  char byte = 0;
  boost::system::error_code error;
  const std::size_t got = socket_.read_some(asio::buffer(&byte, 1), error);
  return got == 0 && error == asio::error::eof;
}

bool HttpClient::wait_until_closed() {
  std::array<char, 4096> discard{};
  boost::system::error_code error;
  while (!error) {
    socket_.read_some(asio::buffer(discard), error);
  }
  return error == asio::error::eof || error == asio::error::connection_reset;
}

void HttpClient::shutdown_send() {
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send);
}

void HttpClient::abort() {
  // A connection the broker already broke has nothing left to reset.
  boost::system::error_code ignored;
  socket_.set_option(asio::socket_base::linger(true, 0), ignored);
  socket_.close(ignored);
}

void HttpClient::set_receive_buffer(int bytes) {
  socket_.set_option(asio::socket_base::receive_buffer_size(bytes));
}

std::string post_request(std::string_view target, std::string_view body,
                         std::string_view extra_headers) {
  std::string request = "POST " + std::string(target) + " HTTP/1.1\r\nHost: test\r\n";
  request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  request += extra_headers;
  request += "\r\n";
  request += body;
  return request;
}

HttpResponse post_once(std::uint16_t port, std::string_view target, std::string_view body) {
  HttpClient client(port);
  return client.post(target, body);
}

std::string id_of(const HttpResponse& response) {
  static const std::regex id(R"re("id":"([^"]+)")re");
  std::smatch match;
  EXPECT_TRUE(std::regex_search(response.body, match, id)) << response.body;
  return match[1];
}

std::string metric_line(std::string_view line) {
  return "\n" + std::string(line) + "\n";
}

double metric(std::uint16_t port, std::string_view name) {
  const std::string body = HttpClient(port).get("/metrics").body;
  const std::string line = "\n" + std::string(name) + " ";
  const auto at = body.find(line);
  if (at == std::string::npos) {
    ADD_FAILURE() << "no metric " << name;
    return -1;
  }
  return std::stod(body.substr(at + line.size()));
}

std::string poll_until_contains(HttpClient& client, std::string_view target,
                                std::string_view needle, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string body = client.get(target).body;
  while (body.find(needle) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a poll interval, not a wait
    body = client.get(target).body;
  }
  return body;
}

std::string expect_eventually(HttpClient& client, std::string_view target,
                              std::string_view needle) {
  std::string body = poll_until_contains(client, target, needle);
  EXPECT_NE(body.find(needle), std::string::npos) << needle << "\n" << body;
  return body;
}

std::string subscribe(HttpClient& client, std::string_view subject) {
  return id_of(client.post("/api/subscribe", subscribe_body(subject)));
}

}  // namespace gophermq::test
