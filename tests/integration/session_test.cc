// Sessions through the real server: cookies, durability across kill -9, expiry by the sweeper.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "common/redis_server.h"
#include "harness.h"

namespace unbroken::testing {
namespace {

// GET /diag/session with an optional cookie; returns {count, Set-Cookie value}.
std::pair<int, std::string> visit(std::uint16_t port, const std::string& cookie = "") {
  auto r = get(port, "/diag/session", cookie.empty() ? "" : "Cookie: " + cookie + "\r\n");
  if (!r || r->status != 200) return {-1, ""};
  int count = std::atoi(r->body.c_str() + r->body.find(':') + 1);
  return {count, r->headers.count("set-cookie") ? r->headers["set-cookie"] : ""};
}

std::string cookie_pair(const std::string& set_cookie) {
  return set_cookie.substr(0, set_cookie.find(';'));
}

class Sessions : public SharedServerTest {
 protected:
  static void SetUpTestSuite() { start_shared(); }
};

TEST_F(Sessions, CookieCarriesTheSessionAndCountsUp) {
  auto [first, set_cookie] = visit(server_->port());
  EXPECT_EQ(first, 1);
  ASSERT_FALSE(set_cookie.empty());
  EXPECT_NE(set_cookie.find("; HttpOnly"), std::string::npos) << set_cookie;
  EXPECT_NE(set_cookie.find("; SameSite=Lax"), std::string::npos) << set_cookie;
  EXPECT_NE(set_cookie.find("; Path=/"), std::string::npos) << set_cookie;
  std::string id = cookie_pair(set_cookie).substr(std::string("ub_session=").size());
  EXPECT_GE(id.size(), 22u) << "at least 128 bits, URL-safe";
  EXPECT_EQ(id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos);
  std::string cookie = cookie_pair(set_cookie);
  auto [second, again] = visit(server_->port(), cookie);
  EXPECT_EQ(second, 2);
  EXPECT_EQ(again, "") << "an existing session gets no new cookie";
  EXPECT_EQ(visit(server_->port(), "other=1; " + cookie + "; more=2").first, 3);
}

TEST_F(Sessions, UnknownOrMalformedIdsAreNeverTrustedOrEchoed) {
  for (std::string bad : {"ub_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "ub_session=../../etc",
                          "ub_session=<script>", "ub_session="}) {
    auto [count, set_cookie] = visit(server_->port(), bad);
    EXPECT_EQ(count, 1) << bad;
    EXPECT_EQ(set_cookie.find(bad.substr(11).empty() ? "\x01" : bad.substr(11)), std::string::npos) << set_cookie;
  }
}

TEST_F(Sessions, RequestsThatDoNotUseASessionDoNotCreateOne) {
  double created = server_->metric("unbroken_sessions_created_total");
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(get(server_->port(), "/hello.txt"));
  EXPECT_EQ(server_->metric("unbroken_sessions_created_total"), created);
  auto r = get(server_->port(), "/hello.txt");
  EXPECT_EQ(r->headers.count("set-cookie"), 0u);
}

TEST(SessionDurability, AnsweredChangeSurvivesKill9) {
  auto dir = std::filesystem::temp_directory_path() / ("unbroken-durable-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string store = "sqlite:" + (dir / "sessions.db").string();
  std::string cookie;
  {
    auto server = Server::start({{"--session-store", store}});
    auto [count, set_cookie] = visit(server->port());
    ASSERT_EQ(count, 1);
    cookie = cookie_pair(set_cookie);
    ASSERT_EQ(visit(server->port(), cookie).first, 2);  // answered: must survive
    EXPECT_EQ(server->stop(SIGKILL), 128 + SIGKILL);
  }
  auto server = Server::start({{"--session-store", store}});
  EXPECT_EQ(visit(server->port(), cookie).first, 3);
  std::filesystem::remove_all(dir);
}

TEST(SessionExpiry, SweeperExpiresAndTheClientGetsAFreshSession) {
  auto server = Server::start({{"--session-store", "memory", "--session-ttl", "300ms", "--session-sweep", "100ms"}});
  auto [count, set_cookie] = visit(server->port());
  ASSERT_EQ(count, 1);
  // Wait for the sweeper (a deadline, polling a counter: no event to await).
  double expired = 0, active = -1;
  for (int i = 0; i < 100 && (expired < 1 || active != 0); ++i) {
    expired = server->metric("unbroken_sessions_expired_total");
    active = server->metric("unbroken_sessions_active");  // set at the end of the same sweep
    if (expired < 1 || active != 0) std::this_thread::sleep_for(50ms);
  }
  EXPECT_GE(expired, 1);
  EXPECT_EQ(active, 0);
  EXPECT_GE(server->metric("unbroken_session_sweep_seconds_count"), 1);
  auto [after, renewed] = visit(server->port(), cookie_pair(set_cookie));
  EXPECT_EQ(after, 1) << "an expired session is gone: a fresh one starts";
  EXPECT_FALSE(renewed.empty());
  EXPECT_NE(cookie_pair(renewed), cookie_pair(set_cookie));
}

TEST(SessionExpiry, EachUseSlidesTheExpiry) {
  auto server = Server::start({{"--session-store", "memory", "--session-ttl", "600ms", "--session-sweep", "100ms"}});
  auto [count, set_cookie] = visit(server->port());
  std::string cookie = cookie_pair(set_cookie);
  // Five uses 250 ms apart: 1.25 s in all, more than twice the TTL, but never 600 ms without use.
  for (int i = 2; i <= 6; ++i) {
    std::this_thread::sleep_for(250ms);  // the point of the test is the passage of time
    EXPECT_EQ(visit(server->port(), cookie).first, i);
  }
}

}  // namespace
}  // namespace unbroken::testing

namespace unbroken::testing {
namespace {

using testing_support::free_port;
using testing_support::redis_available;
using testing_support::RedisServer;

TEST(RedisSessions, TwoInstancesShareSessions) {
  if (!redis_available()) GTEST_SKIP() << "no redis-server";
  RedisServer redis(free_port());
  auto a = Server::start({{"--session-store", redis.url()}});
  auto b = Server::start({{"--session-store", redis.url()}});
  auto [first, set_cookie] = visit(a->port());
  ASSERT_EQ(first, 1);
  std::string cookie = cookie_pair(set_cookie);
  EXPECT_EQ(visit(b->port(), cookie).first, 2) << "the other instance sees the same session";
  EXPECT_EQ(visit(a->port(), cookie).first, 3);
}

TEST(RedisSessions, RedisDownIsA503ForSessionsOnlyAndTheStoreComesBack) {
  if (!redis_available()) GTEST_SKIP() << "no redis-server";
  int port = free_port();
  auto server = Server::start({{"--session-store", "redis://127.0.0.1:" + std::to_string(port)}});
  auto t0 = std::chrono::steady_clock::now();
  auto r = get(server->port(), "/diag/session");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503) << "Redis is not running yet";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s) << "within a bounded time";
  EXPECT_EQ(get(server->port(), "/hello.txt")->status, 200) << "requests without a session are unaffected";
  EXPECT_GE(server->metric("unbroken_session_store_errors_total{store=\"redis\"}"), 1);

  RedisServer redis(port);
  int count = -1;
  for (int i = 0; i < 50 && count != 1; ++i) {
    count = visit(server->port()).first;
    if (count != 1) std::this_thread::sleep_for(50ms);  // past the store's reconnect back-off
  }
  EXPECT_EQ(count, 1) << "the store reconnected by itself";
}

}  // namespace
}  // namespace unbroken::testing
