#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace gophermq::storage {

// An open file descriptor, closed once.
class FileHandle {
 public:
  FileHandle() noexcept = default;
  explicit FileHandle(int fd) noexcept : fd_(fd) {}
  FileHandle(FileHandle&& other) noexcept;
  FileHandle& operator=(FileHandle&& other) noexcept;
  FileHandle(const FileHandle&) = delete;
  FileHandle& operator=(const FileHandle&) = delete;
  ~FileHandle();

  [[nodiscard]] int get() const noexcept { return fd_; }

 private:
  int fd_ = -1;
};

// The storage directory: its log files are named by a rising index, `<20 digits>.wal`, and a
// `LOCK` file held with flock keeps a second broker from writing the same log. Every failure is
// a std::system_error whose what() names the path.
class Directory {
 public:
  // Creates the directory when missing.
  explicit Directory(std::filesystem::path path);

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  [[nodiscard]] std::filesystem::path file_path(std::uint64_t index) const;
  // The indexes of the log files, lowest first.
  [[nodiscard]] std::vector<std::uint64_t> list() const;
  // Makes creations and removals of files in it durable.
  void sync() const;
  // Removes the file (a missing one is fine); the caller syncs the directory.
  void remove(std::uint64_t index) const;

 private:
  std::filesystem::path path_;
  FileHandle directory_;
  FileHandle lock_;
};

// The file's whole content.
[[nodiscard]] std::string read_whole_file(const std::filesystem::path& path);

// Writes all of `bytes` at `offset`, retrying short writes. On a disk without room (ENOSPC or
// EDQUOT) sets `no_room` and returns how many bytes it wrote; throws on any other failure.
std::size_t write_all_at(int fd, std::string_view bytes, std::uint64_t offset,
                         const std::filesystem::path& path, std::error_code& no_room);
void sync_data(int fd, const std::filesystem::path& path);
void truncate_file(int fd, std::uint64_t length, const std::filesystem::path& path);

// Creates the file, with `bytes` of zeros reserved on disk. An error code of no_space_on_device
// (or a disk quota) means there is no room; any other failure throws.
[[nodiscard]] FileHandle create_reserved(const std::filesystem::path& path, std::uint64_t bytes,
                                         std::error_code& no_room);

[[noreturn]] void throw_errno(std::string_view what, const std::filesystem::path& path);

}  // namespace gophermq::storage
