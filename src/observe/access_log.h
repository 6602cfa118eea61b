#pragma once
// The access log: one JSON line per request. Loops format a record straight into a bounded queue,
// without allocating; one writer thread does the I/O. If the disk cannot keep up, records are dropped
// and counted, never the server (a loop never waits on the disk). One queue keeps the file in the
// order the records were written, whichever thread wrote them: once a record is in the file, so is
// every record written before it (tests rely on it). Its lock is held for a record's formatting,
// under a microsecond; a queue per loop would spare two loops that wait but lose the order.
//
// The flush rule: a record reaches the file within kFlushInterval (50 ms) of being written, the
// loops busy or idle, because the writer wakes at that interval and writes whatever is queued; a
// queue that reaches kWakeBytes wakes it sooner. Flushing at the end of every loop turn would cost a
// lightly loaded loop a write(2) per request (one request per turn) and tie the loop to the disk;
// this costs one wake-up per 64 KiB or per 50 ms, and no record waits for a later request.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "http/record.h"
#include "observe/record_format.h"

namespace unbroken::observe {

enum class LogFormat { kJson, kText };

class AccessLog {
 public:
  static constexpr std::size_t kWakeBytes = 64 * 1024;
  static constexpr std::chrono::milliseconds kFlushInterval{50};

  // path "-" is stdout. Throws std::runtime_error when the file cannot be opened (start-up only).
  explicit AccessLog(std::string path, LogFormat format = LogFormat::kJson, std::size_t max_queued_bytes = 8 << 20);
  ~AccessLog();  // flushes what is queued
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // Any thread. Allocates nothing (the text format: once the thread has formatted its longest line).
  void write(const http::RequestRecord& rec);
  // Any thread: reopen the file on the next write (SIGHUP, after logrotate moved it).
  void reopen() { reopen_.store(true); }
  [[nodiscard]] std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  // Under mu_: n more bytes are pending; true when that makes a batch worth waking the writer for.
  bool add(std::size_t n);
  void run();
  void open_file();

  std::string path_;
  LogFormat format_;
  std::FILE* file_ = nullptr;
  std::size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::unique_ptr<char[]> pending_;  // max_queued_ bytes, pending_size_ of them used; guarded by mu_
  std::size_t pending_size_ = 0;
  std::unique_ptr<char[]> batch_;  // the writer's
  bool stopping_ = false;
  std::atomic<bool> reopen_{false};
  std::atomic<std::uint64_t> dropped_{0};
  std::thread thread_;
};

}  // namespace unbroken::observe
