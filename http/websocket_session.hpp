#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/event_stream.hpp"
#include "http/request_handler.hpp"
#include "metrics/stream_metrics.hpp"
#include "service/broker_service.hpp"

namespace gophermq::http {

// What a client's text frame asks of a WebSocket session (API.md §10).
struct ReceiptsFrame {
  service::ReceiptsVerb verb = service::ReceiptsVerb::ack;
  std::vector<std::string> receipts;
};

// `{"ack":[R...]}` or `{"nack":[R...]}`: an object with exactly one of the two, a non-empty
// array of strings; other fields are ignored. nullopt for anything else.
std::optional<ReceiptsFrame> parse_receipts_frame(std::string_view text);

// The session that answers GET /api/ws once the upgrade is accepted: a text frame per message
// (the JSON object of an event stream's data line), pulled with StreamPuller, while the client's
// ack and nack frames are applied as they come. It ends when the client closes or goes, a write
// times out, the subscription is removed (close 1000) or the server shuts down (close 1001); a
// frame that is not one of the above closes it with 1003 (binary) or 1007. An ephemeral
// subscription is removed then, also when the session never got to run, on `executor`.
WebSocketSession websocket_session(service::BrokerService& service, metrics::StreamMetrics& metrics,
                                   EventStream stream, boost::asio::any_io_executor executor);

}  // namespace gophermq::http
