#include "metrics/limit_metrics.hpp"

#include <string>

namespace gophermq::metrics {

std::string_view key_of(Limit limit) {
  switch (limit) {
    case Limit::max_connections:
      return "max-connections";
    case Limit::max_header_bytes:
      return "max-header-bytes";
    case Limit::max_body_bytes:
      return "max-body-bytes";
    case Limit::max_message_bytes:
      return "max-message-bytes";
    case Limit::max_subject_length:
      return "max-subject-length";
    case Limit::max_pending:
      return "max-pending";
    case Limit::max_pending_per_queue:
      return "max-pending-per-queue";
    case Limit::max_subscriptions:
      return "max-subscriptions";
    case Limit::async_queue_size:
      return "async-queue-size";
    case Limit::async_queue_bytes:
      return "async-queue-bytes";
    case Limit::idle_timeout:
      return "idle-timeout";
    case Limit::header_timeout:
      return "header-timeout";
    case Limit::read_timeout:
      return "read-timeout";
    case Limit::write_timeout:
      return "write-timeout";
    case Limit::max_receiving_bytes:
      return "max-receiving-bytes";
    case Limit::storage_max_bytes:
      return "storage.max-bytes";
    case Limit::count:
      break;
  }
  return "unknown";
}

LimitMetrics::LimitMetrics(prometheus::Registry& registry) {
  auto& family = prometheus::BuildCounter()
                     .Name("gophermq_limit_hits_total")
                     .Help("Requests or connections cut short by a configured limit, by its key.")
                     .Register(registry);
  for (std::size_t i = 0; i < counters_.size(); ++i) {
    counters_[i] = &family.Add({{"limit", std::string(key_of(static_cast<Limit>(i)))}});
  }
}

}  // namespace gophermq::metrics
