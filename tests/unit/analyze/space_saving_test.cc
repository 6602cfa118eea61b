// Space-Saving's guarantees: exact below capacity; beyond it every heavy hitter is held and every
// count overestimates by at most its error, which is at most N/k.

#include "analyze/space_saving.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "analyze/analyzer.h"

namespace unbroken::analyze {
namespace {

TEST(SpaceSaving, ExactWhileKeysFit) {
  SpaceSaving<KeyStats> s(8);
  for (int i = 0; i < 100; ++i) s.add("k" + std::to_string(i % 5)).requests++;
  EXPECT_EQ(s.max_error(), 0u);
  for (const auto& c : s.counters()) {
    EXPECT_EQ(c.count, 20u);
    EXPECT_EQ(c.error, 0u);
    EXPECT_EQ(c.aux.requests, 20u);
  }
}

TEST(SpaceSaving, HeavyHittersSurviveAMillionDistinctKeys) {
  constexpr std::size_t k = 64;
  SpaceSaving<Empty> s(k);
  std::map<std::string, std::uint64_t> truth;
  std::mt19937 rng(1);
  std::uint64_t n = 0;
  // Three heavy keys amid a long tail of keys seen once.
  for (int i = 0; i < 1'000'000; ++i) {
    std::string key;
    int r = static_cast<int>(rng() % 100);
    if (r < 10)
      key = "heavy-a";
    else if (r < 15)
      key = "heavy-b";
    else if (r < 17)
      key = "heavy-c";
    else
      key = "tail-" + std::to_string(i);
    if (key.starts_with("heavy")) ++truth[key];
    s.add(key);
    ++n;
  }
  EXPECT_EQ(s.total(), n);
  EXPECT_LE(s.max_error(), n / k);
  EXPECT_EQ(s.counters().size(), k);
  // Every eviction removed its key from the index: no key is held twice, and the counts add up.
  std::set<std::string> keys;
  std::uint64_t sum = 0;
  for (const auto& c : s.counters()) {
    EXPECT_TRUE(keys.insert(c.key).second) << c.key;
    sum += c.count;
  }
  EXPECT_EQ(sum, n);
  auto top = s.top(3, [](const auto& c) { return c.count; });
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0]->key, "heavy-a");
  EXPECT_EQ(top[1]->key, "heavy-b");
  EXPECT_EQ(top[2]->key, "heavy-c");
  for (const auto* c : top) {
    EXPECT_GE(c->count, truth[c->key]);
    EXPECT_LE(c->count - c->error, truth[c->key]);
    EXPECT_LE(c->error, n / k);
  }
}

}  // namespace
}  // namespace unbroken::analyze
