// The connection state machine driven in memory: a fake transport instead of a socket, the loop's
// timer wheel advanced by hand. Requests are fed at every split point.

#include "http/http_connection.h"

#include "common/fake_transport.h"

#include <gtest/gtest.h>

#include <map>

namespace unbroken::http {
namespace {

using std::chrono::milliseconds;

using testing::FakeTransport;

struct Rec {
  std::string outcome, phase, timer, path;
  int status;
  bool cancelled;
};

// A connection with its loop, routes and a fake transport; records and closes are collected.
struct Rig {
  Rig() : loop_(std::move(*net::EventLoop::create())) {
    limits_.header_timeout = milliseconds(1000);
    limits_.body_timeout = milliseconds(1000);
    limits_.handler_timeout = milliseconds(1000);
    limits_.send_timeout = milliseconds(1000);
    limits_.keepalive_timeout = milliseconds(5000);
    router_.add("GET", "/sync", [](const ExchangePtr& ex) { ex->respond(200, "sync\n"); });
    router_.add("GET", "/async", [this](const ExchangePtr& ex) { held_ = ex; });
    router_.add("GET", "/stream", [this](const ExchangePtr& ex) {
      ex->start(200, 1000);
      ex->write("partial");
      held_ = ex;
    });
    router_.add("GET", "/throw", [](const ExchangePtr&) { throw std::runtime_error("boom"); });
    ctx_ = std::make_unique<LoopContext>(*loop_, limits_, router_, stats_);
    ctx_->record = [this](const RequestRecord& r) {
      records_.push_back(Rec{std::string(name(r.outcome)), std::string(name(r.phase)),
                             r.timer ? std::string(name(*r.timer)) : "", std::string(r.path), r.status, r.cancelled});
    };
    ctx_->on_closed = [this](HttpConnection*) { ++closed_; };
    auto t = std::make_unique<FakeTransport>();
    transport_ = t.get();
    conn_ = std::make_unique<HttpConnection>(*ctx_, std::move(t), 1);
    conn_->start();
  }
  void advance(milliseconds by) { loop_->run_timers(loop_->now() + by); }

  std::unique_ptr<net::EventLoop> loop_;
  HttpLimits limits_;
  Router router_;
  LoopStats stats_;
  std::unique_ptr<LoopContext> ctx_;
  FakeTransport* transport_ = nullptr;
  std::unique_ptr<HttpConnection> conn_;
  std::vector<Rec> records_;
  ExchangePtr held_;
  int closed_ = 0;
};

class ConnectionTest : public ::testing::Test, public Rig {};

TEST_F(ConnectionTest, PipelinedRequestsAtEverySplitPoint) {
  const std::string in =
      "GET /sync HTTP/1.1\r\nHost: a\r\n\r\nGET /sync HTTP/1.1\r\nHost: a\r\n\r\n"
      "GET /nope HTTP/1.1\r\nHost: a\r\n\r\n";
  for (std::size_t split = 0; split <= in.size(); ++split) {
    Rig t;  // a fresh connection per split
    t.transport_->receive(std::string_view(in).substr(0, split));
    t.transport_->receive(std::string_view(in).substr(split));
    t.advance(milliseconds(200));  // the last answered request's record waits for its ACKs
    const std::string& out = t.transport_->out_;
    ASSERT_EQ(t.records_.size(), 3u) << "split " << split;
    EXPECT_EQ(t.records_[0].status, 200);
    EXPECT_EQ(t.records_[2].status, 404);
    auto first = out.find("HTTP/1.1 200");
    auto second = out.find("HTTP/1.1 200", first + 1);
    auto third = out.find("HTTP/1.1 404");
    EXPECT_TRUE(first < second && second < third) << out;
    EXPECT_EQ(t.closed_, 0);
  }
}

TEST_F(ConnectionTest, FinInEachPhaseGivesOneRecord) {
  struct Step {
    std::string input;
    const char* phase;
  };
  const Step steps[] = {
      {"GET /sync HTTP/1.1\r\nHo", "request_headers"},
      {"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc", "request_body"},
      {"GET /async HTTP/1.1\r\nHost: a\r\n\r\n", "handler"},
      {"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n", "response"},
  };
  for (const Step& s : steps) {
    Rig t;
    t.transport_->receive(s.input);
    t.transport_->handler_->on_peer_closed();
    if (t.held_) {
      // The handler still holds the exchange: the record waits until it lets go (wasted_ms).
      EXPECT_TRUE(t.records_.empty()) << s.phase;
      EXPECT_TRUE(t.held_->token().cancelled());
      EXPECT_FALSE(t.held_->active());
      EXPECT_FALSE(t.held_->write("late"));  // no-op once the client is gone
      t.held_.reset();
      t.advance(milliseconds(1));  // end of turn: the connection drops its own references
    }
    ASSERT_EQ(t.records_.size(), 1u) << s.phase;
    EXPECT_EQ(t.records_[0].outcome, "client_closed");
    EXPECT_EQ(t.records_[0].phase, s.phase);
    EXPECT_EQ(t.records_[0].status, std::string(s.phase) == "response" ? 200 : 499);
    EXPECT_EQ(t.closed_, 1);
  }
}

TEST_F(ConnectionTest, FinWhileIdleIsANormalEnd) {
  transport_->receive("GET /sync HTTP/1.1\r\nHost: a\r\n\r\n");
  transport_->handler_->on_peer_closed();
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(records_[0].outcome, "ok");
  EXPECT_EQ(closed_, 1);
}

TEST_F(ConnectionTest, ResetAndBrokenPipeAreClassified) {
  transport_->receive("GET /async HTTP/1.1\r\nHost: a\r\n\r\n");
  transport_->handler_->on_transport_error(net::SocketError::kReset);
  held_.reset();
  advance(milliseconds(1));
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(records_[0].outcome, "client_reset");
  EXPECT_TRUE(records_[0].cancelled);

  Rig t;
  t.transport_->receive("GET /async HTTP/1.1\r\nHost: a\r\n\r\n");
  t.transport_->fail_with_ = EPIPE;
  t.held_->respond(200, "late answer");
  t.held_.reset();
  t.advance(milliseconds(1));
  ASSERT_EQ(t.records_.size(), 1u);
  EXPECT_EQ(t.records_[0].outcome, "broken_pipe");
}

TEST_F(ConnectionTest, HeaderTimeoutAnswers408AndNamesTheTimer) {
  transport_->receive("GET /sync HTTP/1.1\r\n");
  advance(milliseconds(999));
  EXPECT_TRUE(records_.empty());
  advance(milliseconds(20));
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(records_[0].outcome, "timeout");
  EXPECT_EQ(records_[0].timer, "header");
  EXPECT_EQ(records_[0].status, 408);
  EXPECT_NE(transport_->out_.find("HTTP/1.1 408"), std::string::npos);
  EXPECT_TRUE(transport_->shut_);  // lingering close: FIN first, then drain what the client sends
}

TEST_F(ConnectionTest, BodyTimeoutCountsKilobytesNotBytesAsProgress) {
  router_.add("POST", "/upload", [](const ExchangePtr& ex) { ex->respond(200, "ok\n"); });
  transport_->receive("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n");
  // A byte every 400 ms: progress in bytes, never in kilobytes. The timer runs out at 1 s.
  transport_->receive("x");
  advance(milliseconds(400));
  transport_->receive("x");
  advance(milliseconds(400));
  transport_->receive("x");
  EXPECT_TRUE(records_.empty());
  advance(milliseconds(220));
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(records_[0].timer, "body");
  EXPECT_EQ(records_[0].status, 408);
}

TEST_F(ConnectionTest, BodyTimeoutRestartsWithEachKilobyte) {
  router_.add("POST", "/upload", [](const ExchangePtr& ex) { ex->respond(200, "ok\n"); });
  transport_->receive("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 3072\r\n\r\n");
  for (int i = 0; i < 3; ++i) {
    advance(milliseconds(800));
    transport_->receive(std::string(1024, 'x'));  // slow, but a kilobyte within each second
  }
  advance(milliseconds(200));
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(records_[0].status, 200);
}

TEST_F(ConnectionTest, HandlerTimeoutAnswers503AndCancels) {
  transport_->receive("GET /async HTTP/1.1\r\nHost: a\r\n\r\n");
  advance(milliseconds(1100));
  EXPECT_TRUE(held_->token().cancelled());
  held_.reset();
  advance(milliseconds(1));
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(records_[0].timer, "handler");
  EXPECT_EQ(records_[0].status, 503);
}

TEST_F(ConnectionTest, SendTimeoutWhenTheClientStopsReading) {
  transport_->window_ = 10;  // the kernel takes 10 bytes, then the client stops reading
  transport_->receive("GET /stream HTTP/1.1\r\nHost: a\r\n\r\n");
  advance(milliseconds(500));
  transport_->drain(5);  // progress re-arms the send timer
  advance(milliseconds(700));
  EXPECT_TRUE(records_.empty());
  advance(milliseconds(400));
  held_.reset();
  advance(milliseconds(1));
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(records_[0].timer, "send");
  EXPECT_EQ(records_[0].phase, "response");
  EXPECT_TRUE(transport_->abortive_);
}

TEST_F(ConnectionTest, KeepAliveTimeoutClosesWithoutARecord) {
  transport_->receive("GET /sync HTTP/1.1\r\nHost: a\r\n\r\n");
  advance(milliseconds(200));
  ASSERT_EQ(records_.size(), 1u);
  advance(milliseconds(5100));
  EXPECT_EQ(records_.size(), 1u);
  EXPECT_EQ(closed_, 1);
  EXPECT_EQ(stats_.timeouts[static_cast<std::size_t>(TimerKind::kKeepalive)].get(), 1u);
}

TEST_F(ConnectionTest, HandlerExceptionIs500AndHandlerError) {
  transport_->receive("GET /throw HTTP/1.1\r\nHost: a\r\n\r\n");
  advance(milliseconds(1));
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(records_[0].outcome, "handler_error");
  EXPECT_EQ(records_[0].status, 500);
}

TEST_F(ConnectionTest, OutputBackPressureStopsReading) {
  router_.add("GET", "/big", [](const ExchangePtr& ex) {
    ex->start(200, 1 << 20);
    ex->write(std::string(1 << 20, 'x'));
  });
  transport_->window_ = 0;
  transport_->receive("GET /big HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_FALSE(transport_->reading_);
  transport_->drain(SIZE_MAX);
  EXPECT_TRUE(transport_->reading_);
}

}  // namespace
}  // namespace unbroken::http
