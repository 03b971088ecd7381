#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <string_view>

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

// The far end of a connection, for a handler that waits long and should stop when nobody is left
// to answer.
class Client {
 public:
  virtual ~Client() = default;

  // Completes when the connection is gone (reset or broken); a client that only closed its sending
  // side is still there to read. Cancel it (for example with awaitable operator ||) to stop
  // watching.
  virtual boost::asio::awaitable<void> hangup() = 0;
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
