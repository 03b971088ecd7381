#pragma once

#include <atomic>
#include <memory>
#include <utility>

#include "auth/auth.hpp"

namespace gophermq::auth {

// The table requests are checked against, shared by every HTTP thread and replaced whole on
// reload: a request holds the table it started with, so a reload never fails one in flight.
class Keyring {
 public:
  explicit Keyring(Table table) : table_(std::make_shared<const Table>(std::move(table))) {}

  [[nodiscard]] std::shared_ptr<const Table> current() const {
    return table_.load(std::memory_order_acquire);
  }
  void replace(Table table) {
    table_.store(std::make_shared<const Table>(std::move(table)), std::memory_order_release);
  }

 private:
  std::atomic<std::shared_ptr<const Table>> table_;
};

}  // namespace gophermq::auth
