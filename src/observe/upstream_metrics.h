#pragma once
// The reverse proxy's per-upstream metrics. Counters come from the records (every proxied request's
// http::UpstreamRecord, seen by the record sink); the pool and health gauges come from the proxy at
// scrape time through UpstreamGaugeSource, which observe/ defines and the proxy implements.

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "http/record.h"
#include "http/stats.h"

namespace unbroken::observe {

// The outcomes unbroken_upstream_failures_total counts: upstream_refused .. upstream_unavailable, the
// schema's last ones.
inline constexpr std::size_t kFirstUpstreamOutcome = static_cast<std::size_t>(http::Outcome::kUpstreamRefused);
constexpr bool is_upstream_failure(http::Outcome o) {
  return static_cast<std::size_t>(o) >= kFirstUpstreamOutcome;
}

// One upstream as the proxy's pools and balancer see it when scraped.
struct UpstreamGauge {
  std::string upstream;       // as configured: the same string as http::UpstreamRecord::upstream
  std::size_t pool_idle = 0;  // idle keep-alive connections to it, summed over every loop's pool
  bool up = true;             // false while the balancer skips it (max fails, or the health check said down)
};
// Called on the admin loop's thread for each scrape of /metrics or /dashboard/data, so it must be safe
// to call from there while the serving loops run (read their counters, as /metrics reads LoopStats).
// Empty, or returning no rows: no proxy is configured, and the gauge families are absent. Rows of
// the same upstream (two routes sharing it) are merged: pool_idle summed, down if any row is down.
using UpstreamGaugeSource = std::function<std::vector<UpstreamGauge>()>;

// What one upstream's metrics hold at a scrape, merged from the counters and the gauge source.
struct UpstreamSample {
  std::string upstream;
  std::vector<std::pair<int, std::uint64_t>> by_status;       // the upstream's status -> requests; non-zero, ascending
  std::array<std::uint64_t, http::kOutcomeCount> failures{};  // by Outcome; only upstream_* are counted
  std::array<std::uint64_t, http::kDurationBuckets.size() + 1> header_buckets{};  // per bucket (last: +Inf)
  double header_sum_seconds = 0;
  std::uint64_t retries = 0;
  std::optional<std::size_t> pool_idle;  // both set when the gauge source named this upstream
  std::optional<bool> up;

  [[nodiscard]] std::uint64_t requests() const;
  [[nodiscard]] std::uint64_t header_count() const;
  // The q-quantile of the header times in seconds, interpolated within its bucket (Prometheus'
  // histogram_quantile); nullopt without a sample.
  [[nodiscard]] std::optional<double> header_quantile(double q) const;
};

// Per upstream: unbroken_upstream_requests_total{status} counts the requests whose upstream answered a
// head, by its status. One that got no head (refused, reset or timed out before it, or a client that
// left first) has no upstream status: it is counted in failures_total{outcome} when its outcome is an
// upstream_* one, and otherwise only in the server-wide unbroken_requests_total / disconnects_total.
// header_seconds observes upstream_header_ms of the requests that got a head; retries_total sums
// upstream_retries, charged to the upstream the request ended on (the record's `upstream`).
class UpstreamMetrics {
 public:
  UpstreamMetrics() = default;
  UpstreamMetrics(const UpstreamMetrics&) = delete;
  UpstreamMetrics& operator=(const UpstreamMetrics&) = delete;

  // Any thread: the record sink runs on every serving loop, and on a worker thread when a departed
  // exchange is let go. A record without an upstream returns at once. Lock-free and allocation-free
  // once the record's upstream has been seen (its first record takes a mutex to add its slot).
  void observe(const http::RequestRecord& rec);

  // Set by whoever owns the proxy's pools (app/serve); any thread, before or while scrapes run.
  void set_gauge_source(UpstreamGaugeSource source);

  // Every upstream seen in a record or named by the gauge source, sorted by name. Any thread.
  [[nodiscard]] std::vector<UpstreamSample> snapshot() const;

  // Upstream names are the configured ones, a small fixed set; past this many, records are counted
  // under upstream "other" rather than growing without bound.
  static constexpr std::size_t kMaxUpstreams = 256;

 private:
  // Several threads add to one slot, so these are atomic read-modify-writes (unlike LoopStats'
  // single-writer counters); a slot per upstream keeps the contention to requests on the same one.
  struct Slot {
    std::string name;
    std::array<std::atomic<std::uint64_t>, 600> by_status{};  // index = status code
    std::array<std::atomic<std::uint64_t>, http::kOutcomeCount> failures{};
    std::array<std::atomic<std::uint64_t>, http::kDurationBuckets.size() + 1> header_buckets{};
    std::atomic<std::uint64_t> header_sum_us{0};
    std::atomic<std::uint64_t> retries{0};
  };
  // The slot for `name`, added on its first record.
  Slot& slot(std::string_view name);
  // The slot named `name` among the first n published, or null.
  Slot* find(std::string_view name, std::size_t n) const;

  // Published slots are never moved or freed before the object: readers scan [0, count_) unlocked.
  std::array<std::atomic<Slot*>, kMaxUpstreams> slots_{};
  std::atomic<std::size_t> count_{0};
  mutable std::mutex mu_;                     // guards owned_ and gauges_
  std::vector<std::unique_ptr<Slot>> owned_;  // what slots_ points to
  UpstreamGaugeSource gauges_;
};

}  // namespace unbroken::observe
