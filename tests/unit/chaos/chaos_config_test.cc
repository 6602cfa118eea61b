#include "chaos/chaos_config.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace unbroken::chaos {
namespace {

TEST(ChaosUrl, ParsesHostPortAndPath) {
  Target t = parse_url("http://127.0.0.1:8080/diag/bytes/13?x=1");
  EXPECT_EQ(t.address.to_string(), "127.0.0.1:8080");
  EXPECT_EQ(t.host, "127.0.0.1:8080");
  EXPECT_EQ(t.path, "/diag/bytes/13?x=1");
  Target d = parse_url("http://127.0.0.1");
  EXPECT_EQ(d.address.port(), 80);
  EXPECT_EQ(d.path, "/");
  EXPECT_EQ(parse_url("http://[::1]:9000/").address.to_string(), "[::1]:9000");
}

TEST(ChaosUrl, RejectsWhatItCannotTarget) {
  for (const char* bad : {"https://127.0.0.1/", "127.0.0.1:80", "http://", "http:///x", "http://127.0.0.1:99999/",
                          "http://127.0.0.1:80/a b"}) {
    EXPECT_THROW(parse_url(bad), ChaosError) << bad;
  }
}

TEST(ChaosMix, WeightsByKindAndOneLineErrors) {
  auto w = parse_mix("good=3,slowloris=1.5,idle");
  EXPECT_EQ(w[static_cast<std::size_t>(Kind::kGood)], 3);
  EXPECT_EQ(w[static_cast<std::size_t>(Kind::kSlowloris)], 1.5);
  EXPECT_EQ(w[static_cast<std::size_t>(Kind::kIdle)], 1);
  EXPECT_EQ(w[static_cast<std::size_t>(Kind::kStall)], 0);
  try {
    parse_mix("good=1,slowlorris=2");
    FAIL() << "accepted an unknown kind";
  } catch (const ChaosError& e) {
    EXPECT_NE(std::string(e.what()).find("'slowlorris'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_mix("good=-1"), ChaosError);
  EXPECT_THROW(parse_mix("good=x"), ChaosError);
  EXPECT_THROW(parse_mix("good=0"), ChaosError);
}

TEST(ChaosMix, EveryKindWithAWeightGetsAClientAndTheTotalIsExact) {
  auto kinds = assign_clients(parse_mix("good=90,idle=1,stall=1"), 10);
  ASSERT_EQ(kinds.size(), 10u);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), Kind::kIdle), 1);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), Kind::kStall), 1);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), Kind::kGood), 8);
  auto even = assign_clients(parse_mix("good=1,slowloris=1"), 7);
  EXPECT_EQ(std::count(even.begin(), even.end(), Kind::kGood) + std::count(even.begin(), even.end(), Kind::kSlowloris),
            7);
}

TEST(ChaosKinds, NamesRoundTrip) {
  for (std::size_t i = 0; i < kKindCount; ++i) {
    auto k = static_cast<Kind>(i);
    EXPECT_EQ(parse_kind(name(k)), k);
    EXPECT_FALSE(describe(k).empty());
  }
}

}  // namespace
}  // namespace unbroken::chaos
