// The connection state machine driven in memory: a fake transport instead of a socket, the loop's
// timer wheel advanced by hand. Requests are fed at every split point.

#include "http/http_connection.h"

#include <gtest/gtest.h>

#include <map>

#include "common/fake_transport.h"

namespace unbroken::http {
namespace {

using std::chrono::milliseconds;

using testing::FakeTransport;

struct Rec {
  std::string outcome, phase, timer, path;
  int status;
  bool cancelled;
  std::uint64_t bytes_out;
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
    // Streams the body back as it comes, like /diag/echo: the head is queued before the body.
    router_.add(
        "POST", "/echo",
        [this](const ExchangePtr& ex) {
          held_ = ex;
          ex->start(200);
          ex->on_body([ex](std::string_view chunk) { ex->write(chunk); }, [ex] { ex->finish(); });
        },
        BodyMode::kStream);
    // A streamed-body consumer that pauses after each chunk while pause_on_chunk_ is set.
    router_.add(
        "POST", "/sink",
        [this](const ExchangePtr& ex) {
          held_ = ex;
          ex->on_body(
              [this, ex](std::string_view chunk) {
                sunk_ += chunk;
                if (pause_on_chunk_) ex->pause_body();
              },
              [this, ex] {
                sink_ended_ = true;
                ex->respond(200, std::to_string(sunk_.size()));
              });
        },
        BodyMode::kStream);
    router_.add("GET", "/big", [](const ExchangePtr& ex) { ex->respond(200, std::string(64 * 1024, 'x')); });
    ctx_ = std::make_unique<LoopContext>(*loop_, limits_, router_, stats_);
    ctx_->record = [this](const RequestRecord& r) {
      records_.push_back(Rec{std::string(name(r.outcome)), std::string(name(r.phase)),
                             r.timer ? std::string(name(*r.timer)) : "", std::string(r.path), r.status, r.cancelled,
                             r.bytes_out});
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
  std::string sunk_;
  bool pause_on_chunk_ = false;
  bool sink_ended_ = false;
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
  limits_.min_send_rate = 0;  // the send timer alone
  transport_->window_ = 10;   // the kernel takes 10 bytes, then the client stops reading
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
  router_.add("GET", "/huge", [](const ExchangePtr& ex) {
    ex->start(200, 1 << 20);
    ex->write(std::string(1 << 20, 'x'));
  });
  transport_->window_ = 0;
  transport_->receive("GET /huge HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_FALSE(transport_->reading_);
  transport_->drain(SIZE_MAX);
  EXPECT_TRUE(transport_->reading_);
}

// The handler lets go; the one record says what the client received and where the error was.
void expect_body_error_record(Rig& t, int status, const char* body) {
  t.held_.reset();
  t.advance(milliseconds(1));
  ASSERT_EQ(t.records_.size(), 1u) << body;
  EXPECT_EQ(t.records_[0].status, status) << body;
  EXPECT_EQ(t.records_[0].outcome, "protocol_error") << body;
  EXPECT_EQ(t.records_[0].phase, "request_body") << body;
  EXPECT_TRUE(t.records_[0].cancelled) << body;
}

// A framing error in the body of a streaming route, while no byte of the handler's head has left:
// a 400 takes the head's place, with Connection: close and the lingering close, never a reset.
TEST_F(ConnectionTest, BodyFramingErrorBeforeTheHeadLeftIs400) {
  for (const char* body : {"x\r\n", "-5\r\nhello\r\n", "0x5\r\nhello\r\n", "\r\n", "5\nhello\r\n"}) {
    Rig t;
    t.transport_->receive(std::string("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n") + body);
    const std::string& out = t.transport_->out_;
    EXPECT_EQ(out.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << body << out;
    EXPECT_EQ(out.find("HTTP/1.1 200"), std::string::npos) << body;
    EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos) << body;
    EXPECT_EQ(out.find("HPE_"), std::string::npos) << body;
    EXPECT_TRUE(t.transport_->shut_) << body;
    EXPECT_FALSE(t.transport_->abortive_) << body;
    ASSERT_TRUE(t.held_) << body;
    EXPECT_TRUE(t.held_->token().cancelled()) << body;
    expect_body_error_record(t, 400, body);
    EXPECT_EQ(t.records_.at(0).bytes_out, out.size()) << body;
    EXPECT_EQ(t.stats_.requests_by_status[400].get(), 1u) << body;
    EXPECT_EQ(t.stats_.requests_by_status[200].get(), 0u) << body;
  }
}

// Once the head is out there is no answering: the response is cut (no final chunk) and the record
// keeps the status the client saw.
TEST_F(ConnectionTest, BodyFramingErrorAfterTheHeadLeftCutsTheResponse) {
  // A bad chunk size after a good chunk, and a chunk longer than its size (its first 3 bytes are
  // echoed before the parser sees the rest).
  for (const char* body : {"5\r\nhello\r\nzz\r\n", "3\r\nhello\r\n0\r\n\r\n"}) {
    Rig t;
    t.transport_->receive(std::string("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n") + body);
    const std::string& out = t.transport_->out_;
    EXPECT_EQ(out.rfind("HTTP/1.1 200", 0), 0u) << body;
    EXPECT_EQ(out.find("400"), std::string::npos) << body;
    EXPECT_EQ(out.find("0\r\n\r\n"), std::string::npos) << body << ": a cut chunked response must not look complete";
    EXPECT_TRUE(t.transport_->shut_) << body;
    expect_body_error_record(t, 200, body);
  }
}

// RFC 9110 9.3.2: no content in a response to HEAD, the parser's own errors included.
TEST_F(ConnectionTest, ErrorAnswersToHeadCarryNoContent) {
  for (const char* in : {"HEAD / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                         "HEAD / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                         "HEAD / HTTP/1.1\r\nHost: a b\r\n\r\n", "HEAD /nope HTTP/1.1\r\nHost: a\r\n\r\n"}) {
    Rig t;
    t.transport_->receive(in);
    const std::string& out = t.transport_->out_;
    ASSERT_NE(out.find("\r\n\r\n"), std::string::npos) << in;
    EXPECT_EQ(out.substr(out.find("\r\n\r\n") + 4), "") << in;
    EXPECT_EQ(out.rfind("HTTP/1.1 4", 0), 0u) << in;
  }
}

// RFC 9110 6.2: answered in our own version, with the 1.0 connection rules kept.
TEST_F(ConnectionTest, Http10IsAnsweredHttp11WithTheRulesOf10) {
  transport_->receive("GET /sync HTTP/1.0\r\n\r\n");
  EXPECT_EQ(transport_->out_.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << transport_->out_;
  EXPECT_NE(transport_->out_.find("Connection: close\r\n"), std::string::npos);
  EXPECT_TRUE(transport_->shut_);

  Rig t;
  t.transport_->receive("GET /sync HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_EQ(t.transport_->out_.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_NE(t.transport_->out_.find("Connection: keep-alive\r\n"), std::string::npos);
  EXPECT_FALSE(t.transport_->shut_);
}

// A reader that takes a few bytes now and then keeps the send timer from firing; the rate over a
// send timeout does not (1 s here, 1 KiB/s minimum).
TEST_F(ConnectionTest, SendRateCutsASlowReader) {
  transport_->window_ = 100;
  transport_->receive("GET /big HTTP/1.1\r\nHost: a\r\n\r\n");
  for (int i = 0; i < 4; ++i) {
    advance(milliseconds(200));
    transport_->drain(50);  // progress every 200 ms: the send timer never runs out
  }
  EXPECT_TRUE(records_.empty());
  advance(milliseconds(250));
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(records_[0].timer, "send_rate");
  EXPECT_EQ(records_[0].outcome, "timeout");
  EXPECT_EQ(records_[0].phase, "response");
  EXPECT_TRUE(transport_->abortive_);
  EXPECT_EQ(stats_.timeouts[static_cast<std::size_t>(TimerKind::kSendRate)].get(), 1u);
}

TEST_F(ConnectionTest, SendRateNeverCutsAnHonestSlowClient) {
  transport_->window_ = 100;
  transport_->receive("GET /big HTTP/1.1\r\nHost: a\r\n\r\n");
  // 1.5 KiB/s, just above the minimum, for the whole 64 KiB: about 43 s.
  for (int i = 0; i < 250 && records_.empty(); ++i) {
    advance(milliseconds(200));
    transport_->drain(300);
  }
  advance(milliseconds(200));
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(records_[0].outcome, "ok");
  EXPECT_EQ(records_[0].status, 200);

  Rig off;  // 0 turns the minimum off: only the send timer is left
  off.limits_.min_send_rate = 0;
  off.transport_->window_ = 100;
  off.transport_->receive("GET /big HTTP/1.1\r\nHost: a\r\n\r\n");
  for (int i = 0; i < 20; ++i) {
    off.advance(milliseconds(200));
    off.transport_->drain(10);
  }
  EXPECT_TRUE(off.records_.empty());
}

TEST_F(ConnectionTest, StreamedBodyWithoutPauseReachesTheHandlerAsItComes) {
  transport_->receive("POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nab");
  transport_->receive("cd");
  EXPECT_EQ(sunk_, "abcd");
  EXPECT_TRUE(transport_->reading_);
  transport_->receive("ef");
  EXPECT_TRUE(sink_ended_);
  ASSERT_EQ(records_.size(), 0u);  // the record waits for the client's ACKs
  EXPECT_TRUE(transport_->out_.ends_with("\r\n\r\n6"));
}

TEST_F(ConnectionTest, PausedBodyStopsReadingAndResumeDeliversTheRest) {
  limits_.handler_timeout = milliseconds(10'000);  // the handler may take its time; the client may not
  pause_on_chunk_ = true;
  transport_->receive("POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nab");
  EXPECT_EQ(sunk_, "ab");
  EXPECT_FALSE(transport_->reading_);
  // What arrives while paused stays in the transport, unparsed.
  transport_->receive("cd");
  EXPECT_EQ(sunk_, "ab");
  EXPECT_EQ(transport_->in_.size(), 2u);
  // Well past the body timeout: the stall is ours, not the client's.
  advance(milliseconds(2500));
  EXPECT_TRUE(records_.empty());
  EXPECT_FALSE(transport_->closed_);

  pause_on_chunk_ = false;
  held_->resume_body();
  EXPECT_EQ(sunk_, "abcd");
  EXPECT_TRUE(transport_->reading_);
  EXPECT_TRUE(transport_->in_.empty());
  transport_->receive("ef");
  EXPECT_TRUE(sink_ended_);
  EXPECT_TRUE(transport_->out_.ends_with("\r\n\r\n6"));
  // After resume the body timer runs again: a client that stops sending is cut.
  Rig stall;
  stall.limits_.handler_timeout = milliseconds(10'000);
  stall.pause_on_chunk_ = true;
  stall.transport_->receive("POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nab");
  stall.advance(milliseconds(1500));
  EXPECT_TRUE(stall.records_.empty());
  stall.pause_on_chunk_ = false;
  stall.held_->resume_body();
  stall.advance(milliseconds(1100));
  stall.held_.reset();  // the record of a cancelled handler waits for it to let go
  stall.advance(milliseconds(1));
  ASSERT_EQ(stall.records_.size(), 1u);
  EXPECT_EQ(stall.records_[0].timer, "body");
}

TEST_F(ConnectionTest, BodyPausedWithinOneParseHoldsTheRestAndItsEnd) {
  // Chunked: one parse yields several pieces; a pause after the first holds the others and the end.
  pause_on_chunk_ = true;
  std::string req =
      "POST /sink HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n";
  transport_->receive(req);
  EXPECT_EQ(sunk_, "ab");
  EXPECT_FALSE(sink_ended_);
  EXPECT_FALSE(transport_->reading_);
  held_->resume_body();  // delivers "cd" and pauses again; the end waits
  EXPECT_EQ(sunk_, "abcd");
  EXPECT_FALSE(sink_ended_);
  pause_on_chunk_ = false;
  held_->resume_body();
  EXPECT_TRUE(sink_ended_);
  EXPECT_TRUE(transport_->out_.ends_with("\r\n\r\n4"));
  // Keep-alive: the next request is read.
  transport_->receive("GET /sync HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_TRUE(transport_->out_.ends_with("sync\n"));
}

TEST_F(ConnectionTest, HeadHooksRunInOrderAndTheHeadWaitsForTheLast) {
  std::vector<std::string> ran;
  Exchange::HookDone second;
  router_.add("GET", "/hooked", [&](const ExchangePtr& ex) {
    ex->add_head_hook([&](Exchange& e, Exchange::HookDone done) {
      ran.push_back("one " + e.request().target);
      e.add_header("X-One", "1");
      done(Exchange::HookVerdict::proceed());
    });
    ex->add_head_hook([&](Exchange& e, Exchange::HookDone done) {
      ran.push_back("two " + e.request().target);
      second = std::move(done);
    });
    ex->start(200);
    ex->write("body");
    ex->finish();
  });
  transport_->receive("GET /hooked HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(ran, (std::vector<std::string>{"one /hooked", "two /hooked"}));
  EXPECT_EQ(transport_->out_, "");
  second(Exchange::HookVerdict::proceed());
  EXPECT_NE(transport_->out_.find("X-One: 1\r\n"), std::string::npos);
  EXPECT_TRUE(transport_->out_.ends_with("4\r\nbody\r\n0\r\n\r\n"));
}

TEST_F(ConnectionTest, FailedHeadHookAnswersItsOwnErrorAndStopsTheChain) {
  bool later_ran = false;
  router_.add("GET", "/denied", [&](const ExchangePtr& ex) {
    ex->add_head_hook(
        [](Exchange&, Exchange::HookDone done) { done(Exchange::HookVerdict::fail(401, "who are you\n")); });
    ex->add_head_hook([&](Exchange&, Exchange::HookDone done) {
      later_ran = true;
      done(Exchange::HookVerdict::proceed());
    });
    ex->add_header("X-Handler", "dropped");
    ex->respond(200, "secret\n");
  });
  transport_->receive("GET /denied HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_FALSE(later_ran);
  EXPECT_TRUE(transport_->out_.starts_with("HTTP/1.1 401 Unauthorized\r\n"));
  EXPECT_EQ(transport_->out_.find("X-Handler"), std::string::npos);
  EXPECT_TRUE(transport_->out_.ends_with("who are you\n"));
}

TEST_F(ConnectionTest, TypedStateIsOnePerTypeAndLeavesWithTheExchange) {
  struct Counter {
    int n = 0;
  };
  struct Tag {
    explicit Tag(std::string v) : value(std::move(v)) {}
    std::string value;
  };
  auto alive = std::make_shared<int>(0);
  router_.add("GET", "/state", [&](const ExchangePtr& ex) {
    EXPECT_EQ(ex->state<Counter>(), nullptr);
    ex->emplace_state<Counter>().n = 2;
    ex->emplace_state<Tag>("t");
    ex->emplace_state<std::shared_ptr<int>>(alive);
    ex->state<Counter>()->n++;
    EXPECT_EQ(ex->state<Counter>()->n, 3);
    EXPECT_EQ(ex->state<Tag>()->value, "t");
    EXPECT_EQ(ex->emplace_state<Tag>("u").value, "u");  // replaces
    EXPECT_EQ(ex->state<Tag>()->value, "u");
    ex->respond(200, "ok\n");
  });
  transport_->receive("GET /state HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(alive.use_count(), 2);  // the answered exchange waits with its record
  advance(milliseconds(200));
  EXPECT_EQ(alive.use_count(), 1);
}

}  // namespace
}  // namespace unbroken::http
