#pragma once

#include <prometheus/registry.h>

#include <chrono>

#include "http/request_handler.hpp"
#include "service/broker_service.hpp"

namespace gophermq::http {

// GET /metrics in Prometheus text format, served by our own listener so the daemon runs one HTTP
// stack (the library's Exposer would bring civetweb and its own threads).
class MetricsEndpoint final : public RequestHandler {
 public:
  MetricsEndpoint(service::BrokerService& service, prometheus::Registry& registry,
                  std::chrono::system_clock::time_point started);

  boost::asio::awaitable<Response> handle(Request& request, Client& client) override;
  Response reject(const Request& request, boost::beast::http::status status,
                  std::string_view message) override;

 private:
  service::BrokerService& service_;
  prometheus::Registry& registry_;
  std::chrono::system_clock::time_point started_;
};

}  // namespace gophermq::http
