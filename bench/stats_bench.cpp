// What stats and the metrics snapshot cost on the broker strand, against the number of subjects:
// the broker core alone, with SUBJECTS subjects of one subscription each and one pending message
// on every tenth. Times the calls the strand makes for GET /api/stats (totals and the top 100, or
// the top 1000) and for GET /metrics (totals only), and a publish followed by a fetch that
// empties the queue again, the hot path that keeps the ranking. Prints the median of each.
//
// Usage: gophermq_stats_bench [SUBJECTS]   (default 300000)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "broker/broker.hpp"

namespace {

using gophermq::broker::Broker;
using gophermq::broker::FetchedMessages;
using gophermq::broker::Limits;
using gophermq::broker::Message;
using gophermq::broker::PublishStatus;

std::string subject_of(std::size_t i) {
  return "stats." + std::to_string(i);
}

// Median nanoseconds of `rounds` runs of `step`, each run repeated `repeat` times.
template <typename Step>
double median_ns(std::size_t rounds, std::size_t repeat, Step step) {
  std::vector<double> samples;
  for (std::size_t round = 0; round < rounds; ++round) {
    const auto started = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < repeat; ++i) {
      step(i);
    }
    const std::chrono::duration<double, std::nano> elapsed =
        std::chrono::steady_clock::now() - started;
    samples.push_back(elapsed.count() / static_cast<double>(repeat));
  }
  std::nth_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(rounds / 2),
                   samples.end());
  return samples[rounds / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t subjects = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 300'000;
  if (subjects == 0) {
    std::fprintf(stderr, "usage: gophermq_stats_bench [SUBJECTS > 0]\n");
    return 2;
  }
  Broker broker(Limits{.max_pending = 10'000'000, .max_subscriptions = subjects});
  const Message message = Message::create("x");
  for (std::size_t i = 0; i < subjects; ++i) {
    broker.subscribe(std::to_string(i), subject_of(i), std::nullopt);
    if (i % 10 == 0 && broker.publish(subject_of(i), {&message, 1}) != PublishStatus::ok) {
      std::fprintf(stderr, "publish failed\n");
      return 1;
    }
  }
  std::size_t shown = 0;
  const double stats_100 = median_ns(11, 10, [&](std::size_t) {
    shown += broker.totals().subjects + broker.top_subjects(100).size();
  });
  const double stats_1000 = median_ns(11, 10, [&](std::size_t) {
    shown += broker.totals().subjects + broker.top_subjects(1000).size();
  });
  const double metrics = median_ns(11, 10, [&](std::size_t) {
    shown += broker.totals().subjects + broker.top_subjects(0).size();
  });
  // Subjects with nothing pending, spread over the name order, so each publish moves its topic
  // up through the ranking and the fetch moves it back.
  const double publish_fetch = median_ns(11, 10'000, [&](std::size_t i) {
    const std::size_t n = (i * 7919 % (subjects / 10 + 1)) * 10 + 1;
    if (n >= subjects) {
      return;
    }
    broker.publish(subject_of(n), {&message, 1});
    FetchedMessages out;
    broker.fetch(subject_of(n), std::to_string(n), 1, out);
    shown += out.size();
  });
  std::printf("%zu subjects (checksum %zu)\n", subjects, shown);
  std::printf("stats, limit 100:    %10.1f us\n", stats_100 / 1000);
  std::printf("stats, limit 1000:   %10.1f us\n", stats_1000 / 1000);
  std::printf("metrics snapshot:    %10.1f us\n", metrics / 1000);
  std::printf("publish + fetch:     %10.1f us\n", publish_fetch / 1000);
  return 0;
}
