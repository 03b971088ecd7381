#pragma once

#include <memory>
#include <mutex>
#include <string>
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

// A push stream's right to go on (API.md §11), checked again whenever the table was replaced:
// its token must still be in it, under the same name (the name owns the stream's subscription),
// with a sub: permission that contains the stream's pattern. So removing a token, or narrowing
// it, also ends the streams it has open. One per stream, used on the stream's own executor.
class StreamGrant {
 public:
  StreamGrant(const Keyring& keyring, std::shared_ptr<const Table> table, const Digest& digest,
              std::string owner, std::string pattern)
      : keyring_(keyring),
        table_(std::move(table)),
        digest_(digest),
        owner_(std::move(owner)),
        pattern_(std::move(pattern)) {}

  [[nodiscard]] bool still_allowed() {
    auto current = keyring_.current();
    if (current == table_) {
      return allowed_;
    }
    table_ = std::move(current);
    const Principal* principal = table_->find_digest(digest_);
    allowed_ =
        principal != nullptr && principal->name == owner_ && principal->may_subscribe(pattern_);
    return allowed_;
  }

 private:
  const Keyring& keyring_;
  std::shared_ptr<const Table> table_;
  Digest digest_;
  std::string owner_;
  std::string pattern_;
  bool allowed_ = true;  // checked when the stream opened, against table_
};

}  // namespace gophermq::auth
