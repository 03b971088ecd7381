#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "broker/message.hpp"
#include "broker/string_map.hpp"
#include "broker/subject_index.hpp"

namespace gophermq::broker {

struct Limits {
  std::uint64_t max_pending = 1'000'000;
  std::uint64_t max_pending_bytes = 512ULL * 1024 * 1024;
  std::size_t max_subject_length = 256;
};

// The messages waiting for one ungrouped subscriber, or for one queue group.
struct Queue {
  std::deque<Message> messages;
  std::size_t members = 0;
};

enum class SubscribeStatus { ok, invalid_subject, invalid_group, duplicate_id };
enum class PublishStatus { ok, invalid_subject, no_subscribers, overflow };
enum class FetchStatus { ok, invalid_subject, bad_id };
enum class UnsubscribeStatus { ok, invalid_subject, bad_id };

enum class DropReason : std::size_t { unsubscribe, count };

struct Counters {
  std::uint64_t published = 0;
  std::uint64_t delivered = 0;
  std::uint64_t dropped[static_cast<std::size_t>(DropReason::count)] = {};
};

struct Totals {
  std::uint64_t pending_messages = 0;
  std::uint64_t pending_bytes = 0;
  std::size_t subscriptions = 0;
  std::size_t subjects = 0;
  Counters counters;
};

// The broker's whole state. A plain single-threaded class: the daemon owns it from one strand, and
// tests drive it directly. Persistence, when it comes, sits behind publish (append before storing)
// and fetch (acknowledge after removing).
class Broker {
 public:
  explicit Broker(Limits limits);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // Without a group the subscription gets a queue of its own; with one it shares the group's.
  SubscribeStatus subscribe(std::string_view id, std::string_view subject,
                            std::optional<std::string_view> group);

  // Stores every message for every matching queue, in order, or nothing at all.
  PublishStatus publish(std::string_view subject, std::span<const Message> messages);

  // Moves up to `max` of the subscription's oldest pending messages into `out`.
  FetchStatus fetch(std::string_view subject, std::string_view id, std::size_t max,
                    std::vector<Message>& out);

  UnsubscribeStatus unsubscribe(std::string_view subject, std::string_view id);

  [[nodiscard]] Totals totals() const;
  [[nodiscard]] const Limits& limits() const noexcept { return limits_; }

 private:
  struct Subscription {
    std::string subject;
    std::string group;
    Queue* queue = nullptr;
    std::unique_ptr<Queue> own_queue;
  };

  // Every subscription sharing one subject pattern, and the queue of each of its groups.
  struct Topic {
    std::size_t subscriptions = 0;
    StringMap<std::unique_ptr<Queue>> groups;
  };

  Queue& join_group(Topic& topic, std::string_view subject, std::string_view group);
  void leave_group(Topic& topic, const Subscription& subscription);
  void drop_pending(Queue& queue, DropReason reason);
  Subscription* find_subscription(std::string_view subject, std::string_view id);

  Limits limits_;
  SubjectIndex index_;
  StringMap<Subscription> subscriptions_;
  StringMap<Topic> topics_;
  std::uint64_t pending_messages_ = 0;
  std::uint64_t pending_bytes_ = 0;
  Counters counters_;
  std::vector<Queue*> matched_;  // reused by publish to avoid an allocation per call
};

}  // namespace gophermq::broker
