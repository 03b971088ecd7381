#include "config/config.hpp"

#include <netdb.h>
#include <sys/socket.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <boost/program_options.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <type_traits>
#include <utility>

#include "http/cors.hpp"

namespace gophermq::config {
namespace po = boost::program_options;

namespace {

constexpr std::string_view kEnvironmentPrefix = "GOPHERMQ_";
constexpr const char* kDefaultConfigFile = "config.yaml";
// The smallest log file: one page.
constexpr std::uint64_t kMinFileBytes = 4096;

// Abbreviated options (`--thr` for `--threads`) are refused: a later key sharing the prefix would
// silently change what an old command line means.
constexpr int kCommandLineStyle =
    po::command_line_style::default_style & ~po::command_line_style::allow_guessing;

// A pasted blob is shown by its start; the error stays one readable line.
[[noreturn]] void fail(const std::string& key, const std::string& value, const std::string& want) {
  constexpr std::size_t kShown = 80;
  const std::string shown = value.size() > kShown ? value.substr(0, kShown) + "..." : value;
  throw ConfigError("invalid value '" + shown + "' for " + key + ": " + want);
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

// A value and, for those not from the command line, where it was set (a variable, a file's line),
// so an error names it.
struct Given {
  std::string value;
  std::string origin;
};
using Settings = std::map<std::string, Given>;

// Later sources only fill keys that earlier (stronger) ones left unset. One source naming a key
// twice is refused: which of the two was meant cannot be known. The environment and the file
// record their origin as the option's one original token.
void merge_weaker(Settings& settings, const po::parsed_options& parsed, const std::string& source,
                  bool named_origin) {
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
    settings.emplace(option.string_key,
                     Given{option.value.empty() ? std::string() : option.value.back(),
                           named_origin ? option.original_tokens.front() : std::string()});
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
    option.original_tokens = {name};
    parsed.options.push_back(option);
  }
  return parsed;
}

// A config file is small; a bound keeps `--config /dev/zero` (or a log named by mistake) from
// taking the memory, and a regular file cannot block the start as a FIFO would.
constexpr std::streamsize kMaxConfigFileBytes = 1024 * 1024;

std::string read_file(const std::string& path) {
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  if (std::filesystem::is_directory(status)) {
    throw ConfigError("config file " + path + " is a directory");
  }
  if (std::filesystem::exists(status) && !std::filesystem::is_regular_file(status)) {
    throw ConfigError("config file " + path + " is not a regular file");
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    throw ConfigError("cannot read config file " + path + ": " + std::strerror(errno));
  }
  std::string text(static_cast<std::size_t>(kMaxConfigFileBytes) + 1, '\0');
  file.read(text.data(), kMaxConfigFileBytes + 1);
  if (file.bad()) {
    throw ConfigError("cannot read config file " + path + ": " + std::strerror(errno));
  }
  if (file.gcount() > kMaxConfigFileBytes) {
    throw ConfigError("config file " + path + " is larger than 1 MiB");
  }
  text.resize(static_cast<std::size_t>(file.gcount()));
  return text;
}

// A key that has keys below it, such as `broker`.
bool is_section(const po::options_description& options, const std::string& key) {
  return std::any_of(options.options().begin(), options.options().end(), [&](const auto& option) {
    return option->long_name().starts_with(key + ".");
  });
}

std::string where(const std::string& path, const YAML::Mark& mark) {
  return "config file " + path + " line " + std::to_string(mark.line + 1);
}

// Nested maps become dotted keys, as koanf reads the original's config.yaml:
// `broker: {max-pending: 10}` is broker.max-pending. Each scalar is kept as its text, for the
// table to read like any other source.
void flatten(const YAML::Node& node, const std::string& prefix, const std::string& path,
             const po::options_description& options, po::parsed_options& parsed,
             std::map<std::string, int>& lines) {
  for (const auto& entry : node) {
    const YAML::Node& name = entry.first;
    const YAML::Node& value = entry.second;
    if (!name.IsScalar()) {
      throw ConfigError(where(path, name.Mark()) + ": a key must be a plain name");
    }
    const std::string key = prefix.empty() ? name.Scalar() : prefix + "." + name.Scalar();
    // Only sections are entered, so the walk is bounded by the table however the file nests or
    // repeats maps through aliases. A section left empty (all its keys commented out) is fine.
    if (is_section(options, key) && (value.IsMap() || value.IsNull())) {
      flatten(value, key, path, options, parsed, lines);
      continue;
    }
    if (!is_setting(options, key) || key == "config") {
      throw ConfigError(where(path, name.Mark()) + ": unknown key " + key);
    }
    if (const auto [first, added] = lines.emplace(key, name.Mark().line + 1); !added) {
      throw ConfigError(where(path, name.Mark()) + ": " + key + " is given twice (also line " +
                        std::to_string(first->second) + ")");
    }
    if (!value.IsScalar()) {
      const char* problem = value.IsSequence() ? " takes one value, not a list"
                            : value.IsMap()    ? " takes one value, not a map"
                                               : " has no value";
      throw ConfigError(where(path, value.Mark()) + ": " + key + problem);
    }
    po::option option(key, {value.Scalar()});
    option.original_tokens = {where(path, value.Mark())};
    parsed.options.push_back(option);
  }
}

po::parsed_options parse_file(const po::options_description& options, const std::string& path) {
  const std::string text = read_file(path);
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(text);
  } catch (const YAML::Exception& error) {
    throw ConfigError(where(path, error.mark) + ": " + error.msg);
  }
  if (documents.size() > 1) {
    throw ConfigError(where(path, documents[1].Mark()) + ": expected one YAML document, not " +
                      std::to_string(documents.size()));
  }
  const YAML::Node root = documents.empty() ? YAML::Node() : documents.front();
  po::parsed_options parsed(&options);
  if (root.IsNull()) {
    return parsed;
  }
  if (!root.IsMap()) {
    throw ConfigError(where(path, root.Mark()) + ": expected a map of keys such as broker:");
  }
  std::map<std::string, int> lines;
  flatten(root, "", path, options, parsed, lines);
  return parsed;
}

// One row per key: its name, its help line and how a text value is checked and stored. The
// defaults are the Config's own member initialisers (and those of the nested broker::Limits and
// http::ServerLimits); `show` reads them back for --help.
struct Setting {
  std::string_view key;
  std::string_view help;
  std::function<void(Config&, const std::string&)> parse;
  std::function<std::string(const Config&)> show;
};

// `field` is a generic lambda returning the member it stands for, for Config& and const Config&.
template <typename Field>
Setting number(std::string_view key, Field field, std::uint64_t low, std::uint64_t high,
               std::string_view help) {
  return {key, help,
          [=](Config& config, const std::string& value) {
            auto& member = field(config);
            member = static_cast<std::remove_reference_t<decltype(member)>>(
                to_unsigned(std::string(key), value, low, high));
          },
          [=](const Config& config) { return std::to_string(field(config)); }};
}

template <typename Field>
Setting millis(std::string_view key, Field field, std::uint64_t high, std::string_view help) {
  return {key, help,
          [=](Config& config, const std::string& value) {
            field(config) = std::chrono::milliseconds(
                static_cast<std::int64_t>(to_unsigned(std::string(key), value, 0, high)));
          },
          [=](const Config& config) { return std::to_string(field(config).count()); }};
}

// "1h30m", "1s500ms" or "0": the shortest text parse_duration reads back as the same value.
std::string format_duration(std::chrono::milliseconds duration) {
  if (duration.count() == 0) {
    return "0";
  }
  std::string text;
  auto rest = duration.count();
  for (const auto& [unit, size] : {std::pair{"h", 3'600'000LL}, std::pair{"m", 60'000LL},
                                   std::pair{"s", 1'000LL}, std::pair{"ms", 1LL}}) {
    if (rest >= size) {
      text += std::to_string(rest / size) + unit;
      rest %= size;
    }
  }
  return text;
}

// `positive`: 0 is refused, for timeouts where 0 would cut every connection off at once.
template <typename Field>
Setting duration(std::string_view key, Field field, bool positive, std::string_view help) {
  return {key, help,
          [=](Config& config, const std::string& value) {
            const auto parsed = to_duration(std::string(key), value);
            if (positive && parsed.count() == 0) {
              fail(std::string(key), value, "must be above 0");
            }
            field(config) = parsed;
          },
          [=](const Config& config) { return format_duration(field(config)); }};
}

template <typename Field>
Setting flag(std::string_view key, Field field, std::string_view help) {
  return {key, help,
          [=](Config& config, const std::string& value) {
            field(config) = to_bool(std::string(key), value);
          },
          [=](const Config& config) { return std::string(field(config) ? "true" : "false"); }};
}

template <typename Value, typename Field>
Setting choice(std::string_view key, Field field,
               std::vector<std::pair<std::string_view, Value>> names, std::string_view help) {
  return {key, help,
          [=](Config& config, const std::string& value) {
            for (const auto& [name, choice] : names) {
              if (value == name) {
                field(config) = choice;
                return;
              }
            }
            std::string expected = "expected one of";
            for (const auto& entry : names) {
              expected.append(" ").append(entry.first);
            }
            fail(std::string(key), value, expected);
          },
          [=](const Config& config) {
            for (const auto& [name, choice] : names) {
              if (field(config) == choice) {
                return std::string(name);
              }
            }
            return std::string();
          }};
}

// A comma-separated list of origins, spaces around each allowed; empty for none.
std::vector<std::string> to_origins(const std::string& key, const std::string& value) {
  std::vector<std::string> origins;
  if (value.find_first_not_of(" \t") == std::string::npos) {
    return origins;
  }
  std::string_view rest = value;
  while (true) {
    const auto comma = rest.find(',');
    std::string_view origin = rest.substr(0, comma);
    while (!origin.empty() && (origin.front() == ' ' || origin.front() == '\t')) {
      origin.remove_prefix(1);
    }
    while (!origin.empty() && (origin.back() == ' ' || origin.back() == '\t')) {
      origin.remove_suffix(1);
    }
    if (!http::is_valid_cors_origin(origin)) {
      fail(key, value,
           "expected * or comma-separated origins such as https://app.example.com:8443, in "
           "lower case, without a path");
    }
    origins.emplace_back(origin);
    if (comma == std::string_view::npos) {
      return origins;
    }
    rest.remove_prefix(comma + 1);
  }
}

std::string join_origins(const std::vector<std::string>& origins) {
  std::string joined;
  for (const std::string& origin : origins) {
    joined += (joined.empty() ? "" : ",") + origin;
  }
  return joined;
}

std::string show_endpoint(const Endpoint& endpoint) {
  return (endpoint.host == "0.0.0.0" ? std::string() : endpoint.host) + ":" +
         std::to_string(endpoint.port);
}

const std::vector<Setting>& settings_table() {
  constexpr std::uint64_t k32 = std::numeric_limits<std::uint32_t>::max();
  constexpr std::uint64_t k64 = std::numeric_limits<std::uint64_t>::max();
  // clang-format off
  static const std::vector<Setting> table = {
    number("threads", [](auto& c) -> auto& { return c.threads; }, 0, 1024,
           "HTTP threads; 0 means one per usable CPU (affinity and cgroup quota)"),
    {"broker.host", "address or host name the API listens on",
     [](Config& c, const std::string& v) { c.api.host = to_address("broker.host", v); },
     [](const Config& c) { return c.api.host; }},
    number("broker.port", [](auto& c) -> auto& { return c.api.port; }, 0, 65535,
           "API port; 0 picks a free one"),
    number("broker.max-pending", [](auto& c) -> auto& { return c.broker.max_pending; }, 1, k64,
           "most messages stored, one per queue holding it"),
    number("broker.max-pending-bytes", [](auto& c) -> auto& { return c.broker.max_pending_bytes; },
           1, k64, "most message bytes stored, counted likewise"),
    number("broker.max-subject-length", [](auto& c) -> auto& { return c.broker.max_subject_length; },
           1, 65536, "longest subject in bytes"),
    number("broker.max-body-bytes", [](auto& c) -> auto& { return c.server.max_body_bytes; }, 64,
           k32, "largest request body in bytes"),
    number("broker.max-header-bytes", [](auto& c) -> auto& { return c.server.max_header_bytes; },
           512, 1024 * 1024, "largest request head in bytes"),
    number("broker.max-message-bytes", [](auto& c) -> auto& { return c.broker.max_message_bytes; },
           1, k32, "largest message data in bytes"),
    number("broker.max-connections", [](auto& c) -> auto& { return c.server.max_connections; }, 1,
           10'000'000, "open connections per listener; more get 503 and are closed"),
    number("broker.max-subscriptions", [](auto& c) -> auto& { return c.broker.max_subscriptions; },
           1, k32, "most subscriptions; more get 429"),
    number("broker.max-pending-per-queue",
           [](auto& c) -> auto& { return c.broker.max_pending_per_queue; }, 0, k64,
           "most messages one subscriber or group queue holds; 0 off"),
    choice<broker::SlowQueuePolicy>(
        "broker.slow-queue-policy", [](auto& c) -> auto& { return c.broker.slow_queue_policy; },
        {{"reject", broker::SlowQueuePolicy::reject},
         {"drop-oldest", broker::SlowQueuePolicy::drop_oldest}},
        "a full queue: reject the publish or drop-oldest"),
    number("broker.max-receiving-bytes",
           [](auto& c) -> auto& { return c.server.max_receiving_bytes; }, 1024, k64,
           "request bytes being received across all connections"),
    millis("broker.max-wait-ms", [](auto& c) -> auto& { return c.max_wait; }, k32,
           "longest wait_ms a fetch may ask for, in milliseconds"),
    duration("broker.subscriber-ttl", [](auto& c) -> auto& { return c.broker.subscriber_ttl; },
             false, "remove a subscription that has not fetched for this long; 0 never"),
    duration("broker.message-ttl", [](auto& c) -> auto& { return c.broker.message_ttl; }, false,
             "drop pending messages older than this; 0 never"),
    duration("broker.dedupe-window", [](auto& c) -> auto& { return c.broker.dedupe_window; },
             false, "a msg_id published to a subject again within this is a duplicate; 0 off"),
    number("broker.async-queue-size", [](auto& c) -> auto& { return c.async_queue_size; }, 1, k32,
           "async publishes waiting for the broker, at most"),
    number("broker.async-queue-bytes", [](auto& c) -> auto& { return c.async_queue_bytes; }, 1, k64,
           "message bytes in async publishes waiting, at most"),
    duration("broker.idle-timeout", [](auto& c) -> auto& { return c.server.idle_timeout; }, true,
             "close a connection that sends no complete request for this long"),
    duration("broker.header-timeout", [](auto& c) -> auto& { return c.server.header_timeout; },
             true, "longest time to receive a request's head once it has begun"),
    duration("broker.read-timeout", [](auto& c) -> auto& { return c.server.read_timeout; }, true,
             "longest time to receive one whole request once it has begun"),
    duration("broker.write-timeout", [](auto& c) -> auto& { return c.server.write_timeout; }, true,
             "longest time to send one response"),
    duration("broker.shutdown-timeout", [](auto& c) -> auto& { return c.shutdown_timeout; }, false,
             "longest wait for requests in flight on shutdown"),
    duration("broker.stream-heartbeat", [](auto& c) -> auto& { return c.stream_heartbeat; }, true,
             "how often an event stream sends a comment line, busy or not"),
    {"http.cors-origins", "origins (scheme://host[:port], comma-separated, or *) browsers may "
     "call the API from; empty: no CORS headers",
     [](Config& c, const std::string& v) { c.cors_origins = to_origins("http.cors-origins", v); },
     [](const Config& c) { return join_origins(c.cors_origins); }},
    flag("http.console", [](auto& c) -> auto& { return c.console; },
         "serve the built-in web console at GET /"),
    {"storage.dir", "directory of the write-ahead log; empty keeps everything in memory only",
     [](Config& c, const std::string& v) { c.storage.dir = v; },
     [](const Config& c) { return c.storage.dir; }},
    choice<storage::FsyncMode>(
        "storage.fsync", [](auto& c) -> auto& { return c.storage.fsync; },
        {{"always", storage::FsyncMode::always}, {"interval", storage::FsyncMode::interval},
         {"never", storage::FsyncMode::never}},
        "when the log reaches the disk: always (before answering), interval or never"),
    duration("storage.fsync-interval", [](auto& c) -> auto& { return c.storage.fsync_interval; },
             true, "how often the log is synced with storage.fsync=interval"),
    number("storage.max-bytes", [](auto& c) -> auto& { return c.storage.max_bytes; },
           2 * kMinFileBytes, k64, "most bytes the log takes on disk; publishes beyond get 507"),
    number("storage.file-bytes", [](auto& c) -> auto& { return c.storage.file_bytes; },
           kMinFileBytes, k32,
           "size of one log file, reserved when it is created; unset: 64 MiB or a quarter of "
           "storage.max-bytes, whichever is smaller"),
    {"tls.cert-file", "PEM certificate (and chain) of the API port; with tls.key-file turns on TLS",
     [](Config& c, const std::string& v) { c.tls.cert_file = v; },
     [](const Config& c) { return c.tls.cert_file; }},
    {"tls.key-file", "PEM private key of tls.cert-file",
     [](Config& c, const std::string& v) { c.tls.key_file = v; },
     [](const Config& c) { return c.tls.key_file; }},
    {"tls.client-ca-file", "PEM CA certificates; set: clients must show a certificate they signed",
     [](Config& c, const std::string& v) { c.tls.client_ca_file = v; },
     [](const Config& c) { return c.tls.client_ca_file; }},
    flag("monitoring.enable", [](auto& c) -> auto& { return c.monitoring_enable; },
         "serve Prometheus metrics"),
    {"monitoring.port", "metrics port as 9001, :9001 or host:9001",
     [](Config& c, const std::string& v) {
       c.monitoring = to_endpoint("monitoring.port", v, c.monitoring.host);
     },
     [](const Config& c) { return show_endpoint(c.monitoring); }},
    {"monitoring.token", "bearer token /metrics requires (Authorization: Bearer ...); empty: none",
     [](Config& c, const std::string& v) {
       // The message never repeats the value: it is a secret.
       if (!std::ranges::all_of(v, [](char ch) { return ch > ' ' && ch < '\x7f'; })) {
         throw ConfigError("monitoring.token: only visible ASCII characters, no spaces");
       }
       c.monitoring_token = v;
     },
     [](const Config& c) { return c.monitoring_token; }},
    {"auth.file", "file of API tokens and their permissions (NAME SHA256-HEX PERMISSION... per "
     "line); empty: no access control",
     [](Config& c, const std::string& v) { c.auth_file = v; },
     [](const Config& c) { return c.auth_file; }},
    flag("monitoring.tls", [](auto& c) -> auto& { return c.monitoring_tls; },
         "serve the metrics port over TLS with the tls.* files"),
    choice<LogLevel>("logger.level", [](auto& c) -> auto& { return c.log_level; },
                     {{"debug", LogLevel::debug}, {"info", LogLevel::info},
                      {"warn", LogLevel::warn}, {"warning", LogLevel::warn},
                      {"error", LogLevel::error}},
                     "debug, info, warn or error"),
  };
  // clang-format on
  return table;
}

po::options_description describe_options() {
  constexpr unsigned kLineLength = 100;
  po::options_description options(
      "Options (command line --key=value, config file section: {key: value}, "
      "environment GOPHERMQ_SECTION_KEY)",
      kLineLength);
  options.add_options()("help,h", "print this help and exit")("version",
                                                              "print the version and exit")(
      "config", po::value<std::string>(),
      "YAML config file to read (default config.yaml in the working directory, when there)");
  const Config defaults;
  for (const Setting& setting : settings_table()) {
    const std::string help =
        std::string(setting.help) + " (default " + setting.show(defaults) + ")";
    options.add_options()(std::string(setting.key).c_str(), po::value<std::string>(), help.c_str());
  }
  return options;
}

Config build(const Settings& settings) {
  Config config;
  for (const Setting& setting : settings_table()) {
    const auto found = settings.find(std::string(setting.key));
    if (found == settings.end()) {
      continue;
    }
    try {
      setting.parse(config, found->second.value);
    } catch (const ConfigError& error) {
      if (found->second.origin.empty()) {
        throw;
      }
      throw ConfigError(found->second.origin + ": " + error.what());
    }
  }
  return config;
}

std::string help_text(const po::options_description& options) {
  std::ostringstream text;
  text
      << "Usage: gophermq broker [options]\n"
         "       gophermq token NAME [PERMISSION...]\n"
         "       gophermq --version\n\n"
         "Runs the GopherMQ HTTP message broker.\n\n"
      << options
      << "\nEvery key is set, weakest first, by its default, the config file, the environment and\n"
         "the command line (--key=value or --key value; no abbreviations, each key once).\n"
         "Environment: GOPHERMQ_ + the key upper-cased, `.` as `_` and `-` as `__`:\n"
         "  broker.max-pending -> GOPHERMQ_BROKER_MAX__PENDING=1000\n"
         "Config file (YAML; config.yaml in the working directory unless --config names one):\n"
         "each `.` in a key is one level of nesting:\n"
         "  broker:\n"
         "    max-pending: 1000\n"
         "  monitoring:\n"
         "    port: \":9001\"\n";
  return text.str();
}

// The files themselves are read when the daemon starts; here only whether they go together.
void check_tls(const Config& config) {
  const http::TlsFiles& tls = config.tls;
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    throw ConfigError("tls.cert-file and tls.key-file must be set together");
  }
  if (!tls.enabled() && !tls.client_ca_file.empty()) {
    throw ConfigError("tls.client-ca-file needs tls.cert-file and tls.key-file");
  }
  if (!tls.enabled() && config.monitoring_tls) {
    throw ConfigError("monitoring.tls needs tls.cert-file and tls.key-file");
  }
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

std::vector<std::pair<std::string, std::string>> settings_of(const Config& config) {
  std::vector<std::pair<std::string, std::string>> settings;
  for (const Setting& setting : settings_table()) {
    settings.emplace_back(setting.key, setting.show(config));
  }
  return settings;
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
  merge_weaker(settings, command_line, "on the command line", false);
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
  merge_weaker(settings, parse_environment(options, environment), "in the environment", true);
  // Like the original, config.yaml in the working directory is read when it is there.
  std::optional<std::string> file;
  if (const auto path = settings.find("config"); path != settings.end()) {
    file = path->second.value;
  } else if (std::error_code ignored; std::filesystem::exists(
                 std::filesystem::symlink_status(kDefaultConfigFile, ignored))) {
    file = kDefaultConfigFile;
  }
  if (file) {
    merge_weaker(settings, parse_file(options, *file), "in config file " + *file, true);
    invocation.config_file = *file;
  }
  invocation.config = build(settings);
  storage::Options& storage = invocation.config.storage;
  if (!settings.contains("storage.file-bytes")) {
    // The file size is ours, not the contract's: a storage.max-bytes set alone, however small,
    // sizes the files to fit four under it instead of refusing to start.
    storage.file_bytes =
        std::min(storage.file_bytes,
                 std::max<std::uint64_t>(kMinFileBytes,
                                         storage.max_bytes / 4 / kMinFileBytes * kMinFileBytes));
  }
  if (storage.max_bytes < 3 * storage.file_bytes) {
    // One file is written while the next is reserved, and compaction needs a third for the
    // checkpoint that lets the full one go: with two, a full log could never be compacted.
    throw ConfigError("storage.max-bytes must be at least three times storage.file-bytes");
  }
  check_tls(invocation.config);
  return invocation;
}

}  // namespace gophermq::config
