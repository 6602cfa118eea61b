#pragma once
// The access log: one JSON line per request. Each thread that logs (a loop, a worker letting a departed
// exchange go) formats its records straight into a buffer of its own, under a lock that only the
// writer thread ever contends for (to swap the buffer out); one writer thread does the I/O. If the
// disk cannot keep up, records are dropped and counted, never the server (a loop never waits on the
// log, nor on another loop's records).
//
// The flush rule: every record reaches the file within kFlushInterval (50 ms) of being logged, the
// loop busy or idle, because the writer collects every thread's buffer at that interval whatever it
// holds; a buffer that reaches kWakeBytes wakes it sooner. Flushing at the end of every loop turn
// would cost an idle-ish loop a write(2) per request (one request per turn) and bind the loop to the
// disk; this costs one wake-up per 64 KiB or per 50 ms, and no record waits for a later request.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http/record.h"
#include "observe/record_format.h"

namespace unbroken::observe {

enum class LogFormat { kJson, kText };

class AccessLog {
 public:
  static constexpr std::size_t kWakeBytes = 64 * 1024;
  static constexpr std::chrono::milliseconds kFlushInterval{50};

  // path "-" is stdout. Each logging thread queues up to max_queued_bytes. Throws
  // std::runtime_error when the file cannot be opened (start-up only).
  explicit AccessLog(std::string path, LogFormat format = LogFormat::kJson, std::size_t max_queued_bytes = 8 << 20);
  ~AccessLog();  // writes what is queued, whoever queued it
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // Any thread. Allocates only on a thread's first record (its buffer).
  void write(const http::RequestRecord& rec);
  // Any thread: reopen the file before the next batch is written (SIGHUP, after logrotate moved it).
  void reopen() { reopen_.store(true); }
  [[nodiscard]] std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  struct ThreadBuffer;
  ThreadBuffer& this_thread_buffer();
  void run();
  // Writer thread (or the destructor, once it has stopped): swaps every thread's buffer out and
  // writes it.
  void write_out();
  void open_file();

  const std::uint64_t id_;  // tells this log apart from any earlier one in a thread's cache
  std::string path_;
  LogFormat format_;
  std::FILE* file_ = nullptr;
  std::size_t max_queued_;
  std::mutex threads_mu_;  // guards threads_; taken by a thread's first record and by the writer
  std::vector<std::unique_ptr<ThreadBuffer>> threads_;
  std::vector<ThreadBuffer*> writing_;  // the writer's copy of threads_
  std::mutex mu_;                       // guards wake_ and stopping_
  std::condition_variable cv_;
  bool wake_ = false;
  bool stopping_ = false;
  std::atomic<bool> reopen_{false};
  std::atomic<std::uint64_t> dropped_{0};
  std::thread thread_;
};

}  // namespace unbroken::observe
