#include "support/timed_client.hpp"

#include <boost/asio/write.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cctype>

namespace gophermq::test {
namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

TimedClient::TimedClient(std::uint16_t port, std::chrono::milliseconds timeout)
    : socket_(context_) {
  boost::system::error_code error;
  bool done = false;
  socket_.async_connect({asio::ip::make_address("127.0.0.1"), port},
                        [&](const boost::system::error_code& result) {
                          error = result;
                          done = true;
                        });
  finish(timeout, error, done, "connect");
}

void TimedClient::finish(std::chrono::milliseconds timeout, const boost::system::error_code& error,
                         const bool& done, std::string_view what) {
  context_.restart();
  context_.run_for(timeout);
  if (!done) {
    // The operation is still queued: closing cancels it, and running completes the cancellation.
    boost::system::error_code ignored;
    socket_.close(ignored);
    context_.restart();
    context_.run();
    throw RequestFailed(std::string(what) + ": no answer within " +
                        std::to_string(timeout.count()) + " ms");
  }
  if (error) {
    throw RequestFailed(std::string(what) + ": " + error.message());
  }
}

void TimedClient::send(std::string_view bytes, std::chrono::milliseconds timeout) {
  boost::system::error_code error;
  bool done = false;
  asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()),
                    [&](const boost::system::error_code& result, std::size_t) {
                      error = result;
                      done = true;
                    });
  finish(timeout, error, done, "send");
}

HttpResponse TimedClient::read_response(std::chrono::milliseconds timeout) {
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
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

HttpResponse TimedClient::post(std::string_view target, std::string_view body,
                               std::chrono::milliseconds timeout) {
  send(post_request(target, body), timeout);
  return read_response(timeout);
}

HttpResponse TimedClient::get(std::string_view target, std::chrono::milliseconds timeout) {
  send("GET " + std::string(target) + " HTTP/1.1\r\nHost: test\r\n\r\n", timeout);
  return read_response(timeout);
}

void TimedClient::abort() {
  boost::system::error_code ignored;
  socket_.set_option(asio::socket_base::linger(true, 0), ignored);
  socket_.close(ignored);
}

}  // namespace gophermq::test
