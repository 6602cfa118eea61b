// Answers that outside HTTP/1.1 test suites hold us to, through the real server: a broken body on a
// streaming route gets a 400 (or a cut response once the head is out), never a reset and never a
// record that says 200; no content to HEAD; our version to 1.0 clients; the HTTP/2 preface answered
// at once. Field and version syntax, with the error texts, are rows of bad_request_test's table.

#include <sys/socket.h>

#include "integration/harness.h"

namespace unbroken::testing {
namespace {

class StrictHttp : public SharedServerTest {
 protected:
  static void SetUpTestSuite() { start_shared(); }

  // Sends `request` and reads the whole answer; *eof is false when a reset or timeout ended it.
  static std::string exchange(const std::string& request, bool* eof) {
    UniqueFd fd = connect_to(server_->port());
    send_all(fd.get(), request);
    return read_until_close(fd.get(), eof);
  }
};

constexpr const char* kChunkedEcho = "POST /diag/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";

// The whole family of malformed chunk sizes on a streaming route, while no byte of its head has left.
TEST_F(StrictHttp, BrokenChunkOnAStreamingRouteIs400NotAReset) {
  const std::string bodies[] = {"x\r\n",
                                "-5\r\nhello\r\n",
                                "0x5\r\nhello\r\n",
                                "+5\r\nhello\r\n",
                                "\r\nhello\r\n",
                                std::string("5") + '\0' + "\r\nhello\r\n",
                                "1000000000000000000\r\nhello\r\n",
                                "5\nhello\r\n0\r\n\r\n"};
  // A status is exported once it has been counted: count from 0 until then.
  double before = server_->metric_or_zero("unbroken_requests_total{status=\"400\"}");
  double ok_before = server_->metric_or_zero("unbroken_requests_total{status=\"200\"}");
  for (const std::string& body : bodies) {
    std::size_t skip = server_->records().size();
    bool eof = false;
    std::string out = exchange(kChunkedEcho + body, &eof);
    EXPECT_TRUE(eof) << body << ": reset instead of an answer";
    EXPECT_EQ(out.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << body << "\n" << out;
    EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos) << body;
    EXPECT_NE(out.find("\r\n\r\n"), std::string::npos) << body;
    EXPECT_EQ(out.find("HPE_"), std::string::npos) << body << ": " << out;
    auto rec = server_->wait_record([](const Record& r) { return r.at("path") == "/diag/echo"; }, 10s, skip);
    ASSERT_TRUE(rec) << body;
    EXPECT_EQ(rec->at("status"), "400") << body;
    EXPECT_EQ(rec->at("outcome"), "protocol_error") << body;
    EXPECT_EQ(rec->at("phase"), "request_body") << body;
    EXPECT_EQ(rec->at("cancelled"), "true") << body;
    EXPECT_EQ(rec->at("bytes_out"), std::to_string(out.size())) << body;
  }
  EXPECT_EQ(server_->metric("unbroken_requests_total{status=\"400\"}") - before, std::size(bodies));
  EXPECT_EQ(server_->metric_or_zero("unbroken_requests_total{status=\"200\"}"), ok_before) << "a 400 counted as a 200";
}

// A chunk longer than its size: its first bytes are echoed (the head is out) before the parser sees
// the rest. The response is cut - no final chunk, a FIN not a reset - and the record says the 200
// the client saw, with the outcome and phase of the error.
TEST_F(StrictHttp, BrokenChunkAfterTheHeadLeftCutsTheResponse) {
  std::size_t skip = server_->records().size();
  bool eof = false;
  std::string out = exchange(std::string(kChunkedEcho) + "3\r\nhello\r\n0\r\n\r\n", &eof);
  EXPECT_TRUE(eof) << "reset instead of a cut";
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << out;
  EXPECT_NE(out.find("\r\n\r\n3\r\nhel\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("\r\n0\r\n\r\n"), std::string::npos) << "a cut chunked response must not look complete: " << out;
  auto rec = server_->wait_record([](const Record& r) { return r.at("path") == "/diag/echo"; }, 10s, skip);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->at("status"), "200");
  EXPECT_EQ(rec->at("outcome"), "protocol_error");
  EXPECT_EQ(rec->at("phase"), "request_body");
  EXPECT_EQ(rec->at("bytes_out"), std::to_string(out.size()));
}

// The HTTP/2 preface, complete or only its request line, is answered at once, not at the header
// timeout (10 s here: the read below would time out first).
TEST_F(StrictHttp, Http2PrefaceIsAnsweredAtOnce) {
  for (const char* preface : {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "PRI * HTTP/2.0\r\n", "PRI "}) {
    UniqueFd fd = connect_to(server_->port(), 3s);
    send_all(fd.get(), preface);
    auto r = read_response(fd.get());
    ASSERT_TRUE(r) << preface;
    EXPECT_EQ(r->status, 505) << preface;
    EXPECT_EQ(r->headers["connection"], "close");
  }
}

// RFC 9110 9.3.2: no content in an error to HEAD, the parser's own errors included.
TEST_F(StrictHttp, ErrorsToHeadCarryNoContent) {
  const char* requests[] = {"HEAD / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                            "HEAD / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                            "HEAD /diag/status/503 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                            "HEAD /no/such/file HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"};
  for (const char* req : requests) {
    bool eof = false;
    std::string out = exchange(req, &eof);
    EXPECT_TRUE(eof) << req;
    auto end = out.find("\r\n\r\n");
    ASSERT_NE(end, std::string::npos) << req << out;
    EXPECT_EQ(out.substr(end + 4), "") << req << ": content after the head";
    EXPECT_TRUE(out.rfind("HTTP/1.1 4", 0) == 0 || out.rfind("HTTP/1.1 5", 0) == 0) << out;
  }
}

// RFC 9110 6.2: a 1.0 request is answered HTTP/1.1, with the 1.0 connection rules.
TEST_F(StrictHttp, Http10IsAnsweredInOurVersion) {
  bool eof = false;
  std::string out = exchange("GET /hello.txt HTTP/1.0\r\n\r\n", &eof);
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << out;
  EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos);
  EXPECT_TRUE(eof) << "1.0 without keep-alive closes";

  UniqueFd fd = connect_to(server_->port());
  send_all(fd.get(), "GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /hello.txt HTTP/1.0\r\n\r\n");
  auto first = read_response(fd.get());
  ASSERT_TRUE(first);
  EXPECT_EQ(first->headers["connection"], "keep-alive");
  auto second = read_response(fd.get());
  ASSERT_TRUE(second) << "keep-alive asked for by a 1.0 client is kept";
  EXPECT_TRUE(second->closed);
}

}  // namespace
}  // namespace unbroken::testing
