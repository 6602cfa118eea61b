#include "observe/upstream_metrics.h"

#include <algorithm>

namespace unbroken::observe {
namespace {

void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) {
  c.fetch_add(n, std::memory_order_relaxed);
}

std::uint64_t read(const std::atomic<std::uint64_t>& c) {
  return c.load(std::memory_order_relaxed);
}

}  // namespace

std::uint64_t UpstreamSample::requests() const {
  std::uint64_t n = 0;
  for (const auto& [status, count] : by_status) n += count;
  return n;
}

std::uint64_t UpstreamSample::header_count() const {
  std::uint64_t n = 0;
  for (std::uint64_t c : header_buckets) n += c;
  return n;
}

std::optional<double> UpstreamSample::header_quantile(double q) const {
  std::uint64_t total = header_count();
  if (total == 0) return std::nullopt;
  double rank = q * static_cast<double>(total);
  std::uint64_t below = 0;
  for (std::size_t b = 0; b < header_buckets.size(); ++b) {
    if (header_buckets[b] == 0 || static_cast<double>(below + header_buckets[b]) < rank) {
      below += header_buckets[b];
      continue;
    }
    // The +Inf bucket has no upper bound: like histogram_quantile, answer the highest finite one.
    if (b == http::kDurationBuckets.size()) return http::kDurationBuckets.back();
    double lo = b == 0 ? 0 : http::kDurationBuckets[b - 1];
    double hi = http::kDurationBuckets[b];
    double within = (rank - static_cast<double>(below)) / static_cast<double>(header_buckets[b]);
    return lo + (hi - lo) * std::clamp(within, 0.0, 1.0);
  }
  return http::kDurationBuckets.back();
}

UpstreamMetrics::Slot* UpstreamMetrics::find(std::string_view name, std::size_t n) const {
  for (std::size_t i = 0; i < n; ++i) {
    Slot* s = slots_[i].load(std::memory_order_relaxed);
    if (s->name == name) return s;
  }
  return nullptr;
}

UpstreamMetrics::Slot& UpstreamMetrics::slot(std::string_view name) {
  std::size_t n = count_.load(std::memory_order_acquire);
  if (Slot* s = find(name, n)) return *s;
  if (n == kMaxUpstreams) return *slots_[kMaxUpstreams - 1].load(std::memory_order_relaxed);  // "other"
  std::lock_guard lock(mu_);
  // Another thread may have added it (or filled the table) since the unlocked scan.
  n = count_.load(std::memory_order_relaxed);
  if (Slot* s = find(name, n)) return *s;
  if (n == kMaxUpstreams) return *slots_[kMaxUpstreams - 1].load(std::memory_order_relaxed);
  Slot* s = owned_.emplace_back(std::make_unique<Slot>()).get();
  s->name = n + 1 == kMaxUpstreams ? std::string("other") : std::string(name);
  slots_[n].store(s, std::memory_order_relaxed);
  count_.store(n + 1, std::memory_order_release);  // publishes the slot and its name
  return *s;
}

void UpstreamMetrics::observe(const http::RequestRecord& rec) {
  if (!rec.upstream) return;
  const http::UpstreamRecord& u = *rec.upstream;
  Slot& s = slot(u.upstream);
  if (u.status > 0 && u.status < 600) {
    bump(s.by_status[static_cast<std::size_t>(u.status)]);
    double seconds = u.header_ms / 1000;
    std::size_t b = 0;
    while (b < http::kDurationBuckets.size() && seconds > http::kDurationBuckets[b]) ++b;
    bump(s.header_buckets[b]);
    bump(s.header_sum_us, static_cast<std::uint64_t>(u.header_ms * 1000));
  }
  if (is_upstream_failure(rec.outcome)) bump(s.failures[static_cast<std::size_t>(rec.outcome)]);
  if (u.retries > 0) bump(s.retries, static_cast<std::uint64_t>(u.retries));
}

void UpstreamMetrics::set_gauge_source(UpstreamGaugeSource source) {
  std::lock_guard lock(mu_);
  gauges_ = std::move(source);
}

std::vector<UpstreamSample> UpstreamMetrics::snapshot() const {
  std::vector<UpstreamSample> out;
  std::size_t n = count_.load(std::memory_order_acquire);
  for (std::size_t i = 0; i < n; ++i) {
    const Slot& s = *slots_[i].load(std::memory_order_relaxed);
    UpstreamSample& u = out.emplace_back();
    u.upstream = s.name;
    for (std::size_t code = 100; code < s.by_status.size(); ++code)
      if (std::uint64_t c = read(s.by_status[code])) u.by_status.emplace_back(static_cast<int>(code), c);
    for (std::size_t o = 0; o < s.failures.size(); ++o) u.failures[o] = read(s.failures[o]);
    for (std::size_t b = 0; b < s.header_buckets.size(); ++b) u.header_buckets[b] = read(s.header_buckets[b]);
    u.header_sum_seconds = static_cast<double>(read(s.header_sum_us)) / 1e6;
    u.retries = read(s.retries);
  }
  // Called unlocked: a loop meeting a new upstream must not wait for the proxy's gauges.
  UpstreamGaugeSource source;
  {
    std::lock_guard lock(mu_);
    source = gauges_;
  }
  std::vector<UpstreamGauge> gauges;
  if (source) gauges = source();
  for (UpstreamGauge& g : gauges) {
    auto it = std::find_if(out.begin(), out.end(), [&g](const UpstreamSample& u) { return u.upstream == g.upstream; });
    if (it == out.end()) {
      it = out.insert(out.end(), UpstreamSample{});
      it->upstream = std::move(g.upstream);
    }
    // Two routes may share an upstream, each with its own pools and balancer: the idle connections
    // add up, and it is down if any route has it down.
    it->pool_idle = it->pool_idle.value_or(0) + g.pool_idle;
    it->up = it->up.value_or(true) && g.up;
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.upstream < b.upstream; });
  return out;
}

}  // namespace unbroken::observe
