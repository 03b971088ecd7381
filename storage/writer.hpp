#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <variant>
#include <vector>

#include "storage/files.hpp"

namespace gophermq::storage {

// What the log asks the writer to do, in order.
struct WriteBytes {
  std::uint64_t file = 0;
  std::uint64_t offset = 0;
  std::string bytes;
};
// Creates the file with its space reserved, and makes its name durable.
struct PrepareFile {
  std::uint64_t file = 0;
  std::uint64_t bytes = 0;
};
// The file is complete at `length`: synced, cut to that length and closed.
struct SealFile {
  std::uint64_t file = 0;
  std::uint64_t length = 0;
};
// After syncing what was written, removes every file below `file` and syncs the directory: the
// checkpoint at the start of `file` replaces them.
struct RemoveBefore {
  std::uint64_t file = 0;
};
using WriteOp = std::variant<WriteBytes, PrepareFile, SealFile, RemoveBefore>;

struct WriteRequest {
  std::vector<WriteOp> ops;
  std::uint64_t end = 0;  // the log position after the last byte of the request
};

// A file the writer has open. Shared with the syncs that cover it, which may still run after the
// writer closed its side.
struct OpenFile {
  FileHandle handle;
  std::filesystem::path path;
};
using SharedFile = std::shared_ptr<const OpenFile>;

struct WriteProgress {
  std::uint64_t written = 0;  // the log position reached in the page cache
  // Each PrepareFile done: the file, and whether there was room for it.
  std::vector<std::pair<std::uint64_t, bool>> prepared;
  std::vector<std::uint64_t> removed;
  bool checkpointed = false;  // a RemoveBefore was done
  bool synced = false;        // all the request wrote is on disk: it ended with a RemoveBefore
  std::vector<std::pair<std::uint64_t, std::uint64_t>> sealed;  // file, length
  std::vector<SharedFile> dirtied;  // written by the request and not synced by it
  // A write beyond reserved space found the disk full: the rest of the request, from the bytes not
  // yet written, to perform again once there may be room. Nothing of it counts as written.
  std::optional<WriteRequest> stalled;
};

// What one fdatasync round covers: the files written since the last round began.
struct SyncJob {
  std::vector<SharedFile> files;
  std::uint64_t end = 0;  // what the sync makes durable
};

// When the sync thread syncs. The writer thread reports what it wrote, the broker strand asks for
// syncs up to a position, and the sync thread runs one round at a time; whichever of them finds
// a round due starts it. A round starts as soon as one is asked for, something is written that no
// round covers, and none is running: the next round is taken the moment the last one completes,
// with everything written meanwhile (write batch N+1 while N syncs), so no thread waits for a
// gathering window and the strand is not on the way from a write to its sync.
// State only, no I/O and no lock: the log calls it under its own mutex.
class SyncSchedule {
 public:
  // The writer wrote the log up to `end`; `files` got bytes no round covers yet. `synced`: the
  // writer itself synced every file up to `end` (a checkpoint does).
  void wrote(std::uint64_t end, const std::vector<SharedFile>& files, bool synced);
  // A sync of the log up to `position` is wanted.
  void request(std::uint64_t position);
  // The round to run now, if one is due.
  std::optional<SyncJob> start();
  // The running round completed.
  void finish();
  // The running round failed: none runs again, as a failed fsync is never retried.
  void fail();

  [[nodiscard]] bool running() const noexcept { return running_; }
  [[nodiscard]] std::uint64_t covered() const noexcept { return covered_; }

 private:
  std::uint64_t written_ = 0;
  std::uint64_t requested_ = 0;
  std::uint64_t covered_ = 0;  // the end of the last round started, or of the writer's own sync
  bool running_ = false;
  bool failed_ = false;
  std::vector<SharedFile> dirty_;
};

// The blocking side of the log: performs requests on the log's own thread, never on the broker
// strand. Any I/O failure but a lack of room is thrown: the caller treats it as fatal, because
// after a failed write or fdatasync the kernel's view of the file is unknown.
class Writer {
 public:
  explicit Writer(const Directory& directory) : directory_(directory) {}

  using FsyncObserved = std::function<void(std::chrono::duration<double>)>;

  // fsync_observed gets the duration of each fdatasync.
  WriteProgress perform(WriteRequest request, const FsyncObserved& fsync_observed);
  // On the sync thread.
  static void sync(const SyncJob& job, const FsyncObserved& fsync_observed);

 private:
  // A file's path is made once, when it is opened: a write names it only if it fails.
  const SharedFile& open_file(std::uint64_t file);

  const Directory& directory_;
  std::map<std::uint64_t, SharedFile> open_;
  // The last file whose PrepareFile found no room, and why.
  std::optional<std::pair<std::uint64_t, std::error_code>> no_room_;
};

}  // namespace gophermq::storage
