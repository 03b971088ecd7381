// A real Server on 127.0.0.1 with a test handler that takes connections over: the session owns the
// connection, which still counts toward max-connections and is ended by the shutdown.
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "http/server.hpp"

namespace gophermq::http {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;
using namespace std::chrono_literals;

// GET /takeover streams "hello\n" every few milliseconds until cancelled; GET /echo sends back
// what the client sends; anything else is a plain 200.
class TakeoverHandler final : public RequestHandler {
 public:
  asio::awaitable<Response> handle(Request& request, Client& client) override {
    if (request.target() == "/takeover") {
      co_return client.take_over([this](Channel& channel) { return stream_hellos(channel); });
    }
    if (request.target() == "/echo") {
      co_return client.take_over([](Channel& channel) { return echo(channel); });
    }
    Response response{bhttp::status::ok, request.version()};
    response.body() = "served";
    co_return response;
  }

  Response reject(const Request& request, bhttp::status status, std::string_view message) override {
    Response response{status, request.version() == 0 ? 11 : request.version()};
    response.body() = message;
    return response;
  }

  std::promise<boost::system::error_code> session_ended;

 private:
  asio::awaitable<void> stream_hellos(Channel& channel) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    boost::system::error_code ended;
    try {
      while (!ended) {
        ended = co_await channel.write(asio::buffer(std::string_view("hello\n")));
        timer.expires_after(5ms);
        co_await timer.async_wait(asio::use_awaitable);
      }
    } catch (const boost::system::system_error& error) {
      ended = error.code();
    }
    session_ended.set_value(ended);
  }

  static asio::awaitable<void> echo(Channel& channel) {
    std::array<char, 256> bytes{};
    while (true) {
      auto [error, read] = co_await channel.read_some(asio::buffer(bytes));
      if (error || co_await channel.write(asio::buffer(bytes.data(), read))) {
        co_return;
      }
    }
  }
};

class ServerTakeoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    limits_.max_connections = 2;
    server_.emplace(context_.get_executor(),
                    std::vector<asio::any_io_executor>{context_.get_executor()},
                    tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), handler_, limits_,
                    limit_metrics_, budget_);
    server_->start();
    thread_ = std::thread([this] { context_.run(); });
  }

  void TearDown() override {
    work_.reset();
    if (!drained_) {
      drain(std::chrono::steady_clock::now());
    }
    thread_.join();
  }

  // Shuts the server down as the daemon does, with a deadline far off; true once no connection is
  // left, false if that took longer than a prompt shutdown could.
  bool drain(std::chrono::steady_clock::time_point deadline) {
    std::promise<void> done;
    asio::post(context_, [&] {
      server_->stop_accepting();
      asio::co_spawn(context_, server_->drain(deadline),
                     [&](const std::exception_ptr&) { done.set_value(); });
    });
    drained_ = true;
    return done.get_future().wait_for(5s) == std::future_status::ready;
  }

  tcp::socket connect() {
    tcp::socket socket(client_context_);
    socket.connect(server_->local_endpoint());
    return socket;
  }

  static std::string request(std::string_view target) {
    return "GET " + std::string(target) + " HTTP/1.1\r\nHost: test\r\n\r\n";
  }

  static std::string read_line(tcp::socket& socket, std::string& buffer) {
    const std::size_t length = asio::read_until(socket, asio::dynamic_buffer(buffer), '\n');
    std::string line = buffer.substr(0, length);
    buffer.erase(0, length);
    return line;
  }

  // A whole answer of a connection the server closes after it.
  static std::string read_to_end(tcp::socket& socket) {
    std::string answer;
    boost::system::error_code error;
    asio::read(socket, asio::dynamic_buffer(answer), error);
    return answer;
  }

  asio::io_context context_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_{context_.get_executor()};
  asio::io_context client_context_;
  prometheus::Registry registry_;
  metrics::LimitMetrics limit_metrics_{registry_};
  ReceiveBudget budget_{1024 * 1024};
  ServerLimits limits_;
  TakeoverHandler handler_;
  std::optional<Server> server_;
  std::thread thread_;
  bool drained_ = false;
};

TEST_F(ServerTakeoverTest, SessionOwnsTheConnectionAndItStillCountsTowardMaxConnections) {
  tcp::socket streaming = connect();
  asio::write(streaming, asio::buffer(request("/takeover")));
  std::string buffer;
  // The session writes from the first byte on: no HTTP answer precedes it.
  EXPECT_EQ(read_line(streaming, buffer), "hello\n");
  EXPECT_EQ(read_line(streaming, buffer), "hello\n");

  tcp::socket plain = connect();
  asio::write(plain, asio::buffer(request("/plain")));
  std::string answer;
  asio::read_until(plain, asio::dynamic_buffer(answer), "served");
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 200 OK\r\n")) << answer;

  tcp::socket third = connect();
  const std::string refused = read_to_end(third);
  EXPECT_TRUE(refused.starts_with("HTTP/1.1 503 Service Unavailable\r\n")) << refused;
  EXPECT_NE(refused.find("too many connections"), std::string::npos) << refused;

  EXPECT_EQ(read_line(streaming, buffer), "hello\n");
}

TEST_F(ServerTakeoverTest, ShutdownCancelsTheSessionAtOnce) {
  tcp::socket streaming = connect();
  asio::write(streaming, asio::buffer(request("/takeover")));
  std::string buffer;
  EXPECT_EQ(read_line(streaming, buffer), "hello\n");

  auto ended = handler_.session_ended.get_future();
  ASSERT_TRUE(drain(std::chrono::steady_clock::now() + 60s));
  ASSERT_EQ(ended.wait_for(0s), std::future_status::ready);
  EXPECT_EQ(ended.get(), asio::error::operation_aborted);
  // The connection is closed: after the hellos already sent, the stream ends.
  read_to_end(streaming);
  boost::system::error_code error;
  std::array<char, 1> byte{};
  streaming.read_some(asio::buffer(byte), error);
  EXPECT_TRUE(error == asio::error::eof || error == asio::error::connection_reset) << error;
}

TEST_F(ServerTakeoverTest, BytesSentBehindTheRequestReachTheSessionFirst) {
  tcp::socket echoing = connect();
  asio::write(echoing, asio::buffer(request("/echo") + "early\n"));
  std::string buffer;
  EXPECT_EQ(read_line(echoing, buffer), "early\n");
  asio::write(echoing, asio::buffer(std::string_view("later\n")));
  EXPECT_EQ(read_line(echoing, buffer), "later\n");
}

TEST_F(ServerTakeoverTest, ASessionThatEndsClosesItsConnectionAndFreesItsPlace) {
  tcp::socket echoing = connect();
  asio::write(echoing, asio::buffer(request("/echo") + "ping\n"));
  std::string buffer;
  EXPECT_EQ(read_line(echoing, buffer), "ping\n");
  tcp::socket plain = connect();
  asio::write(plain, asio::buffer(request("/plain")));
  std::string answer;
  asio::read_until(plain, asio::dynamic_buffer(answer), "served");

  // The client's FIN ends the echo session, and with it the connection.
  echoing.shutdown(tcp::socket::shutdown_send);
  EXPECT_EQ(read_to_end(echoing), "");

  tcp::socket next = connect();
  asio::write(next, asio::buffer(request("/plain")));
  std::string next_answer;
  asio::read_until(next, asio::dynamic_buffer(next_answer), "served");
  EXPECT_TRUE(next_answer.starts_with("HTTP/1.1 200 OK\r\n")) << next_answer;
}

}  // namespace
}  // namespace gophermq::http
