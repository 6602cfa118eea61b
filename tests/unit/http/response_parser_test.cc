// The response parser as a table: every stream is fed whole, split at every byte position, and one
// byte at a time, and must read the same every way. A row's `trace` is what the stream said, one
// entry a response: "interim 100", "200 ka [body]" (ka: keep-alive, or close), "101 upgrade
// rest[bytes left]", "error: <reason>".

#include "http/response_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/collect_body.h"
#include "common/every_split.h"

namespace unbroken::http {
namespace {

using Collect = unbroken::testing::CollectBody;
using unbroken::testing::every_split;

struct Case {
  const char* name;
  std::string input;
  std::string trace;
  bool eof = false;                       // the server closes after the input
  std::vector<std::string> methods = {};  // the request method of each final response in turn (GET after)
  ParserLimits limits = {};
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

std::string describe_message(const ResponseParser& p, const std::string& body) {
  const ParsedResponse& r = p.response();
  std::string out = std::to_string(r.status) + (r.keep_alive ? " ka [" : " close [") + body + "]";
  if (!r.trailers.empty()) {
    out += " trailers{";
    for (auto [k, v] : r.trailers) out.append(k).append(": ").append(v).append(";");
    out += "}";
  }
  return out;
}

// Feeds `chunks` in order (then the close, when `eof`) and traces what the parser made of them.
std::string parse_chunks(const std::vector<std::string>& chunks, const Case& c) {
  ResponseParser p(c.limits);
  Collect sink;
  std::vector<std::string> trace;
  std::size_t finals = 0;
  auto method = [&] { return finals < c.methods.size() ? c.methods[finals] : std::string("GET"); };
  p.expect_response_to(method());
  std::string rest;  // after a 101
  bool upgraded = false;
  auto join = [&] {
    std::string out;
    for (const std::string& t : trace) out += (out.empty() ? "" : "; ") + t;
    return out;
  };
  for (const std::string& chunk : chunks) {
    std::string_view data = chunk;
    while (!data.empty() && !upgraded) {
      auto r = p.feed(data, &sink);
      data.remove_prefix(r.consumed);
      switch (r.status) {
        case ResponseParser::Status::kNeedMore: break;
        case ResponseParser::Status::kHead: continue;
        case ResponseParser::Status::kInterim:
          trace.push_back("interim " + std::to_string(p.response().status));
          continue;
        case ResponseParser::Status::kMessage:
          EXPECT_EQ(p.body_bytes(), sink.body.size()) << c.name;
          trace.push_back(describe_message(p, sink.body));
          sink.body.clear();
          ++finals;
          p.expect_response_to(method());
          continue;
        case ResponseParser::Status::kUpgrade:
          trace.push_back(std::to_string(p.response().status) + " upgrade");
          upgraded = true;
          continue;
        case ResponseParser::Status::kError: trace.push_back("error: " + std::string(p.error_reason())); return join();
      }
      break;
    }
    if (upgraded) rest.append(data);
  }
  if (upgraded) {
    trace.back() += " rest[" + rest + "]";
    return join();
  }
  if (c.eof) {
    auto end = p.finish();
    if (end == ResponseParser::Status::kMessage) trace.push_back(describe_message(p, sink.body));
    if (end == ResponseParser::Status::kError) {
      EXPECT_TRUE(p.cut_short()) << c.name;
      trace.push_back("error: " + std::string(p.error_reason()));
    }
  }
  return join();
}

class ResponseTable : public ::testing::TestWithParam<Case> {};

TEST_P(ResponseTable, SameResultAtEverySplitPoint) {
  const Case& c = GetParam();
  for (const auto& chunks : every_split(c.input)) {
    ASSERT_EQ(parse_chunks(chunks, c), c.trace)
        << c.name << " split into " << chunks.size() << " (first " << chunks[0].size() << " bytes)";
  }
}

const std::string kChunkedHead = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
const std::string kUntilCloseCut = "connection closed before the response body ended";

const Case kFraming[] = {
    {"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "200 ka [hello]"},
    {"content-length 0", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "200 ka []"},
    {"chunked", kChunkedHead + "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", "200 ka [abcde]"},
    {"chunked with trailers", kChunkedHead + "3\r\nabc\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\n",
     "200 ka [abc] trailers{X-T: 1;Y: 2;}"},
    // llhttp 8.1 takes a name, name=value, name;name and a quoted value; it refuses a name after
    // name=value ("1;a=b;c") and whitespace before ';', which real servers do not send.
    {"chunk extensions",
     kChunkedHead + "3;a\r\nabc\r\n2;n=v\r\nde\r\n1;a;b\r\nf\r\n3;q=\"x y\"\r\nghi\r\n0;last\r\n\r\n",
     "200 ka [abcdefghi]"},
    {"until close", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody-until-close", "200 close [body-until-close]",
     true},
    {"until close, empty", "HTTP/1.1 200 OK\r\n\r\n", "200 close []", true},
    // RFC 9112 6.3: a transfer coding without chunked leaves the close to end the body.
    {"until close after gzip coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxyz", "200 close [xyz]", true},
    {"until close not yet closed", "HTTP/1.1 200 OK\r\n\r\nsome", ""},
    {"content-length cut short", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "error: " + kUntilCloseCut, true},
    {"chunked cut short", kChunkedHead + "5\r\nab", "error: " + kUntilCloseCut, true},
    {"chunked cut before the last chunk", kChunkedHead + "2\r\nab\r\n", "error: " + kUntilCloseCut, true},
    {"head cut short", "HTTP/1.1 200 OK\r\nContent-Le", "error: connection closed before the response head ended",
     true},
    {"clean close after a response", "HTTP/1.1 204 No Content\r\n\r\n", "204 ka []", true},
    {"pipelined keep-alive",
     "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"
     "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nbc\r\n0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
     "200 ka [a]; 404 ka [bc]; 204 ka []"},
    {"head with content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "200 ka []", false, {"HEAD"}},
    {"head with chunked", kChunkedHead, "200 ka []", false, {"HEAD"}},
    {"head then get",
     "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
     "200 ka []; 200 ka [ok]",
     false,
     {"HEAD", "GET"}},
    {"304 with content-length",
     "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
     "304 ka []; 200 ka [x]"},
    {"204 with content-length", "HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n", "204 ka []"},
    {"100 then 200", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
     "interim 100; 200 ka [ok]"},
    {"103 and 100 then 200",
     "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n"
     "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
     "interim 103; interim 100; 200 ka [ok]"},
    {"interim with content-length", "HTTP/1.1 100 Continue\r\nContent-Length: 4\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
     "interim 100; 204 ka []"},
    {"head's interim then final",
     "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
     "interim 100; 200 ka []",
     false,
     {"HEAD"}},
    {"100 then close", "HTTP/1.1 100 Continue\r\n\r\n",
     "interim 100; error: connection closed before the response head ended", true},
    {"101 with trailing bytes",
     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello",
     "101 upgrade rest[\x81\x05hello]"},
    {"101 without upgrade fields", "HTTP/1.1 101 Switching Protocols\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
     "101 upgrade rest[HTTP/1.1 200 OK\r\n\r\n]"},
    {"101 with nothing after", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
     "101 upgrade rest[]"},
    {"http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "200 close [ok]"},
    {"http/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", "200 ka [ok]"},
    // RFC 9112 6.1: Transfer-Encoding in a 1.0 message is faulty framing; the connection closes.
    {"http/1.0 chunked", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     "200 close []"},
    {"408 close", "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", "408 close []"},
    {"no reason phrase", "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", "200 ka []"},
    {"no space before the missing reason", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", "200 ka []"},
};

const Case kErrors[] = {
    {"garbage", "SSH-2.0-OpenSSH_9.2\r\n", "error: malformed status line"},
    {"tls record", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "error: malformed status line"},
    {"lower-case protocol", "http/1.1 200 OK\r\n\r\n", "error: malformed status line"},
    {"two-digit status", "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", "error: malformed status code"},
    {"status with a leading zero", "HTTP/1.1 0200 OK\r\nContent-Length: 0\r\n\r\n", "error: malformed status code"},
    {"four-digit status", "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", "error: malformed status code"},
    {"two spaces before the status", "HTTP/1.1  200 OK\r\nContent-Length: 0\r\n\r\n", "error: malformed status code"},
    {"status in words", "HTTP/1.1 OK\r\n\r\n", "error: malformed status code"},
    {"status 600", "HTTP/1.1 600 Odd\r\nContent-Length: 0\r\n\r\n", "error: status code out of range"},
    {"status 099", "HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n", "error: status code out of range"},
    {"http/1.2", "HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n", "error: unsupported HTTP version"},
    {"http/2.0", "HTTP/2.0 200 OK\r\n\r\n", "error: unsupported HTTP version"},
    {"version in words", "HTTP/one.one 200 OK\r\n\r\n", "error: malformed HTTP version"},
    {"cl and te", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     "error: Content-Length together with Transfer-Encoding"},
    {"two content-lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na",
     "error: more than one Content-Length"},
    {"content-length list", "HTTP/1.1 200 OK\r\nContent-Length: 1,1\r\n\r\na", "error: invalid Content-Length"},
    {"negative content-length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "error: invalid Content-Length"},
    {"chunked twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
     "error: chunked applied twice"},
    {"chunked not last", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
     "error: chunked is not the final transfer coding"},
    {"coding after a chunked line", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
     "error: chunked is not the final transfer coding"},
    {"bad chunk size", kChunkedHead + "zz\r\n", "error: invalid chunk size"},
    {"chunk size 0x", kChunkedHead + "0x5\r\nhello\r\n", "error: invalid chunk size"},
    {"chunk longer than its size", kChunkedHead + "3\r\nhello\r\n0\r\n\r\n", "error: Expected CRLF after chunk"},
    {"chunk extension after a value", kChunkedHead + "1;a=b;c\r\nx\r\n0\r\n\r\n", "error: invalid chunk size"},
    {"obs-fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n", "error: obsolete line folding"},
    {"obs-fold with a tab", "HTTP/1.1 200 OK\r\nX-A: a\r\n\tb\r\nContent-Length: 0\r\n\r\n",
     "error: obsolete line folding"},
    {"bare lf", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", "error: invalid character in a header field"},
    {"empty field name", "HTTP/1.1 200 OK\r\n: v\r\nContent-Length: 0\r\n\r\n", "error: empty header field name"},
    {"space in a field name", "HTTP/1.1 200 OK\r\nBad Name: v\r\n\r\n", "error: invalid character in a header field"},
    {"error after a good response", "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 20 OK\r\n\r\n",
     "204 ka []; error: malformed status code"},
};

std::string many_fields(int n) {
  std::string out = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < n; ++i) out += "X-" + std::to_string(i) + ": v\r\n";
  return out + "Content-Length: 0\r\n\r\n";
}

const ParserLimits kSmall{256, 8, 16};

const Case kLimits[] = {
    {"head at the limit", many_fields(6), "200 ka []", false, {}, kSmall},
    {"too many fields", many_fields(8), "error: too many header fields", false, {}, kSmall},
    {"head too large",
     "HTTP/1.1 200 OK\r\nX-Big: " + std::string(300, 'x') + "\r\n\r\n",
     "error: response head too large",
     false,
     {},
     kSmall},
    {"interim heads count one by one",
     "HTTP/1.1 100 Continue\r\nX: " + std::string(200, 'a') + "\r\n\r\nHTTP/1.1 200 OK\r\nX: " + std::string(200, 'b') +
         "\r\nContent-Length: 0\r\n\r\n",
     "interim 100; 200 ka []",
     false,
     {},
     kSmall},
    {"content-length over the body limit",
     "HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n",
     "error: response body too large",
     false,
     {},
     kSmall},
    {"content-length at the body limit",
     "HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n" + std::string(16, 'x'),
     "200 ka [" + std::string(16, 'x') + "]",
     false,
     {},
     kSmall},
    {"chunked over the body limit",
     kChunkedHead + "9\r\n123456789\r\n9\r\n123456789\r\n0\r\n\r\n",
     "error: response body too large",
     false,
     {},
     kSmall},
    {"until close over the body limit",
     "HTTP/1.1 200 OK\r\n\r\n" + std::string(17, 'x'),
     "error: response body too large",
     true,
     {},
     kSmall},
    {"trailers too large",
     kChunkedHead + "0\r\nX-T: " + std::string(300, 't') + "\r\n\r\n",
     "error: trailer section too large",
     false,
     {},
     kSmall},
    {"too many trailers",
     kChunkedHead + "0\r\n" + many_fields(8).substr(17),
     "error: too many header fields",
     false,
     {},
     kSmall},
};

INSTANTIATE_TEST_SUITE_P(Framing, ResponseTable, ::testing::ValuesIn(kFraming));
INSTANTIATE_TEST_SUITE_P(Errors, ResponseTable, ::testing::ValuesIn(kErrors));
INSTANTIATE_TEST_SUITE_P(Limits, ResponseTable, ::testing::ValuesIn(kLimits));

// Error texts are read by people (a proxy's 502 names them): a sentence, never llhttp's code.
TEST(ResponseParser, ErrorReasonsSpeakToPeople) {
  for (const Case& c : kErrors) {
    std::string trace = parse_chunks({c.input}, c);
    EXPECT_EQ(trace.find("HPE_"), std::string::npos) << c.name << ": " << trace;
    EXPECT_NE(trace.find("error: "), std::string::npos) << c.name << ": " << trace;
  }
}

TEST(ResponseParser, HeadPausesBeforeTheBodyWithItsFieldsKept) {
  ResponseParser p({});
  Collect sink;
  std::string in = "HTTP/1.1 201 Created Here\r\ncontent-LENGTH: 3\r\nX-A: 1\r\nX-A: 2\r\n\r\nabc";
  auto r = p.feed(in, &sink);
  ASSERT_EQ(r.status, ResponseParser::Status::kHead);
  EXPECT_EQ(r.consumed, in.size() - 3);
  EXPECT_TRUE(sink.body.empty());
  const ParsedResponse& head = p.response();
  EXPECT_EQ(head.status, 201);
  EXPECT_EQ(head.reason, "Created Here");
  EXPECT_EQ(head.version_minor, 1);
  EXPECT_EQ(head.framing, ResponseFraming::kLength);
  EXPECT_EQ(head.content_length, 3u);
  EXPECT_EQ(head.header("Content-Length"), "3");
  EXPECT_EQ(head.header("x-a"), "1");  // the first of its name
  EXPECT_EQ(head.headers.size(), 3u);
  EXPECT_EQ(head.header("absent"), "");
  r = p.feed(std::string_view(in).substr(r.consumed), &sink);
  EXPECT_EQ(r.status, ResponseParser::Status::kMessage);
  EXPECT_EQ(sink.body, "abc");
  EXPECT_EQ(p.body_bytes(), 3u);
  EXPECT_FALSE(p.in_message());
}

TEST(ResponseParser, ACutShortBodyKeepsWhatCameAndItsCount) {
  ResponseParser p({});
  Collect sink;
  EXPECT_EQ(p.feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", &sink).status, ResponseParser::Status::kHead);
  EXPECT_EQ(p.feed("abc", &sink).status, ResponseParser::Status::kNeedMore);
  EXPECT_EQ(p.finish(), ResponseParser::Status::kError);
  EXPECT_TRUE(p.cut_short());
  EXPECT_EQ(p.body_bytes(), 3u);
  EXPECT_EQ(sink.body, "abc");
  EXPECT_EQ(p.response().status, 200);
}

TEST(ResponseParser, AnInterimHeadIsReadableBeforeTheFinalOne) {
  ResponseParser p({});
  std::string in = "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
  auto r = p.feed(in, nullptr);
  ASSERT_EQ(r.status, ResponseParser::Status::kInterim);
  EXPECT_EQ(p.response().status, 103);
  EXPECT_EQ(p.response().header("link"), "</s.css>");
  EXPECT_TRUE(p.in_message()) << "the final response is still to come";
  EXPECT_FALSE(p.head_complete());
  r = p.feed(std::string_view(in).substr(r.consumed), nullptr);
  EXPECT_EQ(r.status, ResponseParser::Status::kMessage);
  EXPECT_EQ(p.response().status, 204);
  EXPECT_TRUE(p.head_complete());
}

TEST(ResponseParser, UpgradeLeavesTheRestToTheCaller) {
  ResponseParser p({});
  std::string head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
  auto r = p.feed(head + "frames", nullptr);
  ASSERT_EQ(r.status, ResponseParser::Status::kUpgrade);
  EXPECT_EQ(r.consumed, head.size());
  EXPECT_EQ(p.response().header("upgrade"), "websocket");
  EXPECT_FALSE(p.response().keep_alive);
  r = p.feed("frames", nullptr);
  EXPECT_EQ(r.status, ResponseParser::Status::kUpgrade);
  EXPECT_EQ(r.consumed, 0u);
}

TEST(ResponseParser, ResetStartsAgainAfterAnError) {
  ResponseParser p({});
  EXPECT_EQ(p.feed("HTTP/1.1 20 OK\r\n\r\n", nullptr).status, ResponseParser::Status::kError);
  EXPECT_EQ(p.feed("HTTP/1.1 200 OK\r\n\r\n", nullptr).status, ResponseParser::Status::kError) << "errors stick";
  p.reset();
  EXPECT_EQ(p.feed("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", nullptr).status, ResponseParser::Status::kMessage);
  EXPECT_TRUE(p.error_reason().empty());
}

}  // namespace
}  // namespace unbroken::http
