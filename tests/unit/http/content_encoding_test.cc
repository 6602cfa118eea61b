// Accept-Encoding negotiation, the compressible types, and GzipStream decoded by real zlib inflate.
#include "http/content_encoding.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <string>
#include <string_view>

namespace unbroken::http {
namespace {

struct Negotiation {
  std::string_view header;
  Encoding both;       // br and gzip available
  Encoding gzip_only;  // only gzip available
};

TEST(ContentEncodingTest, AcceptEncodingPicksByQualityThenBrThenGzip) {
  const Negotiation table[] = {
      {"", Encoding::kIdentity, Encoding::kIdentity},  // absent or empty: identity only
      {"gzip", Encoding::kGzip, Encoding::kGzip},
      {"gzip, deflate, br", Encoding::kBr, Encoding::kGzip},
      {"br", Encoding::kBr, Encoding::kIdentity},
      {"GZip;Q=1.000, BR;q=0.999", Encoding::kGzip, Encoding::kGzip},
      {"br;q=0.5, gzip;q=0.8", Encoding::kGzip, Encoding::kGzip},
      {"gzip;q=0, br;q=0", Encoding::kIdentity, Encoding::kIdentity},
      {"*", Encoding::kBr, Encoding::kGzip},
      {"*;q=0", Encoding::kIdentity, Encoding::kIdentity},
      {"*;q=0, gzip", Encoding::kGzip, Encoding::kGzip},
      {"br;q=0, *", Encoding::kGzip, Encoding::kGzip},
      {"identity;q=0, gzip;q=0.1", Encoding::kGzip, Encoding::kGzip},
      {"identity, gzip;q=0.5", Encoding::kIdentity, Encoding::kIdentity},  // identity listed at 1 wins
      {"x-gzip", Encoding::kGzip, Encoding::kGzip},
      {" gzip ; q=0.5 ,br ; q = 0.4", Encoding::kGzip, Encoding::kGzip},  // spaces around "=" tolerated
      {"gzip;q=2", Encoding::kIdentity, Encoding::kIdentity},             // out of range: skipped
      {"gzip;q=0.0001", Encoding::kIdentity, Encoding::kIdentity},        // four decimals: skipped
      {"gzip;level=9;q=0.3", Encoding::kGzip, Encoding::kGzip},
      {"compress, deflate", Encoding::kIdentity, Encoding::kIdentity},
      {",,gzip,,", Encoding::kGzip, Encoding::kGzip},
  };
  for (const auto& row : table) {
    AcceptEncoding a = AcceptEncoding::parse(row.header);
    EXPECT_EQ(choose_encoding(a, true, true), row.both) << "'" << row.header << "'";
    EXPECT_EQ(choose_encoding(a, false, true), row.gzip_only) << "'" << row.header << "'";
    EXPECT_EQ(choose_encoding(a, false, false), Encoding::kIdentity) << "'" << row.header << "'";
  }
  EXPECT_EQ(AcceptEncoding::parse("gzip;q=0.25").quality(Encoding::kGzip), 250);
  EXPECT_EQ(AcceptEncoding::parse("identity;q=0").quality(Encoding::kIdentity), 0);
  EXPECT_EQ(name(Encoding::kBr), "br");
}

TEST(ContentEncodingTest, TextLikeTypesAreCompressibleOthersAreNot) {
  for (std::string_view t :
       {"text/html; charset=utf-8", "TEXT/CSS", "application/json", "application/javascript", "image/svg+xml",
        "application/ld+json", "application/xml", "application/wasm", " text/plain "}) {
    EXPECT_TRUE(compressible_type(t)) << t;
  }
  for (std::string_view t : {"image/png", "image/jpeg", "application/octet-stream", "application/gzip", "video/mp4",
                             "font/woff2", "", "text", "application/jsonx"}) {
    EXPECT_FALSE(compressible_type(t)) << t;
  }
}

// Streaming inflate: what each call returns is decodable at once.
class Inflater {
 public:
  Inflater() { EXPECT_EQ(inflateInit2(&zs_, 15 + 16), Z_OK); }
  ~Inflater() { inflateEnd(&zs_); }
  int feed(std::string_view in, std::string& out) {
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs_.avail_in = static_cast<uInt>(in.size());
    int rc = Z_OK;
    char buf[4096];
    do {
      zs_.next_out = reinterpret_cast<Bytef*>(buf);
      zs_.avail_out = sizeof buf;
      rc = inflate(&zs_, Z_NO_FLUSH);
      out.append(buf, sizeof buf - zs_.avail_out);
    } while (rc == Z_OK && (zs_.avail_in > 0 || zs_.avail_out == 0));
    return rc;
  }

 private:
  z_stream zs_{};
};

TEST(ContentEncodingTest, GzipStreamRoundTripsAndEachFlushedWriteDecodesAtOnce) {
  GzipStream gz;
  ASSERT_TRUE(gz.init());
  Inflater inflater;
  std::string sent;
  std::string decoded;
  for (int i = 0; i < 50; ++i) {
    std::string piece = "event " + std::to_string(i) + ": " + std::string(static_cast<std::size_t>(i * 97), 'x') + "\n";
    sent += piece;
    std::string_view out = gz.write(piece, true);
    ASSERT_FALSE(out.empty());
    EXPECT_EQ(inflater.feed(out, decoded), Z_OK);
    EXPECT_EQ(decoded, sent) << "a streamed piece is held back after write " << i;
  }
  EXPECT_EQ(inflater.feed(gz.finish(), decoded), Z_STREAM_END);
  EXPECT_EQ(decoded, sent);
}

TEST(ContentEncodingTest, ASmallWindowForAKnownSizeStillRoundTrips) {
  for (std::size_t size : {0, 1, 300, 1000, 5000, 40000}) {
    std::string body;
    for (int i = 0; body.size() < size; ++i) body += std::to_string(i * 7919 % 1000) + " words ";
    body.resize(size);
    GzipStream gz;
    ASSERT_TRUE(gz.init(size));
    std::string wire(gz.write(body, false));
    wire += gz.finish();
    Inflater inflater;
    std::string decoded;
    EXPECT_EQ(inflater.feed(wire, decoded), Z_STREAM_END) << size;
    EXPECT_EQ(decoded, body) << size;
  }
}

TEST(ContentEncodingTest, GzipStreamCompressesALargeBodyWrittenWithoutFlushes) {
  std::string body;
  for (int i = 0; i < 20000; ++i) body += "line " + std::to_string(i) + " of a repetitive text file\n";
  GzipStream gz;
  ASSERT_TRUE(gz.init());
  std::string wire;
  for (std::size_t at = 0; at < body.size(); at += 10000)
    wire += gz.write(std::string_view(body).substr(at, 10000), false);
  wire += gz.finish();
  EXPECT_LT(wire.size(), body.size() / 4);
  Inflater inflater;
  std::string decoded;
  EXPECT_EQ(inflater.feed(wire, decoded), Z_STREAM_END);
  EXPECT_EQ(decoded, body);
}

}  // namespace
}  // namespace unbroken::http
