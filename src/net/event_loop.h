#pragma once
// One event loop per thread, shared nothing (muduo, trantor). Other threads reach a loop only
// through post(), which queues a task and wakes the loop with an eventfd.

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "net/poller.h"
#include "net/timer_wheel.h"

namespace unbroken::net {

// Whatever owns a registered descriptor.
class IoHandler {
 public:
  virtual ~IoHandler() = default;
  virtual void on_events(std::uint32_t events) = 0;
};

class EventLoop {
 public:
  static Result<std::unique_ptr<EventLoop>> create();
  ~EventLoop();

  // Runs until stop(), and may be run again after. Must be called from the thread that owns the loop.
  void run();
  // Thread-safe: makes run() return after the current turn.
  void stop();
  // Thread-safe: runs task on the loop thread in a later turn.
  void post(std::function<void()> task);
  // Loop thread: runs task at the end of the current turn, after every event was handled. Used to
  // free connections that closed during the turn (libuv uv_close, Envoy deferred delete).
  void defer(std::function<void()> task) { deferred_.push_back(std::move(task)); }

  [[nodiscard]] Result<void> add(int fd, std::uint32_t interest, IoHandler* h) { return poller_.add(fd, interest, h); }
  [[nodiscard]] Result<void> modify(int fd, std::uint32_t interest, IoHandler* h) {
    return poller_.modify(fd, interest, h);
  }
  void remove(int fd) { poller_.remove(fd); }

  // Loop thread. A general scheduler for code that has no timer of its own (diagnostic routes, the
  // session sweeper): fn runs once after `delay`, or every `period` until cancelled. Cancelling an
  // id that already ran or was cancelled is a no-op.
  using TimerId = std::uint64_t;
  TimerId run_after(std::chrono::milliseconds delay, std::function<void()> fn);
  TimerId run_every(std::chrono::milliseconds period, std::function<void()> fn);
  void cancel_timer(TimerId id);

  // Loop thread: sets the turn's time to `now` and fires the timers due by then. run() calls it every
  // turn; tests call it to move time forward without waiting.
  void run_timers(TimePoint now);

  // Loop thread: read buffers shared by this loop's connections, so that idle connections hold none.
  std::vector<char> take_buffer();
  void give_buffer(std::vector<char> buffer);

  // Loop thread: this loop's object under `key`, made by make() on first use and destroyed with the
  // loop, before its poller and timers: state kept per loop rather than per connection (the
  // reverse proxy's pools of idle upstream connections, which hold registered descriptors).
  template <class T, class Make>
  T& local(const void* key, Make&& make) {
    auto it = locals_.find(key);
    if (it == locals_.end()) it = locals_.emplace(key, std::shared_ptr<void>(make())).first;
    return *static_cast<T*>(it->second.get());
  }

  // The time read once at the start of this turn.
  [[nodiscard]] TimePoint now() const { return now_; }
  TimerWheel& timers() { return timers_; }
  [[nodiscard]] bool in_loop_thread() const;

 private:
  class Waker;
  EventLoop(Poller poller, UniqueFd wake_fd);
  void run_posted();
  void run_deferred();

  Poller poller_;
  TimePoint now_;
  TimerWheel timers_;
  std::unique_ptr<Waker> waker_;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> thread_id_hash_{0};
  std::mutex post_mu_;
  std::vector<std::function<void()>> posted_;
  std::vector<std::function<void()>> running_;
  std::vector<std::function<void()>> deferred_;
  std::vector<std::function<void()>> running_deferred_;
  std::vector<std::vector<char>> free_buffers_;
  struct Scheduled;
  std::unordered_map<TimerId, std::unique_ptr<Scheduled>> scheduled_;
  TimerId next_timer_id_ = 1;
  std::unordered_map<const void*, std::shared_ptr<void>> locals_;
};

}  // namespace unbroken::net
