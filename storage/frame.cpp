#include "storage/frame.hpp"

#include <array>
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

// The reflected Castagnoli polynomial: bit 31 is x^0.
constexpr std::uint32_t kPolynomial = 0x82F63B78U;

// a times b modulo the polynomial, in the reflected representation. Masks instead of branches:
// the bits are as good as random, so a branch would be mispredicted half the time.
constexpr std::uint32_t multiply_mod(std::uint32_t a, std::uint32_t b) noexcept {
  std::uint32_t product = 0;
  for (std::uint32_t shift = 32; shift-- > 0;) {
    product ^= b & (0U - ((a >> shift) & 1U));
    b = (b >> 1U) ^ (kPolynomial & (0U - (b & 1U)));
  }
  return product;
}

// x^(8 * b * 256^i) modulo the polynomial for each byte b of a 32-bit size, so that the shift by
// any size is at most four lookups and three products.
constexpr std::array<std::array<std::uint32_t, 256>, 4> kShifts = [] {
  std::array<std::array<std::uint32_t, 256>, 4> shifts{};
  std::uint32_t power = 1U << 23U;  // x^8: the shift by one byte
  for (std::size_t i = 0; i < shifts.size(); ++i) {
    auto& table = shifts[i];
    for (int square = 0; i != 0 && square < 8; ++square) {
      power = multiply_mod(power, power);
    }
    table[0] = 1U << 31U;  // x^0
    for (std::size_t b = 1; b < table.size(); ++b) {
      table[b] = multiply_mod(table[b - 1], power);
    }
  }
  return shifts;
}();

}  // namespace

std::uint32_t crc32c_combine(std::uint32_t crc_a, std::uint32_t crc_b,
                             std::uint32_t size_b) noexcept {
  // Appending size_b bytes multiplies crc_a by x^(8 * size_b).
  std::uint32_t shift = kShifts[0][size_b & 0xFFU];
  for (std::size_t i = 1; i < kShifts.size(); ++i) {
    const std::uint32_t byte = (size_b >> (8 * i)) & 0xFFU;
    if (byte != 0) {
      shift = multiply_mod(shift, kShifts[i][byte]);
    }
  }
  return multiply_mod(shift, crc_a) ^ crc_b;
}

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
