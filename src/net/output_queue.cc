#include "net/output_queue.h"

#include <algorithm>

namespace unbroken::net {

void OutputQueue::append(std::string_view bytes) {
  if (bytes.empty()) return;
  size_ += bytes.size();
  if (!bytes_.has_storage()) bytes_.adopt_storage(loop_.take_buffer());
  bytes_.append(bytes);
  if (!empty() && !segments_.back().file) {
    segments_.back().remaining += bytes.size();
  } else {
    segments_.push_back(Segment{UniqueFd{}, 0, bytes.size()});
  }
}

void OutputQueue::append_file(UniqueFd file, std::uint64_t offset, std::uint64_t length) {
  if (length == 0) return;
  size_ += length;
  segments_.push_back(Segment{std::move(file), offset, length});
}

void OutputQueue::consume(std::size_t n) {
  Segment& s = segments_[head_];
  size_ -= n;
  s.remaining -= n;
  if (s.file) {
    s.offset += n;
  } else {
    bytes_.consume(n);
  }
  if (s.remaining > 0) return;
  s.file.reset();
  ++head_;
  if (empty()) {
    release();
  } else if (head_ > 64 && head_ * 2 > segments_.size()) {
    segments_.erase(segments_.begin(), segments_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
}

void OutputQueue::discard_after(std::size_t keep) {
  if (keep >= size_) return;
  size_ = keep;
  std::size_t bytes_kept = 0;
  std::size_t i = head_;
  for (; i < segments_.size() && keep > 0; ++i) {
    Segment& s = segments_[i];
    s.remaining = std::min<std::uint64_t>(s.remaining, keep);
    keep -= static_cast<std::size_t>(s.remaining);
    if (!s.file) bytes_kept += static_cast<std::size_t>(s.remaining);
  }
  segments_.erase(segments_.begin() + static_cast<std::ptrdiff_t>(i), segments_.end());
  if (empty()) {
    release();
  } else {
    bytes_.truncate(bytes_kept);
  }
}

void OutputQueue::release() {
  segments_.clear();
  head_ = 0;
  size_ = 0;
  if (bytes_.has_storage()) loop_.give_buffer(bytes_.take_storage());
}

}  // namespace unbroken::net
