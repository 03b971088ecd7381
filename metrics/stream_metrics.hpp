#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <cstddef>

namespace gophermq::metrics {

// Push delivery (API.md §10): gophermq_open_streams, gophermq_pushed_messages_total and
// gophermq_stream_slow_reader_waits_total. Each is one series, so counting is one atomic add.
class StreamMetrics {
 public:
  explicit StreamMetrics(prometheus::Registry& registry);

  void opened() { open_->Increment(); }
  void closed() { open_->Decrement(); }
  void pushed(std::size_t messages) { pushed_->Increment(static_cast<double>(messages)); }
  void slow_reader_wait() { slow_reader_waits_->Increment(); }

 private:
  prometheus::Gauge* open_;
  prometheus::Counter* pushed_;
  prometheus::Counter* slow_reader_waits_;
};

}  // namespace gophermq::metrics
