#include "http/metrics_endpoint.hpp"

#include <prometheus/text_serializer.h>

#include "http/api_handler.hpp"
#include "metrics/state_metrics.hpp"

namespace gophermq::http {
namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

MetricsEndpoint::MetricsEndpoint(service::BrokerService& service, prometheus::Registry& registry,
                                 std::chrono::system_clock::time_point started,
                                 std::optional<auth::Digest> token,
                                 metrics::AuthMetrics* auth_metrics)
    : service_(service),
      registry_(registry),
      started_(started),
      token_(token),
      auth_metrics_(auth_metrics) {}

asio::awaitable<Response> MetricsEndpoint::handle(Request& request, Client& /*client*/) {
  if (path_of(request.target()) != "/metrics") {
    co_return error_response(bhttp::status::not_found, "Not Found");
  }
  if (request.method() != bhttp::verb::get && request.method() != bhttp::verb::head) {
    Response response = error_response(bhttp::status::method_not_allowed, "Method Not Allowed");
    response.set(bhttp::field::allow, "GET, HEAD");
    co_return response;
  }
  if (token_) {
    const std::optional<std::string_view> token = bearer_token(request);
    if (!token || !auth::is_token_of(*token_, *token)) {
      auth_metrics_->failed(token ? metrics::AuthFailure::unknown : metrics::AuthFailure::missing);
      Response response = error_response(bhttp::status::unauthorized, "unauthorized");
      response.set(bhttp::field::www_authenticate, "Bearer");
      co_return response;
    }
  }
  const service::ServiceSnapshot snapshot = co_await service_.snapshot();
  std::vector<prometheus::MetricFamily> families = registry_.Collect();
  for (auto& extra : {metrics::broker_families(snapshot), metrics::process_families(started_)}) {
    families.insert(families.end(), extra.begin(), extra.end());
  }

  Response response{bhttp::status::ok, 11};
  response.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  response.body() = prometheus::TextSerializer().Serialize(families);
  co_return response;
}

Response MetricsEndpoint::reject(const Request& /*request*/, bhttp::status status,
                                 std::string_view message) {
  return error_response(status, message);
}

}  // namespace gophermq::http
