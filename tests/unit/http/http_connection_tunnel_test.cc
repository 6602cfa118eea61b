// The connection as a tunnel (Exchange::start_tunnel), driven in memory: the 101 head, client bytes
// buffered behind the request head relayed first (fed at every split point), bytes both ways, the
// connection's own timers silent on a live tunnel, and each way of ending it giving one record.

#include <gtest/gtest.h>

#include "connection_rig.h"
#include "http/http_connection.h"

namespace unbroken::http {
namespace {

constexpr std::string_view kUpgrade =
    "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";

// A rig with a /ws route that holds its exchange, and the upstream's side of a tunnel: what the
// client sent through it (`up_`) and how often its token was cancelled.
struct TunnelRig : Rig {
  TunnelRig() {
    router_.add("GET", "/ws", [this](const ExchangePtr& ex) { held_ = ex; });
    router_.add(
        "POST", "/ws",
        [this](const ExchangePtr& ex) {
          held_ = ex;
          ex->on_body([](std::string_view) {}, [] {});
        },
        BodyMode::kStream);
    upstream_.add("Upgrade", "websocket");
    upstream_.add("Connection", "Upgrade");
    upstream_.add("Keep-Alive", "timeout=5");
  }
  bool start() {
    if (!held_) return false;
    held_->token().on_cancel([this] { ++cancels_; });
    return held_->start_tunnel({101, {}, &upstream_}, [this](std::string_view b) { up_ += b; });
  }
  // The client's output after the 101 head.
  [[nodiscard]] std::string after_head() const {
    auto at = transport_->out_.find("\r\n\r\n");
    return at == std::string::npos ? std::string() : transport_->out_.substr(at + 4);
  }
  HeaderList upstream_;
  std::string up_;
  int cancels_ = 0;
};

TEST(ConnectionTunnel, TheHeadThenBufferedClientBytesFirstAtEverySplit) {
  std::string wire = std::string(kUpgrade) + "early bytes";
  for (std::size_t split = 1; split < wire.size(); ++split) {
    TunnelRig t;
    t.transport_->receive(wire.substr(0, split));
    t.transport_->receive(wire.substr(split));
    ASSERT_TRUE(t.held_) << split;
    EXPECT_EQ(t.transport_->out_, "") << split;  // nothing until the upstream answers
    ASSERT_TRUE(t.start()) << split;
    EXPECT_EQ(t.up_, "early bytes") << split;
    const std::string& out = t.transport_->out_;
    EXPECT_TRUE(out.starts_with("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"))
        << out;
    EXPECT_EQ(out.find("Keep-Alive"), std::string::npos) << out;
    EXPECT_EQ(out.find("Content-Length"), std::string::npos) << out;
    EXPECT_EQ(t.conn_->phase(), Phase::kTunnel);
  }
}

TEST(ConnectionTunnel, BytesBothWaysUnframed) {
  TunnelRig t;
  t.transport_->receive(kUpgrade);
  ASSERT_TRUE(t.start());
  t.transport_->receive("up 1");
  t.transport_->receive(std::string("\x81\x02hi", 4));
  EXPECT_EQ(t.up_, std::string("up 1\x81\x02hi", 8));
  EXPECT_TRUE(t.held_->tunnel_write("down 1"));
  EXPECT_TRUE(t.held_->tunnel_write("down 2"));
  EXPECT_EQ(t.after_head(), "down 1down 2");
  EXPECT_TRUE(t.transport_->in_.empty());
  EXPECT_TRUE(t.records_.empty());
}

TEST(ConnectionTunnel, TheConnectionsOwnTimersDoNotRunOnALiveTunnel) {
  TunnelRig t;
  t.transport_->receive(kUpgrade);
  ASSERT_TRUE(t.start());
  // The client stops reading: output waits (no send timer), and reading goes on (its own back-pressure).
  t.transport_->window_ = 0;
  EXPECT_TRUE(t.held_->tunnel_write(std::string(t.limits_.output_high_water + 1, 'x')));
  EXPECT_FALSE(t.held_->writable());
  EXPECT_TRUE(t.transport_->reading_);
  // Far past header, handler, send and keep-alive timeouts.
  for (int i = 0; i < 20; ++i) t.advance(milliseconds(1000));
  EXPECT_TRUE(t.records_.empty());
  EXPECT_FALSE(t.transport_->closed_);
  EXPECT_EQ(t.cancels_, 0);
  bool drained = false;
  t.held_->on_drain([&] { drained = true; });
  t.transport_->drain(SIZE_MAX);
  EXPECT_TRUE(drained);
}

TEST(ConnectionTunnel, PauseStopsReadingTheClientAndResumeDeliversWhatWaited) {
  TunnelRig t;
  t.transport_->receive(kUpgrade);
  ASSERT_TRUE(t.start());
  t.held_->pause_body();
  EXPECT_FALSE(t.transport_->reading_);
  t.transport_->receive("held");
  EXPECT_EQ(t.up_, "");
  t.held_->resume_body();
  EXPECT_EQ(t.up_, "held");
  EXPECT_TRUE(t.transport_->reading_);
}

struct End {
  const char* name;
  void (*act)(TunnelRig&);
  const char* outcome;
  const char* timer;
};

TEST(ConnectionTunnel, EachEndIsOneRecordAndCancelsTheToken) {
  const End ends[] = {
      {"client FIN", [](TunnelRig& t) { t.transport_->handler_->on_peer_closed(); }, "client_closed", ""},
      {"client RST", [](TunnelRig& t) { t.transport_->handler_->on_transport_error(net::SocketError::kReset); },
       "client_reset", ""},
      {"failed send",
       [](TunnelRig& t) {
         t.transport_->fail_with_ = EPIPE;
         EXPECT_FALSE(t.held_->tunnel_write("x"));
       },
       "broken_pipe", ""},
      {"upstream closed", [](TunnelRig& t) { t.held_->end_tunnel(Outcome::kOk); }, "ok", ""},
      {"idle", [](TunnelRig& t) { t.held_->end_tunnel(Outcome::kTimeout, TimerKind::kTunnelIdle, milliseconds(300)); },
       "timeout", "tunnel_idle"},
      {"drain", [](TunnelRig& t) { t.conn_->begin_drain(); }, "shutdown", ""},
  };
  for (const End& e : ends) {
    TunnelRig t;
    t.transport_->receive(kUpgrade);
    ASSERT_TRUE(t.start()) << e.name;
    t.transport_->receive("abc");
    ASSERT_TRUE(t.held_->tunnel_write("defgh")) << e.name;
    e.act(t);
    EXPECT_EQ(t.cancels_, 1) << e.name;
    EXPECT_FALSE(t.held_->tunnel_write("late")) << e.name;
    t.advance(milliseconds(200));  // an ok record waits for the client's ACKs
    t.held_.reset();
    t.advance(milliseconds(6000));  // and past every timer: nothing more
    ASSERT_EQ(t.records_.size(), 1u) << e.name;
    const Rec& r = t.records_[0];
    EXPECT_EQ(r.outcome, e.outcome) << e.name;
    EXPECT_EQ(r.phase, "tunnel") << e.name;
    EXPECT_EQ(r.timer, e.timer) << e.name;
    EXPECT_EQ(r.status, 101) << e.name;
    EXPECT_FALSE(r.cancelled) << e.name;
    EXPECT_TRUE(t.transport_->closed_) << e.name;
    EXPECT_EQ(t.closed_, 1) << e.name;
  }
}

TEST(ConnectionTunnel, NotAfterTheHeadNorBeforeTheBodyNorWhileDraining) {
  TunnelRig after_head;
  after_head.transport_->receive(kUpgrade);
  after_head.held_->start(200);
  EXPECT_FALSE(after_head.start());

  TunnelRig body_unread;
  body_unread.transport_->receive("POST /ws HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab");
  ASSERT_TRUE(body_unread.held_);
  EXPECT_FALSE(body_unread.start());
  EXPECT_EQ(body_unread.transport_->out_, "");

  TunnelRig draining;
  draining.transport_->receive(kUpgrade);
  draining.conn_->begin_drain();
  EXPECT_FALSE(draining.start());
  EXPECT_EQ(draining.transport_->out_, "");
}

}  // namespace
}  // namespace unbroken::http
