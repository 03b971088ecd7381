// Power loss, simulated after a SIGKILL from what the fsync shim (fsync_shim.cpp) recorded as
// durable: what the page cache held but no fsync covered is gone.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace gophermq::test {

// One line of the shim's state file.
struct DurableFile {
  std::string name;
  std::uint64_t durable_length = 0;
  bool name_durable = false;
  std::uint64_t written_end = 0;  // above durable_length: bytes no sync covered
  // When the sync that made durable_length durable began, on the steady clock; the epoch when
  // unknown.
  std::chrono::steady_clock::time_point durable_since{};
};

// The shim's state file; an absent file is an empty state.
std::vector<DurableFile> read_shim_state(const std::filesystem::path& state);

// What becomes of the newest log file's end, past its durable length.
enum class LostTail {
  cut,         // nothing: the file ends where the last fsync left it
  zeros,       // preallocated space that was never written back: zeros up to the old size
  torn_write,  // a random prefix of the unsynced bytes reached the disk, then a torn 512-byte
               // sector of random bytes
  garbage,     // 1 to 4096 random bytes
};

struct PowerLossReport {
  std::size_t files_deleted = 0;
  std::uint64_t bytes_lost = 0;
  std::string newest;  // the newest .wal file left, whose tail was treated
  // Whether written bytes were lost, and if so the earliest durable_since of the files that lost
  // some (the epoch when a file lost its name or never synced): the process had written every
  // byte it wrote before then durably, so a write answered before then cannot be among the lost.
  bool lost_writes = false;
  std::chrono::steady_clock::time_point lost_writes_after{};
};

// Applies the state to `dir`: tracked files whose name was not durable are deleted, the others cut
// to their durable length, and the newest `*.wal` (by name: a 20-digit index) gets `tail`. Files
// the state does not name were not touched by the process and stay as they are.
PowerLossReport simulate_power_loss(const std::filesystem::path& dir,
                                    const std::filesystem::path& state, LostTail tail,
                                    std::mt19937_64& random);

}  // namespace gophermq::test
