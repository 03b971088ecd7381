#include "storage/writer.hpp"

#include <fcntl.h>

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

Writer::OpenFile& Writer::open_file(std::uint64_t file) {
  auto found = open_.find(file);
  if (found == open_.end()) {
    // A file the log did not prepare in this process: only the one recovery left behind.
    auto path = directory_.file_path(file);
    FileHandle handle(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (handle.get() < 0) {
      throw_errno("open", path);
    }
    found = open_.emplace(file, OpenFile{std::move(handle), std::move(path)}).first;
  }
  return found->second;
}

WriteProgress Writer::perform(WriteRequest request, const FsyncObserved& fsync_observed) {
  WriteProgress progress;
  const auto sync_dirty = [&] {
    for (const std::uint64_t file : dirty_) {
      const auto started = std::chrono::steady_clock::now();
      const OpenFile& open = open_file(file);
      sync_data(open.handle.get(), open.path);
      fsync_observed(std::chrono::steady_clock::now() - started);
    }
    dirty_.clear();
  };
  for (WriteOp& op : request.ops) {
    std::visit(Overloaded{
                   [&](WriteBytes& write) {
                     const OpenFile& open = open_file(write.file);
                     write_all_at(open.handle.get(), write.bytes, write.offset, open.path);
                     dirty_.insert(write.file);
                   },
                   [&](const PrepareFile& prepare) {
                     std::error_code no_room;
                     auto path = directory_.file_path(prepare.file);
                     FileHandle handle = create_reserved(path, prepare.bytes, no_room);
                     if (!no_room) {
                       directory_.sync();
                       open_.emplace(prepare.file, OpenFile{std::move(handle), std::move(path)});
                     }
                     progress.prepared.emplace_back(prepare.file, !no_room);
                   },
                   [&](const SealFile& seal) {
                     const OpenFile& open = open_file(seal.file);
                     truncate_file(open.handle.get(), seal.length, open.path);
                     sync_data(open.handle.get(), open.path);
                     dirty_.erase(seal.file);
                     open_.erase(seal.file);
                     progress.sealed.emplace_back(seal.file, seal.length);
                   },
                   [&](const RemoveBefore& remove) {
                     // Every open file, not only those written since the last sync job was
                     // taken: that job may still be running, and the checkpoint must be on disk
                     // before what it replaces goes.
                     for (const auto& entry : open_) {
                       dirty_.insert(entry.first);
                     }
                     sync_dirty();
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
               op);
  }
  progress.written = request.end;
  return progress;
}

SyncJob Writer::take_dirty(std::uint64_t end) {
  SyncJob job;
  job.end = end;
  for (const std::uint64_t file : dirty_) {
    const OpenFile& open = open_file(file);
    FileHandle copy(::fcntl(open.handle.get(), F_DUPFD_CLOEXEC, 0));
    if (copy.get() < 0) {
      throw_errno("duplicate the descriptor of", open.path);
    }
    job.files.emplace_back(open.path, std::move(copy));
  }
  dirty_.clear();
  return job;
}

void Writer::sync(SyncJob& job, const FsyncObserved& fsync_observed) {
  for (auto& [path, file] : job.files) {
    const auto started = std::chrono::steady_clock::now();
    sync_data(file.get(), path);
    fsync_observed(std::chrono::steady_clock::now() - started);
  }
}

}  // namespace gophermq::storage
