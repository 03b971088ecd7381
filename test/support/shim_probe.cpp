// A tiny program for the fsync shim's tests: it runs the file operations given as arguments, in
// order, on files in $SHIM_PROBE_DIR, and prints one line per operation: `ok` or `errno=N`.
//
//   create:N open:N opendsync:N (open, with O_CREAT, O_RDWR, O_DSYNC), openat:N (relative to an
//   fd of the directory), trunc:N (O_TRUNC), opendir, pwrite:N:OFFSET:LENGTH, write:N:LENGTH,
//   pwritev:N:OFFSET:LENGTH, fsync:N, fdatasync:N, fsyncdir, fallocate:N:LENGTH,
//   ftruncate:N:LENGTH, close:N, unlink:N, rename:FROM:TO, control:TEXT (writes
//   $SHIM_PROBE_CONTROL), environment (fails when a GOPHERMQ_ variable is visible),
//   threads:COUNT:ROUNDS:N (each thread writes its own 4 KiB blocks of N and fdatasyncs after
//   each).
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> parts;
  std::istringstream in(text);
  std::string part;
  while (std::getline(in, part, ':')) parts.push_back(part);
  return parts;
}

off_t number(const std::string& text) {
  return static_cast<off_t>(std::stoll(text));
}

}  // namespace

extern char** environ;

int main(int argc, char** argv) {
  const char* dir_text = std::getenv("SHIM_PROBE_DIR");
  const std::string dir = dir_text == nullptr ? "." : dir_text;
  std::map<std::string, int> fds;
  int dir_fd = -1;
  for (int at = 1; at < argc; ++at) {
    const auto op = split(argv[at]);
    const std::string path = op.size() > 1 ? dir + "/" + op[1] : dir;
    long result = 0;
    const auto open_file = [&](int flags) {
      const int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
      if (fd >= 0) fds[op[1]] = fd;
      return fd;
    };
    if (op[0] == "create" || op[0] == "open") {
      result = open_file(O_CREAT | O_RDWR);
    } else if (op[0] == "opendsync") {
      result = open_file(O_CREAT | O_RDWR | O_DSYNC);
    } else if (op[0] == "trunc") {
      result = open_file(O_CREAT | O_RDWR | O_TRUNC);
    } else if (op[0] == "opendir") {
      result = dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } else if (op[0] == "openat") {
      result = ::openat(dir_fd, op[1].c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
      if (result >= 0) fds[op[1]] = static_cast<int>(result);
    } else if (op[0] == "pwrite") {
      const std::string bytes(static_cast<std::size_t>(number(op[3])), 'x');
      result = ::pwrite(fds[op[1]], bytes.data(), bytes.size(), number(op[2]));
    } else if (op[0] == "write") {
      const std::string bytes(static_cast<std::size_t>(number(op[2])), 'x');
      result = ::write(fds[op[1]], bytes.data(), bytes.size());
    } else if (op[0] == "pwritev") {
      std::string bytes(static_cast<std::size_t>(number(op[3])), 'x');
      const std::size_t half = bytes.size() / 2;
      const iovec vectors[2] = {{bytes.data(), half}, {bytes.data() + half, bytes.size() - half}};
      result = ::pwritev(fds[op[1]], vectors, 2, number(op[2]));
    } else if (op[0] == "fsync") {
      result = ::fsync(fds[op[1]]);
    } else if (op[0] == "fdatasync") {
      result = ::fdatasync(fds[op[1]]);
    } else if (op[0] == "fsyncdir") {
      result = ::fsync(dir_fd);
    } else if (op[0] == "fallocate") {
      result = ::fallocate(fds[op[1]], 0, 0, number(op[2]));
    } else if (op[0] == "ftruncate") {
      result = ::ftruncate(fds[op[1]], number(op[2]));
    } else if (op[0] == "close") {
      result = ::close(fds[op[1]]);
      fds.erase(op[1]);
    } else if (op[0] == "unlink") {
      result = ::unlink(path.c_str());
    } else if (op[0] == "rename") {
      result = ::rename(path.c_str(), (dir + "/" + op[2]).c_str());
    } else if (op[0] == "control") {
      const std::string control = std::getenv("SHIM_PROBE_CONTROL");
      std::ofstream(control + ".tmp") << (op.size() > 1 ? op[1] : "");
      result = std::rename((control + ".tmp").c_str(), control.c_str());
    } else if (op[0] == "environment") {
      for (char** entry = environ; *entry != nullptr; ++entry) {
        if (std::string(*entry).starts_with("GOPHERMQ_")) {
          errno = EEXIST;
          result = -1;
        }
      }
    } else if (op[0] == "threads") {
      const int count = static_cast<int>(number(op[1]));
      const int rounds = static_cast<int>(number(op[2]));
      const int fd = fds[op[3]];
      std::vector<std::thread> threads;
      for (int thread = 0; thread < count; ++thread) {
        threads.emplace_back([&, thread] {
          const std::string block(4096, 'y');
          for (int round = 0; round < rounds; ++round) {
            const off_t offset = (off_t{round} * count + thread) * 4096;
            if (::pwrite(fd, block.data(), block.size(), offset) != 4096 || ::fdatasync(fd) != 0) {
              std::abort();
            }
          }
        });
      }
      for (auto& thread : threads) thread.join();
    } else {
      std::fprintf(stderr, "unknown operation %s\n", argv[at]);
      return 2;
    }
    if (result < 0) {
      std::printf("%s errno=%d\n", op[0].c_str(), errno);
    } else {
      std::printf("%s ok\n", op[0].c_str());
    }
  }
  return 0;
}
