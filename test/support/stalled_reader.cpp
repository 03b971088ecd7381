#include "support/stalled_reader.hpp"

#include <gtest/gtest.h>

#include <array>
#include <boost/asio/write.hpp>
#include <thread>

#include "support/broker_process.hpp"
#include "support/http_client.hpp"

namespace gophermq::test {
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {
constexpr std::size_t kMessageBytes = 4 * 1024 * 1024;
constexpr int kMessages = 4;
}  // namespace

std::vector<std::string> large_answer_arguments(std::vector<std::string> extra) {
  extra.push_back("--broker.max-body-bytes=" + std::to_string(kMessageBytes));
  extra.push_back("--broker.max-message-bytes=" + std::to_string(kMessageBytes));
  return isolated_arguments(std::move(extra));
}

std::string large_answer_request(std::uint16_t port) {
  HttpClient client(port);
  const std::string id = id_of(client.post("/api/subscribe", R"({"subject":"large"})"));
  const std::string data(kMessageBytes - 64, 'x');
  for (int i = 0; i < kMessages; ++i) {
    EXPECT_EQ(client.post("/api/publish", R"({"subject":"large","data":")" + data + "\"}").status,
              200U);
  }
  return post_request("/api/fetch", R"({"subject":"large","id":")" + id + "\"}");
}

StalledReader::StalledReader(std::uint16_t port, std::string_view request) : socket_(context_) {
  socket_.open(tcp::v4());
  socket_.set_option(asio::socket_base::receive_buffer_size(4096));
  socket_.connect({asio::ip::make_address("127.0.0.1"), port});
  asio::write(socket_, asio::buffer(request.data(), request.size()));
}

bool StalledReader::wait_for_answer_start(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (socket_.available() == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a poll interval, not a wait
  }
  return true;
}

std::size_t StalledReader::read_until_closed() {
  std::array<char, 65536> discard{};
  std::size_t total = 0;
  boost::system::error_code error;
  while (!error) {
    total += socket_.read_some(asio::buffer(discard), error);
  }
  EXPECT_TRUE(error == asio::error::eof || error == asio::error::connection_reset)
      << error.message();
  return total;
}

}  // namespace gophermq::test
