#pragma once
// Prometheus text exposition of the per-loop counters, summed at scrape time.

#include <string>
#include <vector>

#include "http/stats.h"

namespace unbroken::observe {

struct MetricsSources {
  std::vector<const http::LoopStats*> loops;
  std::uint64_t log_records_dropped = 0;
};

std::string render_metrics(const MetricsSources& src);

}  // namespace unbroken::observe
