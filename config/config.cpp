#include "config/config.hpp"

#include <algorithm>
#include <boost/program_options.hpp>
#include <cctype>
#include <charconv>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

namespace gophermq::config {
namespace po = boost::program_options;

namespace {

constexpr std::string_view kEnvironmentPrefix = "GOPHERMQ_";

po::options_description describe_options() {
  po::options_description options(
      "Options (command line --key=value, config file [section] key, "
      "environment GOPHERMQ_SECTION_KEY)");
  const auto text = [] { return po::value<std::string>(); };
  // clang-format off
  options.add_options()
    ("help,h", "print this help and exit")
    ("version", "print the version and exit")
    ("config", text(), "INI config file to read (keys as [broker] port = 8082)")
    ("threads", text(), "HTTP threads; 0 means one per usable CPU (default 0)")
    ("broker.host", text(), "address the API listens on (default 0.0.0.0)")
    ("broker.port", text(), "API port; 0 picks a free one (default 8082)")
    ("broker.max-pending", text(), "most messages stored, one per queue holding it (default 1000000)")
    ("broker.max-pending-bytes", text(), "most message bytes stored, counted likewise (default 536870912)")
    ("broker.max-subject-length", text(), "longest subject in bytes (default 256)")
    ("broker.max-body-bytes", text(), "largest request body in bytes (default 1048576)")
    ("broker.max-header-bytes", text(), "largest request head in bytes (default 8192)")
    ("broker.max-message-bytes", text(), "largest message data in bytes (default 1048576)")
    ("broker.max-connections", text(), "open connections per listener; more get 503 and are closed (default 10000)")
    ("broker.max-subscriptions", text(), "most subscriptions; more get 429 (default 100000)")
    ("broker.max-pending-per-queue", text(), "most messages one subscriber or group queue holds; 0 off (default 0)")
    ("broker.slow-queue-policy", text(), "a full queue: reject the publish or drop-oldest (default reject)")
    ("broker.max-receiving-bytes", text(), "request bytes being received across all connections (default 67108864)")
    ("broker.max-wait-ms", text(), "longest wait_ms a fetch may ask for, in milliseconds (default 30000)")
    ("broker.subscriber-ttl", text(), "remove a subscription that has not fetched for this long; 0 never (default 1h)")
    ("broker.message-ttl", text(), "drop pending messages older than this; 0 never (default 0)")
    ("broker.async-queue-size", text(), "async publishes waiting for the broker, at most (default 65536)")
    ("broker.async-queue-bytes", text(), "message bytes in async publishes waiting, at most (default 67108864)")
    ("broker.idle-timeout", text(), "close a connection that sends no complete request for this long (default 60s)")
    ("broker.header-timeout", text(), "longest time to receive a request's head once it has begun (default 10s)")
    ("broker.read-timeout", text(), "longest time to receive one whole request once it has begun (default 30s)")
    ("broker.write-timeout", text(), "longest time to send one response (default 30s)")
    ("broker.shutdown-timeout", text(), "longest wait for requests in flight on shutdown (default 10s)")
    ("monitoring.enable", text(), "serve Prometheus metrics (default true)")
    ("monitoring.port", text(), "metrics port as 9001, :9001 or host:9001 (default :9001)")
    ("logger.level", text(), "debug, info, warn or error (default info)");
  // clang-format on
  return options;
}

[[noreturn]] void fail(const std::string& key, const std::string& value, const std::string& want) {
  throw ConfigError("invalid value '" + value + "' for " + key + ": " + want);
}

std::uint64_t to_unsigned(const std::string& key, const std::string& value, std::uint64_t low,
                          std::uint64_t high) {
  std::uint64_t number = 0;
  const char* end = value.data() + value.size();
  const auto [stop, error] = std::from_chars(value.data(), end, number);
  if (value.empty() || error != std::errc{} || stop != end || number < low || number > high) {
    fail(key, value,
         "expected a whole number from " + std::to_string(low) + " to " + std::to_string(high));
  }
  return number;
}

bool to_bool(const std::string& key, const std::string& value) {
  std::string lower(value);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "true" || lower == "1" || lower == "yes" || lower == "on") {
    return true;
  }
  if (lower == "false" || lower == "0" || lower == "no" || lower == "off") {
    return false;
  }
  fail(key, value, "expected true or false");
}

std::chrono::milliseconds to_duration(const std::string& key, const std::string& value) {
  const auto duration = parse_duration(value);
  if (!duration) {
    fail(key, value, "expected a duration such as 500ms, 30s, 5m or 1h");
  }
  return *duration;
}

std::uint16_t to_port(const std::string& key, const std::string& value) {
  return static_cast<std::uint16_t>(to_unsigned(key, value, 0, 65535));
}

// The original accepts both "9001" and ":9001"; "host:9001" also binds one address.
Endpoint to_endpoint(const std::string& key, const std::string& value, const std::string& host) {
  const auto colon = value.rfind(':');
  if (colon == std::string::npos) {
    return {host, to_port(key, value)};
  }
  const std::string given_host = value.substr(0, colon);
  return {given_host.empty() ? host : given_host, to_port(key, value.substr(colon + 1))};
}

// GOPHERMQ_BROKER_MAX__PENDING -> broker.max-pending: `__` stands for `-` and `_` for `.`.
std::string environment_key(std::string_view name) {
  std::string key;
  for (std::size_t i = kEnvironmentPrefix.size(); i < name.size(); ++i) {
    if (name[i] == '_' && i + 1 < name.size() && name[i + 1] == '_') {
      key.push_back('-');
      ++i;
    } else if (name[i] == '_') {
      key.push_back('.');
    } else {
      key.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(name[i]))));
    }
  }
  return key;
}

using Settings = std::map<std::string, std::string>;

// Later sources only fill keys that earlier (stronger) ones left unset.
void merge_weaker(Settings& settings, const po::parsed_options& parsed) {
  for (const po::option& option : parsed.options) {
    if (!option.value.empty()) {
      settings.emplace(option.string_key, option.value.back());
    } else {
      settings.emplace(option.string_key, std::string());
    }
  }
}

po::parsed_options parse_environment(const po::options_description& options,
                                     const std::vector<std::string>& environment) {
  po::parsed_options parsed(&options);
  for (const std::string& entry : environment) {
    const auto equals = entry.find('=');
    if (equals == std::string::npos || !entry.starts_with(kEnvironmentPrefix)) {
      continue;
    }
    const std::string name = entry.substr(0, equals);
    const std::string key = environment_key(name);
    if (options.find_nothrow(key, false) == nullptr || key == "help" || key == "version") {
      throw ConfigError("unknown setting " + name + " in the environment (no key " + key + ")");
    }
    po::option option(key, {entry.substr(equals + 1)});
    parsed.options.push_back(option);
  }
  return parsed;
}

po::parsed_options parse_file(const po::options_description& options, const std::string& path) {
  std::ifstream file(path);
  if (!file) {
    throw ConfigError("cannot read config file " + path);
  }
  try {
    return po::parse_config_file(file, options);
  } catch (const po::error& error) {
    throw ConfigError("config file " + path + ": " + error.what());
  }
}

Config build(const Settings& settings) {
  Config config;
  const auto value = [&](const char* key) -> const std::string* {
    const auto found = settings.find(key);
    return found == settings.end() ? nullptr : &found->second;
  };
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint32_t>::max();
  if (const auto* v = value("threads"))
    config.threads = static_cast<unsigned>(to_unsigned("threads", *v, 0, 1024));
  if (const auto* v = value("broker.host")) {
    if (v->empty()) fail("broker.host", *v, "expected an address");
    config.api.host = *v;
  }
  if (const auto* v = value("broker.port")) config.api.port = to_port("broker.port", *v);
  if (const auto* v = value("broker.max-pending")) {
    config.broker.max_pending = to_unsigned("broker.max-pending", *v, 1, kMax * kMax);
  }
  if (const auto* v = value("broker.max-pending-bytes")) {
    config.broker.max_pending_bytes = to_unsigned("broker.max-pending-bytes", *v, 1, kMax * kMax);
  }
  if (const auto* v = value("broker.max-subject-length")) {
    config.broker.max_subject_length = to_unsigned("broker.max-subject-length", *v, 1, 65536);
  }
  if (const auto* v = value("broker.max-body-bytes")) {
    config.server.max_body_bytes = to_unsigned("broker.max-body-bytes", *v, 64, kMax);
  }
  if (const auto* v = value("broker.max-header-bytes")) {
    config.server.max_header_bytes = to_unsigned("broker.max-header-bytes", *v, 512, 1024 * 1024);
  }
  if (const auto* v = value("broker.max-message-bytes")) {
    config.broker.max_message_bytes = to_unsigned("broker.max-message-bytes", *v, 1, kMax);
  }
  if (const auto* v = value("broker.max-connections")) {
    config.server.max_connections = to_unsigned("broker.max-connections", *v, 1, 10'000'000);
  }
  if (const auto* v = value("broker.max-subscriptions")) {
    config.broker.max_subscriptions = to_unsigned("broker.max-subscriptions", *v, 1, kMax);
  }
  if (const auto* v = value("broker.max-pending-per-queue")) {
    config.broker.max_pending_per_queue =
        to_unsigned("broker.max-pending-per-queue", *v, 0, kMax * kMax);
  }
  if (const auto* v = value("broker.slow-queue-policy")) {
    if (*v == "reject") {
      config.broker.slow_queue_policy = broker::SlowQueuePolicy::reject;
    } else if (*v == "drop-oldest") {
      config.broker.slow_queue_policy = broker::SlowQueuePolicy::drop_oldest;
    } else {
      fail("broker.slow-queue-policy", *v, "expected reject or drop-oldest");
    }
  }
  if (const auto* v = value("broker.max-receiving-bytes")) {
    config.server.max_receiving_bytes =
        to_unsigned("broker.max-receiving-bytes", *v, 1024, kMax * kMax);
  }
  if (const auto* v = value("broker.max-wait-ms")) {
    config.max_wait = std::chrono::milliseconds(to_unsigned("broker.max-wait-ms", *v, 0, kMax));
  }
  if (const auto* v = value("broker.subscriber-ttl")) {
    config.broker.subscriber_ttl = to_duration("broker.subscriber-ttl", *v);
  }
  if (const auto* v = value("broker.message-ttl")) {
    config.broker.message_ttl = to_duration("broker.message-ttl", *v);
  }
  if (const auto* v = value("broker.async-queue-size")) {
    config.async_queue_size = to_unsigned("broker.async-queue-size", *v, 1, kMax);
  }
  if (const auto* v = value("broker.async-queue-bytes")) {
    config.async_queue_bytes = to_unsigned("broker.async-queue-bytes", *v, 1, kMax * kMax);
  }
  if (const auto* v = value("broker.idle-timeout")) {
    config.server.idle_timeout = to_duration("broker.idle-timeout", *v);
    if (config.server.idle_timeout.count() == 0) fail("broker.idle-timeout", *v, "must be above 0");
  }
  if (const auto* v = value("broker.header-timeout")) {
    config.server.header_timeout = to_duration("broker.header-timeout", *v);
    if (config.server.header_timeout.count() == 0)
      fail("broker.header-timeout", *v, "must be above 0");
  }
  if (const auto* v = value("broker.read-timeout")) {
    config.server.read_timeout = to_duration("broker.read-timeout", *v);
    if (config.server.read_timeout.count() == 0) fail("broker.read-timeout", *v, "must be above 0");
  }
  if (const auto* v = value("broker.write-timeout")) {
    config.server.write_timeout = to_duration("broker.write-timeout", *v);
    if (config.server.write_timeout.count() == 0)
      fail("broker.write-timeout", *v, "must be above 0");
  }
  if (const auto* v = value("broker.shutdown-timeout")) {
    config.shutdown_timeout = to_duration("broker.shutdown-timeout", *v);
  }
  if (const auto* v = value("monitoring.enable")) {
    config.monitoring_enable = to_bool("monitoring.enable", *v);
  }
  if (const auto* v = value("monitoring.port")) {
    config.monitoring = to_endpoint("monitoring.port", *v, config.monitoring.host);
  }
  if (const auto* v = value("logger.level")) {
    const auto level = parse_log_level(*v);
    if (!level) fail("logger.level", *v, "expected debug, info, warn or error");
    config.log_level = *level;
  }
  return config;
}

std::string help_text(const po::options_description& options) {
  std::ostringstream text;
  text << "Usage: gophermq broker [options]\n"
          "       gophermq --version\n\n"
          "Runs the GopherMQ HTTP message broker.\n\n"
       << options;
  return text.str();
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(const std::string& text) {
  if (text == "0") {
    return std::chrono::milliseconds{0};
  }
  std::chrono::milliseconds total{0};
  std::string_view rest(text);
  if (rest.empty()) {
    return std::nullopt;
  }
  while (!rest.empty()) {
    std::uint64_t number = 0;
    const auto [stop, error] = std::from_chars(rest.data(), rest.data() + rest.size(), number);
    if (error != std::errc{} || stop == rest.data()) {
      return std::nullopt;
    }
    rest.remove_prefix(static_cast<std::size_t>(stop - rest.data()));
    const auto unit_end = std::find_if(rest.begin(), rest.end(), [](char c) {
      return std::isdigit(static_cast<unsigned char>(c));
    });
    const std::string_view unit(rest.data(), static_cast<std::size_t>(unit_end - rest.begin()));
    rest.remove_prefix(unit.size());
    std::uint64_t scale = 0;
    if (unit == "ms")
      scale = 1;
    else if (unit == "s")
      scale = 1000;
    else if (unit == "m")
      scale = 60'000;
    else if (unit == "h")
      scale = 3'600'000;
    else
      return std::nullopt;
    if (number > std::numeric_limits<std::int64_t>::max() / scale / 2) {
      return std::nullopt;
    }
    total += std::chrono::milliseconds{static_cast<std::int64_t>(number * scale)};
  }
  return total;
}

Invocation load(const std::vector<std::string>& arguments,
                const std::vector<std::string>& environment) {
  const po::options_description options = describe_options();
  Invocation invocation;
  invocation.help_text = help_text(options);
  if (arguments.empty()) {
    throw ConfigError("missing command: run 'gophermq broker' (see gophermq --help)");
  }
  std::vector<std::string> flags(arguments.begin() + 1, arguments.end());
  if (arguments.front() != "broker") {
    if (!arguments.front().starts_with('-')) {
      throw ConfigError("unknown command '" + arguments.front() + "' (see gophermq --help)");
    }
    flags = arguments;
  }
  po::parsed_options command_line(&options);
  try {
    command_line = po::command_line_parser(flags).options(options).run();
  } catch (const po::error& error) {
    throw ConfigError(error.what());
  }
  Settings settings;
  merge_weaker(settings, command_line);
  if (settings.contains("help")) {
    invocation.command = Command::show_help;
    return invocation;
  }
  if (settings.contains("version")) {
    invocation.command = Command::show_version;
    return invocation;
  }
  if (arguments.front() != "broker") {
    throw ConfigError("missing command: run 'gophermq broker' (see gophermq --help)");
  }
  merge_weaker(settings, parse_environment(options, environment));
  if (const auto path = settings.find("config"); path != settings.end()) {
    merge_weaker(settings, parse_file(options, path->second));
  }
  invocation.config = build(settings);
  return invocation;
}

}  // namespace gophermq::config
