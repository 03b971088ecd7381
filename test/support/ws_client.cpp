#include "support/ws_client.hpp"

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/websocket/stream_base.hpp>
#include <string>

#include "support/http_client.hpp"

namespace gophermq::test {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;

WsClient::WsClient(std::uint16_t port, std::string_view target, Options options) : ws_(context_) {
  auto& socket = ws_.next_layer();
  socket.open(asio::ip::tcp::v4());
  if (options.receive_buffer > 0) {
    socket.set_option(asio::socket_base::receive_buffer_size(options.receive_buffer));
  }
  beast::error_code error;
  bool done = false;
  socket.async_connect({asio::ip::make_address("127.0.0.1"), port},
                       [&](const beast::error_code& result) {
                         error = result;
                         done = true;
                       });
  if (!run_until(done, default_timeout) || error) {
    throw RequestFailed(error ? error : asio::error::timed_out, "websocket connect");
  }
  ws_.set_option(websocket::stream_base::decorator(
      [headers = std::move(options.headers)](websocket::request_type& request) {
        for (const auto& [name, value] : headers) {
          request.set(name, value);
        }
      }));
  ws_.control_callback([this](websocket::frame_type kind, beast::string_view payload) {
    if (kind == websocket::frame_type::pong) {
      pongs_.emplace_back(payload);
    }
  });
  done = false;
  ws_.async_handshake("127.0.0.1:" + std::to_string(port), std::string(target),
                      [&](const beast::error_code& result) {
                        error = result;
                        done = true;
                      });
  if (!run_until(done, default_timeout) || error) {
    throw RequestFailed(error ? error : asio::error::timed_out, "websocket upgrade");
  }
}

void WsClient::start_read() {
  if (reading_) {
    return;  // pending, or done and not yet taken
  }
  reading_ = true;
  read_done_ = false;
  ws_.async_read(buffer_, [this](const beast::error_code& error, std::size_t) {
    read_error_ = error;
    read_done_ = true;
  });
}

std::string WsClient::take_read() {
  reading_ = false;
  std::string message = beast::buffers_to_string(buffer_.data());
  buffer_.consume(buffer_.size());
  return message;
}

bool WsClient::run_until(const bool& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done) {
    context_.restart();
    if (context_.run_one_until(deadline) == 0) {
      return done;
    }
  }
  return true;
}

std::string WsClient::read(std::chrono::milliseconds timeout) {
  start_read();
  if (!run_until(read_done_, timeout)) {
    throw RequestFailed(asio::error::timed_out, "websocket read: no message within " +
                                                    std::to_string(timeout.count()) + " ms");
  }
  std::string message = take_read();
  if (read_error_) {
    throw RequestFailed(read_error_, "websocket read");
  }
  return message;
}

std::optional<websocket::close_reason> WsClient::read_until_closed(
    std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    start_read();
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (!run_until(read_done_, std::max(left, std::chrono::milliseconds(0)))) {
      throw RequestFailed(asio::error::timed_out, "websocket: not closed in time");
    }
    take_read();
    if (read_error_ == websocket::error::closed) {
      return ws_.reason();
    }
    if (read_error_) {
      return std::nullopt;
    }
  }
}

void WsClient::write(std::string_view bytes, bool text) {
  ws_.text(text);
  beast::error_code error;
  bool done = false;
  ws_.async_write(asio::buffer(bytes.data(), bytes.size()),
                  [&](const beast::error_code& result, std::size_t) {
                    error = result;
                    done = true;
                  });
  if (!run_until(done, default_timeout) || error) {
    throw RequestFailed(error ? error : asio::error::timed_out, "websocket write");
  }
}

void WsClient::send_text(std::string_view text) {
  write(text, true);
}

void WsClient::send_binary(std::string_view bytes) {
  write(bytes, false);
}

bool WsClient::ping(std::string_view payload, std::chrono::milliseconds timeout) {
  beast::error_code error;
  bool done = false;
  ws_.async_ping(websocket::ping_data(payload.data(), payload.size()),
                 [&](const beast::error_code& result) {
                   error = result;
                   done = true;
                 });
  if (!run_until(done, timeout) || error) {
    return false;
  }
  start_read();  // pongs are seen while a read is pending
  bool ponged = false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!ponged && std::chrono::steady_clock::now() < deadline && !read_done_) {
    context_.restart();
    if (context_.run_one_until(deadline) == 0) {
      break;
    }
    ponged = std::find(pongs_.begin(), pongs_.end(), payload) != pongs_.end();
  }
  return ponged;
}

}  // namespace gophermq::test
