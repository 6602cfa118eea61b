// The parser wrapper as a table: every input is fed whole, and split at every byte position, and one
// byte at a time; the result must be the same every way.

#include "http/request_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/collect_body.h"
#include "common/every_split.h"

namespace unbroken::http {
namespace {

using Collect = unbroken::testing::CollectBody;
using unbroken::testing::every_split;

struct Parsed {
  int error_status = 0;  // 0: parsed fine
  std::string error_reason;
  std::vector<Request> requests;
  std::vector<std::string> bodies;
};

// Feeds `chunks` in order, collecting complete messages. A kHead pause is resumed at once.
Parsed parse_chunks(const std::vector<std::string>& chunks, ParserLimits limits = {}) {
  RequestParser p(limits);
  Collect sink;
  Parsed out;
  for (const std::string& c : chunks) {
    std::string_view rest = c;
    while (!rest.empty()) {
      auto r = p.feed(rest, &sink);
      rest.remove_prefix(r.consumed);
      if (r.status == RequestParser::Status::kError) {
        out.error_status = p.error_status();
        out.error_reason = p.error_reason();
        return out;
      }
      if (r.status == RequestParser::Status::kMessage) {
        out.requests.push_back(p.request());
        out.bodies.push_back(sink.body);
        sink.body.clear();
      }
      if (r.status == RequestParser::Status::kNeedMore) break;
    }
  }
  return out;
}

struct Case {
  const char* name;
  std::string input;
  int status;  // expected error status, 0 for success
  std::size_t messages = 1;
  std::string first_body = "";
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

class ParserTable : public ::testing::TestWithParam<Case> {};

TEST_P(ParserTable, SameResultAtEverySplitPoint) {
  const Case& c = GetParam();
  for (const auto& chunks : every_split(c.input)) {
    Parsed p = parse_chunks(chunks);
    ASSERT_EQ(p.error_status, c.status) << c.name << " split into " << chunks.size() << " (first " << chunks[0].size()
                                        << " bytes)";
    if (c.status == 0) {
      ASSERT_EQ(p.requests.size(), c.messages) << c.name;
      EXPECT_EQ(p.bodies[0], c.first_body) << c.name;
    }
  }
}

const Case kCases[] = {
    {"simple get", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0},
    {"http/1.0 without host", "GET / HTTP/1.0\r\n\r\n", 0},
    {"content-length body", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", 0, 1, "hello"},
    {"chunked body",
     "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n", 0, 1,
     "helloabc"},
    {"pipelined", "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n", 0, 2},
    {"missing host", "GET / HTTP/1.1\r\n\r\n", 400},
    {"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
    {"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400},
    {"cl and te", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     400},
    {"conflicting cl", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
    {"bad chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
    {"unknown te", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
    {"chunked not last", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400},
    {"http/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
    {"http/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505},
    {"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400},
    {"space in header name", "GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n", 400},
    {"bare lf", "GET / HTTP/1.1\nHost: a\n\n", 400},
    // Found by the smuggling table: two lines that each say chunked are "chunked, chunked".
    {"chunked on two lines",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
    {"coding after a chunked line",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n", 400},
    // Found by fuzz_request_parser: the fold after the bad version used to be seen only when both
    // arrived in one read (400 whole, 505 split).
    {"bad version then obs-fold", "GET / HTTP/1.a.1\r\nHosta\r\nX: a\r\n b\r\n\r\n", 400},
    // Found by fuzz_request_parser: when the empty line between two requests arrived in a read of
    // its own, the next head was not scanned, so its fold passed (400 whole, two requests split).
    {"empty line then a folded request",
     "GET /a HTTP/1.1\r\nHost: a\r\n\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400},
    {"unsupported expectation", "GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n", 417},
    // RFC 9110 5.1: a field name is a token, so never empty.
    {"empty field name", "GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", 400},
    {"a line that is only a colon", "GET / HTTP/1.1\r\nHost: a\r\n:\r\n\r\n", 400},
    {"empty field name first", "GET / HTTP/1.1\r\n: v\r\nHost: a\r\n\r\n", 400},
    // RFC 9112 3.2: Host = uri-host [ ":" port ].
    {"host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
    {"host with braces", "GET / HTTP/1.1\r\nHost: {a}\r\n\r\n", 400},
    {"host above 0x7e", "GET / HTTP/1.1\r\nHost: caf\xc3\xa9.example\r\n\r\n", 400},
    {"host with a letter port", "GET / HTTP/1.1\r\nHost: a:http\r\n\r\n", 400},
    {"host with a port above 65535", "GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n", 400},
    {"host with two ports", "GET / HTTP/1.1\r\nHost: a:80:80\r\n\r\n", 400},
    {"host with an open bracket", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400},
    {"host with a bad pct-encoding", "GET / HTTP/1.1\r\nHost: a%4\r\n\r\n", 400},
    {"host ipv6 and port", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", 0},
    {"host ipv4", "GET / HTTP/1.1\r\nHost: 127.0.0.1:65535\r\n\r\n", 0},
    {"host reg-name", "GET / HTTP/1.1\r\nHost: a-b.c_d~e%41!$&'()*+,;=\r\n\r\n", 0},
    {"host empty", "GET / HTTP/1.1\r\nHost: \r\n\r\n", 0},
    // A malformed version is a 400; a well-formed one we do not speak is a 505.
    {"version in words", "GET / HTTP/one.one\r\nHost: a\r\n\r\n", 400},
    {"version with a slash after it", "GET / HTTP/1.1/\r\nHost: a\r\n\r\n", 400},
    {"negative version", "GET / HTTP/-1,0\r\nHost: a\r\n\r\n", 400},
    {"version with leading zeros", "GET / HTTP/0000000001.1\r\nHost: a\r\n\r\n", 400},
    {"version two digits", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400},
    {"http/3.0", "GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505},
    // The HTTP/2 preface, complete or not, is answered at once.
    {"h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
    {"h2 preface request line", "PRI * HTTP/2.0\r\n", 505},
    {"h2 preface method", "PRI ", 505},
    // The chunk-size family: every malformed size is a 400, and so is a chunk that does not end
    // where its size says.
    {"chunk size x", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nx\r\n", 400},
    {"chunk size negative", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n", 400},
    {"chunk size 0x", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n", 400},
    {"chunk size plus", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n", 400},
    {"chunk size empty", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n", 400},
    {"chunk size nul",
     std::string("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5") + '\0' + "\r\nhello\r\n", 400},
    {"chunk size 19 digits",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000000\r\nhello\r\n", 400},
    {"chunk size bare lf", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
     400},
    {"chunk longer than its size",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", 400},
    {"chunk without its crlf", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello0\r\n\r\n",
     400},
};

INSTANTIATE_TEST_SUITE_P(Requests, ParserTable, ::testing::ValuesIn(kCases));

// Error texts are read by people: a sentence, never llhttp's internal code.
TEST(RequestParser, ErrorReasonsSpeakToPeople) {
  for (const Case& c : kCases) {
    if (c.status == 0) continue;
    std::string reason = parse_chunks({c.input}).error_reason;
    EXPECT_FALSE(reason.empty()) << c.name;
    EXPECT_EQ(reason.find("HPE_"), std::string::npos) << c.name << ": " << reason;
  }
  auto reason_of = [](const std::string& in) { return parse_chunks({in}).error_reason; };
  EXPECT_EQ(reason_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nx\r\n"), "invalid chunk size");
  EXPECT_EQ(reason_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), "more than one Host header");
  EXPECT_EQ(reason_of("GET / HTTP/one.one\r\nHost: a\r\n\r\n"), "malformed HTTP version");
  EXPECT_EQ(reason_of("GET / HTTP/3.0\r\nHost: a\r\n\r\n"), "unsupported HTTP version");
}

// The method is known as soon as it is parsed, so an error later in the head can still be answered
// to HEAD without a body.
TEST(RequestParser, MethodIsKnownWhenTheHeadFails) {
  RequestParser p({});
  Collect sink;
  auto r = p.feed("HEAD / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", &sink);
  ASSERT_EQ(r.status, RequestParser::Status::kError);
  EXPECT_EQ(p.request().method, "HEAD");
}

TEST(RequestParser, HeadPausesBeforeTheBody) {
  RequestParser p({});
  Collect sink;
  std::string in = "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc";
  auto r = p.feed(in, &sink);
  ASSERT_EQ(r.status, RequestParser::Status::kHead);
  EXPECT_EQ(r.consumed, in.size() - 3);
  EXPECT_TRUE(p.request().expect_continue);
  EXPECT_EQ(p.request().content_length, 3u);
  EXPECT_TRUE(sink.body.empty());
  r = p.feed(std::string_view(in).substr(r.consumed), &sink);
  EXPECT_EQ(r.status, RequestParser::Status::kMessage);
  EXPECT_EQ(sink.body, "abc");
}

TEST(RequestParser, HeadOverTheLimitIs431AtEverySplit) {
  std::string in = "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(2000, 'x') + "\r\n\r\n";
  for (const auto& chunks : every_split(in)) {
    EXPECT_EQ(parse_chunks(chunks, ParserLimits{1024, 100, 1 << 20}).error_status, 431);
  }
  EXPECT_EQ(parse_chunks({in}, ParserLimits{4096, 100, 1 << 20}).error_status, 0);
}

TEST(RequestParser, TooManyHeadersIs431) {
  std::string in = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 10; ++i) in += "X-" + std::to_string(i) + ": v\r\n";
  in += "\r\n";
  EXPECT_EQ(parse_chunks({in}, ParserLimits{1 << 20, 5, 1 << 20}).error_status, 431);
  EXPECT_EQ(parse_chunks({in}, ParserLimits{1 << 20, 20, 1 << 20}).error_status, 0);
}

TEST(RequestParser, BodyOverTheLimitIs413) {
  EXPECT_EQ(parse_chunks({"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n"}, ParserLimits{4096, 100, 10})
                .error_status,
            413);
  std::string chunked =
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n";
  EXPECT_EQ(parse_chunks({chunked}, ParserLimits{4096, 100, 10}).error_status, 413);
  EXPECT_EQ(parse_chunks({chunked}, ParserLimits{4096, 100, 16}).error_status, 0);
}

TEST(RequestParser, KeepAliveFollowsVersionAndConnectionHeader) {
  EXPECT_TRUE(parse_chunks({"GET / HTTP/1.1\r\nHost: a\r\n\r\n"}).requests.at(0).keep_alive);
  EXPECT_FALSE(parse_chunks({"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"}).requests.at(0).keep_alive);
  EXPECT_FALSE(parse_chunks({"GET / HTTP/1.0\r\n\r\n"}).requests.at(0).keep_alive);
  EXPECT_TRUE(parse_chunks({"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"}).requests.at(0).keep_alive);
}

TEST(RequestParser, TargetAndHeadersAreKeptAsReceived) {
  Parsed p = parse_chunks({"GET /a%20b?x=1&y HTTP/1.1\r\nHost: h\r\nUser-Agent: t/1\r\n\r\n"});
  ASSERT_EQ(p.requests.size(), 1u);
  const Request& r = p.requests[0];
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.target, "/a%20b?x=1&y");
  EXPECT_EQ(r.path(), "/a%20b");
  EXPECT_EQ(r.query_param("x"), "1");
  EXPECT_EQ(r.query_param("y"), "");
  EXPECT_FALSE(r.query_param("z").has_value());
  EXPECT_EQ(r.header("user-agent"), "t/1");
}

}  // namespace
}  // namespace unbroken::http
