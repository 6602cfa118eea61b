#pragma once
// The access log: one JSON line per request. Loops format a record and hand it to a bounded queue;
// one writer thread does the I/O. If the disk cannot keep up, records are dropped and counted,
// never the server (a loop never waits on the log).

#include <fmt/format.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include "http/record.h"

namespace unbroken::observe {

enum class LogFormat { kJson, kText };

// Appends rec as one JSON object and a newline. Strings are escaped so that nothing a client sends
// can forge a line or inject control characters.
void append_json(fmt::memory_buffer& out, const http::RequestRecord& rec);
// The same facts as one human-readable line, escaped the same way.
void append_text(fmt::memory_buffer& out, const http::RequestRecord& rec);

class AccessLog {
 public:
  // path "-" is stdout. Throws std::runtime_error when the file cannot be opened (start-up only).
  explicit AccessLog(std::string path, LogFormat format = LogFormat::kJson, std::size_t max_queued_bytes = 8 << 20);
  ~AccessLog();  // flushes what is queued
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // Any thread.
  void write(const http::RequestRecord& rec);
  // Any thread: reopen the file on the next write (SIGHUP, after logrotate moved it).
  void reopen() { reopen_.store(true); }
  [[nodiscard]] std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  void run();
  void open_file();

  std::string path_;
  LogFormat format_;
  std::FILE* file_ = nullptr;
  std::size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string pending_;
  bool stopping_ = false;
  std::atomic<bool> reopen_{false};
  std::atomic<std::uint64_t> dropped_{0};
  std::thread thread_;
};

}  // namespace unbroken::observe
