// The balancer and the health of one route's upstreams: round robin and least_conn order, passive
// health (max_fails, fail_timeout, the one probe after it) driven by an explicit clock, and the
// active check against a real loopback listener.

#include "proxy/upstream_group.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "net/listener.h"
#include "net/tcp_connection.h"

namespace unbroken::proxy {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
constexpr std::size_t kNone[1] = {};
const std::span<const std::size_t> kNoneTried(kNone, 0);

// Settings for `n` upstreams on 127.0.0.1:1..n (never connected to by the balancer tests).
std::unique_ptr<ProxySettings> settings(std::size_t n, Balance balance = Balance::kRoundRobin, int max_fails = 3) {
  auto s = std::make_unique<ProxySettings>();
  for (std::size_t i = 0; i < n; ++i) {
    std::string name = "127.0.0.1:" + std::to_string(i + 1);
    s->upstreams.push_back(*net::SocketAddress::parse(name));
    s->names.push_back(name);
  }
  s->balance = balance;
  s->max_fails = max_fails;
  s->fail_timeout = seconds{10};
  return s;
}

// The next `count` picks, each started and ended at once.
std::vector<std::size_t> picks(UpstreamGroup& g, std::size_t count, net::TimePoint now,
                               std::span<const std::size_t> tried = kNoneTried) {
  std::vector<std::size_t> out;
  for (std::size_t k = 0; k < count; ++k) {
    auto i = g.pick(tried, now);
    if (!i) break;
    out.push_back(*i);
  }
  return out;
}

const net::TimePoint t0 = net::Clock::now();

TEST(UpstreamGroupTest, RoundRobinTakesEachInTurn) {
  UpstreamGroup g(*settings(3));
  EXPECT_EQ(picks(g, 7, t0), (std::vector<std::size_t>{0, 1, 2, 0, 1, 2, 0}));
}

TEST(UpstreamGroupTest, TriedOnesAreSkipped) {
  UpstreamGroup g(*settings(3));
  const std::size_t first[] = {0};
  for (std::size_t i : picks(g, 6, t0, first)) EXPECT_NE(i, 0u);
  const std::size_t all[] = {2, 0, 1};
  EXPECT_EQ(g.pick(all, t0), std::nullopt);
}

TEST(UpstreamGroupTest, LeastConnPicksTheLeastLoaded) {
  UpstreamGroup g(*settings(3, Balance::kLeastConn));
  g.started(0);
  g.started(0);
  g.started(1);
  EXPECT_EQ(g.pick(kNoneTried, t0), 2u);
  g.started(2);
  g.started(2);
  EXPECT_EQ(g.pick(kNoneTried, t0), 1u);
  g.ended(0);
  g.ended(0);
  EXPECT_EQ(g.pick(kNoneTried, t0), 0u);
  EXPECT_EQ(g.in_flight(0), 0u);
  EXPECT_EQ(g.in_flight(2), 2u);
  const std::size_t tried[] = {0};
  EXPECT_EQ(g.pick(tried, t0), 1u) << "the least loaded of those not tried";
}

TEST(UpstreamGroupTest, LeastConnTiesGoRoundRobin) {
  UpstreamGroup g(*settings(3, Balance::kLeastConn));
  EXPECT_EQ(picks(g, 6, t0), (std::vector<std::size_t>{0, 1, 2, 0, 1, 2}));
}

TEST(UpstreamGroupTest, MaxFailsInARowTakeItOutThenOneProbeTriesIt) {
  UpstreamGroup g(*settings(3));
  g.failed(1, t0);
  g.failed(1, t0);
  EXPECT_TRUE(g.up(1, t0)) << "two of three";
  g.failed(1, t0);
  EXPECT_FALSE(g.up(1, t0));
  // Its share goes evenly to the others, not all to its neighbour.
  EXPECT_EQ(picks(g, 4, t0), (std::vector<std::size_t>{0, 2, 0, 2}));
  EXPECT_EQ(picks(g, 4, t0 + seconds{9}), (std::vector<std::size_t>{0, 2, 0, 2}));
  // fail_timeout later one request probes it, and only one.
  net::TimePoint later = t0 + seconds{10};
  EXPECT_TRUE(g.up(1, later));
  EXPECT_EQ(g.pick(kNoneTried, later), 1u);
  EXPECT_FALSE(g.up(1, later)) << "its probe is under way";
  for (std::size_t i : picks(g, 4, later + seconds{1})) EXPECT_NE(i, 1u);
  g.succeeded(1);
  EXPECT_TRUE(g.up(1, later));
  std::vector<std::size_t> back = picks(g, 3, later);
  EXPECT_NE(std::find(back.begin(), back.end(), 1u), back.end());
}

TEST(UpstreamGroupTest, AFailedProbeTakesItOutForAnotherFailTimeout) {
  UpstreamGroup g(*settings(2));
  for (int k = 0; k < 3; ++k) g.failed(0, t0);
  net::TimePoint probe = t0 + seconds{10};
  EXPECT_EQ(g.pick(kNoneTried, probe), 0u);
  g.failed(0, probe + seconds{1});
  EXPECT_FALSE(g.up(0, probe + seconds{10}));
  EXPECT_TRUE(g.up(0, probe + seconds{11}));
  EXPECT_EQ(g.pick(kNoneTried, probe + seconds{11}), 0u);
}

TEST(UpstreamGroupTest, AProbeWithoutAVerdictIsRetriedAWindowLater) {
  UpstreamGroup g(*settings(2));
  for (int k = 0; k < 3; ++k) g.failed(0, t0);
  EXPECT_EQ(g.pick(kNoneTried, t0 + seconds{10}), 0u);  // its client leaves: neither verdict comes
  EXPECT_EQ(g.pick(kNoneTried, t0 + seconds{19}), 1u);
  EXPECT_EQ(g.pick(kNoneTried, t0 + seconds{20}), 0u);
}

TEST(UpstreamGroupTest, ASuccessEndsTheRun) {
  UpstreamGroup g(*settings(2));
  g.failed(0, t0);
  g.failed(0, t0);
  g.succeeded(0);
  g.failed(0, t0);
  g.failed(0, t0);
  EXPECT_TRUE(g.up(0, t0));
}

TEST(UpstreamGroupTest, AllDownIsNoneAtOnce) {
  UpstreamGroup g(*settings(2));
  for (int k = 0; k < 3; ++k) {
    g.failed(0, t0);
    g.failed(1, t0);
  }
  EXPECT_EQ(g.pick(kNoneTried, t0), std::nullopt);
  EXPECT_EQ(g.pick(kNoneTried, t0 + seconds{5}), std::nullopt);
  EXPECT_FALSE(g.up(0, t0));
  EXPECT_FALSE(g.up(1, t0));
  UpstreamGroup least(*settings(1, Balance::kLeastConn));
  for (int k = 0; k < 3; ++k) least.failed(0, t0);
  EXPECT_EQ(least.pick(kNoneTried, t0), std::nullopt);
}

TEST(UpstreamGroupTest, MaxFailsZeroNeverTakesOneOut) {
  UpstreamGroup g(*settings(1, Balance::kRoundRobin, 0));
  for (int k = 0; k < 100; ++k) g.failed(0, t0);
  EXPECT_TRUE(g.up(0, t0));
  EXPECT_EQ(g.pick(kNoneTried, t0), 0u);
}

// The threads interleave failures and successes at random, so at times all four upstreams are out
// (three failures in a row on each) and a pick finds none: that is the balancer working, and is
// counted rather than asserted against. What must hold is the in-flight counts.
TEST(UpstreamGroupTest, LoopsSharingItKeepTheCountsRight) {
  UpstreamGroup g(*settings(4, Balance::kLeastConn));
  std::atomic<int> picked{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&g, &picked] {
      for (int k = 0; k < 10'000; ++k) {
        // Past the fail timeout every 100 rounds, so upstreams taken out come back.
        auto i = g.pick(kNoneTried, t0 + seconds{11} * (k / 100));
        if (!i) continue;
        picked.fetch_add(1, std::memory_order_relaxed);
        g.started(*i);
        if (k % 7 == 0) g.failed(*i, t0 + seconds{11} * (k / 100));
        if (k % 3 == 0) g.succeeded(*i);
        g.ended(*i);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_GT(picked.load(), 0);
  for (std::size_t i = 0; i < g.size(); ++i) EXPECT_EQ(g.in_flight(i), 0u);
}

// A loopback HTTP server whose every connection gets one answer with `status`, then a close.
class HealthServer {
 public:
  explicit HealthServer(net::EventLoop& loop) : loop_(loop) {
    auto fd = net::listen_tcp(*net::SocketAddress::parse("127.0.0.1:0"), false);
    EXPECT_TRUE(fd);
    address_ = *net::local_address(fd->get());
    listener_ = std::make_unique<net::Listener>(
        loop_, std::move(*fd),
        [this](UniqueFd c, const net::SocketAddress& peer) {
          auto conn = std::make_unique<Connection>(*this);
          conn->tcp = std::make_unique<net::TcpConnection>(loop_, std::move(c), peer.to_string(), 64 * 1024);
          conn->tcp->set_handler(conn.get());
          EXPECT_TRUE(conn->tcp->start());
          conns_.push_back(std::move(conn));
        },
        [] { return true; }, [](int) {});
    EXPECT_TRUE(listener_->start());
  }
  const net::SocketAddress& address() const { return address_; }
  int status = 500;
  std::vector<std::string> requests;

 private:
  struct Connection : net::TransportHandler {
    explicit Connection(HealthServer& s) : server(s) {}
    void on_data(net::Buffer& in) override {
      head.append(in.readable());
      in.consume(in.size());
      if (head.find("\r\n\r\n") == std::string::npos || answered) return;
      answered = true;
      server.requests.push_back(head);
      tcp->queue("HTTP/1.1 " + std::to_string(server.status) + " X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      [[maybe_unused]] auto r = tcp->flush();
    }
    void on_peer_closed() override { tcp->close(false); }
    void on_transport_error(net::SocketError) override { tcp->close(false); }
    void on_written(std::size_t) override {}
    HealthServer& server;
    std::unique_ptr<net::TcpConnection> tcp;
    std::string head;
    bool answered = false;
  };

  net::EventLoop& loop_;
  net::SocketAddress address_;
  std::unique_ptr<net::Listener> listener_;
  std::vector<std::unique_ptr<Connection>> conns_;
};

// Runs `loop` through `steps` in order, each action once its condition holds (looked at every few
// milliseconds), or until 5 s pass; false on the latter. One run: a stopped loop does not run again.
struct Step {
  std::function<bool()> condition;
  std::function<void()> action = [] {};
};
bool run_steps(net::EventLoop& loop, std::vector<Step> steps) {
  bool in_time = true;
  std::size_t next = 0;
  loop.run_every(milliseconds{2}, [&] {
    while (next < steps.size() && steps[next].condition()) steps[next++].action();
    if (next == steps.size()) loop.stop();
  });
  loop.run_after(milliseconds{5'000}, [&] {
    in_time = false;
    loop.stop();
  });
  loop.run();
  return in_time;
}

TEST(UpstreamGroupTest, TheActiveCheckMarksUpstreamsDownAndUp) {
  auto loop = std::move(*net::EventLoop::create());
  HealthServer server(*loop);
  auto s = std::make_unique<ProxySettings>();
  s->upstreams = {server.address(), *net::SocketAddress::parse("unix:/nonexistent/unbroken-health.sock")};
  s->names = {server.address().to_string(), "unix:/nonexistent/unbroken-health.sock"};
  s->health_path = "/healthz";
  s->health_interval = milliseconds{10};
  UpstreamGroup g(*s);
  ASSERT_TRUE(g.has_health_check());
  EXPECT_TRUE(g.up(0, t0)) << "up until a check says otherwise";
  g.start_health_checks(*loop);
  std::size_t seen = 0;
  bool waited = false;
  auto now = [&] { return loop->now(); };
  ASSERT_TRUE(run_steps(*loop, {
                                   {[&] { return !g.up(0, now()) && !g.up(1, now()); },
                                    [&] {
                                      EXPECT_EQ(g.pick(kNoneTried, now()), std::nullopt)
                                          << "a 500 and a refusal: both down";
                                      // A passing check also ends a run of failures.
                                      for (int k = 0; k < 3; ++k) g.failed(0, now());
                                      server.status = 204;
                                    }},
                                   {[&] { return g.up(0, now()); },
                                    [&] {
                                      EXPECT_EQ(g.pick(kNoneTried, now()), 0u);
                                      EXPECT_FALSE(g.up(1, now()));
                                      server.status = 503;
                                    }},
                                   {[&] { return !g.up(0, now()); },
                                    [&] {
                                      g.stop_health_checks();
                                      seen = server.requests.size();
                                      loop->run_after(milliseconds{30}, [&] { waited = true; });
                                    }},
                                   {[&] { return waited; }},
                               }));
  ASSERT_FALSE(server.requests.empty());
  EXPECT_TRUE(server.requests[0].starts_with("GET /healthz HTTP/1.1\r\n")) << server.requests[0];
  EXPECT_NE(server.requests[0].find("\r\nHost: " + server.address().to_string() + "\r\n"), std::string::npos)
      << server.requests[0];
  EXPECT_LE(server.requests.size(), seen + 1) << "no new round after stop_health_checks()";
}

TEST(UpstreamGroupTest, AnUpstreamThatNeverAnswersFailsItsCheckAtTheDeadline) {
  auto loop = std::move(*net::EventLoop::create());
  // Listening, but nobody accepts or answers: the check's deadline is connect_timeout.
  auto fd = net::listen_tcp(*net::SocketAddress::parse("127.0.0.1:0"), false);
  ASSERT_TRUE(fd);
  net::SocketAddress silent = *net::local_address(fd->get());
  auto s = std::make_unique<ProxySettings>();
  s->upstreams = {silent};
  s->names = {silent.to_string()};
  s->health_path = "/";
  s->health_interval = milliseconds{1'000};
  s->connect_timeout = milliseconds{50};
  UpstreamGroup g(*s);
  g.start_health_checks(*loop);
  ASSERT_TRUE(run_steps(*loop, {{[&] { return !g.up(0, loop->now()); }}}));
  g.stop_health_checks();
}

}  // namespace
}  // namespace unbroken::proxy
