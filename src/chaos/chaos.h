#pragma once
// `unbroken chaos`: a load generator whose clients misbehave the way real ones do. One event loop
// drives every client (thousands on one core); the run is bounded by --duration and stops by itself.

#include "chaos/chaos_config.h"
#include "chaos/report.h"

namespace unbroken::chaos {

// Runs the clients against cfg.target for cfg.duration and returns what they saw, judged.
// `progress`: a status line on stderr every second.
Report run(const ChaosConfig& cfg, bool progress);

// The subcommand: runs, prints the report (text or JSON) and returns the exit code: 0 when good
// clients were served throughout, 1 when not.
int run_chaos(const ChaosConfig& cfg);

}  // namespace unbroken::chaos
