// Every way a client can leave, in every phase: the record says who left, where, and what became of
// the handler; the server keeps serving and leaks nothing.

#include <gtest/gtest.h>
#include <sys/socket.h>

#include "harness.h"

namespace unbroken::testing {
namespace {

class Departure : public SharedServerTest {
 protected:
  static void SetUpTestSuite() { start_shared(); }
  void TearDown() override {
    SharedServerTest::TearDown();
    std::size_t before = server_->records().size();
    auto ok = get(server_->port(), "/hello.txt");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200);
    // Its record is written once the connection is gone: wait for it, or the next test would see it.
    EXPECT_TRUE(server_->wait_record([](const Record& r) { return r.at("path") == "/hello.txt"; }, 10s, before));
  }
  std::optional<Record> expect_record(const std::string& outcome, const std::string& phase) {
    auto r = record_since_start([&](const Record& r) { return r.at("outcome") == outcome && r.at("phase") == phase; });
    EXPECT_TRUE(r) << "no " << outcome << "/" << phase << " record";
    // ... and the same event in the metrics.
    std::string sample = "unbroken_disconnects_total{outcome=\"" + outcome + "\",phase=\"" + phase + "\"}";
    EXPECT_GE(server_->metric(sample), metric_at_start(sample) + 1) << sample;
    return r;
  }
};

TEST_F(Departure, FinDuringRequestHead) {
  UniqueFd fd = connect_to(server_->port());
  send_all(fd.get(), "GET /hello.txt HTTP/1.1\r\nHo");
  fd.reset();
  auto r = expect_record("client_closed", "request_headers");
  if (r) {
    EXPECT_EQ(r->at("status"), "499");
  }
}

TEST_F(Departure, RstDuringRequestHead) {
  UniqueFd fd = connect_to(server_->port());
  send_all(fd.get(), "GET /hello.txt HTTP/1.1\r\nHo");
  reset(fd);
  expect_record("client_reset", "request_headers");
}

TEST_F(Departure, FinDuringRequestBody) {
  UniqueFd fd = connect_to(server_->port());
  send_all(fd.get(), "POST /nothing HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\npartial");
  fd.reset();
  auto r = expect_record("client_closed", "request_body");
  if (r) {
    EXPECT_EQ(r->at("status"), "499");
  }
}

TEST_F(Departure, FinDuringHandlerCancelsItAtOnce) {
  double cancelled = server_->metric("unbroken_handler_cancelled_total");
  UniqueFd fd = connect_to(server_->port());
  send_all(fd.get(), "GET /diag/delay/30000 HTTP/1.1\r\nHost: t\r\n\r\n");
  // Wait until the handler runs, then leave.
  fd.reset();
  auto r = expect_record("client_closed", "handler");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->at("status"), "499");
  EXPECT_EQ(r->at("cancelled"), "true");
  // Noticed at once, not after the 30 s handler.
  EXPECT_LT(std::stod(r->at("duration_ms")), 10'000);
  EXPECT_GE(server_->metric("unbroken_handler_cancelled_total"), cancelled + 1);
  EXPECT_GE(server_->metric("unbroken_disconnects_total{outcome=\"client_closed\",phase=\"handler\"}"), 1);
}

TEST_F(Departure, RstDuringHandler) {
  UniqueFd fd = connect_to(server_->port());
  send_all(fd.get(), "GET /diag/delay/30000 HTTP/1.1\r\nHost: t\r\n\r\n");
  reset(fd);
  auto r = expect_record("client_reset", "handler");
  if (r) {
    EXPECT_EQ(r->at("cancelled"), "true");
  }
}

TEST_F(Departure, HangUpWithUnreadBodyCancelsTheHandler) {
  // The handler runs while most of the body is still unsent: EPOLLRDHUP must be seen even though
  // the server is not reading the body.
  UniqueFd fd = connect_to(server_->port());
  send_all(fd.get(),
           "GET /diag/delay/30000 HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n" + std::string(1000, 'x'));
  fd.reset();
  auto r = expect_record("client_closed", "handler");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->at("cancelled"), "true");
  EXPECT_EQ(r->at("status"), "499");
}

TEST_F(Departure, WorkerPoolHandlerIsCancelled) {
  UniqueFd fd = connect_to(server_->port());
  send_all(fd.get(), "GET /diag/work/30000 HTTP/1.1\r\nHost: t\r\n\r\n");
  fd.reset();
  auto r = expect_record("client_closed", "handler");
  if (r) {
    EXPECT_EQ(r->at("cancelled"), "true");
  }
  // The worker stopped: a second request gets a worker at once.
  auto ok = get(server_->port(), "/diag/work/10");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(Departure, FinDuringResponse) {
  UniqueFd fd = connect_to(server_->port());
  send_all(fd.get(), "GET /diag/bytes/200000000 HTTP/1.1\r\nHost: t\r\n\r\n");
  char buf[65536];
  std::size_t got = 0;
  while (got < 1'000'000) {
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    ASSERT_GT(n, 0);
    got += static_cast<std::size_t>(n);
  }
  fd.reset();  // unread data in our receive buffer: the kernel answers with RST
  auto r = record_since_start([](const Record& r) { return r.at("phase") == "response" && r.at("outcome") != "ok"; });
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->at("outcome") == "client_closed" || r->at("outcome") == "client_reset" ||
              r->at("outcome") == "broken_pipe")
      << r->at("outcome");
  EXPECT_EQ(r->at("status"), "200");
  EXPECT_GE(std::stoull(r->at("bytes_out")), 1'000'000u);
  EXPECT_LE(std::stoull(r->at("bytes_acked")), std::stoull(r->at("bytes_out")));
}

TEST_F(Departure, RstDuringResponse) {
  UniqueFd fd = connect_to(server_->port());
  send_all(fd.get(), "GET /diag/bytes/200000000 HTTP/1.1\r\nHost: t\r\n\r\n");
  char buf[65536];
  ASSERT_GT(::recv(fd.get(), buf, sizeof buf, 0), 0);
  reset(fd);
  auto r = record_since_start([](const Record& r) { return r.at("phase") == "response" && r.at("outcome") != "ok"; });
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->at("outcome") == "client_reset" || r->at("outcome") == "broken_pipe") << r->at("outcome");
}

TEST_F(Departure, PipelinedRequestsThenClose) {
  UniqueFd fd = connect_to(server_->port());
  send_all(fd.get(),
           "GET /diag/delay/20000 HTTP/1.1\r\nHost: t\r\n\r\n"
           "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"
           "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
  fd.reset();
  auto r = expect_record("client_closed", "handler");
  if (r) {
    EXPECT_EQ(r->at("path"), "/diag/delay/20000");
  }
}

TEST_F(Departure, IdleKeepAliveCloseIsNotADeparture) {
  UniqueFd fd = connect_to(server_->port());
  send_all(fd.get(), "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_TRUE(read_response(fd.get()));
  fd.reset();
  ASSERT_TRUE(server_->wait_fds(baseline_));
  auto since = records_since_start();
  std::string seen;
  for (const Record& r : since)
    seen += r.at("conn") + "/" + r.at("req") + " " + r.at("path") + " " + r.at("outcome") + " " + r.at("ts") + " " +
            r.at("status") + " " + r.at("client") + "; ";
  ASSERT_EQ(since.size(), 1u) << "only the answered request is recorded: " << seen;
  EXPECT_EQ(since[0].at("outcome"), "ok");
}

}  // namespace
}  // namespace unbroken::testing
