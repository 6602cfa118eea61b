#include "observe/access_log.h"

#include <cstring>
#include <memory>
#include <stdexcept>
#include <utility>

namespace unbroken::observe {

AccessLog::AccessLog(std::string path, LogFormat format, std::size_t max_queued_bytes)
    : path_(std::move(path)), format_(format), max_queued_(max_queued_bytes) {
  open_file();
  if (file_ == nullptr) throw std::runtime_error(fmt::format("--log: cannot open '{}'", path_));
  // The loops append to pending_ and the writer swaps it with batch_: with both at the queue's bound
  // from the start, neither ever grows (no allocation on a loop thread, even when the writer falls
  // behind). Only the pages actually written become resident.
  pending_ = std::make_unique_for_overwrite<char[]>(max_queued_);
  batch_ = std::make_unique_for_overwrite<char[]>(max_queued_);
  thread_ = std::thread([this] { run(); });
}

AccessLog::~AccessLog() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
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

void AccessLog::write(const http::RequestRecord& rec) {
  bool crossed;
  if (format_ == LogFormat::kJson) {
    // Formatted in place, under the lock: no copy, and the lock is held for a record's formatting
    // (well under a microsecond), never for I/O.
    std::size_t bound = json_bound(rec);
    std::lock_guard lock(mu_);
    if (pending_size_ + bound > max_queued_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    char* at = pending_.get() + pending_size_;
    crossed = add(static_cast<std::size_t>(write_json(at, rec) - at));
  } else {
    thread_local fmt::memory_buffer line;
    line.clear();
    append_text(line, rec);
    std::lock_guard lock(mu_);
    if (pending_size_ + line.size() > max_queued_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    std::memcpy(pending_.get() + pending_size_, line.data(), line.size());
    crossed = add(line.size());
  }
  // Waking the writer per record costs a context switch per request; it wakes on its own every
  // kFlushInterval, and early only when a batch is worth writing.
  if (crossed) cv_.notify_one();
}

bool AccessLog::add(std::size_t n) {
  bool crossed = pending_size_ < kWakeBytes && pending_size_ + n >= kWakeBytes;
  pending_size_ += n;
  return crossed;
}

void AccessLog::run() {
  for (;;) {
    std::size_t n;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, kFlushInterval, [this] { return stopping_ || pending_size_ >= kWakeBytes; });
      if (pending_size_ == 0) {
        if (stopping_) return;
        continue;
      }
      std::swap(pending_, batch_);
      n = std::exchange(pending_size_, 0);
    }
    if (reopen_.exchange(false)) open_file();
    std::fwrite(batch_.get(), 1, n, file_);
    std::fflush(file_);
  }
}

}  // namespace unbroken::observe
