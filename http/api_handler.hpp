#pragma once

#include <atomic>
#include <boost/beast/http/verb.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string_view>
#include <variant>

#include "auth/keyring.hpp"
#include "broker/subject.hpp"
#include "http/console.hpp"
#include "http/cors.hpp"
#include "http/event_stream.hpp"
#include "http/framing.hpp"
#include "http/request_handler.hpp"
#include "metrics/auth_metrics.hpp"
#include "metrics/limit_metrics.hpp"
#include "metrics/request_metrics.hpp"
#include "metrics/stream_metrics.hpp"
#include "service/broker_service.hpp"

namespace gophermq::http {

// Who made a request (API.md §11); no principal when access control is off.
struct Caller {
  std::shared_ptr<const auth::Table> table;  // keeps `principal` alive for the request
  const auth::Principal* principal = nullptr;
  auth::Digest digest{};  // of the token, which a stream's grant looks up again after a reload

  // The owner of the subscriptions the caller makes: its token's name, or nobody.
  [[nodiscard]] std::string_view owner() const noexcept {
    return principal != nullptr ? std::string_view(principal->name) : std::string_view();
  }
};

// The token of an `Authorization: Bearer TOKEN` header; nullopt when there is none, the scheme is
// another or the token is empty.
std::optional<std::string_view> bearer_token(const Request& request);

// The broker's HTTP API: decodes each request, asks the BrokerService, encodes the answer, and
// records the request's route, status and latency. It keeps no broker state of its own.
class ApiHandler final : public RequestHandler {
 public:
  // `max_wait` caps the wait_ms of a fetch; `stream_heartbeat` is how often an event stream
  // sends a comment; `cors` the origins browsers may call from; `console` serves the web console
  // at GET /. With a `keyring` (auth.file set) every /api/ request needs a token the keyring
  // holds, and refusals are counted in `auth_metrics`, which must then be given too.
  ApiHandler(service::BrokerService& service, prometheus::Registry& registry,
             metrics::LimitMetrics& limit_metrics, std::chrono::milliseconds max_wait,
             std::chrono::milliseconds stream_heartbeat = std::chrono::seconds(15),
             CorsPolicy cors = {}, bool console = false, const auth::Keyring* keyring = nullptr,
             metrics::AuthMetrics* auth_metrics = nullptr);

  boost::asio::awaitable<Response> handle(Request& request, Client& client) override;
  Response reject(const Request& request, boost::beast::http::status status,
                  std::string_view message) override;

  // From now on /ready answers 503, so load balancers stop sending work.
  void stop_accepting() noexcept { accepting_.store(false, std::memory_order_relaxed); }

 private:
  using Endpoint = boost::asio::awaitable<Response> (ApiHandler::*)(const Request&, Client&,
                                                                    const Caller&);

  struct Route {
    std::string_view path;
    boost::beast::http::verb method;
    std::string_view allow;
    Endpoint endpoint;
  };

  // The three publish routes share one path; they differ in the body they take and their answer.
  enum class PublishRoute { single, batch, async };

  static const Route* find_route(std::string_view target);
  static std::size_t route_index(const Route* route);
  static std::vector<std::string> route_labels();

  boost::asio::awaitable<Response> subscribe(const Request& request, Client& client,
                                             const Caller& caller);
  boost::asio::awaitable<Response> publish(const Request& request, Client& client,
                                           const Caller& caller);
  boost::asio::awaitable<Response> publish_async(const Request& request, Client& client,
                                                 const Caller& caller);
  boost::asio::awaitable<Response> publish_batch(const Request& request, Client& client,
                                                 const Caller& caller);
  boost::asio::awaitable<Response> fetch(const Request& request, Client& client,
                                         const Caller& caller);
  boost::asio::awaitable<Response> unsubscribe(const Request& request, Client& client,
                                               const Caller& caller);
  boost::asio::awaitable<Response> ack(const Request& request, Client& client,
                                       const Caller& caller);
  boost::asio::awaitable<Response> nack(const Request& request, Client& client,
                                        const Caller& caller);
  boost::asio::awaitable<Response> extend(const Request& request, Client& client,
                                          const Caller& caller);
  boost::asio::awaitable<Response> answer_receipts(service::ReceiptsVerb verb,
                                                   const Request& request, const Caller& caller);
  boost::asio::awaitable<Response> publish_on(PublishRoute route, const Request& request,
                                              const Caller& caller);
  boost::asio::awaitable<Response> stats(const Request& request, Client& client,
                                         const Caller& caller);
  // The operator's endpoints (docs/api.md, Admin); access control lets only `admin` reach them.
  boost::asio::awaitable<Response> admin_subscriptions(const Request& request, Client& client,
                                                       const Caller& caller);
  boost::asio::awaitable<Response> admin_unsubscribe(const Request& request, Client& client,
                                                     const Caller& caller);
  boost::asio::awaitable<Response> admin_purge(const Request& request, Client& client,
                                               const Caller& caller);
  boost::asio::awaitable<Response> ready(const Request& request, Client& client,
                                         const Caller& caller);
  boost::asio::awaitable<Response> stream(const Request& request, Client& client,
                                          const Caller& caller);
  boost::asio::awaitable<Response> ws(const Request& request, Client& client, const Caller& caller);
  // Gives the stream the right it keeps to go on after a reload (none without access control).
  void grant(const Caller& caller, EventStream& stream) const;
  // What GET /api/stream and /api/ws serve (API.md §10), with an ephemeral subscription made and
  // a Last-Event-ID applied; or the refusal.
  boost::asio::awaitable<std::variant<EventStream, Response>> open_stream(const Request& request,
                                                                          bool head_only,
                                                                          const Caller& caller);
  // The refusal of a request to /api/ws that is no valid WebSocket upgrade.
  std::optional<Response> check_upgrade(const Request& request);
  [[nodiscard]] bool origin_allowed(const Request& request) const;

  // The answer to a CORS preflight (OPTIONS) of `route`.
  Response preflight(const Request& request, const Route& route) const;
  // The CORS header lines for an answer to `request`, each ending in CRLF; empty when none.
  [[nodiscard]] std::string cors_head(const Request& request) const;
  void add_cors(const Request& request, Response& response) const;

  // A GET or HEAD of a console file; its requests are counted under one route label, "console".
  Response serve_console(const Request& request, const ConsoleAsset& asset);

  // Every refused request is answered here, and counted against its limit.
  Response refuse(const Refusal& refusal);

  // Access control at the edge (API.md §11): who `request` comes from, into `caller`, or the
  // 401 or 403 it gets. Nothing to check without a keyring or outside /api/.
  std::optional<Response> authenticate(const Request& request, Caller& caller);
  // The 403 when the caller may not publish to (or subscribe to) `subject`; nullopt when it may,
  // or when the subject is invalid: the broker refuses that as it always has.
  std::optional<Response> forbidden(const Caller& caller, broker::SubjectUse use,
                                    std::string_view subject);
  Response refuse_access(metrics::AuthFailure reason);

  static const Route kRoutes[];

  service::BrokerService& service_;
  metrics::RequestMetrics metrics_;
  metrics::LimitMetrics& limit_metrics_;
  const std::chrono::milliseconds max_wait_;
  metrics::StreamMetrics stream_metrics_;
  const std::chrono::milliseconds stream_heartbeat_;
  const CorsPolicy cors_;
  const bool console_;
  const auth::Keyring* const keyring_;
  metrics::AuthMetrics* const auth_metrics_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::atomic<bool> accepting_{true};
};

// A response with a JSON body and the contract's content type.
Response json_response(boost::beast::http::status status, std::string body);
Response error_response(boost::beast::http::status status, std::string_view message);

}  // namespace gophermq::http
