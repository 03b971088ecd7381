#include "http/event_stream.hpp"

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <charconv>
#include <exception>
#include <memory>
#include <utility>
#include <variant>

#include "broker/clock.hpp"
#include "http/json_codec.hpp"

namespace gophermq::http {
namespace asio = boost::asio;
using boost::asio::experimental::awaitable_operators::operator||;

namespace {

// A write that takes longer than this waited for the client to read what was sent before: a
// write into socket buffers with room takes microseconds, even for a whole batch.
constexpr auto kSlowWrite = std::chrono::milliseconds(50);

// Percent-decodes a query value; '+' stands for a space, as HTML forms send it.
std::optional<std::string> decode_component(std::string_view text) {
  std::string decoded;
  decoded.reserve(text.size());
  for (std::size_t at = 0; at < text.size(); ++at) {
    if (text[at] == '+') {
      decoded.push_back(' ');
    } else if (text[at] != '%') {
      decoded.push_back(text[at]);
    } else {
      if (at + 2 >= text.size()) {
        return std::nullopt;
      }
      unsigned char byte = 0;
      const char* first = text.data() + at + 1;
      const auto [end, error] = std::from_chars(first, first + 2, byte, 16);
      if (error != std::errc() || end != first + 2) {
        return std::nullopt;
      }
      decoded.push_back(static_cast<char>(byte));
      at += 2;
    }
  }
  return decoded;
}

// A stream's session, shared by the copies of the Session function; its destructor removes an
// ephemeral subscription the session did not get to remove.
class StreamState final : public PushStream {
 public:
  using PushStream::PushStream;

  asio::awaitable<void> run(Channel& channel) {
    return serve(push(channel) || watch_client(channel));
  }

 private:
  asio::awaitable<void> push(Channel& channel) {
    std::string head = event_stream_head(stream_.extra_head);
    if (stream_.ephemeral) {
      head += "event: subscribed\ndata: ";
      head += encode_subscribed(stream_.id, stream_.subject, stream_.group);
      head += '\n';
    }
    if (!co_await write(channel, head)) {
      co_return;
    }
    // A ping every heartbeat, busy or not: proxies and clients see the stream alive either way.
    // Saturating: a heartbeat of years must not wrap the clock.
    auto next_ping = broker::saturating_add(std::chrono::steady_clock::now(), stream_.heartbeat);
    while (true) {
      if (!still_allowed()) {
        co_return;  // the token was removed or narrowed: the stream ends, its messages stay
      }
      const auto until_ping = std::chrono::ceil<std::chrono::milliseconds>(
          next_ping - std::chrono::steady_clock::now());
      service::FetchResult batch = co_await puller_.next(pull_wait(until_ping));
      if (batch.status != broker::FetchStatus::ok) {
        co_return;  // unsubscribed or expired: nothing more will come
      }
      const auto now = std::chrono::steady_clock::now();
      const bool ping = now >= next_ping;
      // Woken early with nothing: the subscription went (the next pull says so) or the shutdown
      // began (its cancellation follows).
      if (batch.deliveries.empty() && !ping) {
        continue;
      }
      std::string events;
      for (const broker::Delivery& delivery : batch.deliveries) {
        events += "id: ";
        events += std::to_string(delivery.message.seq());
        events += "\nevent: message\ndata: ";
        events += encode_delivery(delivery, batch.ack);
        events += '\n';
      }
      if (ping) {
        events += ": ping\n\n";
        next_ping = broker::saturating_add(now, stream_.heartbeat);
      }
      const std::size_t count = batch.deliveries.size();
      batch.deliveries.clear();  // encoded: while the write waits, the batch is held once
      if (!co_await write(channel, events)) {
        co_return;
      }
      metrics_.pushed(count);
    }
  }

  asio::awaitable<bool> write(Channel& channel, const std::string& bytes) {
    return written(channel.write(asio::buffer(bytes)));
  }

  // A stream's client sends nothing after its request: reading only tells when it is gone (its
  // close or reset), so its subscription does not outlive it until the next write fails.
  static asio::awaitable<void> watch_client(Channel& channel) {
    std::array<char, 512> discard{};
    while (true) {
      const auto [error, read] = co_await channel.read_some(asio::buffer(discard));
      if (error) {
        co_return;
      }
    }
  }
};

// Counts a slow-reader wait once a write has waited kSlowWrite, while it still waits. Never
// completes: the write it races cancels it.
asio::awaitable<void> count_if_slow(metrics::StreamMetrics& metrics) {
  asio::steady_timer timer(co_await asio::this_coro::executor, kSlowWrite);
  co_await timer.async_wait(asio::use_awaitable);
  metrics.slow_reader_wait();
  timer.expires_at(asio::steady_timer::time_point::max());
  co_await timer.async_wait(asio::use_awaitable);
}

// Copies, not references: the removal may outlive the session.
asio::awaitable<void> unsubscribe(service::BrokerService& service, std::string subject,
                                  std::string id) {
  co_await service.unsubscribe(subject, id);
}

}  // namespace

EphemeralSubscription::EphemeralSubscription(service::BrokerService& service,
                                             const EventStream& stream,
                                             asio::any_io_executor executor)
    : service_(service),
      subject_(stream.subject),
      id_(stream.id),
      executor_(std::move(executor)),
      pending_(stream.ephemeral) {}

EphemeralSubscription::~EphemeralSubscription() {
  if (pending_) {
    asio::co_spawn(executor_, unsubscribe(service_, subject_, id_), asio::detached);
  }
}

asio::awaitable<void> EphemeralSubscription::remove() {
  if (pending_) {
    pending_ = false;
    co_await unsubscribe(service_, subject_, id_);
  }
}

asio::awaitable<bool> PushStream::written(asio::awaitable<boost::beast::error_code> write) {
  const auto result = co_await (std::move(write) || count_if_slow(metrics_));
  const boost::beast::error_code error = std::get<0>(result);
  if (error == boost::beast::error::timeout) {
    metrics_.write_timed_out();
  }
  co_return !error;
}

std::optional<StreamQuery> parse_stream_query(std::string_view target) {
  StreamQuery query;
  const auto start = target.find('?');
  std::string_view rest =
      start == std::string_view::npos ? std::string_view{} : target.substr(start + 1);
  while (!rest.empty()) {
    const auto end = rest.find('&');
    const std::string_view pair = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
    const auto equals = pair.find('=');
    const std::string_view name = pair.substr(0, equals);
    const std::string_view raw =
        equals == std::string_view::npos ? std::string_view{} : pair.substr(equals + 1);
    std::optional<std::string>* field = nullptr;
    if (name == "subject") {
      field = &query.subject;
    } else if (name == "id") {
      field = &query.id;
    } else if (name == "group") {
      field = &query.group;
    } else if (name == "last_event_id") {
      field = &query.last_event_id;
    } else if (name == "access_token") {
      field = &query.access_token;
    } else {
      continue;
    }
    auto value = decode_component(raw);
    if (!value || field->has_value()) {
      return std::nullopt;
    }
    *field = std::move(value);
  }
  return query;
}

std::optional<std::uint64_t> parse_event_id(std::string_view text) {
  std::uint64_t seq = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seq);
  if (text.empty() || error != std::errc{} || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return seq;
}

std::string event_stream_head(std::string_view extra_head) {
  std::string head =
      "HTTP/1.1 200 OK\r\n"
      "Content-Type: text/event-stream\r\n"
      "Cache-Control: no-cache\r\n"
      "X-Accel-Buffering: no\r\n";
  head += extra_head;
  head += "\r\n";
  return head;
}

Session event_stream_session(service::BrokerService& service, metrics::StreamMetrics& metrics,
                             EventStream stream, asio::any_io_executor executor) {
  auto state =
      std::make_shared<StreamState>(service, metrics, std::move(stream), std::move(executor));
  return [state](Channel& channel) { return state->run(channel); };
}

}  // namespace gophermq::http
