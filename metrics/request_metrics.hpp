#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace gophermq::metrics {

// Latency buckets for a broker: most requests finish in tens of microseconds, long-polls in
// seconds. The client library's defaults start at 5 ms and would hide everything below.
const prometheus::Histogram::BucketBoundaries& request_duration_buckets();

// The original's request metrics, labelled by route (`method`) and status (`code`). Series are
// created on first use and their handles cached per (route, code), so the hot path never takes the
// family's lock or hashes labels; the label set stays bounded by routes x status codes.
class RequestMetrics {
 public:
  RequestMetrics(prometheus::Registry& registry, std::vector<std::string> route_labels);

  void record(std::size_t route, unsigned status, std::chrono::steady_clock::duration elapsed);

 private:
  static constexpr unsigned kLowestStatus = 100;
  static constexpr unsigned kStatusCount = 500;

  struct Series {
    std::atomic<prometheus::Counter*> requests{nullptr};
    std::atomic<prometheus::Histogram*> duration{nullptr};
  };

  Series& series(std::size_t route, unsigned status);

  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& durations_;
  std::vector<std::string> route_labels_;
  std::unique_ptr<std::array<Series, kStatusCount>[]> series_;
};

}  // namespace gophermq::metrics
