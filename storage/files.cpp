#include "storage/files.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <utility>

namespace gophermq::storage {

namespace {

constexpr std::string_view kSuffix = ".wal";
constexpr std::size_t kIndexDigits = 20;

// Retries a call the kernel interrupted with a signal.
template <typename Call>
auto retry_on_eintr(Call call) {
  for (;;) {
    const auto result = call();
    if (result != -1 || errno != EINTR) {
      return result;
    }
  }
}

bool parse_index(const std::string& name, std::uint64_t& index) {
  if (name.size() != kIndexDigits + kSuffix.size() || !name.ends_with(kSuffix)) {
    return false;
  }
  const char* end = name.data() + kIndexDigits;
  const auto [last, error] = std::from_chars(name.data(), end, index);
  return error == std::errc() && last == end;
}

}  // namespace

FileHandle::FileHandle(FileHandle&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

FileHandle& FileHandle::operator=(FileHandle&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

FileHandle::~FileHandle() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

void throw_errno(std::string_view what, const std::filesystem::path& path) {
  throw std::system_error(errno, std::generic_category(), std::string(what) + " " + path.string());
}

Directory::Directory(std::filesystem::path path) : path_(std::move(path)) {
  std::error_code error;
  std::filesystem::create_directories(path_, error);
  if (error) {
    throw std::system_error(error, "create directory " + path_.string());
  }
  directory_ = FileHandle(::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (directory_.get() < 0) {
    throw_errno("open directory", path_);
  }
  const auto lock_path = path_ / "LOCK";
  lock_ = FileHandle(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (lock_.get() < 0) {
    throw_errno("open", lock_path);
  }
  if (retry_on_eintr([&] { return ::flock(lock_.get(), LOCK_EX | LOCK_NB); }) != 0) {
    if (errno == EWOULDBLOCK) {
      throw std::runtime_error("storage directory " + path_.string() +
                               " is in use by another broker");
    }
    throw_errno("lock", lock_path);
  }
}

std::filesystem::path Directory::file_path(std::uint64_t index) const {
  char name[kIndexDigits + 1];
  std::snprintf(name, sizeof name, "%020llu", static_cast<unsigned long long>(index));
  return path_ / (std::string(name) + std::string(kSuffix));
}

std::vector<std::uint64_t> Directory::list() const {
  std::vector<std::uint64_t> indexes;
  for (const auto& entry : std::filesystem::directory_iterator(path_)) {
    std::uint64_t index = 0;
    if (entry.is_regular_file() && parse_index(entry.path().filename().string(), index)) {
      indexes.push_back(index);
    }
  }
  std::sort(indexes.begin(), indexes.end());
  return indexes;
}

void Directory::sync() const {
  if (retry_on_eintr([&] { return ::fsync(directory_.get()); }) != 0) {
    throw_errno("fsync directory", path_);
  }
}

void Directory::remove(std::uint64_t index) const {
  const auto path = file_path(index);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    throw_errno("remove", path);
  }
}

std::string read_whole_file(const std::filesystem::path& path) {
  const FileHandle file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (file.get() < 0) {
    throw_errno("open", path);
  }
  struct stat status {};
  if (::fstat(file.get(), &status) != 0) {
    throw_errno("stat", path);
  }
  std::string bytes(static_cast<std::size_t>(status.st_size), '\0');
  std::size_t done = 0;
  while (done < bytes.size()) {
    const auto got = retry_on_eintr([&] {
      return ::pread(file.get(), bytes.data() + done, bytes.size() - done,
                     static_cast<off_t>(done));
    });
    if (got < 0) {
      throw_errno("read", path);
    }
    if (got == 0) {
      bytes.resize(done);
      break;
    }
    done += static_cast<std::size_t>(got);
  }
  return bytes;
}

std::size_t write_all_at(int fd, std::string_view bytes, std::uint64_t offset,
                         const std::filesystem::path& path, std::error_code& no_room) {
  no_room.clear();
  std::size_t done = 0;
  while (done < bytes.size()) {
    const auto wrote = retry_on_eintr([&] {
      return ::pwrite(fd, bytes.data() + done, bytes.size() - done,
                      static_cast<off_t>(offset + done));
    });
    if (wrote < 0) {
      if (errno == ENOSPC || errno == EDQUOT) {
        no_room = std::error_code(errno, std::generic_category());
        return done;
      }
      throw_errno("write", path);
    }
    done += static_cast<std::size_t>(wrote);
  }
  return done;
}

void sync_data(int fd, const std::filesystem::path& path) {
  // Never retried after a failure: the kernel may have dropped the dirty pages it could not
  // write, so a second fdatasync could succeed without the data being on disk.
  if (::fdatasync(fd) != 0) {
    throw_errno("fdatasync", path);
  }
}

void truncate_file(int fd, std::uint64_t length, const std::filesystem::path& path) {
  if (retry_on_eintr([&] { return ::ftruncate(fd, static_cast<off_t>(length)); }) != 0) {
    throw_errno("truncate", path);
  }
}

FileHandle create_reserved(const std::filesystem::path& path, std::uint64_t bytes,
                           std::error_code& no_room) {
  no_room.clear();
  FileHandle file(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (file.get() < 0) {
    throw_errno("create", path);
  }
  int result =
      retry_on_eintr([&] { return ::fallocate(file.get(), 0, 0, static_cast<off_t>(bytes)); });
  if (result != 0 && errno == EOPNOTSUPP) {
    // A file system that cannot reserve space (some network ones): the file is sparse, and
    // running out of space shows up later, as a write error.
    result = retry_on_eintr([&] { return ::ftruncate(file.get(), static_cast<off_t>(bytes)); });
  }
  if (result != 0) {
    if (errno == ENOSPC || errno == EDQUOT) {
      no_room = std::error_code(errno, std::generic_category());
      ::unlink(path.c_str());
      return {};
    }
    throw_errno("reserve space for", path);
  }
  return file;
}

}  // namespace gophermq::storage
