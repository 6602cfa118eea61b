#include "observe/noise_control.h"

#include <spdlog/spdlog.h>

#include "observe/access_log.h"

namespace unbroken::observe {

NoiseControl::NoiseControl(std::chrono::milliseconds interval) : interval_(interval) {
  thread_ = std::thread([this] { run(); });
}

NoiseControl::~NoiseControl() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
  summarize();
}

void NoiseControl::observe(const http::RequestRecord& rec) {
  if (rec.outcome == http::Outcome::kOk) return;
  std::string route = rec.route.empty() ? std::string("-") : std::string(rec.route);
  bool first;
  {
    std::lock_guard lock(mu_);
    auto [it, inserted] = counts_.try_emplace({rec.outcome, route}, 0);
    first = inserted;
    if (!first) ++it->second;
  }
  if (first) {
    fmt::memory_buffer line;
    append_text(line, rec);
    spdlog::info("first {} on {}: {}", http::name(rec.outcome), route,
                 std::string_view(line.data(), line.size() - 1));  // without its newline
  }
}

void NoiseControl::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (cv_.wait_for(lock, interval_, [this] { return stopping_; })) break;
    lock.unlock();
    summarize();
    lock.lock();
  }
}

void NoiseControl::summarize() {
  std::map<std::pair<http::Outcome, std::string>, std::uint64_t> counts;
  {
    std::lock_guard lock(mu_);
    for (auto& [key, n] : counts_) {
      if (n > 0) counts.emplace(key, n);
      n = 0;  // kinds stay known, so a later event is counted, not logged in full again
    }
  }
  auto secs = std::chrono::duration<double>(interval_).count();
  for (const auto& [key, n] : counts)
    spdlog::info("{} more {} on {} in the last {:g}s", n, http::name(key.first), key.second, secs);
}

}  // namespace unbroken::observe
