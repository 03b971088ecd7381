#include "bench_client.hpp"

#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <tuple>
#include <utility>

namespace gophermq::bench {
namespace {

constexpr auto kRequestTimeout = std::chrono::seconds(10);

std::shared_ptr<asio::ssl::context> tls_context;

}  // namespace

void use_tls(const std::string& ca_file) {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  context->load_verify_file(ca_file);
  context->set_verify_mode(asio::ssl::verify_peer);
  tls_context = std::move(context);
}

Connection::Connection(asio::any_io_executor executor)
    : stream_(std::move(executor)), request_{http::verb::post, "/", 11} {
  request_.set(http::field::host, "gophermq-bench");
  request_.set(http::field::content_type, "application/json");
}

asio::awaitable<beast::error_code> Connection::connect(const tcp::endpoint& endpoint) {
  stream_.expires_after(kRequestTimeout);
  auto [error] = co_await stream_.async_connect(endpoint, kUseTuple);
  if (!error) {
    stream_.socket().set_option(tcp::no_delay(true), error);
  }
  if (!error && tls_context) {
    tls_ = std::make_unique<beast::ssl_stream<beast::tcp_stream&>>(stream_, *tls_context);
    std::tie(error) = co_await tls_->async_handshake(asio::ssl::stream_base::client, kUseTuple);
  }
  co_return error;
}

asio::awaitable<Answer> Connection::post(std::string_view target, std::string body,
                                         std::chrono::milliseconds extra_wait) {
  request_.method(http::verb::post);
  request_.target(target);
  request_.body() = std::move(body);
  return exchange(extra_wait);
}

asio::awaitable<Answer> Connection::get(std::string_view target) {
  request_.method(http::verb::get);
  request_.target(target);
  request_.body().clear();
  return exchange({});
}

asio::awaitable<Answer> Connection::exchange(std::chrono::milliseconds extra_wait) {
  if (tls_) {
    return exchange_over(*tls_, extra_wait);
  }
  return exchange_over(stream_, extra_wait);
}

template <class Stream>
asio::awaitable<Answer> Connection::exchange_over(Stream& stream,
                                                  std::chrono::milliseconds extra_wait) {
  request_.prepare_payload();
  stream_.expires_after(kRequestTimeout + extra_wait);
  Answer answer;
  if (auto [error, sent] = co_await http::async_write(stream, request_, kUseTuple); error) {
    answer.error = error;
    answer.received = Clock::now();
    co_return answer;
  }
  http::response<http::string_body> response;
  auto [error, received] = co_await http::async_read(stream, buffer_, response, kUseTuple);
  answer.received = Clock::now();
  answer.error = error;
  answer.status = response.result_int();
  answer.body = std::move(response.body());
  co_return answer;
}

void Connection::close() {
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream_.close();
}

}  // namespace gophermq::bench
