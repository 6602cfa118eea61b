#pragma once

#include "app/serve_config.h"

namespace unbroken::app {

// Runs `unbroken serve` until SIGTERM/SIGINT has drained it. Returns the process exit code.
// Start-up failures log one line and return non-zero.
int run_serve(const ServeConfig& cfg);

}  // namespace unbroken::app
