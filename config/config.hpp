#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "broker/limits.hpp"
#include "config/log.hpp"
#include "http/server_limits.hpp"
#include "storage/options.hpp"

namespace gophermq::config {

struct Endpoint {
  std::string host;
  std::uint16_t port = 0;  // 0 asks the kernel for a free port, which the daemon then logs
};

// Every setting the daemon has, built in one place (load) from defaults, the config file, the
// environment and the command line, in rising precedence.
struct Config {
  Endpoint api{"0.0.0.0", 8082};
  broker::Limits broker;
  http::ServerLimits server;
  std::chrono::milliseconds max_wait{30'000};
  std::size_t async_queue_size = 65'536;
  std::uint64_t async_queue_bytes = 64ULL * 1024 * 1024;
  std::chrono::milliseconds shutdown_timeout{10'000};
  // How often an event stream sends a `: ping` comment (API.md §10).
  std::chrono::milliseconds stream_heartbeat{15'000};
  // Origins browsers may call the API from, or "*"; empty: no CORS headers.
  std::vector<std::string> cors_origins;
  // Serve the built-in web console at GET / (API.md §10).
  bool console = true;
  unsigned threads = 0;  // 0: one per core
  storage::Options storage;

  http::TlsFiles tls;

  bool monitoring_enable = true;
  Endpoint monitoring{"0.0.0.0", 9001};
  std::string monitoring_token;  // empty: /metrics is open

  // The tokens of the API and what each may do (API.md §11); empty: the API is open.
  std::string auth_file;
  bool monitoring_tls = false;  // the metrics port uses `tls` too

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
  std::string config_file;  // the YAML file read, if any
};

// `arguments` excludes the program name; `environment` is a list of NAME=VALUE strings.
Invocation load(const std::vector<std::string>& arguments,
                const std::vector<std::string>& environment);

// Every key with its value in `config`, as text the key accepts, in the order --help lists them.
std::vector<std::pair<std::string, std::string>> settings_of(const Config& config);

// A duration as Go's time.ParseDuration reads it ("1h30m", "1.5h", ".5s", "-2s", "0"), with the
// sub-millisecond part rounded up to a whole millisecond; nullopt when the text is not one or its
// milliseconds do not fit in int64.
std::optional<std::chrono::milliseconds> parse_duration(const std::string& text);

}  // namespace gophermq::config
