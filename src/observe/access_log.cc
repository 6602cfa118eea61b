#include "observe/access_log.h"

#include <cstring>
#include <stdexcept>
#include <utility>

namespace unbroken::observe {
namespace {

std::atomic<std::uint64_t> next_log_id{1};

}  // namespace

// One thread's records on their way to the file. The owner appends to `filling`; the writer swaps it
// with `spare` (empty) under mu and writes `spare` with mu released, so neither waits on the other for
// longer than a record's formatting or a swap. Both have room for max_queued bytes from the start:
// neither ever grows (no allocation on a loop thread, even when the writer falls behind). Only the
// pages actually written become resident.
struct AccessLog::ThreadBuffer {
  explicit ThreadBuffer(std::size_t bytes)
      : filling(std::make_unique_for_overwrite<char[]>(bytes)), spare(std::make_unique_for_overwrite<char[]>(bytes)) {}
  const std::thread::id owner = std::this_thread::get_id();
  std::mutex mu;
  std::unique_ptr<char[]> filling;  // guarded by mu, as is filled
  std::size_t filled = 0;
  std::unique_ptr<char[]> spare;  // the writer's
};

AccessLog::AccessLog(std::string path, LogFormat format, std::size_t max_queued_bytes)
    : id_(next_log_id.fetch_add(1)), path_(std::move(path)), format_(format), max_queued_(max_queued_bytes) {
  open_file();
  if (file_ == nullptr) throw std::runtime_error(fmt::format("--log: cannot open '{}'", path_));
  threads_.reserve(64);
  writing_.reserve(64);  // the writer copies threads_ here without allocating (until 64 threads log)
  thread_ = std::thread([this] { run(); });
}

AccessLog::~AccessLog() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
  write_out();  // whatever came after the writer's last look
  if (file_ != nullptr && file_ != stdout) std::fclose(file_);
}

void AccessLog::open_file() {
  if (path_ == "-") {
    file_ = stdout;
    return;
  }
  std::FILE* f = std::fopen(path_.c_str(), "ae");
  if (f == nullptr) return;  // keep writing to the old file rather than losing records
  if (file_ != nullptr && file_ != stdout) std::fclose(file_);
  file_ = f;
}

AccessLog::ThreadBuffer& AccessLog::this_thread_buffer() {
  // A thread logs to one log at a time (the server's): its buffer is found without a lock.
  thread_local std::uint64_t cached_log = 0;
  thread_local ThreadBuffer* cached = nullptr;
  if (cached_log == id_) return *cached;
  std::lock_guard lock(threads_mu_);
  ThreadBuffer* mine = nullptr;
  for (auto& t : threads_)
    if (t->owner == std::this_thread::get_id()) mine = t.get();
  if (mine == nullptr) mine = threads_.emplace_back(std::make_unique<ThreadBuffer>(max_queued_)).get();
  cached_log = id_;
  cached = mine;
  return *mine;
}

void AccessLog::write(const http::RequestRecord& rec) {
  ThreadBuffer& b = this_thread_buffer();
  bool crossed;
  {
    std::lock_guard lock(b.mu);
    std::size_t n;
    if (format_ == LogFormat::kJson) {
      if (b.filled + json_bound(rec) > max_queued_) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      char* at = b.filling.get() + b.filled;
      n = static_cast<std::size_t>(write_json(at, rec) - at);
    } else {
      thread_local fmt::memory_buffer line;
      line.clear();
      append_text(line, rec);
      if (b.filled + line.size() > max_queued_) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      std::memcpy(b.filling.get() + b.filled, line.data(), line.size());
      n = line.size();
    }
    crossed = b.filled < kWakeBytes && b.filled + n >= kWakeBytes;
    b.filled += n;
  }
  // Waking the writer per record costs a context switch per request; it looks on its own every
  // kFlushInterval, and early only when a batch is worth writing.
  if (crossed) {
    {
      std::lock_guard lock(mu_);
      wake_ = true;
    }
    cv_.notify_one();
  }
}

void AccessLog::run() {
  for (;;) {
    bool stopping;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, kFlushInterval, [this] { return stopping_ || wake_; });
      wake_ = false;
      stopping = stopping_;
    }
    write_out();
    if (stopping) return;
  }
}

void AccessLog::write_out() {
  {
    std::lock_guard lock(threads_mu_);
    writing_.clear();
    for (auto& t : threads_) writing_.push_back(t.get());
  }
  bool wrote = false;
  for (ThreadBuffer* b : writing_) {
    std::size_t n;
    {
      std::lock_guard lock(b->mu);
      std::swap(b->filling, b->spare);
      n = std::exchange(b->filled, 0);
    }
    if (n == 0) continue;
    if (reopen_.exchange(false)) open_file();
    std::fwrite(b->spare.get(), 1, n, file_);
    wrote = true;
  }
  if (wrote) std::fflush(file_);
}

}  // namespace unbroken::observe
