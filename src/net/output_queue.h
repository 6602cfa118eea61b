#pragma once
// Output waiting to go, in order: runs of bytes (copied into one buffer borrowed from the loop
// while anything is queued) and ranges of files. TcpConnection sends it as it is; TlsTransport
// encrypts it first. Adjacent byte runs share one segment (one send, or one record).

#include <cstdint>
#include <string_view>
#include <vector>

#include "base/unique_fd.h"
#include "net/buffer.h"
#include "net/event_loop.h"

namespace unbroken::net {

class OutputQueue {
 public:
  struct Segment {
    UniqueFd file;             // a file range; bytes (the front of the byte buffer) when empty
    std::uint64_t offset = 0;  // into the file
    std::uint64_t remaining = 0;
  };

  explicit OutputQueue(EventLoop& loop) : loop_(loop), bytes_(0) {}
  ~OutputQueue() { release(); }
  OutputQueue(const OutputQueue&) = delete;
  OutputQueue& operator=(const OutputQueue&) = delete;

  void append(std::string_view bytes);
  void append_file(UniqueFd file, std::uint64_t offset, std::uint64_t length);

  [[nodiscard]] bool empty() const { return head_ == segments_.size(); }
  // Bytes queued, of both kinds.
  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] Segment& front() { return segments_[head_]; }
  [[nodiscard]] bool more_after_front() const { return head_ + 1 < segments_.size(); }
  // The front segment's bytes, when it is a bytes segment.
  [[nodiscard]] std::string_view front_bytes() const {
    return bytes_.readable().substr(0, static_cast<std::size_t>(segments_[head_].remaining));
  }
  // The first `n` bytes of the front segment are done with (sent, or encrypted).
  void consume(std::size_t n);
  // Keeps the first `keep` bytes and drops the rest (a response cut short, or replaced).
  void discard_after(std::size_t keep);
  // Drops everything and gives the byte buffer back to the loop: an idle connection holds none.
  void release();

 private:
  EventLoop& loop_;
  // Segments [head_, end) are pending; the vector keeps its capacity, so steady request/response
  // traffic does not allocate (a deque would, at every node boundary).
  std::vector<Segment> segments_;
  std::size_t head_ = 0;
  Buffer bytes_;
  std::size_t size_ = 0;
};

}  // namespace unbroken::net
