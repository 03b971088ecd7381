// Publish cost against the number of unrelated subscriptions: one broker with a single unrelated
// subscription, one with 100 000 (literals, shared prefixes, `*` and `>` patterns), publishing to
// the same subject with one subscriber. Rounds alternate between the two so machine noise hits
// both alike; the medians and their ratio are printed.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "broker/broker.hpp"

namespace {

using gophermq::broker::Broker;
using gophermq::broker::Limits;
using gophermq::broker::Message;
using gophermq::broker::PublishStatus;

constexpr const char* kSubject = "orders.eu.created";

std::string unrelated_pattern(std::size_t i) {
  const std::string n = std::to_string(i);
  switch (i % 5) {
    case 0:
      return "metrics.host" + n + ".cpu";
    case 1:
      return "orders.region" + n + ".created";  // shares the first token
    case 2:
      return "orders.*.shipped" + n;  // a wildcard branch the publish walks, matching nothing
    case 3:
      return "audit." + n + ".>";
    default:
      return "metrics." + n + ".*";
  }
}

struct Setup {
  Limits limits{.max_pending = 10'000'000, .max_pending_bytes = 1ULL << 32};
  Broker broker{limits};

  explicit Setup(std::size_t unrelated) {
    broker.subscribe("target", kSubject, std::nullopt);
    for (std::size_t i = 0; i < unrelated; ++i) {
      broker.subscribe("other-" + std::to_string(i), unrelated_pattern(i), std::nullopt);
    }
  }

  // Nanoseconds per publish over `count` publishes; the queue is drained afterwards, untimed.
  double publish_round(std::size_t count, const Message& message) {
    const auto started = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < count; ++i) {
      if (broker.publish(kSubject, {&message, 1}) != PublishStatus::ok) {
        std::fprintf(stderr, "publish failed\n");
        std::exit(1);
      }
    }
    const auto elapsed = std::chrono::steady_clock::now() - started;
    gophermq::broker::FetchedMessages drained;
    broker.fetch(kSubject, "target", count, drained);
    return std::chrono::duration<double, std::nano>(elapsed).count() / static_cast<double>(count);
  }
};

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t unrelated = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 100'000;
  const std::size_t rounds = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 9;
  constexpr std::size_t kPublishesPerRound = 200'000;
  const Message message = Message::create("0123456789abcdef");

  Setup small(1);
  Setup large(unrelated);
  small.publish_round(kPublishesPerRound, message);  // warm-up
  large.publish_round(kPublishesPerRound, message);
  std::vector<double> small_ns;
  std::vector<double> large_ns;
  std::vector<double> ratios;
  for (std::size_t round = 0; round < rounds; ++round) {
    small_ns.push_back(small.publish_round(kPublishesPerRound, message));
    large_ns.push_back(large.publish_round(kPublishesPerRound, message));
    ratios.push_back(large_ns.back() / small_ns.back());
  }
  std::printf("index bench: %zu rounds of %zu publishes to %s, 16-byte message, 1 subscriber\n",
              rounds, kPublishesPerRound, kSubject);
  std::printf("  1 unrelated subscription:       median %.1f ns/publish\n", median(small_ns));
  std::printf("  %zu unrelated subscriptions:  median %.1f ns/publish\n", unrelated,
              median(large_ns));
  std::printf("  ratio (median of per-round ratios): %.3f\n", median(ratios));
  return 0;
}
