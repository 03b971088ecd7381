#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <unordered_set>
#include <vector>

#include "http/request_handler.hpp"
#include "http/server_limits.hpp"
#include "metrics/limit_metrics.hpp"

namespace gophermq::http {

// One listening socket. Accepted connections are spread round-robin over the worker executors
// (one io_context, one thread each); each connection is one coroutine that stays on its worker, so
// a connection's state is never shared between threads.
class Server {
 public:
  Server(boost::asio::any_io_executor control, std::vector<boost::asio::any_io_executor> workers,
         const boost::asio::ip::tcp::endpoint& endpoint, RequestHandler& handler,
         ServerLimits limits, metrics::LimitMetrics& limit_metrics);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  [[nodiscard]] boost::asio::ip::tcp::endpoint local_endpoint() const;

  void start();

  // Stops accepting (serving what the backlog already holds) and closes idle connections; from
  // now on every connection closes after its current request. Call on the control executor.
  void stop_accepting();

  // Waits for the requests in flight; connections still open at `deadline` are closed hard.
  // Completes when no connection is left, so nothing of the server is in use afterwards.
  boost::asio::awaitable<void> drain(std::chrono::steady_clock::time_point deadline);

 private:
  struct Connection;
  struct Worker {
    boost::asio::any_io_executor executor;
    std::unordered_set<Connection*> connections;  // touched only on `executor`
  };

  boost::asio::awaitable<void> accept_loop();
  void accept_backlog();
  void start_connection(boost::asio::ip::tcp::socket socket, Worker& worker);
  boost::asio::awaitable<void> refuse(boost::beast::tcp_stream stream);
  boost::asio::awaitable<void> serve(boost::beast::tcp_stream stream, Worker& worker);
  boost::asio::awaitable<bool> answer(Connection& connection, Response response, bool keep_alive,
                                      bool head_only);
  boost::asio::awaitable<void> close_after_refusal(boost::beast::tcp_stream& stream);
  void count_timeout(const boost::beast::error_code& error, metrics::Limit limit);
  void close_connections(bool idle_only);
  void close_connections(Worker& worker, bool idle_only);
  boost::asio::awaitable<void> wait_for_connections(std::chrono::steady_clock::time_point deadline);
  void connection_closed();

  boost::asio::any_io_executor control_;
  std::vector<std::unique_ptr<Worker>> workers_;
  boost::asio::ip::tcp::acceptor acceptor_;
  RequestHandler& handler_;
  ServerLimits limits_;
  metrics::LimitMetrics& limit_metrics_;
  std::size_t next_worker_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> open_connections_{0};
  std::atomic<std::size_t> refusing_{0};
  boost::asio::steady_timer all_closed_;
};

}  // namespace gophermq::http
