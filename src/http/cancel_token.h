#pragma once
// Cancellation as handlers see it. The flag may be read from any thread (worker-pool handlers poll
// it); callbacks are registered and run on the connection's loop thread.

#include <atomic>
#include <functional>
#include <vector>

namespace unbroken::http {

class CancelToken {
 public:
  [[nodiscard]] bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }
  // Loop thread. Runs cb once when the request is cancelled; at once if it already is.
  void on_cancel(std::function<void()> cb) {
    if (cancelled()) {
      cb();
      return;
    }
    callbacks_.push_back(std::move(cb));
  }
  // Loop thread: forgets callbacks that never ran (the request ended without cancellation).
  void clear() { callbacks_.clear(); }
  [[nodiscard]] bool has_callbacks() const { return !callbacks_.empty(); }
  // Loop thread. Idempotent.
  void cancel() {
    if (cancelled_.exchange(true, std::memory_order_acq_rel)) return;
    auto cbs = std::move(callbacks_);
    callbacks_.clear();
    for (auto& cb : cbs) cb();
  }

 private:
  std::atomic<bool> cancelled_{false};
  std::vector<std::function<void()>> callbacks_;
};

}  // namespace unbroken::http
