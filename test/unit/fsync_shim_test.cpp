// The fsync shim (test/support/fsync_shim.cpp), preloaded into a probe program that runs file
// operations in a watched directory; the state file and the probe's errnos show what it recorded
// and injected.
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/power_loss.hpp"

extern char** environ;

namespace gophermq::test {
namespace {
namespace fs = std::filesystem;

class FsyncShim : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "gophermq-shim-XXXXXX").string();
    root_ = mkdtemp(pattern.data());
    dir_ = root_ / "wal";
    fs::create_directory(dir_);
  }
  void TearDown() override { fs::remove_all(root_); }

  // Runs the probe with the shim preloaded and returns its output, one line per operation.
  std::string probe(const std::vector<std::string>& operations, bool preload = true) {
    std::vector<std::string> text{GOPHERMQ_SHIM_PROBE};
    text.insert(text.end(), operations.begin(), operations.end());
    std::vector<std::string> environment{
        "GOPHERMQ_SHIM_DIR=" + dir_.string(), "GOPHERMQ_SHIM_STATE=" + state().string(),
        "GOPHERMQ_SHIM_CONTROL=" + control().string(), "SHIM_PROBE_DIR=" + dir_.string(),
        "SHIM_PROBE_CONTROL=" + control().string()};
    if (preload) environment.emplace_back("LD_PRELOAD=" GOPHERMQ_FSYNC_SHIM);
    std::vector<char*> argv;
    for (auto& item : text) argv.push_back(item.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& item : environment) envp.push_back(item.data());
    envp.push_back(nullptr);

    int pipe_ends[2];
    if (pipe(pipe_ends) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipe_ends[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, pipe_ends[0]);
    pid_t pid = 0;
    const int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    close(pipe_ends[1]);
    std::string output;
    char chunk[4096];
    ssize_t got = 0;
    while ((got = read(pipe_ends[0], chunk, sizeof chunk)) > 0) {
      output.append(chunk, static_cast<std::size_t>(got));
    }
    close(pipe_ends[0]);
    int status = -1;
    EXPECT_EQ(spawned, 0);
    EXPECT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
    return output;
  }

  // The state file as `name durable name_durable` lines, sorted by name.
  std::string state_text() const {
    auto files = read_shim_state(state());
    std::sort(files.begin(), files.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    std::string text;
    for (const auto& file : files) {
      text += file.name + " " + std::to_string(file.durable_length) + " " +
              (file.name_durable ? "1" : "0") + "\n";
    }
    return text;
  }

  fs::path state() const { return root_ / "state"; }
  fs::path control() const { return root_ / "control"; }

  fs::path root_;
  fs::path dir_;
};

TEST_F(FsyncShim, AFileIsDurableUpToWhatWasWrittenWhenItsFdatasyncBegan) {
  probe({"opendir", "create:a.wal", "fsyncdir", "write:a.wal:10", "pwrite:a.wal:10:90",
         "fdatasync:a.wal", "pwrite:a.wal:100:50"});
  EXPECT_EQ(state_text(), "a.wal 100 1\n");
  EXPECT_EQ(fs::file_size(dir_ / "a.wal"), 150u);
}

TEST_F(FsyncShim, TheStateTellsWhenTheLastSyncBeganAndWhetherWritesFollowedIt) {
  const auto before = std::chrono::steady_clock::now();
  probe({"opendir", "create:a.wal", "fsyncdir", "pwrite:a.wal:0:100", "fdatasync:a.wal"});
  const auto after = std::chrono::steady_clock::now();
  auto files = read_shim_state(state());
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].written_end, 100u);
  EXPECT_GE(files[0].durable_since, before);
  EXPECT_LE(files[0].durable_since, after);
  // A write after the sync changes no durable length, but the state shows the file dirty.
  probe({"open:a.wal", "fdatasync:a.wal", "pwrite:a.wal:100:20"});
  files = read_shim_state(state());
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].durable_length, 100u);
  EXPECT_EQ(files[0].written_end, 120u);
  EXPECT_GT(files[0].durable_since, after);
}

TEST_F(FsyncShim, FsyncAndPwritevCountAsFdatasyncAndPwrite) {
  probe({"opendir", "create:a.wal", "fsyncdir", "pwritev:a.wal:0:300", "fsync:a.wal"});
  EXPECT_EQ(state_text(), "a.wal 300 1\n");
}

TEST_F(FsyncShim, ANameIsDurableOnlyOnceTheDirectoryIsFsyncedAfterItsCreation) {
  probe({"opendir", "create:a.wal", "pwrite:a.wal:0:10", "fdatasync:a.wal"});
  EXPECT_EQ(state_text(), "a.wal 10 0\n");
  fs::remove(dir_ / "a.wal");
  probe({"opendir", "create:a.wal", "fsyncdir", "openat:b.wal"});
  EXPECT_EQ(state_text(), "a.wal 0 1\nb.wal 0 0\n");
}

TEST_F(FsyncShim, FilesThatExistedAreDurableWithTheirSize) {
  std::ofstream(dir_ / "old.wal") << std::string(300, 'o');
  probe({"open:old.wal", "pwrite:old.wal:300:50"});
  EXPECT_EQ(state_text(), "old.wal 300 1\n");
}

TEST_F(FsyncShim, OverwrittenDurableBytesAreDurableAgainOnlyAfterASync) {
  std::ofstream(dir_ / "old.wal") << std::string(4096, '\0');
  probe({"open:old.wal", "pwrite:old.wal:100:50"});
  EXPECT_EQ(state_text(), "old.wal 100 1\n");
  probe({"open:old.wal", "pwrite:old.wal:100:50", "fdatasync:old.wal"});
  EXPECT_EQ(state_text(), "old.wal 4096 1\n");
}

TEST_F(FsyncShim, PreallocationIsNotWrittenData) {
  probe({"opendir", "create:a.wal", "fallocate:a.wal:65536", "fsyncdir", "pwrite:a.wal:0:20",
         "fdatasync:a.wal"});
  EXPECT_EQ(state_text(), "a.wal 20 1\n");
  EXPECT_EQ(fs::file_size(dir_ / "a.wal"), 65536u);
}

TEST_F(FsyncShim, ShrinkingLowersWhatIsDurableAndOtruncEmptiesIt) {
  probe({"opendir", "create:a.wal", "create:b.wal", "fsyncdir", "pwrite:a.wal:0:100",
         "pwrite:b.wal:0:100", "fdatasync:a.wal", "fdatasync:b.wal", "ftruncate:a.wal:40",
         "close:b.wal", "trunc:b.wal"});
  EXPECT_EQ(state_text(), "a.wal 40 1\nb.wal 0 1\n");
}

TEST_F(FsyncShim, DsyncWritesAreDurableAtOnce) {
  probe({"opendir", "opendsync:a.wal", "fsyncdir", "pwrite:a.wal:0:70"});
  EXPECT_EQ(state_text(), "a.wal 70 1\n");
}

TEST_F(FsyncShim, UnlinkedFilesLeaveTheStateAndRenamedOnesNeedTheDirectoryAgain) {
  probe({"opendir", "create:a.wal", "create:b.wal", "fsyncdir", "pwrite:b.wal:0:5",
         "fdatasync:b.wal", "unlink:a.wal", "rename:b.wal:c.wal"});
  EXPECT_EQ(state_text(), "c.wal 5 0\n");
}

TEST_F(FsyncShim, AClosedFileStaysInTheStateAndItsFdIsForgotten) {
  probe({"opendir", "create:a.wal", "fsyncdir", "pwrite:a.wal:0:10", "fdatasync:a.wal",
         "close:a.wal", "create:elsewhere", "unlink:elsewhere"});
  EXPECT_EQ(state_text(), "a.wal 10 1\n");
}

TEST_F(FsyncShim, FilesOutsideTheDirectoryAreNotTracked) {
  fs::create_directory(dir_ / "sub");
  const std::string outside = fs::relative(root_ / "outside.wal", dir_).string();
  probe({"opendir", "create:sub/x.wal", "fdatasync:sub/x.wal", "create:" + outside,
         "pwrite:" + outside + ":0:9", "fdatasync:" + outside, "fsyncdir"});
  EXPECT_EQ(state_text(), "");
}

TEST_F(FsyncShim, TheStateStartsEmptyInEachProcess) {
  std::ofstream(state()) << "stale.wal 5 1\n";
  probe({});
  EXPECT_EQ(state_text(), "");
}

TEST_F(FsyncShim, EioFailsEveryFsyncOfTheDirectoryAndItsFilesUntilCleared) {
  const std::string eio = "errno=" + std::to_string(EIO);
  const auto output =
      probe({"opendir", "create:a.wal", "fsyncdir", "pwrite:a.wal:0:10", "control:eio-fsync",
             "fdatasync:a.wal", "fsync:a.wal", "fsyncdir", "control:", "fdatasync:a.wal"});
  EXPECT_EQ(output, "opendir ok\ncreate ok\nfsyncdir ok\npwrite ok\ncontrol ok\nfdatasync " + eio +
                        "\nfsync " + eio + "\nfsyncdir " + eio + "\ncontrol ok\nfdatasync ok\n");
  EXPECT_EQ(state_text(), "a.wal 10 1\n");
}

TEST_F(FsyncShim, EioLeavesWhatWasDurable) {
  probe({"opendir", "create:a.wal", "fsyncdir", "pwrite:a.wal:0:10", "fdatasync:a.wal",
         "pwrite:a.wal:10:10", "control:eio-fsync", "fdatasync:a.wal"});
  EXPECT_EQ(state_text(), "a.wal 10 1\n");
}

TEST_F(FsyncShim, EnospcRefusesAllocationAndGrowthButNotPreallocatedWrites) {
  const std::string enospc = "errno=" + std::to_string(ENOSPC);
  const auto output =
      probe({"create:a.wal", "fallocate:a.wal:4096", "control:enospc", "fallocate:a.wal:8192",
             "pwrite:a.wal:0:4096", "pwrite:a.wal:4000:100", "write:a.wal:10",
             "control:", "fallocate:a.wal:8192", "pwrite:a.wal:8192:10"});
  EXPECT_EQ(output, "create ok\nfallocate ok\ncontrol ok\nfallocate " + enospc +
                        "\npwrite ok\npwrite " + enospc +
                        "\nwrite ok\ncontrol ok\nfallocate "
                        "ok\npwrite ok\n");
}

TEST_F(FsyncShim, ItsVariablesAreHiddenFromTheProgram) {
  EXPECT_EQ(probe({"environment"}), "environment ok\n");
}

TEST_F(FsyncShim, WithoutTheShimNothingIsRecordedOrInjected) {
  std::ofstream(control()) << "eio-fsync";
  const auto output = probe({"create:a.wal", "fdatasync:a.wal", "environment"}, false);
  EXPECT_EQ(output, "create ok\nfdatasync ok\nenvironment errno=" + std::to_string(EEXIST) + "\n");
  EXPECT_FALSE(fs::exists(state()));
}

TEST_F(FsyncShim, ConcurrentWritersAndSyncsEndDurableToTheEnd) {
  probe({"opendir", "create:a.wal", "fsyncdir", "threads:4:50:a.wal"});
  EXPECT_EQ(state_text(), "a.wal " + std::to_string(4 * 50 * 4096) + " 1\n");
}

}  // namespace
}  // namespace gophermq::test
