// The power-loss simulator (test/support/power_loss.cpp) on hand-made directories and states.
#include "support/power_loss.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <string>

namespace gophermq::test {
namespace {
namespace fs = std::filesystem;

class PowerLoss : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "gophermq-power-XXXXXX").string();
    dir_ = mkdtemp(pattern.data());
  }
  void TearDown() override { fs::remove_all(dir_); }

  void file(const std::string& name, const std::string& content) const {
    std::ofstream(dir_ / name, std::ios::binary) << content;
  }
  std::string content(const std::string& name) const {
    std::ifstream in(dir_ / name, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  void state(const std::string& text) const { std::ofstream(dir_ / "state") << text; }
  PowerLossReport lose_power(LostTail tail) {
    return simulate_power_loss(dir_, dir_ / "state", tail, random_);
  }

  fs::path dir_;
  std::mt19937_64 random_{7};
};

TEST_F(PowerLoss, FilesAreCutToTheirDurableLengthAndUndurableNamesVanish) {
  file("00000000000000000001.wal", "0123456789");
  file("00000000000000000002.wal", "abcdef");
  file("00000000000000000003.wal", "new");
  state(
      "00000000000000000001.wal 4 1\n00000000000000000002.wal 6 1\n"
      "00000000000000000003.wal 3 0\n");
  const auto report = lose_power(LostTail::cut);
  EXPECT_EQ(content("00000000000000000001.wal"), "0123");
  EXPECT_EQ(content("00000000000000000002.wal"), "abcdef");
  EXPECT_FALSE(fs::exists(dir_ / "00000000000000000003.wal"));
  EXPECT_EQ(report.files_deleted, 1u);
  EXPECT_EQ(report.bytes_lost, 6u + 3u);
  EXPECT_EQ(report.newest, "00000000000000000002.wal");
}

TEST_F(PowerLoss, FilesTheStateDoesNotNameAreLeftAlone) {
  file("00000000000000000001.wal", "keep");
  file("LOCK", "");
  state("");
  lose_power(LostTail::cut);
  EXPECT_EQ(content("00000000000000000001.wal"), "keep");
  EXPECT_TRUE(fs::exists(dir_ / "LOCK"));
}

TEST_F(PowerLoss, ADurableLengthPastTheEndNeverGrowsAFile) {
  file("00000000000000000001.wal", "abc");
  state("00000000000000000001.wal 100 1\n");
  lose_power(LostTail::cut);
  EXPECT_EQ(content("00000000000000000001.wal"), "abc");
}

TEST_F(PowerLoss, ZerosReplaceTheLostTailAndOnlyTheNewestFileGetsOne) {
  file("00000000000000000001.wal", "aaaaXXXX");
  file("00000000000000000002.wal", "bbbbYYYY");
  state("00000000000000000001.wal 4 1\n00000000000000000002.wal 4 1\n");
  lose_power(LostTail::zeros);
  EXPECT_EQ(content("00000000000000000001.wal"), "aaaa");
  EXPECT_EQ(content("00000000000000000002.wal"), std::string("bbbb") + std::string(4, '\0'));
}

TEST_F(PowerLoss, ATornWriteKeepsAPrefixOfTheLostBytesThenATornSector) {
  const std::string lost(3000, 'L');
  file("00000000000000000001.wal", "durable" + lost);
  state("00000000000000000001.wal 7 1\n");
  lose_power(LostTail::torn_write);
  const std::string after = content("00000000000000000001.wal");
  ASSERT_GE(after.size(), 7u + 512u);
  ASSERT_LE(after.size(), 7u + lost.size() + 512u);
  const std::size_t prefix = after.size() - 7 - 512;
  EXPECT_EQ(after.substr(0, 7 + prefix), "durable" + lost.substr(0, prefix));
  EXPECT_NE(after.substr(7 + prefix), std::string(512, 'L'));
}

TEST_F(PowerLoss, GarbageFollowsTheDurableEnd) {
  file("00000000000000000001.wal", "durableLOST");
  state("00000000000000000001.wal 7 1\n");
  lose_power(LostTail::garbage);
  const std::string after = content("00000000000000000001.wal");
  EXPECT_EQ(after.substr(0, 7), "durable");
  EXPECT_GE(after.size(), 8u);
  EXPECT_LE(after.size(), 7u + 4096u);
}

TEST_F(PowerLoss, WritesAreLostOnlyAfterTheLastSyncOfAFileThatLostBytesBegan) {
  file("00000000000000000001.wal", "0123456789");
  file("00000000000000000002.wal", "abcdefgh");
  file("00000000000000000003.wal", "xyz");
  // 1 lost written bytes past its sync at 5000 ns; 2 is clean since 9000 ns; 3 is reserved space
  // that nothing wrote.
  state(
      "00000000000000000001.wal 4 1 10 5000\n00000000000000000002.wal 8 1 8 9000\n"
      "00000000000000000003.wal 0 1 0 0\n");
  const auto report = lose_power(LostTail::cut);
  EXPECT_TRUE(report.lost_writes);
  EXPECT_EQ(report.lost_writes_after,
            std::chrono::steady_clock::time_point(std::chrono::nanoseconds(5000)));
}

TEST_F(PowerLoss, AFileWhoseNameWasNotDurableLostEverythingItsProcessWrote) {
  file("00000000000000000001.wal", "0123456789");
  file("00000000000000000002.wal", "new");
  state("00000000000000000001.wal 4 1 10 5000\n00000000000000000002.wal 3 0 3 7000\n");
  const auto report = lose_power(LostTail::cut);
  EXPECT_TRUE(report.lost_writes);
  EXPECT_EQ(report.lost_writes_after, std::chrono::steady_clock::time_point{});
}

TEST_F(PowerLoss, NoWriteIsLostWhenEveryWrittenByteWasSynced) {
  file("00000000000000000001.wal", std::string(100, 'r'));
  state("00000000000000000001.wal 10 1 10 5000\n");
  const auto report = lose_power(LostTail::cut);
  EXPECT_FALSE(report.lost_writes);
  EXPECT_EQ(report.bytes_lost, 90u);  // reserved space past the data, not written bytes
}

TEST_F(PowerLoss, ABadStateLineIsAnError) {
  state("00000000000000000001.wal many 1\n");
  EXPECT_THROW(lose_power(LostTail::cut), std::runtime_error);
}

}  // namespace
}  // namespace gophermq::test
