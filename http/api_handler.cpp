#include "http/api_handler.hpp"

#include <algorithm>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <charconv>
#include <cstdint>
#include <iterator>
#include <limits>
#include <optional>
#include <variant>

#include "broker/subject.hpp"
#include "http/event_stream.hpp"
#include "http/json_codec.hpp"
#include "http/websocket_session.hpp"

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
constexpr Refusal kInvalidAckOptions{status::bad_request, "invalid ack options", std::nullopt};
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
constexpr Refusal kInvalidQuery{status::bad_request, "invalid query", std::nullopt};
constexpr Refusal kInvalidLastEventId{status::bad_request, "invalid last event id", std::nullopt};
constexpr Refusal kUpgradeRequired{status::upgrade_required, "websocket upgrade required",
                                   std::nullopt};
constexpr Refusal kBadHandshake{status::bad_request, "invalid websocket handshake", std::nullopt};
constexpr Refusal kBadWebSocketVersion{status::upgrade_required, "unsupported websocket version",
                                       std::nullopt};
constexpr Refusal kOriginNotAllowed{status::forbidden, "origin not allowed", std::nullopt};
constexpr Refusal kUnauthorized{status::unauthorized, "unauthorized", std::nullopt};
constexpr Refusal kForbidden{status::forbidden, "forbidden", std::nullopt};
constexpr Refusal kInternal{status::internal_server_error, "internal server error", std::nullopt};

// How a status of the service is answered: nullptr for success, else the refusal. Every route maps
// its statuses through these tables, so a status reads the same on every route.
template <typename Status>
struct Answer {
  Status status;
  const Refusal* refusal;
};

// Every call names a subject, and refuses one the same way.
template <typename Status>
constexpr Answer<Status> kSubjectAnswers[] = {
    {Status::invalid_subject, &kInvalidSubject},
    {Status::subject_too_long, &kSubjectTooLong},
};

constexpr Answer<broker::PublishStatus> kPublishAnswers[] = {
    {broker::PublishStatus::ok, nullptr},
    {broker::PublishStatus::message_too_large, &kMessageTooLarge},
    {broker::PublishStatus::no_subscribers, &kNoSubscribers},
    {broker::PublishStatus::overflow, &kOverflow},
    {broker::PublishStatus::queue_full, &kQueueFull},
    {broker::PublishStatus::storage_full, &kStorageFull},
    {broker::PublishStatus::invalid_msg_id, &kInvalidBody},
};

constexpr Answer<service::AsyncPublishStatus> kAsyncPublishAnswers[] = {
    {service::AsyncPublishStatus::accepted, nullptr},
    {service::AsyncPublishStatus::message_too_large, &kMessageTooLarge},
    {service::AsyncPublishStatus::queue_full, &kAsyncQueueFull},
    {service::AsyncPublishStatus::bytes_full, &kAsyncBytesFull},
};

// duplicate_id is not here: the service draws again until the id is new.
constexpr Answer<broker::SubscribeStatus> kSubscribeAnswers[] = {
    {broker::SubscribeStatus::ok, nullptr},
    {broker::SubscribeStatus::invalid_group, &kInvalidGroup},
    {broker::SubscribeStatus::too_many_subscriptions, &kTooManySubscriptions},
    {broker::SubscribeStatus::invalid_ack_options, &kInvalidAckOptions},
    {broker::SubscribeStatus::storage_full, &kStorageFull},
};

// not_ack_mode: a plain subscription has no deliveries, so the receipts are stale.
constexpr Answer<broker::AckStatus> kReceiptsAnswers[] = {
    {broker::AckStatus::ok, nullptr},
    {broker::AckStatus::not_ack_mode, nullptr},
    {broker::AckStatus::bad_id, &kBadId},
    {broker::AckStatus::storage_full, &kStorageFull},
};

// waiting is not here: the service only returns once the wait is over.
constexpr Answer<broker::FetchStatus> kFetchAnswers[] = {
    {broker::FetchStatus::ok, nullptr},
    {broker::FetchStatus::bad_id, &kBadId},
};

constexpr Answer<broker::UnsubscribeStatus> kUnsubscribeAnswers[] = {
    {broker::UnsubscribeStatus::ok, nullptr},
    {broker::UnsubscribeStatus::bad_id, &kBadId},
    {broker::UnsubscribeStatus::storage_full, &kStorageFull},
};

// The call's own table first, then the subject refusals; a status neither lists is a bug, answered
// as one rather than as a success.
template <typename Status, std::size_t Size>
const Refusal* refusal_in(const Answer<Status> (&answers)[Size], Status status) {
  if (const auto* own = std::ranges::find(answers, status, &Answer<Status>::status);
      own != std::end(answers)) {
    return own->refusal;
  }
  const auto& subject = kSubjectAnswers<Status>;
  const auto* found = std::ranges::find(subject, status, &Answer<Status>::status);
  return found == std::end(subject) ? &kInternal : found->refusal;
}

constexpr std::size_t kDefaultStatsRows = 100;
constexpr std::size_t kMaxStatsRows = 1000;
// GET /api/admin/subscriptions: an answer never grows without bound.
constexpr std::size_t kDefaultAdminRows = 1000;
constexpr std::size_t kMaxAdminRows = 10000;

// `limit` from the query string of a GET: 0..`most`, `fallback` when absent.
std::optional<std::size_t> query_limit(std::string_view target, std::size_t fallback,
                                       std::size_t most) {
  const auto query_start = target.find('?');
  if (query_start == std::string_view::npos) {
    return fallback;
  }
  std::string_view query = target.substr(query_start + 1);
  std::optional<std::size_t> limit = fallback;
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
        value > most) {
      return std::nullopt;
    }
    limit = value;
  }
  return limit;
}

// `limit` of GET /api/stats: 0..kMaxStatsRows, default kDefaultStatsRows.
std::optional<std::size_t> stats_limit(std::string_view target) {
  return query_limit(target, kDefaultStatsRows, kMaxStatsRows);
}

constexpr Answer<broker::AdminStatus> kAdminAnswers[] = {
    {broker::AdminStatus::ok, nullptr},
    {broker::AdminStatus::bad_id, &kBadId},
    {broker::AdminStatus::storage_full, &kStorageFull},
};

}  // namespace

std::optional<std::string_view> bearer_token(const Request& request) {
  const auto header = request.find(bhttp::field::authorization);
  if (header == request.end()) {
    return std::nullopt;
  }
  std::string_view value = header->value();
  constexpr std::string_view kScheme = "bearer";
  if (value.size() <= kScheme.size() ||
      !boost::beast::iequals(value.substr(0, kScheme.size()), kScheme) ||
      (value[kScheme.size()] != ' ' && value[kScheme.size()] != '\t')) {
    return std::nullopt;
  }
  value.remove_prefix(kScheme.size());
  const std::size_t first = value.find_first_not_of(" \t");
  if (first == std::string_view::npos) {
    return std::nullopt;
  }
  value.remove_prefix(first);
  return value.substr(0, value.find_last_not_of(" \t") + 1);
}

Response ApiHandler::refuse_access(metrics::AuthFailure reason) {
  auth_metrics_->failed(reason);
  if (reason == metrics::AuthFailure::forbidden) {
    return refuse(kForbidden);
  }
  Response response = refuse(kUnauthorized);
  response.set(bhttp::field::www_authenticate, "Bearer");
  return response;
}

std::optional<Response> ApiHandler::authenticate(const Request& request, Caller& caller) {
  const std::string_view path = path_of(request.target());
  if (keyring_ == nullptr || !path.starts_with("/api/")) {
    return std::nullopt;
  }
  std::optional<std::string_view> token = bearer_token(request);
  // EventSource and the browser's WebSocket cannot set a header; elsewhere a token in the query
  // string is no credential (it would end up in proxies' and browsers' histories).
  std::string from_query;
  if (!token && (path == "/api/stream" || path == "/api/ws")) {
    if (auto query = parse_stream_query(request.target());
        query && query->access_token && !query->access_token->empty()) {
      from_query = std::move(*query->access_token);
      token = from_query;
    }
  }
  if (!token) {
    return refuse_access(metrics::AuthFailure::missing);
  }
  caller.table = keyring_->current();
  caller.digest = auth::sha256(*token);
  caller.principal = caller.table->find_digest(caller.digest);
  if (caller.principal == nullptr) {
    return refuse_access(metrics::AuthFailure::unknown);
  }
  // A prefix, so every route under /api/admin/ needs admin, whoever adds it.
  const bool admin_route =
      path == "/api/stats" || path == "/api/admin" || path.starts_with("/api/admin/");
  if (admin_route && !caller.principal->admin) {
    return refuse_access(metrics::AuthFailure::forbidden);
  }
  return std::nullopt;
}

std::optional<Response> ApiHandler::forbidden(const Caller& caller, broker::SubjectUse use,
                                              std::string_view subject) {
  if (caller.principal == nullptr) {
    return std::nullopt;
  }
  const std::size_t max = service_.limits().max_subject_length;
  if (subject.size() > max || !broker::is_valid_subject(subject, use, max)) {
    return std::nullopt;
  }
  const bool allowed = use == broker::SubjectUse::publish
                           ? caller.principal->may_publish(subject)
                           : caller.principal->may_subscribe(subject);
  if (allowed) {
    return std::nullopt;
  }
  return refuse_access(metrics::AuthFailure::forbidden);
}

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
    {"/api/ack", verb::post, "POST", &ApiHandler::ack},
    {"/api/nack", verb::post, "POST", &ApiHandler::nack},
    {"/api/extend", verb::post, "POST", &ApiHandler::extend},
    {"/api/stats", verb::get, "GET, HEAD", &ApiHandler::stats},
    {"/ready", verb::get, "GET, HEAD", &ApiHandler::ready},
    {"/api/stream", verb::get, "GET, HEAD", &ApiHandler::stream},
    {"/api/ws", verb::get, "GET", &ApiHandler::ws},
    {"/api/admin/subscriptions", verb::get, "GET, HEAD", &ApiHandler::admin_subscriptions},
    {"/api/admin/unsubscribe", verb::post, "POST", &ApiHandler::admin_unsubscribe},
    {"/api/admin/purge", verb::post, "POST", &ApiHandler::admin_purge},
};

std::vector<std::string> ApiHandler::route_labels() {
  std::vector<std::string> labels;
  for (const Route& route : kRoutes) {
    labels.emplace_back(route.path);
  }
  labels.emplace_back("unmatched");  // the label of every unknown path, so the set stays bounded
  labels.emplace_back("console");
  return labels;
}

ApiHandler::ApiHandler(service::BrokerService& service, prometheus::Registry& registry,
                       metrics::LimitMetrics& limit_metrics, std::chrono::milliseconds max_wait,
                       std::chrono::milliseconds stream_heartbeat, CorsPolicy cors, bool console,
                       const auth::Keyring* keyring, metrics::AuthMetrics* auth_metrics)
    : service_(service),
      metrics_(registry, route_labels()),
      limit_metrics_(limit_metrics),
      max_wait_(max_wait),
      stream_metrics_(registry, limit_metrics),
      stream_heartbeat_(stream_heartbeat),
      cors_(std::move(cors)),
      console_(console),
      keyring_(keyring),
      auth_metrics_(auth_metrics) {}

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
  // The OpenAPI description is embedded with the console's files, and served without it too.
  if (route == nullptr && (console_ || path_of(request.target()) == "/openapi.yaml")) {
    if (const ConsoleAsset* asset = find_console_asset(path_of(request.target()));
        asset != nullptr) {
      Response response = serve_console(request, *asset);
      // The label after "unmatched" in route_labels().
      metrics_.record(std::size(kRoutes) + 1, response.result_int(),
                      std::chrono::steady_clock::now() - started);
      co_return response;
    }
  }
  Response response;
  // A browser sends a CORS preflight without credentials; it answers nothing but the headers.
  const bool preflight_request =
      route != nullptr && request.method() == verb::options && cors_.enabled();
  Caller caller;
  if (std::optional<Response> refused =
          preflight_request ? std::nullopt : authenticate(request, caller)) {
    response = std::move(*refused);
  } else if (route == nullptr) {
    response = refuse(kNotFound);
  } else if (request.method() == route->method ||
             (route->method == verb::get && request.method() == verb::head)) {
    response = co_await (this->*route->endpoint)(request, client, caller);
  } else if (request.method() == verb::options && cors_.enabled()) {
    response = preflight(request, *route);
  } else {
    response = refuse(kMethodNotAllowed);
    response.set(bhttp::field::allow, route->allow);
  }
  // A stream took its connection over and wrote its own head, CORS headers included.
  const bool taken_over = response.result_int() == static_cast<unsigned>(kTakenOver);
  if (!taken_over) {
    add_cors(request, response);
  }
  metrics_.record(route_index(route), taken_over ? 200U : response.result_int(),
                  std::chrono::steady_clock::now() - started);
  co_return response;
}

Response ApiHandler::serve_console(const Request& request, const ConsoleAsset& asset) {
  if (request.method() != verb::get && request.method() != verb::head) {
    Response response = refuse(kMethodNotAllowed);
    response.set(bhttp::field::allow, "GET, HEAD");
    return response;
  }
  return console_response(request, asset);
}

Response ApiHandler::reject(const Request& request, status code, std::string_view message) {
  metrics_.record(route_index(find_route(request.target())), static_cast<unsigned>(code),
                  std::chrono::steady_clock::duration::zero());
  // A browser can read the refusal (413 and the like) only with its CORS headers.
  Response response = error_response(code, message);
  add_cors(request, response);
  return response;
}

asio::awaitable<Response> ApiHandler::subscribe(const Request& request, Client& /*client*/,
                                                const Caller& caller) {
  auto body = decode_subscribe(request.body());
  if (!body) {
    co_return refuse(kInvalidBody);
  }
  // An option without "ack": true would be ignored silently; §9 refuses it instead. So is a value
  // given that only stands for "not set" (max_deliveries 0, an empty dead_letter): their ranges
  // start above it.
  if ((body->given.any() && !body->ack.ack) ||
      (body->given.max_deliveries && body->ack.max_deliveries == 0) ||
      (body->given.dead_letter && body->ack.dead_letter.empty())) {
    co_return refuse(kInvalidAckOptions);
  }
  if (auto refused = forbidden(caller, broker::SubjectUse::subscribe, body->subject)) {
    co_return std::move(*refused);
  }
  // The broker publishes dead letters on the subscriber's behalf: naming a subject takes the
  // right to publish to it, or any token could write into any subject through nacks.
  if (body->given.dead_letter) {
    if (auto refused = forbidden(caller, broker::SubjectUse::publish, body->ack.dead_letter)) {
      co_return std::move(*refused);
    }
  }
  const service::Subscribed subscribed =
      co_await service_.subscribe(body->subject, body->group, body->ack, caller.owner());
  if (const Refusal* refused = refusal_in(kSubscribeAnswers, subscribed.status);
      refused != nullptr) {
    co_return refuse(*refused);
  }
  co_return json_response(
      status::ok, body->ack.ack ? encode_subscribed(subscribed.id, body->subject, body->group,
                                                    body->ack, body->given)
                                : encode_subscribed(subscribed.id, body->subject, body->group));
}

asio::awaitable<Response> ApiHandler::publish(const Request& request, Client& /*client*/,
                                              const Caller& caller) {
  return publish_on(PublishRoute::single, request, caller);
}

asio::awaitable<Response> ApiHandler::publish_async(const Request& request, Client& /*client*/,
                                                    const Caller& caller) {
  return publish_on(PublishRoute::async, request, caller);
}

asio::awaitable<Response> ApiHandler::publish_batch(const Request& request, Client& /*client*/,
                                                    const Caller& caller) {
  return publish_on(PublishRoute::batch, request, caller);
}

asio::awaitable<Response> ApiHandler::publish_on(PublishRoute route, const Request& request,
                                                 const Caller& caller) {
  auto body = route == PublishRoute::batch ? decode_publish_batch(request.body())
                                           : decode_publish(request.body());
  if (!body) {
    co_return refuse(kInvalidBody);
  }
  // A batch names one subject for all its messages: permitted, all of it may be stored.
  if (auto refused = forbidden(caller, broker::SubjectUse::publish, body->subject)) {
    co_return std::move(*refused);
  }
  const bool idempotent = !body->msg_ids.empty();
  if (route == PublishRoute::async) {
    // The async route hands the subject and message over; nothing reads them after. Its answer
    // comes before the broker sees the msg_id, so it can only say the publish was not refused.
    std::string msg_id = idempotent ? std::move(body->msg_ids.front()) : std::string();
    if (const Refusal* refused = refusal_in(
            kAsyncPublishAnswers,
            service_.publish_async(std::move(body->subject), std::move(body->messages.front()),
                                   std::move(msg_id)));
        refused != nullptr) {
      co_return refuse(*refused);
    }
    co_return json_response(status::ok, idempotent ? encode_published(false) : encode_status_ok());
  }
  if (!idempotent) {
    if (const Refusal* refused =
            refusal_in(kPublishAnswers, co_await service_.publish(body->subject, body->messages));
        refused != nullptr) {
      co_return refuse(*refused);
    }
    co_return json_response(status::ok, route == PublishRoute::batch
                                            ? encode_batch_ok(body->messages.size())
                                            : encode_status_ok());
  }
  const broker::PublishResult result =
      co_await service_.publish(body->subject, body->messages, body->msg_ids);
  if (const Refusal* refused = refusal_in(kPublishAnswers, result.status); refused != nullptr) {
    co_return refuse(*refused);
  }
  co_return json_response(
      status::ok,
      route == PublishRoute::batch
          ? encode_batch_published(body->messages.size() - result.duplicates, result.duplicates)
          : encode_published(result.duplicates > 0));
}

asio::awaitable<Response> ApiHandler::fetch(const Request& request, Client& client,
                                            const Caller& caller) {
  auto body = decode_fetch(request.body());
  if (!body) {
    co_return refuse(kInvalidBody);
  }
  const std::size_t max = body->max.value_or(std::numeric_limits<std::size_t>::max());
  const auto wait = std::chrono::milliseconds(
      std::min<std::uint64_t>(body->wait_ms, static_cast<std::uint64_t>(max_wait_.count())));
  service::FetchResult result;
  if (wait.count() == 0) {
    result =
        co_await service_.fetch(body->subject, body->id, max, wait, body->meta, caller.owner());
  } else {
    // Racing the client's hangup ends a wait nobody will read, and leaves its messages queued.
    auto outcome =
        co_await (service_.fetch(body->subject, body->id, max, wait, body->meta, caller.owner()) ||
                  client.hangup());
    if (outcome.index() == 1) {
      co_return Response{kClientGone, 11};
    }
    result = std::move(std::get<0>(outcome));
  }
  if (const Refusal* refused = refusal_in(kFetchAnswers, result.status); refused != nullptr) {
    co_return refuse(*refused);
  }
  if (result.ack || body->meta) {
    co_return json_response(status::ok, encode_deliveries(std::move(result.deliveries), result.ack,
                                                          body->id, body->subject));
  }
  co_return json_response(status::ok,
                          encode_fetched(std::move(result.messages), body->id, body->subject));
}

asio::awaitable<Response> ApiHandler::ack(const Request& request, Client& /*client*/,
                                          const Caller& caller) {
  return answer_receipts(service::ReceiptsVerb::ack, request, caller);
}

asio::awaitable<Response> ApiHandler::nack(const Request& request, Client& /*client*/,
                                           const Caller& caller) {
  return answer_receipts(service::ReceiptsVerb::nack, request, caller);
}

asio::awaitable<Response> ApiHandler::extend(const Request& request, Client& /*client*/,
                                             const Caller& caller) {
  return answer_receipts(service::ReceiptsVerb::extend, request, caller);
}

asio::awaitable<Response> ApiHandler::answer_receipts(service::ReceiptsVerb verb,
                                                      const Request& request,
                                                      const Caller& caller) {
  const auto body = decode_receipts(request.body(), verb == service::ReceiptsVerb::nack);
  if (!body) {
    co_return refuse(kInvalidBody);
  }
  const service::ReceiptsResult result = co_await service_.answer_receipts(
      verb, body->subject, body->id, body->receipts,
      std::chrono::milliseconds(static_cast<std::int64_t>(
          std::min<std::uint64_t>(body->delay_ms, std::numeric_limits<std::int64_t>::max()))),
      caller.owner());
  if (const Refusal* refused = refusal_in(kReceiptsAnswers, result.status); refused != nullptr) {
    co_return refuse(*refused);
  }
  static constexpr std::string_view kVerbs[] = {"acked", "nacked", "extended"};
  co_return json_response(status::ok, encode_receipts_answer(kVerbs[static_cast<std::size_t>(verb)],
                                                             result.applied, result.stale));
}

asio::awaitable<Response> ApiHandler::unsubscribe(const Request& request, Client& /*client*/,
                                                  const Caller& caller) {
  auto body = decode_unsubscribe(request.body());
  if (!body) {
    co_return refuse(kInvalidBody);
  }
  const auto result = co_await service_.unsubscribe(body->subject, body->id, caller.owner());
  if (const Refusal* refused = refusal_in(kUnsubscribeAnswers, result); refused != nullptr) {
    co_return refuse(*refused);
  }
  co_return json_response(status::ok, encode_status_ok());
}

asio::awaitable<Response> ApiHandler::admin_subscriptions(const Request& request,
                                                          Client& /*client*/,
                                                          const Caller& /*caller*/) {
  const auto query = parse_stream_query(request.target());
  if (!query) {
    co_return refuse(kInvalidQuery);
  }
  const auto limit = query_limit(request.target(), kDefaultAdminRows, kMaxAdminRows);
  if (!limit) {
    co_return refuse(kInvalidLimit);
  }
  const broker::SubscriptionList list = co_await service_.list_subscriptions(
      query->subject.value_or(std::string(broker::kTrailingWildcard)), *limit);
  if (const Refusal* refused = refusal_in(kAdminAnswers, list.status); refused != nullptr) {
    co_return refuse(*refused);
  }
  co_return json_response(status::ok, encode_subscription_list(list));
}

asio::awaitable<Response> ApiHandler::admin_unsubscribe(const Request& request, Client& /*client*/,
                                                        const Caller& /*caller*/) {
  const auto body = decode_admin(request.body());
  if (!body) {
    co_return refuse(kInvalidBody);
  }
  // A missing id names no subscription, as on /api/unsubscribe.
  const auto result = co_await service_.remove_subscription(body->id.value_or(std::string()));
  if (const Refusal* refused = refusal_in(kUnsubscribeAnswers, result); refused != nullptr) {
    co_return refuse(*refused);
  }
  co_return json_response(status::ok, encode_status_ok());
}

asio::awaitable<Response> ApiHandler::admin_purge(const Request& request, Client& /*client*/,
                                                  const Caller& /*caller*/) {
  const auto body = decode_admin(request.body());
  // One purge names one target: a subject pattern or a subscription.
  if (!body || (body->subject && body->id)) {
    co_return refuse(kInvalidBody);
  }
  const broker::PurgeResult result =
      body->id ? co_await service_.purge_subscription(*body->id)
               : co_await service_.purge(body->subject.value_or(std::string()));
  if (const Refusal* refused = refusal_in(kAdminAnswers, result.status); refused != nullptr) {
    co_return refuse(*refused);
  }
  co_return json_response(status::ok, encode_purged(result.purged));
}

asio::awaitable<Response> ApiHandler::stats(const Request& request, Client& /*client*/,
                                            const Caller& /*caller*/) {
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

asio::awaitable<Response> ApiHandler::ready(const Request& /*request*/, Client& /*client*/,
                                            const Caller& /*caller*/) {
  if (!accepting_.load(std::memory_order_relaxed)) {
    co_return refuse(kShuttingDown);
  }
  if (!service_.ready()) {
    co_return refuse(kRecovering);
  }
  co_return Response{status::no_content, 11};
}

Response ApiHandler::preflight(const Request& request, const Route& route) const {
  Response response{status::no_content, 11};
  response.set(bhttp::field::allow, std::string(route.allow) + ", OPTIONS");
  if (cors_.allow_origin(request[bhttp::field::origin])) {
    response.set(bhttp::field::access_control_allow_methods, route.allow);
    response.set(bhttp::field::access_control_allow_headers,
                 "Content-Type, Last-Event-ID, Authorization");
    // Two hours, the most Chromium caches a preflight for; Firefox takes a day.
    response.set(bhttp::field::access_control_max_age, "7200");
  }
  return response;
}

std::string ApiHandler::cors_head(const Request& request) const {
  if (!cors_.enabled()) {
    return {};
  }
  // The answer depends on the Origin sent, whether it is allowed or not: caches must know.
  std::string head = "Vary: Origin\r\n";
  if (const auto allowed = cors_.allow_origin(request[bhttp::field::origin])) {
    head += "Access-Control-Allow-Origin: " + *allowed + "\r\n";
  }
  return head;
}

void ApiHandler::add_cors(const Request& request, Response& response) const {
  if (!cors_.enabled()) {
    return;
  }
  response.set(bhttp::field::vary, "Origin");
  if (const auto allowed = cors_.allow_origin(request[bhttp::field::origin])) {
    response.set(bhttp::field::access_control_allow_origin, *allowed);
  }
}

void ApiHandler::grant(const Caller& caller, EventStream& stream) const {
  if (caller.principal != nullptr) {
    stream.access = std::make_shared<auth::StreamGrant>(*keyring_, caller.table, caller.digest,
                                                        caller.principal->name, stream.subject);
  }
}

// GCC 12 takes the frame's delete for a mismatch with its new once the frame holds a shared_ptr
// (GCC bug 109224, a false positive fixed in GCC 14): the frame is Asio's, allocated and freed by
// its awaitable_frame_base.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
asio::awaitable<std::variant<EventStream, Response>> ApiHandler::open_stream(const Request& request,
                                                                             bool head_only,
                                                                             const Caller& caller) {
  const auto query = parse_stream_query(request.target());
  if (!query) {
    co_return refuse(kInvalidQuery);
  }
  // EventSource sends the header when it reconnects; a client that cannot set headers uses the
  // parameter.
  std::optional<std::uint64_t> last_event_id;
  const auto header = request.find("Last-Event-ID");
  if (header != request.end() || query->last_event_id) {
    last_event_id =
        parse_event_id(header != request.end() ? std::string_view(header->value())
                                               : std::string_view(*query->last_event_id));
    if (!last_event_id) {
      co_return refuse(kInvalidLastEventId);
    }
  }
  if (!accepting_.load(std::memory_order_relaxed)) {
    co_return refuse(kShuttingDown);
  }
  EventStream stream;
  stream.heartbeat = stream_heartbeat_;
  stream.extra_head = cors_head(request);
  const std::size_t max_subject = service_.limits().max_subject_length;
  if (query->subject && query->subject->size() > max_subject) {
    co_return refuse(kSubjectTooLong);
  }
  if (query->subject &&
      !broker::is_valid_subject(*query->subject, broker::SubjectUse::subscribe, max_subject)) {
    co_return refuse(kInvalidSubject);
  }
  if (query->id) {
    // An existing subscription: its own subject when the query names none.
    auto subject = co_await service_.subject_of(*query->id, caller.owner());
    if (!subject || (query->subject && *query->subject != *subject)) {
      co_return refuse(kBadId);
    }
    stream.subject = std::move(*subject);
    stream.id = *query->id;
    if (last_event_id && !head_only) {
      const broker::ResumeResult resumed =
          co_await service_.resume(stream.subject, stream.id, *last_event_id, caller.owner());
      if (resumed.status == broker::AckStatus::bad_id) {
        co_return refuse(kBadId);
      }
    }
  } else {
    if (!query->subject) {
      co_return refuse(kInvalidSubject);  // §2: a missing subject is an invalid one
    }
    if (auto refused = forbidden(caller, broker::SubjectUse::subscribe, *query->subject)) {
      co_return std::move(*refused);
    }
    if (!head_only) {
      const service::Subscribed subscribed =
          co_await service_.subscribe_ephemeral(*query->subject, query->group, caller.owner());
      if (const Refusal* refused = refusal_in(kSubscribeAnswers, subscribed.status);
          refused != nullptr) {
        co_return refuse(*refused);
      }
      stream.id = subscribed.id;
    }
    stream.subject = *query->subject;
    stream.group = query->group;
    stream.ephemeral = true;
  }
  grant(caller, stream);
  co_return std::move(stream);
}
#pragma GCC diagnostic pop

asio::awaitable<Response> ApiHandler::stream(const Request& request, Client& client,
                                             const Caller& caller) {
  const bool head_only = request.method() == verb::head;
  auto opened = co_await open_stream(request, head_only, caller);
  if (auto* refused = std::get_if<Response>(&opened)) {
    co_return std::move(*refused);
  }
  if (head_only) {
    Response response{status::ok, 11};
    response.set(bhttp::field::content_type, "text/event-stream");
    response.set(bhttp::field::cache_control, "no-cache");
    response.set("X-Accel-Buffering", "no");
    co_return response;
  }
  const asio::any_io_executor executor = co_await asio::this_coro::executor;
  co_return client.take_over(event_stream_session(
      service_, stream_metrics_, std::move(std::get<EventStream>(opened)), executor));
}

asio::awaitable<Response> ApiHandler::ws(const Request& request, Client& client,
                                         const Caller& caller) {
  if (const std::optional<Response> refused = check_upgrade(request)) {
    co_return *refused;
  }
  if (!origin_allowed(request)) {
    co_return refuse(kOriginNotAllowed);
  }
  auto opened = co_await open_stream(request, /*head_only=*/false, caller);
  if (auto* refused = std::get_if<Response>(&opened)) {
    co_return std::move(*refused);
  }
  const asio::any_io_executor executor = co_await asio::this_coro::executor;
  co_return client.take_over_websocket(websocket_session(
      service_, stream_metrics_, std::move(std::get<EventStream>(opened)), executor));
}

// What Beast's accept checks, answered here with the API's errors before any subscription is made,
// so the server's accept of a checked request cannot fail on its content.
std::optional<Response> ApiHandler::check_upgrade(const Request& request) {
  const bool upgrade = request.version() >= 11 && request.method() == verb::get &&
                       bhttp::token_list(request[bhttp::field::connection]).exists("upgrade") &&
                       bhttp::token_list(request[bhttp::field::upgrade]).exists("websocket");
  if (!upgrade) {
    Response response = refuse(kUpgradeRequired);
    response.set(bhttp::field::upgrade, "websocket");
    response.set(bhttp::field::connection, "Upgrade");
    return response;
  }
  // A key is 16 random bytes in base64.
  if (request[bhttp::field::sec_websocket_key].size() != 24 ||
      request.find(bhttp::field::sec_websocket_version) == request.end()) {
    return refuse(kBadHandshake);
  }
  if (request[bhttp::field::sec_websocket_version] != "13") {
    Response response = refuse(kBadWebSocketVersion);
    response.set(bhttp::field::sec_websocket_version, "13");
    return response;
  }
  return std::nullopt;
}

// Browsers send Origin with every upgrade and apply no CORS to WebSockets, so the broker decides:
// an origin http.cors-origins allows, the broker's own (the page it served), or no Origin at all
// (a client that is no browser).
bool ApiHandler::origin_allowed(const Request& request) const {
  const auto origin = request.find(bhttp::field::origin);
  if (origin == request.end() || cors_.allow_origin(origin->value())) {
    return true;
  }
  const std::string_view host = request[bhttp::field::host];
  const std::string_view value = origin->value();
  for (const std::string_view scheme : {"http://", "https://"}) {
    if (!host.empty() && value.size() == scheme.size() + host.size() && value.starts_with(scheme) &&
        boost::beast::iequals(value.substr(scheme.size()), host)) {
      return true;
    }
  }
  return false;
}

}  // namespace gophermq::http
