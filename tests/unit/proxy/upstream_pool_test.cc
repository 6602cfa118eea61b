#include "proxy/upstream_pool.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <utility>
#include <vector>

#include "net/tcp_connection.h"

namespace unbroken::proxy {
namespace {

using namespace std::chrono_literals;

TEST(KeepAliveTimeoutTest, ReadsTheTimeoutParameter) {
  struct Case {
    const char* value;
    std::optional<std::chrono::milliseconds> want;
  };
  const std::vector<Case> cases{
      {"timeout=5, max=100", 5s},  {"max=100, timeout=2", 2s},   {"Timeout = 7", 7s}, {"max=3", std::nullopt},
      {"timeout=x", std::nullopt}, {"timeout=-1", std::nullopt}, {"", std::nullopt},
  };
  for (const auto& c : cases) {
    http::HeaderList h;
    if (*c.value) h.add("Keep-Alive", c.value);
    EXPECT_EQ(keep_alive_timeout(h), c.want) << c.value;
  }
}

// Connections over socketpairs: the test holds the application's end of each.
class UpstreamPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto l = net::EventLoop::create();
    ASSERT_TRUE(l);
    loop_ = std::move(*l);
    loop_->run_timers(net::Clock::now());
  }
  std::unique_ptr<net::TcpConnection> connection() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    peers_.emplace_back(fds[1]);
    auto c = std::make_unique<net::TcpConnection>(*loop_, UniqueFd(fds[0]), "app", 64 * 1024);
    EXPECT_TRUE(c->start());
    return c;
  }
  // Runs the loop until `done` holds (checked every millisecond) or a second has passed.
  bool run_until(const std::function<bool()>& done) {
    bool in_time = true;
    auto check = loop_->run_every(1ms, [&] {
      if (done()) loop_->stop();
    });
    auto deadline = loop_->run_after(1000ms, [&] {
      in_time = false;
      loop_->stop();
    });
    loop_->run();
    loop_->cancel_timer(check);
    loop_->cancel_timer(deadline);
    return in_time;
  }
  // Whether the application's end of connection `i` has seen the pool close it (EOF).
  bool closed_by_pool(std::size_t i) {
    char c;
    return ::recv(peers_[i].get(), &c, 1, MSG_DONTWAIT) == 0;
  }

  std::unique_ptr<net::EventLoop> loop_;
  std::vector<UniqueFd> peers_;
  std::atomic<std::int64_t> gauges_[2]{};
};

TEST_F(UpstreamPoolTest, TakesTheNewestParkedConnectionOfTheUpstreamAsked) {
  UpstreamPool pool(*loop_, 2, 4, gauges_);
  auto a = connection(), b = connection(), c = connection();
  auto *pa = a.get(), *pb = b.get();
  pool.park(0, std::move(a), 10s);
  pool.park(0, std::move(b), 10s);
  pool.park(1, std::move(c), 10s);
  EXPECT_EQ(pool.idle(0), 2u);
  EXPECT_EQ(gauges_[0].load(), 2);
  EXPECT_EQ(gauges_[1].load(), 1);
  EXPECT_EQ(pool.take(0).get(), pb);
  EXPECT_EQ(pool.take(0).get(), pa);
  EXPECT_EQ(pool.take(0), nullptr);
  EXPECT_EQ(gauges_[0].load(), 0);
  EXPECT_NE(pool.take(1), nullptr);
}

TEST_F(UpstreamPoolTest, AConnectionTheApplicationClosesLeavesThePoolAtOnce) {
  UpstreamPool pool(*loop_, 1, 4, gauges_);
  pool.park(0, connection(), 10s);
  pool.park(0, connection(), 10s);
  peers_[0].reset();  // the application closes its idle end (gunicorn's keep-alive ran out)
  EXPECT_TRUE(run_until([&] { return pool.idle(0) == 1; }));
  EXPECT_EQ(gauges_[0].load(), 1);
  // Bytes nobody asked for end a parked connection too.
  ASSERT_EQ(::write(peers_[1].get(), "x", 1), 1);
  EXPECT_TRUE(run_until([&] { return pool.idle(0) == 0; }));
}

// Capacity 2: a third and fourth connection are a burst's surplus, kept for a moment; a fifth
// closes the oldest. Then each goes at its own idle timeout.
TEST_F(UpstreamPoolTest, IdleTimeoutsAndTheCapacity) {
  UpstreamPool pool(*loop_, 1, 2, gauges_);
  net::TimePoint t0 = loop_->now();
  pool.park(0, connection(), 1s);
  pool.park(0, connection(), 5s);
  pool.park(0, connection(), 5s);  // surplus: 50 ms
  pool.park(0, connection(), 5s);  // surplus: 50 ms
  EXPECT_EQ(pool.idle(0), 4u);
  pool.park(0, connection(), 5s);  // at twice the capacity: the oldest goes
  EXPECT_EQ(pool.idle(0), 4u);
  EXPECT_TRUE(run_until([&] { return closed_by_pool(0); }));
  loop_->run_timers(t0 + 200ms);  // the surplus (and the fifth, parked past the capacity too)
  EXPECT_EQ(pool.idle(0), 1u);
  EXPECT_EQ(gauges_[0].load(), 1);
  loop_->run_timers(t0 + 6s);
  EXPECT_EQ(pool.idle(0), 0u);
  EXPECT_EQ(gauges_[0].load(), 0);
}

TEST_F(UpstreamPoolTest, NoCapacityClosesWhatIsParked) {
  UpstreamPool pool(*loop_, 1, 0, gauges_);
  pool.park(0, connection(), 1s);
  EXPECT_EQ(pool.idle(0), 0u);
  EXPECT_TRUE(run_until([&] { return closed_by_pool(0); }));
}

}  // namespace
}  // namespace unbroken::proxy
