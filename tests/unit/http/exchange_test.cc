// Exchange's extension points and body back-pressure, through a connection driven in memory: a
// streamed body paused and resumed (reading stops, the body timer waits, held pieces and the end go
// first on resume), ordered head hooks (the head waits for the last; a failing one answers its own
// error) and typed per-exchange state.

#include "http/exchange.h"

#include <gtest/gtest.h>

#include "connection_rig.h"

namespace unbroken::http {
namespace {

class ExchangeTest : public ::testing::Test, public Rig {};

TEST_F(ExchangeTest, StreamedBodyWithoutPauseReachesTheHandlerAsItComes) {
  transport_->receive("POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nab");
  transport_->receive("cd");
  EXPECT_EQ(sunk_, "abcd");
  EXPECT_TRUE(transport_->reading_);
  transport_->receive("ef");
  EXPECT_TRUE(sink_ended_);
  ASSERT_EQ(records_.size(), 0u);  // the record waits for the client's ACKs
  EXPECT_TRUE(transport_->out_.ends_with("\r\n\r\n6"));
}

TEST_F(ExchangeTest, PausedBodyStopsReadingAndResumeDeliversTheRest) {
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

TEST_F(ExchangeTest, BodyPausedWithinOneParseHoldsTheRestAndItsEnd) {
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

TEST_F(ExchangeTest, AFinishedResponseTakesNoMoreBody) {
  // Paused after "ab" with "cd" and "ef" held; the handler answers early. The rest is read and
  // dropped: the handler never gets a body with a hole in it ("ef" without "cd") nor its end.
  pause_on_chunk_ = true;
  transport_->receive("POST /sink HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n2\r\ncd\r\n");
  EXPECT_EQ(sunk_, "ab");
  held_->respond(413, "enough\n");
  transport_->receive("2\r\nef\r\n0\r\n\r\n");
  EXPECT_EQ(sunk_, "ab");
  EXPECT_FALSE(sink_ended_);
  EXPECT_TRUE(transport_->out_.ends_with("enough\n"));
  // The body was read to its end, so the connection keeps alive.
  transport_->receive("GET /sync HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_TRUE(transport_->out_.ends_with("sync\n"));
}

TEST_F(ExchangeTest, HeadHooksRunInOrderAndTheHeadWaitsForTheLast) {
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

TEST_F(ExchangeTest, FailedHeadHookAnswersItsOwnErrorAndStopsTheChain) {
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

TEST_F(ExchangeTest, AHookAddedAfterTheHeadLeftDoesNotHoldTheResponse) {
  // A layer used for the first time mid-stream (sessions on first use) adds its hook too late to
  // run before the head: it must not hold finish() behind a verdict that could answer nothing.
  bool ran = false;
  router_.add("GET", "/late", [&](const ExchangePtr& ex) {
    ex->start(200, 4);
    ex->write("ab");
    ex->add_head_hook([&](Exchange&, Exchange::HookDone done) {
      ran = true;
      done(Exchange::HookVerdict::fail(503, "too late\n"));
    });
    ex->write("cd");
    ex->finish();
  });
  transport_->receive("GET /late HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_FALSE(ran);
  EXPECT_TRUE(transport_->out_.starts_with("HTTP/1.1 200 OK\r\n"));
  EXPECT_TRUE(transport_->out_.ends_with("\r\n\r\nabcd"));
  transport_->receive("GET /sync HTTP/1.1\r\nHost: a\r\n\r\n");  // the request ended: keep-alive
  EXPECT_TRUE(transport_->out_.ends_with("sync\n"));
}

TEST_F(ExchangeTest, TypedStateIsOnePerTypeAndLeavesWithTheExchange) {
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

TEST_F(ExchangeTest, AProducerWaitingForDrainHearsItFromTheEndOfTurnFlush) {
  // The kernel takes nothing while the handler fills the queue past the high-water mark and waits
  // for it to drain; then room comes, and the flush scheduled for the end of the turn (the head's)
  // takes everything. No on_written follows that flush, and an empty queue asks for no EPOLLOUT:
  // the producer must hear of the drain from the flush itself, or it waits forever.
  transport_->window_ = 0;
  transport_->receive("GET /async HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_TRUE(held_);
  held_->start(200, 2 * limits_.output_high_water);
  EXPECT_TRUE(held_->write(std::string(limits_.output_high_water, 'x')));
  ASSERT_FALSE(held_->writable());
  bool drained = false;
  held_->on_drain([&] { drained = true; });
  EXPECT_FALSE(drained);
  transport_->window_ = SIZE_MAX;
  advance(milliseconds(0));  // the end of the turn
  EXPECT_EQ(transport_->queued_bytes(), 0u);
  EXPECT_TRUE(drained);
}

}  // namespace
}  // namespace unbroken::http
