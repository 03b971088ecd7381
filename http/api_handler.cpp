#include "http/api_handler.hpp"

#include <algorithm>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <charconv>
#include <cstdint>
#include <iterator>
#include <limits>
#include <optional>
#include <variant>

#include "broker/subject.hpp"
#include "broker/uuid.hpp"
#include "http/json_codec.hpp"

namespace gophermq::http {
namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using bhttp::status;
using bhttp::verb;
using boost::asio::experimental::awaitable_operators::operator||;

namespace {

constexpr std::string_view kInvalidBody = "request's body is invalid";
constexpr std::string_view kInvalidSubject = "invalid subject";
constexpr std::size_t kDefaultStatsRows = 100;
constexpr std::size_t kMaxStatsRows = 1000;

// `limit` from the query string of GET /api/stats: 0..kMaxStatsRows, default kDefaultStatsRows.
std::optional<std::size_t> stats_limit(std::string_view target) {
  const auto query_start = target.find('?');
  if (query_start == std::string_view::npos) {
    return kDefaultStatsRows;
  }
  std::string_view query = target.substr(query_start + 1);
  std::optional<std::size_t> limit = kDefaultStatsRows;
  while (!query.empty()) {
    const auto end = query.find('&');
    const std::string_view pair = query.substr(0, end);
    query = end == std::string_view::npos ? std::string_view{} : query.substr(end + 1);
    if (!pair.starts_with("limit=")) {
      continue;
    }
    const std::string_view digits = pair.substr(6);
    std::size_t value = 0;
    const auto [rest, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (digits.empty() || error != std::errc{} || rest != digits.data() + digits.size() ||
        value > kMaxStatsRows) {
      return std::nullopt;
    }
    limit = value;
  }
  return limit;
}

}  // namespace

Response ApiHandler::invalid_subject(std::string_view subject) {
  if (subject.size() > service_.limits().max_subject_length) {
    limit_metrics_.hit(metrics::Limit::max_subject_length);
  }
  return error_response(status::bad_request, kInvalidSubject);
}

Response ApiHandler::publish_error(broker::PublishStatus result, std::string_view subject) {
  switch (result) {
    case broker::PublishStatus::invalid_subject:
      return invalid_subject(subject);
    case broker::PublishStatus::message_too_large:
      limit_metrics_.hit(metrics::Limit::max_message_bytes);
      return error_response(status::payload_too_large, "message too large");
    case broker::PublishStatus::no_subscribers:
      return error_response(status::not_found, "subscriber not found");
    case broker::PublishStatus::overflow:
      limit_metrics_.hit(metrics::Limit::max_pending);
      return error_response(status::too_many_requests, "broker overflow");
    case broker::PublishStatus::queue_full:
      limit_metrics_.hit(metrics::Limit::max_pending_per_queue);
      return error_response(status::too_many_requests, "subscriber queue full");
    case broker::PublishStatus::ok:
      break;
  }
  return error_response(status::internal_server_error, "internal server error");
}

const ApiHandler::Route ApiHandler::kRoutes[] = {
    {"/api/subscribe", verb::post, "POST", &ApiHandler::subscribe},
    {"/api/publish", verb::post, "POST", &ApiHandler::publish},
    {"/api/publish/async", verb::post, "POST", &ApiHandler::publish_async},
    {"/api/publish/batch", verb::post, "POST", &ApiHandler::publish_batch},
    {"/api/fetch", verb::post, "POST", &ApiHandler::fetch},
    {"/api/unsubscribe", verb::post, "POST", &ApiHandler::unsubscribe},
    {"/api/stats", verb::get, "GET, HEAD", &ApiHandler::stats},
    {"/ready", verb::get, "GET, HEAD", &ApiHandler::ready},
};

std::vector<std::string> ApiHandler::route_labels() {
  std::vector<std::string> labels;
  for (const Route& route : kRoutes) {
    labels.emplace_back(route.path);
  }
  labels.emplace_back("unmatched");  // the label of every unknown path, so the set stays bounded
  return labels;
}

ApiHandler::ApiHandler(broker::BrokerService& service, prometheus::Registry& registry,
                       metrics::LimitMetrics& limit_metrics, std::chrono::milliseconds max_wait)
    : service_(service),
      metrics_(registry, route_labels()),
      limit_metrics_(limit_metrics),
      max_wait_(max_wait) {}

Response json_response(status code, std::string body) {
  Response response{code, 11};
  response.set(bhttp::field::content_type, "application/json; charset=UTF-8");
  response.body() = std::move(body);
  return response;
}

Response error_response(status code, std::string_view message) {
  return json_response(code, encode_message(message));
}

const ApiHandler::Route* ApiHandler::find_route(std::string_view target) {
  const std::string_view path = path_of(target);
  for (const Route& route : kRoutes) {
    if (route.path == path) {
      return &route;
    }
  }
  return nullptr;
}

std::size_t ApiHandler::route_index(const Route* route) {
  return route == nullptr ? std::size(kRoutes) : static_cast<std::size_t>(route - kRoutes);
}

asio::awaitable<Response> ApiHandler::handle(Request& request, Client& client) {
  const auto started = std::chrono::steady_clock::now();
  const Route* route = find_route(request.target());
  Response response;
  if (route == nullptr) {
    response = error_response(status::not_found, "Not Found");
  } else if (request.method() == route->method ||
             (route->method == verb::get && request.method() == verb::head)) {
    response = co_await (this->*route->endpoint)(request, client);
  } else {
    response = error_response(status::method_not_allowed, "Method Not Allowed");
    response.set(bhttp::field::allow, route->allow);
  }
  metrics_.record(route_index(route), response.result_int(),
                  std::chrono::steady_clock::now() - started);
  co_return response;
}

Response ApiHandler::reject(const Request& request, status code, std::string_view message) {
  metrics_.record(route_index(find_route(request.target())), static_cast<unsigned>(code),
                  std::chrono::steady_clock::duration::zero());
  return error_response(code, message);
}

asio::awaitable<Response> ApiHandler::subscribe(const Request& request, Client& /*client*/) {
  auto body = decode_subscribe(request.body());
  if (!body) {
    co_return error_response(status::bad_request, kInvalidBody);
  }
  std::string id = broker::random_uuid_v4();
  auto result = co_await service_.subscribe(id, body->subject, body->group);
  if (result == broker::SubscribeStatus::duplicate_id) {
    // 122 random bits make this a once-in-the-universe event; one more draw settles it.
    id = broker::random_uuid_v4();
    result = co_await service_.subscribe(id, body->subject, body->group);
  }
  switch (result) {
    case broker::SubscribeStatus::ok:
      co_return json_response(status::ok, encode_subscribed(id, body->subject, body->group));
    case broker::SubscribeStatus::invalid_subject:
      co_return invalid_subject(body->subject);
    case broker::SubscribeStatus::invalid_group:
      co_return error_response(status::bad_request, "invalid group");
    case broker::SubscribeStatus::too_many_subscriptions:
      limit_metrics_.hit(metrics::Limit::max_subscriptions);
      co_return error_response(status::too_many_requests, "too many subscriptions");
    case broker::SubscribeStatus::duplicate_id:
      break;
  }
  co_return error_response(status::internal_server_error, "internal server error");
}

asio::awaitable<Response> ApiHandler::publish(const Request& request, Client& /*client*/) {
  auto body = decode_publish(request.body());
  if (!body) {
    co_return error_response(status::bad_request, kInvalidBody);
  }
  const auto result = co_await service_.publish(body->subject, body->messages);
  if (result != broker::PublishStatus::ok) {
    co_return publish_error(result, body->subject);
  }
  co_return json_response(status::ok, encode_status_ok());
}

asio::awaitable<Response> ApiHandler::publish_async(const Request& request, Client& /*client*/) {
  auto body = decode_publish(request.body());
  if (!body) {
    co_return error_response(status::bad_request, kInvalidBody);
  }
  if (!broker::is_valid_subject(body->subject, broker::SubjectUse::publish,
                                service_.limits().max_subject_length)) {
    co_return invalid_subject(body->subject);
  }
  if (body->messages.front().size() > service_.limits().max_message_bytes) {
    co_return publish_error(broker::PublishStatus::message_too_large, body->subject);
  }
  switch (service_.publish_async(std::move(body->subject), std::move(body->messages.front()))) {
    case broker::AsyncPublishStatus::queue_full:
      limit_metrics_.hit(metrics::Limit::async_queue_size);
      co_return error_response(status::too_many_requests, "async queue full");
    case broker::AsyncPublishStatus::bytes_full:
      limit_metrics_.hit(metrics::Limit::async_queue_bytes);
      co_return error_response(status::too_many_requests, "async queue full");
    case broker::AsyncPublishStatus::accepted:
      break;
  }
  co_return json_response(status::ok, encode_status_ok());
}

asio::awaitable<Response> ApiHandler::publish_batch(const Request& request, Client& /*client*/) {
  auto body = decode_publish_batch(request.body());
  if (!body) {
    co_return error_response(status::bad_request, kInvalidBody);
  }
  const auto result = co_await service_.publish(body->subject, body->messages);
  if (result != broker::PublishStatus::ok) {
    co_return publish_error(result, body->subject);
  }
  co_return json_response(status::ok, encode_batch_ok(body->messages.size()));
}

asio::awaitable<Response> ApiHandler::fetch(const Request& request, Client& client) {
  auto body = decode_fetch(request.body());
  if (!body) {
    co_return error_response(status::bad_request, kInvalidBody);
  }
  const std::size_t max = body->max.value_or(std::numeric_limits<std::size_t>::max());
  const auto wait = std::chrono::milliseconds(
      std::min<std::uint64_t>(body->wait_ms, static_cast<std::uint64_t>(max_wait_.count())));
  broker::FetchResult result;
  if (wait.count() == 0) {
    result = co_await service_.fetch(body->subject, body->id, max);
  } else {
    // Racing the client's hangup ends a wait nobody will read, and leaves its messages queued.
    auto outcome = co_await (service_.fetch(body->subject, body->id, max, wait) || client.hangup());
    if (outcome.index() == 1) {
      co_return Response{kClientGone, 11};
    }
    result = std::move(std::get<0>(outcome));
  }
  switch (result.status) {
    case broker::FetchStatus::ok:
      co_return json_response(status::ok,
                              encode_fetched(std::move(result.messages), body->id, body->subject));
    case broker::FetchStatus::invalid_subject:
      co_return invalid_subject(body->subject);
    case broker::FetchStatus::bad_id:
    case broker::FetchStatus::waiting:  // the service only returns once the wait is over
      break;
  }
  co_return error_response(status::not_found, "bad id");
}

asio::awaitable<Response> ApiHandler::unsubscribe(const Request& request, Client& /*client*/) {
  auto body = decode_unsubscribe(request.body());
  if (!body) {
    co_return error_response(status::bad_request, kInvalidBody);
  }
  switch (co_await service_.unsubscribe(body->subject, body->id)) {
    case broker::UnsubscribeStatus::ok:
      co_return json_response(status::ok, encode_status_ok());
    case broker::UnsubscribeStatus::invalid_subject:
      co_return invalid_subject(body->subject);
    case broker::UnsubscribeStatus::bad_id:
      break;
  }
  co_return error_response(status::not_found, "bad id");
}

asio::awaitable<Response> ApiHandler::stats(const Request& request, Client& /*client*/) {
  const auto limit = stats_limit(request.target());
  if (!limit) {
    co_return error_response(status::bad_request, "invalid limit");
  }
  const broker::ServiceSnapshot snapshot = co_await service_.snapshot(*limit);
  const auto uptime =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_);
  co_return json_response(status::ok, encode_stats(snapshot.totals, snapshot.top_subjects,
                                                   static_cast<std::uint64_t>(uptime.count())));
}

asio::awaitable<Response> ApiHandler::ready(const Request& /*request*/, Client& /*client*/) {
  if (!accepting_.load(std::memory_order_relaxed)) {
    co_return error_response(status::service_unavailable, "shutting down");
  }
  co_return Response{status::no_content, 11};
}

}  // namespace gophermq::http
