// Files and directories a test makes under /tmp and removes when it ends, even when it fails.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace gophermq::test {

// A fresh directory, removed with everything in it at the end.
class TempDir {
 public:
  TempDir() {
    char name[] = "/tmp/gophermq-dir-XXXXXX";
    if (mkdtemp(name) == nullptr) {
      throw std::runtime_error("mkdtemp failed");
    }
    path_ = name;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  [[nodiscard]] std::string string() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    char name[] = "/tmp/gophermq-test-XXXXXX";
    const int fd = mkstemp(name);
    if (fd < 0) {
      throw std::runtime_error("mkstemp failed");
    }
    close(fd);
    path_ = name;
    std::ofstream(path_) << content;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A fresh directory that is the working directory while this lives, as where a user starts the
// broker; the previous one is restored.
class TempWorkingDirectory {
 public:
  TempWorkingDirectory() : previous_(std::filesystem::current_path()) {
    char name[] = "/tmp/gophermq-cwd-XXXXXX";
    if (mkdtemp(name) == nullptr) {
      throw std::runtime_error("mkdtemp failed");
    }
    path_ = name;
    std::filesystem::current_path(path_);
  }
  ~TempWorkingDirectory() {
    std::filesystem::current_path(previous_);
    std::filesystem::remove_all(path_);
  }
  TempWorkingDirectory(const TempWorkingDirectory&) = delete;
  TempWorkingDirectory& operator=(const TempWorkingDirectory&) = delete;

  // Writes `content` to the file `name` in the directory, replacing what it held.
  void write(const std::string& name, const std::string& content) const {
    std::ofstream(path_ / name) << content;
  }

 private:
  std::filesystem::path previous_;
  std::filesystem::path path_;
};

}  // namespace gophermq::test
