// The request recorder on its own: an answered request's record is held until asked for, a
// departure's goes out at once (as 499 before the head), and the counters follow each end.

#include "http/request_recorder.h"

#include <gtest/gtest.h>

#include "common/fake_transport.h"
#include "http/loop_context.h"

namespace unbroken::http {
namespace {

struct RecorderTest : ::testing::Test {
  RecorderTest() : loop_(std::move(*net::EventLoop::create())), ctx_(*loop_, limits_, router_, stats_) {
    ctx_.record = [this](const RequestRecord& r) {
      records_.push_back(r);
      paths_.emplace_back(r.path);
    };
    req_.method = "GET";
    req_.target = "/x";
  }
  RequestRecorder::End end(Outcome outcome, int status, Phase phase) {
    return RequestRecorder::End{
        outcome, std::nullopt, {}, status, phase, &req_, "10.0.0.1:1", RequestRecorder::kNoRoute, false};
  }

  std::unique_ptr<net::EventLoop> loop_;
  HttpLimits limits_;
  Router router_;
  LoopStats stats_;
  LoopContext ctx_;
  testing::FakeTransport transport_;
  Request req_;
  std::vector<RequestRecord> records_;
  std::vector<std::string> paths_;
};

TEST_F(RecorderTest, AnsweredRequestIsHeldUntilEmitted) {
  RequestRecorder rec(ctx_, transport_, 7);
  rec.begin();
  rec.add_in(40);
  rec.add_out(100);
  bool cancelled = true;
  EXPECT_TRUE(rec.end(end(Outcome::kOk, 200, Phase::kResponse), nullptr, &cancelled));
  EXPECT_FALSE(cancelled);
  EXPECT_TRUE(rec.has_pending());
  EXPECT_TRUE(records_.empty());
  EXPECT_FALSE(rec.still_delivering(loop_->now(), std::chrono::seconds(1)));  // no delivery figures here
  rec.emit_pending(nullptr, false);
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(records_[0].conn, 7u);
  EXPECT_EQ(records_[0].req, 1u);
  EXPECT_EQ(records_[0].status, 200);
  EXPECT_EQ(records_[0].bytes_in, 40u);
  EXPECT_EQ(records_[0].bytes_out, 100u);
  EXPECT_EQ(paths_[0], "/x");
  EXPECT_EQ(stats_.requests_by_status[200].get(), 1u);
  EXPECT_EQ(stats_.response_bytes.get(), 100u);
  EXPECT_FALSE(rec.has_pending());

  // The next request counts from zero; the connection's total goes on.
  rec.begin();
  rec.add_out(5);
  EXPECT_EQ(rec.bytes_out(), 5u);
  EXPECT_EQ(rec.conn_bytes_out(), 105u);
  EXPECT_EQ(rec.req_no(), 2u);
}

TEST_F(RecorderTest, DepartureBeforeTheHeadIsA499RecordedAtOnce) {
  RequestRecorder rec(ctx_, transport_, 1);
  rec.begin();
  bool cancelled = true;
  EXPECT_FALSE(rec.end(end(Outcome::kClientReset, 0, Phase::kRequestBody), nullptr, &cancelled));
  EXPECT_FALSE(cancelled);
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(records_[0].status, 499);
  EXPECT_EQ(records_[0].outcome, Outcome::kClientReset);
  EXPECT_EQ(
      stats_.disconnects[static_cast<std::size_t>(Outcome::kClientReset)][static_cast<std::size_t>(Phase::kRequestBody)]
          .get(),
      1u);
  EXPECT_EQ(stats_.requests_by_status[499].get(), 1u);
}

TEST_F(RecorderTest, ConnectionWithoutARequestHasRequestNumberZero) {
  RequestRecorder rec(ctx_, transport_, 3);
  bool cancelled = false;
  RequestRecorder::End e = end(Outcome::kTimeout, 408, Phase::kIdle);
  e.timer = TimerKind::kHeader;
  e.timeout = std::chrono::milliseconds(1500);
  EXPECT_FALSE(rec.end(e, nullptr, &cancelled));
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(records_[0].req, 0u);
  EXPECT_EQ(records_[0].timeout_ms, 1500u);
  EXPECT_EQ(stats_.timeouts[static_cast<std::size_t>(TimerKind::kHeader)].get(), 1u);
}

}  // namespace
}  // namespace unbroken::http
