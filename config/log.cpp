#include "config/log.hpp"

#include <cstdio>
#include <string>

namespace gophermq::config {
namespace {

std::atomic<LogLevel> enabled_level{LogLevel::info};

std::string_view level_name(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
  }
  return "info";
}

}  // namespace

void set_log_level(LogLevel level) noexcept {
  enabled_level.store(level, std::memory_order_relaxed);
}

void log(LogLevel level, std::string_view message) {
  if (level < enabled_level.load(std::memory_order_relaxed)) {
    return;
  }
  std::string line = "level=";
  line.append(level_name(level)).append(" ").append(message).append("\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace gophermq::config
