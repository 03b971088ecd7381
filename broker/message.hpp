#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string_view>

namespace gophermq::broker {

// An immutable message body and its sequence number. A body of up to 16 bytes is stored inside
// the 24-byte handle itself: a queue of small messages costs 24 bytes per message and no heap
// allocation, which is what keeps a million stored 16-byte messages under 40 bytes each. A larger
// body lives in one shared allocation holding the reference count, the size and the bytes, so
// fan-out to N subscribers costs N handles, not N copies. The count is atomic because the last
// reference may be dropped on an HTTP thread after a fetch handed the message over.
//
// The sequence number shares the handle's last eight bytes with the tag, so it costs no memory:
// it keeps 56 bits, which at ten million publishes a second last over 200 years.
class Message {
 public:
  static constexpr std::size_t inline_capacity = 16;
  static constexpr std::uint64_t max_seq = (std::uint64_t{1} << 56) - 1;

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
  [[nodiscard]] bool is_shared() const noexcept { return tag() == shared_tag; }

  // The broker-wide publish sequence, 1 for the first message ever stored; 0 until published.
  [[nodiscard]] std::uint64_t seq() const noexcept { return meta_ & max_seq; }
  // `seq` is at most max_seq.
  void set_seq(std::uint64_t seq) noexcept { meta_ = (meta_ & ~max_seq) | (seq & max_seq); }

 private:
  struct Shared {
    std::atomic<std::uint32_t> references;
    std::uint32_t size;
  };
  static constexpr std::uint8_t shared_tag = 0xFF;
  static constexpr int tag_shift = 56;

  [[nodiscard]] std::uint8_t tag() const noexcept {
    return static_cast<std::uint8_t>(meta_ >> tag_shift);
  }
  void set_tag(std::uint8_t tag) noexcept {
    meta_ = (meta_ & max_seq) | (std::uint64_t{tag} << tag_shift);
  }
  [[nodiscard]] Shared* shared() const noexcept;
  void release() noexcept;

  // The inline bytes, or the Shared pointer in the first eight of them.
  alignas(Shared*) char storage_[inline_capacity] = {};
  std::uint64_t meta_ = 0;  // the tag (the inline size, or shared_tag) above the sequence number
};

static_assert(sizeof(Message) == 24);

// Messages handed over by a fetch, oldest first. A deque rather than a vector: taking a whole
// queue moves the messages into blocks the queue has just freed, and the encoder frees them as it
// writes, so a fetch of everything never holds the messages twice.
using FetchedMessages = std::deque<Message>;

}  // namespace gophermq::broker
