#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace gophermq::broker {

// What a publish does to a queue already holding max-pending-per-queue messages.
enum class SlowQueuePolicy { reject, drop_oldest };

// Every bound the broker core enforces; the config nests one of these and hands it over as is.
struct Limits {
  std::uint64_t max_pending = 1'000'000;
  std::uint64_t max_pending_bytes = 512ULL * 1024 * 1024;
  std::size_t max_subject_length = 256;
  std::size_t max_message_bytes = 1024 * 1024;
  std::size_t max_subscriptions = 100'000;
  std::uint64_t max_pending_per_queue = 0;  // 0: no per-queue bound
  SlowQueuePolicy slow_queue_policy = SlowQueuePolicy::reject;
  std::chrono::milliseconds subscriber_ttl{3'600'000};  // 0: subscriptions never expire
  std::chrono::milliseconds message_ttl{0};             // 0: messages never expire
  std::chrono::milliseconds dedupe_window{120'000};     // 0: no deduplication by msg_id
};

}  // namespace gophermq::broker
