#include "net/event_loop.h"

#include <sys/eventfd.h>

#include <thread>

namespace unbroken::net {
namespace {
constexpr std::size_t kReadBufferSize = 16 * 1024;
constexpr std::size_t kMaxFreeBuffers = 256;  // 4 MiB per loop at most
}  // namespace

class EventLoop::Waker : public IoHandler {
 public:
  explicit Waker(UniqueFd fd) : fd_(std::move(fd)) {}
  int fd() const { return fd_.get(); }
  void wake() {
    std::uint64_t one = 1;
    // A full counter (EAGAIN) still leaves the fd readable: the loop wakes either way.
    [[maybe_unused]] ssize_t n = ::write(fd_.get(), &one, sizeof one);
  }
  void on_events(std::uint32_t) override {
    std::uint64_t v;
    while (::read(fd_.get(), &v, sizeof v) > 0) {
    }
  }

 private:
  UniqueFd fd_;
};

struct EventLoop::Scheduled {
  Scheduled(std::function<void()> on_fire, std::function<void()> f, std::chrono::milliseconds p)
      : node(std::move(on_fire)), fn(std::move(f)), period(p) {}
  TimerNode node;
  std::function<void()> fn;
  std::chrono::milliseconds period;
};

EventLoop::TimerId EventLoop::run_after(std::chrono::milliseconds delay, std::function<void()> fn) {
  TimerId id = next_timer_id_++;
  auto fire = [this, id] {
    auto it = scheduled_.find(id);
    if (it == scheduled_.end()) return;
    Scheduled& sc = *it->second;
    if (sc.period.count() > 0) {
      timers_.arm(sc.node, now_ + sc.period);
      sc.fn();  // may cancel itself: cancel_timer() keeps it alive until the turn ends
      return;
    }
    auto fn = std::move(sc.fn);
    cancel_timer(id);
    fn();
  };
  auto s = std::make_unique<Scheduled>(std::move(fire), std::move(fn), std::chrono::milliseconds{0});
  timers_.arm(s->node, now_ + delay);
  scheduled_.emplace(id, std::move(s));
  return id;
}

EventLoop::TimerId EventLoop::run_every(std::chrono::milliseconds period, std::function<void()> fn) {
  TimerId id = run_after(period, std::move(fn));
  scheduled_[id]->period = period;
  return id;
}

void EventLoop::cancel_timer(TimerId id) {
  // The node may be the one firing right now: free it after this turn, not under its own callback.
  auto it = scheduled_.find(id);
  if (it == scheduled_.end()) return;
  std::shared_ptr<Scheduled> owned(std::move(it->second));
  scheduled_.erase(it);
  timers_.cancel(owned->node);
  defer([owned] {});
}

Result<std::unique_ptr<EventLoop>> EventLoop::create() {
  auto poller = Poller::create();
  if (!poller) return poller.error();
  int efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd < 0) return Errno{errno};
  std::unique_ptr<EventLoop> loop(new EventLoop(std::move(*poller), UniqueFd(efd)));
  if (auto r = loop->poller_.add(loop->waker_->fd(), kReadable, loop->waker_.get()); !r) return r.error();
  return loop;
}

EventLoop::EventLoop(Poller poller, UniqueFd wake_fd)
    : poller_(std::move(poller)),
      now_(Clock::now()),
      timers_(now_),
      waker_(std::make_unique<Waker>(std::move(wake_fd))) {
  ready_.prev_ = ready_.next_ = &ready_;
  // Room for the whole pool up front: giving a buffer back never allocates.
  free_buffers_.reserve(kMaxFreeBuffers);
}

EventLoop::~EventLoop() {
  // What they hold may use the poller and the timers: they go first.
  locals_.clear();
  // Owners that outlive the loop must not reach back into it when they unlink.
  for (ReadyNode* n = ready_.next_; n != &ready_;) {
    ReadyNode* next = n->next_;
    n->prev_ = n->next_ = nullptr;
    n = next;
  }
  ready_.prev_ = ready_.next_ = nullptr;
}

void ReadyNode::unlink() {
  if (next_ == nullptr) return;
  prev_->next_ = next_;
  next_->prev_ = prev_;
  prev_ = next_ = nullptr;
}

void EventLoop::make_ready(ReadyNode& node) {
  if (node.queued()) return;
  node.prev_ = ready_.prev_;
  node.next_ = &ready_;
  ready_.prev_->next_ = &node;
  ready_.prev_ = &node;
}

void EventLoop::run_ready() {
  if (ready_.next_ == &ready_) return;
  // This turn serves the nodes queued before it; those queued again while it runs wait for the
  // next one. The ring moves whole to a head of its own, which nodes unlink from as usual (a
  // callback may close a connection further down the list).
  ReadyNode serving{nullptr};
  serving.next_ = ready_.next_;
  serving.prev_ = ready_.prev_;
  serving.next_->prev_ = &serving;
  serving.prev_->next_ = &serving;
  ready_.prev_ = ready_.next_ = &ready_;
  while (serving.next_ != &serving) {
    ReadyNode* n = serving.next_;
    n->unlink();
    n->owner_->on_ready();
  }
  serving.prev_ = serving.next_ = nullptr;
}

bool EventLoop::in_loop_thread() const {
  return thread_id_hash_.load(std::memory_order_relaxed) == std::hash<std::thread::id>{}(std::this_thread::get_id());
}

void EventLoop::stop() {
  stop_.store(true);
  waker_->wake();
}

void EventLoop::post(std::function<void()> task) {
  {
    std::lock_guard lock(post_mu_);
    posted_.push_back(std::move(task));
  }
  waker_->wake();
}

void EventLoop::run_posted() {
  {
    std::lock_guard lock(post_mu_);
    running_.swap(posted_);
  }
  for (auto& task : running_) task();
  running_.clear();
}

void EventLoop::run_deferred() {
  // A deferred task may defer another (a close that triggers a close): drain until empty.
  // Both vectors keep their capacity: deferring costs no allocation once the loop has warmed up.
  for (;;) {
    while (!deferred_.empty()) {
      running_deferred_.swap(deferred_);
      for (auto& task : running_deferred_) task();
      running_deferred_.clear();
    }
    if (deferred_last_.empty()) return;
    running_last_.swap(deferred_last_);
    for (auto& task : running_last_) task();
    running_last_.clear();
  }
}

std::vector<char> EventLoop::take_buffer() {
  if (free_buffers_.empty()) return std::vector<char>(kReadBufferSize);
  auto b = std::move(free_buffers_.back());
  free_buffers_.pop_back();
  return b;
}

void EventLoop::give_buffer(std::vector<char> buffer) {
  // Buffers that grew for a large head or body are not kept: the pool holds standard sizes only.
  if (buffer.size() == kReadBufferSize && free_buffers_.size() < kMaxFreeBuffers)
    free_buffers_.push_back(std::move(buffer));
}

void EventLoop::run_timers(TimePoint now) {
  now_ = now;
  timers_.advance(now_);
  run_deferred();
}

void EventLoop::run() {
  thread_id_hash_.store(std::hash<std::thread::id>{}(std::this_thread::get_id()));
  while (!stop_.load(std::memory_order_relaxed)) {
    now_ = Clock::now();
    // Work waits on the ready list: only look for new events, so that they come before it.
    auto events = poller_.poll(ready_.next_ != &ready_ ? 0 : timers_.next_timeout_ms(now_));
    now_ = Clock::now();
    ++turn_;
    for (const PollEvent& ev : events) static_cast<IoHandler*>(ev.owner)->on_events(ev.events);
    run_ready();
    run_deferred();
    run_timers(now_);
    run_posted();
    run_deferred();
  }
  // Ready to run again (a test's loop runs in steps); a stop() that came before run() began still
  // ends that run at once.
  stop_.store(false);
}

}  // namespace unbroken::net
