#include "net/tcp_connection.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/listener.h"

namespace unbroken::net {
namespace {

using std::chrono::milliseconds;
constexpr std::size_t kMaxBuffered = 64 * 1024;
constexpr milliseconds kDeadline{5000};  // a test that gets here has failed

// Records what a transport reports; `changed` runs after each event so a test can stop the loop.
struct Recorder : TransportHandler {
  void on_data(Buffer& in) override {
    data.append(in.readable());
    in.consume(in.size());
    changed();
  }
  void on_peer_closed() override {
    events.push_back("peer_closed");
    if (on_peer_closed_seen) on_peer_closed_seen();
    changed();
  }
  void on_transport_error(SocketError e) override {
    error = e;
    events.push_back("error");
    changed();
  }
  void on_written(std::size_t n) override {
    written += n;
    if (loop != nullptr) per_turn[loop->turn()] += n;
    changed();
  }
  void on_connected() override {
    events.push_back("connected");
    if (on_connect) on_connect();
    changed();
  }
  std::vector<std::string> events;
  std::optional<SocketError> error;
  std::string data;
  std::size_t written = 0;
  const EventLoop* loop = nullptr;                // when set, on_written's counts by turn:
  std::map<std::uint64_t, std::size_t> per_turn;  // turn -> bytes
  std::function<void()> on_connect;
  std::function<void()> on_peer_closed_seen;
  std::function<void()> changed = [] {};
};

// A real loop and, when asked, a listener whose accepted connection answers "ping" with "pong".
class TcpConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto l = EventLoop::create();
    ASSERT_TRUE(l);
    loop_ = std::move(*l);
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::string temp_dir() {
    char tmpl[] = "/tmp/ub-tcpconn-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    return dir_;
  }

  SocketAddress serve(const std::string& spec, int backlog = 1024) {
    auto fd = listen_tcp(*SocketAddress::parse(spec), false, backlog);
    EXPECT_TRUE(fd) << spec;
    SocketAddress bound = *local_address(fd->get());
    listener_ = std::make_unique<Listener>(
        *loop_, std::move(*fd),
        [this](UniqueFd c, const SocketAddress& peer) {
          auto conn = std::make_unique<TcpConnection>(*loop_, std::move(c), peer.to_string(), kMaxBuffered);
          server_.changed = [this] {
            if (server_.data == "ping" && !answered_) {
              answered_ = true;
              accepted_.back()->queue("pong");
              [[maybe_unused]] auto r = accepted_.back()->flush();
            }
          };
          conn->set_handler(&server_);
          EXPECT_TRUE(conn->start());
          accepted_.push_back(std::move(conn));
        },
        [] { return true; }, [](int) {});
    EXPECT_TRUE(listener_->start());
    return bound;
  }

  std::unique_ptr<TcpConnection> connect(const SocketAddress& to, Recorder& handler, milliseconds timeout = kDeadline) {
    auto c = TcpConnection::connect(*loop_, to, kMaxBuffered, timeout);
    c->set_handler(&handler);
    return c;
  }

  // Runs the loop until done() holds after an event of one of `watched`; false when the deadline
  // came first.
  bool run_until(std::vector<Recorder*> watched, const std::function<bool()>& done) {
    bool in_time = true;
    for (Recorder* r : watched) {
      r->changed = [this, &done] {
        if (done()) loop_->stop();
      };
    }
    loop_->run_after(kDeadline, [&] {
      in_time = false;
      loop_->stop();
    });
    loop_->run();
    return in_time;
  }

  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<Listener> listener_;
  std::vector<std::unique_ptr<TcpConnection>> accepted_;
  Recorder server_;
  bool answered_ = false;  // "pong" once, not again at every later event
  std::string dir_;
};

struct Place {
  const char* name;
  bool unix_socket;
};

class ConnectsTo : public TcpConnectionTest, public ::testing::WithParamInterface<Place> {
 protected:
  // A connection to a fresh listener of the parameter's kind.
  std::unique_ptr<TcpConnection> connect_to_server() {
    to_ = serve(GetParam().unix_socket ? "unix:" + temp_dir() + "/app.sock" : "127.0.0.1:0");
    return connect(to_, client_);
  }
  bool run_until_pong() {
    return run_until({&client_}, [&] { return client_.data == "pong" || client_.error; });
  }
  SocketAddress to_;
  Recorder client_;
};

TEST_P(ConnectsTo, ReportsConnectedThenExchangesBytesBothWays) {
  auto c = connect_to_server();
  EXPECT_TRUE(c->connecting());
  EXPECT_EQ(c->peer(), to_.to_string());
  client_.on_connect = [&] {
    EXPECT_FALSE(c->connecting());
    c->queue("ping");
    auto r = c->flush();
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, 4u);
  };
  ASSERT_TRUE(run_until_pong());
  EXPECT_EQ(client_.events, std::vector<std::string>{"connected"});
  EXPECT_EQ(server_.data, "ping");
  EXPECT_EQ(client_.data, "pong");
}

TEST_P(ConnectsTo, OutputQueuedWhileConnectingIsSentOnceConnected) {
  auto c = connect_to_server();
  c->queue("pi");
  auto r = c->flush();  // held: nothing leaves before the connection exists
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 0u);
  c->queue("ng");
  EXPECT_EQ(c->queued_bytes(), 4u);
  ASSERT_TRUE(run_until_pong());
  EXPECT_EQ(client_.events, std::vector<std::string>{"connected"});
  EXPECT_EQ(server_.data, "ping");
  EXPECT_EQ(client_.written, 4u);
  EXPECT_EQ(c->queued_bytes(), 0u);
}

TEST_P(ConnectsTo, AShutdownWhileConnectingFollowsTheHeldOutput) {
  auto c = connect_to_server();
  c->queue("ping");
  c->shutdown_write();
  // One thread and a loopback peer: the FIN is queued behind "ping" before the server's next
  // poll, so the server reads both in the turn in which it answers.
  EXPECT_TRUE(run_until_pong());
  EXPECT_EQ(client_.data, "pong");
  EXPECT_EQ(server_.data, "ping");
  EXPECT_EQ(server_.events, std::vector<std::string>{"peer_closed"});
  EXPECT_EQ(client_.events, std::vector<std::string>{"connected"});
}

TEST_P(ConnectsTo, AShutdownWhileConnectingWaitsForAllTheHeldOutput) {
  // More than the socket buffers take in one flush: the FIN must wait for the last byte, or the
  // tail is lost (EPIPE after our own FIN).
  const std::string big(4 << 20, 'x');
  auto c = connect_to_server();
  c->queue(big);
  c->shutdown_write();
  // (The accepted side's `changed` is its pong logic: its FIN stops the loop directly.)
  server_.on_peer_closed_seen = [&] { loop_->stop(); };
  EXPECT_TRUE(run_until({&client_}, [&] { return client_.error.has_value(); }));
  EXPECT_FALSE(client_.error);
  EXPECT_EQ(server_.data.size(), big.size());
  EXPECT_EQ(client_.written, big.size());
}

INSTANTIATE_TEST_SUITE_P(TcpAndUnix, ConnectsTo, ::testing::Values(Place{"tcp", false}, Place{"unix", true}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST_F(TcpConnectionTest, AConnectThatFailsReportsWhatFailed) {
  SocketAddress closed_port;
  {
    auto fd = listen_tcp(*SocketAddress::parse("127.0.0.1:0"), false);
    ASSERT_TRUE(fd);
    closed_port = *local_address(fd->get());
  }
  // A socket file nobody listens on any more: connect() says ECONNREFUSED at once.
  std::string dir = temp_dir();
  SocketAddress stale = *SocketAddress::parse("unix:" + dir + "/stale.sock");
  {
    UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_EQ(::bind(s.get(), stale.get(), stale.size()), 0);
  }
  const SocketAddress kTargets[] = {closed_port, stale, *SocketAddress::parse("unix:" + dir + "/missing.sock")};
  std::vector<Recorder> handlers(std::size(kTargets));
  std::vector<std::unique_ptr<TcpConnection>> conns;
  for (std::size_t i = 0; i < std::size(kTargets); ++i) {
    conns.push_back(connect(kTargets[i], handlers[i]));
    conns.back()->queue("never sent");
  }
  std::vector<Recorder*> watched;
  for (auto& h : handlers) watched.push_back(&h);
  ASSERT_TRUE(run_until(watched, [&] {
    for (const auto& h : handlers)
      if (!h.error) return false;
    return true;
  }));
  for (std::size_t i = 0; i < std::size(kTargets); ++i) {
    SCOPED_TRACE(kTargets[i].to_string());
    EXPECT_EQ(handlers[i].events, std::vector<std::string>{"error"});
    EXPECT_EQ(handlers[i].error, SocketError::kRefused);
    EXPECT_EQ(conns[i]->queued_bytes(), 0u);
    EXPECT_FALSE(conns[i]->connecting());
  }
}

TEST_F(TcpConnectionTest, AnUnansweredConnectTimesOut) {
  // Backlog 0 holds one connection; with nobody accepting, Linux drops the SYNs that follow, so a
  // further connect stays in progress: a peer that never answers, without leaving loopback.
  auto lfd = listen_tcp(*SocketAddress::parse("127.0.0.1:0"), false, 0);
  ASSERT_TRUE(lfd);
  SocketAddress to = *local_address(lfd->get());
  auto filler = connect_tcp(to);
  ASSERT_TRUE(filler);
  pollfd p{filler->get(), POLLOUT, 0};
  ASSERT_EQ(::poll(&p, 1, static_cast<int>(kDeadline.count())), 1);
  ASSERT_EQ(socket_error(filler->get()).code, 0);

  constexpr milliseconds kTimeout{100};
  TimePoint start = loop_->now();  // what the deadline is counted from
  Recorder client;
  auto c = connect(to, client, kTimeout);
  ASSERT_TRUE(run_until({&client}, [&] { return client.error.has_value(); }));
  EXPECT_GE(Clock::now() - start, kTimeout);
  EXPECT_EQ(client.events, std::vector<std::string>{"error"});
  EXPECT_EQ(client.error, SocketError::kConnectTimeout);
}

TEST_F(TcpConnectionTest, ClosingWhileConnectingSilencesEveryCallback) {
  // One refused at once (its report is already scheduled), one in progress.
  SocketAddress missing = *SocketAddress::parse("unix:" + temp_dir() + "/missing.sock");
  SocketAddress to = serve("127.0.0.1:0");
  Recorder a, b, watch;
  auto ca = connect(missing, a);
  auto cb = connect(to, b);
  ca->close(false);
  cb->close(false);
  // A third, refused at once like the first and so reported no earlier than it would have been,
  // marks the point by which both would have reported.
  auto cw = connect(missing, watch);
  ASSERT_TRUE(run_until({&watch}, [&] { return !watch.events.empty(); }));
  EXPECT_EQ(watch.events, std::vector<std::string>{"error"});
  EXPECT_TRUE(a.events.empty());
  EXPECT_TRUE(b.events.empty());
}

// ---- the write budget: a connection writes at most EventLoop::write_budget() bytes in one turn,
// and the rest follows from the ready list in the turns after, while the socket still has room
// (edge-triggered: no EPOLLOUT comes for a socket that never filled).

// A server-side connection on loopback whose peer does not read until told to: with a budget far
// below what the socket buffers hold, the kernel never stops a write, only the budget does.
class WriteBudgetTest : public TcpConnectionTest {
 public:
  static constexpr std::size_t kBudget = 4096;
  static constexpr std::size_t kTotal = 10 * kBudget + 100;

 protected:
  void SetUp() override {
    TcpConnectionTest::SetUp();
    loop_->set_write_budget(kBudget);
    pattern_.resize(kTotal);
    for (std::size_t i = 0; i < kTotal; ++i) pattern_[i] = static_cast<char>('a' + i % 23);
  }

  std::unique_ptr<TcpConnection> accept_one(Recorder& handler, UniqueFd& peer) {
    auto lfd = listen_tcp(*SocketAddress::parse("127.0.0.1:0"), false);
    EXPECT_TRUE(lfd);
    auto cfd = connect_tcp(*local_address(lfd->get()));
    EXPECT_TRUE(cfd);
    pollfd p{cfd->get(), POLLOUT, 0};
    EXPECT_EQ(::poll(&p, 1, static_cast<int>(kDeadline.count())), 1);
    SocketAddress from;
    auto sfd = accept_tcp(lfd->get(), &from);
    EXPECT_TRUE(sfd);
    peer = std::move(*cfd);
    auto c = std::make_unique<TcpConnection>(*loop_, std::move(*sfd), from.to_string(), kMaxBuffered);
    handler.loop = loop_.get();
    c->set_handler(&handler);
    EXPECT_TRUE(c->start());
    return c;
  }

  // A file holding the pattern, for queue_file.
  UniqueFd pattern_file() {
    std::string path = temp_dir() + "/body";
    std::ofstream(path, std::ios::binary) << pattern_;
    return UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  }

  // Reads `n` bytes from the (non-blocking) peer.
  static std::string read_n(int fd, std::size_t n) {
    std::string got;
    char buf[16384];
    while (got.size() < n) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(kDeadline.count())) != 1) break;
      ssize_t r = ::read(fd, buf, sizeof buf);
      if (r <= 0) break;
      got.append(buf, static_cast<std::size_t>(r));
    }
    return got;
  }

  std::string pattern_;
};

struct Queuing {
  const char* name;
  std::size_t head;  // bytes queued before the file; the whole pattern when no file follows
  bool file;
  bool through;  // write_through (the TLS transport's records) instead of queue + flush
};

class WriteBudgetPer : public WriteBudgetTest, public ::testing::WithParamInterface<Queuing> {};

TEST_P(WriteBudgetPer, OneTurnWritesTheBudgetAndTheNextTurnsTheRest) {
  const Queuing& q = GetParam();
  Recorder h;
  UniqueFd peer;
  auto c = accept_one(h, peer);
  std::size_t first = 0;
  if (q.through) {
    auto r = c->write_through(pattern_);
    ASSERT_TRUE(r);
    first = *r;
  } else {
    c->queue(std::string_view(pattern_).substr(0, q.head));
    if (q.file) c->queue_file(pattern_file(), q.head, kTotal - q.head);
    auto r = c->flush();
    ASSERT_TRUE(r);
    first = *r;
  }
  EXPECT_EQ(first, kBudget);
  EXPECT_EQ(c->queued_bytes(), kTotal - kBudget);
  // Each later turn is one on_written, of one budget, in the turn after the one before: nothing
  // else wakes the loop (the peer reads nothing, the socket never fills), so a poll that waited
  // would hang until the deadline.
  ASSERT_TRUE(run_until({&h}, [&] { return c->queued_bytes() == 0; }));
  EXPECT_EQ(h.written, kTotal - kBudget);
  ASSERT_EQ(h.per_turn.size(), 10u);
  std::uint64_t previous = h.per_turn.begin()->first - 1;
  for (auto [turn, bytes] : h.per_turn) {
    EXPECT_LE(bytes, kBudget) << "turn " << turn;
    EXPECT_EQ(turn, previous + 1);
    previous = turn;
  }
  EXPECT_EQ(read_n(peer.get(), kTotal), pattern_);
}

INSTANTIATE_TEST_SUITE_P(Segments, WriteBudgetPer,
                         ::testing::Values(Queuing{"bytes", WriteBudgetTest::kTotal, false, false},
                                           Queuing{"file", 0, true, false},
                                           Queuing{"head_then_file", 1000, true, false},
                                           Queuing{"write_through", WriteBudgetTest::kTotal, false, true}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST_F(WriteBudgetTest, ConnectionsPastTheBudgetTakeTurnsAndSmallOutputGoesAtOnce) {
  Recorder ha, hb, hs;
  UniqueFd pa, pb, ps;
  auto a = accept_one(ha, pa);
  auto b = accept_one(hb, pb);
  auto small = accept_one(hs, ps);
  a->queue(pattern_);
  b->queue(pattern_);
  ASSERT_TRUE(a->flush());
  ASSERT_TRUE(b->flush());
  // Another connection's short answer does not wait behind them: its own budget is whole.
  small->queue("pong");
  auto r = small->flush();
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 4u);
  ASSERT_TRUE(run_until({&ha, &hb}, [&] { return a->queued_bytes() == 0 && b->queued_bytes() == 0; }));
  ASSERT_EQ(ha.per_turn.size(), 10u);
  EXPECT_EQ(ha.per_turn, hb.per_turn);
  for (auto [turn, bytes] : ha.per_turn) EXPECT_LE(bytes, kBudget) << "turn " << turn;
  EXPECT_EQ(read_n(pa.get(), kTotal), pattern_);
  EXPECT_EQ(read_n(pb.get(), kTotal), pattern_);
  EXPECT_EQ(read_n(ps.get(), 4), "pong");
}

// A connection `c` and a watched one `w`, both past the budget: queued on the ready list, c first.
class WaitingForItsTurn : public WriteBudgetTest {
 protected:
  void SetUp() override {
    WriteBudgetTest::SetUp();
    c_ = accept_one(h_, peer_);
    w_ = accept_one(watch_, watch_peer_);
    c_->queue(pattern_);
    w_->queue(pattern_);
    ASSERT_TRUE(c_->flush());
    ASSERT_TRUE(w_->flush());
  }
  Recorder h_, watch_;
  UniqueFd peer_, watch_peer_;
  std::unique_ptr<TcpConnection> c_, w_;
};

TEST_F(WaitingForItsTurn, AConnectionFreedMeanwhileIsNotCalled) {
  c_.reset();
  ASSERT_TRUE(run_until({&watch_}, [&] { return true; }));
  EXPECT_EQ(watch_.written, kBudget);
  EXPECT_EQ(h_.written, 0u);
}

TEST_F(WaitingForItsTurn, OutputDiscardedMeanwhileEndsIt) {
  c_->discard_output_after(0);
  ASSERT_TRUE(run_until({&watch_}, [&] { return w_->queued_bytes() == 0; }));
  EXPECT_EQ(h_.written, 0u);
  EXPECT_EQ(c_->queued_bytes(), 0u);
}

}  // namespace
}  // namespace unbroken::net
