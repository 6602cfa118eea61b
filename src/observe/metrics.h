#pragma once
// Prometheus text exposition of the per-loop counters, summed at scrape time.

#include <optional>
#include <string>
#include <vector>

#include "http/stats.h"
#include "observe/upstream_metrics.h"

namespace unbroken::observe {

// Session counters, gathered by whoever owns the session manager (observe does not know it).
struct SessionMetrics {
  std::string store;
  std::uint64_t active = 0, created = 0, expired = 0, store_errors = 0;
  std::vector<double> sweep_bounds;         // bucket upper bounds, seconds
  std::vector<std::uint64_t> sweep_counts;  // per bucket (not cumulative), then one for +Inf
  double sweep_sum_seconds = 0;
};

struct MetricsSources {
  std::vector<const http::LoopStats*> loops;
  std::uint64_t log_records_dropped = 0;
  std::vector<std::string> route_names;  // by route slot (Router::slot_name)
  double uptime_s = 0;
  std::optional<SessionMetrics> sessions;
  const UpstreamMetrics* upstreams = nullptr;  // null: no proxy (its families are absent)
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
