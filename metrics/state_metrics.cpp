#include "metrics/state_metrics.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

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
  families.push_back(single_gauge("gophermq_pending_messages",
                                  "Messages stored, one per queue holding it.",
                                  static_cast<double>(totals.pending_messages)));
  families.push_back(single_gauge("gophermq_pending_bytes", "Message bytes stored, likewise.",
                                  static_cast<double>(totals.pending_bytes)));
  families.push_back(single_gauge("gophermq_subscriptions", "Live subscriptions.",
                                  static_cast<double>(totals.subscriptions)));
  families.push_back(single_gauge("gophermq_subjects", "Subjects with at least one subscription.",
                                  static_cast<double>(totals.subjects)));
  families.push_back(single_counter("gophermq_published_messages_total",
                                    "Messages accepted by publish, once per message.",
                                    static_cast<double>(totals.counters.published)));
  families.push_back(single_counter("gophermq_delivered_messages_total",
                                    "Messages handed to consumers by fetch.",
                                    static_cast<double>(totals.counters.delivered)));
  auto dropped = family("gophermq_dropped_messages_total",
                        "Stored messages removed other than by fetch, by reason.",
                        prometheus::MetricType::Counter);
  for (const broker::DropReason reason : broker::drop_reasons_by_name) {
    dropped.metric.push_back(counter_value(
        static_cast<double>(totals.counters.dropped[static_cast<std::size_t>(reason)]),
        {"reason", std::string(name_of(reason))}));
  }
  families.push_back(std::move(dropped));
  families.push_back(single_gauge("gophermq_in_flight_messages",
                                  "Ack-mode messages delivered and not yet acked, nacked or due.",
                                  static_cast<double>(totals.in_flight)));
  families.push_back(single_counter("gophermq_acked_messages_total", "Ack-mode deliveries acked.",
                                    static_cast<double>(totals.counters.acked)));
  families.push_back(single_counter("gophermq_nacked_messages_total", "Ack-mode deliveries nacked.",
                                    static_cast<double>(totals.counters.nacked)));
  families.push_back(single_counter("gophermq_redelivered_messages_total",
                                    "Ack-mode messages delivered again after a nack or timeout.",
                                    static_cast<double>(totals.counters.redelivered)));
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
  families.push_back(single_gauge(
      "gophermq_storage_bytes", "Bytes the write-ahead log holds on disk, reserved space included.",
      static_cast<double>(snapshot.storage.bytes)));
  families.push_back(single_gauge("gophermq_storage_files", "Files of the write-ahead log.",
                                  static_cast<double>(snapshot.storage.files)));
  families.push_back(single_counter("gophermq_storage_recovered_records_total",
                                    "Log records replayed by the recovery at start.",
                                    static_cast<double>(snapshot.recovery.records)));
  families.push_back(single_counter("gophermq_storage_truncated_bytes_total",
                                    "Bytes of a torn or corrupt log tail cut off at start.",
                                    static_cast<double>(snapshot.recovery.truncated_bytes)));
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
