#pragma once

#include <memory>
#include <mutex>
#include <utility>

#include "auth/auth.hpp"

namespace gophermq::auth {

// The table requests are checked against, shared by every HTTP thread and replaced whole on
// reload: a request holds the table it started with, so a reload never fails one in flight.
class Keyring {
 public:
  explicit Keyring(Table table) : table_(std::make_shared<const Table>(std::move(table))) {}

  // A mutex rather than std::atomic<std::shared_ptr>: GCC 12's lock inside that type is invisible
  // to ThreadSanitizer, and a copy under an uncontended lock costs nanoseconds per request.
  [[nodiscard]] std::shared_ptr<const Table> current() const {
    const std::scoped_lock lock(mutex_);
    return table_;
  }
  void replace(Table table) {
    auto replacement = std::make_shared<const Table>(std::move(table));
    const std::scoped_lock lock(mutex_);
    table_ = std::move(replacement);
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const Table> table_;
};

}  // namespace gophermq::auth
