#include "storage/frame.hpp"

#include <boost/crc.hpp>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace gophermq::storage {

namespace {

void write_u32(char* at, std::uint32_t value) noexcept {
  for (std::size_t i = 0; i < 4; ++i) {
    at[i] = static_cast<char>(value & 0xFFU);
    value >>= 8U;
  }
}

// CRC-32C (Castagnoli), reflected, as iSCSI, ext4 and Kafka use it: better at catching the burst
// errors of a torn sector than the zlib polynomial.
using Crc32c = boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true>;

#if defined(__x86_64__)
// The instruction computes the reflected Castagnoli step without the initial and final inversion,
// which the caller applies.
__attribute__((target("sse4.2"))) std::uint32_t crc32c_step(std::uint32_t crc,
                                                            std::string_view bytes) noexcept {
  const char* at = bytes.data();
  std::size_t left = bytes.size();
  std::uint64_t wide = crc;
  for (; left >= 8; at += 8, left -= 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, at, sizeof word);
    wide = _mm_crc32_u64(wide, word);
  }
  auto narrow = static_cast<std::uint32_t>(wide);
  for (; left > 0; ++at, --left) {
    narrow = _mm_crc32_u8(narrow, static_cast<unsigned char>(*at));
  }
  return narrow;
}

bool has_sse42() noexcept {
  // A function-local static: __builtin_cpu_supports needs __builtin_cpu_init before main.
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") != 0;
  }();
  return has;
}
#endif

}  // namespace

std::uint32_t crc32c(std::string_view first, std::string_view second) noexcept {
#if defined(__x86_64__)
  if (has_sse42()) {
    return ~crc32c_step(crc32c_step(~0U, first), second);
  }
#endif
  return crc32c_table(first, second);
}

std::uint32_t crc32c_table(std::string_view first, std::string_view second) noexcept {
  Crc32c engine;
  engine.process_bytes(first.data(), first.size());
  engine.process_bytes(second.data(), second.size());
  return engine.checksum();
}

std::size_t open_frame(std::string& out) {
  out.append(frame_header_bytes, '\0');
  return out.size();
}

void seal_frame(std::string& out, std::size_t payload_start) {
  char* header = out.data() + payload_start - frame_header_bytes;
  const auto size = static_cast<std::uint32_t>(out.size() - payload_start);
  write_u32(header, size);
  const std::string_view payload(out.data() + payload_start, size);
  write_u32(header + 4, crc32c({header, 4}, payload));
}

}  // namespace gophermq::storage
