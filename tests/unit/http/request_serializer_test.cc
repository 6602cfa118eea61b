// The request serializer writes exact bytes, and what it writes reads back through RequestParser
// (fed whole, at every split, byte by byte) as the same method, target, fields and body.

#include "http/request_serializer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/collect_body.h"
#include "common/every_split.h"
#include "http/request_parser.h"

namespace unbroken::http {
namespace {

using Collect = unbroken::testing::CollectBody;
using unbroken::testing::every_split;

TEST(RequestSerializer, WritesTheHeadForEachFraming) {
  const HeaderList::Field fields[] = {{"Host", "a.example"}, {"User-Agent", "t/1"}};
  std::string out;
  append_request_head(out, {"GET", "/x?y=1", 1, fields});
  EXPECT_EQ(out, "GET /x?y=1 HTTP/1.1\r\nHost: a.example\r\nUser-Agent: t/1\r\n\r\n");
  out.clear();
  append_request_head(out, {"POST", "/u", 1, fields, BodyFraming::kContentLength, 5});
  EXPECT_EQ(out, "POST /u HTTP/1.1\r\nHost: a.example\r\nUser-Agent: t/1\r\nContent-Length: 5\r\n\r\n");
  out.clear();
  append_request_head(out, {"PUT", "/u", 1, fields, BodyFraming::kChunked});
  EXPECT_EQ(out, "PUT /u HTTP/1.1\r\nHost: a.example\r\nUser-Agent: t/1\r\nTransfer-Encoding: chunked\r\n\r\n");
  out.clear();
  append_request_head(out, {"GET", "/", 0, {}});
  EXPECT_EQ(out, "GET / HTTP/1.0\r\n\r\n");
}

TEST(RequestSerializer, FramesChunksInHex) {
  std::string out = "head|";
  append_chunk(out, "hello");
  append_chunk(out, "");  // nothing: a zero-size chunk would end the body
  append_chunk(out, std::string(255, 'x'));
  append_last_chunk(out);
  EXPECT_EQ(out, "head|5\r\nhello\r\nff\r\n" + std::string(255, 'x') + "\r\n0\r\n\r\n");
}

TEST(RequestSerializer, AppendsInPlace) {
  const HeaderList::Field fields[] = {{"Host", "a"}};
  std::string out;
  out.reserve(256);
  const char* before = out.data();
  append_request_head(out, {"POST", "/u", 1, fields, BodyFraming::kChunked});
  append_chunk(out, "piece");
  append_last_chunk(out);
  EXPECT_EQ(out.data(), before) << "the string grew past its reserve: something else was written";
}

struct RoundTrip {
  const char* name;
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> fields;
  BodyFraming framing;
  std::vector<std::string> pieces;  // the body, in the pieces it is written in
};

std::string serialize(const RoundTrip& c) {
  std::vector<HeaderList::Field> fields;
  for (const auto& [k, v] : c.fields) fields.push_back({k, v});
  std::uint64_t length = 0;
  for (const std::string& p : c.pieces) length += p.size();
  std::string out;
  append_request_head(out, {c.method, c.target, 1, fields, c.framing, length});
  for (const std::string& p : c.pieces) {
    if (c.framing == BodyFraming::kChunked) {
      append_chunk(out, p);
    } else {
      out.append(p);
    }
  }
  if (c.framing == BodyFraming::kChunked) append_last_chunk(out);
  return out;
}

TEST(RequestSerializer, RoundTripsThroughTheRequestParser) {
  const RoundTrip cases[] = {
      {"get", "GET", "/a%20b?x=1", {{"Host", "h"}, {"Accept", "*/*"}}, BodyFraming::kNone, {}},
      {"content-length",
       "POST",
       "/up",
       {{"Host", "h"}, {"X-Twice", "1"}, {"X-Twice", "2"}},
       BodyFraming::kContentLength,
       {"hello", " world"}},
      {"chunked", "PUT", "/f", {{"Host", "h"}}, BodyFraming::kChunked, {"abc", "", std::string(300, 'z'), "d"}},
      {"empty content-length", "DELETE", "/f", {{"Host", "h"}}, BodyFraming::kContentLength, {}},
  };
  for (const RoundTrip& c : cases) {
    std::string wire = serialize(c);
    for (const auto& chunks : every_split(wire)) {
      RequestParser p({});
      Collect sink;
      int messages = 0;
      for (const std::string& chunk : chunks) {
        std::string_view rest = chunk;
        while (!rest.empty()) {
          auto r = p.feed(rest, &sink);
          rest.remove_prefix(r.consumed);
          ASSERT_NE(r.status, RequestParser::Status::kError) << c.name << ": " << p.error_reason();
          if (r.status == RequestParser::Status::kMessage) ++messages;
          if (r.status == RequestParser::Status::kNeedMore) break;
        }
      }
      ASSERT_EQ(messages, 1) << c.name;
      const Request& req = p.request();
      EXPECT_EQ(req.method, c.method) << c.name;
      EXPECT_EQ(req.target, c.target) << c.name;
      std::vector<std::pair<std::string, std::string>> got;
      for (auto [k, v] : req.headers) got.emplace_back(k, v);
      auto want = c.fields;
      if (c.framing == BodyFraming::kContentLength)
        want.emplace_back("Content-Length", std::to_string(sink.body.size()));
      if (c.framing == BodyFraming::kChunked) want.emplace_back("Transfer-Encoding", "chunked");
      EXPECT_EQ(got, want) << c.name;
      std::string body;
      for (const std::string& piece : c.pieces) body += piece;
      EXPECT_EQ(sink.body, body) << c.name;
      EXPECT_EQ(req.chunked, c.framing == BodyFraming::kChunked) << c.name;
    }
  }
}

}  // namespace
}  // namespace unbroken::http
