#include "metrics/auth_metrics.hpp"

namespace gophermq::metrics {

AuthMetrics::AuthMetrics(prometheus::Registry& registry) {
  auto& family = prometheus::BuildCounter()
                     .Name("gophermq_auth_failures_total")
                     .Help(
                         "Requests refused by access control: no credential (missing), a "
                         "token the auth file does not hold (unknown), or not permitted "
                         "(forbidden).")
                     .Register(registry);
  // Every reason exists from the start, so a rate over it is defined before the first failure.
  static constexpr const char* kReasons[] = {"missing", "unknown", "forbidden"};
  for (std::size_t i = 0; i < counters_.size(); ++i) {
    counters_[i] = &family.Add({{"reason", kReasons[i]}});
  }
}

}  // namespace gophermq::metrics
