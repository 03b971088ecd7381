#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace gophermq::broker {

// An immutable message body shared by every queue it is stored in. One allocation holds the
// reference count, the size and the bytes, so fan-out to N subscribers costs N pointers, not N
// copies. The count is atomic because the last reference may be dropped on an HTTP thread after a
// fetch handed the message over.
class Message {
 public:
  Message() noexcept = default;
  static Message create(std::string_view data);

  Message(const Message& other) noexcept;
  Message(Message&& other) noexcept;
  Message& operator=(const Message& other) noexcept;
  Message& operator=(Message&& other) noexcept;
  ~Message();

  [[nodiscard]] std::string_view data() const noexcept;
  [[nodiscard]] std::size_t size() const noexcept;

 private:
  struct Header {
    std::atomic<std::uint32_t> references;
    std::uint32_t size;
  };

  explicit Message(Header* header) noexcept : header_(header) {}
  void release() noexcept;

  Header* header_ = nullptr;
};

}  // namespace gophermq::broker
