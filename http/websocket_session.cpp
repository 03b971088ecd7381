#include "http/websocket_session.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <string_view>
#include <utility>

#include "http/json_codec.hpp"

namespace gophermq::http {
namespace asio = boost::asio;
namespace websocket = boost::beast::websocket;
using boost::asio::experimental::awaitable_operators::operator||;

namespace {

struct Close {
  std::uint16_t code;
  std::string_view reason;
};

constexpr Close kSubscriptionEnded{websocket::close_code::normal, "subscription ended"};
constexpr Close kShuttingDown{websocket::close_code::going_away, "server shutting down"};
constexpr Close kNotAllowed{websocket::close_code::policy_error, "not allowed"};
constexpr Close kBinaryFrame{websocket::close_code::unknown_data, "binary frames are not accepted"};
constexpr Close kInvalidFrame{websocket::close_code::bad_payload,
                              "a frame is {\"ack\":[receipts]} or {\"nack\":[receipts]}"};

// A WebSocket session, shared by the copies of the WebSocketSession function. Both coroutines run
// on the connection's executor, one thread, so `closing_` needs no lock.
class WebSocketState final : public PushStream {
 public:
  WebSocketState(service::BrokerService& service, metrics::StreamMetrics& metrics,
                 EventStream stream, asio::any_io_executor executor)
      : PushStream(service, metrics, std::move(stream), std::move(executor)), service_(service) {}

  asio::awaitable<void> run(WebSocketChannel& channel) {
    // Reads and writes run at once: acks arrive while a write waits for the client.
    return serve(push(channel) || receive(channel));
  }

 private:
  // Writes the subscription's messages until a write fails or the session closes; closes with
  // 1000 when the subscription goes and with 1001 when cancelled: by the shutdown, or because the
  // client's side ended first, when closing again is a no-op.
  asio::awaitable<void> push(WebSocketChannel& channel) {
    std::optional<Close> ending;
    try {
      ending = co_await pump(channel);
    } catch (const std::exception&) {
      ending = kShuttingDown;
    }
    co_await asio::this_coro::reset_cancellation_state();
    if (ending) {
      co_await close_once(channel, *ending);
    }
  }

  // nullopt once a write failed, or the session is closing.
  asio::awaitable<std::optional<Close>> pump(WebSocketChannel& channel) {
    while (true) {
      if (!still_allowed()) {
        co_return kNotAllowed;  // the token was removed or narrowed (API.md §10: 1008)
      }
      // Beast's keep-alive pings keep the socket alive: a pull waits as long as a heartbeat only
      // to bound how long a pull holds the broker's waiter.
      service::FetchResult batch = co_await puller_.next(pull_wait(stream_.heartbeat));
      if (batch.status != broker::FetchStatus::ok) {
        co_return kSubscriptionEnded;
      }
      // The batch's frames go out back to back, one write at a time, and are timed as one write:
      // one race against the slow-reader count per batch, not per frame.
      if (!co_await written(write_batch(channel, batch)) || closing_) {
        co_return std::nullopt;
      }
    }
  }

  // Stops early, without an error, once the session is closing.
  asio::awaitable<boost::beast::error_code> write_batch(WebSocketChannel& channel,
                                                        const service::FetchResult& batch) {
    for (const broker::Delivery& delivery : batch.deliveries) {
      if (closing_) {
        break;
      }
      std::string frame = encode_delivery(delivery, batch.ack);
      frame.pop_back();  // the newline every encoded body ends with: a frame is the object alone
      if (const boost::beast::error_code error = co_await channel.write(frame)) {
        co_return error;
      }
      metrics_.pushed(1);
    }
    co_return boost::beast::error_code{};
  }

  // Applies the client's ack and nack frames until the socket ends: the client's close, or ours
  // answered, or the connection dropped.
  asio::awaitable<void> receive(WebSocketChannel& channel) {
    while (true) {
      const WebSocketChannel::Message message = co_await channel.read();
      if (message.error) {
        co_return;
      }
      if (closing_) {
        continue;  // frames that crossed our close frame
      }
      if (!message.text) {
        co_await close_once(channel, kBinaryFrame);
        continue;
      }
      const auto frame = parse_receipts_frame(message.data);
      if (!frame) {
        co_await close_once(channel, kInvalidFrame);
        continue;
      }
      // No answer: the frames the client reads are its messages, one each. Stale receipts, or
      // acks to a subscription without ack mode, change nothing, as POST /api/ack would say.
      co_await service_.answer_receipts(frame->verb, stream_.subject, stream_.id, frame->receipts);
    }
  }

  // One close frame per session: after it, the session writes nothing more.
  asio::awaitable<void> close_once(WebSocketChannel& channel, Close ending) {
    if (closing_) {
      co_return;
    }
    closing_ = true;
    co_await channel.close(ending.code, ending.reason);
  }

  service::BrokerService& service_;
  bool closing_ = false;
};

}  // namespace

std::optional<ReceiptsFrame> parse_receipts_frame(std::string_view text) {
  boost::system::error_code error;
  const boost::json::value value = boost::json::parse(text, error);
  if (error || !value.is_object()) {
    return std::nullopt;
  }
  const boost::json::object& object = value.get_object();
  const auto* ack = object.if_contains("ack");
  const auto* nack = object.if_contains("nack");
  if ((ack == nullptr) == (nack == nullptr)) {
    return std::nullopt;
  }
  ReceiptsFrame frame;
  frame.verb = ack != nullptr ? service::ReceiptsVerb::ack : service::ReceiptsVerb::nack;
  const boost::json::value& receipts = ack != nullptr ? *ack : *nack;
  if (!receipts.is_array() || receipts.get_array().empty()) {
    return std::nullopt;
  }
  for (const boost::json::value& receipt : receipts.get_array()) {
    if (!receipt.is_string()) {
      return std::nullopt;
    }
    const boost::json::string& receipt_text = receipt.get_string();
    frame.receipts.emplace_back(receipt_text.data(), receipt_text.size());
  }
  return frame;
}

WebSocketSession websocket_session(service::BrokerService& service, metrics::StreamMetrics& metrics,
                                   EventStream stream, asio::any_io_executor executor) {
  auto state =
      std::make_shared<WebSocketState>(service, metrics, std::move(stream), std::move(executor));
  return [state](WebSocketChannel& channel) { return state->run(channel); };
}

}  // namespace gophermq::http
