#include "app/cpus.hpp"

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace gophermq::app {
namespace {

std::optional<std::int64_t> to_integer(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc{} || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

std::optional<unsigned> whole_cpus(std::int64_t quota, std::int64_t period) {
  if (quota <= 0 || period <= 0) {
    return std::nullopt;
  }
  return static_cast<unsigned>(std::max<std::int64_t>(1, (quota + period - 1) / period));
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream file(path);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

// The process's path in the hierarchy whose /proc/self/cgroup line has `controllers` ("" for
// the v2 unified hierarchy, "cpu" for v1's cpu controller, which may be listed as "cpu,cpuacct").
std::optional<std::string> cgroup_path(std::string_view controller) {
  std::ifstream file("/proc/self/cgroup");
  std::string line;
  while (std::getline(file, line)) {
    const auto first = line.find(':');
    const auto second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) {
      continue;
    }
    const std::string controllers = line.substr(first + 1, second - first - 1);
    std::istringstream names(controllers);
    std::string name;
    bool match = controller.empty() && controllers.empty();
    while (!controller.empty() && std::getline(names, name, ',')) {
      match = match || name == controller;
    }
    if (match) {
      return line.substr(second + 1);
    }
  }
  return std::nullopt;
}

// The smallest quota on the way from the process's cgroup up to the hierarchy's root, each
// directory read with `quota_of`. Inside a container the path may name the host's hierarchy,
// which is not mounted; only the directories that exist count.
template <typename QuotaOf>
std::optional<unsigned> smallest_quota(const std::filesystem::path& root, std::string_view path,
                                       QuotaOf quota_of) {
  std::optional<unsigned> smallest;
  std::filesystem::path directory = root / std::filesystem::path(path).relative_path();
  while (true) {
    if (const auto cpus = quota_of(directory); cpus && (!smallest || *cpus < *smallest)) {
      smallest = cpus;
    }
    if (directory == root || !directory.has_parent_path()) {
      break;
    }
    directory = directory.parent_path();
  }
  return smallest;
}

std::optional<unsigned> cgroup_quota() {
  if (const auto path = cgroup_path("")) {
    const auto quota = smallest_quota("/sys/fs/cgroup", *path, [](const auto& directory) {
      return cpus_of_cpu_max(read_text(directory / "cpu.max"));
    });
    if (quota) {
      return quota;
    }
  }
  if (const auto path = cgroup_path("cpu")) {
    return smallest_quota("/sys/fs/cgroup/cpu", *path, [](const auto& directory) {
      return cpus_of_cfs(read_text(directory / "cpu.cfs_quota_us"),
                         read_text(directory / "cpu.cfs_period_us"));
    });
  }
  return std::nullopt;
}

unsigned affinity_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    return static_cast<unsigned>(std::max(1, CPU_COUNT(&set)));
  }
  return std::max(1U, std::thread::hardware_concurrency());
}

}  // namespace

std::optional<unsigned> cpus_of_cpu_max(std::string_view cpu_max) {
  const auto space = cpu_max.find(' ');
  if (space == std::string_view::npos) {
    return std::nullopt;
  }
  const auto quota = to_integer(cpu_max.substr(0, space));
  const auto period = to_integer(cpu_max.substr(space + 1));
  if (!quota || !period) {
    return std::nullopt;  // "max": no quota
  }
  return whole_cpus(*quota, *period);
}

std::optional<unsigned> cpus_of_cfs(std::string_view quota_us, std::string_view period_us) {
  const auto quota = to_integer(quota_us);
  const auto period = to_integer(period_us);
  if (!quota || !period) {
    return std::nullopt;
  }
  return whole_cpus(*quota, *period);
}

unsigned usable_cpus() {
  const unsigned cpus = affinity_cpus();
  const auto quota = cgroup_quota();
  return quota ? std::min(cpus, *quota) : cpus;
}

}  // namespace gophermq::app
