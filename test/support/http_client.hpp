#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/system/system_error.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace gophermq::test {

struct HttpResponse {
  unsigned status = 0;
  unsigned version = 11;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;

  [[nodiscard]] bool has_header(const std::string& name) const { return headers.contains(name); }
  [[nodiscard]] std::string header(const std::string& name) const {
    const auto found = headers.find(name);
    return found == headers.end() ? std::string() : found->second;
  }
};

// Thrown when the connection breaks or the deadline passes before an operation completed. A
// system_error, so a test may tell a timeout (timed_out) from a broken connection.
class RequestFailed : public boost::system::system_error {
 public:
  using boost::system::system_error::system_error;
};

// A blocking HTTP/1.x client over one TCP connection, so tests control exactly which bytes go out
// (pipelining, HTTP/1.0, malformed requests) and see exactly what comes back. Connecting, sending
// and reading each have a deadline: a broker that never answers fails the test with a clear
// message (RequestFailed) instead of hanging it.
class HttpClient {
 public:
  static constexpr std::chrono::milliseconds default_timeout{10000};

  explicit HttpClient(std::uint16_t port, std::chrono::milliseconds timeout = default_timeout);

  // Sends a request without reading its answer, so the test reads it when it chooses.
  void send_raw(std::string_view bytes, std::chrono::milliseconds timeout = default_timeout);
  HttpResponse read_response(bool head_request = false);
  HttpResponse read_response(std::chrono::milliseconds timeout, bool head_request = false);

  HttpResponse post(std::string_view target, std::string_view body,
                    std::chrono::milliseconds timeout = default_timeout);
  HttpResponse get(std::string_view target, std::chrono::milliseconds timeout = default_timeout);

  // True when the server closed the connection in an orderly way (EOF, no reset) and sent nothing
  // more.
  bool closed_cleanly();

  // Blocks until the server ends the connection, in order or by reset, discarding anything it
  // sends; false for any other error.
  bool wait_until_closed();

  // Sends FIN: the client sends no more but can still read.
  void shutdown_send();
  // Ends the connection with a reset (SO_LINGER 0), as a client that crashed or gave up does.
  void abort();
  // A small kernel receive buffer, so a client that stops reading makes the server block writing.
  void set_receive_buffer(int bytes);

 private:
  // Runs the pending operation for at most `timeout`; throws when it did not complete.
  void finish(std::chrono::milliseconds timeout, const boost::system::error_code& error,
              const bool& done, std::string_view what);

  boost::asio::io_context context_;
  boost::asio::ip::tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
};

std::string post_request(std::string_view target, std::string_view body,
                         std::string_view extra_headers = "");

// One request on a fresh connection.
HttpResponse post_once(std::uint16_t port, std::string_view target, std::string_view body);

// The subscription id in a subscribe answer (a test failure when there is none).
std::string id_of(const HttpResponse& response);

// `line` as one whole line of a Prometheus text exposition, to find in it: a value `1` must not
// match `10`, nor a series a longer one. The exposition begins with a comment, so every series line
// follows a newline.
std::string metric_line(std::string_view line);

// The value of the series `name` (with its labels, as exposed) on the metrics port `port`; a test
// failure and -1 when there is none.
double metric(std::uint16_t port, std::string_view name);

// Re-requests GET `target` until the body contains `needle` or `timeout` passes, and returns the
// last body. For state the broker reaches on its own time (expiry, async delivery, waits begun).
std::string poll_until_contains(HttpClient& client, std::string_view target,
                                std::string_view needle,
                                std::chrono::milliseconds timeout = std::chrono::seconds(10));

// poll_until_contains, and a test failure when `needle` never shows.
std::string expect_eventually(HttpClient& client, std::string_view target, std::string_view needle);

// Subscribes to `subject` and returns the subscription id.
std::string subscribe(HttpClient& client, std::string_view subject);

}  // namespace gophermq::test
