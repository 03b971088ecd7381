// An HTTP client whose every request has a deadline, for tests of features that may not answer
// yet: a broker that never replies fails the test with a clear message instead of hanging it.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "support/http_client.hpp"

namespace gophermq::test {

// Thrown when the connection breaks or the deadline passes before a whole answer arrived.
class RequestFailed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class TimedClient {
 public:
  static constexpr std::chrono::milliseconds default_timeout{10000};

  explicit TimedClient(std::uint16_t port, std::chrono::milliseconds timeout = default_timeout);

  HttpResponse post(std::string_view target, std::string_view body,
                    std::chrono::milliseconds timeout = default_timeout);
  HttpResponse get(std::string_view target, std::chrono::milliseconds timeout = default_timeout);

  // Sends a request without reading its answer, so the test reads it when it chooses.
  void send(std::string_view bytes, std::chrono::milliseconds timeout = default_timeout);
  HttpResponse read_response(std::chrono::milliseconds timeout = default_timeout);

  // Ends the connection with a reset, as a consumer that crashed does.
  void abort();

 private:
  // Runs the pending operation for at most `timeout`; throws when it did not complete.
  void finish(std::chrono::milliseconds timeout, const boost::system::error_code& error,
              const bool& done, std::string_view what);

  boost::asio::io_context context_;
  boost::asio::ip::tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
};

}  // namespace gophermq::test
