#include "broker/message.hpp"

#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <utility>

namespace gophermq::broker {

Message Message::create(std::string_view data) {
  if (data.size() > std::numeric_limits<std::uint32_t>::max()) {
    throw std::length_error("message larger than 4 GiB");
  }
  void* memory = ::operator new(sizeof(Header) + data.size());
  auto* header = new (memory) Header{{1}, static_cast<std::uint32_t>(data.size())};
  if (!data.empty()) {
    std::memcpy(reinterpret_cast<char*>(header) + sizeof(Header), data.data(), data.size());
  }
  return Message(header);
}

Message::Message(const Message& other) noexcept : header_(other.header_) {
  if (header_ != nullptr) {
    header_->references.fetch_add(1, std::memory_order_relaxed);
  }
}

Message::Message(Message&& other) noexcept : header_(std::exchange(other.header_, nullptr)) {}

Message& Message::operator=(const Message& other) noexcept {
  Message copy(other);
  std::swap(header_, copy.header_);
  return *this;
}

Message& Message::operator=(Message&& other) noexcept {
  Message moved(std::move(other));
  std::swap(header_, moved.header_);
  return *this;
}

Message::~Message() {
  release();
}

void Message::release() noexcept {
  if (header_ != nullptr && header_->references.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    header_->~Header();
    ::operator delete(header_);
  }
}

std::string_view Message::data() const noexcept {
  if (header_ == nullptr) {
    return {};
  }
  return {reinterpret_cast<const char*>(header_ + 1), header_->size};
}

std::size_t Message::size() const noexcept {
  return header_ == nullptr ? 0 : header_->size;
}

}  // namespace gophermq::broker
