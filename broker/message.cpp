#include "broker/message.hpp"

#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <utility>

namespace gophermq::broker {

Message Message::create(std::string_view data) {
  Message message;
  if (data.size() <= inline_capacity) {
    if (!data.empty()) {
      std::memcpy(message.storage_, data.data(), data.size());
    }
    message.set_tag(static_cast<std::uint8_t>(data.size()));
    return message;
  }
  if (data.size() > std::numeric_limits<std::uint32_t>::max()) {
    throw std::length_error("message larger than 4 GiB");
  }
  void* memory = ::operator new(sizeof(Shared) + data.size());
  auto* shared = new (memory) Shared{{1}, static_cast<std::uint32_t>(data.size())};
  std::memcpy(static_cast<char*>(memory) + sizeof(Shared), data.data(), data.size());
  std::memcpy(message.storage_, &shared, sizeof shared);
  message.set_tag(shared_tag);
  return message;
}

Message::Message(const Message& other) noexcept : meta_(other.meta_) {
  std::memcpy(storage_, other.storage_, sizeof storage_);
  if (is_shared()) {
    shared()->references.fetch_add(1, std::memory_order_relaxed);
  }
}

Message::Message(Message&& other) noexcept : meta_(other.meta_) {
  std::memcpy(storage_, other.storage_, sizeof storage_);
  other.set_tag(0);
}

Message& Message::operator=(const Message& other) noexcept {
  if (this != &other) {
    Message copy(other);
    *this = std::move(copy);
  }
  return *this;
}

Message& Message::operator=(Message&& other) noexcept {
  if (this != &other) {
    release();
    std::memcpy(storage_, other.storage_, sizeof storage_);
    meta_ = other.meta_;
    other.set_tag(0);
  }
  return *this;
}

Message::~Message() {
  release();
}

Message::Shared* Message::shared() const noexcept {
  Shared* shared = nullptr;
  std::memcpy(&shared, storage_, sizeof shared);
  return shared;
}

void Message::release() noexcept {
  if (!is_shared()) {
    return;
  }
  Shared* header = shared();
  if (header->references.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    header->~Shared();
    ::operator delete(header);
  }
  set_tag(0);
}

std::string_view Message::data() const noexcept {
  if (is_shared()) {
    const Shared* header = shared();
    return {reinterpret_cast<const char*>(header + 1), header->size};
  }
  return {storage_, tag()};
}

std::size_t Message::size() const noexcept {
  return is_shared() ? shared()->size : tag();
}

}  // namespace gophermq::broker
