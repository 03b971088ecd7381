#pragma once

#include <cstddef>
#include <deque>
#include <memory>

namespace gophermq::broker {

// A deque that holds no heap while it is empty. libstdc++'s std::deque allocates its map and a
// first 512-byte block when constructed, which made every idle subscription cost over a kilobyte;
// this one allocates on the first push and gives everything back when the last element leaves.
template <typename T>
class LazyDeque {
 public:
  [[nodiscard]] bool empty() const noexcept { return items_ == nullptr; }
  [[nodiscard]] std::size_t size() const noexcept { return items_ ? items_->size() : 0; }

  T& front() { return items_->front(); }
  T& back() { return items_->back(); }
  const T& back() const { return items_->back(); }
  const T& operator[](std::size_t index) const { return (*items_)[index]; }

  void push_back(T item) { storage().push_back(std::move(item)); }

  template <typename Iterator>
  void append(Iterator first, Iterator last) {
    if (first != last) {
      storage().insert(storage().end(), first, last);
    }
  }

  void pop_front() {
    items_->pop_front();
    if (items_->empty()) {
      items_.reset();
    }
  }

  // Iteration over an empty deque visits nothing and needs no storage.
  template <typename Function>
  void for_each_until(Function function) const {
    if (!items_) {
      return;
    }
    for (const T& item : *items_) {
      if (!function(item)) {
        return;
      }
    }
  }

 private:
  std::deque<T>& storage() {
    if (!items_) {
      items_ = std::make_unique<std::deque<T>>();
    }
    return *items_;
  }

  std::unique_ptr<std::deque<T>> items_;  // null exactly when empty
};

}  // namespace gophermq::broker
