#pragma once
// A contiguous byte buffer with a read and a write index. Bytes are appended at the back and
// consumed from the front; compaction moves the unread rest to the front only when space runs out.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

namespace unbroken::net {

class Buffer {
 public:
  explicit Buffer(std::size_t initial = 16 * 1024) : data_(initial) {}

  // The storage, for a pool: an idle connection holds no buffer (nginx-style), a reading one
  // borrows one. take_storage() leaves the buffer empty with no capacity.
  [[nodiscard]] bool has_storage() const { return !data_.empty(); }
  std::vector<char> take_storage() {
    begin_ = end_ = 0;
    return std::exchange(data_, {});
  }
  void adopt_storage(std::vector<char> storage) {
    data_ = std::move(storage);
    begin_ = end_ = 0;
  }

  [[nodiscard]] std::string_view readable() const { return {data_.data() + begin_, end_ - begin_}; }
  [[nodiscard]] std::size_t size() const { return end_ - begin_; }
  [[nodiscard]] bool empty() const { return begin_ == end_; }
  void consume(std::size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  // Space to read into, at least `min` bytes when cap allows, never growing past `cap` in total.
  char* prepare(std::size_t min, std::size_t cap) {
    if (data_.size() - end_ < min && begin_ > 0) {
      std::memmove(data_.data(), data_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (data_.size() - end_ < min && data_.size() < cap)
      data_.resize(std::min(cap, std::max(data_.size() * 2, end_ + min)));
    return data_.data() + end_;
  }
  [[nodiscard]] std::size_t writable() const { return data_.size() - end_; }
  void commit(std::size_t n) { end_ += n; }
  void append(std::string_view s) {
    std::memcpy(prepare(s.size(), SIZE_MAX), s.data(), s.size());
    commit(s.size());
  }
  void clear() { begin_ = end_ = 0; }
  // Keeps the first n readable bytes (n <= size()).
  void truncate(std::size_t n) { end_ = begin_ + n; }

 private:
  std::vector<char> data_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace unbroken::net
