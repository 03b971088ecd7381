#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gophermq::test {

// A blocking WebSocket client (Beast's) for GET /api/ws. Every operation has a deadline: a broker
// that never answers fails the test with RequestFailed (support/http_client.hpp) instead of
// hanging it. At most one read is pending at a time, and it stays pending across calls, so
// waiting for a pong does not break the stream.
class WsClient {
 public:
  static constexpr std::chrono::milliseconds default_timeout{10000};

  struct Options {
    std::vector<std::pair<std::string, std::string>> headers;  // added to the upgrade request
    int receive_buffer = 0;  // above zero: a small kernel buffer, so a client that stops
                             // reading makes the server's writes block early
  };

  // Connects and upgrades `target` (e.g. "/api/ws?subject=s"); throws RequestFailed when the
  // server does not switch protocols.
  WsClient(std::uint16_t port, std::string_view target, Options options);
  WsClient(std::uint16_t port, std::string_view target) : WsClient(port, target, Options{}) {}

  // The next message's payload; throws when the connection ends or `timeout` passes first.
  std::string read(std::chrono::milliseconds timeout = default_timeout);
  // Reads (and drops messages) until the server ends the connection: its close frame's code and
  // reason, or nullopt when the connection ended without one.
  std::optional<boost::beast::websocket::close_reason> read_until_closed(
      std::chrono::milliseconds timeout = default_timeout);

  void send_text(std::string_view text);
  void send_binary(std::string_view bytes);
  // Sends a ping and reads until its pong comes back; false when none came in time.
  bool ping(std::string_view payload, std::chrono::milliseconds timeout = default_timeout);

 private:
  void start_read();
  // The completed read's payload; the next start_read() reads anew.
  std::string take_read();
  // Runs the io_context until `done` or the deadline; false on the deadline.
  bool run_until(const bool& done, std::chrono::milliseconds timeout);
  void write(std::string_view bytes, bool text);

  boost::asio::io_context context_;
  boost::beast::websocket::stream<boost::asio::ip::tcp::socket> ws_;
  boost::beast::flat_buffer buffer_;
  bool reading_ = false;  // a read started whose payload was not taken yet
  bool read_done_ = false;
  boost::beast::error_code read_error_;
  std::vector<std::string> pongs_;
};

}  // namespace gophermq::test
