// The Redis store against a real redis-server started here on a free port (the shared conformance
// suite, Redis specifics, Redis stopped mid-run and restarted), and against sockets that misbehave on
// purpose (nothing listening, a server that never answers, a full backlog, a closed connection).

#include "session/redis_store.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <poll.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <thread>
#include <vector>

#include "common/redis_server.h"
#include "session_store_conformance.h"

namespace unbroken::session {
namespace {

using testing_support::free_port;
using testing_support::redis_available;
using testing_support::RedisServer;

using namespace std::chrono_literals;
using std::chrono::steady_clock;

// Absent redis-server is a skip on a developer's machine, a failure in CI (install-deps installs it).
bool redis_or_skip_reason(std::string* why) {
  if (redis_available()) return true;
  if (std::getenv("CI") != nullptr) ADD_FAILURE() << "redis-server is not installed (scripts/install-deps)";
  *why = "no /usr/bin/redis-server";
  return false;
}

// Polls `done` until it holds or `limit` passes: a deadline, not a guess of how long it takes.
template <typename F>
bool eventually(F done, std::chrono::milliseconds limit = 3s) {
  auto deadline = steady_clock::now() + limit;
  while (!done()) {
    if (steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

std::int64_t unix_ms(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

Clock::time_point to_ms_precision(Clock::time_point t) {
  return std::chrono::time_point_cast<std::chrono::milliseconds>(t);
}

// ---- the shared conformance suite: one redis-server, each store in its own database ----

RedisServer& shared_redis() {
  static RedisServer server(free_port());
  return server;
}

std::unique_ptr<SessionStore> make_redis() {
  std::string why;
  if (!redis_or_skip_reason(&why)) return nullptr;
  static int db = 0;
  auto s = RedisStore::open(shared_redis().url() + "/" + std::to_string(++db % 16));
  return s.ok() ? std::unique_ptr<SessionStore>(std::move(*s)) : nullptr;
}

INSTANTIATE_TEST_SUITE_P(Redis, StoreConformance, ::testing::Values(StoreFactory{"redis", make_redis}),
                         [](const auto& info) { return info.param.name; });

// ---- against a redis-server of the test's own ----

class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!redis_or_skip_reason(&why)) GTEST_SKIP() << why;
    port_ = free_port();
    redis_ = std::make_unique<RedisServer>(port_);
    auto s = RedisStore::open(url());
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    redis_.reset();  // SIGKILL and reap this test's redis-server, by its pid
  }
  [[nodiscard]] std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

  // A command on a connection of the test's own, to look at what the store wrote.
  struct FreeReply {
    void operator()(redisReply* r) const { freeReplyObject(r); }
  };
  std::unique_ptr<redisReply, FreeReply> raw(std::vector<std::string> args) {
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, timeval{2, 0});
    EXPECT_TRUE(c != nullptr && c->err == 0);
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
    redisFree(c);
    EXPECT_NE(r, nullptr);
    return std::unique_ptr<redisReply, FreeReply>(r);
  }
  long long raw_int(std::vector<std::string> args) {
    auto r = raw(std::move(args));
    EXPECT_EQ(r->type, REDIS_REPLY_INTEGER);
    return r->integer;
  }

  int port_ = 0;
  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<RedisStore> store_;
};

TEST_F(RedisStoreTest, RoundTripsAwkwardValuesAsOneJsonObject) {
  auto expires = to_ms_precision(Clock::now() + 1h);
  SessionValues v{
      {"quote", R"(she said "hi")"},
      {"backslash", R"(C:\path\to\ and \\ and \u0041 and \")"},
      {"lines", "one\ntwo\r\nthree\tand a tab"},
      {"control", std::string("nul:\0 bell:\a esc:\x1b del:\x7f", 24)},
      {"utf8", "é, 日本語, 🙂, \u2028 and \u2029"},
      {"json", R"({"user":{"name":"ada \"the\" first","ids":[1,2,3],"ok":true,"x":null}})"},
      {"", "empty key"},
      {"empty", ""},
      {"ключ \"🔑\"", "a non-ASCII key"},
      {"big", std::string(100'000, 'x')},
  };
  const std::string id = "awkward id: \"quotes\" \\ é";
  ASSERT_TRUE(store_->save(id, {v, expires}).ok());

  auto got = store_->load(id, Clock::now());
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->values, v);
  EXPECT_EQ((*got)->expires_at, expires) << "Redis' absolute expiry, to the millisecond";

  // What other tools see: one JSON object of strings under ub:sess:<id>, with the TTL on the key.
  auto stored = raw({"GET", "ub:sess:" + id});
  ASSERT_EQ(stored->type, REDIS_REPLY_STRING);
  simdjson::dom::parser parser;
  simdjson::dom::object obj;
  ASSERT_EQ(parser.parse(stored->str, stored->len).get_object().get(obj), simdjson::SUCCESS);
  EXPECT_EQ(obj.size(), v.size());
  EXPECT_EQ(raw_int({"PEXPIRETIME", "ub:sess:" + id}), unix_ms(expires));
}

TEST_F(RedisStoreTest, ReplacingASessionReplacesValuesAndExpiry) {
  auto now = Clock::now();
  ASSERT_TRUE(store_->save("s", {{{"a", "1"}, {"b", "2"}}, now + 1h}).ok());
  ASSERT_TRUE(store_->save("s", {{{"a", "3"}}, to_ms_precision(now + 2h)}).ok());
  auto got = store_->load("s", now);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->values, (SessionValues{{"a", "3"}}));
  EXPECT_EQ((*got)->expires_at, to_ms_precision(now + 2h));
}

TEST_F(RedisStoreTest, NonUtf8IsRefusedRatherThanSilentlyLost) {
  auto now = Clock::now();
  ASSERT_TRUE(store_->save("s", {{{"a", "kept"}}, now + 1h}).ok());
  auto r = store_->save("s", {{{"a", "\xff\xfe not UTF-8"}}, now + 1h});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, EINVAL);
  EXPECT_EQ((*store_->load("s", now))->values.at("a"), "kept");
}

TEST_F(RedisStoreTest, TouchExtendsExpiryAndIgnoresUnknownIds) {
  auto now = Clock::now();
  ASSERT_TRUE(store_->save("s", {{{"a", "b"}}, now + 2s}).ok());
  auto later = to_ms_precision(now + 1h);
  ASSERT_TRUE(store_->touch("s", later).ok());
  auto got = store_->load("s", now);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->expires_at, later);
  EXPECT_GT(raw_int({"PTTL", "ub:sess:s"}), 59 * 60 * 1000) << "the TTL is Redis' own";
  EXPECT_EQ((*got)->values.at("a"), "b") << "contents unchanged";

  ASSERT_TRUE(store_->touch("unknown", later).ok());
  EXPECT_EQ(raw_int({"EXISTS", "ub:sess:unknown"}), 0) << "touch does not create a session";
}

TEST_F(RedisStoreTest, ShortTtlIsExpiredByRedisItself) {
  auto now = Clock::now();
  ASSERT_TRUE(store_->save("short", {{{"a", "b"}}, now + 300ms}).ok());
  ASSERT_TRUE(store_->save("long", {{{"a", "b"}}, now + 1h}).ok());
  EXPECT_TRUE(store_->load("short", now)->has_value());
  // Asked with the clock of the moment: absent once Redis has expired it.
  EXPECT_TRUE(eventually([&] {
    auto got = store_->load("short", Clock::now());
    return got.ok() && !got->has_value();
  }));
  // The store's own check may see the deadline a millisecond before Redis' clock does; Redis
  // itself must drop the key soon after, without anyone deleting it.
  EXPECT_TRUE(eventually([&] { return raw_int({"EXISTS", "ub:sess:short"}) == 0; }))
      << "Redis dropped the key, not just the store's check";
  EXPECT_TRUE(store_->load("long", Clock::now())->has_value());

  // A caller whose clock is ahead of Redis' sees the session as expired, as with every store.
  EXPECT_FALSE(store_->load("long", now + 2h)->has_value());
  // Saved already expired: absent at once.
  ASSERT_TRUE(store_->save("past", {{{"a", "b"}}, now - 1s}).ok());
  EXPECT_FALSE(store_->load("past", now)->has_value());
  EXPECT_EQ(raw_int({"EXISTS", "ub:sess:past"}), 0);
}

TEST_F(RedisStoreTest, RemoveDeletesAndIgnoresUnknownIds) {
  auto now = Clock::now();
  ASSERT_TRUE(store_->save("s", {{{"a", "b"}}, now + 1h}).ok());
  ASSERT_TRUE(store_->remove("s").ok());
  EXPECT_FALSE(store_->load("s", now)->has_value());
  EXPECT_EQ(raw_int({"EXISTS", "ub:sess:s"}), 0);
  EXPECT_TRUE(store_->remove("s").ok());
  EXPECT_TRUE(store_->remove("never-saved").ok());
}

TEST_F(RedisStoreTest, CountActiveCountsSessionKeysOverSeveralScanSteps) {
  auto now = Clock::now();
  EXPECT_EQ(*store_->count_active(now), 0u);
  for (int i = 0; i < 2500; ++i) ASSERT_TRUE(store_->save("s" + std::to_string(i), {{{"i", "x"}}, now + 1h}).ok());
  raw({"SET", "someone-else:1", "x"});
  raw({"SET", "ub:other", "x"});
  EXPECT_EQ(*store_->count_active(now), 2500u) << "more keys than one SCAN COUNT 1000 step; only ub:sess:*";
  for (int i = 0; i < 500; ++i) ASSERT_TRUE(store_->remove("s" + std::to_string(i)).ok());
  EXPECT_EQ(*store_->count_active(now), 2000u);
}

TEST_F(RedisStoreTest, SweepRemovesNothing) {
  auto now = Clock::now();
  ASSERT_TRUE(store_->save("s", {{{"a", "b"}}, now + 1h}).ok());
  auto r = store_->sweep(now + 2h, 1000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->removed, 0u);
  EXPECT_FALSE(r->more);
  EXPECT_EQ(raw_int({"EXISTS", "ub:sess:s"}), 1);
}

TEST_F(RedisStoreTest, UsesTheDatabaseOfTheUrl) {
  auto in_db3 = std::move(*RedisStore::open(url() + "/3"));
  ASSERT_TRUE(in_db3->save("s", {{{"a", "b"}}, Clock::now() + 1h}).ok());
  EXPECT_EQ(raw_int({"EXISTS", "ub:sess:s"}), 0) << "not in database 0";
  EXPECT_EQ(*in_db3->count_active(Clock::now()), 1u);
  EXPECT_EQ(*store_->count_active(Clock::now()), 0u);

  auto no_such_db = std::move(*RedisStore::open(url() + "/99"));  // redis has 16 by default
  auto r = no_such_db->load("s", Clock::now());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, EIO);
}

template <typename T>
Errno error_of(const Result<T>& r) {
  return r.ok() ? Errno{} : r.error();
}

// Every kind of call while Redis is down: each fails, each fast. Returns the slowest call.
steady_clock::duration calls_while_down(SessionStore& store, std::chrono::milliseconds for_how_long) {
  steady_clock::duration slowest{};
  auto until = steady_clock::now() + for_how_long;
  int calls = 0;
  while (steady_clock::now() < until) {
    auto now = Clock::now();
    StoredSession session{{{"k", "v"}}, now + 1h};
    std::vector<std::pair<const char*, std::function<Errno()>>> ops = {
        {"load", [&] { return error_of(store.load("a", now)); }},
        {"save", [&] { return error_of(store.save("a", session)); }},
        {"touch", [&] { return error_of(store.touch("a", now + 1h)); }},
        {"remove", [&] { return error_of(store.remove("a")); }},
        {"count_active", [&] { return error_of(store.count_active(now)); }},
    };
    for (auto& [what, op] : ops) {
      auto t0 = steady_clock::now();
      Errno e = op();
      auto took = steady_clock::now() - t0;
      slowest = std::max(slowest, took);
      ++calls;
      EXPECT_NE(e.code, 0) << what << " succeeded while Redis is down";
      EXPECT_TRUE(e.code == ECONNREFUSED || e.code == EIO) << what << ": " << e.message();
      EXPECT_LT(took, 1s) << what << ": a failure is fast, not a hang";
    }
    std::this_thread::sleep_for(15ms);  // spread the calls over several back-off periods
  }
  EXPECT_GT(calls, 20);
  return slowest;
}

TEST_F(RedisStoreTest, StoppedMidRunFailsFastThenRecoversByItself) {
  auto now = Clock::now();
  ASSERT_TRUE(store_->save("a", {{{"k", "v"}}, now + 1h}).ok());

  redis_->stop();
  auto slowest = calls_while_down(*store_, 500ms);
  RecordProperty("slowest_call_while_down_us",
                 static_cast<int>(std::chrono::duration_cast<std::chrono::microseconds>(slowest).count()));

  redis_->start();  // same port, empty (no persistence)
  auto save_again = [&] { return store_->save("b", {{{"k", "again"}}, now + 1h}).ok(); };
  ASSERT_TRUE(eventually(save_again)) << "the same store reconnects by itself";
  auto got = store_->load("b", now);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->values.at("k"), "again");
  EXPECT_FALSE(store_->load("a", now)->has_value()) << "a new, empty redis-server";
}

TEST_F(RedisStoreTest, RedisRestartedBetweenCallsIsInvisible) {
  auto now = Clock::now();
  ASSERT_TRUE(store_->save("a", {{{"k", "v"}}, now + 1h}).ok());
  redis_->stop();
  redis_->start();  // the store's connection is now closed by a server that no longer exists
  EXPECT_TRUE(store_->save("a", {{{"k", "w"}}, now + 1h}).ok()) << "one retry on a new connection";
  EXPECT_TRUE(store_->load("a", now)->has_value());
}

// ---- against sockets that misbehave ----

// A loopback listener that accepts only when asked and never answers.
class SilentListener {
 public:
  explicit SilentListener(int backlog, int port = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(fd_, backlog) == 0;
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~SilentListener() {
    for (int c : accepted_) ::close(c);
    ::close(fd_);
  }
  [[nodiscard]] bool bound() const { return bound_; }
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  // Connections completed since the last call (accepted and kept open, never answered).
  int take_connections() {
    int n = 0;
    pollfd p{fd_, POLLIN, 0};
    while (::poll(&p, 1, 0) == 1) {
      accepted_.push_back(::accept(fd_, nullptr, nullptr));
      ++n;
    }
    return n;
  }
  [[nodiscard]] int fd() const { return fd_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  bool bound_ = false;
  std::vector<int> accepted_;
};

TEST(RedisStore, MalformedUrlsAreRejected) {
  for (const char* bad : {"", "redis:/x:1", "http://h:1", "redis://h", "redis://:6379", "redis://h:", "redis://h:0",
                          "redis://h:99999", "redis://h:1x", "redis://h:1/x", "redis://h:1/-1", "redis://h:1/1/2",
                          "redis://user:pw@h:1", "redis://::1:6379", "redis://[::1:6379", "redis://h:1?db=2"}) {
    auto r = RedisStore::open(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, EINVAL) << bad;
  }
  for (const char* good : {"redis://localhost:6379", "redis://127.0.0.1:6379/2", "redis://[::1]:6379/0",
                           "redis://redis.internal:6380/", "redis://h:1/15"}) {
    EXPECT_TRUE(RedisStore::open(good).ok()) << good;
  }
}

TEST(RedisStore, OpensWhileRedisIsDown) {
  auto s = RedisStore::open("redis://127.0.0.1:" + std::to_string(free_port()));
  ASSERT_TRUE(s.ok()) << "no connection at open: unbroken starts without Redis";
  EXPECT_EQ((*s)->name(), "redis");
}

TEST(RedisStore, NothingListeningFailsFastAndBacksOffBeforeTheNextAttempt) {
  int port = free_port();
  auto store = std::move(*RedisStore::open("redis://127.0.0.1:" + std::to_string(port), 200ms));
  auto t0 = steady_clock::now();
  auto r = store->load("a", Clock::now());
  auto failed_at = steady_clock::now();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ECONNREFUSED);
  EXPECT_LT(failed_at - t0, 200ms);

  // Something listens now, but within the back-off the store does not even try.
  SilentListener listener(16, port);
  ASSERT_TRUE(listener.bound()) << "port " << port << " was taken meanwhile";
  r = store->load("a", Clock::now());
  if (steady_clock::now() < failed_at + RedisStore::kReconnectBackoff) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ECONNREFUSED);
    EXPECT_EQ(listener.take_connections(), 0) << "no connection attempt within the back-off";
  }

  // After it, one attempt: it connects, then the command times out on a server that never answers.
  std::this_thread::sleep_until(failed_at + RedisStore::kReconnectBackoff + 10ms);
  r = store->load("a", Clock::now());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ETIMEDOUT);
  EXPECT_EQ(listener.take_connections(), 1);
}

TEST(RedisStore, ServerThatNeverAnswersTimesOutAndTheNextCallReconnects) {
  SilentListener listener(16);
  ASSERT_TRUE(listener.bound());
  auto store = std::move(*RedisStore::open(listener.url(), 200ms));
  for (int i = 0; i < 3; ++i) {
    auto t0 = steady_clock::now();
    auto r = store->save("a", {{{"k", "v"}}, Clock::now() + 1h});
    auto took = steady_clock::now() - t0;
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ETIMEDOUT);
    EXPECT_GE(took, 150ms);
    EXPECT_LT(took, 1s);
    EXPECT_EQ(listener.take_connections(), 1) << "a timed-out connection is dropped, the next call reconnects";
  }
}

TEST(RedisStore, ConnectTimesOutOnAFullBacklog) {
  // listen(fd, 0) queues one connection; once it is taken, the kernel drops further SYNs, and the
  // client would only retransmit after a second: the connect timeout must end the wait first.
  SilentListener listener(0);
  ASSERT_TRUE(listener.bound());
  std::vector<int> fillers;
  for (int i = 0; i < 2; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(listener.port()));
    (void)::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    fillers.push_back(fd);
  }
  auto store = std::move(*RedisStore::open(listener.url(), 200ms));
  auto t0 = steady_clock::now();
  auto r = store->load("a", Clock::now());
  auto failed_at = steady_clock::now();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ETIMEDOUT);
  EXPECT_GE(failed_at - t0, 150ms);
  EXPECT_LT(failed_at - t0, 1s);
  // And then the back-off: no second attempt for a while, ECONNREFUSED at once.
  r = store->load("a", Clock::now());
  if (steady_clock::now() < failed_at + RedisStore::kReconnectBackoff) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ECONNREFUSED);
  }
  for (int fd : fillers) ::close(fd);
}

TEST(RedisStore, WriteToAConnectionRedisClosedRaisesNoSigpipe) {
  // hiredis writes with write(2). Once Redis has closed the connection (FIN), a large command's first
  // write draws a reset and the second raises SIGPIPE, whose default action ends the process. The
  // store blocks it for the call: this test binary, unlike serve, does not ignore SIGPIPE.
  auto listener = std::make_unique<SilentListener>(16);
  ASSERT_TRUE(listener->bound());
  std::thread server([fd = listener->fd()] {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return;
    int c = ::accept(fd, nullptr, nullptr);
    std::string request;
    char buf[4096];
    while (request.find("PEXPIRETIME") == std::string::npos) {
      ssize_t n = ::read(c, buf, sizeof buf);
      if (n <= 0) break;
      request.append(buf, static_cast<std::size_t>(n));
    }
    const char reply[] = "$-1\r\n:-2\r\n";  // GET: nil, PEXPIRETIME: no such key
    (void)::write(c, reply, sizeof reply - 1);
    ::close(c);  // FIN: the store's connection is now half-closed
  });
  auto store = std::move(*RedisStore::open(listener->url(), 300ms));
  auto first = store->load("a", Clock::now());
  server.join();
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->has_value());
  listener.reset();  // the retry on a new connection is refused

  auto r = store->save("a", {{{"big", std::string(4 << 20, 'x')}}, Clock::now() + 1h});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().code == ECONNREFUSED || r.error().code == EIO) << r.error().message();
}

}  // namespace
}  // namespace unbroken::session
