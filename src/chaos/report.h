#pragma once
// What a chaos run saw, and how it is told: per kind, what the server did and how fast; for good
// clients, throughput, latency and errors; and the verdict.

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "chaos/kind.h"

namespace unbroken::chaos {

// A bounded sample (reservoir): percentiles of millions of values in fixed memory.
class Sample {
 public:
  static constexpr std::size_t kCapacity = 1 << 18;
  void add(double v, std::mt19937_64& rng);
  [[nodiscard]] std::uint64_t count() const { return seen_; }
  [[nodiscard]] double max() const { return max_; }
  // q in [0, 1]; 0 when empty.
  [[nodiscard]] double percentile(double q) const;

 private:
  std::vector<double> values_;
  std::uint64_t seen_ = 0;
  double max_ = 0;
};

struct KindStats {
  std::uint64_t clients = 0;
  std::uint64_t attempts = 0;
  std::array<std::uint64_t, kReactionCount> reactions{};
  std::map<int, std::uint64_t> statuses;  // of answered attempts
  // Handshake kinds: the TLS alerts the server sent in the clear before it hung up, by name.
  std::map<std::string, std::uint64_t> alerts;
  std::map<std::string, std::uint64_t> tls_errors;  // the client's reasons of its tls_error reactions
  Sample reaction_ms;                               // from connection to the server's reaction
};

struct GoodStats {
  std::uint64_t requests = 0;  // answered completely, with a good status
  std::uint64_t body_bytes = 0;
  Sample latency_ms;
  std::map<std::string, std::uint64_t> errors;  // by kind: timeout, reset, closed, status_503, ...
  double longest_wait_ms = 0;                   // longest stretch with a good request waiting and none answered
  [[nodiscard]] std::uint64_t error_count() const;
};

struct Report {
  std::string target;
  double seconds = 0;
  std::size_t connections = 0;
  std::uint64_t seed = 0;
  std::array<KindStats, kKindCount> kinds;
  GoodStats good;
  bool passed = false;
  std::string verdict;
};

// Decides the verdict: good clients must have been answered, within the error budget, and never
// left waiting longer than good_timeout.
void judge(Report& r, std::uint64_t max_good_errors, std::chrono::milliseconds good_timeout);
std::string render_text(const Report& r);
std::string render_json(const Report& r);

}  // namespace unbroken::chaos
