// The HTTP client the bench programs share: one keep-alive HTTP/1.1 connection, errors returned
// as codes (as_tuple) so a load generator counts them instead of unwinding.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace gophermq::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

struct Answer {
  beast::error_code error;
  unsigned status = 0;
  std::string body;
  Clock::time_point received;  // when the answer was read, or the error seen
};

// From now on every Connection of the process speaks TLS, trusting the CAs in `ca_file` (PEM).
// Throws when the file cannot be used.
void use_tls(const std::string& ca_file);

class Connection {
 public:
  explicit Connection(asio::any_io_executor executor);

  asio::awaitable<beast::error_code> connect(const tcp::endpoint& endpoint);
  // `extra_wait` lengthens the request's timeout by as long as the server may hold the answer (a
  // waiting fetch).
  asio::awaitable<Answer> post(std::string_view target, std::string body,
                               std::chrono::milliseconds extra_wait = {});
  asio::awaitable<Answer> get(std::string_view target);
  void close();

 private:
  asio::awaitable<Answer> exchange(std::chrono::milliseconds extra_wait);
  template <class Stream>
  asio::awaitable<Answer> exchange_over(Stream& stream, std::chrono::milliseconds extra_wait);

  beast::tcp_stream stream_;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream&>> tls_;  // set by connect() under use_tls
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
};

}  // namespace gophermq::bench
