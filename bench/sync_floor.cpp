// What the disk and the scheduler cost below the log (docs/storage.md, "Where an fdatasync goes"):
// the CPU time of one small append made durable, done four ways, and of a round trip between two
// threads. Run it on one CPU, as bench/storage.sh runs the broker:
//
//   taskset -c 0 build/bench/gophermq_sync_floor /var/tmp [OPS] [BYTES]
//
// DIR must be on the disk being measured (not tmpfs). Each way appends BYTES (800: a round of
// about 19 publishes) OPS times to a new 64 MiB file and reports CPU and wall time per append.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <thread>

namespace {

constexpr std::size_t kFileBytes = std::size_t{64} << 20;
constexpr std::size_t kPage = 4096;

[[noreturn]] void fail(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}

double thread_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_THREAD, &usage);
  const auto seconds = [](const timeval& time) {
    return static_cast<double>(time.tv_sec) + static_cast<double>(time.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

struct AlignedFree {
  void operator()(char* block) const { std::free(block); }
};
using Buffer = std::unique_ptr<char, AlignedFree>;

Buffer aligned_buffer(std::size_t bytes, char fill) {
  void* block = nullptr;
  if (posix_memalign(&block, kPage, bytes) != 0) {
    fail("posix_memalign");
  }
  std::memset(block, fill, bytes);
  return Buffer(static_cast<char*>(block));
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {
    if (fd_ < 0) {
      fail("open");
    }
  }
  ~Fd() { ::close(fd_); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  [[nodiscard]] int get() const noexcept { return fd_; }

 private:
  int fd_;
};

void write_all(int fd, const char* bytes, std::size_t size, std::size_t offset) {
  if (::pwrite(fd, bytes, size, static_cast<off_t>(offset)) != static_cast<ssize_t>(size)) {
    fail("pwrite");
  }
}

enum class Way { fallocated, zero_filled, o_dsync, o_direct_dsync };

const char* name_of(Way way) {
  switch (way) {
    case Way::fallocated:
      return "fallocate, pwrite + fdatasync";
    case Way::zero_filled:
      return "zero-filled, pwrite + fdatasync";
    case Way::o_dsync:
      return "zero-filled, O_DSYNC pwrite";
    case Way::o_direct_dsync:
      return "zero-filled, O_DIRECT|O_DSYNC pwrite of whole pages";
  }
  return "?";
}

void measure(Way way, const std::filesystem::path& path, int ops, std::size_t bytes) {
  {
    const Fd file(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (way == Way::fallocated) {
      if (::fallocate(file.get(), 0, 0, static_cast<off_t>(kFileBytes)) != 0) {
        fail("fallocate");
      }
    } else {
      const Buffer zeros = aligned_buffer(std::size_t{1} << 20, 0);
      for (std::size_t offset = 0; offset < kFileBytes; offset += std::size_t{1} << 20) {
        write_all(file.get(), zeros.get(), std::size_t{1} << 20, offset);
      }
    }
    if (::fsync(file.get()) != 0) {
      fail("fsync");
    }
  }
  int flags = O_RDWR | O_CLOEXEC;
  if (way == Way::o_dsync) {
    flags |= O_DSYNC;
  } else if (way == Way::o_direct_dsync) {
    flags |= O_DSYNC | O_DIRECT;
  }
  const Fd file(::open(path.c_str(), flags));
  const Buffer data = aligned_buffer(std::size_t{1} << 20, 'x');
  const double cpu_before = thread_cpu_seconds();
  const auto wall_before = std::chrono::steady_clock::now();
  std::size_t end = 0;
  for (int op = 0; op < ops; ++op) {
    if (way == Way::o_direct_dsync) {
      // Direct I/O writes whole pages: the last, partly filled page is written again each time.
      const std::size_t first = end / kPage * kPage;
      const std::size_t last = (end + bytes + kPage - 1) / kPage * kPage;
      write_all(file.get(), data.get(), last - first, first);
    } else {
      write_all(file.get(), data.get(), bytes, end);
      if ((way == Way::fallocated || way == Way::zero_filled) && ::fdatasync(file.get()) != 0) {
        fail("fdatasync");
      }
    }
    end += bytes;
  }
  const double cpu = thread_cpu_seconds() - cpu_before;
  const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - wall_before;
  std::printf("%-52s %7.1f us CPU, %7.1f us wall per append\n", name_of(way), cpu * 1e6 / ops,
              wall.count() * 1e6 / ops);
  std::filesystem::remove(path);
}

// Two threads handing a token back and forth over eventfds: two wakes and two context switches
// per round trip when they share a CPU.
void measure_round_trip(int trips) {
  const Fd ping(::eventfd(0, EFD_CLOEXEC));
  const Fd pong(::eventfd(0, EFD_CLOEXEC));
  const auto pass = [](int from, int to) {
    std::uint64_t token = 0;
    if (::read(from, &token, sizeof token) != sizeof token) {
      fail("read");
    }
    token = 1;
    if (::write(to, &token, sizeof token) != sizeof token) {
      fail("write");
    }
  };
  std::thread other([&] {
    for (int trip = 0; trip < trips; ++trip) {
      pass(ping.get(), pong.get());
    }
  });
  const auto before = std::chrono::steady_clock::now();
  const std::uint64_t token = 1;
  for (int trip = 0; trip < trips; ++trip) {
    if (::write(ping.get(), &token, sizeof token) != sizeof token) {
      fail("write");
    }
    std::uint64_t back = 0;
    if (::read(pong.get(), &back, sizeof back) != sizeof back) {
      fail("read");
    }
  }
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - before;
  other.join();
  std::printf("%-52s %7.2f us per round trip\n", "thread round trip over eventfds",
              took.count() * 1e6 / trips);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: gophermq_sync_floor DIR [OPS=3000] [BYTES=800]\n");
    return 2;
  }
  const std::filesystem::path path = std::filesystem::path(argv[1]) / "gophermq-sync-floor.tmp";
  const int ops = argc > 2 ? std::atoi(argv[2]) : 3000;
  const auto bytes = static_cast<std::size_t>(argc > 3 ? std::atoi(argv[3]) : 800);
  if (ops <= 0 || bytes == 0 || bytes > (std::size_t{1} << 20) ||
      static_cast<std::size_t>(ops) * bytes + kPage > kFileBytes) {
    std::fprintf(stderr,
                 "OPS and BYTES must be positive, BYTES at most 1 MiB, OPS*BYTES < 64 MiB\n");
    return 2;
  }
  try {
    for (const Way way : {Way::fallocated, Way::zero_filled, Way::o_dsync, Way::o_direct_dsync}) {
      measure(way, path, ops, bytes);
    }
    measure_round_trip(200000);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "gophermq_sync_floor: %s\n", error.what());
    std::filesystem::remove(path);
    return 1;
  }
  return 0;
}
