#include "app/systemd_notify.h"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <utility>

namespace unbroken::app {

SystemdNotifier::SystemdNotifier() : enabled_(std::getenv("NOTIFY_SOCKET") != nullptr) {}

SystemdNotifier::~SystemdNotifier() {
  stop_watchdog();
}

void SystemdNotifier::ready(std::string status) {
  status_ = std::move(status);
  reloaded();
}

void SystemdNotifier::reloaded() {
  if (!enabled_) return;
  sd_notifyf(0, "READY=1\nSTATUS=%s", status_.c_str());
}

void SystemdNotifier::reloading() {
  if (!enabled_) return;
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  auto usec = static_cast<unsigned long long>(now.tv_sec) * 1'000'000ull + now.tv_nsec / 1000;
  sd_notifyf(0, "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=%llu", usec);
}

void SystemdNotifier::stopping() {
  stop_watchdog();
  if (!enabled_) return;
  sd_notify(0, "STOPPING=1\nSTATUS=draining");
}

void SystemdNotifier::start_watchdog(std::vector<net::EventLoop*> loops) {
  std::uint64_t usec = 0;
  if (!enabled_ || watchdog_.joinable() || sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return;
  spdlog::info("systemd watchdog: pinging every {} ms while all {} event loops answer", usec / 2000, loops.size());
  watchdog_ = std::thread([this, loops = std::move(loops), usec] { watch(loops, std::chrono::microseconds(usec)); });
}

void SystemdNotifier::stop_watchdog() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
}

void SystemdNotifier::watch(std::vector<net::EventLoop*> loops, std::chrono::microseconds interval) {
  // Shared with the probes: a probe still queued on a loop may run after this thread is gone.
  auto answered = std::make_shared<std::vector<std::atomic<std::uint64_t>>>(loops.size());
  std::vector<std::uint64_t> posted(loops.size(), 0);
  bool withheld = false;  // a ping is being withheld: reported once per episode, not every tick
  std::unique_lock lock(mu_);
  for (std::uint64_t round = 1;; ++round) {
    // A loop that has not answered its last probe gets no new one: a stuck loop's queue stays short.
    for (std::size_t i = 0; i < loops.size(); ++i) {
      if ((*answered)[i].load(std::memory_order_acquire) != posted[i]) continue;
      posted[i] = round;
      loops[i]->post([answered, i, round] { (*answered)[i].store(round, std::memory_order_release); });
    }
    if (wake_.wait_for(lock, interval / 2, [this] { return stop_; })) return;
    std::size_t stuck = loops.size();
    for (std::size_t i = 0; i < loops.size() && stuck == loops.size(); ++i)
      if ((*answered)[i].load(std::memory_order_acquire) != posted[i]) stuck = i;
    if (stuck == loops.size()) {
      sd_notify(0, "WATCHDOG=1");
      if (std::exchange(withheld, false)) spdlog::info("systemd watchdog: every event loop answers again; pinging");
    } else if (!withheld) {
      withheld = true;
      spdlog::warn("systemd watchdog: event loop {} has not run a task posted {} ms ago; not pinging", stuck,
                   interval.count() / 2000);
    }
  }
}

}  // namespace unbroken::app
