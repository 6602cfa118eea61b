// Compression through the real server: precompressed siblings (gzip_static, and .br), Vary and
// per-encoding ETags, 304 and Range on a variant, --gzip on the fly for files and a handler, and
// the record's `encoding`.

#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>
#include <string>

#include "common/collect_body.h"
#include "harness.h"
#include "http/request_serializer.h"
#include "http/response_parser.h"

namespace unbroken::testing {
namespace {

constexpr const char* kAcceptGzip = "Accept-Encoding: gzip\r\n";

// The gzip member decoded; "(not gzip)" when zlib refuses it, or when it does not end unless
// `partial` (then what its bytes so far decode to).
std::string gunzip(const std::string& in, bool partial = false) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) return "(not gzip)";
  std::string out(in.size() * 50 + 1024, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = inflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  inflateEnd(&zs);
  return rc == Z_STREAM_END || (partial && rc == Z_BUF_ERROR) ? out : "(not gzip)";
}

std::string text_of(std::size_t bytes) {
  std::string s;
  for (int i = 0; s.size() < bytes; ++i) s += "line " + std::to_string(i) + " of some very compressible text\n";
  s.resize(bytes);
  return s;
}

std::string fmt_chunk(const std::string& data) {
  std::string out;
  http::append_chunk(out, data);
  return out;
}

class Compression : public SharedServerTest {
 protected:
  static void SetUpTestSuite() {
    start_shared({{"--gzip", "--gzip-min-length", "1k"}});
    put("app.js", text_of(5000));
    put("app.js.gz", "GZ-SIBLING-BYTES");
    put("app.js.br", "BR-SIBLING");
    // A sibling counts only if it is no older than its file (static_open.cc): written after it, as
    // `gzip -k` would. (Written first, it was stale whenever the clock ticked in between.)
    put("only.css", text_of(100));
    put("only.css.gz", "CSS-GZ");
    put("big.txt", text_of(300'000));  // above the StaticCache's limit: the sendfile path
    put("mid.json", text_of(20'000));  // a cached file
    put("small.txt", text_of(500));    // below the floor
    put("image.png", std::string(8000, 'p'));
  }
  static void put(const std::string& name, const std::string& data) {
    std::ofstream(server_->root() + "/" + name, std::ios::binary) << data;
  }
};

TEST_F(Compression, GzSiblingIsServedWithItsHeadersAndItsOwnEtag) {
  auto plain = get(server_->port(), "/only.css");
  auto r = get(server_->port(), "/only.css", kAcceptGzip);
  ASSERT_TRUE(r && plain);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "CSS-GZ");
  EXPECT_EQ(r->headers["content-encoding"], "gzip");
  EXPECT_EQ(r->headers["content-type"], "text/css; charset=utf-8");
  EXPECT_EQ(r->headers["content-length"], "6");
  EXPECT_EQ(r->headers["vary"], "Accept-Encoding");
  EXPECT_TRUE(r->headers["etag"].ends_with("-gz\"")) << r->headers["etag"];
  EXPECT_NE(r->headers["etag"], plain->headers["etag"]);
  auto rec = record_since_start([](const Record& x) { return x.at("path") == "/only.css" && x.count("encoding"); });
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->at("encoding"), "gzip");
}

TEST_F(Compression, BrIsPreferredWhenBothAreAccepted) {
  auto r = get(server_->port(), "/app.js", "Accept-Encoding: gzip, deflate, br\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "BR-SIBLING");
  EXPECT_EQ(r->headers["content-encoding"], "br");
  EXPECT_TRUE(r->headers["etag"].ends_with("-br\"")) << r->headers["etag"];
  auto rec = record_since_start([](const Record& x) { return x.at("path") == "/app.js"; });
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->at("encoding"), "br");
  EXPECT_EQ(get(server_->port(), "/app.js", "Accept-Encoding: br;q=0.5, gzip\r\n")->body, "GZ-SIBLING-BYTES");
}

TEST_F(Compression, IdentityWhenNotAcceptedAndVaryStillThere) {
  for (std::string extra : {"", "Accept-Encoding: gzip;q=0, br;q=0\r\n"}) {
    auto r = get(server_->port(), "/app.js", extra);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, text_of(5000)) << extra;
    EXPECT_EQ(r->headers.count("content-encoding"), 0u) << extra;
    EXPECT_EQ(r->headers["vary"], "Accept-Encoding") << extra;
    EXPECT_EQ(r->headers["content-length"], "5000") << extra;
  }
  auto rec = record_since_start([](const Record& x) { return x.at("path") == "/app.js"; });
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->count("encoding"), 0u) << "identity is the absence of the field";
}

TEST_F(Compression, NotModifiedAnswersTheVariantsEtag) {
  std::string etag = get(server_->port(), "/app.js", kAcceptGzip)->headers["etag"];
  auto r = get(server_->port(), "/app.js", std::string(kAcceptGzip) + "If-None-Match: " + etag + "\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 304);
  EXPECT_EQ(r->headers["etag"], etag);
  EXPECT_EQ(r->headers["vary"], "Accept-Encoding");
  auto identity = get(server_->port(), "/app.js", "If-None-Match: " + etag + "\r\n");
  EXPECT_EQ(identity->status, 200) << "the gzip tag does not validate the identity bytes";
}

TEST_F(Compression, ARangeOnTheGzVariantCountsItsBytes) {
  auto r = get(server_->port(), "/app.js", std::string(kAcceptGzip) + "Range: bytes=3-9\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 206);
  EXPECT_EQ(r->body, std::string("GZ-SIBLING-BYTES").substr(3, 7));
  EXPECT_EQ(r->headers["content-range"], "bytes 3-9/16");
  EXPECT_EQ(r->headers["content-encoding"], "gzip");
}

TEST_F(Compression, GzipOnTheFlyForLargeAndCachedTextFiles) {
  for (std::string path : {"/big.txt", "/mid.json"}) {
    auto plain = get(server_->port(), path);
    auto r = get(server_->port(), path, kAcceptGzip);
    ASSERT_TRUE(r && plain) << path;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->headers["content-encoding"], "gzip") << path;
    EXPECT_EQ(r->headers["transfer-encoding"], "chunked") << path;
    EXPECT_EQ(r->headers.count("content-length"), 0u) << path;
    EXPECT_EQ(r->headers["vary"], "Accept-Encoding") << path;
    EXPECT_EQ(r->headers["etag"], "W/" + plain->headers["etag"]) << path;
    EXPECT_EQ(gunzip(r->body), plain->body) << path;
    EXPECT_LT(r->body.size(), plain->body.size() / 4) << path;
    EXPECT_EQ(plain->headers.count("content-encoding"), 0u) << path;
    EXPECT_EQ(plain->headers["vary"], "Accept-Encoding") << path;
    auto rec = record_since_start([&](const Record& x) { return x.at("path") == path && x.count("encoding"); });
    ASSERT_TRUE(rec) << path;
    EXPECT_EQ(rec->at("encoding"), "gzip");
    EXPECT_LT(std::stoull(rec->at("bytes_out")), plain->body.size() / 4) << "bytes_out is what went on the wire";
  }
  // The weak tag still validates (weak comparison), so a cache can revalidate what it stored.
  std::string weak = get(server_->port(), "/mid.json", kAcceptGzip)->headers["etag"];
  EXPECT_EQ(get(server_->port(), "/mid.json", std::string(kAcceptGzip) + "If-None-Match: " + weak + "\r\n")->status,
            304);
}

TEST_F(Compression, Http10GzipResponseEndsWithTheConnection) {
  UniqueFd fd = connect_to(server_->port());
  send_all(fd.get(), "GET /mid.json HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n");
  bool eof = false;
  std::string all = read_until_close(fd.get(), &eof);
  EXPECT_TRUE(eof);
  auto r = parse_response(all);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->headers["content-encoding"], "gzip");
  EXPECT_EQ(r->headers.count("content-length"), 0u) << "the body ends with the connection";
  EXPECT_EQ(r->headers.count("transfer-encoding"), 0u) << "no chunked to a 1.0 client";
  EXPECT_TRUE(r->complete);
  EXPECT_EQ(gunzip(r->body), text_of(20'000));
}

TEST_F(Compression, GzipOnTheFlyForAStreamedHandlerResponse) {
  std::string body = text_of(50'000);
  UniqueFd fd = connect_to(server_->port());
  send_all(fd.get(),
           "POST /diag/echo HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nContent-Type: text/plain\r\n"
           "Content-Length: " +
               std::to_string(body.size()) + "\r\n\r\n" + body);
  auto r = read_response(fd.get());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["content-encoding"], "gzip");
  EXPECT_EQ(r->headers["vary"], "Accept-Encoding");
  EXPECT_EQ(gunzip(r->body), body);
  // The same connection goes on: the chunked gzip body was framed correctly.
  send_all(fd.get(), "GET /small.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n");
  auto next = read_response(fd.get());
  ASSERT_TRUE(next);
  EXPECT_EQ(next->body, text_of(500));
}

// Parses the response to a request still being sent, until its gzip body so far decodes to as
// much as `want` (the socket's receive timeout is the deadline); returns what it decodes to.
std::string decoded_so_far(int fd, http::ResponseParser& parser, const std::string& want) {
  CollectBody sink;
  std::string decoded;
  char tmp[4096];
  while (decoded.size() < want.size()) {
    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) break;
    std::string_view data(tmp, static_cast<std::size_t>(n));
    for (;;) {
      auto r = parser.feed(data, &sink);
      if (r.status == http::ResponseParser::Status::kError)
        return "(malformed: " + std::string(parser.error_reason()) + ")";
      data.remove_prefix(r.consumed);
      if (r.status != http::ResponseParser::Status::kHead) break;  // all taken, or the body ended early
    }
    decoded = gunzip(sink.body, true);
  }
  return decoded;
}

TEST_F(Compression, AStreamedWriteIsFlushedNotHeldBack) {
  UniqueFd fd = connect_to(server_->port());
  std::string piece = "the first piece of a streamed text response\n";
  send_all(fd.get(),
           "POST /diag/echo HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nContent-Type: text/plain\r\n"
           "Transfer-Encoding: chunked\r\n\r\n" +
               fmt_chunk(piece));
  http::ResponseParser parser({});
  std::string decoded = decoded_so_far(fd.get(), parser, piece);
  EXPECT_EQ(parser.response().header("content-encoding"), "gzip");
  EXPECT_EQ(decoded, piece) << "the request body is not finished, yet its echo decodes already";
  send_all(fd.get(), fmt_chunk("the rest\n") + "0\r\n\r\n");
}

TEST_F(Compression, NotCompressedBelowTheFloorForImagesForHeadOrForOtherCodings) {
  auto small = get(server_->port(), "/small.txt", kAcceptGzip);
  ASSERT_TRUE(small);
  EXPECT_EQ(small->headers.count("content-encoding"), 0u);
  EXPECT_EQ(small->headers["content-length"], "500");
  auto image = get(server_->port(), "/image.png", kAcceptGzip);
  ASSERT_TRUE(image);
  EXPECT_EQ(image->headers.count("content-encoding"), 0u);
  EXPECT_EQ(image->headers.count("vary"), 0u);
  EXPECT_EQ(image->body.size(), 8000u);
  auto octets = get(server_->port(), "/diag/bytes/5000", kAcceptGzip);
  EXPECT_EQ(octets->headers.count("content-encoding"), 0u);
  UniqueFd fd = connect_to(server_->port());
  send_all(fd.get(), "HEAD /big.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n");
  auto head = read_response(fd.get(), true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->headers.count("content-encoding"), 0u);
  EXPECT_EQ(head->headers["content-length"], "300000");
  EXPECT_EQ(head->headers["vary"], "Accept-Encoding");
  auto ranged = get(server_->port(), "/big.txt", std::string(kAcceptGzip) + "Range: bytes=0-99\r\n");
  EXPECT_EQ(ranged->status, 206);
  EXPECT_EQ(ranged->headers.count("content-encoding"), 0u);
  EXPECT_EQ(ranged->body, text_of(100));
}

TEST(CompressionOff, ByDefaultNothingIsCompressedOnTheFlyButSiblingsAreServed) {
  auto server = Server::start();
  std::ofstream(server->root() + "/big.txt") << text_of(100'000);
  std::ofstream(server->root() + "/page.html") << text_of(3000);
  std::ofstream(server->root() + "/page.html.gz") << "GZ";
  auto r = get(server->port(), "/big.txt", kAcceptGzip);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->headers.count("content-encoding"), 0u);
  EXPECT_EQ(r->headers.count("vary"), 0u);
  EXPECT_EQ(r->body.size(), 100'000u);
  EXPECT_EQ(get(server->port(), "/page.html", kAcceptGzip)->body, "GZ");
}

}  // namespace
}  // namespace unbroken::testing
