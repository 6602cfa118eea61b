#pragma once
// Content codings: which one a client accepts (Accept-Encoding with q-values, RFC 9110 12.5.3),
// which media types are worth compressing, and a gzip stream over zlib for on-the-fly compression.

#include <zlib.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "http/http_limits.h"

namespace unbroken::http {

enum class Encoding : std::uint8_t { kIdentity, kGzip, kBr };

// The wire name ("identity", "gzip", "br").
std::string_view name(Encoding e);

// Accept-Encoding as qualities in thousandths (q=0.5 -> 500). An absent and an empty header mean
// the same: identity only.
class AcceptEncoding {
 public:
  static AcceptEncoding parse(std::string_view header);
  // 0 refuses. A coding not listed takes "*"'s quality; identity is acceptable unless refused.
  [[nodiscard]] int quality(Encoding e) const;

 private:
  static constexpr int kUnlisted = -1;
  int gzip_ = kUnlisted;
  int br_ = kUnlisted;
  int identity_ = kUnlisted;
  int star_ = kUnlisted;
};

// The coding to send among those available: the highest quality wins, ties go to br, then gzip,
// then identity. When the client refuses everything available, identity anyway (RFC 9110 12.5.3
// lets a server send it rather than a 406).
Encoding choose_encoding(const AcceptEncoding& accept, bool have_br, bool have_gzip);

// Text-like media types that compress well: text/*, JSON, JavaScript, XML, SVG (any +json, +xml),
// WebAssembly. Images, video, archives and fonts are compressed already.
bool compressible_type(std::string_view content_type);

// One gzip member (RFC 1952) produced piece by piece. Level 1, as nginx's default gzip_comp_level:
// most of the gain for a fraction of the CPU. Nothing throws; the views returned point into the
// stream's own buffer and stay valid until its next call.
class GzipStream {
 public:
  GzipStream() = default;
  ~GzipStream();
  GzipStream(const GzipStream&) = delete;
  GzipStream& operator=(const GzipStream&) = delete;

  // ENOMEM when zlib cannot allocate its state: the caller sends the response uncompressed.
  // A known input size shrinks the window and hash (zlib's ~256 KiB state is for 32 KiB windows),
  // as nginx does: a 2 KiB body needs no more than a 2 KiB window.
  [[nodiscard]] Result<void> init(std::optional<std::uint64_t> input_size = std::nullopt);
  // flush: Z_SYNC_FLUSH, so that what was written so far can be decoded at once (a streaming
  // response is not held back); otherwise zlib may keep it until the next call.
  std::string_view write(std::string_view in, bool flush);
  // Ends the member (the rest of the data, then the trailer with CRC and length).
  std::string_view finish();

 private:
  std::string_view run(std::string_view in, int mode);
  z_stream zs_{};
  bool live_ = false;
  std::string out_;
};

}  // namespace unbroken::http
