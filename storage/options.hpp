#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace gophermq::storage {

// When a write reaches the disk (fdatasync), not just the page cache.
enum class FsyncMode {
  always,    // before answering a publish or subscribe; concurrent ones share one sync
  interval,  // every fsync_interval
  never,     // when a file is complete and at checkpoints only
};

struct Options {
  std::string dir;  // empty: memory only
  FsyncMode fsync = FsyncMode::always;
  std::chrono::milliseconds fsync_interval{100};
  std::uint64_t max_bytes = 10ULL * 1024 * 1024 * 1024;
  std::uint64_t file_bytes = 64ULL * 1024 * 1024;
};

}  // namespace gophermq::storage
