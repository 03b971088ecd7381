#pragma once

#include <prometheus/registry.h>

#include <chrono>
#include <optional>

#include "auth/auth.hpp"
#include "http/request_handler.hpp"
#include "metrics/auth_metrics.hpp"
#include "service/broker_service.hpp"

namespace gophermq::http {

// GET /metrics in Prometheus text format, served by our own listener so the daemon runs one HTTP
// stack (the library's Exposer would bring civetweb and its own threads).
class MetricsEndpoint final : public RequestHandler {
 public:
  // With `token` (the SHA-256 of monitoring.token) a scrape needs `Authorization: Bearer TOKEN`;
  // refusals are counted in `auth_metrics`, which must then be given too.
  MetricsEndpoint(service::BrokerService& service, prometheus::Registry& registry,
                  std::chrono::system_clock::time_point started,
                  std::optional<auth::Digest> token = std::nullopt,
                  metrics::AuthMetrics* auth_metrics = nullptr);

  boost::asio::awaitable<Response> handle(Request& request, Client& client) override;
  Response reject(const Request& request, boost::beast::http::status status,
                  std::string_view message) override;

 private:
  service::BrokerService& service_;
  prometheus::Registry& registry_;
  std::chrono::system_clock::time_point started_;
  const std::optional<auth::Digest> token_;
  metrics::AuthMetrics* const auth_metrics_;
};

}  // namespace gophermq::http
