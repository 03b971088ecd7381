#include "support/kill_cycles.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <iostream>
#include <random>
#include <string>

#include "support/http_client.hpp"

namespace gophermq::test {

std::size_t fault_setting(const char* name, std::size_t fallback) {
  const char* text = std::getenv(name);
  return text == nullptr ? fallback : std::stoul(text);
}

std::uint64_t fault_seed() {
  const auto chosen =
      static_cast<std::uint64_t>(fault_setting("GOPHERMQ_FAULT_SEED", std::random_device{}()));
  std::cout << "GOPHERMQ_FAULT_SEED=" << chosen << "\n";
  return chosen;
}

KillCycles::~KillCycles() {
  {
    const std::lock_guard guard(mutex_);
    finished_ = true;
  }
  changed_.notify_all();
  for (auto& worker : workers_) worker.join();
}

void KillCycles::add_worker(std::function<void(std::uint16_t port)> requests) {
  workers_.emplace_back([this, requests = std::move(requests)] { run(requests); });
}

void KillCycles::answered() {
  const std::lock_guard guard(mutex_);
  ++answers_;
  changed_.notify_all();
}

void KillCycles::cycle(BrokerProcess& broker, std::size_t answers,
                       std::chrono::milliseconds least) {
  {
    std::unique_lock lock(mutex_);
    port_ = broker.api_port();
    answers_ = 0;
    stopped_ = 0;
    running_ = true;
    ++round_;
    changed_.notify_all();
    const auto end = std::chrono::steady_clock::now() + least;
    EXPECT_TRUE(changed_.wait_for(
        lock, std::chrono::seconds(30),
        [&] { return answers_ >= answers && std::chrono::steady_clock::now() >= end; }))
        << answers_ << " answers of " << answers;
  }
  broker.send_signal(SIGKILL);
  EXPECT_EQ(broker.wait_for_exit(), 128 + SIGKILL);
  std::unique_lock lock(mutex_);
  running_ = false;
  ASSERT_TRUE(changed_.wait_for(lock, std::chrono::seconds(30),
                                [&] { return stopped_ == workers_.size(); }));
}

void KillCycles::run(const std::function<void(std::uint16_t)>& requests) {
  std::size_t seen_round = 0;
  while (true) {
    std::uint16_t port = 0;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return finished_ || (running_ && round_ != seen_round); });
      if (finished_) return;
      seen_round = round_;
      port = port_;
    }
    try {
      requests(port);
    } catch (const RequestFailed&) {
      // The broker was killed: the worker waits for the next one.
    } catch (const std::exception& error) {
      ADD_FAILURE() << error.what();
    }
    const std::lock_guard guard(mutex_);
    ++stopped_;
    changed_.notify_all();
  }
}

}  // namespace gophermq::test
