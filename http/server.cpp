#include "http/server.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <cerrno>
#include <exception>
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
using boost::asio::ip::tcp;

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

// Bytes already waiting in the kernel are a request that began before the shutdown did.
bool has_pending_input(beast::tcp_stream& stream) {
  beast::error_code error;
  return stream.socket().available(error) > 0;
}

// Readable and failing to read means the connection is gone (a reset, or the peer unreachable);
// reading nothing is a FIN, which is not a hang-up.
bool connection_broken(tcp::socket& socket) {
  char byte = 0;
  const auto received = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return received < 0 && errno != EAGAIN && errno != EWOULDBLOCK;
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
asio::awaitable<beast::error_code> read_head(beast::tcp_stream& stream, beast::flat_buffer& buffer,
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
  out.clear();
  out.append(response.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  out.append(std::to_string(response.result_int()));
  out.push_back(' ');
  out.append(response.reason());
  out.append("\r\n");
  for (const auto& field : response) {
    out.append(field.name_string());
    out.append(": ");
    out.append(field.value());
    out.append("\r\n");
  }
  out.append("\r\n");
}

}  // namespace

struct Server::Connection final : Client {
  explicit Connection(beast::tcp_stream& connection_stream) : stream(connection_stream) {}

  asio::awaitable<void> hangup() override {
    auto [error] = co_await stream.socket().async_wait(tcp::socket::wait_read, kUseTuple);
    if (error || connection_broken(stream.socket())) {
      co_return;
    }
    // A FIN only says the client sends no more: a half-closed client still reads its answer. And
    // after a pipelined request its close cannot be seen before that is read. Either way, stop
    // watching and wait to be cancelled.
    asio::steady_timer never(stream.get_executor(), asio::steady_timer::time_point::max());
    co_await never.async_wait(kUseTuple);
  }

  beast::tcp_stream& stream;
  std::string head;  // every response's head, reusing one allocation
  bool idle = false;
};

Server::Server(asio::any_io_executor control, std::vector<asio::any_io_executor> workers,
               const tcp::endpoint& endpoint, RequestHandler& handler, ServerLimits limits,
               metrics::LimitMetrics& limit_metrics)
    : control_(std::move(control)),
      acceptor_(control_),
      handler_(handler),
      limits_(limits),
      limit_metrics_(limit_metrics),
      all_closed_(control_) {
  for (auto& executor : workers) {
    workers_.push_back(std::make_unique<Worker>(Worker{std::move(executor), {}}));
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
      asio::co_spawn(worker.executor, refuse(beast::tcp_stream(std::move(socket))), asio::detached);
    }
    return;
  }
  beast::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  ++open_connections_;
  asio::co_spawn(worker.executor, serve(beast::tcp_stream(std::move(socket)), worker),
                 asio::detached);
}

// A connection over max-connections gets a 503 it can read, without its request being parsed.
// The handler records it like any answer; with no request read, its route is `unmatched`.
asio::awaitable<void> Server::refuse(beast::tcp_stream stream) {
  Response response =
      handler_.reject(Request{}, bhttp::status::service_unavailable, "too many connections");
  response.set(bhttp::field::retry_after, "1");
  response.keep_alive(false);
  response.prepare_payload();
  std::string head;
  write_head(response, head);
  const std::array<asio::const_buffer, 2> buffers{asio::buffer(head),
                                                  asio::buffer(response.body())};
  stream.expires_after(kRefusalWriteTimeout);
  auto [error, written] = co_await asio::async_write(stream, buffers, kUseTuple);
  if (!error) {
    co_await close_after_refusal(stream);
  }
  beast::error_code ignored;
  stream.socket().close(ignored);
  --refusing_;
  connection_closed();
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

asio::awaitable<void> Server::serve(beast::tcp_stream stream, Worker& worker) {
  Connection connection{stream};
  // Registered for shutdown while it lives, however the coroutine ends.
  struct Registration {
    Server& server;
    Worker& worker;
    Connection& connection;
    Registration(Server& s, Worker& w, Connection& c) : server(s), worker(w), connection(c) {
      worker.connections.insert(&connection);
    }
    ~Registration() {
      worker.connections.erase(&connection);
      beast::error_code ignored;
      connection.stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
      connection.stream.socket().close(ignored);
      server.connection_closed();
    }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;
  } registration(*this, worker, connection);

  // The parser's limits stop a request long before this; it bounds what pipelined input can pile
  // up behind one.
  beast::flat_buffer buffer(limits_.max_header_bytes + limits_.max_body_bytes + kFirstReadBytes);
  while (true) {
    if (buffer.size() == 0) {
      if (stopping_ && !has_pending_input(stream)) {
        co_return;
      }
      connection.idle = true;
      stream.expires_after(limits_.idle_timeout);
      auto [error, read] =
          co_await stream.async_read_some(buffer.prepare(kFirstReadBytes), kUseTuple);
      connection.idle = false;
      if (error) {
        count_timeout(error, metrics::Limit::idle_timeout);
        co_return;
      }
      buffer.commit(read);
    }

    RequestParser parser;
    parser.body_limit(limits_.max_body_bytes);
    parser.header_limit(static_cast<std::uint32_t>(limits_.max_header_bytes));
    parser.eager(true);
    const auto request_started = std::chrono::steady_clock::now();
    beast::error_code error = parse_buffered(parser, buffer);
    if (!error && !parser.is_header_done()) {
      const bool head_timeout_first = limits_.header_timeout < limits_.read_timeout;
      stream.expires_at(request_started + std::min(limits_.header_timeout, limits_.read_timeout));
      error = co_await read_head(stream, buffer, parser);
      count_timeout(error, head_timeout_first ? metrics::Limit::header_timeout
                                              : metrics::Limit::read_timeout);
    }
    if (!error && !parser.is_done() && expects_continue(parser.get())) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      std::tie(error, std::ignore) =
          co_await asio::async_write(stream, asio::buffer(kContinue), kUseTuple);
    }
    if (!error && !parser.is_done()) {
      stream.expires_at(request_started + limits_.read_timeout);
      std::tie(error, std::ignore) = co_await bhttp::async_read(stream, buffer, parser, kUseTuple);
      count_timeout(error, metrics::Limit::read_timeout);
    }
    if (error) {
      if (const auto refusal = refusal_for(error, parser.get())) {
        if (refusal->limit) {
          limit_metrics_.hit(*refusal->limit);
        }
        Response response = handler_.reject(parser.get(), refusal->status, refusal->message);
        if (co_await answer(connection, std::move(response), false, false)) {
          co_await close_after_refusal(connection.stream);
        }
      }
      co_return;
    }

    Request request = parser.release();
    std::optional<Response> response;
    try {
      response.emplace(co_await handler_.handle(request, connection));
    } catch (const std::exception&) {
      response.emplace(
          handler_.reject(request, bhttp::status::internal_server_error, "internal server error"));
    }
    if (response->result() == kClientGone) {
      co_return;
    }
    // Read after the handler: a long poll may have been ended by the shutdown.
    const bool keep_alive = request.keep_alive() && !stopping_;
    response->version(request.version());
    const bool head_only = request.method() == bhttp::verb::head;
    if (!co_await answer(connection, std::move(*response), keep_alive, head_only) || !keep_alive) {
      co_return;
    }
  }
}

asio::awaitable<bool> Server::answer(Connection& connection, Response response, bool keep_alive,
                                     bool head_only) {
  response.keep_alive(keep_alive);
  response.prepare_payload();
  if (response.result() == bhttp::status::no_content) {
    response.erase(bhttp::field::content_length);  // RFC 9110 forbids it on a 204
  }
  write_head(response, connection.head);
  // A HEAD answer has the GET answer's Content-Length and no body.
  const std::array<asio::const_buffer, 2> buffers{
      asio::buffer(connection.head),
      head_only ? asio::const_buffer() : asio::buffer(response.body())};
  connection.stream.expires_after(limits_.write_timeout);
  auto [error, written] = co_await asio::async_write(connection.stream, buffers, kUseTuple);
  count_timeout(error, metrics::Limit::write_timeout);
  co_return !error;
}

void Server::count_timeout(const beast::error_code& error, metrics::Limit limit) {
  if (error == beast::error::timeout) {
    limit_metrics_.hit(limit);
  }
}

asio::awaitable<void> Server::close_after_refusal(beast::tcp_stream& stream) {
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.expires_after(kLingerTime);
  std::array<char, 4096> discard{};
  while (true) {
    auto [error, read] = co_await stream.async_read_some(asio::buffer(discard), kUseTuple);
    if (error) {
      co_return;
    }
  }
}

void Server::close_connections(Worker& worker, bool idle_only) {
  for (Connection* connection : worker.connections) {
    if (!idle_only || (connection->idle && !has_pending_input(connection->stream))) {
      connection->stream.cancel();
    }
  }
}

void Server::connection_closed() {
  if (open_connections_.fetch_sub(1) == 1 && stopping_) {
    asio::post(control_, [this] { all_closed_.cancel(); });
  }
}

void Server::stop_accepting() {
  stopping_ = true;
  // Connections the kernel completed before now may carry requests sent before the signal.
  accept_backlog();
  beast::error_code ignored;
  acceptor_.close(ignored);
  close_connections(/*idle_only=*/true);
}

void Server::close_connections(bool idle_only) {
  for (auto& worker : workers_) {
    asio::post(worker->executor,
               [this, &worker = *worker, idle_only] { close_connections(worker, idle_only); });
  }
}

asio::awaitable<void> Server::drain(std::chrono::steady_clock::time_point deadline) {
  co_await wait_for_connections(deadline);
  close_connections(/*idle_only=*/false);
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
