#pragma once

#include "config/config.hpp"

namespace gophermq::app {

// Builds the running broker from a Config, serves until SIGTERM or SIGINT, then shuts down
// gracefully. Returns the process exit status.
int run_daemon(const config::Config& config);

}  // namespace gophermq::app
