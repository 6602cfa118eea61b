#pragma once
// Per-loop counters. Each has a single writer (its loop thread), so an increment is a relaxed load
// and store, no locked instruction; the metrics endpoint sums every loop's copy when scraped.

#include <array>
#include <atomic>
#include <cstdint>

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

struct LoopStats {
  Counter connections_active;
  Counter connections_accepted;
  std::array<Counter, 600> requests_by_status;  // index = status code
  std::array<std::array<Counter, kPhaseCount>, kOutcomeCount> disconnects;
  std::array<Counter, kTimerCount> timeouts;
  std::array<Counter, kAcceptErrorCount> accept_errors;
  Counter handler_cancelled;
  Counter wasted_us;
  Counter response_bytes;
  Counter response_bytes_acked;
};

}  // namespace unbroken::http
