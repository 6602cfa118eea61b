// The departure signal's registry: waiting, departed with its outcome, gone when over; departed
// entries expire by age and by count, on an explicit clock; a reused id is its latest request's.
// And the request ids it is keyed by: new ones are 32 hex digits and do not repeat.

#include "proxy/request_registry.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

namespace unbroken::proxy {
namespace {

using State = RequestRegistry::State;
using std::chrono::milliseconds;
const RequestRegistry::Clock::time_point t0{};

TEST(RequestRegistryTest, WaitingDepartedAndOver) {
  RequestRegistry r;
  EXPECT_EQ(r.find("a", t0).state, State::kUnknown);
  auto a = r.add("a");
  auto b = r.add("b");
  EXPECT_EQ(r.find("a", t0).state, State::kWaiting);
  r.depart("a", a, http::Outcome::kClientReset, t0);
  auto found = r.find("a", t0);
  EXPECT_EQ(found.state, State::kDeparted);
  EXPECT_EQ(found.outcome, http::Outcome::kClientReset);
  r.depart("a", a, http::Outcome::kClientClosed, t0);  // the first departure stands
  EXPECT_EQ(r.find("a", t0).outcome, http::Outcome::kClientReset);
  // Over: a departed entry stays (the handler polls on), a waiting one goes.
  r.end("a", a);
  r.end("b", b);
  EXPECT_EQ(r.find("a", t0).state, State::kDeparted);
  EXPECT_EQ(r.find("b", t0).state, State::kUnknown);
  EXPECT_EQ(r.size(), 1u);
}

TEST(RequestRegistryTest, DepartedEntriesExpireByAge) {
  RequestRegistry r({milliseconds{1'000}, 100});
  auto a = r.add("a");
  r.depart("a", a, http::Outcome::kClientClosed, t0);
  auto b = r.add("b");
  r.depart("b", b, http::Outcome::kClientClosed, t0 + milliseconds{500});
  r.end("a", a);
  EXPECT_EQ(r.find("a", t0 + milliseconds{999}).state, State::kDeparted);
  EXPECT_EQ(r.find("a", t0 + milliseconds{1'000}).state, State::kUnknown);
  EXPECT_EQ(r.find("b", t0 + milliseconds{1'000}).state, State::kDeparted);
  EXPECT_EQ(r.find("b", t0 + milliseconds{1'500}).state, State::kUnknown);
  // A waiting request never expires: only its end removes it.
  auto c = r.add("c");
  EXPECT_EQ(r.find("c", t0 + milliseconds{3'600'000}).state, State::kWaiting);
  r.end("c", c);
  EXPECT_EQ(r.size(), 0u);
}

TEST(RequestRegistryTest, DepartedEntriesAreBoundedOldestFirst) {
  // 16 shards, 1 each: the ids of one shard push each other out.
  RequestRegistry r({milliseconds{60'000}, 16});
  std::vector<std::string> ids;
  for (int i = 0; i < 2'000; ++i) {
    std::string id = "id" + std::to_string(i);
    r.depart(id, r.add(id), http::Outcome::kClientClosed, t0 + milliseconds{i});
    ids.push_back(id);
  }
  EXPECT_LE(r.size(), 16u);
  EXPECT_EQ(r.find(ids.back(), t0 + milliseconds{2'000}).state, State::kDeparted);
  EXPECT_EQ(r.find(ids.front(), t0 + milliseconds{2'000}).state, State::kUnknown);
}

TEST(RequestRegistryTest, AReusedIdIsItsLatestRequests) {
  RequestRegistry r({milliseconds{1'000}, 100});
  auto first = r.add("same");
  auto second = r.add("same");
  r.end("same", first);  // the earlier request ends: the later one still waits
  EXPECT_EQ(r.find("same", t0).state, State::kWaiting);
  r.depart("same", first, http::Outcome::kClientClosed, t0);  // nor does its departure count
  EXPECT_EQ(r.find("same", t0).state, State::kWaiting);
  r.depart("same", second, http::Outcome::kTimeout, t0);
  auto third = r.add("same");  // taken again after a departure: waiting, and the old expiry spares it
  EXPECT_EQ(r.find("same", t0 + milliseconds{5'000}).state, State::kWaiting);
  r.end("same", third);
  EXPECT_EQ(r.find("same", t0).state, State::kUnknown);
}

TEST(RequestRegistryTest, SeveralThreadsAtOnce) {
  RequestRegistry r;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&r, t] {
      for (int i = 0; i < 5'000; ++i) {
        std::string id = std::to_string(t) + "-" + std::to_string(i);
        auto ticket = r.add(id);
        if (i % 2 == 0) r.depart(id, ticket, http::Outcome::kClientClosed, t0);
        r.end(id, ticket);
        (void)r.find(id, t0);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(r.size(), 4u * 2'500);
}

TEST(RequestIdTest, NewIdsAre32HexDigitsAndDoNotRepeat) {
  std::set<std::string> seen;
  for (int i = 0; i < 10'000; ++i) {
    std::string id = new_request_id();
    ASSERT_EQ(id.size(), 32u);
    ASSERT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    ASSERT_TRUE(seen.insert(id).second) << id;
  }
  // Another thread has a generator of its own, seeded apart.
  std::string other;
  std::thread([&other] { other = new_request_id(); }).join();
  EXPECT_EQ(seen.count(other), 0u);
}

}  // namespace
}  // namespace unbroken::proxy
