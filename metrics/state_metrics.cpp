#include "metrics/state_metrics.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

namespace gophermq::metrics {
namespace {

prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType type) {
  return prometheus::MetricFamily{std::move(name), std::move(help), type, {}};
}

prometheus::ClientMetric gauge_value(double value, prometheus::ClientMetric::Label label = {}) {
  prometheus::ClientMetric metric;
  if (!label.name.empty()) {
    metric.label.push_back(std::move(label));
  }
  metric.gauge.value = value;
  return metric;
}

prometheus::ClientMetric counter_value(double value, prometheus::ClientMetric::Label label = {}) {
  prometheus::ClientMetric metric;
  if (!label.name.empty()) {
    metric.label.push_back(std::move(label));
  }
  metric.counter.value = value;
  return metric;
}

prometheus::MetricFamily single_gauge(std::string name, std::string help, double value) {
  auto result = family(std::move(name), std::move(help), prometheus::MetricType::Gauge);
  result.metric.push_back(gauge_value(value));
  return result;
}

prometheus::MetricFamily single_counter(std::string name, std::string help, double value) {
  auto result = family(std::move(name), std::move(help), prometheus::MetricType::Counter);
  result.metric.push_back(counter_value(value));
  return result;
}

// One family of one unlabelled value: a row of the tables broker_families adds.
struct Single {
  const char* name;
  const char* help;
  prometheus::MetricType type;
  std::uint64_t value;
};

void add_singles(std::vector<prometheus::MetricFamily>& families,
                 std::initializer_list<Single> singles) {
  for (const Single& single : singles) {
    const auto value = static_cast<double>(single.value);
    families.push_back(single.type == prometheus::MetricType::Gauge
                           ? single_gauge(single.name, single.help, value)
                           : single_counter(single.name, single.help, value));
  }
}

double resident_memory_bytes() {
  std::ifstream statm("/proc/self/statm");
  double pages = 0;
  double resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<double>(sysconf(_SC_PAGESIZE));
}

double open_descriptors() {
  std::error_code error;
  double count = 0;
  for (std::filesystem::directory_iterator entry("/proc/self/fd", error), end;
       !error && entry != end; entry.increment(error)) {
    ++count;
  }
  return count - 1;  // the directory handle the iteration itself holds
}

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& time) {
    return static_cast<double>(time.tv_sec) + static_cast<double>(time.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

double max_descriptors() {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  return static_cast<double>(limit.rlim_cur);
}

}  // namespace

std::vector<prometheus::MetricFamily> broker_families(const service::ServiceSnapshot& snapshot) {
  const broker::Totals& totals = snapshot.totals;
  std::vector<prometheus::MetricFamily> families;
  using prometheus::MetricType;
  add_singles(
      families,
      {{"gophermq_pending_messages", "Messages stored, one per queue holding it.",
        MetricType::Gauge, totals.pending_messages},
       {"gophermq_pending_bytes", "Message bytes stored, likewise.", MetricType::Gauge,
        totals.pending_bytes},
       {"gophermq_subscriptions", "Live subscriptions.", MetricType::Gauge, totals.subscriptions},
       {"gophermq_subjects", "Subjects with at least one subscription.", MetricType::Gauge,
        totals.subjects},
       {"gophermq_published_messages_total", "Messages accepted by publish, once per message.",
        MetricType::Counter, totals.counters.published},
       {"gophermq_delivered_messages_total", "Messages handed to consumers by fetch.",
        MetricType::Counter, totals.counters.delivered}});
  auto dropped = family("gophermq_dropped_messages_total",
                        "Stored messages removed other than by fetch, by reason.",
                        prometheus::MetricType::Counter);
  for (const broker::DropReason reason : broker::drop_reasons_by_name) {
    dropped.metric.push_back(counter_value(
        static_cast<double>(totals.counters.dropped[static_cast<std::size_t>(reason)]),
        {"reason", std::string(name_of(reason))}));
  }
  families.push_back(std::move(dropped));
  add_singles(families, {{"gophermq_in_flight_messages",
                          "Ack-mode messages delivered and not yet acked, nacked or due.",
                          MetricType::Gauge, totals.in_flight},
                         {"gophermq_acked_messages_total", "Ack-mode deliveries acked.",
                          MetricType::Counter, totals.counters.acked},
                         {"gophermq_nacked_messages_total", "Ack-mode deliveries nacked.",
                          MetricType::Counter, totals.counters.nacked},
                         {"gophermq_redelivered_messages_total",
                          "Ack-mode messages delivered again after a nack or timeout.",
                          MetricType::Counter, totals.counters.redelivered}});
  auto dead = family("gophermq_dead_letter_messages_total",
                     "Messages past max_deliveries with a dead_letter subject, by outcome: "
                     "published there, or dropped for want of subscribers.",
                     prometheus::MetricType::Counter);
  dead.metric.push_back(
      counter_value(static_cast<double>(totals.counters.dead_lettered), {"outcome", "published"}));
  dead.metric.push_back(counter_value(static_cast<double>(totals.counters.dead_letter_dropped),
                                      {"outcome", "dropped"}));
  families.push_back(std::move(dead));
  families.push_back(single_counter("gophermq_duplicate_publishes_total",
                                    "Messages not stored again: their msg_id was in the dedupe "
                                    "window.",
                                    static_cast<double>(totals.counters.duplicates)));
  families.push_back(single_gauge("gophermq_waiting_fetches",
                                  "Fetches waiting (wait_ms) for a message to arrive.",
                                  static_cast<double>(totals.waiting_fetches)));
  families.push_back(single_gauge("gophermq_async_queue_depth",
                                  "Async publishes accepted and not yet applied to the broker.",
                                  static_cast<double>(snapshot.async_queue_depth)));
  auto failed = family("gophermq_async_publish_failed_total",
                       "Async publishes the broker refused after they were accepted, by reason.",
                       prometheus::MetricType::Counter);
  for (std::size_t reason = 0; reason < static_cast<std::size_t>(service::AsyncFailure::count);
       ++reason) {
    failed.metric.push_back(counter_value(
        static_cast<double>(snapshot.async_failures[reason]),
        {"reason", std::string(name_of(static_cast<service::AsyncFailure>(reason)))}));
  }
  families.push_back(std::move(failed));
  add_singles(families, {{"gophermq_storage_bytes",
                          "Bytes the write-ahead log holds on disk, reserved space included.",
                          MetricType::Gauge, snapshot.storage.bytes},
                         {"gophermq_storage_files", "Files of the write-ahead log.",
                          MetricType::Gauge, snapshot.storage.files},
                         {"gophermq_storage_write_stalled",
                          "1 while a write of the log waits for space on a full disk.",
                          MetricType::Gauge, snapshot.storage.stalled ? 1U : 0U},
                         {"gophermq_storage_recovered_records_total",
                          "Log records replayed by the recovery at start.", MetricType::Counter,
                          snapshot.recovery.records},
                         {"gophermq_storage_truncated_bytes_total",
                          "Bytes of a torn or corrupt log tail cut off at start.",
                          MetricType::Counter, snapshot.recovery.truncated_bytes}});
  return families;
}

std::vector<prometheus::MetricFamily> process_families(
    std::chrono::system_clock::time_point started) {
  std::vector<prometheus::MetricFamily> families;
  families.push_back(single_gauge("process_resident_memory_bytes", "Resident memory size in bytes.",
                                  resident_memory_bytes()));
  families.push_back(single_counter("process_cpu_seconds_total",
                                    "Total user and system CPU time spent in seconds.",
                                    cpu_seconds()));
  families.push_back(
      single_gauge("process_open_fds", "Number of open file descriptors.", open_descriptors()));
  families.push_back(single_gauge("process_max_fds", "Maximum number of open file descriptors.",
                                  max_descriptors()));
  families.push_back(single_gauge(
      "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
      std::chrono::duration<double>(started.time_since_epoch()).count()));
  return families;
}

}  // namespace gophermq::metrics
