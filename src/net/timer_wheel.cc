#include "net/timer_wheel.h"

#include <bit>

#include "base/check.h"

namespace unbroken::net {

void TimerNode::unlink() {
  if (next_ == nullptr) return;
  prev_->next_ = next_;
  next_->prev_ = prev_;
  prev_ = next_ = nullptr;
  wheel_->on_unlinked(slot_);
}

TimerWheel::TimerWheel(TimePoint now) : origin_(now) {
  for (auto& s : slots_) s.prev_ = s.next_ = &s;
  expired_.prev_ = expired_.next_ = &expired_;
}

TimerWheel::~TimerWheel() {
  // Owners may outlive the wheel only if they never touch their node again: detach them.
  auto detach = [](TimerNode& head) {
    for (TimerNode* n = head.next_; n != &head;) {
      TimerNode* next = n->next_;
      n->prev_ = n->next_ = nullptr;
      n = next;
    }
    head.prev_ = head.next_ = nullptr;  // the sentinel itself is not "armed"
  };
  for (auto& s : slots_) detach(s);
  detach(expired_);
}

// The first tick boundary at or after t: a timer never fires early.
std::uint64_t TimerWheel::tick_of(TimePoint t) const {
  if (t <= origin_) return 0;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - origin_);
  return static_cast<std::uint64_t>((ms + kTick - std::chrono::milliseconds(1)) / kTick);
}

void TimerWheel::link(TimerNode& head, TimerNode& node) {
  node.prev_ = head.prev_;
  node.next_ = &head;
  head.prev_->next_ = &node;
  head.prev_ = &node;
  node.wheel_ = this;
  ++count_;
}

void TimerWheel::on_unlinked(int slot) {
  --count_;
  if (slot >= 0 && --occupancy_[slot] == 0) nonempty_[slot / 64] &= ~(1ull << (slot % 64));
}

void TimerWheel::arm(TimerNode& node, TimePoint deadline) {
  node.unlink();
  // A deadline already in the past fires on the next advance(), never in the current callback.
  node.due_tick_ = std::max(tick_of(deadline), current_tick_);
  int slot = static_cast<int>(node.due_tick_ % kSlots);
  node.slot_ = slot;
  link(slots_[slot], node);
  ++occupancy_[slot];
  nonempty_[slot / 64] |= 1ull << (slot % 64);
}

void TimerWheel::advance(TimePoint now) {
  // Tick k is due once now >= origin + k * kTick: round down.
  if (now < origin_) return;
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(now - origin_);
  auto target = static_cast<std::uint64_t>(elapsed / kTick);
  if (target < current_tick_) return;
  // After an idle stretch longer than a revolution, each slot needs one visit only.
  std::uint64_t first = target - current_tick_ >= kSlots ? target - kSlots + 1 : current_tick_;
  for (std::uint64_t t = first; t <= target; ++t) {
    int slot = static_cast<int>(t % kSlots);
    if (occupancy_[slot] == 0) continue;
    TimerNode& head = slots_[slot];
    for (TimerNode* n = head.next_; n != &head;) {
      TimerNode* next = n->next_;
      if (n->due_tick_ <= target) {
        n->unlink();
        n->slot_ = -1;
        link(expired_, *n);
      }
      n = next;
    }
  }
  current_tick_ = target + 1;
  // Fire one at a time from the head: a callback may cancel timers still waiting in this list.
  while (expired_.next_ != &expired_) {
    TimerNode* n = expired_.next_;
    n->unlink();
    n->on_fire_();
  }
}

int TimerWheel::next_timeout_ms(TimePoint now) const {
  if (count_ == 0) return -1;
  // Find the next non-empty slot at or after current_tick_ using the bitmap.
  std::size_t start = current_tick_ % kSlots;
  std::size_t distance = kSlots;
  for (std::size_t step = 0; step < kSlots;) {
    std::size_t idx = (start + step) % kSlots;
    std::uint64_t word = nonempty_[idx / 64] >> (idx % 64);
    if (word != 0) {
      std::size_t found = step + static_cast<std::size_t>(std::countr_zero(word));
      distance = found;
      break;
    }
    step += 64 - idx % 64;
  }
  if (distance >= kSlots) distance = kSlots - 1;
  TimePoint due = origin_ + kTick * static_cast<std::int64_t>(current_tick_ + distance);
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(due - now).count();
  return ms < 0 ? 0 : static_cast<int>(ms);
}

}  // namespace unbroken::net
