// The happy paths: files, keep-alive, pipelining, HTTP/1.0, HEAD, bodies, 100-continue, diag routes.

#include <gtest/gtest.h>

#include "harness.h"

namespace unbroken::testing {
namespace {

class Serve : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = Server::start();
    baseline_ = server_->open_fds();
  }
  void TearDown() override { EXPECT_TRUE(server_->wait_fds(baseline_)) << "descriptors leaked"; }
  std::unique_ptr<Server> server_;
  int baseline_ = 0;
};

TEST_F(Serve, StaticFileWithTypeLengthAndValidators) {
  auto r = get(server_->port(), "/hello.txt");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello, world\n");
  EXPECT_EQ(r->headers["content-type"], "text/plain; charset=utf-8");
  EXPECT_EQ(r->headers["content-length"], "13");
  EXPECT_FALSE(r->headers["date"].empty());
  ASSERT_FALSE(r->headers["etag"].empty());
  auto again = get(server_->port(), "/hello.txt", "If-None-Match: " + r->headers["etag"] + "\r\n");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 304);
  auto range = get(server_->port(), "/hello.txt", "Range: bytes=7-11\r\n");
  ASSERT_TRUE(range);
  EXPECT_EQ(range->status, 206);
  EXPECT_EQ(range->body, "world");
  EXPECT_EQ(get(server_->port(), "/hello.txt", "Range: bytes=100-\r\n")->status, 416);
  EXPECT_EQ(get(server_->port(), "/../../etc/passwd")->status, 404);
  EXPECT_EQ(get(server_->port(), "/%2e%2e/%2e%2e/etc/passwd")->status, 404);
  EXPECT_EQ(get(server_->port(), "/missing")->status, 404);
}

TEST_F(Serve, KeepAliveServesManyRequestsOnOneConnection) {
  UniqueFd fd = connect_to(server_->port());
  for (int i = 0; i < 5; ++i) {
    send_all(fd.get(), "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    auto r = read_response(fd.get());
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "hello, world\n");
    EXPECT_FALSE(r->closed);
  }
  auto rec = server_->wait_record([](const Record& r) { return r.at("req") == "5"; });
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->at("outcome"), "ok");
  EXPECT_EQ(rec->at("path"), "/hello.txt");
  EXPECT_EQ(rec->at("status"), "200");
}

TEST_F(Serve, PipelinedRequestsAreAnsweredInOrder) {
  UniqueFd fd = connect_to(server_->port());
  send_all(fd.get(),
           "GET /diag/status/201 HTTP/1.1\r\nHost: t\r\n\r\n"
           "GET /diag/delay/50 HTTP/1.1\r\nHost: t\r\n\r\n"
           "GET /diag/status/202 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  std::vector<int> statuses;
  for (int i = 0; i < 3; ++i) {
    auto r = read_response(fd.get());
    ASSERT_TRUE(r) << i;
    statuses.push_back(r->status);
  }
  EXPECT_EQ(statuses, (std::vector<int>{201, 200, 202}));
  bool eof = false;
  EXPECT_EQ(read_until_close(fd.get(), &eof), "");
  EXPECT_TRUE(eof);
}

TEST_F(Serve, Http10ClosesAndHeadHasNoBody) {
  UniqueFd fd = connect_to(server_->port());
  send_all(fd.get(), "GET /hello.txt HTTP/1.0\r\n\r\n");
  auto r = read_response(fd.get());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello, world\n");
  bool eof = false;
  read_until_close(fd.get(), &eof);
  EXPECT_TRUE(eof);

  UniqueFd h = connect_to(server_->port());
  send_all(h.get(), "HEAD /hello.txt HTTP/1.1\r\nHost: t\r\n\r\nGET /diag/status/204 HTTP/1.1\r\nHost: t\r\n\r\n");
  auto head = read_response(h.get(), /*head_request=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->headers["content-length"], "13");
  auto next = read_response(h.get());
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 204);  // the HEAD response carried no body bytes
}

TEST_F(Serve, EchoStreamsContentLengthAndChunkedBodies) {
  UniqueFd fd = connect_to(server_->port());
  send_all(fd.get(), "POST /diag/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world");
  auto r = read_response(fd.get());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "hello world");
  send_all(fd.get(),
           "POST /diag/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
           "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  r = read_response(fd.get());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->headers["transfer-encoding"], "chunked");
  EXPECT_EQ(r->body, "hello world");
}

TEST_F(Serve, ExpectContinueGetsA100BeforeTheBody) {
  UniqueFd fd = connect_to(server_->port());
  send_all(fd.get(), "POST /diag/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  auto cont = read_response(fd.get());
  ASSERT_TRUE(cont);
  EXPECT_EQ(cont->status, 100);
  send_all(fd.get(), "ping");
  auto r = read_response(fd.get());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ping");
}

TEST_F(Serve, DiagRoutes) {
  auto bytes = get(server_->port(), "/diag/bytes/100000");
  ASSERT_TRUE(bytes);
  EXPECT_EQ(bytes->body.size(), 100000u);
  auto chunked = get(server_->port(), "/diag/bytes/70000?chunked=1");
  ASSERT_TRUE(chunked);
  EXPECT_EQ(chunked->headers["transfer-encoding"], "chunked");
  EXPECT_EQ(chunked->body.size(), 70000u);
  EXPECT_EQ(get(server_->port(), "/diag/status/418")->status, 418);
  EXPECT_EQ(get(server_->port(), "/diag/delay/30")->body, "ok\n");
  EXPECT_EQ(get(server_->port(), "/diag/work/30")->body, "ok\n");
  auto drip = get(server_->port(), "/diag/drip?bytes=1000&duration_ms=200");
  ASSERT_TRUE(drip);
  EXPECT_EQ(drip->body.size(), 1000u);
  EXPECT_EQ(get(server_->port(), "/diag/bytes/notanumber")->status, 400);
  EXPECT_EQ(get(server_->port(), "/diag/echo")->status, 405);
}

TEST_F(Serve, AdminHealthAndMetrics) {
  auto h = get(server_->admin_port(), "/healthz");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(h->body, "ok\n");
  ASSERT_TRUE(get(server_->port(), "/hello.txt"));
  ASSERT_TRUE(server_->wait_record([](const Record& r) { return r.at("path") == "/hello.txt"; }));
  EXPECT_GE(server_->metric("unbroken_requests_total{status=\"200\"}"), 1);
  // A keep-alive connection that has had its answer is open, and counted as such.
  UniqueFd held = connect_to(server_->port());
  send_all(held.get(), "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
  auto r = read_response(held.get());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_GE(server_->metric("unbroken_connections_active"), 1);
  EXPECT_EQ(server_->metric("unbroken_handler_cancelled_total"), 0) << "nothing was cancelled";
}

}  // namespace
}  // namespace unbroken::testing
