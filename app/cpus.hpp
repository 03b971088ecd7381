#pragma once

#include <optional>
#include <string_view>

namespace gophermq::app {

// CPUs this process may actually use: the affinity mask, lowered by a cgroup CPU quota (v2
// cpu.max or v1 cpu.cfs_quota_us, on the process's cgroup or any ancestor), as nginx's
// `worker_processes auto` and Go's GOMAXPROCS count them. At least 1.
unsigned usable_cpus();

// Whole CPUs a cgroup v2 `cpu.max` line ("QUOTA PERIOD" or "max PERIOD") grants, rounded up;
// nullopt when it sets no quota or cannot be read.
std::optional<unsigned> cpus_of_cpu_max(std::string_view cpu_max);

// The same for cgroup v1's cpu.cfs_quota_us and cpu.cfs_period_us (a quota of -1: none).
std::optional<unsigned> cpus_of_cfs(std::string_view quota_us, std::string_view period_us);

}  // namespace gophermq::app
