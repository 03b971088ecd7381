#include "storage/writer.hpp"

#include <fcntl.h>

#include <algorithm>
#include <iterator>
#include <stdexcept>

namespace gophermq::storage {

namespace {

template <typename... Visitors>
struct Overloaded : Visitors... {
  using Visitors::operator()...;
};
template <typename... Visitors>
Overloaded(Visitors...) -> Overloaded<Visitors...>;

}  // namespace

void SyncSchedule::wrote(std::uint64_t end, const std::vector<SharedFile>& files, bool synced) {
  written_ = std::max(written_, end);
  if (synced) {
    covered_ = std::max(covered_, end);
    dirty_.clear();
    return;
  }
  for (const SharedFile& file : files) {
    if (std::find(dirty_.begin(), dirty_.end(), file) == dirty_.end()) {
      dirty_.push_back(file);
    }
  }
}

void SyncSchedule::request(std::uint64_t position) {
  requested_ = std::max(requested_, position);
}

std::optional<SyncJob> SyncSchedule::start() {
  if (running_ || failed_ || requested_ <= covered_ || written_ <= covered_) {
    return std::nullopt;
  }
  running_ = true;
  covered_ = written_;
  SyncJob job;
  job.files.swap(dirty_);
  job.end = written_;
  return job;
}

void SyncSchedule::finish() {
  running_ = false;
}

void SyncSchedule::fail() {
  running_ = false;
  failed_ = true;
}

const SharedFile& Writer::open_file(std::uint64_t file) {
  auto found = open_.find(file);
  if (found == open_.end()) {
    // A file the log did not prepare in this process: only the one recovery left behind.
    auto path = directory_.file_path(file);
    // The first file at start, which the log writes to at once: nothing can be written.
    if (no_room_ && no_room_->first == file) {
      throw std::system_error(no_room_->second,
                              "no room on the disk for the log file " + path.string());
    }
    FileHandle handle(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (handle.get() < 0) {
      throw_errno("open", path);
    }
    found =
        open_
            .emplace(file, std::make_shared<OpenFile>(OpenFile{std::move(handle), std::move(path)}))
            .first;
  }
  return found->second;
}

WriteProgress Writer::perform(WriteRequest request, const FsyncObserved& fsync_observed) {
  WriteProgress progress;
  const auto sync_file = [&](const OpenFile& open) {
    const auto started = std::chrono::steady_clock::now();
    sync_data(open.handle.get(), open.path);
    fsync_observed(std::chrono::steady_clock::now() - started);
  };
  for (std::size_t index = 0; index < request.ops.size() && !progress.stalled; ++index) {
    std::visit(Overloaded{
                   [&](WriteBytes& write) {
                     const SharedFile& open = open_file(write.file);
                     std::error_code no_room;
                     const std::size_t wrote = write_all_at(open->handle.get(), write.bytes,
                                                            write.offset, open->path, no_room);
                     if (std::find(progress.dirtied.begin(), progress.dirtied.end(), open) ==
                         progress.dirtied.end()) {
                       progress.dirtied.push_back(open);
                     }
                     if (no_room) {
                       write.bytes.erase(0, wrote);
                       write.offset += wrote;
                       progress.stalled.emplace(WriteRequest{
                           {std::make_move_iterator(request.ops.begin() +
                                                    static_cast<std::ptrdiff_t>(index)),
                            std::make_move_iterator(request.ops.end())},
                           request.end});
                     }
                   },
                   [&](const PrepareFile& prepare) {
                     std::error_code no_room;
                     auto path = directory_.file_path(prepare.file);
                     FileHandle handle = create_reserved(path, prepare.bytes, no_room);
                     // A file prepared again, larger, replaces the one open under its name.
                     open_.erase(prepare.file);
                     if (no_room) {
                       no_room_.emplace(prepare.file, no_room);
                     } else {
                       directory_.sync();
                       open_.emplace(prepare.file, std::make_shared<OpenFile>(OpenFile{
                                                       std::move(handle), std::move(path)}));
                     }
                     progress.prepared.emplace_back(prepare.file, !no_room);
                   },
                   [&](const SealFile& seal) {
                     const SharedFile open = open_file(seal.file);
                     truncate_file(open->handle.get(), seal.length, open->path);
                     sync_file(*open);
                     std::erase(progress.dirtied, open);
                     open_.erase(seal.file);
                     progress.sealed.emplace_back(seal.file, seal.length);
                   },
                   [&](const RemoveBefore& remove) {
                     // Every open file, not only those this request wrote: a round of the sync
                     // thread may still be running, and the checkpoint must be on disk before what
                     // it replaces goes.
                     for (const auto& entry : open_) {
                       sync_file(*entry.second);
                     }
                     progress.dirtied.clear();
                     for (const std::uint64_t file : directory_.list()) {
                       if (file >= remove.file) {
                         break;
                       }
                       open_.erase(file);
                       directory_.remove(file);
                       progress.removed.push_back(file);
                     }
                     directory_.sync();
                     progress.checkpointed = true;
                   },
               },
               request.ops[index]);
  }
  if (!progress.stalled) {
    progress.written = request.end;
    progress.synced = progress.checkpointed && progress.dirtied.empty();
  }
  return progress;
}

void Writer::sync(const SyncJob& job, const FsyncObserved& fsync_observed) {
  for (const SharedFile& file : job.files) {
    const auto started = std::chrono::steady_clock::now();
    sync_data(file->handle.get(), file->path);
    fsync_observed(std::chrono::steady_clock::now() - started);
  }
}

}  // namespace gophermq::storage
