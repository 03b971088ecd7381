#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gophermq::test {

// Broker arguments under which large_answer_request() gets an answer of about 16 MiB: more than
// the kernel buffers of a StalledReader's connection hold, so writing it blocks.
std::vector<std::string> large_answer_arguments(std::vector<std::string> extra = {});

// Subscribes and stores four messages of nearly 4 MiB on a broker started with
// large_answer_arguments(); returns the raw request that fetches them all.
std::string large_answer_request(std::uint16_t port);

// A client that sends a request and then never reads: its receive buffer is made small before
// it connects, so the server's write of a large answer blocks.
class StalledReader {
 public:
  StalledReader(std::uint16_t port, std::string_view request);

  // Waits until the first bytes of the answer have arrived, so the request is being answered;
  // false if none came within `timeout`.
  bool wait_for_answer_start(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // Reads everything until the server ends the connection (a test failure if it ends otherwise
  // than by a close or a reset); returns how many bytes came.
  std::size_t read_until_closed();

 private:
  boost::asio::io_context context_;
  boost::asio::ip::tcp::socket socket_;
};

}  // namespace gophermq::test
