#include "broker/ack.hpp"

#include <charconv>
#include <string>
#include <system_error>
#include <utility>

#include "broker/subject.hpp"

namespace gophermq::broker {

bool is_valid(const AckOptions& options, std::size_t max_subject_length) noexcept {
  if (!options.ack) {
    return options == AckOptions{};
  }
  if (options.ack_wait < AckOptions::kMinAckWait || options.ack_wait > AckOptions::kMaxAckWait) {
    return false;
  }
  if (options.max_deliveries > AckOptions::kMaxMaxDeliveries) {
    return false;
  }
  if (options.max_in_flight < 1 || options.max_in_flight > AckOptions::kMaxMaxInFlight) {
    return false;
  }
  if (options.dead_letter.empty()) {
    return true;
  }
  return options.max_deliveries != 0 &&
         is_valid_subject(options.dead_letter, SubjectUse::publish, max_subject_length);
}

namespace {

constexpr int kBase = 16;

// A hex number without leading zeros spanning all of `text`.
template <typename Number>
std::optional<Number> parse_hex(std::string_view text) noexcept {
  if (text.empty() || (text.size() > 1 && text.front() == '0')) {
    return std::nullopt;
  }
  Number value = 0;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value, kBase);
  if (error != std::errc{} || stop != end) {
    return std::nullopt;
  }
  return value;
}

}  // namespace

std::string format_receipt(Receipt receipt) {
  // 16 hex digits, a dash and 8 hex digits.
  char buffer[25];
  char* const end = buffer + sizeof buffer;
  char* next = std::to_chars(buffer, end, receipt.seq, kBase).ptr;
  *next++ = '-';
  next = std::to_chars(next, end, receipt.delivery, kBase).ptr;
  return {buffer, next};
}

std::optional<Receipt> parse_receipt(std::string_view text) noexcept {
  const std::size_t dash = text.find('-');
  if (dash == std::string_view::npos) {
    return std::nullopt;
  }
  for (const char c : text) {
    // from_chars takes upper-case digits too; one spelling per delivery needs lower case only.
    if (c >= 'A' && c <= 'F') {
      return std::nullopt;
    }
  }
  const auto seq = parse_hex<std::uint64_t>(text.substr(0, dash));
  const auto delivery = parse_hex<std::uint32_t>(text.substr(dash + 1));
  if (!seq || !delivery || *delivery == 0) {
    return std::nullopt;
  }
  return Receipt{*seq, *delivery};
}

std::string DedupeWindow::key_of(std::string_view subject, std::string_view msg_id) {
  // The subject's length first: subject and msg_id may hold any byte, and no two pairs may
  // share a key.
  std::string key = std::to_string(subject.size());
  key += ':';
  key += subject;
  key += msg_id;
  return key;
}

std::pair<std::string_view, std::string_view> DedupeWindow::split_key(
    std::string_view key) noexcept {
  const std::size_t colon = key.find(':');
  std::size_t length = 0;
  std::from_chars(key.data(), key.data() + colon, length);
  const std::string_view rest = key.substr(colon + 1);
  return {rest.substr(0, length), rest.substr(length)};
}

bool DedupeWindow::seen(std::string_view subject, std::string_view msg_id, TimePoint now) {
  if (window_.count() <= 0) {
    return false;
  }
  expire(now);
  std::string key = key_of(subject, msg_id);
  const auto [found, added] = recorded_.try_emplace(key, now);
  if (!added) {
    // A clock that went back (a replayed time) may leave an entry older than the front.
    if (now < saturating_add(found->second, window_)) {
      return true;
    }
    found->second = now;
  } else {
    bytes_ += key.size();
  }
  order_.push_back({now, std::move(key)});
  return false;
}

bool DedupeWindow::contains(std::string_view subject, std::string_view msg_id,
                            TimePoint now) const {
  if (window_.count() <= 0) {
    return false;
  }
  const auto found = recorded_.find(key_of(subject, msg_id));
  return found != recorded_.end() && now < saturating_add(found->second, window_);
}

void DedupeWindow::expire(TimePoint now) {
  while (!order_.empty() && saturating_add(order_.front().at, window_) <= now) {
    Entry& oldest = order_.front();
    const auto found = recorded_.find(oldest.key);
    if (found != recorded_.end() && found->second == oldest.at) {
      bytes_ -= oldest.key.size();
      recorded_.erase(found);
    }
    order_.pop_front();
  }
}

}  // namespace gophermq::broker
