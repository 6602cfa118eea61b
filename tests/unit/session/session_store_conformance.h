#pragma once
// The shared conformance suite for SessionStore implementations: instantiate StoreConformance with
// a factory per store.

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "session/memory_store.h"
#include "session/sqlite_store.h"

namespace unbroken::session {

struct StoreFactory {
  std::string name;
  std::function<std::unique_ptr<SessionStore>()> make;  // nullptr: not available here (skipped)
};

inline void PrintTo(const StoreFactory& f, std::ostream* os) {
  *os << f.name;
}

class StoreConformance : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    store_ = GetParam().make();
    if (!store_) GTEST_SKIP() << GetParam().name << " store not available";
  }
  // Redis expires keys by itself and its sweep removes nothing.
  [[nodiscard]] bool self_expiring() const { return store_->name() == "redis"; }
  // Expiry is checked against the clock: wait until it has passed `t` (a deadline, not an event).
  static void wait_past(Clock::time_point t) {
    while (Clock::now() <= t) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::unique_ptr<SessionStore> store_;
};

}  // namespace unbroken::session
