// Malformed and oversized requests get the right status and Connection: close, never a crash, and
// the server keeps serving with no descriptor left behind.

#include <gtest/gtest.h>

#include "harness.h"

namespace unbroken::testing {
namespace {

struct BadCase {
  const char* name;
  std::string request;
  int status;
  const char* outcome;
  const char* reason = nullptr;  // the body, a text for people, when the row checks it
};

void PrintTo(const BadCase& c, std::ostream* os) {
  *os << c.name;
}

class BadRequest : public SharedServerTest, public ::testing::WithParamInterface<BadCase> {
 protected:
  static void SetUpTestSuite() { start_shared({{"--max-header-bytes", "2048", "--max-body", "1k"}}); }
};

TEST_P(BadRequest, AnsweredWithStatusAndClose) {
  const BadCase& c = GetParam();
  UniqueFd fd = connect_to(server_->port());
  send_all(fd.get(), c.request);
  auto r = read_response(fd.get());
  ASSERT_TRUE(r) << c.name;
  EXPECT_EQ(r->status, c.status) << c.name;
  EXPECT_EQ(r->headers["connection"], "close") << c.name;
  if (c.reason) {
    EXPECT_EQ(r->body, c.reason) << c.name;
  }
  EXPECT_EQ(r->body.find("HPE_"), std::string::npos) << c.name << ": llhttp's code, not a text: " << r->body;
  bool eof = false;
  read_until_close(fd.get(), &eof);
  EXPECT_TRUE(eof) << c.name << ": the server must close after a bad request";
  auto rec = record_since_start([&](const Record& rec) {
    return rec.at("status") == std::to_string(c.status) && rec.at("outcome") == c.outcome;
  });
  EXPECT_TRUE(rec) << c.name;
  fd.reset();
  EXPECT_TRUE(server_->wait_fds(baseline_)) << c.name;
  auto ok = get(server_->port(), "/hello.txt");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

const BadCase kBad[] = {
    {"malformed request line", "GET\r\n\r\n", 400, "protocol_error"},
    {"obs-fold", "GET / HTTP/1.1\r\nHost: t\r\nX-A: b\r\n c\r\n\r\n", 400, "protocol_error"},
    {"content-length with transfer-encoding",
     "POST /diag/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
     "protocol_error"},
    {"conflicting content-lengths",
     "POST /diag/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, "protocol_error"},
    {"missing host", "GET / HTTP/1.1\r\n\r\n", 400, "protocol_error"},
    // A buffered-body route; strict_http_test has the streaming route (echo) and the whole family.
    {"bad chunk framing", "POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", 400,
     "protocol_error"},
    {"body over --max-body", "POST /diag/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n", 413,
     "limit_exceeded"},
    {"chunked body over --max-body",
     "POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" + std::string(2048, 'a') + "\r\n",
     413, "limit_exceeded"},
    {"head over --max-header-bytes", "GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(4000, 'x') + "\r\n\r\n", 431,
     "limit_exceeded"},
    {"too many headers",
     [] {
       std::string s = "GET / HTTP/1.1\r\nHost: t\r\n";
       for (int i = 0; i < 120; ++i) s += "X-" + std::to_string(i) + ": v\r\n";
       return s + "\r\n";
     }(),
     431, "limit_exceeded"},
    {"unknown transfer coding", "POST /diag/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 501,
     "protocol_error"},
    {"unsupported version", "GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505, "protocol_error"},
    // RFC 9110 5.1: a field name is a token; RFC 9112 3.2: Host = uri-host [ ":" port ].
    {"empty field name", "GET / HTTP/1.1\r\nHost: t\r\n: v\r\n\r\n", 400, "protocol_error",
     "empty header field name\n"},
    {"a line that is only a colon", "GET / HTTP/1.1\r\nHost: t\r\n:\r\n\r\n", 400, "protocol_error",
     "empty header field name\n"},
    {"host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "protocol_error", "invalid Host header\n"},
    {"host with braces", "GET / HTTP/1.1\r\nHost: {t}\r\n\r\n", 400, "protocol_error", "invalid Host header\n"},
    {"host above 0x7e", "GET / HTTP/1.1\r\nHost: t\xc3\xa9\r\n\r\n", 400, "protocol_error", "invalid Host header\n"},
    {"host with a bad port", "GET / HTTP/1.1\r\nHost: t:8o\r\n\r\n", 400, "protocol_error", "invalid Host header\n"},
    {"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "protocol_error", "more than one Host header\n"},
    // A malformed version is a 400; 505 is for a well-formed one we do not speak.
    {"version in words", "GET / HTTP/one.one\r\nHost: t\r\n\r\n", 400, "protocol_error", "malformed HTTP version\n"},
    {"version with a slash after it", "GET / HTTP/1.1/\r\nHost: t\r\n\r\n", 400, "protocol_error"},
    {"negative version", "GET / HTTP/-1,0\r\nHost: t\r\n\r\n", 400, "protocol_error", "malformed HTTP version\n"},
    {"version with leading zeros", "GET / HTTP/0000000001.1\r\nHost: t\r\n\r\n", 400, "protocol_error",
     "malformed HTTP version\n"},
    {"http/3.0", "GET / HTTP/3.0\r\nHost: t\r\n\r\n", 505, "protocol_error", "unsupported HTTP version\n"},
    {"bad chunk size in words", "POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400,
     "protocol_error", "invalid chunk size\n"},
    {"tls handshake on the http port", std::string("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11), 400,
     "protocol_error"},
};

INSTANTIATE_TEST_SUITE_P(Table, BadRequest, ::testing::ValuesIn(kBad), [](const auto& info) {
  std::string n = info.param.name;
  for (char& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
});

}  // namespace
}  // namespace unbroken::testing
