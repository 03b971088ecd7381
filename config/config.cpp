#include "config/config.hpp"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <boost/program_options.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <sstream>

namespace gophermq::config {
namespace po = boost::program_options;

namespace {

constexpr std::string_view kEnvironmentPrefix = "GOPHERMQ_";

// Abbreviated options (`--thr` for `--threads`) are refused: a later key sharing the prefix would
// silently change what an old command line means.
constexpr int kCommandLineStyle =
    po::command_line_style::default_style & ~po::command_line_style::allow_guessing;

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
    ("threads", text(), "HTTP threads; 0 means one per core (default 0)")
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
  if (!duration || duration->count() < 0) {
    fail(key, value,
         "expected a duration such as 250ms, 30s, 1.5h or 1h30m, from 0 to 2562047788015h");
  }
  return *duration;
}

std::uint16_t to_port(const std::string& key, const std::string& value) {
  return static_cast<std::uint16_t>(to_unsigned(key, value, 0, 65535));
}

// A name is resolved once, here, so a typo is refused by key instead of failing at bind time; the
// first IPv4 address wins over IPv6 ones, as clients that say `localhost` mostly mean 127.0.0.1.
std::string to_address(const std::string& key, const std::string& value) {
  if (value.empty()) {
    fail(key, value, "expected an address or host name");
  }
  boost::system::error_code error;
  const auto numeric = boost::asio::ip::make_address(value, error);
  if (!error) {
    return numeric.to_string();
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int status = getaddrinfo(value.c_str(), nullptr, &hints, &found);
  if (status != 0) {
    fail(key, value, std::string("cannot resolve the host name: ") + gai_strerror(status));
  }
  const std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owner(found, &freeaddrinfo);
  const addrinfo* chosen = found;
  for (const addrinfo* entry = found; entry != nullptr; entry = entry->ai_next) {
    if (entry->ai_family == AF_INET) {
      chosen = entry;
      break;
    }
  }
  char text[NI_MAXHOST] = {};
  if (getnameinfo(chosen->ai_addr, chosen->ai_addrlen, text, sizeof text, nullptr, 0,
                  NI_NUMERICHOST) != 0) {
    fail(key, value, "cannot resolve the host name");
  }
  return text;
}

// The original accepts both "9001" and ":9001"; "host:9001" and "[v6]:9001" also bind one address.
Endpoint to_endpoint(const std::string& key, const std::string& value, const std::string& host) {
  const auto colon = value.rfind(':');
  if (colon == std::string::npos) {
    return {host, to_port(key, value)};
  }
  std::string given_host = value.substr(0, colon);
  if (given_host.size() >= 2 && given_host.front() == '[' && given_host.back() == ']') {
    given_host = given_host.substr(1, given_host.size() - 2);
  }
  const std::uint16_t port = to_port(key, value.substr(colon + 1));
  return {given_host.empty() ? host : to_address(key, given_host), port};
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

// The variable a key is read from: GOPHERMQ_ + the key upper-cased, `-` as `__`, `.` as `_`.
std::string environment_name(std::string_view key) {
  std::string name(kEnvironmentPrefix);
  for (const char c : key) {
    if (c == '-') {
      name.append("__");
    } else if (c == '.') {
      name.push_back('_');
    } else {
      name.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    }
  }
  return name;
}

bool is_setting(const po::options_description& options, const std::string& key) {
  return key != "help" && key != "version" &&
         std::any_of(options.options().begin(), options.options().end(),
                     [&](const auto& option) { return option->long_name() == key; });
}

using Settings = std::map<std::string, std::string>;

// Later sources only fill keys that earlier (stronger) ones left unset. One source naming a key
// twice is refused: which of the two was meant cannot be known.
void merge_weaker(Settings& settings, const po::parsed_options& parsed, const std::string& source) {
  std::set<std::string> seen;
  for (const po::option& option : parsed.options) {
    if (option.string_key.empty() || option.position_key >= 0) {
      const std::string argument =
          option.original_tokens.empty() ? std::string() : option.original_tokens.front();
      throw ConfigError("unexpected argument '" + argument + "' " + source +
                        " (settings are --key=value)");
    }
    if (!seen.insert(option.string_key).second) {
      throw ConfigError(option.string_key + " is given twice " + source);
    }
    settings.emplace(option.string_key, option.value.empty() ? std::string() : option.value.back());
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
    // Only the one spelling each key maps to is accepted, so GOPHERMQ_, GOPHERMQ_broker_port or
    // GOPHERMQ_BROKER___PORT are refused rather than guessed at.
    if (!is_setting(options, key) || environment_name(key) != name) {
      throw ConfigError("unknown setting " + name +
                        " in the environment (expected GOPHERMQ_ + a key upper-cased, `.` as `_` "
                        "and `-` as `__`, as GOPHERMQ_BROKER_MAX__PENDING)");
    }
    po::option option(key, {entry.substr(equals + 1)});
    parsed.options.push_back(option);
  }
  return parsed;
}

po::parsed_options parse_file(const po::options_description& options, const std::string& path) {
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored)) {
    throw ConfigError("config file " + path + " is a directory");
  }
  std::ifstream file(path);
  if (!file) {
    throw ConfigError("cannot read config file " + path + ": " + std::strerror(errno));
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
  if (const auto* v = value("broker.host")) config.api.host = to_address("broker.host", *v);
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
  text
      << "Usage: gophermq broker [options]\n"
         "       gophermq --version\n\n"
         "Runs the GopherMQ HTTP message broker.\n\n"
      << options
      << "\nEvery key is set, weakest first, by its default, the config file, the environment and\n"
         "the command line (--key=value or --key value; no abbreviations, each key once).\n"
         "Environment: GOPHERMQ_ + the key upper-cased, `.` as `_` and `-` as `__`:\n"
         "  broker.max-pending -> GOPHERMQ_BROKER_MAX__PENDING=1000\n"
         "Config file (INI): the part before the first `.` is the section:\n"
         "  [broker]\n"
         "  max-pending = 1000\n";
  return text.str();
}

}  // namespace

namespace {

__extension__ using Wide = unsigned __int128;

constexpr std::int64_t kNanosPerMilli = 1'000'000;
// The largest duration a milliseconds count holds, in nanoseconds before rounding up.
constexpr Wide kMaxNanos =
    static_cast<Wide>(std::numeric_limits<std::int64_t>::max()) * kNanosPerMilli;

std::optional<std::uint64_t> unit_nanos(std::string_view unit) {
  static constexpr std::pair<std::string_view, std::uint64_t> kUnits[] = {
      {"ns", 1},          {"us", 1'000},        {"\u00b5s", 1'000},  // µ MICRO SIGN, as Go accepts
      {"\u03bcs", 1'000},  // μ GREEK SMALL LETTER MU, likewise
      {"ms", 1'000'000},  {"s", 1'000'000'000}, {"m", 60'000'000'000}, {"h", 3'600'000'000'000},
  };
  for (const auto& [name, nanos] : kUnits) {
    if (unit == name) {
      return nanos;
    }
  }
  return std::nullopt;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

}  // namespace

// The grammar of Go's time.ParseDuration, [-+]?([0-9]*(\.[0-9]*)?[a-z]+)+ or a bare 0, computed
// exactly in nanoseconds; the range is that of int64 milliseconds instead of Go's int64
// nanoseconds, so every value a Go broker accepts is accepted.
std::optional<std::chrono::milliseconds> parse_duration(const std::string& text) {
  std::string_view rest(text);
  bool negative = false;
  if (!rest.empty() && (rest.front() == '-' || rest.front() == '+')) {
    negative = rest.front() == '-';
    rest.remove_prefix(1);
  }
  if (rest == "0") {
    return std::chrono::milliseconds{0};
  }
  if (rest.empty()) {
    return std::nullopt;
  }
  Wide total = 0;
  while (!rest.empty()) {
    Wide whole = 0;
    bool digits = false;
    for (; !rest.empty() && is_digit(rest.front()); rest.remove_prefix(1)) {
      whole = whole * 10 + static_cast<unsigned>(rest.front() - '0');
      if (whole > kMaxNanos) {
        return std::nullopt;
      }
      digits = true;
    }
    // Fraction digits past the 18th change the value by less than a nanosecond, as in Go.
    Wide fraction = 0;
    Wide scale = 1;
    if (!rest.empty() && rest.front() == '.') {
      rest.remove_prefix(1);
      for (; !rest.empty() && is_digit(rest.front()); rest.remove_prefix(1)) {
        if (scale < Wide{1'000'000'000'000'000'000ULL}) {
          fraction = fraction * 10 + static_cast<unsigned>(rest.front() - '0');
          scale *= 10;
        }
        digits = true;
      }
    }
    if (!digits) {
      return std::nullopt;
    }
    const auto unit_end =
        std::find_if(rest.begin(), rest.end(), [](char c) { return c == '.' || is_digit(c); });
    const auto unit = unit_nanos(rest.substr(0, static_cast<std::size_t>(unit_end - rest.begin())));
    if (!unit) {
      return std::nullopt;
    }
    rest.remove_prefix(static_cast<std::size_t>(unit_end - rest.begin()));
    total += whole * *unit + fraction * *unit / scale;
    if (total > kMaxNanos) {
      return std::nullopt;
    }
  }
  // Sub-millisecond parts round up, so a positive duration never becomes 0 ("never").
  const auto millis = static_cast<std::int64_t>((total + kNanosPerMilli - 1) / kNanosPerMilli);
  return std::chrono::milliseconds{negative ? -millis : millis};
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
    command_line = po::command_line_parser(flags).options(options).style(kCommandLineStyle).run();
  } catch (const po::error& error) {
    throw ConfigError(error.what());
  }
  Settings settings;
  merge_weaker(settings, command_line, "on the command line");
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
  merge_weaker(settings, parse_environment(options, environment), "in the environment");
  if (const auto path = settings.find("config"); path != settings.end()) {
    merge_weaker(settings, parse_file(options, path->second), "in config file " + path->second);
  }
  invocation.config = build(settings);
  return invocation;
}

}  // namespace gophermq::config
