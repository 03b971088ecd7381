#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string_view>

namespace gophermq::broker {

// An immutable message body. A small body is stored inside the 24-byte handle itself: a queue of
// small messages costs 24 bytes per message and no heap allocation, which is what keeps a million
// stored 16-byte messages under 40 bytes each. A larger body lives in one shared allocation
// holding the reference count, the size and the bytes, so fan-out to N subscribers costs N
// handles, not N copies. The count is atomic because the last reference may be dropped on an HTTP
// thread after a fetch handed the message over.
class Message {
 public:
  static constexpr std::size_t inline_capacity = 23;

  Message() noexcept = default;
  static Message create(std::string_view data);

  Message(const Message& other) noexcept;
  Message(Message&& other) noexcept;
  Message& operator=(const Message& other) noexcept;
  Message& operator=(Message&& other) noexcept;
  ~Message();

  // Points into the handle for a small body: valid while this handle lives where it is.
  [[nodiscard]] std::string_view data() const noexcept;
  [[nodiscard]] std::size_t size() const noexcept;
  [[nodiscard]] bool is_shared() const noexcept { return tag_ == shared_tag; }

 private:
  struct Shared {
    std::atomic<std::uint32_t> references;
    std::uint32_t size;
  };
  static constexpr std::uint8_t shared_tag = 0xFF;

  [[nodiscard]] Shared* shared() const noexcept;
  void release() noexcept;

  // The inline bytes, or the Shared pointer in the first eight of them.
  alignas(Shared*) char storage_[inline_capacity] = {};
  std::uint8_t tag_ = 0;  // the inline size, or shared_tag
};

static_assert(sizeof(Message) == 24);

// Messages handed over by a fetch, oldest first. A deque rather than a vector: taking a whole
// queue moves the messages into blocks the queue has just freed, and the encoder frees them as it
// writes, so a fetch of everything never holds the messages twice.
using FetchedMessages = std::deque<Message>;

}  // namespace gophermq::broker
