#include "api_exchange.hpp"

#include <prometheus/registry.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <optional>

#include "http/api_handler.hpp"
#include "metrics/limit_metrics.hpp"
#include "service/broker_service.hpp"

namespace gophermq::fuzz {
namespace asio = boost::asio;

namespace {

// A client that never hangs up: the fuzzer's fetches do not wait (max-wait is 0).
class StayingClient final : public http::Client {
 public:
  explicit StayingClient(asio::any_io_executor executor) : executor_(std::move(executor)) {}
  asio::awaitable<void> hangup() override {
    asio::steady_timer never(executor_, asio::steady_timer::time_point::max());
    co_await never.async_wait(asio::use_awaitable);
  }
  // No route of the API takes its connection over yet: a handler that does is a finding.
  http::Response take_over(http::Session /*session*/) override { std::abort(); }
  http::Response take_over_websocket(http::WebSocketSession /*session*/) override { std::abort(); }

 private:
  asio::any_io_executor executor_;
};

}  // namespace

struct ApiExchange::State {
  asio::io_context context{1};
  prometheus::Registry registry;
  metrics::LimitMetrics limit_metrics{registry};
  service::BrokerService service{context.get_executor(),
                                 broker::Limits{.max_pending = 1000,
                                                .max_pending_bytes = 64 * 1024,
                                                .max_subject_length = 64,
                                                .max_message_bytes = 4096},
                                 16};
  http::ApiHandler handler{service, registry, limit_metrics, std::chrono::milliseconds(0)};
  StayingClient client{context.get_executor()};
};

ApiExchange::ApiExchange() : state_(std::make_unique<State>()) {}

ApiExchange::~ApiExchange() = default;

http::Response ApiExchange::answer(http::Request& request) {
  std::optional<http::Response> response;
  asio::co_spawn(state_->context, state_->handler.handle(request, state_->client),
                 [&](const std::exception_ptr& failure, http::Response answer) {
                   if (failure) {
                     std::cerr << "the handler threw\n";
                     std::abort();
                   }
                   response = std::move(answer);
                 });
  state_->context.run();
  state_->context.restart();
  if (!response) {
    std::cerr << "the handler never answered\n";
    std::abort();
  }
  return std::move(*response);
}

http::Response ApiExchange::reject(const http::Request& request, boost::beast::http::status status,
                                   std::string_view message) {
  return state_->handler.reject(request, status, message);
}

}  // namespace gophermq::fuzz
