// Many concurrent long-poll fetches against a running broker: N subscriptions on one subject, one
// connection per subscription, each with a fetch waiting (wait_ms). Measures how long the broker
// takes to have them all waiting, its RSS with them waiting, and how long one publish takes to
// wake every one of them. Usage:
//   gophermq_longpoll_bench API_PORT METRICS_PORT [WAITERS=10000] [ROUNDS=3]
#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/parse.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_client.hpp"

namespace gophermq::bench {
namespace {

// Connects to the broker on loopback; the bench cannot go on without the connection.
asio::awaitable<void> connect(Connection& connection, std::uint16_t port) {
  if (const auto error =
          co_await connection.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port))) {
    throw std::runtime_error("cannot connect to port " + std::to_string(port) + ": " +
                             error.message());
  }
}

// The body of a 200 answer; anything else ends the bench.
std::string ok_body(Answer answer, std::string_view target) {
  if (answer.error) {
    throw std::runtime_error(std::string(target) + ": " + answer.error.message());
  }
  if (answer.status != 200) {
    throw std::runtime_error(std::string(target) + " answered " + std::to_string(answer.status) +
                             ": " + answer.body);
  }
  return std::move(answer.body);
}

double metric(const std::string& text, const std::string& name) {
  const auto at = text.find("\n" + name + " ");
  if (at == std::string::npos) {
    throw std::runtime_error("no metric " + name);
  }
  return std::strtod(text.c_str() + at + name.size() + 2, nullptr);
}

double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<std::size_t>(p * static_cast<double>(values.size()));
  return values[std::min(values.size() - 1, rank)];
}

struct Round {
  double register_ms = 0;
  double wake_p50_ms = 0;
  double wake_p99_ms = 0;
  double wake_max_ms = 0;
  double rss_mib = 0;
};

class Bench {
 public:
  Bench(asio::io_context& context, std::uint16_t api_port, std::uint16_t metrics_port,
        std::size_t waiters)
      : context_(context),
        api_port_(api_port),
        metrics_port_(metrics_port),
        waiters_(waiters),
        all_woken_(context) {}

  asio::awaitable<void> run(std::size_t rounds) {
    Connection control(context_.get_executor());
    co_await connect(control, api_port_);
    Connection metrics(context_.get_executor());
    co_await connect(metrics, metrics_port_);
    const double rss_idle = co_await rss(metrics);
    for (std::size_t i = 0; i < waiters_; ++i) {
      const auto body =
          ok_body(co_await control.post("/api/subscribe", R"({"subject":"lp.fan"})"), "subscribe");
      ids_.emplace_back(boost::json::parse(body).at("id").as_string());
    }
    const double rss_subscribed = co_await rss(metrics);
    for (std::size_t i = 0; i < waiters_; ++i) {
      connections_.push_back(std::make_unique<Connection>(context_.get_executor()));
      co_await connect(*connections_.back(), api_port_);
    }
    const double rss_connected = co_await rss(metrics);
    constexpr double kMiB = 1024.0 * 1024.0;
    std::printf("longpoll bench: %zu waiting fetches on one subject, one connection each\n",
                waiters_);
    std::printf(
        "  broker RSS: %.1f MiB idle, %.1f MiB with the subscriptions, %.1f MiB with the "
        "connections open\n",
        rss_idle / kMiB, rss_subscribed / kMiB, rss_connected / kMiB);
    std::vector<Round> results;
    for (std::size_t round = 0; round < rounds; ++round) {
      results.push_back(co_await run_round(control, metrics));
      const Round& r = results.back();
      std::printf(
          "  round %zu: all waiting after %.0f ms, RSS %.1f MiB; one publish woke all: p50 %.1f "
          "ms, "
          "p99 %.1f ms, max %.1f ms\n",
          round + 1, r.register_ms, r.rss_mib, r.wake_p50_ms, r.wake_p99_ms, r.wake_max_ms);
    }
    const auto median_of = [&](double Round::*field) {
      std::vector<double> values;
      for (const Round& r : results) {
        values.push_back(r.*field);
      }
      return percentile(values, 0.5);
    };
    std::printf(
        "  median: all waiting after %.0f ms, RSS %.1f MiB (%.0f bytes per waiting fetch incl. its "
        "subscription and connection), wake-all max %.1f ms\n",
        median_of(&Round::register_ms), median_of(&Round::rss_mib),
        (median_of(&Round::rss_mib) * 1024 * 1024 - rss_idle) / static_cast<double>(waiters_),
        median_of(&Round::wake_max_ms));
  }

 private:
  static asio::awaitable<double> rss(Connection& metrics) {
    co_return metric(ok_body(co_await metrics.get("/metrics"), "/metrics"),
                     "process_resident_memory_bytes");
  }

  asio::awaitable<Round> run_round(Connection& control, Connection& metrics) {
    Round round;
    woken_ = 0;
    latencies_.assign(waiters_, 0.0);
    all_woken_.expires_at(Clock::time_point::max());
    const auto started = Clock::now();
    for (std::size_t i = 0; i < waiters_; ++i) {
      asio::co_spawn(context_, wait_for_message(i), asio::detached);
    }
    const std::string waiting = "\"waiting_fetches\":" + std::to_string(waiters_) + "}";
    while (ok_body(co_await control.get("/api/stats?limit=0"), "stats").find(waiting) ==
           std::string::npos) {
      asio::steady_timer tick(context_, std::chrono::milliseconds(5));
      co_await tick.async_wait(asio::use_awaitable);
    }
    round.register_ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
    round.rss_mib = co_await rss(metrics) / (1024.0 * 1024.0);
    published_ = Clock::now();
    ok_body(co_await control.post("/api/publish", R"({"subject":"lp.fan","data":"wake"})"),
            "publish");
    co_await all_woken_.async_wait(kUseTuple);
    round.wake_p50_ms = percentile(latencies_, 0.5);
    round.wake_p99_ms = percentile(latencies_, 0.99);
    round.wake_max_ms = percentile(latencies_, 1.0);
    co_return round;
  }

  asio::awaitable<void> wait_for_message(std::size_t index) {
    const std::string body = ok_body(
        co_await connections_[index]->post(
            "/api/fetch", R"({"subject":"lp.fan","id":")" + ids_[index] + R"(","wait_ms":30000})",
            std::chrono::milliseconds(30000)),
        "fetch");
    if (body.find(R"("data":["wake"])") == std::string::npos) {
      std::fprintf(stderr, "fetch %zu did not get the message: %s", index, body.c_str());
      std::exit(1);
    }
    latencies_[index] =
        std::chrono::duration<double, std::milli>(Clock::now() - published_).count();
    if (++woken_ == waiters_) {
      all_woken_.cancel();
    }
  }

  asio::io_context& context_;
  std::uint16_t api_port_;
  std::uint16_t metrics_port_;
  std::size_t waiters_;
  std::vector<std::string> ids_;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<double> latencies_;
  std::size_t woken_ = 0;
  Clock::time_point published_;
  asio::steady_timer all_woken_;
};

int run_bench(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s API_PORT METRICS_PORT [WAITERS=10000] [ROUNDS=3]\n", argv[0]);
    return 2;
  }
  const auto api_port = static_cast<std::uint16_t>(std::strtoul(argv[1], nullptr, 10));
  const auto metrics_port = static_cast<std::uint16_t>(std::strtoul(argv[2], nullptr, 10));
  const std::size_t waiters = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 10'000;
  const std::size_t rounds = argc > 4 ? std::strtoull(argv[4], nullptr, 10) : 3;
  asio::io_context context(1);
  Bench bench(context, api_port, metrics_port, waiters);
  int status = 0;
  asio::co_spawn(context, bench.run(rounds), [&](const std::exception_ptr& error) {
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "longpoll bench failed: %s\n", e.what());
      }
      status = 1;
    }
    context.stop();
  });
  context.run();
  return status;
}

}  // namespace
}  // namespace gophermq::bench

int main(int argc, char** argv) {
  return gophermq::bench::run_bench(argc, argv);
}
