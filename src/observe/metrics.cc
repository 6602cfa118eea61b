#include "observe/metrics.h"

#include <fmt/format.h>

namespace unbroken::observe {
namespace {

using http::LoopStats;

template <typename F>
std::uint64_t sum(const MetricsSources& src, F get) {
  std::uint64_t total = 0;
  for (const LoopStats* s : src.loops) total += get(*s).get();
  return total;
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
  for (std::size_t t = 0; t < http::kTimerCount; ++t) {
    auto n = sum(src, [t](const LoopStats& s) -> const http::Counter& { return s.timeouts[t]; });
    fmt::format_to(it, "unbroken_timeouts_total{{timer=\"{}\"}} {}\n", http::name(static_cast<http::TimerKind>(t)), n);
  }

  header(out, "unbroken_handler_cancelled_total", "counter",
         "Handlers cancelled because the client left or a timer fired.");
  fmt::format_to(it, "unbroken_handler_cancelled_total {}\n",
                 sum(src, [](const LoopStats& s) -> const http::Counter& { return s.handler_cancelled; }));

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

}  // namespace unbroken::observe
