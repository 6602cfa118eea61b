#include "observe/metrics.h"

#include <fmt/format.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <limits>
#include <span>
#include <sstream>

#include "base/build_info.h"
#include "base/text.h"

namespace unbroken::observe {
namespace {

using http::LoopStats;

double wasted_seconds(const MetricsSources& src) {
  std::uint64_t us = 0;
  for (const LoopStats* s : src.loops) us += s->wasted_us.load(std::memory_order_relaxed);
  return static_cast<double>(us) / 1e6;
}

prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType type) {
  return prometheus::MetricFamily{std::move(name), std::move(help), type, {}};
}

void add(prometheus::MetricFamily& f, double value, std::vector<prometheus::ClientMetric::Label> labels = {}) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  if (f.type == prometheus::MetricType::Gauge) {
    m.gauge.value = value;
  } else {
    m.counter.value = value;
  }
  f.metric.push_back(std::move(m));
}

template <typename F>
double total(const MetricsSources& src, F get) {
  return static_cast<double>(sum(src, get));
}

// A histogram from per-bucket counts (one more than the bounds: the last is +Inf), cumulated as the
// format wants them.
prometheus::ClientMetric histogram(std::span<const std::uint64_t> counts, std::span<const double> bounds, double sum,
                                   std::vector<prometheus::ClientMetric::Label> labels = {}) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  for (std::size_t b = 0; b < counts.size(); ++b) {
    m.histogram.sample_count += counts[b];
    double bound = b < bounds.size() ? bounds[b] : std::numeric_limits<double>::infinity();
    m.histogram.bucket.push_back({m.histogram.sample_count, bound});
  }
  m.histogram.sample_sum = sum;
  return m;
}

// A per-loop histogram (a count per bucket, the last +Inf, and a sum in microseconds) summed over
// every loop.
template <std::size_t N>
prometheus::ClientMetric loop_histogram(const MetricsSources& src, std::array<http::Counter, N> LoopStats::*buckets,
                                        std::span<const double> bounds, http::Counter LoopStats::*sum_us) {
  std::array<std::uint64_t, N> counts{};
  for (std::size_t b = 0; b < N; ++b)
    counts[b] = sum(src, [&](const LoopStats& s) -> const http::Counter& { return (s.*buckets)[b]; });
  return histogram(counts, bounds,
                   total(src, [&](const LoopStats& s) -> const http::Counter& { return s.*sum_us; }) / 1e6);
}

// The unbroken_upstream_* families: counters for every upstream seen, the gauges for those the
// proxy's gauge source named. A family without a sample is left out (no proxy: none of them).
void add_upstream_families(std::vector<prometheus::MetricFamily>& fs, const std::vector<UpstreamSample>& ups) {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> out;
  out.push_back(family("unbroken_upstream_requests_total",
                       "Proxied requests whose upstream answered a head, by the upstream's status.",
                       MetricType::Counter));
  for (const UpstreamSample& u : ups)
    for (const auto& [status, n] : u.by_status)
      add(out.back(), static_cast<double>(n), {{"upstream", u.upstream}, {"status", std::to_string(status)}});
  out.push_back(family("unbroken_upstream_failures_total",
                       "Proxied requests that ended in an upstream failure, by outcome.", MetricType::Counter));
  for (const UpstreamSample& u : ups)
    for (std::size_t o = kFirstUpstreamOutcome; o < u.failures.size(); ++o)
      add(out.back(), static_cast<double>(u.failures[o]),
          {{"upstream", u.upstream}, {"outcome", std::string(http::name(static_cast<http::Outcome>(o)))}});
  out.push_back(family("unbroken_upstream_header_seconds",
                       "From the request to the upstream's response head, for requests that got one.",
                       MetricType::Histogram));
  for (const UpstreamSample& u : ups)
    out.back().metric.push_back(
        histogram(u.header_buckets, http::kDurationBuckets, u.header_sum_seconds, {{"upstream", u.upstream}}));
  out.push_back(family("unbroken_upstream_retries_total",
                       "Attempts after the first (a stale pooled connection, a refused connect), by the upstream "
                       "the request ended on.",
                       MetricType::Counter));
  for (const UpstreamSample& u : ups) add(out.back(), static_cast<double>(u.retries), {{"upstream", u.upstream}});
  out.push_back(family("unbroken_upstream_pool_idle", "Idle pooled connections to the upstream, over every loop.",
                       MetricType::Gauge));
  for (const UpstreamSample& u : ups)
    if (u.pool_idle) add(out.back(), static_cast<double>(*u.pool_idle), {{"upstream", u.upstream}});
  out.push_back(family("unbroken_upstream_up",
                       "1 while the balancer sends requests to the upstream, 0 while it is down.", MetricType::Gauge));
  for (const UpstreamSample& u : ups)
    if (u.up) add(out.back(), *u.up ? 1 : 0, {{"upstream", u.upstream}});
  for (auto& f : out)
    if (!f.metric.empty()) fs.push_back(std::move(f));
}

}  // namespace

// The exposition format is prometheus-cpp's TextSerializer; we only gather the per-loop counters.
std::string render_metrics(const MetricsSources& src) {
  using prometheus::MetricType;
  using C = const http::Counter&;
  std::vector<prometheus::MetricFamily> fs;

  // The info-metric convention (node_exporter's *_build_info): always 1, the facts in the labels.
  fs.push_back(family("unbroken_build_info", "The running binary: its version and the git commit it was built from.",
                      MetricType::Gauge));
  add(fs.back(), 1, {{"version", std::string(build::version())}, {"commit", std::string(build::commit())}});
  fs.push_back(family("unbroken_connections_active", "Open client connections.", MetricType::Gauge));
  add(fs.back(), total(src, [](const LoopStats& s) -> C { return s.connections_active; }));
  fs.push_back(family("unbroken_connections_accepted_total", "Accepted client connections.", MetricType::Counter));
  add(fs.back(), total(src, [](const LoopStats& s) -> C { return s.connections_accepted; }));

  fs.push_back(
      family("unbroken_requests_total", "Requests by status (499: the client left first).", MetricType::Counter));
  for (std::size_t code = 100; code < 600; ++code) {
    double n = total(src, [code](const LoopStats& s) -> C { return s.requests_by_status[code]; });
    if (n > 0) add(fs.back(), n, {{"status", std::to_string(code)}});
  }

  fs.push_back(family("unbroken_request_duration_seconds", "Request durations, first byte to end, departures included.",
                      MetricType::Histogram));
  fs.back().metric.push_back(
      loop_histogram(src, &LoopStats::duration_buckets, http::kDurationBuckets, &LoopStats::duration_sum_us));

  fs.push_back(family("unbroken_disconnects_total", "Requests and connections that ended without a complete response.",
                      MetricType::Counter));
  for (std::size_t o = 1; o < http::kOutcomeCount; ++o)
    for (std::size_t p = 0; p < http::kPhaseCount; ++p)
      add(fs.back(), total(src, [o, p](const LoopStats& s) -> C { return s.disconnects[o][p]; }),
          {{"outcome", std::string(http::name(static_cast<http::Outcome>(o)))},
           {"phase", std::string(http::name(static_cast<http::Phase>(p)))}});

  fs.push_back(family("unbroken_timeouts_total", "Timer expiries by timer.", MetricType::Counter));
  for (std::size_t t = 0; t < http::kClientTimerCount; ++t)
    add(fs.back(), total(src, [t](const LoopStats& s) -> C { return s.timeouts[t]; }),
        {{"timer", std::string(http::name(static_cast<http::TimerKind>(t)))}});

  // Always exported, zeros before any TLS connection (or without a TLS listener): a dashboard or an
  // alert can rely on the series being there.
  fs.push_back(family("unbroken_tls_handshakes_total",
                      "TLS handshakes by how they ended: ok, resumed, or how the client failed it.",
                      MetricType::Counter));
  for (std::size_t k = 0; k < http::kTlsResultCount; ++k)
    add(fs.back(), total(src, [k](const LoopStats& s) -> C { return s.tls_handshakes[k]; }),
        {{"result", std::string(http::name(static_cast<http::TlsResult>(k)))}});
  fs.push_back(family("unbroken_tls_handshake_seconds",
                      "From accept to the end of each TLS handshake that succeeded (ok or resumed).",
                      MetricType::Histogram));
  fs.back().metric.push_back(
      loop_histogram(src, &LoopStats::handshake_buckets, http::kHandshakeBuckets, &LoopStats::handshake_sum_us));

  fs.push_back(family("unbroken_handler_cancelled_total",
                      "Handlers cancelled because the client left or a timer fired.", MetricType::Counter));
  add(fs.back(), total(src, [](const LoopStats& s) -> C { return s.handler_cancelled; }));
  fs.push_back(
      family("unbroken_wasted_seconds_total", "Handler time spent after the client had gone.", MetricType::Counter));
  add(fs.back(), wasted_seconds(src));
  fs.push_back(family("unbroken_response_bytes_total", "Response bytes written to sockets.", MetricType::Counter));
  add(fs.back(), total(src, [](const LoopStats& s) -> C { return s.response_bytes; }));
  fs.push_back(family("unbroken_response_bytes_acked_total", "Response bytes the kernel saw acknowledged.",
                      MetricType::Counter));
  add(fs.back(), total(src, [](const LoopStats& s) -> C { return s.response_bytes_acked; }));

  fs.push_back(family("unbroken_accept_pauses_total",
                      "Times accepting paused because --max-connections connections were open.", MetricType::Counter));
  add(fs.back(), total(src, [](const LoopStats& s) -> C { return s.accept_pauses; }));
  fs.push_back(family("unbroken_accept_errors_total", "accept(2) failures by errno.", MetricType::Counter));
  for (std::size_t e = 0; e < http::kAcceptErrorCount; ++e)
    add(fs.back(), total(src, [e](const LoopStats& s) -> C { return s.accept_errors[e]; }),
        {{"errno", std::string(http::name(static_cast<http::AcceptError>(e)))}});

  fs.push_back(family("unbroken_log_records_dropped_total",
                      "Access log records dropped because the writer fell behind.", MetricType::Counter));
  add(fs.back(), static_cast<double>(src.log_records_dropped));

  if (src.sessions) {
    const SessionMetrics& sm = *src.sessions;
    fs.push_back(family("unbroken_sessions_active", "Sessions not expired, as of the last sweep.", MetricType::Gauge));
    add(fs.back(), static_cast<double>(sm.active));
    fs.push_back(family("unbroken_sessions_created_total", "Sessions created and saved.", MetricType::Counter));
    add(fs.back(), static_cast<double>(sm.created));
    fs.push_back(
        family("unbroken_sessions_expired_total", "Expired sessions removed by the sweeper.", MetricType::Counter));
    add(fs.back(), static_cast<double>(sm.expired));
    fs.push_back(family("unbroken_session_sweep_seconds", "Duration of each full sweep.", MetricType::Histogram));
    fs.back().metric.push_back(histogram(sm.sweep_counts, sm.sweep_bounds, sm.sweep_sum_seconds));
    fs.push_back(
        family("unbroken_session_store_errors_total", "Session store calls that failed.", MetricType::Counter));
    add(fs.back(), static_cast<double>(sm.store_errors), {{"store", sm.store}});
  }

  if (src.upstreams) add_upstream_families(fs, src.upstreams->snapshot());

  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, fs);
  return out.str();
}

namespace {

// {"a": 1, "b": 2} from names and a counter getter, in index order.
template <typename Name, typename Get>
void json_counts(std::string& out, std::string_view key, std::size_t n, Name name, Get get) {
  fmt::format_to(std::back_inserter(out), ",\"{}\":{{", key);
  for (std::size_t i = 0; i < n; ++i)
    fmt::format_to(std::back_inserter(out), "{}\"{}\":{}", i ? "," : "", name(i), get(i));
  out += '}';
}

// ,"upstreams":[{"upstream":..., "requests", "by_status", "failures" (the upstream_* outcomes),
// "retries", "header_p50_ms"/"header_p99_ms" since start (null without a head yet), "up" and
// "pool_idle" (null when the proxy gave no gauges)}]; [] without a proxy.
void append_upstreams_json(std::string& out, const std::vector<UpstreamSample>& ups) {
  auto it = std::back_inserter(out);
  auto ms_or_null = [](std::optional<double> s) { return s ? fmt::format("{:.3f}", *s * 1000) : std::string("null"); };
  out += ",\"upstreams\":[";
  for (std::size_t i = 0; i < ups.size(); ++i) {
    const UpstreamSample& u = ups[i];
    // Upstream names are configured by the operator, but escaped like route names all the same.
    out += i ? ",{\"upstream\":" : "{\"upstream\":";
    append_json_string(out, u.upstream);
    fmt::format_to(it, ",\"requests\":{},\"by_status\":{{", u.requests());
    for (std::size_t k = 0; k < u.by_status.size(); ++k)
      fmt::format_to(it, "{}\"{}\":{}", k ? "," : "", u.by_status[k].first, u.by_status[k].second);
    out += "}";
    json_counts(
        out, "failures", http::kOutcomeCount - kFirstUpstreamOutcome,
        [](std::size_t k) { return http::name(static_cast<http::Outcome>(k + kFirstUpstreamOutcome)); },
        [&u](std::size_t k) { return u.failures[k + kFirstUpstreamOutcome]; });
    fmt::format_to(it, ",\"retries\":{},\"header_count\":{},\"header_p50_ms\":{},\"header_p99_ms\":{}", u.retries,
                   u.header_count(), ms_or_null(u.header_quantile(0.5)), ms_or_null(u.header_quantile(0.99)));
    fmt::format_to(it, ",\"up\":{},\"pool_idle\":{}}}", u.up ? (*u.up ? "true" : "false") : "null",
                   u.pool_idle ? std::to_string(*u.pool_idle) : std::string("null"));
  }
  out += ']';
}

}  // namespace

std::string render_dashboard_data(const MetricsSources& src) {
  std::string out;
  auto it = std::back_inserter(out);
  auto total = [&src](auto get) { return sum(src, get); };
  std::uint64_t requests = 0;
  std::string by_status;
  for (std::size_t code = 100; code < 600; ++code) {
    auto n = total([code](const LoopStats& s) -> const http::Counter& { return s.requests_by_status[code]; });
    requests += n;
    if (n > 0) fmt::format_to(std::back_inserter(by_status), "{}\"{}\":{}", by_status.empty() ? "" : ",", code, n);
  }
  fmt::format_to(it, "{{\"uptime_s\":{:.1f},\"requests_total\":{},\"by_status\":{{{}}}", src.uptime_s, requests,
                 by_status);
  json_counts(
      out, "departures_by_outcome", http::kOutcomeCount - 1,
      [](std::size_t i) { return http::name(static_cast<http::Outcome>(i + 1)); },
      [&](std::size_t i) {
        std::uint64_t n = 0;
        for (std::size_t p = 0; p < http::kPhaseCount; ++p)
          n += total([i, p](const LoopStats& s) -> const http::Counter& { return s.disconnects[i + 1][p]; });
        return n;
      });
  json_counts(
      out, "departures_by_phase", http::kPhaseCount,
      [](std::size_t p) { return http::name(static_cast<http::Phase>(p)); },
      [&](std::size_t p) {
        std::uint64_t n = 0;
        for (std::size_t o = 1; o < http::kOutcomeCount; ++o)
          n += total([o, p](const LoopStats& s) -> const http::Counter& { return s.disconnects[o][p]; });
        return n;
      });
  json_counts(
      out, "timeouts_by_timer", http::kClientTimerCount,
      [](std::size_t t) { return http::name(static_cast<http::TimerKind>(t)); },
      [&](std::size_t t) { return total([t](const LoopStats& s) -> const http::Counter& { return s.timeouts[t]; }); });
  json_counts(
      out, "tls_handshakes", http::kTlsResultCount,
      [](std::size_t k) { return http::name(static_cast<http::TlsResult>(k)); },
      [&](std::size_t k) {
        return total([k](const LoopStats& s) -> const http::Counter& { return s.tls_handshakes[k]; });
      });
  fmt::format_to(it, ",\"handler_cancelled\":{},\"wasted_seconds\":{:.3f},\"bytes_out\":{},\"bytes_acked\":{}",
                 total([](const LoopStats& s) -> const http::Counter& { return s.handler_cancelled; }),
                 wasted_seconds(src),
                 total([](const LoopStats& s) -> const http::Counter& { return s.response_bytes; }),
                 total([](const LoopStats& s) -> const http::Counter& { return s.response_bytes_acked; }));

  struct Row {
    std::size_t slot;
    std::uint64_t departures, requests;
  };
  std::vector<Row> rows;
  for (std::size_t slot = 0; slot < src.route_names.size(); ++slot) {
    Row r{slot, 0, 0};
    for (const LoopStats* s : src.loops) {
      if (slot >= s->route_slots) continue;
      r.departures += s->routes[slot].departures.get();
      r.requests += s->routes[slot].requests.get();
    }
    if (r.requests > 0) rows.push_back(r);
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.departures > b.departures; });
  if (rows.size() > 10) rows.resize(10);
  out += ",\"top_routes\":[";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    // A route's name holds its pattern, which an application chooses: quotes and backslashes included.
    out += i ? ",{\"route\":" : "{\"route\":";
    append_json_string(out, src.route_names[rows[i].slot]);
    fmt::format_to(it, ",\"departures\":{},\"requests\":{}}}", rows[i].departures, rows[i].requests);
  }
  out += ']';
  append_upstreams_json(out, src.upstreams ? src.upstreams->snapshot() : std::vector<UpstreamSample>{});
  out += '}';
  return out;
}

}  // namespace unbroken::observe
