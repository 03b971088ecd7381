// The kill cycles of the fault tests: worker threads that send requests to whichever broker runs
// now, one round per broker. A cycle lets the workers loose on a new broker, kills it with SIGKILL
// once they got enough answers, and ends when every worker has seen its connection break.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "support/broker_process.hpp"

namespace gophermq::test {

// The environment variable `name` as a number (cycles, seeds), or `fallback` when it is unset.
std::size_t fault_setting(const char* name, std::size_t fallback);

// GOPHERMQ_FAULT_SEED, or a random seed; printed, so that a failed run can be replayed.
std::uint64_t fault_seed();

class KillCycles {
 public:
  KillCycles() = default;
  // Joins the workers: declare it after everything they use, so it goes first.
  ~KillCycles();
  KillCycles(const KillCycles&) = delete;
  KillCycles& operator=(const KillCycles&) = delete;

  // A worker thread: each round calls `requests` with the broker's port, which sends requests
  // while running() and until the broker goes away. A RequestFailed (the kill) ends its round;
  // any other exception fails the test.
  void add_worker(std::function<void(std::uint16_t port)> requests);

  [[nodiscard]] bool running() const { return running_; }
  // Counts one answer a worker got.
  void answered();

  // Lets the workers loose on `broker` until they got `answers` answers and at least `least`
  // passed, kills it with SIGKILL and returns once every worker has seen its connection break.
  void cycle(BrokerProcess& broker, std::size_t answers,
             std::chrono::milliseconds least = std::chrono::milliseconds(0));

 private:
  void run(const std::function<void(std::uint16_t)>& requests);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::atomic<bool> running_{false};
  bool finished_ = false;
  std::size_t round_ = 0;
  std::uint16_t port_ = 0;
  std::size_t answers_ = 0;
  std::size_t stopped_ = 0;
};

}  // namespace gophermq::test
