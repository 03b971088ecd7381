#include "support/broker_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace gophermq::test {
namespace {

std::uint16_t port_after(std::string_view log, std::string_view marker) {
  const auto at = log.find(marker);
  if (at == std::string_view::npos) {
    return 0;
  }
  const auto port_at = log.find("port=", at);
  std::uint16_t port = 0;
  std::from_chars(log.data() + port_at + 5, log.data() + log.size(), port);
  return port;
}

}  // namespace

std::vector<std::string> isolated_arguments(std::vector<std::string> extra) {
  std::vector<std::string> arguments{"broker", "--broker.host=127.0.0.1", "--broker.port=0",
                                     "--monitoring.port=127.0.0.1:0", "--threads=2"};
  arguments.insert(arguments.end(), extra.begin(), extra.end());
  return arguments;
}

BrokerProcess::BrokerProcess(const std::vector<std::string>& arguments,
                             const std::vector<std::string>& environment,
                             bool wait_until_listening) {
  spawn(GOPHERMQ_BINARY, arguments, environment);
  if (wait_until_listening) {
    wait_for_log("msg=ready");
    api_port_ = port_after(log_, "listener=api");
    metrics_port_ = port_after(log_, "listener=metrics");
  }
}

BrokerProcess::BrokerProcess(const std::string& program,
                             const std::vector<std::string>& arguments) {
  spawn(program, arguments, {});
}

void BrokerProcess::spawn(const std::string& program, const std::vector<std::string>& arguments,
                          const std::vector<std::string>& environment) {
  int pipe_ends[2];
  if (pipe2(pipe_ends, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe failed");
  }
  std::vector<std::string> argv_text{program};
  argv_text.insert(argv_text.end(), arguments.begin(), arguments.end());
  std::vector<std::string> env_text;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    if (std::string_view(*entry).starts_with("GOPHERMQ_")) {
      continue;  // only what the test passes
    }
    env_text.emplace_back(*entry);
  }
  env_text.insert(env_text.end(), environment.begin(), environment.end());
  std::vector<char*> argv;
  for (auto& text : argv_text) argv.push_back(text.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& text : env_text) envp.push_back(text.data());
  envp.push_back(nullptr);

  pid_ = fork();
  if (pid_ == 0) {
    dup2(pipe_ends[1], STDOUT_FILENO);
    dup2(pipe_ends[1], STDERR_FILENO);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(pipe_ends[1]);
  output_ = pipe_ends[0];
}

BrokerProcess::~BrokerProcess() {
  if (!exited_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (output_ >= 0) {
    close(output_);
  }
}

bool BrokerProcess::read_more(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) {
    return false;
  }
  pollfd watch{output_, POLLIN, 0};
  if (poll(&watch, 1, static_cast<int>(left.count())) <= 0) {
    return false;
  }
  char chunk[4096];
  const ssize_t got = read(output_, chunk, sizeof chunk);
  if (got <= 0) {
    return false;
  }
  log_.append(chunk, static_cast<std::size_t>(got));
  return true;
}

std::string BrokerProcess::wait_for_log(std::string_view needle,
                                        std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const auto at = log_.find(needle, scanned_);
    const auto line_end = at == std::string::npos ? std::string::npos : log_.find('\n', at);
    if (line_end != std::string::npos) {
      const auto line_start = log_.rfind('\n', at);
      scanned_ = line_end + 1;
      return log_.substr(line_start == std::string::npos ? 0 : line_start + 1,
                         line_end - (line_start == std::string::npos ? 0 : line_start + 1));
    }
    if (!read_more(deadline)) {
      throw std::runtime_error("log never showed '" + std::string(needle) + "'; log:\n" + log_);
    }
  }
}

void BrokerProcess::send_signal(int signal) const {
  kill(pid_, signal);
}

int BrokerProcess::wait_for_exit(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // Reading the log to its end is the event: the pipe closes when the process exits.
  while (read_more(deadline)) {
  }
  // The log still open at the deadline: the process did not exit, and waiting for it would hang
  // the test instead of failing it.
  if (std::chrono::steady_clock::now() >= deadline) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    exited_ = true;
    throw std::runtime_error("the broker did not exit within the timeout:\n" + log_);
  }
  int status = 0;
  if (waitpid(pid_, &status, 0) != pid_) {
    throw std::runtime_error("waitpid failed");
  }
  exited_ = true;
  if (WIFSIGNALED(status)) {
    return 128 + WTERMSIG(status);
  }
  return WEXITSTATUS(status);
}

RunResult run_to_exit(const std::vector<std::string>& arguments,
                      const std::vector<std::string>& environment) {
  BrokerProcess process(arguments, environment, false);
  RunResult result;
  result.status = process.wait_for_exit();
  result.output = process.log();
  return result;
}

}  // namespace gophermq::test
