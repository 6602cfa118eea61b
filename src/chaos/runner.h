#pragma once
// What the clients of one run share: the loop, the configuration, the statistics, the rate limit.

#include <memory>
#include <random>
#include <vector>

#include "chaos/chaos_config.h"
#include "chaos/client.h"
#include "chaos/report.h"
#include "net/event_loop.h"

namespace unbroken::chaos {

class Runner {
 public:
  Runner(const ChaosConfig& cfg, net::EventLoop& loop);
  ~Runner();

  // Runs until the duration has passed; fills report().
  void run(bool progress);
  [[nodiscard]] Report& report() { return report_; }

  // For the clients.
  [[nodiscard]] net::EventLoop& loop() { return loop_; }
  [[nodiscard]] const ChaosConfig& config() const { return cfg_; }
  [[nodiscard]] bool running() const { return running_; }
  KindStats& stats(Kind k) { return report_.kinds[static_cast<std::size_t>(k)]; }
  GoodStats& good() { return report_.good; }
  std::mt19937_64& rng() { return rng_; }
  // When a new connection may start under --rate (now, when there is no limit).
  net::TimePoint reserve_start();
  // Good clients: a request went out / was answered (for the longest wait).
  void good_sent();
  void good_answered();
  void good_abandoned();

 private:
  void stop();
  void print_progress(bool last);

  const ChaosConfig& cfg_;
  net::EventLoop& loop_;
  Report report_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::mt19937_64 rng_;
  bool running_ = false;
  net::TimePoint started_{};
  net::TimePoint next_start_{};
  net::TimePoint last_answer_{};
  std::size_t good_outstanding_ = 0;
};

}  // namespace unbroken::chaos
