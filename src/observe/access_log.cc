#include "observe/access_log.h"

#include <stdexcept>

namespace unbroken::observe {

AccessLog::AccessLog(std::string path, LogFormat format, std::size_t max_queued_bytes)
    : path_(std::move(path)), format_(format), max_queued_(max_queued_bytes) {
  open_file();
  if (file_ == nullptr) throw std::runtime_error(fmt::format("--log: cannot open '{}'", path_));
  // The loops append to pending_ and the writer swaps it with its batch: with both at the queue's
  // bound from the start, neither ever grows (no allocation on a loop thread, even when the writer
  // falls behind). Only the pages actually written become resident.
  pending_.reserve(max_queued_);
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
  thread_local fmt::memory_buffer line;
  line.clear();
  if (format_ == LogFormat::kJson) {
    append_json(line, rec);
  } else {
    append_text(line, rec);
  }
  bool crossed;
  {
    std::lock_guard lock(mu_);
    if (pending_.size() + line.size() > max_queued_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    crossed = pending_.size() < kWakeBytes && pending_.size() + line.size() >= kWakeBytes;
    pending_.append(line.data(), line.size());
  }
  // Waking the writer per record costs a context switch per request; it wakes on its own every
  // kFlushInterval, and early only when a batch is worth writing.
  if (crossed) cv_.notify_one();
}

void AccessLog::run() {
  std::string batch;
  batch.reserve(max_queued_);
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, kFlushInterval, [this] { return stopping_ || pending_.size() >= kWakeBytes; });
      if (pending_.empty()) {
        if (stopping_) return;
        continue;
      }
      batch.swap(pending_);
    }
    if (reopen_.exchange(false)) open_file();
    std::fwrite(batch.data(), 1, batch.size(), file_);
    std::fflush(file_);
    batch.clear();
  }
}

}  // namespace unbroken::observe
