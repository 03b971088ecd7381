#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <unordered_set>
#include <vector>

#include "http/request_handler.hpp"
#include "http/server_limits.hpp"
#include "http/tls.hpp"
#include "metrics/limit_metrics.hpp"

namespace gophermq::http {

// Request body bytes being received, shared by every listener of the process: a connection
// reserves its declared body here before buffering it, so stalled uploads cannot hold more than
// max-receiving-bytes between them.
class ReceiveBudget {
 public:
  explicit ReceiveBudget(std::size_t limit);

  // Takes `bytes` if they fit; false leaves the budget as it was.
  [[nodiscard]] bool try_take(std::size_t bytes);
  // Returns `bytes` taken before. Once a burst that used much of the budget is over, also gives
  // the memory it freed back to the system.
  void give_back(std::size_t bytes);

 private:
  const std::size_t limit_;
  const std::size_t burst_bytes_;
  std::atomic<std::size_t> used_{0};
  std::atomic<bool> burst_{false};
};

// One listening socket. Accepted connections are spread round-robin over the worker executors
// (one io_context, one thread each); each connection is one coroutine that stays on its worker, so
// a connection's state is never shared between threads. A handler may take a connection over for
// a long-lived answer (Client::take_over); the server keeps counting it and ends it on shutdown
// through the connection's cancellation signal. With a TlsContext every connection is TLS: its
// handshake must complete within header-timeout, and the same limits hold for what follows.
class Server {
 public:
  Server(boost::asio::any_io_executor control, std::vector<boost::asio::any_io_executor> workers,
         const boost::asio::ip::tcp::endpoint& endpoint, RequestHandler& handler,
         ServerLimits limits, metrics::LimitMetrics& limit_metrics, ReceiveBudget& receive_budget,
         const TlsContext* tls = nullptr);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  [[nodiscard]] boost::asio::ip::tcp::endpoint local_endpoint() const;

  void start();

  // Stops accepting (serving what the backlog already holds) and closes every connection without
  // a request in flight: idle ones, and those whose head or body is still arriving (a client that
  // stalled mid-request would otherwise hold the shutdown for shutdown-timeout). Bytes already
  // waiting on an idle connection are a request sent before the signal: it is served. From now
  // on every connection closes after its current request. Taken-over connections are cancelled,
  // as long polls are ended. Call on the control executor.
  void stop_accepting();

  // Waits for the requests in flight; connections still open at `deadline` are closed hard.
  // Completes when no connection is left, so nothing of the server is in use afterwards.
  boost::asio::awaitable<void> drain(std::chrono::steady_clock::time_point deadline);

  // Requests read in full and not yet answered, on any thread.
  [[nodiscard]] std::size_t requests_in_flight() const;

 private:
  // What the shutdown sees of a connection, whatever its stream.
  struct Connection;
  // One connection's coroutine over a stream type: tcp_stream, or an ssl_stream over it.
  template <class Stream>
  class StreamConnection;
  class Reservation;
  struct Worker {
    boost::asio::any_io_executor executor;
    std::unordered_set<Connection*> connections;     // touched only on `executor`
    std::atomic<std::size_t> requests_in_flight{0};  // written only on `executor`
  };

  boost::asio::awaitable<void> accept_loop();
  void accept_backlog();
  void start_connection(boost::asio::ip::tcp::socket socket, Worker& worker);
  template <class Stream>
  boost::asio::awaitable<void> refuse(Stream stream);
  boost::asio::awaitable<void> refuse_tls(boost::asio::ip::tcp::socket socket);
  template <class Stream>
  boost::asio::awaitable<void> serve(Stream stream, Worker& worker);
  boost::asio::awaitable<void> serve_tls(boost::asio::ip::tcp::socket socket, Worker& worker);
  void count_timeout(const boost::beast::error_code& error, metrics::Limit limit);
  void close_connections(bool waiting_only);
  void close_connections(Worker& worker, bool waiting_only);
  boost::asio::awaitable<void> wait_for_connections(std::chrono::steady_clock::time_point deadline);
  void connection_closed();

  boost::asio::any_io_executor control_;
  std::vector<std::unique_ptr<Worker>> workers_;
  boost::asio::ip::tcp::acceptor acceptor_;
  RequestHandler& handler_;
  ServerLimits limits_;
  metrics::LimitMetrics& limit_metrics_;
  ReceiveBudget& receive_budget_;
  const TlsContext* tls_;
  std::size_t next_worker_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> open_connections_{0};
  std::atomic<std::size_t> refusing_{0};
  std::atomic<bool> connection_burst_{false};  // many were open since memory was last released
  boost::asio::steady_timer all_closed_;
};

}  // namespace gophermq::http
