#include "storage/recovery.hpp"

#include <fcntl.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "storage/frame.hpp"

namespace gophermq::storage {

namespace {

struct LogFile {
  std::uint64_t index = 0;
  bool starts_checkpoint = false;  // and holds all of it
  bool written = false;            // holds anything but preallocated zeros
  std::string bytes;               // kept from the first read while the cache has room
};

// The files read while looking for the checkpoint are kept for the replay up to this many bytes,
// so a log of a few files is read once; a larger one is read again, a file at a time.
constexpr std::size_t kKeptBytes = std::size_t{256} << 20;

[[nodiscard]] std::optional<broker::RecordType> type_of(std::string_view payload) {
  if (payload.empty()) {
    return std::nullopt;
  }
  return static_cast<broker::RecordType>(static_cast<unsigned char>(payload.front()));
}

// Refuses a file whose checkpoint was written in another format: its records would not decode.
void check_format(std::string_view bytes, const std::filesystem::path& path) {
  std::optional<std::uint8_t> format;
  scan_frames(bytes, [&](std::string_view payload, std::size_t /*offset*/) {
    format = broker::checkpoint_format(payload);
    return false;
  });
  if (format && *format != broker::log_format) {
    throw CorruptLog("storage: " + path.string() + " is in log format " + std::to_string(*format) +
                     ", this broker reads format " + std::to_string(broker::log_format) +
                     " only; move the directory aside or drain it with the older broker");
  }
}

[[nodiscard]] std::optional<broker::RecordType> first_type(std::string_view bytes) {
  std::optional<broker::RecordType> type;
  scan_frames(bytes, [&](std::string_view payload, std::size_t /*offset*/) {
    type = type_of(payload);
    return false;
  });
  return type;
}

// Whether the checkpoint at the start of the file is all there, up to its end record.
bool holds_whole_checkpoint(std::string_view bytes) {
  bool whole = false;
  scan_frames(bytes, [&](std::string_view payload, std::size_t /*offset*/) {
    whole = type_of(payload) == broker::RecordType::checkpoint_end;
    return !whole;
  });
  return whole;
}

// Bytes in `bytes` from `from` to the last that is not zero: what a cut loses (the preallocated
// zeros after it are nothing).
std::uint64_t written_bytes_from(std::string_view bytes, std::size_t from) {
  std::size_t last = bytes.size();
  while (last > from && bytes[last - 1] == 0) {
    --last;
  }
  return last - from;
}

// The checksums of the prefixes of `bytes` at every kBlock bytes: the checksum of any range then
// costs at most two partial blocks and a few combines, whatever its length.
class RangeCrc {
 public:
  explicit RangeCrc(std::string_view bytes) : bytes_(bytes) {
    prefixes_.reserve(bytes.size() / kBlock + 1);
    std::uint32_t crc = 0;
    prefixes_.push_back(crc);
    for (std::size_t end = kBlock; end <= bytes.size(); end += kBlock) {
      crc = crc32c_combine(crc, crc32c(bytes.substr(end - kBlock, kBlock)), kBlock);
      prefixes_.push_back(crc);
    }
  }

  // The CRC-32C of bytes[0, end).
  [[nodiscard]] std::uint32_t prefix(std::size_t end) const {
    const std::size_t block = end / kBlock;
    const std::size_t from = block * kBlock;
    return crc32c_combine(prefixes_[block], crc32c(bytes_.substr(from, end - from)),
                          static_cast<std::uint32_t>(end - from));
  }

 private:
  static constexpr std::uint32_t kBlock = 256;

  std::string_view bytes_;
  std::vector<std::uint32_t> prefixes_;
};

// Whether a frame that a writer could have written (its length fits, its checksum matches and its
// record decodes) starts anywhere after the first byte of the bad frame at `bad`. The offset
// right after the bad frame's own length comes first: a flipped payload byte leaves that length
// right. Then every offset up to the last byte that is not zero: most are rejected by their
// length alone, and a checksum costs a few hundred bytes whatever the length, so the search stays
// linear in the file's size even over garbage.
bool frame_follows(std::string_view bytes, std::size_t bad) {
  const std::size_t written_end = bad + written_bytes_from(bytes, bad);
  const auto size_at = [&](std::size_t at) -> std::optional<std::uint32_t> {
    if (bytes.size() - at < frame_header_bytes) {
      return std::nullopt;
    }
    const std::uint32_t size = frame_detail::read_u32(bytes.data() + at);
    if (size == 0 || size > max_frame_payload || size > bytes.size() - at - frame_header_bytes) {
      return std::nullopt;
    }
    return size;
  };
  broker::RecordStorage scratch;
  const auto is_frame = [&](std::size_t at, std::uint32_t size, std::uint32_t crc) {
    return crc == frame_detail::read_u32(bytes.data() + at + 4) &&
           broker::decode(bytes.substr(at + frame_header_bytes, size), scratch).has_value();
  };
  if (const auto bad_size = size_at(bad)) {
    const std::size_t next = bad + frame_header_bytes + *bad_size;
    if (next < written_end) {
      if (const auto size = size_at(next)) {
        const auto crc =
            crc32c(bytes.substr(next, 4), bytes.substr(next + frame_header_bytes, *size));
        if (is_frame(next, *size, crc)) {
          return true;
        }
      }
    }
  }
  std::optional<RangeCrc> crcs;
  for (std::size_t at = bad + 1; at < written_end; ++at) {
    const auto size = size_at(at);
    if (!size) {
      continue;
    }
    if (!crcs) {
      crcs.emplace(bytes.substr(bad));
    }
    // The checksum of the length bytes and the payload from the prefix checksums P: the shift by
    // the length of crc(length bytes) ^ P(payload start), then ^ P(payload end).
    const std::size_t payload = at + frame_header_bytes - bad;
    const auto crc = crc32c_combine(crc32c(bytes.substr(at, 4)) ^ crcs->prefix(payload),
                                    crcs->prefix(payload + *size), *size);
    if (is_frame(at, *size, crc)) {
      return true;
    }
  }
  return false;
}

// A bad frame of the newest file is a torn tail only if nothing written follows it: a crash
// mid-write leaves nothing after the frame it cut. Preallocated zeros where a frame would start
// are the end of the log, whatever follows them.
void refuse_if_frames_follow(std::string_view bytes, std::size_t bad,
                             const std::filesystem::path& path) {
  if (frame_detail::all_zero(bytes.substr(bad, frame_header_bytes)) || !frame_follows(bytes, bad)) {
    return;
  }
  throw CorruptLog("storage: corrupt record in " + path.string() + " at byte " +
                   std::to_string(bad));
}

void cut_file(const Directory& directory, std::uint64_t index, std::uint64_t length) {
  const auto path = directory.file_path(index);
  const FileHandle file(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (file.get() < 0) {
    throw_errno("open", path);
  }
  truncate_file(file.get(), length, path);
  sync_data(file.get(), path);
}

}  // namespace

RecoveryReport recover(const Directory& directory, broker::Broker& broker, TimeBase time_base) {
  const auto started = std::chrono::steady_clock::now();
  RecoveryReport report;
  std::vector<std::uint64_t> indexes = directory.list();
  if (!indexes.empty()) {
    report.next_file = indexes.back() + 1;
  }
  // Back from the newest file to the newest that starts with a whole checkpoint. A checkpoint cut
  // short can only be in the newest file with anything written (nothing is written after a
  // checkpoint in a later file before it is whole); files prepared and never written are empty.
  // One file is read at a time: the log may be far larger than memory.
  std::vector<LogFile> files;
  bool later_content = false;
  std::size_t kept = 0;
  while (!indexes.empty()) {
    LogFile file;
    file.index = indexes.back();
    indexes.pop_back();
    std::string bytes = read_whole_file(directory.file_path(file.index));
    check_format(bytes, directory.file_path(file.index));
    const auto first = first_type(bytes);
    if (first == broker::RecordType::checkpoint && !holds_whole_checkpoint(bytes)) {
      if (later_content) {
        const ScanResult scan =
            scan_frames(bytes, [](std::string_view, std::size_t) { return true; });
        throw CorruptLog((scan.end == FrameEnd::torn ? "storage: corrupt record in "
                                                     : "storage: incomplete checkpoint in ") +
                         directory.file_path(file.index).string() + " at byte " +
                         std::to_string(scan.valid_bytes));
      }
      const ScanResult scan =
          scan_frames(bytes, [](std::string_view, std::size_t) { return true; });
      if (scan.end == FrameEnd::torn) {
        refuse_if_frames_follow(bytes, scan.valid_bytes, directory.file_path(file.index));
      }
      report.truncated_bytes += written_bytes_from(bytes, 0);
      directory.remove(file.index);
      directory.sync();
      continue;
    }
    file.written = written_bytes_from(bytes, 0) > 0;
    later_content = later_content || file.written;
    file.starts_checkpoint = first == broker::RecordType::checkpoint;
    if (kept + bytes.size() <= kKeptBytes) {
      kept += bytes.size();
      file.bytes = std::move(bytes);
    }
    files.push_back(std::move(file));
    if (files.back().starts_checkpoint) {
      break;
    }
  }
  if (!files.empty() && !files.back().starts_checkpoint && later_content) {
    throw CorruptLog("storage: no checkpoint at the start of " +
                     directory.file_path(files.back().index).string() + " at byte 0");
  }
  for (const std::uint64_t older : indexes) {
    directory.remove(older);
  }
  if (!indexes.empty()) {
    directory.sync();
  }
  std::reverse(files.begin(), files.end());
  // Only the newest file with anything in it may end torn.
  std::size_t newest = 0;
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (files[i].written) {
      newest = i;
    }
  }

  broker::RecordStorage messages;
  for (std::size_t i = 0; i < files.size(); ++i) {
    LogFile& file = files[i];
    const std::string bytes = file.bytes.empty() ? read_whole_file(directory.file_path(file.index))
                                                 : std::move(file.bytes);
    std::optional<std::size_t> undecodable;
    const ScanResult scan = scan_frames(bytes, [&](std::string_view payload, std::size_t offset) {
      auto record = broker::decode(payload, messages);
      if (!record) {
        undecodable = offset;
        return false;
      }
      if (record->time != 0) {
        record->time -= time_base.wall_minus_steady;
      }
      if (!broker.apply(*record)) {
        ++report.skipped;
      }
      ++report.records;
      report.bytes += frame_header_bytes + payload.size();
      return true;
    });
    const auto path = directory.file_path(file.index).string();
    if (undecodable) {
      // A checksum that matches over a record that is not one is not a torn write.
      throw CorruptLog("storage: unreadable record in " + path + " at byte " +
                       std::to_string(*undecodable));
    }
    if (scan.end == FrameEnd::torn) {
      if (i != newest) {
        throw CorruptLog("storage: corrupt record in " + path + " at byte " +
                         std::to_string(scan.valid_bytes));
      }
      refuse_if_frames_follow(bytes, scan.valid_bytes, path);
      report.truncated_bytes += written_bytes_from(bytes, scan.valid_bytes);
      cut_file(directory, file.index, scan.valid_bytes);
    } else if (scan.valid_bytes < bytes.size() &&
               written_bytes_from(bytes, scan.valid_bytes) == 0) {
      // Space the last run reserved and never wrote (in the file it was writing, and the ones it
      // prepared ahead) is given back: the start makes a file for its checkpoint before the old
      // ones go, and on a disk the last run filled it would otherwise find no room.
      if (scan.valid_bytes == 0) {
        directory.remove(file.index);
        directory.sync();
      } else {
        cut_file(directory, file.index, scan.valid_bytes);
      }
    }
    ++report.files;
  }
  broker.recovered();
  report.took = std::chrono::steady_clock::now() - started;
  return report;
}

}  // namespace gophermq::storage
