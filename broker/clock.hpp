#pragma once

#include <chrono>

namespace gophermq::broker {

using TimePoint = std::chrono::steady_clock::time_point;

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
