#pragma once

#include <algorithm>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/core/error.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "auth/keyring.hpp"
#include "http/request_handler.hpp"
#include "metrics/stream_metrics.hpp"
#include "service/broker_service.hpp"

namespace gophermq::http {

// The parameters of GET /api/stream and /api/ws, percent-decoded; absent ones are nullopt.
struct StreamQuery {
  std::optional<std::string> subject;
  std::optional<std::string> id;
  std::optional<std::string> group;
  std::optional<std::string> last_event_id;
  // The credential of a stream opened by a browser, which cannot send a header (API.md §11).
  std::optional<std::string> access_token;
};

// nullopt when the query is malformed: a bad percent escape, or a known parameter given twice.
// Unknown parameters are ignored.
std::optional<StreamQuery> parse_stream_query(std::string_view target);

// A Last-Event-ID as a stream writes it (a seq in decimal); nullopt for anything else.
std::optional<std::uint64_t> parse_event_id(std::string_view text);

// Hands a push session its subscription's messages by pulling: one bounded batch per call, and
// the caller calls again only once it has written the last one. So a client that reads slowly
// leaves its messages queued in the broker, where they count toward the queue limits, and a
// stalled one holds at most one batch here. Shared by every kind of push session.
class StreamPuller {
 public:
  // Large enough that a busy stream writes in few syscalls, small enough that the batch a
  // stalled reader holds in memory (at most this many messages of max-message-bytes) stays far
  // below what the queue limits allow per subscriber.
  static constexpr std::size_t kBatchMessages = 64;

  StreamPuller(service::BrokerService& service, std::string subject, std::string id)
      : service_(service), subject_(std::move(subject)), id_(std::move(id)) {}

  // The next batch, waiting up to `wait` (at least 1 ms) for one: empty deliveries mean none came
  // in time, or the wait was ended early; a status other than ok that the subscription is gone.
  boost::asio::awaitable<service::FetchResult> next(std::chrono::milliseconds wait) {
    return service_.fetch(subject_, id_, kBatchMessages,
                          std::max(wait, std::chrono::milliseconds(1)), /*meta=*/true);
  }

 private:
  service::BrokerService& service_;
  std::string subject_;
  std::string id_;
};

// What an event stream serves, once the handler has checked the request and, for an ephemeral
// stream, made its subscription.
struct EventStream {
  std::string subject;
  std::string id;
  std::optional<std::string> group;
  bool ephemeral = false;  // subscribed for this stream: removed when it ends
  std::string extra_head;  // header lines for the answer's head (CORS), each ending in CRLF
  std::chrono::milliseconds heartbeat{15'000};
  std::shared_ptr<auth::StreamGrant> access;  // null without access control
};

// The session that answers GET /api/stream (API.md §10): the head, an `event: subscribed` for an
// ephemeral stream, then an event per message and a `: ping` comment every heartbeat interval. It
// ends when the client goes, its write-timeout passes, the subscription is removed or the server
// shuts down; an ephemeral subscription is removed then, also when the session never got to run.
// `executor` runs that removal in the last case.
Session event_stream_session(service::BrokerService& service, metrics::StreamMetrics& metrics,
                             EventStream stream, boost::asio::any_io_executor executor);

// Removes a push session's ephemeral subscription when it ends: by remove() when the session ran,
// otherwise (it never got to run) from the destructor, on `executor`. Nothing for a subscription
// the session did not make.
class EphemeralSubscription {
 public:
  EphemeralSubscription(service::BrokerService& service, const EventStream& stream,
                        boost::asio::any_io_executor executor);
  ~EphemeralSubscription();
  EphemeralSubscription(const EphemeralSubscription&) = delete;
  EphemeralSubscription& operator=(const EphemeralSubscription&) = delete;

  // Call with the cancellation state reset: the shutdown's cancellation is for the stream, not
  // for tidying up after it.
  boost::asio::awaitable<void> remove();

 private:
  service::BrokerService& service_;
  std::string subject_;
  std::string id_;
  boost::asio::any_io_executor executor_;
  bool pending_;
};

// What every push session (event stream, WebSocket) holds beyond its connection, and how it
// runs: counted as an open stream, ended as when its client goes when the shutdown cancels it,
// and its ephemeral subscription removed once it ends.
class PushStream {
 public:
  PushStream(service::BrokerService& service, metrics::StreamMetrics& metrics, EventStream stream,
             boost::asio::any_io_executor executor)
      : metrics_(metrics),
        stream_(std::move(stream)),
        ephemeral_(service, stream_, std::move(executor)),
        puller_(service, stream_.subject, stream_.id) {}
  PushStream(const PushStream&) = delete;
  PushStream& operator=(const PushStream&) = delete;

 protected:
  ~PushStream() = default;

  // Runs `session`: the session's reads and writes, raced.
  template <typename Result>
  boost::asio::awaitable<void> serve(boost::asio::awaitable<Result> session) {
    metrics_.opened();
    try {
      co_await std::move(session);
    } catch (const std::exception&) {
      // Cancelled by the shutdown: the stream ends as when its client goes.
    }
    metrics_.closed();
    // The shutdown's cancellation is for the stream, not for tidying up after it.
    co_await boost::asio::this_coro::reset_cancellation_state();
    co_await ephemeral_.remove();
  }

  // With access control, a pull waits at most this long, and the stream's grant is checked
  // before each: a reload that removes or narrows its token ends the stream within about this
  // long, and no pull starts after it noticed.
  static constexpr std::chrono::milliseconds kAccessCheck{1000};

  // Whether the stream's token still may read it; always without access control.
  [[nodiscard]] bool still_allowed() const {
    return !stream_.access || stream_.access->still_allowed();
  }
  // How long the next pull may wait, `wanted` at most.
  [[nodiscard]] std::chrono::milliseconds pull_wait(std::chrono::milliseconds wanted) const {
    return stream_.access ? std::min(wanted, kAccessCheck) : wanted;
  }

  // Awaits a write to the client, counting a slow-reader wait once it has waited long for the
  // client to read (while it still waits, so a reader that stalled for good shows before its
  // write-timeout ends it) and a write-timeout if it ended by one. False when it failed.
  boost::asio::awaitable<bool> written(boost::asio::awaitable<boost::beast::error_code> write);

  metrics::StreamMetrics& metrics_;
  EventStream stream_;
  EphemeralSubscription ephemeral_;
  StreamPuller puller_;
};

// The head of an event stream's answer, `extra_head` (header lines) included.
std::string event_stream_head(std::string_view extra_head);

}  // namespace gophermq::http
