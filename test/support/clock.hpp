// The clock tests time the broker with, and the time since a point of it.
#pragma once

#include <chrono>

namespace gophermq::test {

using Clock = std::chrono::steady_clock;

inline std::chrono::milliseconds since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

}  // namespace gophermq::test
