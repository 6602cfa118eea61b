#pragma once
// A fixed pool of threads with a bounded queue, for handlers that block. A full queue refuses work
// (the caller answers 503) instead of growing without bound.

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace unbroken::http {

class WorkerPool {
 public:
  WorkerPool(unsigned threads, std::size_t max_queued);
  ~WorkerPool();  // finishes queued work, joins
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Any thread. False when the queue is full.
  [[nodiscard]] bool submit(std::function<void()> task);

 private:
  void run();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::size_t max_queued_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace unbroken::http
