#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "support/broker_process.hpp"
#include "support/http_client.hpp"
#include "support/temp_files.hpp"

namespace gophermq::test {
namespace {

// How many messages a broker accepts for one subscriber before answering 429: its max-pending.
int accepted_before_overflow(const BrokerProcess& broker) {
  HttpClient client(broker.api_port());
  client.post("/api/subscribe", R"({"subject":"s"})");
  for (int accepted = 0; accepted < 100; ++accepted) {
    if (client.post("/api/publish", R"({"subject":"s","data":"x"})").status == 429) {
      return accepted;
    }
  }
  return -1;
}

TEST(ConfigE2e, CommandLineBeatsEnvironmentBeatsFile) {
  const TempFile config("broker:\n  max-pending: 2\n");
  const std::string& file = config.path();
  {
    BrokerProcess broker(isolated_arguments({"--config=" + file}));
    EXPECT_EQ(accepted_before_overflow(broker), 2);
  }
  {
    BrokerProcess broker(isolated_arguments({"--config=" + file}),
                         {"GOPHERMQ_BROKER_MAX__PENDING=3"});
    EXPECT_EQ(accepted_before_overflow(broker), 3);
  }
  {
    BrokerProcess broker(isolated_arguments({"--config=" + file, "--broker.max-pending=4"}),
                         {"GOPHERMQ_BROKER_MAX__PENDING=3"});
    EXPECT_EQ(accepted_before_overflow(broker), 4);
  }
}

void expect_config_error(const RunResult& result, const std::string& key) {
  EXPECT_EQ(result.status, 2);
  EXPECT_EQ(std::count(result.output.begin(), result.output.end(), '\n'), 1) << result.output;
  EXPECT_TRUE(result.output.starts_with("gophermq: ")) << result.output;
  EXPECT_NE(result.output.find(key), std::string::npos) << result.output;
}

TEST(ConfigE2e, BadValueAnywhereExitsTwoWithOneLineNamingTheKey) {
  expect_config_error(run_to_exit({"broker", "--broker.port=http"}), "broker.port");
  expect_config_error(run_to_exit({"broker"}, {"GOPHERMQ_BROKER_MAX__PENDING=ten"}),
                      "broker.max-pending");
  const TempFile config("monitoring:\n  enable: sometimes\n");
  const std::string& file = config.path();
  expect_config_error(run_to_exit({"broker", "--config", file}), "monitoring.enable");
  expect_config_error(run_to_exit({"broker", "--logger.level=chatty"}), "logger.level");
  expect_config_error(run_to_exit({"serve"}), "serve");
}

TEST(ConfigE2e, HostileSettingsExitTwoWithOneLineNamingThem) {
  expect_config_error(run_to_exit({"broker"}, {"GOPHERMQ_=1"}), "GOPHERMQ_");
  expect_config_error(run_to_exit({"broker"}, {"GOPHERMQ_BROKER=1"}), "GOPHERMQ_BROKER");
  expect_config_error(run_to_exit({"broker"}, {"GOPHERMQ_broker_port=1"}), "GOPHERMQ_broker_port");
  expect_config_error(run_to_exit({"broker", "--thr=2"}), "--thr");
  expect_config_error(run_to_exit({"broker"}, {"GOPHERMQ_BROKER_PORT=1\n2"}), "1\\x0a2");
  expect_config_error(run_to_exit({"broker", "--broker.port=" + std::string(100'000, '7')}),
                      "broker.port");
  expect_config_error(run_to_exit({"broker", "--threads=1", "--threads=2"}), "threads");
  const TempFile config("broker:\n  port: 1\n  port: 2\n");
  const std::string& file = config.path();
  expect_config_error(run_to_exit({"broker", "--config", file}), "broker.port");
  expect_config_error(run_to_exit({"broker", "--config=/tmp"}), "/tmp");
  expect_config_error(run_to_exit({"broker", "--config=/dev/zero"}), "/dev/zero");
  expect_config_error(run_to_exit({"broker", "--config=/nonexistent/gophermq.yaml"}),
                      "/nonexistent/gophermq.yaml");
  expect_config_error(run_to_exit({"broker", "stray"}), "stray");
  expect_config_error(run_to_exit({"broker", "--broker.host=no-such-host.invalid"}), "broker.host");
  expect_config_error(run_to_exit({"broker", "--monitoring.port=no-such-host.invalid:9001"}),
                      "monitoring.port");
}

TEST(ConfigE2e, GoDurationsWithFractionsAndTheirLimit) {
  BrokerProcess broker(
      isolated_arguments({"--broker.subscriber-ttl=1.5h", "--broker.message-ttl=.5s",
                          "--broker.idle-timeout=1m0.5s"}));
  EXPECT_EQ(HttpClient(broker.api_port()).get("/ready").status, 204U);
  expect_config_error(run_to_exit({"broker", "--broker.message-ttl=2562047788016h"}),
                      "broker.message-ttl");
  expect_config_error(run_to_exit({"broker"}, {"GOPHERMQ_BROKER_SUBSCRIBER__TTL=1..5s"}),
                      "broker.subscriber-ttl");
  expect_config_error(run_to_exit({"broker", "--broker.read-timeout=-1s"}), "broker.read-timeout");
}

TEST(ConfigE2e, HostNamesAreResolved) {
  BrokerProcess broker(
      {"broker", "--broker.host=localhost", "--broker.port=0", "--monitoring.port=localhost:0"});
  EXPECT_EQ(HttpClient(broker.api_port()).get("/ready").status, 204U);
  EXPECT_NE(broker.log().find("127.0.0.1"), std::string::npos) << broker.log();
}

TEST(ConfigE2e, YamlMistakesExitTwoNamingTheFileAndKey) {
  for (const auto& [text, key] : std::vector<std::pair<std::string, std::string>>{
           {"broker:\n  nope: 1\n", "broker.nope"},
           {"broker:\n  port: [1]\n", "broker.port"},
           {"broker: {port: 1\n", "line "},
           {"broker:\n  max-pending: -1\n", "broker.max-pending"}}) {
    const TempFile config(text);
    const std::string& file = config.path();
    const RunResult result = run_to_exit({"broker", "--config", file});
    expect_config_error(result, key);
    EXPECT_NE(result.output.find(file), std::string::npos) << result.output;
  }
}

// A user who drops us in where the original ran keeps its config.yaml, and it is read.
TEST(ConfigE2e, ConfigYamlInTheWorkingDirectoryIsRead) {
  const TempWorkingDirectory directory;
  directory.write("config.yaml", "broker:\n  max-pending: 2\n");
  {
    BrokerProcess broker(isolated_arguments());
    EXPECT_EQ(accepted_before_overflow(broker), 2);
    EXPECT_NE(broker.log().find("file=\"config.yaml\""), std::string::npos) << broker.log();
  }
  directory.write("config.yaml", "broker:\n  max-pendin: 2\n");
  expect_config_error(run_to_exit(isolated_arguments()), "config.yaml line 2: unknown key");
}

TEST(ConfigE2e, HelpAndVersion) {
  const RunResult help = run_to_exit({"--help"});
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.output.find("Usage: gophermq broker"), std::string::npos);
  EXPECT_NE(help.output.find("monitoring.port"), std::string::npos);
  EXPECT_NE(help.output.find("GOPHERMQ_BROKER_MAX__PENDING"), std::string::npos);
  const RunResult version = run_to_exit({"--version"});
  EXPECT_EQ(version.status, 0);
  EXPECT_TRUE(version.output.starts_with("gophermq ")) << version.output;
}

TEST(ConfigE2e, MonitoringCanBeTurnedOff) {
  BrokerProcess broker(isolated_arguments({"--monitoring.enable=false"}));
  EXPECT_EQ(broker.metrics_port(), 0);
  EXPECT_EQ(broker.log().find("listener=metrics"), std::string::npos);
  EXPECT_EQ(HttpClient(broker.api_port()).get("/ready").status, 204U);
}

TEST(ConfigE2e, TheShippedConfigFileAndEnvironmentFileAreValid) {
  // Command-line ports and storage.dir beat the file's, so the shipped file is read whole without
  // binding 8082 or writing to /var/lib/gophermq.
  const TempDir storage;
  BrokerProcess broker(isolated_arguments({"--config=" GOPHERMQ_SOURCE_DIR "/systemd/gophermq.yaml",
                                           "--storage.dir=" + storage.string()}));
  EXPECT_EQ(HttpClient(broker.api_port()).get("/ready").status, 204U);
}

TEST(ConfigE2e, PortInUseIsAClearError) {
  BrokerProcess first(isolated_arguments());
  const RunResult second = run_to_exit({"broker", "--broker.host=127.0.0.1",
                                        "--broker.port=" + std::to_string(first.api_port()),
                                        "--monitoring.enable=false"});
  EXPECT_EQ(second.status, 1);
  EXPECT_NE(second.output.find("cannot listen"), std::string::npos) << second.output;
}

}  // namespace
}  // namespace gophermq::test
