// Each per-phase timer fires on its own, answers what it should, and is named in the record.

#include <gtest/gtest.h>

#include "harness.h"

namespace unbroken::testing {
namespace {

class Timeouts : public SharedServerTest {
 protected:
  static void SetUpTestSuite() {
    start_shared({{"--header-timeout", "400ms", "--body-timeout", "400ms", "--handler-timeout", "400ms",
                   "--send-timeout", "400ms", "--keepalive-timeout", "400ms"}});
  }
  std::optional<Record> expect_timer(const std::string& timer, const std::string& phase) {
    auto r = record_since_start(
        [&](const Record& r) { return r.count("timer") && r.at("timer") == timer && r.at("phase") == phase; });
    EXPECT_TRUE(r) << "no " << timer << " timeout record in " << phase;
    if (r) {
      EXPECT_EQ(r->at("outcome"), "timeout");
      EXPECT_EQ(r->at("timeout_ms"), "400");
    }
    std::string sample = "unbroken_timeouts_total{timer=\"" + timer + "\"}";
    EXPECT_GE(server_->metric(sample), metric_at_start(sample) + 1) << sample;
    return r;
  }
};

TEST_F(Timeouts, SlowHeadGets408) {
  UniqueFd fd = connect_to(server_->port());
  send_all(fd.get(), "GET /hello.txt HTTP/1.1\r\n");  // and then nothing
  auto r = read_response(fd.get());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_EQ(r->headers["connection"], "close");
  expect_timer("header", "request_headers");
}

TEST_F(Timeouts, SilentConnectionIsClosedWithoutAResponse) {
  UniqueFd fd = connect_to(server_->port());
  bool eof = false;
  EXPECT_EQ(read_until_close(fd.get(), &eof), "");
  EXPECT_TRUE(eof);
  expect_timer("header", "idle");
}

TEST_F(Timeouts, StalledBodyGets408) {
  UniqueFd fd = connect_to(server_->port());
  send_all(fd.get(), "POST /diag/echo-not-here HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc");
  auto r = read_response(fd.get());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  expect_timer("body", "request_body");
}

TEST_F(Timeouts, SlowHandlerGets503AndIsCancelled) {
  auto r = get(server_->port(), "/diag/delay/5000");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  auto rec = expect_timer("handler", "handler");
  if (rec) {
    EXPECT_EQ(rec->at("cancelled"), "true");
  }
}

TEST_F(Timeouts, ClientThatStopsReadingIsCutBySendTimeoutWithBoundedMemory) {
  std::uint64_t rss_before = server_->rss_kib();
  UniqueFd fd = connect_to(server_->port());
  int small = 4096;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  send_all(fd.get(), "GET /diag/bytes/10000000000 HTTP/1.1\r\nHost: t\r\n\r\n");  // 10 GB, never read
  auto rec = expect_timer("send", "response");
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->at("status"), "200");
  // The server queued at most its high-water mark for this client, not gigabytes.
  EXPECT_LT(server_->rss_kib(), rss_before + 32 * 1024);
  EXPECT_LT(std::stoull(rec->at("bytes_out")), 64u << 20);
}

TEST_F(Timeouts, KeepAliveTimeoutClosesQuietly) {
  UniqueFd fd = connect_to(server_->port());
  send_all(fd.get(), "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_TRUE(read_response(fd.get()));
  bool eof = false;
  EXPECT_EQ(read_until_close(fd.get(), &eof), "");
  EXPECT_TRUE(eof);
  auto since = records_since_start();
  ASSERT_EQ(since.size(), 1u) << "the keep-alive timeout is a normal end, not a record";
  EXPECT_GE(server_->metric("unbroken_timeouts_total{timer=\"keepalive\"}"), 1);
}

}  // namespace
}  // namespace unbroken::testing
