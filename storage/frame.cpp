#include "storage/frame.hpp"

#include <boost/crc.hpp>

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

}  // namespace

std::uint32_t crc32c(std::string_view first, std::string_view second) noexcept {
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
