#pragma once

#include <atomic>
#include <string_view>

namespace gophermq::config {

enum class LogLevel { debug, info, warn, error };

// One logfmt line to stderr (journald and docker both collect it), if `level` is enabled.
void log(LogLevel level, std::string_view message);
void set_log_level(LogLevel level) noexcept;

}  // namespace gophermq::config
