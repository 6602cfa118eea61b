#include "net/output_queue.h"

#include <algorithm>

namespace unbroken::net {
namespace {

// Spare states, per thread (a queue lives on its loop's thread). Sanitizer builds keep none, so
// ASan still sees a state used after it was given back.
#if defined(__SANITIZE_ADDRESS__)
constexpr std::size_t kMaxSpare = 0;
#else
constexpr std::size_t kMaxSpare = 1024;
#endif

template <class State>
struct Spares {
  std::vector<State*> list;
  bool gone = false;  // the thread is ending: states go back to the heap
  ~Spares() {
    gone = true;
    for (State* s : list) delete s;
    list.clear();
  }
};

template <class State>
Spares<State>& spares() {
  thread_local Spares<State> s;
  return s;
}

}  // namespace

OutputQueue::State& OutputQueue::state() {
  if (s_ != nullptr) return *s_;
  auto& sp = spares<State>();
  if (sp.list.empty()) {
    s_ = new State;
  } else {
    s_ = sp.list.back();
    sp.list.pop_back();
  }
  return *s_;
}

void OutputQueue::append(std::string_view bytes) {
  if (bytes.empty()) return;
  State& s = state();
  s.size += bytes.size();
  if (!s.bytes.has_storage()) s.bytes.adopt_storage(loop_.take_buffer());
  s.bytes.append(bytes);
  if (s.head < s.segments.size() && !s.segments.back().file) {
    s.segments.back().remaining += bytes.size();
  } else {
    s.segments.push_back(Segment{UniqueFd{}, 0, bytes.size()});
  }
}

void OutputQueue::append_file(UniqueFd file, std::uint64_t offset, std::uint64_t length) {
  if (length == 0) return;
  State& s = state();
  s.size += length;
  s.segments.push_back(Segment{std::move(file), offset, length});
}

void OutputQueue::consume(std::size_t n) {
  State& st = *s_;
  Segment& s = st.segments[st.head];
  st.size -= n;
  s.remaining -= n;
  if (s.file) {
    s.offset += n;
  } else {
    st.bytes.consume(n);
  }
  if (s.remaining > 0) return;
  s.file.reset();
  ++st.head;
  if (st.head == st.segments.size()) {
    release();
  } else if (st.head > 64 && st.head * 2 > st.segments.size()) {
    st.segments.erase(st.segments.begin(), st.segments.begin() + static_cast<std::ptrdiff_t>(st.head));
    st.head = 0;
  }
}

void OutputQueue::discard_after(std::size_t keep) {
  if (keep >= size()) return;
  State& st = *s_;
  st.size = keep;
  std::size_t bytes_kept = 0;
  std::size_t i = st.head;
  for (; i < st.segments.size() && keep > 0; ++i) {
    Segment& s = st.segments[i];
    s.remaining = std::min<std::uint64_t>(s.remaining, keep);
    keep -= static_cast<std::size_t>(s.remaining);
    if (!s.file) bytes_kept += static_cast<std::size_t>(s.remaining);
  }
  st.segments.erase(st.segments.begin() + static_cast<std::ptrdiff_t>(i), st.segments.end());
  if (st.head == st.segments.size()) {
    release();
  } else {
    st.bytes.truncate(bytes_kept);
  }
}

void OutputQueue::release() {
  if (s_ == nullptr) return;
  State* s = std::exchange(s_, nullptr);
  s->segments.clear();  // closes the files still queued
  s->head = 0;
  s->size = 0;
  if (s->bytes.has_storage()) loop_.give_buffer(s->bytes.take_storage());
  auto& sp = spares<State>();
  if (sp.gone || sp.list.size() >= kMaxSpare) {
    delete s;
  } else {
    sp.list.push_back(s);
  }
}

}  // namespace unbroken::net
