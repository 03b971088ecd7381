#pragma once

#include <chrono>

namespace gophermq::broker {

using TimePoint = std::chrono::steady_clock::time_point;

// `start + length`, or the last representable time point when the sum would not fit: a configured
// duration of any size (up to the largest count of milliseconds) then means "not within the life
// of this process" rather than wrapping into the past. `length` is never negative.
[[nodiscard]] constexpr TimePoint saturating_add(TimePoint start,
                                                 std::chrono::milliseconds length) noexcept {
  constexpr TimePoint last = TimePoint::max();
  const TimePoint::duration room = start >= TimePoint{} ? last - start : TimePoint::duration::max();
  if (length > std::chrono::duration_cast<std::chrono::milliseconds>(room)) {
    return last;
  }
  return start + std::chrono::duration_cast<TimePoint::duration>(length);
}

// Where the broker reads the time, so tests can move it by hand and lifetimes are tested exactly.
class Clock {
 public:
  virtual ~Clock() = default;
  [[nodiscard]] virtual TimePoint now() const = 0;
};

class SteadyClock final : public Clock {
 public:
  [[nodiscard]] TimePoint now() const override { return std::chrono::steady_clock::now(); }
};

// The clock the daemon uses.
inline const Clock& steady_clock() {
  static const SteadyClock clock;
  return clock;
}

}  // namespace gophermq::broker
