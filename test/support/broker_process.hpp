#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gophermq::test {

// Arguments that make a broker safe to run beside others: loopback only, ports picked by the
// kernel and read back from the log.
std::vector<std::string> isolated_arguments(std::vector<std::string> extra = {});

// The real gophermq binary as a child process, its stderr read line by line.
class BrokerProcess {
 public:
  // Starts `gophermq <arguments>` and, unless `wait_until_listening` is false, waits for the
  // listening lines and records the ports.
  explicit BrokerProcess(const std::vector<std::string>& arguments,
                         const std::vector<std::string>& environment = {},
                         bool wait_until_listening = true);
  // Another program the tests run beside the broker (Prometheus), with the same log access.
  BrokerProcess(const std::string& program, const std::vector<std::string>& arguments);
  ~BrokerProcess();
  BrokerProcess(const BrokerProcess&) = delete;
  BrokerProcess& operator=(const BrokerProcess&) = delete;

  [[nodiscard]] std::uint16_t api_port() const { return api_port_; }
  [[nodiscard]] std::uint16_t metrics_port() const { return metrics_port_; }
  [[nodiscard]] const std::string& log() const { return log_; }
  [[nodiscard]] pid_t pid() const { return pid_; }

  // Reads the log until a line contains `needle`; throws if the process ends first or `timeout`
  // passes.
  std::string wait_for_log(std::string_view needle,
                           std::chrono::milliseconds timeout = std::chrono::seconds(20));

  void send_signal(int signal) const;
  // Waits for the process to exit and returns its exit status (128 + signal if killed).
  int wait_for_exit(std::chrono::milliseconds timeout = std::chrono::seconds(20));

 private:
  void spawn(const std::string& program, const std::vector<std::string>& arguments,
             const std::vector<std::string>& environment);
  bool read_more(std::chrono::steady_clock::time_point deadline);

  pid_t pid_ = -1;
  int output_ = -1;
  bool exited_ = false;
  std::string log_;
  std::size_t scanned_ = 0;
  std::uint16_t api_port_ = 0;
  std::uint16_t metrics_port_ = 0;
};

struct RunResult {
  int status = -1;
  std::string output;
};

// Runs the binary to completion, for commands that do not serve (bad config, --help).
RunResult run_to_exit(const std::vector<std::string>& arguments,
                      const std::vector<std::string>& environment = {});

}  // namespace gophermq::test
