#include "observe/metrics.h"

#include <fmt/format.h>

#include <algorithm>

namespace unbroken::observe {
namespace {

using http::LoopStats;

double wasted_seconds(const MetricsSources& src) {
  std::uint64_t us = 0;
  for (const LoopStats* s : src.loops) us += s->wasted_us.load(std::memory_order_relaxed);
  return static_cast<double>(us) / 1e6;
}

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

std::string render_metrics(const MetricsSources& src) {
  std::string out;
  auto it = std::back_inserter(out);

  header(out, "unbroken_connections_active", "gauge", "Open client connections.");
  fmt::format_to(it, "unbroken_connections_active {}\n",
                 sum(src, [](const LoopStats& s) -> const http::Counter& { return s.connections_active; }));
  header(out, "unbroken_connections_accepted_total", "counter", "Accepted client connections.");
  fmt::format_to(it, "unbroken_connections_accepted_total {}\n",
                 sum(src, [](const LoopStats& s) -> const http::Counter& { return s.connections_accepted; }));

  header(out, "unbroken_requests_total", "counter", "Requests by status (499: the client left first).");
  for (std::size_t code = 100; code < 600; ++code) {
    auto n = sum(src, [code](const LoopStats& s) -> const http::Counter& { return s.requests_by_status[code]; });
    if (n > 0) fmt::format_to(it, "unbroken_requests_total{{status=\"{}\"}} {}\n", code, n);
  }

  header(out, "unbroken_request_duration_seconds", "histogram",
         "Request durations, first byte to end, departures included.");
  std::uint64_t cumulative = 0;
  for (std::size_t b = 0; b <= http::kDurationBuckets.size(); ++b) {
    cumulative += sum(src, [b](const LoopStats& s) -> const http::Counter& { return s.duration_buckets[b]; });
    if (b < http::kDurationBuckets.size()) {
      fmt::format_to(it, "unbroken_request_duration_seconds_bucket{{le=\"{}\"}} {}\n", http::kDurationBuckets[b],
                     cumulative);
    } else {
      fmt::format_to(it, "unbroken_request_duration_seconds_bucket{{le=\"+Inf\"}} {}\n", cumulative);
    }
  }
  fmt::format_to(
      it, "unbroken_request_duration_seconds_sum {}\n",
      static_cast<double>(sum(src, [](const LoopStats& s) -> const http::Counter& { return s.duration_sum_us; })) /
          1e6);
  fmt::format_to(it, "unbroken_request_duration_seconds_count {}\n", cumulative);

  header(out, "unbroken_disconnects_total", "counter",
         "Requests and connections that ended without a complete response.");
  for (std::size_t o = 1; o < http::kOutcomeCount; ++o) {
    for (std::size_t p = 0; p < http::kPhaseCount; ++p) {
      auto n = sum(src, [o, p](const LoopStats& s) -> const http::Counter& { return s.disconnects[o][p]; });
      fmt::format_to(it, "unbroken_disconnects_total{{outcome=\"{}\",phase=\"{}\"}} {}\n",
                     http::name(static_cast<http::Outcome>(o)), http::name(static_cast<http::Phase>(p)), n);
    }
  }

  header(out, "unbroken_timeouts_total", "counter", "Timer expiries by timer.");
  for (std::size_t t = 0; t < http::kClientTimerCount; ++t) {
    auto n = sum(src, [t](const LoopStats& s) -> const http::Counter& { return s.timeouts[t]; });
    fmt::format_to(it, "unbroken_timeouts_total{{timer=\"{}\"}} {}\n", http::name(static_cast<http::TimerKind>(t)), n);
  }

  header(out, "unbroken_handler_cancelled_total", "counter",
         "Handlers cancelled because the client left or a timer fired.");
  fmt::format_to(it, "unbroken_handler_cancelled_total {}\n",
                 sum(src, [](const LoopStats& s) -> const http::Counter& { return s.handler_cancelled; }));

  header(out, "unbroken_wasted_seconds_total", "counter", "Handler time spent after the client had gone.");
  fmt::format_to(it, "unbroken_wasted_seconds_total {}\n", wasted_seconds(src));

  header(out, "unbroken_response_bytes_total", "counter", "Response bytes written to sockets.");
  fmt::format_to(it, "unbroken_response_bytes_total {}\n",
                 sum(src, [](const LoopStats& s) -> const http::Counter& { return s.response_bytes; }));
  header(out, "unbroken_response_bytes_acked_total", "counter", "Response bytes the kernel saw acknowledged.");
  fmt::format_to(it, "unbroken_response_bytes_acked_total {}\n",
                 sum(src, [](const LoopStats& s) -> const http::Counter& { return s.response_bytes_acked; }));

  header(out, "unbroken_accept_errors_total", "counter", "accept(2) failures by errno.");
  for (std::size_t e = 0; e < http::kAcceptErrorCount; ++e) {
    auto n = sum(src, [e](const LoopStats& s) -> const http::Counter& { return s.accept_errors[e]; });
    fmt::format_to(it, "unbroken_accept_errors_total{{errno=\"{}\"}} {}\n",
                   http::name(static_cast<http::AcceptError>(e)), n);
  }

  header(out, "unbroken_log_records_dropped_total", "counter",
         "Access log records dropped because the writer fell behind.");
  fmt::format_to(it, "unbroken_log_records_dropped_total {}\n", src.log_records_dropped);
  return out;
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
  for (std::size_t i = 0; i < rows.size(); ++i)
    fmt::format_to(it, "{}{{\"route\":\"{}\",\"departures\":{},\"requests\":{}}}", i ? "," : "",
                   src.route_names[rows[i].slot], rows[i].departures, rows[i].requests);
  out += "]}";
  return out;
}

}  // namespace unbroken::observe
