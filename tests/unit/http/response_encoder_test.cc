// The response encoder as a table: each row a request and a response, the whole head expected, the
// keep-alive decision and the body framing checked; then an upstream's head with its hop-by-hop
// headers, and the error answer.

#include "http/response_encoder.h"

#include <gtest/gtest.h>

#include "common/fake_transport.h"

namespace unbroken::http {
namespace {

constexpr std::string_view kDate = "Tue, 01 Dec 2026 11:00:00 GMT";

Request request(std::string method, int version_minor = 1, bool keep_alive = true) {
  Request r;
  r.method = std::move(method);
  r.target = "/";
  r.version_minor = version_minor;
  r.keep_alive = keep_alive;
  return r;
}

struct Row {
  const char* name;
  std::string method;
  int version_minor;
  bool client_keeps;  // the request allows keep-alive
  int status;
  std::optional<std::uint64_t> length;
  std::string framing;  // the head's lines after Date and Content-Type
  bool keep_alive;
  bool chunked;
  bool head_only;
};

TEST(ResponseEncoder, HeadFramingAndKeepAlive) {
  const std::vector<Row> rows = {
      {"length", "GET", 1, true, 200, 5, "Content-Length: 5\r\n", true, false, false},
      {"chunked", "GET", 1, true, 200, std::nullopt, "Transfer-Encoding: chunked\r\n", true, true, false},
      {"http10 length", "GET", 0, true, 200, 5, "Content-Length: 5\r\nConnection: keep-alive\r\n", true, false, false},
      {"http10 to the close", "GET", 0, true, 200, std::nullopt, "Connection: close\r\n", false, false, false},
      {"client closes", "GET", 1, false, 200, 5, "Content-Length: 5\r\nConnection: close\r\n", false, false, false},
      {"head", "HEAD", 1, true, 200, 5, "Content-Length: 5\r\n", true, false, true},
      {"204", "GET", 1, true, 204, 0, "", true, false, true},
      {"304", "GET", 1, true, 304, std::nullopt, "", true, true, true},
      {"100", "GET", 1, true, 100, std::nullopt, "", true, true, true},
      {"404", "GET", 1, true, 404, 10, "Content-Length: 10\r\n", true, false, false},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    Request req = request(row.method, row.version_minor, row.client_keeps);
    Headers headers{{"X-A", "1"}};
    ResponseEncoder enc;
    std::string out;
    bool keep = enc.begin(out, req, {row.status, &headers, row.length, "text/plain"}, row.client_keeps, kDate);
    std::string want = "HTTP/1.1 " + std::to_string(row.status) + " " + std::string(reason_phrase(row.status)) +
                       "\r\nServer: unbroken\r\nDate: " + std::string(kDate) +
                       "\r\nContent-Type: text/plain\r\nX-A: 1\r\n" + row.framing + "\r\n";
    EXPECT_EQ(out, want);
    EXPECT_EQ(keep, row.keep_alive);
    EXPECT_EQ(enc.chunked(), row.chunked);
    EXPECT_EQ(enc.head_only(), row.head_only);
  }
}

TEST(ResponseEncoder, DrainingConnectionSaysClose) {
  Request req = request("GET");
  ResponseEncoder enc;
  std::string out;
  EXPECT_FALSE(enc.begin(out, req, {200, nullptr, 2, {}}, false, kDate));
  EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos);
  EXPECT_EQ(out.find("Content-Type"), std::string::npos);
}

TEST(ResponseEncoder, ChunkedBodyAndFinalChunk) {
  Request req = request("GET");
  ResponseEncoder enc;
  std::string head;
  ASSERT_TRUE(enc.begin(head, req, {200, nullptr, std::nullopt, {}}, true, kDate));
  testing::FakeTransport t;
  enc.write(t, "hello", false);
  enc.write(t, "", false);  // an empty piece is no chunk (it would end the body)
  enc.write(t, std::string(26, 'z'), false);
  EXPECT_TRUE(enc.finish(t));
  EXPECT_EQ(t.pending_, "5\r\nhello\r\n1a\r\n" + std::string(26, 'z') + "\r\n0\r\n\r\n");
}

TEST(ResponseEncoder, LengthIsNeverExceededAndAShortBodyIsReported) {
  Request req = request("GET");
  ResponseEncoder enc;
  std::string head;
  ASSERT_TRUE(enc.begin(head, req, {200, nullptr, 4, {}}, true, kDate));
  testing::FakeTransport t;
  enc.write(t, "ab", false);
  EXPECT_FALSE(enc.finish(t));  // 2 of 4
  enc.write(t, "cdef", false);
  EXPECT_EQ(t.pending_, "abcd");
  EXPECT_EQ(enc.body_written(), 4u);
  EXPECT_TRUE(enc.finish(t));
}

TEST(ResponseEncoder, HeadOnlyDropsTheBody) {
  Request req = request("HEAD");
  ResponseEncoder enc;
  std::string head;
  ASSERT_TRUE(enc.begin(head, req, {200, nullptr, std::nullopt, {}}, true, kDate));
  testing::FakeTransport t;
  enc.write(t, "hidden", false);
  EXPECT_TRUE(enc.finish(t));
  EXPECT_EQ(t.pending_, "");
}

// An upstream's fields as the response parser keeps them.
HeaderList fields(std::initializer_list<std::pair<std::string_view, std::string_view>> list) {
  HeaderList h;
  for (auto [name, value] : list) h.add(name, value);
  return h;
}

TEST(ResponseEncoder, UpstreamHeadKeepsItsHeadersWithOurFraming) {
  Request req = request("GET");
  HeaderList up = fields({{"Date", "Mon, 30 Nov 2026 10:00:00 GMT"},
                          {"Server", "gunicorn"},
                          {"Connection", "keep-alive, X-Private"},
                          {"Keep-Alive", "timeout=5"},
                          {"Transfer-Encoding", "chunked"},
                          {"Content-Length", "12"},
                          {"X-Private", "hop"},
                          {"Set-Cookie", "a=1"},
                          {"Set-Cookie", "b=2"},
                          {"Upgrade", "h2c"}});
  ResponseEncoder enc;
  std::string out;
  ASSERT_TRUE(enc.begin_upstream(out, req, {201, "Made", &up}, 12, true, kDate));
  EXPECT_EQ(out,
            "HTTP/1.1 201 Made\r\nDate: Mon, 30 Nov 2026 10:00:00 GMT\r\nServer: gunicorn\r\n"
            "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 12\r\n\r\n");

  // No Date from upstream: ours; no reason: ours; no length for a 1.0 client: to the close.
  Request old = request("GET", 0);
  HeaderList bare = fields({{"Content-Type", "text/html"}});
  ResponseEncoder enc10;
  out.clear();
  EXPECT_FALSE(enc10.begin_upstream(out, old, {502, {}, &bare}, std::nullopt, true, kDate));
  EXPECT_EQ(out, "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nDate: " + std::string(kDate) +
                     "\r\nConnection: close\r\n\r\n");
  EXPECT_FALSE(enc10.chunked());
}

TEST(ResponseEncoder, TunnelHeadKeepsUpgradeAndConnectionAndFramesNoBody) {
  HeaderList up = fields({{"Upgrade", "websocket"},
                          {"Connection", "Upgrade"},
                          {"Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="},
                          {"Keep-Alive", "timeout=5"},
                          {"Transfer-Encoding", "chunked"},
                          {"Content-Length", "3"}});
  ResponseEncoder enc;
  std::string out;
  enc.begin_tunnel(out, {101, {}, &up}, kDate);
  EXPECT_EQ(out,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nDate: " +
                std::string(kDate) + "\r\n\r\n");
  EXPECT_TRUE(enc.head_only());
  EXPECT_FALSE(enc.chunked());
}

TEST(ResponseEncoder, ErrorAnswer) {
  std::string out;
  ResponseEncoder::error(out, request("GET"), 413, "too big\n", kDate);
  EXPECT_EQ(out, "HTTP/1.1 413 Content Too Large\r\nServer: unbroken\r\nDate: " + std::string(kDate) +
                     "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 8\r\nConnection: "
                     "close\r\n\r\ntoo big\n");
  out.clear();
  ResponseEncoder::error(out, request("HEAD"), 408, "slow\n", kDate);
  EXPECT_TRUE(out.ends_with("Content-Length: 5\r\nConnection: close\r\n\r\n"));
}

}  // namespace
}  // namespace unbroken::http
