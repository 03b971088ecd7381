#include "broker/ack.hpp"

#include <charconv>
#include <system_error>

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

}  // namespace gophermq::broker
