#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
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

struct WriteProgress {
  std::uint64_t written = 0;  // the log position reached in the page cache
  // Each PrepareFile done: the file, and whether there was room for it.
  std::vector<std::pair<std::uint64_t, bool>> prepared;
  std::vector<std::uint64_t> removed;
  bool checkpointed = false;  // a RemoveBefore was done: all written is on disk
  std::vector<std::pair<std::uint64_t, std::uint64_t>> sealed;  // file, length
};

// The files written since the last sync, each as a descriptor of its own, so the sync thread can
// fdatasync them while the writer goes on writing (and may close its own descriptors).
struct SyncJob {
  std::vector<std::pair<std::filesystem::path, FileHandle>> files;
  std::uint64_t end = 0;  // what the sync makes durable
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
  // On the writer's thread, after the writes up to `end`: what a sync of them must cover.
  SyncJob take_dirty(std::uint64_t end);
  // On the sync thread.
  static void sync(SyncJob& job, const FsyncObserved& fsync_observed);

 private:
  // A file's path is made once, when it is opened: a write names it only if it fails.
  struct OpenFile {
    FileHandle handle;
    std::filesystem::path path;
  };
  OpenFile& open_file(std::uint64_t file);

  const Directory& directory_;
  std::map<std::uint64_t, OpenFile> open_;
  std::set<std::uint64_t> dirty_;  // written since their last sync
};

}  // namespace gophermq::storage
