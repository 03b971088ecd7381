#pragma once

#include <prometheus/metric_family.h>

#include <chrono>
#include <vector>

#include "service/broker_service.hpp"

namespace gophermq::metrics {

// Broker state as Prometheus families, built from a snapshot taken on the broker strand at scrape
// time, so reading them never locks or races the broker.
std::vector<prometheus::MetricFamily> broker_families(const service::ServiceSnapshot& snapshot);

// The standard process_* families, read from /proc at scrape time.
std::vector<prometheus::MetricFamily> process_families(
    std::chrono::system_clock::time_point started);

}  // namespace gophermq::metrics
