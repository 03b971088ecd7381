#pragma once

#include <chrono>
#include <cstdint>
#include <stdexcept>

#include "broker/broker.hpp"
#include "storage/files.hpp"
#include "storage/log.hpp"

namespace gophermq::storage {

struct RecoveryReport {
  std::uint64_t files = 0;            // replayed
  std::uint64_t records = 0;          // applied
  std::uint64_t bytes = 0;            // of records read
  std::uint64_t skipped = 0;          // naming what the broker no longer had
  std::uint64_t truncated_bytes = 0;  // a torn or corrupt tail cut off the newest file
  std::uint64_t next_file = 1;        // above every file kept
  std::chrono::steady_clock::duration took{};
};

// A log that cannot be recovered without losing what it holds; what() is one line naming the
// file and the byte offset.
class CorruptLog : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Rebuilds `broker` (empty, with the limits it ran with) from the log in `directory`: the newest
// complete checkpoint, then every record after it. A torn tail of the newest file is cut off, and a
// checkpoint left incomplete there is dropped with its file, so the next start finds the same.
// Files older than the checkpoint, left when a crash came between writing it and removing them,
// are removed. Anything else wrong throws CorruptLog and changes no file.
RecoveryReport recover(const Directory& directory, broker::Broker& broker, TimeBase time_base);

}  // namespace gophermq::storage
