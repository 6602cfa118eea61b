// The SessionStore contract (session/session_store.h), one suite for every store: what a handler can
// rely on, whichever --session-store is chosen.
// The Redis store is added to this suite by its own test file (it needs a redis-server).

#include "session_store_conformance.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

namespace unbroken::session {
namespace {

using namespace std::chrono_literals;

TEST_P(StoreConformance, SaveLoadAndUpdate) {
  auto now = Clock::now();
  SessionValues v{{"count", "1"}, {"user", R"({"name":"ada \"the\" first","ids":[1,2]})"}, {"note", "line\nbreak é"}};
  ASSERT_TRUE(store_->save("sid-1", {v, now + 1h}).ok());
  auto got = store_->load("sid-1", now);
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->values, v);
  v["count"] = "2";
  ASSERT_TRUE(store_->save("sid-1", {v, now + 1h}).ok());
  EXPECT_EQ((*store_->load("sid-1", now))->values.at("count"), "2");
}

TEST_P(StoreConformance, UnknownAndRemovedAreAbsent) {
  auto now = Clock::now();
  EXPECT_FALSE(store_->load("never-saved", now)->has_value());
  ASSERT_TRUE(store_->save("sid-2", {{{"a", "b"}}, now + 1h}).ok());
  ASSERT_TRUE(store_->remove("sid-2").ok());
  EXPECT_FALSE(store_->load("sid-2", now)->has_value());
}

TEST_P(StoreConformance, ExpiredIsAbsentAndTouchExtends) {
  auto now = Clock::now();
  ASSERT_TRUE(store_->save("short", {{{"a", "b"}}, now + 1500ms}).ok());
  ASSERT_TRUE(store_->save("slides", {{{"a", "b"}}, now + 1500ms}).ok());
  ASSERT_TRUE(store_->touch("slides", now + 1h).ok());
  ASSERT_TRUE(store_->touch("unknown", now + 1h).ok());  // ignored
  EXPECT_TRUE(store_->load("short", now)->has_value());
  wait_past(now + 1600ms);
  EXPECT_FALSE(store_->load("short", Clock::now())->has_value());
  EXPECT_TRUE(store_->load("slides", Clock::now())->has_value());
}

TEST_P(StoreConformance, SweepRemovesExpiredInBoundedBatches) {
  auto now = Clock::now();
  for (int i = 0; i < 2500; ++i) ASSERT_TRUE(store_->save("old-" + std::to_string(i), {{{"i", "x"}}, now - 1s}).ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(store_->save("live-" + std::to_string(i), {{{"i", "x"}}, now + 1h}).ok());
  std::uint64_t removed = 0;
  int calls = 0;
  for (;;) {
    auto r = store_->sweep(now, 1000);
    ASSERT_TRUE(r.ok());
    EXPECT_LE(r->removed, 1000u);
    removed += r->removed;
    ++calls;
    if (!r->more) break;
    ASSERT_LT(calls, 10);
  }
  if (!self_expiring()) {
    EXPECT_EQ(removed, 2500u);
    EXPECT_GE(calls, 3);
  }
  EXPECT_EQ(*store_->count_active(now), 10u);
  EXPECT_TRUE(store_->load("live-3", now)->has_value());
}

TEST_P(StoreConformance, ConcurrentUpdatesFromSeveralThreads) {
  auto now = Clock::now();
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::string id = "thread-" + std::to_string(t);
      for (int i = 1; i <= 50; ++i) {
        if (!store_->save(id, {{{"n", std::to_string(i)}}, now + 1h}).ok()) ++errors;
        auto got = store_->load(id, now);
        if (!got.ok() || !got->has_value() || (*got)->values.at("n") != std::to_string(i)) ++errors;
        if (!store_->save("shared", {{{"by", id}}, now + 1h}).ok()) ++errors;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  auto shared = store_->load("shared", now);
  ASSERT_TRUE(shared.ok() && shared->has_value());
  EXPECT_EQ((*shared)->values.at("by").rfind("thread-", 0), 0u);
}

std::string temp_db() {
  static int n = 0;
  auto dir = std::filesystem::temp_directory_path() / ("unbroken-store-" + std::to_string(::getpid()));
  return (dir / ("sessions-" + std::to_string(++n) + ".db")).string();
}

INSTANTIATE_TEST_SUITE_P(
    Embedded, StoreConformance,
    ::testing::Values(StoreFactory{"memory", [] { return std::unique_ptr<SessionStore>(new MemoryStore()); }},
                      StoreFactory{"sqlite",
                                   [] {
                                     auto s = SqliteStore::open(temp_db());
                                     return s.ok() ? std::unique_ptr<SessionStore>(std::move(*s)) : nullptr;
                                   }}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace unbroken::session
