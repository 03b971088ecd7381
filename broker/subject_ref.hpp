#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace gophermq::broker {

// The subjects messages were published to, each held once however many queued messages name it:
// a queued message pays one pointer for its subject and no allocation. Broker strand only, so the
// counts need no atomics; an entry leaves the table with its last reference.
class SubjectTable;

class SubjectRef {
 public:
  SubjectRef() noexcept = default;
  SubjectRef(const SubjectRef& other) noexcept : entry_(other.entry_) { retain(); }
  SubjectRef(SubjectRef&& other) noexcept : entry_(std::exchange(other.entry_, nullptr)) {}
  SubjectRef& operator=(SubjectRef other) noexcept {
    std::swap(entry_, other.entry_);
    return *this;
  }
  ~SubjectRef();

  [[nodiscard]] std::string_view name() const noexcept;

 private:
  friend class SubjectTable;
  struct Entry {
    std::string name;
    std::size_t references = 0;
    SubjectTable* table = nullptr;
  };
  explicit SubjectRef(Entry* entry) noexcept : entry_(entry) { retain(); }
  void retain() noexcept {
    if (entry_ != nullptr) {
      ++entry_->references;
    }
  }

  Entry* entry_ = nullptr;
};

static_assert(sizeof(SubjectRef) == sizeof(void*));

class SubjectTable {
 public:
  SubjectTable() = default;
  SubjectTable(const SubjectTable&) = delete;
  SubjectTable& operator=(const SubjectTable&) = delete;

  [[nodiscard]] SubjectRef intern(std::string_view name) {
    auto found = entries_.find(name);
    if (found == entries_.end()) {
      auto entry = std::make_unique<SubjectRef::Entry>();
      entry->name = name;
      entry->table = this;
      const std::string_view key = entry->name;
      found = entries_.emplace(key, std::move(entry)).first;
    }
    return SubjectRef(found->second.get());
  }
  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }

 private:
  friend class SubjectRef;
  std::unordered_map<std::string_view, std::unique_ptr<SubjectRef::Entry>> entries_;
};

inline SubjectRef::~SubjectRef() {
  if (entry_ != nullptr && --entry_->references == 0) {
    entry_->table->entries_.erase(entry_->name);
  }
}

inline std::string_view SubjectRef::name() const noexcept {
  return entry_ != nullptr ? std::string_view(entry_->name) : std::string_view();
}

}  // namespace gophermq::broker
