// fsync_shim: an LD_PRELOAD library that records, the way Jepsen's LazyFS does, how much of each
// log file a process has made durable, and injects disk faults on demand. Power loss is then
// simulated after a SIGKILL by cutting each file back to what was durable (power_loss.hpp).
//
//   GOPHERMQ_SHIM_DIR      the directory it watches (absolute). Every regular file opened in it
//                          (by open/openat and their 64-bit names, with a path or relative to an
//                          fd of the directory) is tracked by name; the fd is forgotten on close.
//   GOPHERMQ_SHIM_STATE    rewritten atomically (tmp + rename) after each successful fsync or
//                          fdatasync of a tracked file or of the directory, and whenever a tracked
//                          file appears, shrinks or goes, or a write makes a synced file dirty:
//                          one line per file, `name durable_length name_durable(0|1)
//                          written_end durable_since`. Written empty at start, so a previous
//                          process's state never applies. written_end is as of that rewrite: above
//                          durable_length exactly when the file holds bytes no sync covered.
//                          durable_since is the CLOCK_MONOTONIC time (ns) at which the sync that
//                          made durable_length durable began: whatever the process had written to
//                          the file before then is durable (0: no such time is known).
//   GOPHERMQ_SHIM_CONTROL  a file re-read when it changes (checked at each tracked write, fsync,
//                          fdatasync and fallocate): `eio-fsync` makes every fsync/fdatasync of a
//                          tracked file or the directory fail with EIO; `enospc` makes fallocate on
//                          tracked files, and writes that would extend one past its size, fail
//                          with ENOSPC (writes into preallocated space succeed, as on a real full
//                          disk); empty or absent: no fault.
//   GOPHERMQ_SHIM_HOLD_READ a FIFO: the first read of a tracked file (read, pread and their 64-bit
//                          names) waits until a writer has opened the FIFO and closed it, so a
//                          test holds recovery for as long as it needs to observe it.
//
// The model. Per file, written_end is the highest end offset written (write, pwrite, writev and
// pwritev families; fallocate and a growing ftruncate write nothing). A successful fsync or
// fdatasync makes durable = written_end as it was when the call began; with O_SYNC or O_DSYNC each
// write is durable at once. A shrinking ftruncate, or O_TRUNC, lowers both. The model keeps
// lengths, not contents, so a write over durable bytes (a restarted log appending into the zeros it
// preallocated) makes the file durable only up to where that write began, until the next sync. A
// name is durable once the directory was fsync'ed after the file was created or renamed into it;
// files that existed when they were first opened are durable with their size then. An unlinked file
// leaves the state at once (the model cannot bring a deleted file back). A duplicate (dup, dup2,
// dup3, fcntl F_DUPFD) names the same file. Not seen: mmap writes,
// io_uring, sync_file_range, syncfs — the broker's log uses none of them.
//
// The three variables are removed from the environment at load, as the broker refuses GOPHERMQ_
// variables that are not config keys.
//
// Untracked fds cost one array load; the shim allocates nothing. Tracked calls take one mutex.
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

constexpr int kMaxFds = 1 << 20;
constexpr int kMaxFiles = 16384;
constexpr std::size_t kNameMax = 256;
constexpr std::size_t kPathMax = 4096;

// fd_slots[fd]: 0 untracked, kDirectorySlot the watched directory, otherwise the file's index + 1,
// with kSyncFlag when it was opened O_SYNC or O_DSYNC.
constexpr int kDirectorySlot = -1;
constexpr int kSyncFlag = 1 << 30;
std::atomic<int> fd_slots[kMaxFds];

struct File {
  bool unlinked = false;
  bool name_durable = false;
  unsigned long long created = 0;  // the generation it was created or renamed in
  off_t written_end = 0;
  off_t durable = 0;
  long long durable_since = 0;  // CLOCK_MONOTONIC ns
  char name[kNameMax] = {};
};

File files[kMaxFiles];
int file_count = 0;
unsigned long long generation = 0;
pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

enum class Fault { none, eio_fsync, enospc };
std::atomic<Fault> fault{Fault::none};
struct ControlStamp {
  bool present = false;
  ino_t inode = 0;
  off_t size = 0;
  timespec modified{};
};
ControlStamp control_stamp;

char watched[kPathMax];
std::size_t watched_length = 0;
char state_path[kPathMax];
char state_temporary[kPathMax];
char control_path[kPathMax];
char hold_path[kPathMax];
std::atomic<bool> hold_pending{false};

template <typename Function>
Function next(const char* name) {
  return reinterpret_cast<Function>(dlsym(RTLD_NEXT, name));
}

using OpenAt = int (*)(int, const char*, int, ...);
using Close = int (*)(int);
using Sync = int (*)(int);
using Rename = int (*)(const char*, const char*);

int real_openat(int dirfd, const char* path, int flags, mode_t mode) {
  static const auto function = next<OpenAt>("openat");
  return function(dirfd, path, flags, mode);
}
int real_close(int fd) {
  static const auto function = next<Close>("close");
  return function(fd);
}

long long monotonic_now() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<long long>(now.tv_sec) * 1000000000LL + now.tv_nsec;
}

[[noreturn]] void fail(const char* what) {
  static const char prefix[] = "fsync_shim: ";
  (void)!::write(STDERR_FILENO, prefix, sizeof prefix - 1);
  (void)!::write(STDERR_FILENO, what, std::strlen(what));
  (void)!::write(STDERR_FILENO, "\n", 1);
  std::abort();
}

// Lexically normalises an absolute path into `out`: no `//`, no `.`, `..` resolved.
bool normalise(const char* path, char* out) {
  std::size_t length = 0;
  const char* at = path;
  while (*at != '\0') {
    while (*at == '/') ++at;
    const char* end = at;
    while (*end != '\0' && *end != '/') ++end;
    const auto part = static_cast<std::size_t>(end - at);
    if (part == 2 && at[0] == '.' && at[1] == '.') {
      while (length > 0 && out[length - 1] != '/') --length;
      if (length > 0) --length;
    } else if (part > 0 && !(part == 1 && at[0] == '.')) {
      if (length + 1 + part + 1 > kPathMax) return false;
      out[length++] = '/';
      std::memcpy(out + length, at, part);
      length += part;
    }
    at = end;
  }
  if (length == 0) out[length++] = '/';
  out[length] = '\0';
  return true;
}

void initialise() {
  const char* dir = std::getenv("GOPHERMQ_SHIM_DIR");
  if (dir != nullptr && dir[0] == '/' && normalise(dir, watched)) {
    watched_length = std::strlen(watched);
  }
  const char* state = std::getenv("GOPHERMQ_SHIM_STATE");
  if (state != nullptr && std::strlen(state) + 5 < kPathMax) {
    std::strcpy(state_path, state);
    std::strcpy(state_temporary, state);
    std::strcat(state_temporary, ".tmp");
  }
  const char* control = std::getenv("GOPHERMQ_SHIM_CONTROL");
  if (control != nullptr && std::strlen(control) < kPathMax) std::strcpy(control_path, control);
  const char* hold = std::getenv("GOPHERMQ_SHIM_HOLD_READ");
  if (hold != nullptr && std::strlen(hold) < kPathMax) {
    std::strcpy(hold_path, hold);
    hold_pending.store(true);
  }
}

pthread_once_t initialised = PTHREAD_ONCE_INIT;
bool watching() {
  pthread_once(&initialised, initialise);
  return watched_length > 0;
}

enum class Kind { other, directory, file };

// Whether `path` (relative to `dirfd`) is the watched directory or a file directly in it; for a
// file, its name goes to `name`.
Kind classify(int dirfd, const char* path, char* name) {
  if (path == nullptr || !watching()) return Kind::other;
  if (path[0] != '/' && dirfd >= 0 && dirfd < kMaxFds &&
      fd_slots[dirfd].load(std::memory_order_acquire) == kDirectorySlot) {
    char joined[kPathMax];
    if (std::snprintf(joined, sizeof joined, "%s/%s", watched, path) >= int{kPathMax}) {
      return Kind::other;
    }
    return classify(AT_FDCWD, joined, name);
  }
  char absolute[kPathMax];
  if (path[0] == '/') {
    if (std::strlen(path) >= kPathMax) return Kind::other;
    std::strcpy(absolute, path);
  } else if (dirfd == AT_FDCWD) {
    char cwd[kPathMax];
    if (getcwd(cwd, sizeof cwd) == nullptr ||
        std::snprintf(absolute, sizeof absolute, "%s/%s", cwd, path) >= int{kPathMax}) {
      return Kind::other;
    }
  } else {
    return Kind::other;
  }
  char normal[kPathMax];
  if (!normalise(absolute, normal) || std::strncmp(normal, watched, watched_length) != 0) {
    return Kind::other;
  }
  const char* rest = normal + watched_length;
  if (*rest == '\0') return Kind::directory;
  if (*rest != '/' || std::strchr(rest + 1, '/') != nullptr || std::strlen(rest + 1) >= kNameMax) {
    return Kind::other;
  }
  std::strcpy(name, rest + 1);
  return Kind::file;
}

int find(const char* name) {
  for (int index = 0; index < file_count; ++index) {
    if (!files[index].unlinked && std::strcmp(files[index].name, name) == 0) return index;
  }
  return -1;
}

int add(const char* name) {
  if (file_count == kMaxFiles) fail("too many files");
  File& file = files[file_count];
  std::strcpy(file.name, name);
  return file_count++;
}

// Rewrites the state file; called with `lock` held, so it uses the real functions only.
void write_state() {
  static const auto real_write = next<ssize_t (*)(int, const void*, std::size_t)>("write");
  static const auto real_rename = next<Rename>("rename");
  if (state_path[0] == '\0') return;
  const int fd =
      real_openat(AT_FDCWD, state_temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot write the state file");
  for (int index = 0; index < file_count; ++index) {
    const File& file = files[index];
    if (file.unlinked) continue;
    char line[kNameMax + 64];
    const int length =
        std::snprintf(line, sizeof line, "%s %lld %d %lld %lld\n", file.name,
                      static_cast<long long>(file.durable), file.name_durable ? 1 : 0,
                      static_cast<long long>(file.written_end), file.durable_since);
    if (real_write(fd, line, static_cast<std::size_t>(length)) != length) {
      fail("cannot write the state file");
    }
  }
  real_close(fd);
  if (real_rename(state_temporary, state_path) != 0) fail("cannot rename the state file");
}

__attribute__((constructor)) void start() {
  const bool watch = watching();
  unsetenv("GOPHERMQ_SHIM_DIR");
  unsetenv("GOPHERMQ_SHIM_STATE");
  unsetenv("GOPHERMQ_SHIM_CONTROL");
  unsetenv("GOPHERMQ_SHIM_HOLD_READ");
  if (!watch) return;
  pthread_mutex_lock(&lock);
  write_state();
  pthread_mutex_unlock(&lock);
}

// Re-reads the control file when its inode, size or mtime changed.
Fault current_fault() {
  if (control_path[0] == '\0') return Fault::none;
  const int saved = errno;
  struct stat status {};
  const bool present = ::stat(control_path, &status) == 0;
  pthread_mutex_lock(&lock);
  if (present != control_stamp.present ||
      (present && (status.st_ino != control_stamp.inode || status.st_size != control_stamp.size ||
                   status.st_mtim.tv_sec != control_stamp.modified.tv_sec ||
                   status.st_mtim.tv_nsec != control_stamp.modified.tv_nsec))) {
    control_stamp = {present, status.st_ino, status.st_size, status.st_mtim};
    Fault read_fault = Fault::none;
    const int fd = present ? real_openat(AT_FDCWD, control_path, O_RDONLY | O_CLOEXEC, 0) : -1;
    if (fd >= 0) {
      char text[64] = {};
      const ssize_t got = ::read(fd, text, sizeof text - 1);
      real_close(fd);
      if (got > 0 && std::strncmp(text, "eio-fsync", 9) == 0) read_fault = Fault::eio_fsync;
      if (got > 0 && std::strncmp(text, "enospc", 6) == 0) read_fault = Fault::enospc;
    }
    fault.store(read_fault);
  }
  pthread_mutex_unlock(&lock);
  errno = saved;
  return fault.load();
}

int slot_of(int fd) {
  return fd >= 0 && fd < kMaxFds ? fd_slots[fd].load(std::memory_order_acquire) : 0;
}

int file_of(int slot) {
  return (slot & ~kSyncFlag) - 1;
}

template <typename Open>
int tracked_open(int dirfd, const char* path, int flags, Open&& open_file) {
  char name[kNameMax];
  const Kind kind = classify(dirfd, path, name);
  if (kind == Kind::other || (flags & O_TMPFILE) == O_TMPFILE) return open_file();
  struct stat before {};
  const bool existed = kind == Kind::file && ::fstatat(dirfd, path, &before, 0) == 0;
  const int fd = open_file();
  if (fd < 0) return fd;
  if (fd >= kMaxFds) fail("fd beyond the table");
  const int saved = errno;
  if (kind == Kind::directory) {
    fd_slots[fd].store(kDirectorySlot, std::memory_order_release);
    return fd;
  }
  pthread_mutex_lock(&lock);
  int index = find(name);
  if (index < 0) {
    index = add(name);
    File& file = files[index];
    if (existed) {
      file.name_durable = true;
      file.written_end = file.durable = before.st_size;
    } else {
      file.created = ++generation;
    }
  }
  if ((flags & O_TRUNC) != 0) files[index].written_end = files[index].durable = 0;
  write_state();
  pthread_mutex_unlock(&lock);
  const int sync = (flags & (O_SYNC | O_DSYNC)) != 0 ? kSyncFlag : 0;
  fd_slots[fd].store((index + 1) | sync, std::memory_order_release);
  errno = saved;
  return fd;
}

mode_t mode_argument(int flags, va_list arguments) {
  return (flags & (O_CREAT | O_TMPFILE)) != 0 ? static_cast<mode_t>(va_arg(arguments, unsigned))
                                              : 0;
}

// Refuses a write that would take the file past its size while the disk is "full".
bool refused_for_space(int fd, off_t start, std::size_t bytes) {
  if (current_fault() != Fault::enospc) return false;
  struct stat status {};
  if (start < 0) start = ::lseek(fd, 0, SEEK_CUR);
  if (::fstat(fd, &status) != 0 || start + static_cast<off_t>(bytes) <= status.st_size) {
    return false;
  }
  errno = ENOSPC;
  return true;
}

// Records a write of `done` bytes that began at `start` (-1: at the file position, now past it).
void record_write(int fd, int slot, off_t start, ssize_t done) {
  if (done <= 0) return;
  const int saved = errno;
  const off_t end = start < 0 ? ::lseek(fd, 0, SEEK_CUR) : start + done;
  pthread_mutex_lock(&lock);
  File& file = files[file_of(slot)];
  const bool was_clean = file.written_end <= file.durable;
  if (end > file.written_end) file.written_end = end;
  if ((slot & kSyncFlag) != 0) {
    file.durable = file.written_end;
    file.durable_since = monotonic_now();
    write_state();
  } else if (end - done < file.durable) {
    // What was durable is overwritten: bytes written before any known time may be lost.
    file.durable = end - done;
    file.durable_since = 0;
    write_state();
  } else if (was_clean && file.written_end > file.durable) {
    write_state();
  }
  pthread_mutex_unlock(&lock);
  errno = saved;
}

std::size_t total(const iovec* vectors, int count) {
  std::size_t sum = 0;
  for (int index = 0; index < count; ++index) sum += vectors[index].iov_len;
  return sum;
}

template <typename Write>
ssize_t tracked_write(int fd, off_t start, std::size_t bytes, Write&& write_file) {
  const int slot = slot_of(fd);
  if (slot == 0 || slot == kDirectorySlot) return write_file();
  if (refused_for_space(fd, start, bytes)) return -1;
  const ssize_t done = write_file();
  record_write(fd, slot, start, done);
  return done;
}

int tracked_sync(int fd, Sync real) {
  const int slot = slot_of(fd);
  if (slot == 0) return real(fd);
  if (current_fault() == Fault::eio_fsync) {
    errno = EIO;
    return -1;
  }
  pthread_mutex_lock(&lock);
  const off_t target = slot == kDirectorySlot ? 0 : files[file_of(slot)].written_end;
  const unsigned long long seen = generation;
  const long long began = monotonic_now();
  pthread_mutex_unlock(&lock);
  const int result = real(fd);
  if (result != 0) return result;
  const int saved = errno;
  pthread_mutex_lock(&lock);
  if (slot == kDirectorySlot) {
    for (int index = 0; index < file_count; ++index) {
      if (files[index].created <= seen) files[index].name_durable = true;
    }
  } else {
    File& file = files[file_of(slot)];
    const off_t reached = target < file.written_end ? target : file.written_end;
    if (reached > file.durable) file.durable = reached;
    if (reached >= file.durable && began > file.durable_since) file.durable_since = began;
  }
  write_state();
  pthread_mutex_unlock(&lock);
  errno = saved;
  return result;
}

template <typename Allocate>
int tracked_fallocate(int fd, Allocate&& allocate) {
  const int slot = slot_of(fd);
  if (slot == 0 || slot == kDirectorySlot) return allocate();
  if (current_fault() == Fault::enospc) {
    errno = ENOSPC;
    return -1;
  }
  return allocate();
}

template <typename Remove>
int tracked_unlink(int dirfd, const char* path, Remove&& remove_file) {
  char name[kNameMax];
  const Kind kind = classify(dirfd, path, name);
  const int result = remove_file();
  if (kind != Kind::file || result != 0) return result;
  const int saved = errno;
  pthread_mutex_lock(&lock);
  const int index = find(name);
  if (index >= 0) {
    files[index].unlinked = true;
    write_state();
  }
  pthread_mutex_unlock(&lock);
  errno = saved;
  return result;
}

template <typename Move>
int tracked_rename(int from_dirfd, const char* from, int to_dirfd, const char* to, Move&& move) {
  char from_name[kNameMax];
  char to_name[kNameMax];
  const Kind from_kind = classify(from_dirfd, from, from_name);
  const Kind to_kind = classify(to_dirfd, to, to_name);
  const int result = move();
  if ((from_kind != Kind::file && to_kind != Kind::file) || result != 0) return result;
  const int saved = errno;
  pthread_mutex_lock(&lock);
  int index = from_kind == Kind::file ? find(from_name) : -1;
  if (to_kind == Kind::file) {
    const int replaced = find(to_name);
    if (replaced >= 0 && replaced != index) files[replaced].unlinked = true;
    if (index < 0) {
      // Content written outside the directory is taken as durable; only the name is new.
      struct stat status {};
      index = add(to_name);
      if (::fstatat(to_dirfd, to, &status, 0) == 0) {
        files[index].written_end = files[index].durable = status.st_size;
      }
    }
    std::strcpy(files[index].name, to_name);
    files[index].name_durable = false;
    files[index].created = ++generation;
  } else if (index >= 0) {
    files[index].unlinked = true;
  }
  write_state();
  pthread_mutex_unlock(&lock);
  errno = saved;
  return result;
}

}  // namespace

extern "C" {

int open(const char* path, int flags, ...) {
  va_list arguments;
  va_start(arguments, flags);
  const mode_t mode = mode_argument(flags, arguments);
  va_end(arguments);
  static const auto real = next<int (*)(const char*, int, ...)>("open");
  return tracked_open(AT_FDCWD, path, flags, [&] { return real(path, flags, mode); });
}

int open64(const char* path, int flags, ...) {
  va_list arguments;
  va_start(arguments, flags);
  const mode_t mode = mode_argument(flags, arguments);
  va_end(arguments);
  static const auto real = next<int (*)(const char*, int, ...)>("open64");
  return tracked_open(AT_FDCWD, path, flags, [&] { return real(path, flags, mode); });
}

int openat(int dirfd, const char* path, int flags, ...) {
  va_list arguments;
  va_start(arguments, flags);
  const mode_t mode = mode_argument(flags, arguments);
  va_end(arguments);
  return tracked_open(dirfd, path, flags, [&] { return real_openat(dirfd, path, flags, mode); });
}

int openat64(int dirfd, const char* path, int flags, ...) {
  va_list arguments;
  va_start(arguments, flags);
  const mode_t mode = mode_argument(flags, arguments);
  va_end(arguments);
  static const auto real = next<OpenAt>("openat64");
  return tracked_open(dirfd, path, flags, [&] { return real(dirfd, path, flags, mode); });
}

// A duplicate names the same file: a sync through it makes that file durable, as the log's sync
// thread does with the descriptors it is handed.
int tracked_duplicate(int from, int to) {
  if (to >= 0 && to < kMaxFds) {
    fd_slots[to].store(slot_of(from), std::memory_order_release);
  }
  return to;
}

int dup(int fd) noexcept {
  static const auto real = next<int (*)(int)>("dup");
  return tracked_duplicate(fd, real(fd));
}

int dup2(int fd, int to) noexcept {
  static const auto real = next<int (*)(int, int)>("dup2");
  return tracked_duplicate(fd, real(fd, to));
}

int dup3(int fd, int to, int flags) noexcept {
  static const auto real = next<int (*)(int, int, int)>("dup3");
  return tracked_duplicate(fd, real(fd, to, flags));
}

using Fcntl = int (*)(int, int, ...);

int tracked_fcntl(Fcntl real, int fd, int command, void* argument) {
  const int result = real(fd, command, argument);
  const bool duplicate = command == F_DUPFD || command == F_DUPFD_CLOEXEC;
  return duplicate ? tracked_duplicate(fd, result) : result;
}

int fcntl(int fd, int command, ...) {
  static const auto real = next<Fcntl>("fcntl");
  va_list arguments;
  va_start(arguments, command);
  void* argument = va_arg(arguments, void*);
  va_end(arguments);
  return tracked_fcntl(real, fd, command, argument);
}

int fcntl64(int fd, int command, ...) {
  static const auto real = next<Fcntl>("fcntl64");
  va_list arguments;
  va_start(arguments, command);
  void* argument = va_arg(arguments, void*);
  va_end(arguments);
  return tracked_fcntl(real, fd, command, argument);
}

}  // extern "C"

namespace {

// Opening a FIFO for reading blocks until a writer opens it; reading it ends when the writer
// closes it.
void hold_first_read(int fd) {
  static const auto real_read = next<ssize_t (*)(int, void*, std::size_t)>("read");
  if (slot_of(fd) <= 0 || !hold_pending.exchange(false)) return;
  const int fifo = real_openat(AT_FDCWD, hold_path, O_RDONLY | O_CLOEXEC, 0);
  if (fifo < 0) fail("cannot open the hold FIFO");
  char byte = 0;
  while (real_read(fifo, &byte, 1) > 0) {
  }
  real_close(fifo);
}

}  // namespace

extern "C" {

ssize_t read(int fd, void* buffer, std::size_t bytes) {
  static const auto real = next<ssize_t (*)(int, void*, std::size_t)>("read");
  hold_first_read(fd);
  return real(fd, buffer, bytes);
}

ssize_t pread(int fd, void* buffer, std::size_t bytes, off_t offset) {
  static const auto real = next<ssize_t (*)(int, void*, std::size_t, off_t)>("pread");
  hold_first_read(fd);
  return real(fd, buffer, bytes, offset);
}

ssize_t pread64(int fd, void* buffer, std::size_t bytes, off64_t offset) {
  static const auto real = next<ssize_t (*)(int, void*, std::size_t, off64_t)>("pread64");
  hold_first_read(fd);
  return real(fd, buffer, bytes, offset);
}

int close(int fd) {
  if (fd >= 0 && fd < kMaxFds && fd_slots[fd].load(std::memory_order_relaxed) != 0) {
    fd_slots[fd].store(0, std::memory_order_release);
  }
  return real_close(fd);
}

ssize_t write(int fd, const void* buffer, std::size_t bytes) {
  static const auto real = next<ssize_t (*)(int, const void*, std::size_t)>("write");
  return tracked_write(fd, -1, bytes, [&] { return real(fd, buffer, bytes); });
}

ssize_t pwrite(int fd, const void* buffer, std::size_t bytes, off_t offset) {
  static const auto real = next<ssize_t (*)(int, const void*, std::size_t, off_t)>("pwrite");
  return tracked_write(fd, offset, bytes, [&] { return real(fd, buffer, bytes, offset); });
}

ssize_t pwrite64(int fd, const void* buffer, std::size_t bytes, off64_t offset) {
  static const auto real = next<ssize_t (*)(int, const void*, std::size_t, off64_t)>("pwrite64");
  return tracked_write(fd, offset, bytes, [&] { return real(fd, buffer, bytes, offset); });
}

ssize_t writev(int fd, const iovec* vectors, int count) {
  static const auto real = next<ssize_t (*)(int, const iovec*, int)>("writev");
  return tracked_write(fd, -1, total(vectors, count), [&] { return real(fd, vectors, count); });
}

ssize_t pwritev(int fd, const iovec* vectors, int count, off_t offset) {
  static const auto real = next<ssize_t (*)(int, const iovec*, int, off_t)>("pwritev");
  return tracked_write(fd, offset, total(vectors, count),
                       [&] { return real(fd, vectors, count, offset); });
}

ssize_t pwritev64(int fd, const iovec* vectors, int count, off64_t offset) {
  static const auto real = next<ssize_t (*)(int, const iovec*, int, off64_t)>("pwritev64");
  return tracked_write(fd, offset, total(vectors, count),
                       [&] { return real(fd, vectors, count, offset); });
}

ssize_t pwritev2(int fd, const iovec* vectors, int count, off_t offset, int flags) {
  static const auto real = next<ssize_t (*)(int, const iovec*, int, off_t, int)>("pwritev2");
  return tracked_write(fd, offset, total(vectors, count),
                       [&] { return real(fd, vectors, count, offset, flags); });
}

ssize_t pwritev64v2(int fd, const iovec* vectors, int count, off64_t offset, int flags) {
  static const auto real = next<ssize_t (*)(int, const iovec*, int, off64_t, int)>("pwritev64v2");
  return tracked_write(fd, offset, total(vectors, count),
                       [&] { return real(fd, vectors, count, offset, flags); });
}

int fsync(int fd) {
  static const auto real = next<Sync>("fsync");
  return tracked_sync(fd, real);
}

int fdatasync(int fd) {
  static const auto real = next<Sync>("fdatasync");
  return tracked_sync(fd, real);
}

int fallocate(int fd, int mode, off_t offset, off_t length) {
  static const auto real = next<int (*)(int, int, off_t, off_t)>("fallocate");
  return tracked_fallocate(fd, [&] { return real(fd, mode, offset, length); });
}

int fallocate64(int fd, int mode, off64_t offset, off64_t length) {
  static const auto real = next<int (*)(int, int, off64_t, off64_t)>("fallocate64");
  return tracked_fallocate(fd, [&] { return real(fd, mode, offset, length); });
}

int ftruncate(int fd, off_t length) noexcept {
  static const auto real = next<int (*)(int, off_t)>("ftruncate");
  const int slot = slot_of(fd);
  const int result = real(fd, length);
  if (slot == 0 || slot == kDirectorySlot || result != 0) return result;
  pthread_mutex_lock(&lock);
  File& file = files[file_of(slot)];
  if (length < file.written_end) file.written_end = length;
  if (length < file.durable) {
    file.durable = length;
    write_state();
  }
  pthread_mutex_unlock(&lock);
  return result;
}

int unlink(const char* path) noexcept {
  static const auto real = next<int (*)(const char*)>("unlink");
  return tracked_unlink(AT_FDCWD, path, [&] { return real(path); });
}

int unlinkat(int dirfd, const char* path, int flags) noexcept {
  static const auto real = next<int (*)(int, const char*, int)>("unlinkat");
  return tracked_unlink(dirfd, path, [&] { return real(dirfd, path, flags); });
}

int remove(const char* path) noexcept {
  static const auto real = next<int (*)(const char*)>("remove");
  return tracked_unlink(AT_FDCWD, path, [&] { return real(path); });
}

int rename(const char* from, const char* to) noexcept {
  static const auto real = next<Rename>("rename");
  return tracked_rename(AT_FDCWD, from, AT_FDCWD, to, [&] { return real(from, to); });
}

int renameat(int from_dirfd, const char* from, int to_dirfd, const char* to) noexcept {
  static const auto real = next<int (*)(int, const char*, int, const char*)>("renameat");
  return tracked_rename(from_dirfd, from, to_dirfd, to,
                        [&] { return real(from_dirfd, from, to_dirfd, to); });
}

int renameat2(int from_dirfd, const char* from, int to_dirfd, const char* to,
              unsigned flags) noexcept {
  static const auto real = next<int (*)(int, const char*, int, const char*, unsigned)>("renameat2");
  return tracked_rename(from_dirfd, from, to_dirfd, to,
                        [&] { return real(from_dirfd, from, to_dirfd, to, flags); });
}

}  // extern "C"
