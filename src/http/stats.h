#pragma once
// Per-loop counters. Each has a single writer (its loop thread), so an increment is a relaxed load
// and store, no locked instruction; the metrics endpoint sums every loop's copy when scraped.

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>

#include "http/types.h"

namespace unbroken::http {

class Counter {
 public:
  void add(std::uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void sub(std::uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

// accept(2) errors worth telling apart.
enum class AcceptError : std::uint8_t { kEmfile, kEnfile, kEnobufs, kEnomem, kOther };
inline constexpr std::size_t kAcceptErrorCount = 5;
constexpr std::string_view name(AcceptError e) {
  constexpr std::array<std::string_view, kAcceptErrorCount> n{"EMFILE", "ENFILE", "ENOBUFS", "ENOMEM", "other"};
  return n[static_cast<std::size_t>(e)];
}

// Request durations, in Prometheus histogram buckets (upper bounds in seconds).
inline constexpr std::array<double, 14> kDurationBuckets{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                         0.5,   1,     2.5,  5,     10,   30,  60};

// How a TLS handshake ended: unbroken_tls_handshakes_total{result}. A plain HTTP request on the
// TLS port is a protocol_error (its record's tls_error says "http request").
// A handshake cut by a graceful shutdown's drain timer is `shutdown`, not a timeout of its own.
enum class TlsResult : std::uint8_t { kOk, kResumed, kClientClosed, kClientReset, kTimeout, kProtocolError, kShutdown };
inline constexpr std::size_t kTlsResultCount = 7;
constexpr std::string_view name(TlsResult r) {
  constexpr std::array<std::string_view, kTlsResultCount> n{
      "ok", "resumed", "client_closed", "client_reset", "timeout", "protocol_error", "shutdown"};
  return n[static_cast<std::size_t>(r)];
}
// Handshake durations (unbroken_tls_handshake_seconds), upper bounds in seconds.
inline constexpr std::array<double, 12> kHandshakeBuckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                          0.05,   0.1,   0.25,   0.5,   1,    10};

struct RouteCounters {
  Counter requests;
  Counter departures;  // ended with any outcome but ok
};

struct LoopStats {
  // One slot per registered route plus the fallback and unmatched slots (Router::route_count() + 2).
  explicit LoopStats(std::size_t route_slots = 0)
      : route_slots(route_slots), routes(std::make_unique<RouteCounters[]>(route_slots)) {}
  void count_duration(double seconds) {
    std::size_t i = 0;
    while (i < kDurationBuckets.size() && seconds > kDurationBuckets[i]) ++i;
    duration_buckets[i].add();  // cumulated when rendered
    duration_sum_us.add(static_cast<std::uint64_t>(seconds * 1e6));
  }

  Counter connections_active;
  Counter connections_accepted;
  std::array<Counter, 600> requests_by_status;  // index = status code
  std::array<std::array<Counter, kPhaseCount>, kOutcomeCount> disconnects;
  std::array<Counter, kTimerCount> timeouts;
  std::array<Counter, kAcceptErrorCount> accept_errors;
  Counter accept_pauses;  // times accepting paused at max_connections (one per episode, see Server)
  Counter handler_cancelled;
  // Added to by whichever thread drops a departed exchange (a worker, for blocking handlers).
  std::atomic<std::uint64_t> wasted_us{0};
  Counter response_bytes;
  Counter response_bytes_acked;
  std::array<Counter, kDurationBuckets.size() + 1> duration_buckets;  // last: +Inf
  Counter duration_sum_us;
  // Every TLS handshake's end, and the durations of those that finished.
  void count_handshake(TlsResult result, double seconds) {
    tls_handshakes[static_cast<std::size_t>(result)].add();
    if (result != TlsResult::kOk && result != TlsResult::kResumed) return;
    std::size_t i = 0;
    while (i < kHandshakeBuckets.size() && seconds > kHandshakeBuckets[i]) ++i;
    handshake_buckets[i].add();  // cumulated when rendered
    handshake_sum_us.add(static_cast<std::uint64_t>(seconds * 1e6));
  }
  std::array<Counter, kTlsResultCount> tls_handshakes;
  std::array<Counter, kHandshakeBuckets.size() + 1> handshake_buckets;  // last: +Inf
  Counter handshake_sum_us;
  std::size_t route_slots;
  std::unique_ptr<RouteCounters[]> routes;
};

}  // namespace unbroken::http
