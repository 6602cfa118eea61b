#pragma once
// A hashed timer wheel (h2o, Netty): arming, re-arming and cancelling are O(1); each tick visits one
// slot. A timer whose deadline is more than one revolution away stays in its slot and is skipped
// until its tick comes round. Loop-thread only.

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>

namespace unbroken::net {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

class TimerWheel;

// A timer embedded in its owner (one per connection). Destroying an armed node cancels it.
class TimerNode {
 public:
  explicit TimerNode(std::function<void()> on_fire) : on_fire_(std::move(on_fire)) {}
  TimerNode(const TimerNode&) = delete;
  TimerNode& operator=(const TimerNode&) = delete;
  ~TimerNode() { unlink(); }

  // A node with no callback: the wheel's list heads.
  TimerNode() = default;

  [[nodiscard]] bool armed() const { return next_ != nullptr; }

 private:
  friend class TimerWheel;
  void unlink();

  TimerNode* prev_ = nullptr;
  TimerNode* next_ = nullptr;
  TimerWheel* wheel_ = nullptr;
  std::uint64_t due_tick_ = 0;
  int slot_ = -1;  // -1: in the wheel's expired list, being fired
  std::function<void()> on_fire_;
};

class TimerWheel {
 public:
  static constexpr std::chrono::milliseconds kTick{8};
  static constexpr std::size_t kSlots = 1024;  // one revolution is about 8 s

  explicit TimerWheel(TimePoint now);
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;
  ~TimerWheel();

  // (Re-)arms node to fire at `deadline` (rounded up to the next tick). O(1).
  void arm(TimerNode& node, TimePoint deadline);
  void cancel(TimerNode& node) { node.unlink(); }

  // Fires every timer due at `now`. Callbacks may arm or cancel any timer, including their own.
  void advance(TimePoint now);
  // Milliseconds until the next slot holding a timer is due; -1 when no timer is armed.
  [[nodiscard]] int next_timeout_ms(TimePoint now) const;
  [[nodiscard]] std::size_t size() const { return count_; }

 private:
  friend class TimerNode;
  [[nodiscard]] std::uint64_t tick_of(TimePoint t) const;
  void link(TimerNode& head, TimerNode& node);
  void on_unlinked(int slot);

  TimePoint origin_;
  std::uint64_t current_tick_ = 0;  // every tick below this one has been processed
  std::size_t count_ = 0;
  std::array<TimerNode, kSlots> slots_;
  std::array<std::uint32_t, kSlots> occupancy_{};
  std::array<std::uint64_t, kSlots / 64> nonempty_{};
  TimerNode expired_;
};

}  // namespace unbroken::net
