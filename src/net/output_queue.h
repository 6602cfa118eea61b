#pragma once
// Output waiting to go, in order: runs of bytes (copied into one buffer borrowed from the loop
// while anything is queued) and ranges of files. TcpConnection sends it as it is; TlsTransport
// encrypts it first. Adjacent byte runs share one segment (one send, or one record).
// An empty queue is one pointer: its state is borrowed from a per-thread spare list while anything
// is queued, so an idle connection carries none of it (bench/idle).

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

  explicit OutputQueue(EventLoop& loop) : loop_(loop) {}
  ~OutputQueue() { release(); }
  OutputQueue(const OutputQueue&) = delete;
  OutputQueue& operator=(const OutputQueue&) = delete;

  void append(std::string_view bytes);
  void append_file(UniqueFd file, std::uint64_t offset, std::uint64_t length);

  // The state exists exactly while something is queued.
  [[nodiscard]] bool empty() const { return s_ == nullptr; }
  // Bytes queued, of both kinds.
  [[nodiscard]] std::size_t size() const { return s_ != nullptr ? s_->size : 0; }
  // The next three: only when not empty.
  [[nodiscard]] Segment& front() { return s_->segments[s_->head]; }
  [[nodiscard]] bool more_after_front() const { return s_->head + 1 < s_->segments.size(); }
  // The front segment's bytes, when it is a bytes segment.
  [[nodiscard]] std::string_view front_bytes() const {
    return s_->bytes.readable().substr(0, static_cast<std::size_t>(s_->segments[s_->head].remaining));
  }
  // The first `n` bytes of the front segment are done with (sent, or encrypted).
  void consume(std::size_t n);
  // Keeps the first `keep` bytes and drops the rest (a response cut short, or replaced).
  void discard_after(std::size_t keep);
  // Drops everything and gives the byte buffer back to the loop: an idle connection holds none.
  void release();

 private:
  struct State {
    // Segments [head, end) are pending; the vector keeps its capacity on the spare list, so steady
    // request/response traffic does not allocate (a deque would, at every node boundary).
    std::vector<Segment> segments;
    std::size_t head = 0;
    Buffer bytes{0};
    std::size_t size = 0;
  };
  State& state();  // borrows one when there is none
  EventLoop& loop_;
  State* s_ = nullptr;
};

}  // namespace unbroken::net
