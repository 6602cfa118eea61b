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
  // Its turn on the ready list came (EventLoop::make_ready).
  virtual void on_ready() {}
};

// A place on its loop's ready list, embedded in the IoHandler it names. Destroying a queued node
// takes it off, so an owner freed while queued is never called.
class ReadyNode {
 public:
  explicit ReadyNode(IoHandler* owner) : owner_(owner) {}
  ReadyNode(const ReadyNode&) = delete;
  ReadyNode& operator=(const ReadyNode&) = delete;
  ~ReadyNode() { unlink(); }
  [[nodiscard]] bool queued() const { return next_ != nullptr; }
  void unlink();

 private:
  friend class EventLoop;
  ReadyNode* prev_ = nullptr;
  ReadyNode* next_ = nullptr;
  IoHandler* owner_;
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
  // After every deferred task of this turn, including those deferred meanwhile: for freeing what a
  // deferred task may still name (a closed connection's end-of-turn flush).
  void defer_last(std::function<void()> task) { deferred_last_.push_back(std::move(task)); }

  [[nodiscard]] Result<void> add(int fd, std::uint32_t interest, IoHandler* h) { return poller_.add(fd, interest, h); }
  [[nodiscard]] Result<void> modify(int fd, std::uint32_t interest, IoHandler* h) {
    return poller_.modify(fd, interest, h);
  }
  void remove(int fd) { poller_.remove(fd); }

  // Loop thread: `node`'s owner hears on_ready() once in the next turn, after that turn's events,
  // and the poll before it does not wait. For work cut short so that others get their turn (a
  // connection past its write budget, whose socket is still writable: edge-triggered, no EPOLLOUT
  // would come). Owners are served in the order queued; queuing a queued node is a no-op.
  void make_ready(ReadyNode& node);
  // Counts this loop's turns: an allowance per turn resets when it changes.
  [[nodiscard]] std::uint64_t turn() const { return turn_; }
  // Bytes one connection may write in one turn (TcpConnection): a client that reads at loopback
  // speed would otherwise keep the loop on its body for the whole of it, while small responses on
  // the same loop wait. 1 MiB is one sendfile call's worth (the most a single send ever tried):
  // a turn gives each connection one call instead of calls until EAGAIN. Smaller budgets cost CPU
  // on large responses (1 MiB static, c64: ~300 us per response at 128 or 512 KiB against ~160
  // at 1 MiB or unbounded). Tests lower it; SIZE_MAX turns it off.
  [[nodiscard]] std::size_t write_budget() const { return write_budget_; }
  void set_write_budget(std::size_t bytes) { write_budget_ = bytes; }
  static constexpr std::size_t kDefaultWriteBudget = 1024 * 1024;

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
  void run_ready();

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
  std::vector<std::function<void()>> deferred_last_;
  std::vector<std::function<void()>> running_last_;
  std::vector<std::vector<char>> free_buffers_;
  struct Scheduled;
  std::unordered_map<TimerId, std::unique_ptr<Scheduled>> scheduled_;
  TimerId next_timer_id_ = 1;
  std::unordered_map<const void*, std::shared_ptr<void>> locals_;
  ReadyNode ready_{nullptr};  // the list's head: queued nodes follow it in a ring
  std::uint64_t turn_ = 0;
  std::size_t write_budget_ = kDefaultWriteBudget;
};

}  // namespace unbroken::net
