// The Redis store against a real redis-server started here on a free port: the shared conformance
// suite, and Redis stopped mid-run and restarted.

#include "session/redis_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "common/redis_server.h"
#include "store_conformance.h"

namespace unbroken::session {
namespace {

using testing_support::free_port;
using testing_support::redis_available;
using testing_support::RedisServer;

using namespace std::chrono_literals;

// One redis-server for the conformance suite; each store gets its own database number.
RedisServer& shared_redis() {
  static RedisServer server(free_port());
  return server;
}

std::unique_ptr<SessionStore> make_redis() {
  if (!redis_available()) {
    // In CI, scripts/install-deps has installed it: its absence is a failure, not a skip.
    if (std::getenv("CI") != nullptr) ADD_FAILURE() << "redis-server is not installed";
    return nullptr;
  }
  static int db = 0;
  auto s = RedisStore::open(shared_redis().url() + "/" + std::to_string(++db % 16));
  return s.ok() ? std::unique_ptr<SessionStore>(std::move(*s)) : nullptr;
}

INSTANTIATE_TEST_SUITE_P(Redis, StoreConformance, ::testing::Values(StoreFactory{"redis", make_redis}),
                         [](const auto& info) { return info.param.name; });

TEST(RedisStore, MalformedUrlsAreRejected) {
  for (const char* bad : {"redis:/x:1", "http://h:1", "redis://h", "redis://h:0", "redis://h:99999", "redis://h:1/x"})
    EXPECT_FALSE(RedisStore::open(bad).ok()) << bad;
  EXPECT_TRUE(RedisStore::open("redis://localhost:6379/2").ok());
}

TEST(RedisStore, StoppedMidRunFailsFastThenRecoversByItself) {
  if (!redis_available()) GTEST_SKIP() << "no redis-server";
  int port = free_port();
  RedisServer redis(port);
  auto store = std::move(*RedisStore::open(redis.url()));
  auto now = Clock::now();
  ASSERT_TRUE(store->save("a", {{{"k", "v"}}, now + 1h}).ok());

  redis.stop();
  for (int i = 0; i < 5; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_FALSE(store->load("a", now).ok()) << "Redis is down";
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s) << "a failure is fast, not a hang";
  }

  redis.start();  // same port, empty (no persistence)
  bool back = false;
  for (int i = 0; i < 50 && !back; ++i) {
    back = store->save("a", {{{"k", "again"}}, now + 1h}).ok();
    if (!back) std::this_thread::sleep_for(50ms);  // past the reconnect back-off
  }
  ASSERT_TRUE(back) << "the same store reconnects by itself";
  auto got = store->load("a", now);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->values.at("k"), "again");
}

}  // namespace
}  // namespace unbroken::session
