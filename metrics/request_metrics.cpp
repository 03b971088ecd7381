#include "metrics/request_metrics.hpp"

#include <algorithm>

namespace gophermq::metrics {

const prometheus::Histogram::BucketBoundaries& request_duration_buckets() {
  static const prometheus::Histogram::BucketBoundaries buckets{
      0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
      0.05,     0.1,     0.25,   0.5,     1,      2.5,   5,      10,    30};
  return buckets;
}

RequestMetrics::RequestMetrics(prometheus::Registry& registry,
                               std::vector<std::string> route_labels)
    : requests_(prometheus::BuildCounter()
                    .Name("gophermq_client_request_rate")
                    .Help("Requests served, by route and status code.")
                    .Register(registry)),
      durations_(prometheus::BuildHistogram()
                     .Name("gophermq_request_duration_seconds")
                     .Help("Time from a complete request to its response, by route and status.")
                     .Register(registry)),
      route_labels_(std::move(route_labels)),
      series_(std::make_unique<std::array<Series, kStatusCount>[]>(route_labels_.size())) {}

RequestMetrics::Series& RequestMetrics::series(std::size_t route, unsigned status) {
  const unsigned slot = std::clamp(status, kLowestStatus, kLowestStatus + kStatusCount - 1);
  Series& series = series_[route][slot - kLowestStatus];
  if (series.duration.load(std::memory_order_acquire) == nullptr) {
    // Family::Add returns the existing series for equal labels, so a race here is harmless.
    const prometheus::Labels labels{{"method", route_labels_[route]},
                                    {"code", std::to_string(slot)}};
    series.requests.store(&requests_.Add(labels), std::memory_order_release);
    series.duration.store(&durations_.Add(labels, request_duration_buckets()),
                          std::memory_order_release);
  }
  return series;
}

void RequestMetrics::record(std::size_t route, unsigned status,
                            std::chrono::steady_clock::duration elapsed) {
  Series& entry = series(route, status);
  entry.requests.load(std::memory_order_acquire)->Increment();
  entry.duration.load(std::memory_order_acquire)
      ->Observe(std::chrono::duration<double>(elapsed).count());
}

}  // namespace gophermq::metrics
