#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/log.hpp"

namespace gophermq::config {

struct Endpoint {
  std::string host;
  std::uint16_t port = 0;  // 0 asks the kernel for a free port, which the daemon then logs
};

// Every setting the daemon has, built in one place (load) from defaults, the config file, the
// environment and the command line, in rising precedence.
struct Config {
  Endpoint api{"0.0.0.0", 8082};
  std::uint64_t max_pending = 1'000'000;
  std::uint64_t max_pending_bytes = 512ULL * 1024 * 1024;
  std::size_t max_subject_length = 256;
  std::size_t max_body_bytes = 1024 * 1024;
  std::size_t max_header_bytes = 8 * 1024;
  std::size_t max_message_bytes = 1024 * 1024;
  std::size_t max_connections = 10'000;  // per listener
  std::chrono::milliseconds max_wait{30'000};
  std::chrono::milliseconds subscriber_ttl{3'600'000};  // 0: never
  std::chrono::milliseconds message_ttl{0};             // 0: never
  std::size_t async_queue_size = 65'536;
  std::uint64_t async_queue_bytes = 64ULL * 1024 * 1024;
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds read_timeout{30'000};
  std::chrono::milliseconds write_timeout{30'000};
  std::chrono::milliseconds shutdown_timeout{10'000};
  unsigned threads = 0;  // 0: one per core

  bool monitoring_enable = true;
  Endpoint monitoring{"0.0.0.0", 9001};

  LogLevel log_level = LogLevel::info;
};

// A value, key or file the user gave that cannot be used; what() is one line naming the key.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Command { run_broker, show_help, show_version };

struct Invocation {
  Command command = Command::run_broker;
  Config config;
  std::string help_text;
};

// `arguments` excludes the program name; `environment` is a list of NAME=VALUE strings.
Invocation load(const std::vector<std::string>& arguments,
                const std::vector<std::string>& environment);

// Go-style durations ("1h30m", "250ms", "0"); nullopt when the text is not one.
std::optional<std::chrono::milliseconds> parse_duration(const std::string& text);

}  // namespace gophermq::config
