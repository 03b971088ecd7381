#include "http/api_handler.hpp"

#include <algorithm>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <charconv>
#include <cstdint>
#include <iterator>
#include <limits>
#include <optional>
#include <variant>

#include "http/json_codec.hpp"

namespace gophermq::http {
namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using bhttp::status;
using bhttp::verb;
using boost::asio::experimental::awaitable_operators::operator||;

namespace {

constexpr Refusal kInvalidBody{status::bad_request, "request's body is invalid", std::nullopt};
constexpr Refusal kInvalidSubject{status::bad_request, "invalid subject", std::nullopt};
// Answered as any invalid subject, and counted against its limit.
constexpr Refusal kSubjectTooLong{status::bad_request, "invalid subject",
                                  metrics::Limit::max_subject_length};
constexpr Refusal kInvalidGroup{status::bad_request, "invalid group", std::nullopt};
constexpr Refusal kInvalidLimit{status::bad_request, "invalid limit", std::nullopt};
constexpr Refusal kMessageTooLarge{status::payload_too_large, "message too large",
                                   metrics::Limit::max_message_bytes};
constexpr Refusal kNoSubscribers{status::not_found, "subscriber not found", std::nullopt};
constexpr Refusal kBadId{status::not_found, "bad id", std::nullopt};
constexpr Refusal kNotFound{status::not_found, "Not Found", std::nullopt};
constexpr Refusal kMethodNotAllowed{status::method_not_allowed, "Method Not Allowed", std::nullopt};
constexpr Refusal kOverflow{status::too_many_requests, "broker overflow",
                            metrics::Limit::max_pending};
constexpr Refusal kQueueFull{status::too_many_requests, "subscriber queue full",
                             metrics::Limit::max_pending_per_queue};
constexpr Refusal kTooManySubscriptions{status::too_many_requests, "too many subscriptions",
                                        metrics::Limit::max_subscriptions};
constexpr Refusal kAsyncQueueFull{status::too_many_requests, "async queue full",
                                  metrics::Limit::async_queue_size};
constexpr Refusal kAsyncBytesFull{status::too_many_requests, "async queue full",
                                  metrics::Limit::async_queue_bytes};
constexpr Refusal kStorageFull{status::insufficient_storage, "storage full",
                               metrics::Limit::storage_max_bytes};
constexpr Refusal kShuttingDown{status::service_unavailable, "shutting down", std::nullopt};
constexpr Refusal kRecovering{status::service_unavailable, "recovering", std::nullopt};
constexpr Refusal kInternal{status::internal_server_error, "internal server error", std::nullopt};

// How each status of the service is answered: nullptr for success, else the refusal. Every route
// maps its statuses here, so a status reads the same on every route.
const Refusal* refusal_of(broker::PublishStatus result) {
  switch (result) {
    case broker::PublishStatus::ok:
      return nullptr;
    case broker::PublishStatus::invalid_subject:
      return &kInvalidSubject;
    case broker::PublishStatus::subject_too_long:
      return &kSubjectTooLong;
    case broker::PublishStatus::message_too_large:
      return &kMessageTooLarge;
    case broker::PublishStatus::no_subscribers:
      return &kNoSubscribers;
    case broker::PublishStatus::overflow:
      return &kOverflow;
    case broker::PublishStatus::queue_full:
      return &kQueueFull;
    case broker::PublishStatus::storage_full:
      return &kStorageFull;
  }
  return &kInternal;
}

const Refusal* refusal_of(service::AsyncPublishStatus result) {
  switch (result) {
    case service::AsyncPublishStatus::accepted:
      return nullptr;
    case service::AsyncPublishStatus::invalid_subject:
      return &kInvalidSubject;
    case service::AsyncPublishStatus::subject_too_long:
      return &kSubjectTooLong;
    case service::AsyncPublishStatus::message_too_large:
      return &kMessageTooLarge;
    case service::AsyncPublishStatus::queue_full:
      return &kAsyncQueueFull;
    case service::AsyncPublishStatus::bytes_full:
      return &kAsyncBytesFull;
  }
  return &kInternal;
}

const Refusal* refusal_of(broker::SubscribeStatus result) {
  switch (result) {
    case broker::SubscribeStatus::ok:
      return nullptr;
    case broker::SubscribeStatus::invalid_subject:
      return &kInvalidSubject;
    case broker::SubscribeStatus::subject_too_long:
      return &kSubjectTooLong;
    case broker::SubscribeStatus::invalid_group:
      return &kInvalidGroup;
    case broker::SubscribeStatus::too_many_subscriptions:
      return &kTooManySubscriptions;
    case broker::SubscribeStatus::duplicate_id:  // the service draws again until the id is new
      break;
  }
  return &kInternal;
}

const Refusal* refusal_of(broker::FetchStatus result) {
  switch (result) {
    case broker::FetchStatus::ok:
      return nullptr;
    case broker::FetchStatus::invalid_subject:
      return &kInvalidSubject;
    case broker::FetchStatus::subject_too_long:
      return &kSubjectTooLong;
    case broker::FetchStatus::bad_id:
    case broker::FetchStatus::waiting:  // the service only returns once the wait is over
      break;
  }
  return &kBadId;
}

const Refusal* refusal_of(broker::UnsubscribeStatus result) {
  switch (result) {
    case broker::UnsubscribeStatus::ok:
      return nullptr;
    case broker::UnsubscribeStatus::invalid_subject:
      return &kInvalidSubject;
    case broker::UnsubscribeStatus::subject_too_long:
      return &kSubjectTooLong;
    case broker::UnsubscribeStatus::bad_id:
      break;
  }
  return &kBadId;
}

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

Response ApiHandler::refuse(const Refusal& refusal) {
  if (refusal.limit) {
    limit_metrics_.hit(*refusal.limit);
  }
  return error_response(refusal.status, refusal.message);
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

ApiHandler::ApiHandler(service::BrokerService& service, prometheus::Registry& registry,
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
    response = refuse(kNotFound);
  } else if (request.method() == route->method ||
             (route->method == verb::get && request.method() == verb::head)) {
    response = co_await (this->*route->endpoint)(request, client);
  } else {
    response = refuse(kMethodNotAllowed);
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
    co_return refuse(kInvalidBody);
  }
  const service::Subscribed subscribed = co_await service_.subscribe(body->subject, body->group);
  if (const Refusal* refused = refusal_of(subscribed.status); refused != nullptr) {
    co_return refuse(*refused);
  }
  co_return json_response(status::ok, encode_subscribed(subscribed.id, body->subject, body->group));
}

asio::awaitable<Response> ApiHandler::publish(const Request& request, Client& /*client*/) {
  return publish_on(PublishRoute::single, request);
}

asio::awaitable<Response> ApiHandler::publish_async(const Request& request, Client& /*client*/) {
  return publish_on(PublishRoute::async, request);
}

asio::awaitable<Response> ApiHandler::publish_batch(const Request& request, Client& /*client*/) {
  return publish_on(PublishRoute::batch, request);
}

asio::awaitable<Response> ApiHandler::publish_on(PublishRoute route, const Request& request) {
  auto body = route == PublishRoute::batch ? decode_publish_batch(request.body())
                                           : decode_publish(request.body());
  if (!body) {
    co_return refuse(kInvalidBody);
  }
  // The async route hands the subject and message over; nothing reads them after.
  const Refusal* refused =
      route == PublishRoute::async
          ? refusal_of(
                service_.publish_async(std::move(body->subject), std::move(body->messages.front())))
          : refusal_of(co_await service_.publish(body->subject, body->messages));
  if (refused != nullptr) {
    co_return refuse(*refused);
  }
  co_return json_response(status::ok, route == PublishRoute::batch
                                          ? encode_batch_ok(body->messages.size())
                                          : encode_status_ok());
}

asio::awaitable<Response> ApiHandler::fetch(const Request& request, Client& client) {
  auto body = decode_fetch(request.body());
  if (!body) {
    co_return refuse(kInvalidBody);
  }
  const std::size_t max = body->max.value_or(std::numeric_limits<std::size_t>::max());
  const auto wait = std::chrono::milliseconds(
      std::min<std::uint64_t>(body->wait_ms, static_cast<std::uint64_t>(max_wait_.count())));
  service::FetchResult result;
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
  if (const Refusal* refused = refusal_of(result.status); refused != nullptr) {
    co_return refuse(*refused);
  }
  co_return json_response(status::ok,
                          encode_fetched(std::move(result.messages), body->id, body->subject));
}

asio::awaitable<Response> ApiHandler::unsubscribe(const Request& request, Client& /*client*/) {
  auto body = decode_unsubscribe(request.body());
  if (!body) {
    co_return refuse(kInvalidBody);
  }
  const auto result = co_await service_.unsubscribe(body->subject, body->id);
  if (const Refusal* refused = refusal_of(result); refused != nullptr) {
    co_return refuse(*refused);
  }
  co_return json_response(status::ok, encode_status_ok());
}

asio::awaitable<Response> ApiHandler::stats(const Request& request, Client& /*client*/) {
  const auto limit = stats_limit(request.target());
  if (!limit) {
    co_return refuse(kInvalidLimit);
  }
  const service::ServiceSnapshot snapshot = co_await service_.snapshot(*limit);
  const auto uptime =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_);
  co_return json_response(status::ok, encode_stats(snapshot.totals, snapshot.top_subjects,
                                                   static_cast<std::uint64_t>(uptime.count())));
}

asio::awaitable<Response> ApiHandler::ready(const Request& /*request*/, Client& /*client*/) {
  if (!accepting_.load(std::memory_order_relaxed)) {
    co_return refuse(kShuttingDown);
  }
  if (!service_.ready()) {
    co_return refuse(kRecovering);
  }
  co_return Response{status::no_content, 11};
}

}  // namespace gophermq::http
