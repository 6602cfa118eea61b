#include "net/timer_wheel.h"

#include <gtest/gtest.h>

#include <vector>

namespace unbroken::net {
namespace {

using std::chrono::milliseconds;

TEST(TimerWheel, FiresNoEarlierThanTheDeadlineAndOnlyOnce) {
  TimePoint t0 = Clock::now();
  TimerWheel w(t0);
  int fired = 0;
  TimerNode n([&] { ++fired; });
  w.arm(n, t0 + milliseconds(100));
  w.advance(t0 + milliseconds(99));
  EXPECT_EQ(fired, 0);
  w.advance(t0 + milliseconds(100 + TimerWheel::kTick.count()));
  EXPECT_EQ(fired, 1);
  w.advance(t0 + milliseconds(10'000));
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(w.size(), 0u);
}

TEST(TimerWheel, RearmMovesTheDeadlineAndCancelStopsIt) {
  TimePoint t0 = Clock::now();
  TimerWheel w(t0);
  int a = 0, b = 0;
  TimerNode na([&] { ++a; });
  TimerNode nb([&] { ++b; });
  w.arm(na, t0 + milliseconds(50));
  w.arm(na, t0 + milliseconds(500));  // re-arm replaces
  w.arm(nb, t0 + milliseconds(50));
  w.cancel(nb);
  w.advance(t0 + milliseconds(200));
  EXPECT_EQ(a, 0);
  EXPECT_EQ(b, 0);
  w.advance(t0 + milliseconds(520));
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 0);
}

TEST(TimerWheel, DeadlinesBeyondOneRevolutionWaitTheirTurn) {
  TimePoint t0 = Clock::now();
  TimerWheel w(t0);
  const auto revolution = TimerWheel::kTick * static_cast<int>(TimerWheel::kSlots);
  int fired = 0;
  TimerNode n([&] { ++fired; });
  w.arm(n, t0 + revolution * 3 + milliseconds(40));
  for (auto t = milliseconds(0); t < revolution * 3; t += milliseconds(500)) w.advance(t0 + t);
  EXPECT_EQ(fired, 0);
  w.advance(t0 + revolution * 3 + milliseconds(60));
  EXPECT_EQ(fired, 1);
}

TEST(TimerWheel, LongIdleGapFiresEverythingDue) {
  TimePoint t0 = Clock::now();
  TimerWheel w(t0);
  std::vector<int> order;
  std::vector<std::unique_ptr<TimerNode>> nodes;
  for (int i = 0; i < 100; ++i) {
    nodes.push_back(std::make_unique<TimerNode>([&order, i] { order.push_back(i); }));
    w.arm(*nodes.back(), t0 + milliseconds(i * 97));
  }
  w.advance(t0 + milliseconds(60'000));
  EXPECT_EQ(order.size(), 100u);
}

TEST(TimerWheel, CallbacksMayCancelOtherDueTimersAndRearmThemselves) {
  TimePoint t0 = Clock::now();
  TimerWheel w(t0);
  int a = 0, b = 0;
  TimerNode nb([&] { ++b; });
  TimerNode* self = nullptr;
  TimerNode na([&] {
    ++a;
    w.cancel(nb);
    if (a == 1) w.arm(*self, t0 + milliseconds(1000));
  });
  self = &na;
  w.arm(na, t0 + milliseconds(16));
  w.arm(nb, t0 + milliseconds(16));
  w.advance(t0 + milliseconds(40));
  // Due timers fire in the order they were armed: na runs first and cancels nb.
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 0);
  w.advance(t0 + milliseconds(1100));
  EXPECT_GE(a, 1);
}

TEST(TimerWheel, NextTimeoutPointsAtTheEarliestSlot) {
  TimePoint t0 = Clock::now();
  TimerWheel w(t0);
  EXPECT_EQ(w.next_timeout_ms(t0), -1);
  TimerNode n([] {});
  w.arm(n, t0 + milliseconds(300));
  int ms = w.next_timeout_ms(t0);
  EXPECT_GE(ms, 300);
  EXPECT_LE(ms, 300 + TimerWheel::kTick.count());
  w.cancel(n);
  EXPECT_EQ(w.next_timeout_ms(t0), -1);
}

}  // namespace
}  // namespace unbroken::net
