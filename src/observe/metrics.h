#pragma once
// Prometheus text exposition of the per-loop counters, summed at scrape time.

#include <string>
#include <vector>

#include "http/stats.h"

namespace unbroken::observe {

struct MetricsSources {
  std::vector<const http::LoopStats*> loops;
  std::uint64_t log_records_dropped = 0;
  std::vector<std::string> route_names;  // by route slot (Router::slot_name)
  double uptime_s = 0;
};

// Sums one counter over every loop.
template <typename F>
std::uint64_t sum(const MetricsSources& src, F get) {
  std::uint64_t total = 0;
  for (const http::LoopStats* s : src.loops) total += get(*s).get();
  return total;
}

std::string render_metrics(const MetricsSources& src);
// The cumulative counters behind GET /dashboard/data, as one JSON object.
std::string render_dashboard_data(const MetricsSources& src);

}  // namespace unbroken::observe
