#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "broker/clock.hpp"

// The rules of API.md §9 that need no queue state: ack options, receipts and msg_ids. The
// at-least-once core (in-flight messages, redelivery, dead letters, dedupe window) builds on them.
namespace gophermq::broker {

// A subscription's delivery options. Plain subscriptions (ack false) carry the defaults and may
// not set any other option.
struct AckOptions {
  static constexpr std::chrono::milliseconds kDefaultAckWait{30'000};
  static constexpr std::chrono::milliseconds kMinAckWait{1'000};
  static constexpr std::chrono::milliseconds kMaxAckWait{43'200'000};
  static constexpr std::uint32_t kMaxMaxDeliveries = 1'000;
  static constexpr std::uint32_t kDefaultMaxInFlight = 1'000;
  static constexpr std::uint32_t kMaxMaxInFlight = 100'000;

  bool ack = false;
  std::chrono::milliseconds ack_wait = kDefaultAckWait;
  std::uint32_t max_deliveries = 0;  // 0: unlimited
  std::string dead_letter;           // empty: drop after max_deliveries
  std::uint32_t max_in_flight = kDefaultMaxInFlight;

  friend bool operator==(const AckOptions&, const AckOptions&) = default;
};

// Whether `options` hold for a subscription: every value in its range; a plain subscription
// with nothing but defaults; a dead_letter only with max_deliveries, and a concrete subject of at
// most `max_subject_length` bytes. Members of one queue group must give equal options: the caller
// compares them with the group's, since the queue, not the member, holds messages in flight.
[[nodiscard]] bool is_valid(const AckOptions& options, std::size_t max_subject_length) noexcept;

// One delivery of one message: the publish sequence number and which delivery it was. A later
// delivery of the same message makes an older receipt stale.
struct Receipt {
  std::uint64_t seq = 0;
  std::uint32_t delivery = 0;

  friend bool operator==(const Receipt&, const Receipt&) = default;
};

// The wire form: "<seq>-<delivery>" in lower-case hex, at most 25 bytes. Clients treat it as
// opaque; parse accepts exactly what format produces (no leading zeros, no signs, no zero
// delivery) so one delivery has one spelling.
[[nodiscard]] std::string format_receipt(Receipt receipt);
[[nodiscard]] std::optional<Receipt> parse_receipt(std::string_view text) noexcept;

inline constexpr std::size_t kMaxMsgIdLength = 128;

// A msg_id is 1 to 128 bytes of anything.
[[nodiscard]] constexpr bool is_valid_msg_id(std::string_view msg_id) noexcept {
  return !msg_id.empty() && msg_id.size() <= kMaxMsgIdLength;
}

// The msg_ids published to each subject within the last `window`. Entries leave in the order they
// came once the window has passed, at amortised O(1) each, so memory is bounded by the publish
// rate times the window and counted in bytes(). A zero window turns deduplication off.
class DedupeWindow {
 public:
  explicit DedupeWindow(std::chrono::milliseconds window) noexcept : window_(window) {}

  // True when `msg_id` was recorded for `subject` less than the window before `now`; otherwise
  // records it at `now` and returns false.
  bool seen(std::string_view subject, std::string_view msg_id, TimePoint now);
  // Whether `msg_id` was recorded for `subject` less than the window before `now`, recording
  // nothing: a publish that fails must not make its retry a duplicate.
  [[nodiscard]] bool contains(std::string_view subject, std::string_view msg_id,
                              TimePoint now) const;
  // Forgets the entries recorded at least the window before `now`.
  void expire(TimePoint now);

  // Visits every entry held, oldest first, as function(subject, msg_id, recorded at): what a
  // checkpoint writes and seen() in that order rebuilds.
  template <typename Function>
  void for_each(Function function) const {
    for (const Entry& entry : order_) {
      const auto found = recorded_.find(entry.key);
      if (found != recorded_.end() && found->second == entry.at) {
        const auto [subject, msg_id] = split_key(entry.key);
        function(subject, msg_id, entry.at);
      }
    }
  }

  [[nodiscard]] std::size_t size() const noexcept { return recorded_.size(); }
  // The bytes of subject and msg_id held, the measure of the window's memory.
  [[nodiscard]] std::uint64_t bytes() const noexcept { return bytes_; }

 private:
  struct Entry {
    TimePoint at;
    std::string key;
  };
  static std::string key_of(std::string_view subject, std::string_view msg_id);
  static std::pair<std::string_view, std::string_view> split_key(std::string_view key) noexcept;

  std::chrono::milliseconds window_;
  // Oldest first; a key recorded again after its window passed has a newer entry here, and the
  // older one then leaves without touching recorded_.
  std::deque<Entry> order_;
  std::unordered_map<std::string, TimePoint> recorded_;
  std::uint64_t bytes_ = 0;
};

}  // namespace gophermq::broker
