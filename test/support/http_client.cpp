#include "support/http_client.hpp"

#include <gtest/gtest.h>

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
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

HttpClient::HttpClient(std::uint16_t port) : socket_(context_) {
  socket_.connect({asio::ip::make_address("127.0.0.1"), port});
}

void HttpClient::send_raw(std::string_view bytes) {
  asio::write(socket_, asio::buffer(bytes.data(), bytes.size()));
}

HttpResponse HttpClient::read_response(bool head_request) {
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  parser.skip(head_request);
  bhttp::read(socket_, buffer_, parser);
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

HttpResponse HttpClient::post(std::string_view target, std::string_view body) {
  send_raw(post_request(target, body));
  return read_response();
}

HttpResponse HttpClient::get(std::string_view target) {
  send_raw("GET " + std::string(target) + " HTTP/1.1\r\nHost: test\r\n\r\n");
  return read_response();
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
  socket_.set_option(asio::socket_base::linger(true, 0));
  socket_.close();
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
