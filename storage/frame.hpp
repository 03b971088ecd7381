#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gophermq::storage {

// A log file is a sequence of frames: the payload's length (four bytes, little-endian), a CRC-32C
// of those four bytes and the payload (four bytes), then the payload, which is one encoded journal
// record and so starts with its type. The length is inside the checksum so that a flipped length
// bit cannot make a reader skip or swallow good frames. Files are preallocated with zeros, so a
// zero length, where a frame would start, is the clean end of what was written.
inline constexpr std::size_t frame_header_bytes = 8;

// Bounds the allocation a corrupt length could ask for; a record is far smaller (a batch publish
// is at most the largest request body, and a checkpoint splits queues into ~1 MiB records).
inline constexpr std::uint32_t max_frame_payload = 256U * 1024 * 1024;

// The CRC-32C of `first` followed by `second`: with the SSE4.2 instruction where the CPU has it
// (eight bytes a step, several times the table's speed on every record written and recovered),
// otherwise Boost.CRC's table.
[[nodiscard]] std::uint32_t crc32c(std::string_view first, std::string_view second = {}) noexcept;
// The same from Boost.CRC's table always: the fallback, and the reference the instruction is
// tested against.
[[nodiscard]] std::uint32_t crc32c_table(std::string_view first,
                                         std::string_view second = {}) noexcept;

// The CRC-32C of `a` followed by `b` from crc32c(a), crc32c(b) and the size of `b` (zlib's
// crc32_combine): the checksum of any piece of a file from the checksums of its prefixes, so that
// recovery can test a frame at every offset of a damaged file without reading each candidate's
// payload again. A few products of 32-bit polynomials.
[[nodiscard]] std::uint32_t crc32c_combine(std::uint32_t crc_a, std::uint32_t crc_b,
                                           std::uint32_t size_b) noexcept;

// Appends the header for a payload of `size` bytes that the caller appends right after, so the
// record is encoded in place: `payload_start` is where the payload begins. seal_frame fills in the
// length and checksum once the payload is there.
std::size_t open_frame(std::string& out);
void seal_frame(std::string& out, std::size_t payload_start);

enum class FrameEnd {
  clean,  // the bytes ended, or zeros began, exactly where a frame would start
  torn,   // a frame was cut short, or its length or checksum is wrong
};

struct ScanResult {
  std::size_t valid_bytes = 0;  // the offset just past the last good frame
  FrameEnd end = FrameEnd::clean;
};

// Calls visit(payload, offset) for each good frame from the start of `bytes`, in order, and stops
// at the first that is not; `visit` returns false to stop early (valid_bytes is then the offset of
// the frame it refused).
template <typename Visit>
ScanResult scan_frames(std::string_view bytes, Visit visit);

namespace frame_detail {

[[nodiscard]] inline std::uint32_t read_u32(const char* at) noexcept {
  std::uint32_t value = 0;
  for (std::size_t i = 4; i-- > 0;) {
    value = (value << 8U) | static_cast<unsigned char>(at[i]);
  }
  return value;
}

[[nodiscard]] inline bool all_zero(std::string_view bytes) noexcept {
  return std::all_of(bytes.begin(), bytes.end(), [](char byte) { return byte == 0; });
}

}  // namespace frame_detail

template <typename Visit>
ScanResult scan_frames(std::string_view bytes, Visit visit) {
  ScanResult result;
  std::size_t offset = 0;
  while (offset < bytes.size()) {
    const std::string_view rest = bytes.substr(offset);
    if (rest.size() < frame_header_bytes) {
      result.end = frame_detail::all_zero(rest) ? FrameEnd::clean : FrameEnd::torn;
      break;
    }
    const std::uint32_t size = frame_detail::read_u32(rest.data());
    const std::uint32_t stored_crc = frame_detail::read_u32(rest.data() + 4);
    if (size == 0 && stored_crc == 0) {
      // Preallocated space. Anything but zeros after it means frames were written past a hole.
      result.end = frame_detail::all_zero(rest) ? FrameEnd::clean : FrameEnd::torn;
      break;
    }
    if (size > max_frame_payload || size > rest.size() - frame_header_bytes) {
      result.end = FrameEnd::torn;
      break;
    }
    const std::string_view payload = rest.substr(frame_header_bytes, size);
    if (crc32c(rest.substr(0, 4), payload) != stored_crc) {
      result.end = FrameEnd::torn;
      break;
    }
    if (!visit(payload, offset)) {
      break;
    }
    offset += frame_header_bytes + size;
  }
  result.valid_bytes = offset;
  return result;
}

}  // namespace gophermq::storage
