#include "config/config.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <map>

#include "support/temp_files.hpp"

namespace gophermq::config {
namespace {

Config load_config(std::vector<std::string> arguments, std::vector<std::string> environment = {}) {
  arguments.insert(arguments.begin(), "broker");
  return load(arguments, environment).config;
}

void expect_error(std::vector<std::string> arguments, std::vector<std::string> environment,
                  const std::string& expected) {
  try {
    load(arguments, environment);
    FAIL() << "no error, expected: " << expected;
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find(expected), std::string::npos) << error.what();
  }
}

TEST(Config, DefaultsMatchTheOriginal) {
  const Config config = load_config({});
  EXPECT_EQ(config.api.port, 8082);
  EXPECT_EQ(config.monitoring.port, 9001);
  EXPECT_TRUE(config.monitoring_enable);
  EXPECT_EQ(config.broker.max_pending, 1'000'000U);
  EXPECT_EQ(config.broker.max_pending_bytes, 512ULL * 1024 * 1024);
  EXPECT_EQ(config.server.max_body_bytes, 1024U * 1024);
  EXPECT_EQ(config.async_queue_size, 65'536U);
  EXPECT_EQ(config.log_level, LogLevel::info);
}

TEST(Config, EveryDefaultReadsBackAsItselfAndIsInTheHelp) {
  const auto defaults = settings_of(Config{});
  // The help wraps its lines; words matter, not where the breaks fall.
  std::string help;
  for (const char c : load({"--help"}, {}).help_text) {
    const bool space = std::isspace(static_cast<unsigned char>(c)) != 0;
    if (!space || (!help.empty() && help.back() != ' ')) {
      help.push_back(space ? ' ' : c);
    }
  }
  for (const auto& [key, value] : defaults) {
    // An empty value (storage.dir) goes as its own argument: `--key=` is refused as a typo.
    const auto arguments = value.empty() ? std::vector<std::string>{"--" + key, value}
                                         : std::vector<std::string>{"--" + key + "=" + value};
    EXPECT_EQ(settings_of(load_config(arguments)), defaults) << key;
    const auto line = help.find("--" + key + " ");
    ASSERT_NE(line, std::string::npos) << key;
    EXPECT_EQ(help.find("(default " + value + ")", line), help.find("(default ", line)) << key;
  }
}

TEST(Config, CorsOriginsAreTrimmedAndEachMustBeAnOrigin) {
  EXPECT_TRUE(load_config({}).cors_origins.empty());
  EXPECT_EQ(
      load_config({"--http.cors-origins= https://a.example , http://[::1]:8080"}).cors_origins,
      (std::vector<std::string>{"https://a.example", "http://[::1]:8080"}));
  EXPECT_EQ(load_config({}, {"GOPHERMQ_HTTP_CORS__ORIGINS=*"}).cors_origins,
            std::vector<std::string>{"*"});
  EXPECT_TRUE(load_config({"--http.cors-origins", " "}).cors_origins.empty());
  for (const std::string bad : {"a.example", "https://a.example/", "https://a.example,",
                                "https://A.example", "https://", "://a", "https://a b"}) {
    expect_error({"broker", "--http.cors-origins=" + bad}, {}, "http.cors-origins");
  }
}

TEST(Config, AccessControlKeysAreOffByDefaultAndTheTokenIsNeverRepeated) {
  EXPECT_TRUE(load_config({}).auth_file.empty());
  EXPECT_TRUE(load_config({}).monitoring_token.empty());
  EXPECT_EQ(load_config({}, {"GOPHERMQ_AUTH_FILE=/etc/gophermq/tokens"}).auth_file,
            "/etc/gophermq/tokens");
  EXPECT_EQ(load_config({}, {"GOPHERMQ_MONITORING_TOKEN=s3cret"}).monitoring_token, "s3cret");
  for (const std::string bad : {"has space", "tab\tbed", "new\nline", "caf\xc3\xa9"}) {
    try {
      load_config({"--monitoring.token=" + bad});
      ADD_FAILURE() << "accepted " << bad;
    } catch (const ConfigError& error) {
      const std::string what = error.what();
      EXPECT_NE(what.find("monitoring.token"), std::string::npos) << what;
      EXPECT_EQ(what.find(bad), std::string::npos) << what;
    }
  }
}

TEST(Config, ConsoleIsOnUnlessTurnedOff) {
  EXPECT_TRUE(load_config({}).console);
  EXPECT_FALSE(load_config({"--http.console=false"}).console);
  EXPECT_FALSE(load_config({}, {"GOPHERMQ_HTTP_CONSOLE=false"}).console);
  expect_error({"broker", "--http.console=maybe"}, {}, "http.console");
}

TEST(Config, StreamHeartbeatIsAPositiveDuration) {
  EXPECT_EQ(load_config({}).stream_heartbeat, std::chrono::seconds(15));
  EXPECT_EQ(load_config({"--broker.stream-heartbeat=250ms"}).stream_heartbeat,
            std::chrono::milliseconds(250));
  expect_error({"broker", "--broker.stream-heartbeat=0"}, {}, "broker.stream-heartbeat");
}

TEST(Config, EveryKeyStoresIntoItsOwnField) {
  const std::map<std::string, std::string> samples = {
      {"threads", "3"},
      {"broker.host", "127.0.0.2"},
      {"broker.port", "1234"},
      {"broker.max-pending", "11"},
      {"broker.max-pending-bytes", "12"},
      {"broker.max-subject-length", "13"},
      {"broker.max-body-bytes", "1400"},
      {"broker.max-header-bytes", "1500"},
      {"broker.max-message-bytes", "16"},
      {"broker.max-connections", "17"},
      {"broker.max-subscriptions", "18"},
      {"broker.max-pending-per-queue", "19"},
      {"broker.slow-queue-policy", "drop-oldest"},
      {"broker.max-receiving-bytes", "2000"},
      {"broker.max-wait-ms", "21"},
      {"broker.subscriber-ttl", "22s"},
      {"broker.message-ttl", "23s"},
      {"broker.dedupe-window", "45s"},
      {"broker.async-queue-size", "24"},
      {"broker.async-queue-bytes", "25"},
      {"broker.idle-timeout", "26s"},
      {"broker.header-timeout", "27s"},
      {"broker.read-timeout", "28s"},
      {"broker.write-timeout", "29s"},
      {"broker.shutdown-timeout", "30ms"},
      {"storage.dir", "/var/lib/x"},
      {"storage.fsync", "never"},
      {"storage.fsync-interval", "31ms"},
      {"storage.max-bytes", "900000000"},
      {"storage.file-bytes", "32000"},
      {"monitoring.enable", "false"},
      {"monitoring.port", "127.0.0.3:31"},
      {"logger.level", "error"},
      {"broker.stream-heartbeat", "33s"},
      {"http.cors-origins", "https://a.example,http://b.example:8080"},
      {"http.console", "false"},
      {"monitoring.token", "s3cret-token"},
      {"auth.file", "/etc/gophermq/tokens"},
      {"tls.cert-file", "/etc/c.pem"},
      {"tls.key-file", "/etc/k.pem"},
      {"tls.client-ca-file", "/etc/ca.pem"},
      {"monitoring.tls", "true"},
  };
  // Keys valid only with others set: each is loaded with these as well.
  const std::vector<std::pair<std::string, std::string>> tls_files = {{"tls.cert-file", "/c.pem"},
                                                                      {"tls.key-file", "/k.pem"}};
  const auto defaults = settings_of(Config{});
  ASSERT_EQ(defaults.size(), samples.size());
  for (const auto& sample : samples) {
    const auto& [key, value] = sample;
    auto expected = defaults;
    const auto entry = std::find_if(expected.begin(), expected.end(), [&](const auto& setting) {
      return setting.first == sample.first;
    });
    ASSERT_NE(entry, expected.end()) << key;
    ASSERT_NE(entry->second, value) << key;
    std::vector<std::string> arguments;
    if (key.starts_with("tls.") || key == "monitoring.tls") {
      for (const auto& tls_file : tls_files) {
        if (tls_file.first == key) {
          continue;
        }
        arguments.push_back("--" + tls_file.first + "=" + tls_file.second);
        std::find_if(expected.begin(), expected.end(), [&](const auto& setting) {
          return setting.first == tls_file.first;
        })->second = tls_file.second;
      }
    }
    entry->second = value;
    arguments.push_back("--" + key + "=" + value);
    EXPECT_EQ(settings_of(load_config(arguments)), expected) << key;
  }
  EXPECT_EQ(load_config({"--broker.slow-queue-policy=drop-oldest"}).broker.slow_queue_policy,
            broker::SlowQueuePolicy::drop_oldest);
  EXPECT_EQ(load_config({"--broker.shutdown-timeout=30ms"}).shutdown_timeout,
            std::chrono::milliseconds(30));
  EXPECT_EQ(load_config({"--logger.level=warning"}).log_level, LogLevel::warn);
  EXPECT_EQ(load_config({"--broker.dedupe-window=0"}).broker.dedupe_window,
            std::chrono::milliseconds(0));
}

TEST(Config, CommandLineBeatsEnvironmentBeatsFileBeatsDefaults) {
  const test::TempFile file(
      "broker:\n  port: 1111\n  max-pending: 5\n  max-pending-bytes: 77\nlogger:\n  level: warn\n");
  const Config config =
      load_config({"--config", file.path(), "--broker.port=3333"},
                  {"GOPHERMQ_BROKER_PORT=2222", "GOPHERMQ_BROKER_MAX__PENDING=6", "PATH=/bin"});
  EXPECT_EQ(config.api.port, 3333);
  EXPECT_EQ(config.broker.max_pending, 6U);
  EXPECT_EQ(config.broker.max_pending_bytes, 77U);
  EXPECT_EQ(config.log_level, LogLevel::warn);
}

TEST(Config, MonitoringPortTakesEitherForm) {
  EXPECT_EQ(load_config({"--monitoring.port=:9100"}).monitoring.port, 9100);
  EXPECT_EQ(load_config({"--monitoring.port=9101"}).monitoring.port, 9101);
  const Config bound = load_config({"--monitoring.port=127.0.0.1:9102"});
  EXPECT_EQ(bound.monitoring.host, "127.0.0.1");
  EXPECT_EQ(bound.monitoring.port, 9102);
  EXPECT_FALSE(load_config({"--monitoring.enable=false"}).monitoring_enable);
}

TEST(Config, DurationsTakeGoFractionsAndUnits) {
  using std::chrono::milliseconds;
  EXPECT_EQ(parse_duration("1.5h"), milliseconds(5'400'000));
  EXPECT_EQ(parse_duration("2.5s"), milliseconds(2'500));
  EXPECT_EQ(parse_duration(".5s"), milliseconds(500));
  EXPECT_EQ(parse_duration("1.s"), milliseconds(1'000));
  EXPECT_EQ(parse_duration("1h0.5m"), milliseconds(3'630'000));
  EXPECT_EQ(parse_duration("0.1h"), milliseconds(360'000));
  EXPECT_EQ(parse_duration("1.0000000000000000000000001s"), milliseconds(1'000));
  EXPECT_EQ(parse_duration("+5s"), milliseconds(5'000));
  EXPECT_EQ(parse_duration("-1s"), milliseconds(-1'000));
  EXPECT_EQ(parse_duration("-0"), milliseconds(0));
  EXPECT_EQ(parse_duration("+0"), milliseconds(0));
  EXPECT_EQ(parse_duration("0s"), milliseconds(0));
  EXPECT_EQ(parse_duration("1s500ms"), milliseconds(1'500));
  EXPECT_EQ(parse_duration("2000000us"), milliseconds(2'000));
  EXPECT_EQ(parse_duration("3000\u00b5s"), milliseconds(3));
  EXPECT_EQ(parse_duration("4000\u03bcs"), milliseconds(4));
  EXPECT_EQ(parse_duration("5000000ns"), milliseconds(5));
  // Sub-millisecond parts round up: a positive duration never becomes 0.
  EXPECT_EQ(parse_duration("1ns"), milliseconds(1));
  EXPECT_EQ(parse_duration("1.5ms"), milliseconds(2));
  EXPECT_EQ(parse_duration("1ms1ns"), milliseconds(2));
  EXPECT_EQ(parse_duration("0.0001s"), milliseconds(1));
  for (const char* bad :
       {"",      "+",    "-",     ".",     ".s",    "-.s",  "1",      "00", "1e3s",
        "1..5s", "1.5",  "1s.",   "s",     "5 s",   " 5s",  "5s ",    "1x", "1S",
        "1H",    "1sec", "0x10s", "1s-1s", "1s+1s", "--1s", "\u00b5s"}) {
    EXPECT_FALSE(parse_duration(bad)) << '"' << bad << '"';
  }
}

TEST(Config, DurationsUpToTheMillisecondLimitAndNoFurther) {
  using std::chrono::milliseconds;
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  EXPECT_EQ(parse_duration("2562048h"), std::chrono::hours(2'562'048));
  EXPECT_EQ(parse_duration("9223372036854775807ms"), milliseconds(kMax));
  EXPECT_EQ(parse_duration("9223372036854775.807s"), milliseconds(kMax));
  EXPECT_EQ(parse_duration("9223372036854775806ms999999ns"), milliseconds(kMax));
  EXPECT_EQ(parse_duration("2562047788015h"), std::chrono::hours(2'562'047'788'015));
  EXPECT_FALSE(parse_duration("9223372036854775808ms"));
  EXPECT_FALSE(parse_duration("9223372036854775807ms1ns"));
  EXPECT_FALSE(parse_duration("2562047788016h"));
  EXPECT_FALSE(parse_duration("99999999999999999999999999999999999999999h"));
  EXPECT_FALSE(parse_duration("2562047788015h2562047788015h"));
  EXPECT_EQ(load_config({"--broker.message-ttl=2562048h"}).broker.message_ttl,
            std::chrono::hours(2'562'048));
  EXPECT_EQ(load_config({"--broker.subscriber-ttl=1.5h"}).broker.subscriber_ttl,
            std::chrono::minutes(90));
  expect_error({"broker", "--broker.message-ttl=2562047788016h"}, {}, "broker.message-ttl");
  expect_error({"broker", "--broker.subscriber-ttl=-1s"}, {}, "broker.subscriber-ttl");
  expect_error({"broker", "--broker.write-timeout=-0.5s"}, {}, "broker.write-timeout");
}

TEST(Config, DurationsReadLikeGo) {
  EXPECT_EQ(parse_duration("1h30m"), std::chrono::minutes(90));
  EXPECT_EQ(parse_duration("250ms"), std::chrono::milliseconds(250));
  EXPECT_EQ(parse_duration("0"), std::chrono::milliseconds(0));
  EXPECT_FALSE(parse_duration("10"));
  EXPECT_FALSE(parse_duration("s"));
  EXPECT_FALSE(parse_duration("5 s"));
  EXPECT_EQ(load_config({"--broker.idle-timeout=2s"}).server.idle_timeout, std::chrono::seconds(2));
  EXPECT_EQ(load_config({"--broker.header-timeout=500ms"}).server.header_timeout,
            std::chrono::milliseconds(500));
}

TEST(Config, BadValuesNameTheKey) {
  expect_error({"broker", "--broker.port=abc"}, {}, "'abc' for broker.port");
  expect_error({"broker", "--broker.port=70000"}, {}, "broker.port");
  expect_error({"broker"}, {"GOPHERMQ_BROKER_MAX__PENDING=-1"}, "broker.max-pending");
  expect_error({"broker", "--monitoring.enable=maybe"}, {}, "monitoring.enable");
  expect_error({"broker", "--logger.level=loud"}, {}, "logger.level");
  expect_error({"broker", "--broker.idle-timeout=0"}, {}, "broker.idle-timeout");
  expect_error({"broker", "--broker.max-wait-ms=-5"}, {}, "broker.max-wait-ms");
  expect_error({"broker", "--broker.subscriber-ttl=soon"}, {}, "broker.subscriber-ttl");
  expect_error({"broker"}, {"GOPHERMQ_BROKER_MESSAGE__TTL=1x"}, "broker.message-ttl");
  expect_error({"broker", "--broker.max-message-bytes=0"}, {}, "broker.max-message-bytes");
  expect_error({"broker", "--broker.max-connections=lots"}, {}, "broker.max-connections");
  expect_error({"broker", "--broker.header-timeout=0"}, {}, "broker.header-timeout");
  expect_error({"broker", "--no-such-flag=1"}, {}, "no-such-flag");
  expect_error({"broker"}, {"GOPHERMQ_BROKER_NOPE=1"}, "GOPHERMQ_BROKER_NOPE");
  expect_error({"broker", "--config=/nonexistent/gophermq.conf"}, {}, "/nonexistent/gophermq.conf");
  expect_error({"frobnicate"}, {}, "unknown command 'frobnicate'");
  expect_error({}, {}, "missing command");
}

TEST(Config, EnvironmentNamesThatMapToNoKeyAreRefusedByName) {
  for (const std::string name :
       {"GOPHERMQ_", "GOPHERMQ__", "GOPHERMQ_BROKER", "GOPHERMQ_broker_port",
        "GOPHERMQ_BROKER__PORT", "GOPHERMQ_BROKER___PORT", "GOPHERMQ_BROKER_PORT_", "GOPHERMQ_HELP",
        "GOPHERMQ_VERSION", "GOPHERMQ_BROKER_MAX_PENDING", "GOPHERMQ_THR"}) {
    expect_error({"broker"}, {name + "=1"}, "unknown setting " + name + " ");
  }
  EXPECT_EQ(load_config({}, {"GOPHERMQ_BROKER_MAX__PENDING=7"}).broker.max_pending, 7U);
}

TEST(Config, AbbreviationsAreUnknownOptions) {
  expect_error({"broker", "--thr=2"}, {}, "--thr");
  expect_error({"broker", "--broker.max-pend=2"}, {}, "--broker.max-pend");
  expect_error({"broker", "--conf", "x"}, {}, "--conf");
  expect_error({"--hel"}, {}, "--hel");
}

TEST(Config, AKeyGivenTwiceInOneSourceIsRefused) {
  expect_error({"broker", "--threads=1", "--threads=2"}, {}, "threads is given twice");
  expect_error({"broker", "--broker.port", "1", "--broker.port=1"}, {},
               "broker.port is given twice");
  const test::TempFile file("broker:\n  port: 1\n  port: 2\n");
  expect_error({"broker", "--config", file.path()}, {}, "line 3: broker.port is given twice");
  const test::TempFile twice("broker:\n  port: 1\nbroker.port: 2\n");
  expect_error({"broker", "--config", twice.path()}, {}, "line 3: broker.port is given twice");
  EXPECT_EQ(load_config({"--broker.port=5"}, {"GOPHERMQ_BROKER_PORT=6"}).api.port, 5);
}

// Aliases can repeat a map exponentially often; the walk must not follow them past the table.
TEST(Config, YamlAliasBombIsRefusedAtOnce) {
  std::string text = "a0: &a0 {}\n";
  for (int level = 1; level < 40; ++level) {
    const std::string previous = "*a" + std::to_string(level - 1);
    text += "a" + std::to_string(level) + ": &a" + std::to_string(level) + " {x: " + previous +
            ", y: " + previous + "}\n";
  }
  const test::TempFile file(text);
  expect_error({"broker", "--config", file.path()}, {}, "unknown key a0");
}

TEST(Config, ConfigFileThatCannotBeReadIsNamed) {
  expect_error({"broker", "--config=/dev/zero"}, {}, "/dev/zero is not a regular file");
  expect_error({"broker", "--config", ""}, {}, "cannot read config file ");
  const test::TempFile large(std::string(1024 * 1024 + 1, '#'));
  expect_error({"broker", "--config", large.path()}, {}, "larger than 1 MiB");
  const test::TempFile limit("#" + std::string(1024 * 1024 - 2, ' ') + "\n");
  EXPECT_EQ(load_config({"--config", limit.path()}).api.port, 8082);
  expect_error({"broker", "--config=/tmp"}, {}, "/tmp is a directory");
  expect_error({"broker", "--config=/nonexistent/x.conf"}, {}, "/nonexistent/x.conf");
  expect_error({"broker"}, {"GOPHERMQ_CONFIG=/"}, "/ is a directory");
}

TEST(Config, StrayArgumentsAreNamed) {
  expect_error({"broker", "extra"}, {}, "unexpected argument 'extra'");
  expect_error({"broker", "--threads=1", "broker"}, {}, "unexpected argument 'broker'");
  expect_error({"broker", "--", "--threads=1"}, {}, "unexpected argument '--threads=1'");
}

TEST(Config, HostNamesAreResolvedOrRefusedByKey) {
  EXPECT_EQ(load_config({"--broker.host=localhost"}).api.host, "127.0.0.1");
  EXPECT_EQ(load_config({"--broker.host=::1"}).api.host, "::1");
  EXPECT_EQ(load_config({"--monitoring.port=localhost:9100"}).monitoring.host, "127.0.0.1");
  EXPECT_EQ(load_config({"--monitoring.port=[::1]:9100"}).monitoring.host, "::1");
  expect_error({"broker", "--broker.host=no-such-host.invalid"}, {}, "for broker.host");
  expect_error({"broker"}, {"GOPHERMQ_BROKER_HOST="}, "for broker.host");
  expect_error({"broker", "--monitoring.port=no-such-host.invalid:9100"}, {},
               "for monitoring.port");
}

TEST(Config, BadValueInTheFileNamesTheKey) {
  const test::TempFile file("broker:\n  max-pending: lots\n");
  expect_error({"broker", "--config", file.path()}, {}, "'lots' for broker.max-pending");
}

TEST(Config, YamlNestedMapsAreDottedKeysOfAnyScalarType) {
  const test::TempFile file(
      "# comment\nbroker:\n  port: 8083\n  max-pending: 10\n  subscriber-ttl: 1.5h\n"
      "  slow-queue-policy: \"drop-oldest\"\n  host: '127.0.0.1'\nmonitoring:\n"
      "  enable: false\n  port: \":9100\"\nlogger: {level: debug}\nbroker.max-wait-ms: 5\n");
  const Config config = load_config({"--config=" + file.path()});
  EXPECT_EQ(config.api.port, 8083);
  EXPECT_EQ(config.api.host, "127.0.0.1");
  EXPECT_EQ(config.broker.max_pending, 10U);
  EXPECT_EQ(config.broker.subscriber_ttl, std::chrono::minutes(90));
  EXPECT_EQ(config.broker.slow_queue_policy, broker::SlowQueuePolicy::drop_oldest);
  EXPECT_FALSE(config.monitoring_enable);
  EXPECT_EQ(config.monitoring.port, 9100);
  EXPECT_EQ(config.log_level, LogLevel::debug);
  EXPECT_EQ(config.max_wait, std::chrono::milliseconds(5));
  for (const char* empty : {"", "# nothing set\n", "---\n", "broker:\n  # port: 1\nlogger: {}\n"}) {
    const test::TempFile file_without_values(empty);
    EXPECT_EQ(settings_of(load_config({"--config=" + file_without_values.path()})),
              settings_of(Config{}))
        << empty;
  }
}

TEST(Config, YamlMistakesNameTheFileTheKeyAndTheLine) {
  const auto expect_file_error = [](const std::string& text, const std::string& expected) {
    const test::TempFile file(text);
    expect_error({"broker", "--config", file.path()}, {}, "config file " + file.path() + " line ");
    expect_error({"broker", "--config", file.path()}, {}, expected);
  };
  expect_file_error("broker:\n  nope: 1\n", "line 2: unknown key broker.nope");
  expect_file_error("brokers:\n  port: 1\n", "unknown key brokers");
  expect_file_error("broker: 1\n", "unknown key broker");
  expect_file_error("broker:\n  port:\n    value: 1\n", "broker.port takes one value, not a map");
  expect_file_error("broker:\n  port: {}\n", "broker.port takes one value, not a map");
  expect_file_error("broker: [port]\n", "unknown key broker");
  expect_file_error("broker:\n  port: 1\n---\nbroker:\n  port: 2\n",
                    "line 4: expected one YAML document, not 2");
  expect_file_error("<<: {broker: {port: 1}}\n", "unknown key <<");
  expect_file_error(std::string(100'000, '[') + "\n", "line ");
  expect_file_error("a: " + std::string(100'000, '{') + "\n", "line ");
  expect_file_error("config: other.yaml\n", "unknown key config");
  expect_file_error("help: true\n", "unknown key help");
  expect_file_error("broker:\n  port: [1, 2]\n", "broker.port takes one value, not a list");
  expect_file_error("broker:\n  port:\n", "broker.port has no value");
  expect_file_error("broker:\n  port: 1\n bad indent: 2\n", "line ");
  expect_file_error("broker: {port: 1\n", "line ");
  expect_file_error("- broker\n", "line 1: expected a map");
  expect_file_error("just text\n", "line 1: expected a map");
  expect_file_error("? [a, b]\n: 1\n", "a key must be a plain name");
}

// The original reads config.yaml from its working directory; so do we, and only --config replaces
// it.
TEST(Config, ConfigYamlInTheWorkingDirectoryIsReadWhenPresent) {
  const test::TempWorkingDirectory directory;
  EXPECT_EQ(load({"broker"}, {}).config_file, "");
  directory.write("config.yaml", "broker:\n  max-pending: 9\n");
  const Invocation invocation = load({"broker"}, {});
  EXPECT_EQ(invocation.config.broker.max_pending, 9U);
  EXPECT_EQ(invocation.config_file, "config.yaml");
  const test::TempFile other("broker:\n  max-pending: 8\n");
  EXPECT_EQ(load_config({"--config", other.path()}).broker.max_pending, 8U);
  EXPECT_EQ(load_config({}, {"GOPHERMQ_CONFIG=" + other.path()}).broker.max_pending, 8U);
  directory.write("config.yaml", "broker:\n  nope: 1\n");
  expect_error({"broker"}, {}, "config file config.yaml line 2: unknown key broker.nope");
}

TEST(Config, AStorageMaxBytesAloneSizesTheFilesToFitFourUnderIt) {
  constexpr std::uint64_t kDefaultFile = 64ULL * 1024 * 1024;
  EXPECT_EQ(load_config({}).storage.file_bytes, kDefaultFile);
  EXPECT_EQ(load_config({"--storage.max-bytes", "1048576"}).storage.file_bytes, 262144U);
  EXPECT_EQ(load_config({}, {"GOPHERMQ_STORAGE_MAX__BYTES=1048576"}).storage.file_bytes, 262144U);
  // Whole pages, and never below one: the smallest max-bytes holds three.
  EXPECT_EQ(load_config({"--storage.max-bytes", "100000"}).storage.file_bytes, 24576U);
  EXPECT_EQ(load_config({"--storage.max-bytes", "12288"}).storage.file_bytes, 4096U);
  expect_error({"broker", "--storage.max-bytes", "8192"}, {},
               "storage.max-bytes must be at least three times storage.file-bytes");
  EXPECT_EQ(load_config({"--storage.max-bytes", "1099511627776"}).storage.file_bytes, kDefaultFile);
  // Given, the file size is kept, and a max-bytes too small for three of them is an error.
  EXPECT_EQ(load_config({"--storage.max-bytes", "1048576", "--storage.file-bytes", "8192"})
                .storage.file_bytes,
            8192U);
  expect_error({"broker", "--storage.max-bytes", "2097152", "--storage.file-bytes", "1048576"}, {},
               "storage.max-bytes must be at least three times storage.file-bytes");
}

TEST(Config, TlsFilesGoTogether) {
  EXPECT_FALSE(load_config({}).tls.enabled());
  const Config tls = load_config({"--tls.cert-file", "c.pem", "--tls.key-file", "k.pem",
                                  "--tls.client-ca-file", "ca.pem", "--monitoring.tls", "true"});
  EXPECT_TRUE(tls.tls.enabled());
  EXPECT_EQ(tls.tls.client_ca_file, "ca.pem");
  EXPECT_TRUE(tls.monitoring_tls);
  const Config from_environment =
      load_config({}, {"GOPHERMQ_TLS_CERT__FILE=c.pem", "GOPHERMQ_TLS_KEY__FILE=k.pem"});
  EXPECT_EQ(from_environment.tls.key_file, "k.pem");

  expect_error({"broker", "--tls.cert-file", "c.pem"}, {}, "must be set together");
  expect_error({"broker", "--tls.key-file", "k.pem"}, {}, "must be set together");
  expect_error({"broker"}, {"GOPHERMQ_TLS_KEY__FILE=k.pem"}, "must be set together");
  expect_error({"broker", "--tls.client-ca-file", "ca.pem"}, {}, "tls.client-ca-file needs");
  expect_error({"broker", "--monitoring.tls", "true"}, {}, "monitoring.tls needs");
}

TEST(Config, HelpAndVersionNeedNoCommand) {
  EXPECT_EQ(load({"--help"}, {}).command, Command::show_help);
  EXPECT_EQ(load({"broker", "--help"}, {}).command, Command::show_help);
  EXPECT_EQ(load({"--version"}, {}).command, Command::show_version);
  const std::string help = load({"--help"}, {}).help_text;
  EXPECT_NE(help.find("broker.max-pending"), std::string::npos);
  EXPECT_NE(help.find("GOPHERMQ_BROKER_MAX__PENDING"), std::string::npos);
  EXPECT_NE(help.find("`-` as `__`"), std::string::npos);
  EXPECT_NE(help.find("config.yaml"), std::string::npos);
  EXPECT_NE(help.find("broker:\n    max-pending: 1000\n"), std::string::npos);
}

}  // namespace
}  // namespace gophermq::config
