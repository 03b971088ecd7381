#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <cstddef>

#include "metrics/limit_metrics.hpp"

namespace gophermq::metrics {

// Push delivery (API.md §10): gophermq_open_streams, gophermq_pushed_messages_total and
// gophermq_stream_slow_reader_waits_total. Each is one series, so counting is one atomic add.
// A stream ended by the write-timeout counts against that limit, as any answer does.
class StreamMetrics {
 public:
  StreamMetrics(prometheus::Registry& registry, LimitMetrics& limits);

  void opened() { open_->Increment(); }
  void closed() { open_->Decrement(); }
  void pushed(std::size_t messages) { pushed_->Increment(static_cast<double>(messages)); }
  void slow_reader_wait() { slow_reader_waits_->Increment(); }
  void write_timed_out() { limits_.hit(Limit::write_timeout); }

 private:
  prometheus::Gauge* open_;
  prometheus::Counter* pushed_;
  prometheus::Counter* slow_reader_waits_;
  LimitMetrics& limits_;
};

}  // namespace gophermq::metrics
