#include "support/power_loss.hpp"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

namespace gophermq::test {
namespace fs = std::filesystem;
namespace {

std::string read_bytes(const fs::path& path, std::uint64_t from) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(from));
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void append(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    throw std::runtime_error("cannot append to " + path.string());
  }
}

std::string random_bytes(std::size_t count, std::mt19937_64& random) {
  std::uniform_int_distribution<int> byte(0, 255);
  std::string bytes(count, '\0');
  for (char& c : bytes) c = static_cast<char>(byte(random));
  return bytes;
}

std::string newest_log(const fs::path& dir) {
  std::string newest;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.path().extension() == ".wal" && name > newest) newest = name;
  }
  return newest;
}

}  // namespace

std::vector<DurableFile> read_shim_state(const fs::path& state) {
  std::vector<DurableFile> files;
  std::ifstream in(state);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    DurableFile file;
    int name_durable = 0;
    if (!(fields >> file.name >> file.durable_length >> name_durable)) {
      throw std::runtime_error("bad shim state line: " + line);
    }
    file.name_durable = name_durable == 1;
    file.written_end = file.durable_length;
    long long since = 0;
    // States written by hand in tests may leave out the last two fields.
    if (fields >> file.written_end >> since) {
      file.durable_since = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(since));
    }
    files.push_back(file);
  }
  return files;
}

PowerLossReport simulate_power_loss(const fs::path& dir, const fs::path& state, LostTail tail,
                                    std::mt19937_64& random) {
  PowerLossReport report;
  std::vector<std::pair<std::string, std::string>> lost_bytes;
  for (const DurableFile& file : read_shim_state(state)) {
    const fs::path path = dir / file.name;
    if (!fs::exists(path)) continue;
    const std::uint64_t size = fs::file_size(path);
    const bool lost_written =
        !file.name_durable ? file.written_end > 0 : file.written_end > file.durable_length;
    if (lost_written) {
      const auto since =
          file.name_durable ? file.durable_since : std::chrono::steady_clock::time_point{};
      report.lost_writes_after =
          report.lost_writes ? std::min(report.lost_writes_after, since) : since;
      report.lost_writes = true;
    }
    if (!file.name_durable) {
      fs::remove(path);
      ++report.files_deleted;
      report.bytes_lost += size;
      continue;
    }
    const std::uint64_t keep = std::min(size, file.durable_length);
    lost_bytes.emplace_back(file.name, read_bytes(path, keep));
    fs::resize_file(path, keep);
    report.bytes_lost += size - keep;
  }
  report.newest = newest_log(dir);
  if (report.newest.empty()) return report;
  const fs::path newest = dir / report.newest;
  std::string lost;
  for (const auto& [name, bytes] : lost_bytes) {
    if (name == report.newest) lost = bytes;
  }
  switch (tail) {
    case LostTail::cut:
      break;
    case LostTail::zeros:
      fs::resize_file(newest, fs::file_size(newest) + lost.size());
      break;
    case LostTail::torn_write: {
      std::uniform_int_distribution<std::size_t> prefix(0, lost.size());
      append(newest, lost.substr(0, prefix(random)) + random_bytes(512, random));
      break;
    }
    case LostTail::garbage: {
      std::uniform_int_distribution<std::size_t> length(1, 4096);
      append(newest, random_bytes(length(random), random));
      break;
    }
  }
  return report;
}

}  // namespace gophermq::test
