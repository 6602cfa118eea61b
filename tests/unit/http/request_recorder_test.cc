// The request recorder on its own: an answered request's record is held until asked for (several
// held records share one reading of the kernel's delivery figures), a departure's goes out at once
// (as 499 before the head), and the counters follow each end.

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
  EXPECT_TRUE(rec.emit_if_delivered(loop_->now(), std::chrono::seconds(1)));  // no delivery figures here
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

TEST_F(RecorderTest, HeldRecordsShareOneReadingOfWhatWasAcknowledged) {
  RequestRecorder rec(ctx_, transport_, 2);
  bool cancelled = false;
  const std::uint64_t sizes[] = {100, 50, 30};
  for (std::uint64_t n : sizes) {
    rec.begin();
    rec.add_out(n);
    // Only the first held record arms the record timer: the oldest waits no longer than before.
    EXPECT_EQ(rec.end(end(Outcome::kOk, 200, Phase::kResponse), nullptr, &cancelled), n == 100);
    EXPECT_TRUE(rec.can_hold_more());
  }
  EXPECT_TRUE(records_.empty());
  // The client has the first two responses and 10 bytes of the third.
  transport_.delivery_ = net::TcpDelivery{160};
  transport_.delivery_asks_ = 0;
  rec.emit_pending(false);
  EXPECT_EQ(transport_.delivery_asks_, 1);
  ASSERT_EQ(records_.size(), 3u);
  const std::uint64_t acked[] = {100, 50, 10};
  const std::uint64_t unsent[] = {0, 0, 20};  // each up to its own end
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(records_[i].req, i + 1);
    EXPECT_EQ(records_[i].bytes_out, sizes[i]);
    EXPECT_EQ(records_[i].bytes_acked, acked[i]) << i;
    EXPECT_EQ(records_[i].bytes_unsent, unsent[i]) << i;
  }
  EXPECT_EQ(stats_.response_bytes_acked.get(), 160u);
}

TEST_F(RecorderTest, AFullRingGoesOutBeforeTheNextRecordIsHeld) {
  RequestRecorder rec(ctx_, transport_, 4);
  transport_.delivery_ = net::TcpDelivery{0};
  bool cancelled = false;
  for (std::size_t i = 0; i < RequestRecorder::kMaxHeld; ++i) {
    rec.begin();
    rec.add_out(1);
    (void)rec.end(end(Outcome::kOk, 200, Phase::kResponse), nullptr, &cancelled);
  }
  EXPECT_FALSE(rec.can_hold_more());  // the connection emits before its next request
  EXPECT_TRUE(records_.empty());
  transport_.delivery_asks_ = 0;
  rec.begin();
  rec.add_out(1);
  EXPECT_TRUE(rec.end(end(Outcome::kOk, 200, Phase::kResponse), nullptr, &cancelled));
  EXPECT_EQ(transport_.delivery_asks_, 1);
  ASSERT_EQ(records_.size(), RequestRecorder::kMaxHeld);
  EXPECT_EQ(records_.back().req, RequestRecorder::kMaxHeld);
  EXPECT_TRUE(rec.has_pending());
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
