// The sd_notify protocol end to end: the real binary with NOTIFY_SOCKET pointing at a datagram
// socket this test owns, as systemd runs a Type=notify service with WatchdogSec=.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <optional>
#include <string>

#include "support/broker_process.hpp"
#include "support/clock.hpp"

namespace gophermq::test {
namespace {

using namespace std::chrono_literals;

class NotifySocket {
 public:
  NotifySocket()
      : path_(testing::TempDir() + "gophermq-notify-" + std::to_string(getpid())),
        fd_(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path_.c_str(), sizeof(address.sun_path) - 1);
    unlink(path_.c_str());
    if (fd_ < 0 || bind(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
      throw std::runtime_error("cannot bind " + path_);
    }
  }
  ~NotifySocket() {
    close(fd_);
    unlink(path_.c_str());
  }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  [[nodiscard]] const std::string& path() const { return path_; }

  // The next datagram, or nullopt when none comes within `timeout`.
  std::optional<std::string> receive(std::chrono::milliseconds timeout = 10s) const {
    pollfd ready{fd_, POLLIN, 0};
    if (poll(&ready, 1, static_cast<int>(timeout.count())) != 1) {
      return std::nullopt;
    }
    char buffer[4096];
    const auto size = recv(fd_, buffer, sizeof(buffer), 0);
    return size < 0
               ? std::nullopt
               : std::optional<std::string>(std::string(buffer, static_cast<std::size_t>(size)));
  }

 private:
  std::string path_;
  int fd_;
};

// systemd kills a service that lets WATCHDOG_USEC pass without a ping; the broker pings at half of
// it. A gap near the whole period, or pings many times too often, are both wrong.
TEST(Systemd, NotifiesReadyThenWatchdogAtHalfItsPeriodThenStopping) {
  constexpr auto kWatchdog = 600ms;
  NotifySocket notify;
  BrokerProcess broker(
      isolated_arguments(),
      {"NOTIFY_SOCKET=" + notify.path(),
       "WATCHDOG_USEC=" + std::to_string(std::chrono::microseconds(kWatchdog).count())});
  EXPECT_EQ(notify.receive(), "READY=1");
  auto previous = Clock::now();
  for (int beat = 0; beat < 5; ++beat) {
    EXPECT_EQ(notify.receive(), "WATCHDOG=1") << "beat " << beat;
    const auto now = Clock::now();
    const auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(now - previous);
    // The first gap starts at READY, which may go out after the heartbeat was scheduled.
    if (beat > 0) {
      EXPECT_GE(gap, kWatchdog / 4) << "beat " << beat;
    }
    EXPECT_LE(gap, kWatchdog / 2 + 200ms) << "beat " << beat;
    previous = now;
  }
  broker.send_signal(SIGTERM);
  std::optional<std::string> message;
  do {
    message = notify.receive();
  } while (message == "WATCHDOG=1");
  EXPECT_EQ(message, "STOPPING=1");
  EXPECT_EQ(broker.wait_for_exit(), 0);
}

TEST(Systemd, WithoutAWatchdogOnlyReadyAndStoppingAreSent) {
  NotifySocket notify;
  BrokerProcess broker(isolated_arguments(), {"NOTIFY_SOCKET=" + notify.path()});
  EXPECT_EQ(notify.receive(), "READY=1");
  // A window of silence: nothing may arrive between READY and the signal.
  EXPECT_EQ(notify.receive(1500ms), std::nullopt);
  broker.send_signal(SIGTERM);
  EXPECT_EQ(notify.receive(), "STOPPING=1");
  EXPECT_EQ(broker.wait_for_exit(), 0);
}

}  // namespace
}  // namespace gophermq::test
