#include "http/server.hpp"

#include <malloc.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <cerrno>
#include <charconv>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "http/framing.hpp"

namespace gophermq::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;
namespace ssl = boost::asio::ssl;
using boost::asio::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kFirstReadBytes = 16 * 1024;
// How long a refused client gets to see the answer before the socket closes: closing with unread
// input makes the kernel send RST, which can destroy the response before the client reads it.
constexpr std::chrono::seconds kLingerTime{2};
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};
// Refused connections still lingering; past this many, further ones are closed at once, so a
// connection flood costs the server no more than this many coroutines on top of max-connections.
constexpr std::size_t kMaxLingeringRefusals = 256;
constexpr std::chrono::seconds kRefusalWriteTimeout{1};
// Beast reads at most this much per read, so a chunked body grows by at most this (plus what is
// already buffered) between two checks of its reservation.
constexpr std::size_t kMaxReadBytes = 64 * 1024;
// A burst is receiving at least this much at once (or half the budget, if that is less); when it
// has ebbed to a quarter of it, the allocator's freed memory goes back to the system.
constexpr std::size_t kBurstBytes = 4 * 1024 * 1024;
// Likewise for connections: each leaves freed buffers behind in the allocator's arenas.
constexpr std::size_t kBurstConnections = 256;
// The most a closing TLS connection waits for its close_notify to be answered.
constexpr std::chrono::seconds kCloseNotifyTime{1};

// glibc keeps freed memory in its arenas, where fragmentation keeps it from going back to the
// system by itself, so RSS would stay at a burst's peak.
void release_free_memory() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

// Marks a request read in full and not yet answered, however its answer ends. Each worker counts
// its own, so the hot path touches no counter shared between threads.
class InFlight {
 public:
  InFlight(bool& flag, std::atomic<std::size_t>& count) : flag_(flag), count_(count) {
    flag_ = true;
    count_.store(count_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  ~InFlight() {
    flag_ = false;
    count_.store(count_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  bool& flag_;
  std::atomic<std::size_t>& count_;
};

// What the server does beneath HTTP, per stream type. Each takes the stream, not its socket, so a
// TLS stream (beast::ssl_stream<beast::tcp_stream>) plugs in with its own overloads; what each
// must mean there is noted with the plain one.

// Bytes already waiting are a request that began before the shutdown did. Plain: bytes in the
// kernel. TLS: also decrypted bytes the TLS layer holds (SSL_pending), while bytes in the kernel
// are records that may hold no data (a close_notify, a key update).
bool has_pending_input(beast::tcp_stream& stream) {
  beast::error_code error;
  return stream.socket().available(error) > 0;
}

// Readable and failing to read means the connection is gone (a reset, or the peer unreachable);
// reading nothing is a FIN, which is not a hang-up. The peek looks at the kernel's bytes, which
// under TLS are ciphertext; only whether it fails matters, so the same peek on the TCP socket
// stays right there.
bool connection_broken(beast::tcp_stream& stream) {
  char byte = 0;
  const auto received = ::recv(stream.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return received < 0 && errno != EAGAIN && errno != EWOULDBLOCK;
}

// Completes when the client's side has something to say: bytes, a FIN or an error. Under TLS the
// same wait on the TCP socket, since any record or error arrives there first.
asio::awaitable<beast::error_code> wait_readable(beast::tcp_stream& stream) {
  auto [error] = co_await stream.socket().async_wait(tcp::socket::wait_read, kUseTuple);
  co_return error;
}

// Tells the client nothing more is coming, keeping its input open for a lingering close. Plain: a
// FIN. TLS: a close_notify (written within the stream's timeout), then the FIN.
asio::awaitable<void> end_sending(beast::tcp_stream& stream) {
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  co_return;
}

// Closes at once, from a destructor. TLS does the same on the TCP socket: there is no time for a
// close_notify, and every answer is framed by its length, so a client cannot take a cut-off one
// for a whole one.
void close_now(beast::tcp_stream& stream) {
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.socket().close(ignored);
}

// The TLS handshake, within `limit`; a plain stream has none.
asio::awaitable<beast::error_code> handshake(beast::tcp_stream& /*stream*/,
                                             std::chrono::milliseconds /*limit*/) {
  co_return beast::error_code{};
}

asio::awaitable<beast::error_code> handshake(TlsStream& stream, std::chrono::milliseconds limit) {
  beast::get_lowest_layer(stream).expires_after(limit);
  auto [error] = co_await stream.async_handshake(ssl::stream_base::server, kUseTuple);
  co_return error;
}

// A TLS connection ends with a close_notify, waiting at most `limit` (and kCloseNotifyTime) for
// the client's: a client that just drops the connection must not hold a coroutine long.
asio::awaitable<void> close_notify(beast::tcp_stream& /*stream*/,
                                   std::chrono::milliseconds /*limit*/) {
  co_return;
}

bool has_pending_input(TlsStream& stream) {
  return SSL_pending(stream.native_handle()) > 0 || has_pending_input(stream.next_layer());
}

bool connection_broken(TlsStream& stream) {
  return connection_broken(stream.next_layer());
}

asio::awaitable<beast::error_code> wait_readable(TlsStream& stream) {
  return wait_readable(stream.next_layer());
}

asio::awaitable<void> close_notify(TlsStream& stream, std::chrono::milliseconds limit) {
  beast::get_lowest_layer(stream).expires_after(
      std::min<std::chrono::milliseconds>(limit, kCloseNotifyTime));
  co_await stream.async_shutdown(kUseTuple);
  co_await end_sending(stream.next_layer());
}

asio::awaitable<void> end_sending(TlsStream& stream) {
  return close_notify(stream, kCloseNotifyTime);
}

void close_now(TlsStream& stream) {
  close_now(stream.next_layer());
}

// Parses what is already buffered. With keep-alive and small bodies the whole request is usually
// there after one read, and parsing it here saves the two scheduler round trips of Beast's
// asynchronous reads. Returns the parser's error; needing more input is not one.
beast::error_code parse_buffered(RequestParser& parser, beast::flat_buffer& buffer) {
  beast::error_code error;
  while (buffer.size() > 0 && !parser.is_done()) {
    const auto bytes = buffer.data();
    const std::size_t used =
        feed(parser, {static_cast<const char*>(bytes.data()), bytes.size()}, error);
    buffer.consume(used);
    if (error == bhttp::error::need_more) {
      return {};
    }
    if (error || used == 0) {
      break;
    }
  }
  return error;
}

// Beast's async_read_header, but through feed(), which sees the head's raw bytes.
template <class Stream>
asio::awaitable<beast::error_code> read_head(Stream& stream, beast::flat_buffer& buffer,
                                             RequestParser& parser) {
  while (!parser.is_header_done()) {
    const std::size_t room = std::min(kFirstReadBytes, buffer.max_size() - buffer.size());
    if (room == 0) {
      co_return bhttp::error::header_limit;
    }
    auto [error, read] = co_await stream.async_read_some(buffer.prepare(room), kUseTuple);
    if (error == asio::error::eof) {
      co_return parser.got_some() ? bhttp::error::partial_message : bhttp::error::end_of_stream;
    }
    if (error) {
      co_return error;
    }
    buffer.commit(read);
    if (const auto parse_error = parse_buffered(parser, buffer)) {
      co_return parse_error;
    }
  }
  co_return beast::error_code{};
}

bool expects_continue(const Request& request) {
  const auto expect = request[bhttp::field::expect];
  return expect.size() == 12 && beast::iequals(expect, "100-continue");
}

// The status line and fields, as Beast's serializer would write them. Writing this and the body
// in one gather write costs a fraction of Beast's serializer, whose nested buffer views took more
// instructions than the rest of a publish.
void write_head(const Response& response, std::string& out) {
  using namespace std::string_view_literals;
  out.clear();
  out.append(response.version() == 10 ? "HTTP/1.0 "sv : "HTTP/1.1 "sv);
  // Beast keeps a status code below 1000.
  std::array<char, 3> status{};
  const auto written =
      std::to_chars(status.data(), status.data() + status.size(), response.result_int());
  out.append(status.data(), written.ptr);
  out.push_back(' ');
  out.append(response.reason());
  out.append("\r\n"sv);
  for (const auto& field : response) {
    out.append(field.name_string());
    out.append(": "sv);
    out.append(field.value());
    out.append("\r\n"sv);
  }
  out.append("\r\n"sv);
}

}  // namespace

ReceiveBudget::ReceiveBudget(std::size_t limit)
    : limit_(limit), burst_bytes_(std::min(limit / 2, kBurstBytes)) {}

bool ReceiveBudget::try_take(std::size_t bytes) {
  std::size_t used = used_.load();
  do {
    if (bytes > limit_ - used) {
      return false;
    }
  } while (!used_.compare_exchange_weak(used, used + bytes));
  if (used + bytes >= burst_bytes_) {
    burst_.store(true);
  }
  return true;
}

void ReceiveBudget::give_back(std::size_t bytes) {
  const std::size_t used = used_.fetch_sub(bytes) - bytes;
  if (used <= burst_bytes_ / 4 && burst_.exchange(false)) {
    release_free_memory();
  }
}

// Bytes of the receive budget held by one request, given back however the request ends.
class Server::Reservation {
 public:
  explicit Reservation(ReceiveBudget& budget) : budget_(budget) {}
  ~Reservation() {
    if (bytes_ > 0) {
      budget_.give_back(bytes_);
    }
  }
  Reservation(const Reservation&) = delete;
  Reservation& operator=(const Reservation&) = delete;

  // Grows the reservation to `bytes`; false, holding what it held, when the budget has no room.
  bool grow_to(std::size_t bytes) {
    if (bytes <= bytes_) {
      return true;
    }
    if (!budget_.try_take(bytes - bytes_)) {
      return false;
    }
    bytes_ = bytes;
    return true;
  }

 private:
  ReceiveBudget& budget_;
  std::size_t bytes_ = 0;
};

struct Server::Connection : Client {
  // Ends whatever the connection waits for: its pending operations complete with an error.
  virtual void cancel() = 0;
  [[nodiscard]] virtual bool has_pending_input() = 0;

  std::string head;  // every response's head, reusing one allocation
  bool idle = false;
  bool in_flight = false;   // read in full, not yet answered
  bool taken_over = false;  // a handler's session runs on it
  // Reaches a taken-over connection's session, whose timers and operations the stream's own
  // cancel() would not all reach.
  asio::cancellation_signal cancellation;
  Session session;                     // set by take_over
  WebSocketSession websocket_session;  // set by take_over_websocket
};

namespace {

// What a body still to be read needs reserved before the next read: the whole declared
// Content-Length at once, or for a chunked body what it holds plus what one read can add.
std::size_t reservation_for(const bhttp::request_parser<bhttp::string_body>& parser,
                            const beast::flat_buffer& buffer) {
  if (const auto length = parser.content_length()) {
    return static_cast<std::size_t>(*length);
  }
  return parser.get().body().size() + buffer.size() + kMaxReadBytes;
}

struct BodyRead {
  beast::error_code error;
  bool over_budget = false;
};

// Reads the rest of the body, keeping a chunked body's reservation ahead of it.
template <class Stream, class Reservation>
asio::awaitable<BodyRead> read_body(Stream& stream, beast::flat_buffer& buffer,
                                    bhttp::request_parser<bhttp::string_body>& parser,
                                    Reservation& reservation) {
  if (!parser.chunked()) {
    auto [error, read] = co_await bhttp::async_read(stream, buffer, parser, kUseTuple);
    co_return BodyRead{error};
  }
  while (!parser.is_done()) {
    if (!reservation.grow_to(reservation_for(parser, buffer))) {
      co_return BodyRead{{}, true};
    }
    auto [error, read] = co_await bhttp::async_read_some(stream, buffer, parser, kUseTuple);
    if (error) {
      co_return BodyRead{error};
    }
  }
  co_return BodyRead{};
}

// After a refusal: stops sending and reads what the client still sends, so that closing with
// unread input does not reset the connection before the client has read the answer.
template <class Stream>
asio::awaitable<void> close_after_refusal(Stream& stream) {
  co_await end_sending(stream);
  beast::get_lowest_layer(stream).expires_after(kLingerTime);
  std::array<char, 4096> discard{};
  while (true) {
    auto [error, read] = co_await stream.async_read_some(asio::buffer(discard), kUseTuple);
    if (error) {
      co_return;
    }
  }
}

// The stream of a taken-over connection, behind the interface a session sees.
template <class Stream>
class StreamChannel final : public Channel {
 public:
  StreamChannel(Stream& stream, beast::flat_buffer& buffered,
                std::chrono::milliseconds write_timeout)
      : stream_(stream), buffered_(buffered), write_timeout_(write_timeout) {}

  asio::awaitable<std::tuple<beast::error_code, std::size_t>> read_some(
      asio::mutable_buffer buffer) override {
    if (buffered_.size() > 0) {
      const std::size_t copied = asio::buffer_copy(buffer, buffered_.data());
      buffered_.consume(copied);
      co_return std::tuple{beast::error_code{}, copied};
    }
    beast::get_lowest_layer(stream_).expires_never();
    auto [error, read] = co_await stream_.async_read_some(buffer, kUseTuple);
    co_return std::tuple{error, read};
  }

  asio::awaitable<beast::error_code> write(asio::const_buffer buffer) override {
    beast::get_lowest_layer(stream_).expires_after(write_timeout_);
    auto [error, written] = co_await asio::async_write(stream_, buffer, kUseTuple);
    co_return error;
  }

 private:
  Stream& stream_;
  beast::flat_buffer& buffered_;
  std::chrono::milliseconds write_timeout_;
};

// A limit as Beast's WebSocket timeouts take it, in nanoseconds: one of centuries, which they could
// not hold, means none.
websocket::stream_base::duration websocket_duration(std::chrono::milliseconds limit) {
  constexpr auto kNever = std::chrono::hours(24 * 365 * 100);
  if (limit >= kNever) {
    return websocket::stream_base::none();
  }
  return std::chrono::duration_cast<websocket::stream_base::duration>(limit);
}

// A WebSocket over the stream of a taken-over connection. Its operations carry no cancellation
// slot: Beast fails a WebSocket whose read or write is cancelled, and a session the shutdown
// cancelled must still be able to send its close frame.
template <class Stream>
class StreamWebSocket final : public WebSocketChannel {
 public:
  StreamWebSocket(Stream& stream, std::chrono::milliseconds write_timeout)
      : ws_(stream), write_timeout_(write_timeout), write_timer_(stream.get_executor()) {}
  ~StreamWebSocket() override { watch_->writing = false; }
  StreamWebSocket(const StreamWebSocket&) = delete;
  StreamWebSocket& operator=(const StreamWebSocket&) = delete;

  websocket::stream<Stream&>& socket() { return ws_; }

  asio::awaitable<Message> read() override {
    Message message;
    beast::flat_buffer buffer;
    auto [error, bytes] = co_await ws_.async_read(buffer, unbound());
    message.error = error;
    message.text = ws_.got_text();
    message.data = beast::buffers_to_string(buffer.data());
    co_return message;
  }

  asio::awaitable<beast::error_code> write(std::string_view text) override {
    const std::uint64_t number = ++watch_->writes;
    write_timer_.expires_after(write_timeout_);
    // Beast's WebSocket has no write timeout of its own: dropping the connection ends the write.
    // The handler may run after the write completed, or after this channel is gone: it acts only
    // while its own write is pending.
    write_timer_.async_wait([this, watch = watch_, number](const beast::error_code& error) {
      if (!error && watch->writing && watch->writes == number) {
        watch->timed_out = true;
        beast::get_lowest_layer(ws_).cancel();
      }
    });
    ws_.text(true);
    watch_->writing = true;
    auto [error, written] = co_await ws_.async_write(asio::buffer(text), unbound());
    watch_->writing = false;
    write_timer_.cancel();
    if (watch_->timed_out) {
      co_return beast::error::timeout;
    }
    if (error) {
      beast::get_lowest_layer(ws_).cancel();
    }
    co_return error;
  }

  asio::awaitable<beast::error_code> close(std::uint16_t code, std::string_view reason) override {
    auto [error] = co_await ws_.async_close(
        websocket::close_reason(static_cast<websocket::close_code>(code),
                                beast::string_view(reason.data(), reason.size())),
        unbound());
    co_return error;
  }

 private:
  // No cancellation slot: the operation ignores its coroutine's cancellation.
  static auto unbound() {
    return asio::bind_cancellation_slot(asio::cancellation_slot(), kUseTuple);
  }

  // Shared with the write timer's handler, which may outlive the channel.
  struct WriteWatch {
    std::uint64_t writes = 0;
    bool writing = false;
    bool timed_out = false;
  };

  websocket::stream<Stream&> ws_;
  std::chrono::milliseconds write_timeout_;
  asio::steady_timer write_timer_;
  std::shared_ptr<WriteWatch> watch_ = std::make_shared<WriteWatch>();
};

}  // namespace

// One connection: requests are read (read_request) and answered (respond) in turn until either
// side closes, a refusal ends it, or a handler takes it over.
template <class Stream>
class Server::StreamConnection final : public Connection {
 public:
  StreamConnection(Server& server, Worker& worker, Stream stream)
      : server_(server),
        worker_(worker),
        stream_(std::move(stream)),
        // The parser's limits stop a request long before this; it bounds what pipelined input can
        // pile up behind one.
        buffer_(server.limits_.max_header_bytes + server.limits_.max_body_bytes + kFirstReadBytes) {
    worker_.connections.insert(this);
  }
  ~StreamConnection() override {
    worker_.connections.erase(this);
    close_now(stream_);
    server_.connection_closed();
  }
  StreamConnection(const StreamConnection&) = delete;
  StreamConnection& operator=(const StreamConnection&) = delete;

  asio::awaitable<void> run() {
    // A client that sends nothing, or stalls in the handshake, is cut off like one that stalls in
    // a request's head. The shutdown cancels a handshake under way, as it closes idle connections.
    const beast::error_code error = co_await handshake(stream_, server_.limits_.header_timeout);
    if (error) {
      server_.count_timeout(error, metrics::Limit::header_timeout);
      server_.tls_->handshake_failed(error);
      co_return;
    }
    co_await serve_requests();
    co_await close_notify(stream_, server_.limits_.write_timeout);
  }

  // Per request: wait for its first bytes, read it, answer it. Only the slow parts (a request not
  // yet all here, a refusal, the handler) are coroutines of their own: on the common path of a
  // request read whole in one go, each frame more would cost a publish an allocation.
  asio::awaitable<void> serve_requests() {
    while (true) {
      if (buffer_.size() == 0) {
        if (!begin_idle()) {
          co_return;
        }
        auto [error, read] =
            co_await stream_.async_read_some(buffer_.prepare(kFirstReadBytes), kUseTuple);
        if (!end_idle(error, read)) {
          co_return;
        }
      }
      RequestParser parser;
      Reservation reservation(server_.receive_budget_);
      const auto request_started = std::chrono::steady_clock::now();
      const beast::error_code error = parse_start(parser);
      if ((error || !parser.is_done()) &&
          !co_await read_rest(parser, reservation, request_started, error)) {
        co_return;
      }
      Request request = parser.release();
      if (!co_await respond(request)) {
        co_return;
      }
    }
  }

  asio::awaitable<void> hangup() override {
    const auto error = co_await wait_readable(stream_);
    if (error || connection_broken(stream_)) {
      co_return;
    }
    // A FIN only says the client sends no more: a half-closed client still reads its answer. And
    // after a pipelined request its close cannot be seen before that is read. Either way, stop
    // watching and wait to be cancelled.
    asio::steady_timer never(stream_.get_executor(), asio::steady_timer::time_point::max());
    co_await never.async_wait(kUseTuple);
  }

  Response take_over(Session new_session) override {
    session = std::move(new_session);
    return Response{kTakenOver, 11};
  }

  Response take_over_websocket(WebSocketSession new_session) override {
    websocket_session = std::move(new_session);
    return Response{kTakenOver, 11};
  }

  void cancel() override { beast::get_lowest_layer(stream_).cancel(); }

  bool has_pending_input() override { return gophermq::http::has_pending_input(stream_); }

 private:
  // Before waiting for a request's first bytes under the idle timeout; false when the connection
  // closes instead.
  bool begin_idle() {
    if (server_.stopping_ && !has_pending_input()) {
      return false;
    }
    // An idle connection keeps no more than one first read's worth after a large request.
    if (buffer_.capacity() > kFirstReadBytes) {
      buffer_.shrink_to_fit();
    }
    idle = true;
    beast::get_lowest_layer(stream_).expires_after(server_.limits_.idle_timeout);
    return true;
  }

  bool end_idle(const beast::error_code& error, std::size_t read) {
    idle = false;
    if (error) {
      server_.count_timeout(error, metrics::Limit::idle_timeout);
      return false;
    }
    buffer_.commit(read);
    return true;
  }

  // Parses what is buffered of a new request under the header and body limits and the framing
  // checks (feed()).
  beast::error_code parse_start(RequestParser& parser) {
    parser.body_limit(server_.limits_.max_body_bytes);
    parser.header_limit(static_cast<std::uint32_t>(server_.limits_.max_header_bytes));
    parser.eager(true);
    return parse_buffered(parser, buffer_);
  }

  // Reads the rest of a request: its head under header-timeout, its body under read-timeout with
  // `reservation` taken from the receive budget. A request that cannot be read is answered here
  // (413, 431, 400, 503); false when the connection closes instead of serving a request.
  asio::awaitable<bool> read_rest(RequestParser& parser, Reservation& reservation,
                                  std::chrono::steady_clock::time_point request_started,
                                  beast::error_code error) {
    const ServerLimits& limits = server_.limits_;
    // During shutdown a request is waited for only while its bytes are already here.
    if (!error && server_.stopping_ && !has_pending_input()) {
      co_return false;
    }
    if (!error && !parser.is_header_done()) {
      const bool head_timeout_first = limits.header_timeout < limits.read_timeout;
      beast::get_lowest_layer(stream_).expires_at(
          request_started + std::min(limits.header_timeout, limits.read_timeout));
      error = co_await read_head(stream_, buffer_, parser);
      server_.count_timeout(error, head_timeout_first ? metrics::Limit::header_timeout
                                                      : metrics::Limit::read_timeout);
    }
    if (!error && !parser.is_done() && !reservation.grow_to(reservation_for(parser, buffer_))) {
      co_await refuse_busy(parser.get());
      co_return false;
    }
    if (!error && !parser.is_done() && expects_continue(parser.get())) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      std::tie(error, std::ignore) =
          co_await asio::async_write(stream_, asio::buffer(kContinue), kUseTuple);
    }
    if (!error && !parser.is_done()) {
      beast::get_lowest_layer(stream_).expires_at(request_started + limits.read_timeout);
      const BodyRead body = co_await read_body(stream_, buffer_, parser, reservation);
      if (body.over_budget) {
        co_await refuse_busy(parser.get());
        co_return false;
      }
      error = body.error;
      server_.count_timeout(error, metrics::Limit::read_timeout);
    }
    if (error) {
      co_await refuse_unreadable(error, parser.get());
      co_return false;
    }
    co_return true;
  }

  // Hands the request to the handler and writes its answer; false when the connection closes.
  asio::awaitable<bool> respond(Request& request) {
    std::optional<Response> response;
    {
      const InFlight in_flight_mark(in_flight, worker_.requests_in_flight);
      try {
        response.emplace(co_await server_.handler_.handle(request, *this));
      } catch (const std::exception&) {
        response.emplace(server_.handler_.reject(request, bhttp::status::internal_server_error,
                                                 "internal server error"));
      }
      if (response->result_int() != static_cast<unsigned>(kTakenOver)) {
        if (response->result() == kClientGone) {
          co_return false;
        }
        // Read after the handler: a long poll may have been ended by the shutdown.
        const bool keep_alive = request.keep_alive() && !server_.stopping_;
        response->version(request.version());
        const bool head_only = request.method() == bhttp::verb::head;
        const auto buffers = serialize(*response, keep_alive, head_only);
        auto [error, written] = co_await asio::async_write(stream_, buffers, kUseTuple);
        server_.count_timeout(error, metrics::Limit::write_timeout);
        co_return !error && keep_alive;
      }
    }
    if (websocket_session) {
      co_await run_websocket(request);
    } else {
      co_await run_session();
    }
    co_return false;
  }

  // Runs the session a handler took the connection over with, until it returns or the server
  // cancels it; either way the connection then closes.
  asio::awaitable<void> run_session() {
    if (!session || server_.stopping_) {
      co_return;
    }
    taken_over = true;
    // No request is read into it again: keeping what a first read reserved would cost every open
    // stream kFirstReadBytes. Bytes behind the request stay, for the session to read first.
    buffer_.shrink_to_fit();
    StreamChannel<Stream> channel(stream_, buffer_, server_.limits_.write_timeout);
    co_await asio::co_spawn(
        stream_.get_executor(), [&]() { return session(channel); },
        asio::bind_cancellation_slot(cancellation.slot(), kUseTuple));
    cancellation.slot().clear();
  }

  // Accepts the WebSocket upgrade `request` over this connection's stream and runs the session a
  // handler took the connection over with, as run_session does.
  asio::awaitable<void> run_websocket(const Request& request) {
    if (server_.stopping_) {
      co_return;
    }
    // RFC 6455 has the client wait for the server's handshake before it sends a frame: bytes
    // behind the upgrade request are no WebSocket.
    if (buffer_.size() > 0) {
      co_await refuse(server_.handler_.reject(request, bhttp::status::bad_request,
                                              "data before the WebSocket handshake"));
      co_return;
    }
    taken_over = true;
    buffer_.shrink_to_fit();  // empty, and never read into again: as in run_session
    StreamWebSocket<Stream> channel(stream_, server_.limits_.write_timeout);
    auto& ws = channel.socket();
    // The WebSocket keeps its own time: the handshake and close get the write-timeout, and a
    // client silent for half the idle-timeout is pinged, then dropped when the other half passes
    // without a frame from it (a pong will do), which also ends a reader stalled for good.
    beast::get_lowest_layer(stream_).expires_never();
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = websocket_duration(server_.limits_.write_timeout);
    timeouts.idle_timeout = websocket_duration(server_.limits_.idle_timeout);
    timeouts.keep_alive_pings = true;
    ws.set_option(timeouts);
    ws.read_message_max(server_.limits_.max_body_bytes);
    ws.auto_fragment(false);
    auto [error] = co_await ws.async_accept(
        request, asio::bind_cancellation_slot(cancellation.slot(), kUseTuple));
    if (!error) {
      co_await asio::co_spawn(
          stream_.get_executor(), [&]() { return websocket_session(channel); },
          asio::bind_cancellation_slot(cancellation.slot(), kUseTuple));
    }
    cancellation.slot().clear();
  }

  // Formats the head of `response` and arms the write timeout; the buffers to write refer to the
  // head and the response's body.
  std::array<asio::const_buffer, 2> serialize(Response& response, bool keep_alive, bool head_only) {
    response.keep_alive(keep_alive);
    response.prepare_payload();
    // RFC 9110 forbids it on a 204, and on a 304 it would have to be the full answer's length.
    if (response.result() == bhttp::status::no_content ||
        response.result() == bhttp::status::not_modified) {
      response.erase(bhttp::field::content_length);
    }
    write_head(response, head);
    beast::get_lowest_layer(stream_).expires_after(server_.limits_.write_timeout);
    // A HEAD answer has the GET answer's Content-Length and no body.
    return {asio::buffer(head), head_only ? asio::const_buffer() : asio::buffer(response.body())};
  }

  // Writes a refusal, after which the connection closes, lingering so the client can read it.
  asio::awaitable<void> refuse(Response response) {
    const auto buffers = serialize(response, /*keep_alive=*/false, /*head_only=*/false);
    auto [error, written] = co_await asio::async_write(stream_, buffers, kUseTuple);
    server_.count_timeout(error, metrics::Limit::write_timeout);
    if (!error) {
      co_await close_after_refusal(stream_);
    }
  }

  // A request whose head or body could not be read gets the refusal its error calls for, if any
  // (the peer may be gone, or have timed out).
  asio::awaitable<void> refuse_unreadable(const beast::error_code& error, const Request& parsed) {
    if (const auto refusal = refusal_for(error, parsed)) {
      if (refusal->limit) {
        server_.limit_metrics_.hit(*refusal->limit);
      }
      co_await refuse(server_.handler_.reject(parsed, refusal->status, refusal->message));
    }
  }

  // Receiving this body would take the process over max-receiving-bytes.
  asio::awaitable<void> refuse_busy(const Request& request) {
    server_.limit_metrics_.hit(metrics::Limit::max_receiving_bytes);
    Response response =
        server_.handler_.reject(request, bhttp::status::service_unavailable, "server busy");
    response.set(bhttp::field::retry_after, "1");
    co_await refuse(std::move(response));
  }

  Server& server_;
  Worker& worker_;
  Stream stream_;
  beast::flat_buffer buffer_;
};

Server::Server(asio::any_io_executor control, std::vector<asio::any_io_executor> workers,
               const tcp::endpoint& endpoint, RequestHandler& handler, ServerLimits limits,
               metrics::LimitMetrics& limit_metrics, ReceiveBudget& receive_budget,
               const TlsContext* tls)
    : control_(std::move(control)),
      acceptor_(control_),
      handler_(handler),
      limits_(limits),
      limit_metrics_(limit_metrics),
      receive_budget_(receive_budget),
      tls_(tls),
      all_closed_(control_) {
  for (auto& executor : workers) {
    workers_.push_back(std::make_unique<Worker>());
    workers_.back()->executor = std::move(executor);
  }
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(asio::socket_base::max_listen_connections);
}

Server::~Server() = default;

tcp::endpoint Server::local_endpoint() const {
  return acceptor_.local_endpoint();
}

void Server::start() {
  asio::co_spawn(control_, accept_loop(), asio::detached);
}

asio::awaitable<void> Server::accept_loop() {
  while (!stopping_) {
    Worker& worker = *workers_[next_worker_++ % workers_.size()];
    auto [error, socket] = co_await acceptor_.async_accept(worker.executor, kUseTuple);
    if (error == asio::error::operation_aborted || stopping_) {
      co_return;
    }
    if (error) {
      // Out of descriptors or memory: back off rather than spin; the backlog waits meanwhile.
      asio::steady_timer delay(control_, kAcceptRetryDelay);
      co_await delay.async_wait(kUseTuple);
      continue;
    }
    start_connection(std::move(socket), worker);
  }
}

void Server::start_connection(tcp::socket socket, Worker& worker) {
  // Both only grow on this thread. Read in this order, a refusal ending meanwhile can only make
  // `serving` look higher than it is, never let one connection too many in.
  const std::size_t open = open_connections_.load();
  const std::size_t refusing = refusing_.load();
  const std::size_t serving = open > refusing ? open - refusing : 0;
  if (serving >= limits_.max_connections) {
    limit_metrics_.hit(metrics::Limit::max_connections);
    if (refusing < kMaxLingeringRefusals) {
      ++refusing_;
      ++open_connections_;
      if (tls_ != nullptr) {
        asio::co_spawn(worker.executor, refuse_tls(std::move(socket)), asio::detached);
      } else {
        asio::co_spawn(worker.executor, refuse(beast::tcp_stream(std::move(socket))),
                       asio::detached);
      }
    }
    return;
  }
  beast::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  if (++open_connections_ >= kBurstConnections) {
    connection_burst_ = true;
  }
  if (tls_ != nullptr) {
    asio::co_spawn(worker.executor, serve_tls(std::move(socket), worker), asio::detached);
    return;
  }
  asio::co_spawn(worker.executor, serve(beast::tcp_stream(std::move(socket)), worker),
                 asio::detached);
}

// A connection over max-connections gets a 503 it can read, without its request being parsed.
// The handler records it like any answer; with no request read, its route is `unmatched`.
template <class Stream>
asio::awaitable<void> Server::refuse(Stream stream) {
  Response response =
      handler_.reject(Request{}, bhttp::status::service_unavailable, "too many connections");
  response.set(bhttp::field::retry_after, "1");
  response.keep_alive(false);
  response.prepare_payload();
  std::string head;
  write_head(response, head);
  const std::array<asio::const_buffer, 2> buffers{asio::buffer(head),
                                                  asio::buffer(response.body())};
  beast::get_lowest_layer(stream).expires_after(kRefusalWriteTimeout);
  auto [error, written] = co_await asio::async_write(stream, buffers, kUseTuple);
  if (!error) {
    co_await close_after_refusal(stream);
  }
  close_now(stream);
  --refusing_;
  connection_closed();
}

// The 503 goes over TLS, so the refused client needs its handshake, bounded like the answer.
asio::awaitable<void> Server::refuse_tls(tcp::socket socket) {
  const std::shared_ptr<ssl::context> context = tls_->current();
  TlsStream stream(beast::tcp_stream(std::move(socket)), *context);
  beast::get_lowest_layer(stream).expires_after(kRefusalWriteTimeout);
  auto [error] = co_await stream.async_handshake(ssl::stream_base::server, kUseTuple);
  if (error) {
    tls_->handshake_failed(error);
    close_now(stream);
    --refusing_;
    connection_closed();
    co_return;
  }
  co_await refuse(std::move(stream));
}

void Server::accept_backlog() {
  beast::error_code error;
  acceptor_.non_blocking(true, error);
  while (!error) {
    Worker& worker = *workers_[next_worker_++ % workers_.size()];
    tcp::socket socket = acceptor_.accept(worker.executor, error);
    if (!error) {
      start_connection(std::move(socket), worker);
    }
  }
}

template <class Stream>
asio::awaitable<void> Server::serve(Stream stream, Worker& worker) {
  StreamConnection<Stream> connection(*this, worker, std::move(stream));
  co_await connection.run();
}

asio::awaitable<void> Server::serve_tls(tcp::socket socket, Worker& worker) {
  // The connection holds on to the context it began with, whatever reloads happen meanwhile.
  const std::shared_ptr<ssl::context> context = tls_->current();
  co_await serve(TlsStream(beast::tcp_stream(std::move(socket)), *context), worker);
}

void Server::count_timeout(const beast::error_code& error, metrics::Limit limit) {
  if (error == beast::error::timeout) {
    limit_metrics_.hit(limit);
  }
}

void Server::close_connections(Worker& worker, bool waiting_only) {
  // A copy: a cancellation may complete at once and end its connection.
  const std::vector<Connection*> connections(worker.connections.begin(), worker.connections.end());
  for (Connection* connection : connections) {
    if (connection->taken_over) {
      // Cancelled like a long poll is ended; at the deadline its stream is cancelled as well.
      connection->cancellation.emit(asio::cancellation_type::terminal);
      if (!waiting_only) {
        connection->cancel();
      }
      continue;
    }
    const bool request_waiting = connection->idle && connection->has_pending_input();
    if (!waiting_only || (!connection->in_flight && !request_waiting)) {
      connection->cancel();
    }
  }
}

std::size_t Server::requests_in_flight() const {
  std::size_t requests = 0;
  for (const auto& worker : workers_) {
    requests += worker->requests_in_flight.load(std::memory_order_relaxed);
  }
  return requests;
}

void Server::connection_closed() {
  const std::size_t open = open_connections_.fetch_sub(1) - 1;
  if (open == 0 && stopping_) {
    asio::post(control_, [this] { all_closed_.cancel(); });
  }
  if (open <= kBurstConnections / 4 && connection_burst_.exchange(false)) {
    release_free_memory();
  }
}

void Server::stop_accepting() {
  stopping_ = true;
  // Connections the kernel completed before now may carry requests sent before the signal.
  accept_backlog();
  beast::error_code ignored;
  acceptor_.close(ignored);
  close_connections(/*waiting_only=*/true);
}

void Server::close_connections(bool waiting_only) {
  for (auto& worker : workers_) {
    asio::post(worker->executor, [this, &worker = *worker, waiting_only] {
      close_connections(worker, waiting_only);
    });
  }
}

asio::awaitable<void> Server::drain(std::chrono::steady_clock::time_point deadline) {
  co_await wait_for_connections(deadline);
  close_connections(/*waiting_only=*/false);
  co_await wait_for_connections(std::chrono::steady_clock::time_point::max());
}

asio::awaitable<void> Server::wait_for_connections(std::chrono::steady_clock::time_point deadline) {
  if (open_connections_ == 0) {
    co_return;
  }
  all_closed_.expires_at(deadline);
  co_await all_closed_.async_wait(kUseTuple);
}

}  // namespace gophermq::http
