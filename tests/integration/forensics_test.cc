// The forensic record: exact fields for what happened, delivery as the kernel saw it, escaping that no
// request can break, a log that stays parseable under an abort storm, and a quiet stderr.

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness.h"

namespace unbroken::testing {
namespace {

class Forensics : public SharedServerTest {
 protected:
  static void SetUpTestSuite() { start_shared({{"--noise-interval", "300ms", "--threads", "2"}}); }
};

TEST_F(Forensics, CutDownloadShowsWrittenAndAcknowledgedBytes) {
  UniqueFd fd = connect_to(server_->port());
  send_all(fd.get(), "GET /diag/bytes/20971520 HTTP/1.1\r\nHost: t\r\n\r\n");  // 20 MiB
  char buf[65536];
  std::size_t got = 0;
  while (got < (1u << 20)) {
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    ASSERT_GT(n, 0);
    got += static_cast<std::size_t>(n);
  }
  fd.reset();
  auto r = record_since_start([](const Record& r) { return r.at("path") == "/diag/bytes/20971520"; });
  ASSERT_TRUE(r);
  EXPECT_NE(r->at("outcome"), "ok");
  EXPECT_EQ(r->at("phase"), "response");
  std::uint64_t out = std::stoull(r->at("bytes_out")), acked = std::stoull(r->at("bytes_acked"));
  EXPECT_GE(out, 1u << 20);
  EXPECT_LE(acked, out);
  EXPECT_GE(acked, got) << "the client read at least this much, so the kernel saw it acknowledged";
  EXPECT_LT(out, 20u << 20) << "the server stopped writing when the client left";
}

TEST_F(Forensics, FullyReadResponseIsFullyAcknowledged) {
  UniqueFd fd = connect_to(server_->port());
  send_all(fd.get(), "GET /diag/bytes/3000000 HTTP/1.1\r\nHost: t\r\n\r\n");
  auto resp = read_response(fd.get());
  ASSERT_TRUE(resp);
  ASSERT_EQ(resp->body.size(), 3000000u);
  auto r = record_since_start([](const Record& r) { return r.at("path") == "/diag/bytes/3000000"; });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->at("outcome"), "ok");
  EXPECT_EQ(r->at("bytes_acked"), r->at("bytes_out"));
  EXPECT_EQ(r->at("bytes_unsent"), "0");
  EXPECT_GT(std::stoull(r->at("bytes_out")), 3000000u);  // the body and the head
}

// Answered records are held a few at a time and their delivery read together (RequestRecorder):
// each still says exactly what its client took, and a record that goes out at once (a refused
// request's) comes after them, in the order of the requests.
TEST_F(Forensics, KeepAliveRecordsStayExactAndInOrderBeforeARefusal) {
  UniqueFd fd = connect_to(server_->port());
  for (int i = 0; i < 3; ++i) {
    send_all(fd.get(), "GET /diag/bytes/1000?n=" + std::to_string(i) + " HTTP/1.1\r\nHost: t\r\n\r\n");
    auto resp = read_response(fd.get());
    ASSERT_TRUE(resp);
    ASSERT_EQ(resp->body.size(), 1000u);
  }
  send_all(fd.get(), "GET /diag/bytes/1000?n=3 HTTP/1.1\r\nHost: t\r\nno colon here\r\n\r\n");
  auto refused = read_response(fd.get());
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400);
  auto last = record_since_start([](const Record& r) { return r.at("status") == "400"; });
  ASSERT_TRUE(last);
  std::vector<Record> mine;
  for (const Record& r : records_since_start())
    if (field(r, "conn") == last->at("conn")) mine.push_back(r);
  ASSERT_EQ(mine.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(mine[i].at("req"), std::to_string(i + 1)) << "in request order";
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(mine[i].at("outcome"), "ok");
    EXPECT_EQ(mine[i].at("path"), "/diag/bytes/1000?n=" + std::to_string(i));
    EXPECT_EQ(mine[i].at("bytes_acked"), mine[i].at("bytes_out")) << i;
  }
  EXPECT_EQ(mine[3].at("status"), "400");
}

TEST_F(Forensics, EveryFieldIsPresentWithItsExactName) {
  ASSERT_TRUE(get(server_->port(), "/hello.txt?x=1", "User-Agent: ub-test/1\r\nReferer: http://r/\r\n"));
  auto r = record_since_start([](const Record& r) { return r.at("path") == "/hello.txt?x=1"; });
  ASSERT_TRUE(r);
  for (const char* f :
       {"ts", "conn", "req", "client", "method", "path", "status", "ua", "referer", "outcome", "phase", "bytes_in",
        "bytes_out", "bytes_acked", "bytes_unsent", "duration_ms", "handler_ms", "cancelled", "wasted_ms"})
    EXPECT_TRUE(r->count(f)) << f;
  EXPECT_EQ(r->at("ua"), "ub-test/1");
  EXPECT_EQ(r->at("referer"), "http://r/");
  EXPECT_EQ(r->at("method"), "GET");
  EXPECT_EQ(r->at("req"), "1");
  EXPECT_EQ(r->at("ts").size(), std::string("2026-11-27T00:30:34.672Z").size()) << r->at("ts");
  EXPECT_EQ(r->at("client").rfind("127.0.0.1:", 0), 0u);
}

TEST_F(Forensics, HostileBytesYieldOneValidJsonLine) {
  std::string ua = "he said \"hi\" \\u0000 \\x00 \t tab \xc3\xa9";
  std::string referer = "\"},{\"outcome\":\"ok\"} \\\"";
  ASSERT_TRUE(
      get(server_->port(), "/q%0D%0A%22%00?a='b'&c=%5C", "User-Agent: " + ua + "\r\nReferer: " + referer + "\r\n"));
  auto r = record_since_start([](const Record& r) { return r.at("path").rfind("/q%0D%0A", 0) == 0; });
  ASSERT_TRUE(r);  // records() fails the test on any line that is not JSON
  EXPECT_EQ(r->at("path"), "/q%0D%0A%22%00?a='b'&c=%5C");
  EXPECT_EQ(r->at("referer"), referer);
  EXPECT_EQ(r->at("ua"), ua);  // UTF-8 passes through, quotes and backslashes round-trip
  EXPECT_EQ(r->at("outcome"), "ok");
  auto since = records_since_start();
  EXPECT_EQ(since.size(), 1u) << "one request, one line: nothing forged";
}

TEST_F(Forensics, AbortStormKeepsTheLogParseable) {
  constexpr int kClients = 120;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this, t] {
      for (int i = t; i < kClients; i += 4) {
        UniqueFd fd = connect_to(server_->port());
        switch (i % 4) {
          case 0: send_all(fd.get(), "GET /diag/delay/5000 HTTP/1.1\r\nHost: t\r\n\r\n"); break;
          case 1: send_all(fd.get(), "GET /diag/bytes/5000000 HTTP/1.1\r\nHost: t\r\n\r\n"); break;
          case 2: send_all(fd.get(), "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nab"); break;
          case 3: send_all(fd.get(), "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"); break;
        }
        if (i % 2 == 0) {
          reset(fd);
        } else {
          fd.reset();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE(server_->wait_fds(baseline_, 10s));
  auto since = records_since_start();  // every line parsed as JSON, or the test fails
  EXPECT_EQ(since.size(), static_cast<std::size_t>(kClients));
  for (const auto& r : since) EXPECT_NE(r.at("status").substr(0, 1), "5") << "a departure is never a 5xx";
}

TEST_F(Forensics, MetricsFollowTheRecords) {
  double cancelled = server_->metric("unbroken_handler_cancelled_total");
  double closed = server_->metric("unbroken_disconnects_total{outcome=\"client_closed\",phase=\"handler\"}");
  double durations = server_->metric("unbroken_request_duration_seconds_count");
  double wasted = server_->metric("unbroken_wasted_seconds_total");
  UniqueFd fd = connect_to(server_->port());
  send_all(fd.get(), "GET /diag/work/5000 HTTP/1.1\r\nHost: t\r\n\r\n");
  fd.reset();
  auto r = record_since_start([](const Record& r) { return r.at("path") == "/diag/work/5000"; });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->at("cancelled"), "true");
  EXPECT_LT(std::stod(r->at("wasted_ms")), 1000) << "the worker stopped soon after the client left";
  EXPECT_EQ(server_->metric("unbroken_handler_cancelled_total"), cancelled + 1);
  EXPECT_EQ(server_->metric("unbroken_disconnects_total{outcome=\"client_closed\",phase=\"handler\"}"), closed + 1);
  EXPECT_GE(server_->metric("unbroken_request_duration_seconds_count"), durations + 1);
  // The worker's time after the client left is in the counter before the record is written: the
  // counter grew by the record's wasted_ms (to the microsecond the counter keeps).
  double wasted_ms = std::stod(r->at("wasted_ms"));
  EXPECT_GT(wasted_ms, 0);
  EXPECT_NEAR(server_->metric("unbroken_wasted_seconds_total") - wasted, wasted_ms / 1000, 2e-6);
  EXPECT_EQ(server_->metric("unbroken_log_records_dropped_total"), 0);
  EXPECT_GE(server_->metric("unbroken_connections_accepted_total"),
            metric_at_start("unbroken_connections_accepted_total") + 1);
  // The client left before any response byte: nothing was written, so nothing more acknowledged.
  EXPECT_EQ(server_->metric("unbroken_response_bytes_total"), metric_at_start("unbroken_response_bytes_total"));
  EXPECT_EQ(server_->metric("unbroken_response_bytes_acked_total"),
            metric_at_start("unbroken_response_bytes_acked_total"));
  EXPECT_LE(server_->metric("unbroken_response_bytes_acked_total"), server_->metric("unbroken_response_bytes_total"))
      << "more bytes acknowledged than written";
}

TEST_F(Forensics, StderrGetsFirstOccurrenceThenSummariesNotALinePerEvent) {
  for (int i = 0; i < 6; ++i) {
    UniqueFd fd = connect_to(server_->port());
    send_all(fd.get(), "GET /diag/delay/20000?noise=" + std::to_string(i) + " HTTP/1.1\r\nHost: t\r\n\r\n");
    reset(fd);
    ASSERT_TRUE(record_since_start(
        [i](const Record& r) { return r.at("path") == "/diag/delay/20000?noise=" + std::to_string(i); }));
  }
  // Wait for a summary covering them (the interval is 300 ms).
  std::string err;
  for (int i = 0; i < 100; ++i) {
    err = server_->stderr_text();
    if (err.find("more client_reset on GET /diag/delay/{ms}") != std::string::npos) break;
    std::this_thread::sleep_for(50ms);  // polling a file another process writes on its own schedule
  }
  std::size_t firsts = 0, pos = 0;
  while ((pos = err.find("first client_reset on GET /diag/delay/{ms}", pos)) != std::string::npos) ++firsts, ++pos;
  EXPECT_EQ(firsts, 1u) << err;
  EXPECT_NE(err.find("more client_reset on GET /diag/delay/{ms}"), std::string::npos) << err;
  EXPECT_EQ(err.find("Traceback"), std::string::npos);
}

TEST(ForensicsFormats, TextFormatIsOneLinePerRecordAndOffWritesNothing) {
  auto text = Server::start({{"--log-format", "text"}});
  ASSERT_TRUE(get(text->port(), "/hello.txt"));
  auto off = Server::start({{"--log", "off"}});
  ASSERT_TRUE(get(off->port(), "/hello.txt"));
  // Counted by the loop just after the response's write: the client may ask a moment earlier.
  double answered = 0;
  for (int i = 0; i < 200 && answered < 1; ++i) {
    answered = off->metric_or_zero("unbroken_requests_total{status=\"200\"}");
    if (answered < 1) std::this_thread::sleep_for(5ms);  // polling a counter: no event to await
  }
  EXPECT_EQ(answered, 1);
  EXPECT_EQ(text->stop(SIGTERM), 0);  // flushes the log
  EXPECT_EQ(off->stop(SIGTERM), 0);
  std::string lines = text->log_text();
  EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), 1) << lines;
  EXPECT_NE(lines.find("\"GET /hello.txt\" 200 ok/response"), std::string::npos) << lines;
  EXPECT_EQ(off->log_text(), "");
}

}  // namespace
}  // namespace unbroken::testing
