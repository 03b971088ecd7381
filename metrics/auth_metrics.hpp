#pragma once

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <array>
#include <cstddef>

namespace gophermq::metrics {

// Why a request was refused by access control (API.md §11).
enum class AuthFailure : std::size_t { missing, unknown, forbidden, count };

// gophermq_auth_failures_total{reason}: every 401 and 403 of the API and /metrics.
class AuthMetrics {
 public:
  explicit AuthMetrics(prometheus::Registry& registry);

  void failed(AuthFailure reason) { counters_[static_cast<std::size_t>(reason)]->Increment(); }

 private:
  std::array<prometheus::Counter*, static_cast<std::size_t>(AuthFailure::count)> counters_{};
};

}  // namespace gophermq::metrics
