#pragma once

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <array>
#include <cstddef>
#include <string_view>

namespace gophermq::metrics {

// Every configured limit a client can run into. The label of each is its config key, so an
// operator who sees it rise knows which setting to look at.
enum class Limit : std::size_t {
  max_connections,
  max_header_bytes,
  max_body_bytes,
  max_message_bytes,
  max_subject_length,
  max_pending,  // max-pending or max-pending-bytes: one publish is refused for either
  max_pending_per_queue,
  max_subscriptions,
  async_queue_size,
  async_queue_bytes,
  idle_timeout,
  header_timeout,
  read_timeout,
  write_timeout,
  max_receiving_bytes,
  storage_max_bytes,  // max-bytes, or the disk full: no room in the log
  count
};

[[nodiscard]] std::string_view key_of(Limit limit);

// gophermq_limit_hits_total{limit}: each series is created up front, so a limit never hit reads
// 0 rather than being absent, and counting is one atomic add.
class LimitMetrics {
 public:
  explicit LimitMetrics(prometheus::Registry& registry);

  void hit(Limit limit) { counters_[static_cast<std::size_t>(limit)]->Increment(); }

 private:
  std::array<prometheus::Counter*, static_cast<std::size_t>(Limit::count)> counters_{};
};

}  // namespace gophermq::metrics
