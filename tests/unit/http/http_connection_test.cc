// The connection state machine driven in memory: a fake transport instead of a socket, the loop's
// timer wheel advanced by hand. Requests are fed at every split point.

#include "http/http_connection.h"

#include <gtest/gtest.h>

#include <map>

#include "connection_rig.h"

namespace unbroken::http {
namespace {

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

TEST_F(ConnectionTest, ADrainWhileLingeringWritesNoSecondRecord) {
  // A drain timeout shorter than the linger: the lingering connection's request has its record
  // already, and the drain must not add one (it did: req 0, phase idle, a 503 counted).
  limits_.drain_timeout = milliseconds(10);
  limits_.linger_timeout = milliseconds(2000);
  transport_->receive("GET /sync HTTP/1.1\r\n\r\n");  // no Host: 400 and a lingering close
  ASSERT_EQ(records_.size(), 1u);
  ASSERT_TRUE(transport_->shut_);
  conn_->begin_drain();
  advance(milliseconds(100));
  EXPECT_EQ(records_.size(), 1u);
  EXPECT_FALSE(conn_->closed());  // the linger still runs; its own timer ends it
  advance(milliseconds(2000));
  EXPECT_TRUE(conn_->closed());
  EXPECT_EQ(records_.size(), 1u);
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

// An answered request's record is held (with its exchange) until the client's ACKs are in: it is
// first looked at two wheel ticks after the response, so an idle connection lets go of it soon;
// while bytes are unacknowledged the looks back off (each wait as long as the time waited so far,
// at most 100 ms), so a slow client is not asked every tick.
TEST_F(ConnectionTest, HeldRecordIsCheckedSoonThenLessOftenUntilAcknowledged) {
  transport_->delivery_ = net::TcpDelivery{0};  // nothing acknowledged yet
  transport_->receive("GET /sync HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_FALSE(transport_->out_.empty());
  EXPECT_TRUE(records_.empty());
  advance(milliseconds(30));
  EXPECT_EQ(transport_->delivery_asks_, 1) << "first look within 30 ms";
  EXPECT_TRUE(records_.empty()) << "nothing acknowledged: the record waits";
  for (int i = 0; i < 50; ++i) advance(milliseconds(10));  // half a second more, a turn every 10 ms
  // Doubling waits, then one look per 100 ms: about 7 looks in all, not 50.
  EXPECT_GE(transport_->delivery_asks_, 4);
  EXPECT_LE(transport_->delivery_asks_, 10);
  EXPECT_TRUE(records_.empty());
  transport_->delivery_ = net::TcpDelivery{transport_->out_.size()};
  advance(milliseconds(110));
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(records_[0].status, 200);
}

TEST_F(ConnectionTest, AcknowledgedRecordGoesOutAtTheFirstLook) {
  transport_->acked_all_ = true;
  transport_->receive("GET /sync HTTP/1.1\r\nHost: a\r\n\r\n");
  advance(milliseconds(8));
  EXPECT_TRUE(records_.empty()) << "held at least a wheel tick, for the ACKs";
  advance(milliseconds(22));
  ASSERT_EQ(records_.size(), 1u) << "out within 30 ms of the response";
  EXPECT_EQ(transport_->delivery_asks_, 1);
}

}  // namespace
}  // namespace unbroken::http
