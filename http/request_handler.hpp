#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <tuple>

namespace gophermq::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

// The path part of a request target: routes match without the query string.
inline std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

// The status of a request whose client hung up before its answer (nginx's 499, no HTTP status):
// the handler records it in the metrics, the server closes the connection without writing it.
inline constexpr auto kClientGone = static_cast<boost::beast::http::status>(499);

// The status a handler returns after Client::take_over: no HTTP status, the server writes nothing.
// Beast's result() reads it as status::unknown; compare result_int().
inline constexpr auto kTakenOver = static_cast<boost::beast::http::status>(1000);

// A connection taken over by a handler: the client's bytes, whatever carries them (plain TCP or,
// later, TLS), with no HTTP framing left to the server.
class Channel {
 public:
  virtual ~Channel() = default;

  // Reads what the client sends. Bytes that arrived behind the request that took the connection
  // over, already read by the server, come first.
  virtual boost::asio::awaitable<std::tuple<boost::beast::error_code, std::size_t>> read_some(
      boost::asio::mutable_buffer buffer) = 0;
  // Writes all of `buffer` within the server's write-timeout, so a client that stops reading
  // cannot hold the connection.
  virtual boost::asio::awaitable<boost::beast::error_code> write(
      boost::asio::const_buffer buffer) = 0;
};

// A long-lived answer (an event stream, a WebSocket) that owns its connection until it returns.
// Shutdown cancels it: its pending operation completes with operation_aborted, and an operation it
// starts afterwards throws.
using Session = std::function<boost::asio::awaitable<void>(Channel&)>;

// A connection taken over by a WebSocket session: the server accepted the upgrade over its own
// stream (plain TCP or, later, TLS) and frames the messages. Pings are answered while a read is
// pending, and a client silent for half the idle-timeout is pinged. The operations ignore the
// session's cancellation, so a session the shutdown cancelled can still close with a code; the
// server's drain deadline drops the connection regardless.
class WebSocketChannel {
 public:
  struct Message {
    boost::beast::error_code error;  // the socket ended, or was closed with a code
    std::string data;
    bool text = true;
  };

  virtual ~WebSocketChannel() = default;

  // The next whole message, at most broker.max-body-bytes: a larger one or a protocol violation
  // closes the connection (1009, 1002) and reads an error, as does the end of a close handshake.
  virtual boost::asio::awaitable<Message> read() = 0;
  // Writes one text message within the server's write-timeout; one that times out or fails drops
  // the connection, so the pending read ends too. At most one write at a time.
  virtual boost::asio::awaitable<boost::beast::error_code> write(std::string_view text) = 0;
  // Sends a close frame once a write in progress is done, and waits for the client's within the
  // write-timeout. Write nothing afterwards.
  virtual boost::asio::awaitable<boost::beast::error_code> close(std::uint16_t code,
                                                                 std::string_view reason) = 0;
};

using WebSocketSession = std::function<boost::asio::awaitable<void>(WebSocketChannel&)>;

// The far end of a connection, for a handler that waits long and should stop when nobody is left
// to answer.
class Client {
 public:
  virtual ~Client() = default;

  // Completes when the connection is gone (reset or broken); a client that only closed its sending
  // side is still there to read. Cancel it (for example with awaitable operator ||) to stop
  // watching.
  virtual boost::asio::awaitable<void> hangup() = 0;

  // Hands the connection to `session` once the handler returns what this returns (kTakenOver).
  // The server then reads no more requests from it and writes nothing itself, but still counts it
  // toward max-connections, and ends the session on shutdown.
  [[nodiscard]] virtual Response take_over(Session session) = 0;
  // The same for a WebSocket upgrade (the handler checked it is one): the server accepts it with
  // the request it read, then runs `session`.
  [[nodiscard]] virtual Response take_over_websocket(WebSocketSession session) = 0;
};

// What a listener serves. The server owns connections and framing; the handler turns requests
// into responses and records them.
class RequestHandler {
 public:
  virtual ~RequestHandler() = default;

  virtual boost::asio::awaitable<Response> handle(Request& request, Client& client) = 0;

  // A request the server refused before reading all of it (too large, malformed). `request` holds
  // whatever head was parsed, maybe none.
  virtual Response reject(const Request& request, boost::beast::http::status status,
                          std::string_view message) = 0;
};

}  // namespace gophermq::http
