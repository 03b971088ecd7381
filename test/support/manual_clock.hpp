// A broker clock the unit tests move by hand, so lifetimes are tested exactly.
#pragma once

#include <chrono>

#include "broker/clock.hpp"

namespace gophermq::test {

class ManualClock final : public broker::Clock {
 public:
  [[nodiscard]] broker::TimePoint now() const override { return now_; }
  void advance(std::chrono::milliseconds by) { now_ += by; }

 private:
  // An hour in, so a test can look back from the start without going below the clock's epoch.
  broker::TimePoint now_{std::chrono::hours(1)};
};

}  // namespace gophermq::test
