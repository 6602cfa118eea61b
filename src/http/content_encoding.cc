#include "http/content_encoding.h"

#include <algorithm>
#include <array>

#include "base/text.h"
#include "http/request.h"

namespace unbroken::http {
namespace {

constexpr int kFullQuality = 1000;
// deflateInit2: window 2^15, hash memLevel 8, +16 for the gzip wrapper. zlib refuses a window
// of 2^8 with the gzip wrapper, so 2^9 is the smallest.
constexpr int kMaxWindowBits = 15;
constexpr int kMinWindowBits = 9;
constexpr int kGzipWrapper = 16;
constexpr int kMemLevel = 8;
// deflate needs this much lookahead beyond the data (zlib's MIN_LOOKAHEAD).
constexpr std::uint64_t kLookahead = 262;
constexpr int kLevel = 1;
constexpr std::size_t kOutStep = 16 * 1024;

// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ) (RFC 9110 12.4.2); -1 if malformed.
int parse_qvalue(std::string_view v) {
  if (v.empty() || (v[0] != '0' && v[0] != '1')) return -1;
  int q = (v[0] - '0') * kFullQuality;
  if (v.size() == 1) return q;
  if (v[1] != '.' || v.size() > 5) return -1;
  int scale = 100;
  for (char c : v.substr(2)) {
    if (c < '0' || c > '9') return -1;
    q += (c - '0') * scale;
    scale /= 10;
  }
  return q <= kFullQuality ? q : -1;
}

// The quality of one member's parameters "q=0.5;other=x"; -1 for a malformed q (the member is
// skipped). Lenient about spaces around "=", which the grammar does not allow but clients send.
int member_quality(std::string_view params) {
  while (!params.empty()) {
    std::size_t semi = params.find(';');
    std::string_view p = params.substr(0, semi);
    params = semi == std::string_view::npos ? std::string_view() : params.substr(semi + 1);
    std::size_t eq = p.find('=');
    if (eq != std::string_view::npos && iequals(trim_ows(p.substr(0, eq)), "q"))
      return parse_qvalue(trim_ows(p.substr(eq + 1)));
  }
  return kFullQuality;
}

}  // namespace

std::string_view name(Encoding e) {
  constexpr std::array<std::string_view, 3> n{"identity", "gzip", "br"};
  return n[static_cast<std::size_t>(e)];
}

AcceptEncoding AcceptEncoding::parse(std::string_view header) {
  AcceptEncoding a;
  while (!header.empty()) {
    std::string_view member = next_list_element(header);
    std::size_t semi = member.find(';');
    std::string_view coding = trim_ows(member.substr(0, semi));
    int q = semi == std::string_view::npos ? kFullQuality : member_quality(member.substr(semi + 1));
    if (q < 0 || coding.empty()) continue;
    // x-gzip: RFC 9110 8.4.1.3 asks recipients to treat it as gzip.
    int* slot = iequals(coding, "gzip") || iequals(coding, "x-gzip") ? &a.gzip_
                : iequals(coding, "br")                              ? &a.br_
                : iequals(coding, "identity")                        ? &a.identity_
                : coding == "*"                                      ? &a.star_
                                                                     : nullptr;
    if (slot != nullptr) *slot = std::max(*slot, q);  // listed twice: the kinder one
  }
  return a;
}

int AcceptEncoding::quality(Encoding e) const {
  int listed = e == Encoding::kGzip ? gzip_ : e == Encoding::kBr ? br_ : identity_;
  if (listed != kUnlisted) return listed;
  if (star_ != kUnlisted) return star_;
  return e == Encoding::kIdentity ? 1 : 0;  // identity: acceptable, but below any listed coding
}

Encoding choose_encoding(const AcceptEncoding& accept, bool have_br, bool have_gzip) {
  Encoding best = Encoding::kIdentity;
  int best_q = accept.quality(Encoding::kIdentity);
  if (have_gzip && accept.quality(Encoding::kGzip) > 0 && accept.quality(Encoding::kGzip) >= best_q) {
    best = Encoding::kGzip;
    best_q = accept.quality(Encoding::kGzip);
  }
  if (have_br && accept.quality(Encoding::kBr) > 0 && accept.quality(Encoding::kBr) >= best_q) best = Encoding::kBr;
  return best;
}

bool compressible_type(std::string_view content_type) {
  std::string_view type = trim_ows(content_type.substr(0, content_type.find(';')));
  std::size_t slash = type.find('/');
  if (slash == std::string_view::npos) return false;
  std::string_view top = type.substr(0, slash);
  std::string_view sub = type.substr(slash + 1);
  auto ends_with = [](std::string_view s, std::string_view tail) {
    return s.size() >= tail.size() && iequals(s.substr(s.size() - tail.size()), tail);
  };
  if (iequals(top, "text")) return true;
  if (ends_with(sub, "+json") || ends_with(sub, "+xml")) return true;  // image/svg+xml, application/ld+json
  if (!iequals(top, "application")) return false;
  for (std::string_view known : {"json", "javascript", "x-javascript", "ecmascript", "xml", "wasm"}) {
    if (iequals(sub, known)) return true;
  }
  return false;
}

GzipStream::~GzipStream() {
  if (live_) deflateEnd(&zs_);
}

Result<void> GzipStream::init(std::optional<std::uint64_t> input_size) {
  if (live_) return {};
  int bits = kMaxWindowBits;
  int mem_level = kMemLevel;
  // Halve the window (and the hash with it) while the input still fits in the smaller one.
  while (input_size && bits > kMinWindowBits && *input_size < (std::uint64_t{1} << (bits - 1)) - kLookahead) {
    --bits;
    mem_level = std::max(1, mem_level - 1);
  }
  int rc = deflateInit2(&zs_, kLevel, Z_DEFLATED, bits + kGzipWrapper, mem_level, Z_DEFAULT_STRATEGY);
  if (rc != Z_OK) return Errno{ENOMEM};
  live_ = true;
  return {};
}

std::string_view GzipStream::write(std::string_view in, bool flush) {
  if (in.empty() && !flush) return {};
  return run(in, flush ? Z_SYNC_FLUSH : Z_NO_FLUSH);
}

std::string_view GzipStream::finish() {
  return run({}, Z_FINISH);
}

// deflate until it has taken all input and, for a flush, emptied itself: it is done when it leaves
// output space unused (zlib.h: "deflate() should be called again ... avail_out == 0").
std::string_view GzipStream::run(std::string_view in, int mode) {
  std::string& out = out_;
  out.clear();
  if (!live_) return {};
  zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs_.avail_in = static_cast<uInt>(in.size());
  for (;;) {
    std::size_t used = out.size();
    out.resize(used + kOutStep);
    zs_.next_out = reinterpret_cast<Bytef*>(out.data() + used);
    zs_.avail_out = static_cast<uInt>(kOutStep);
    int rc = deflate(&zs_, mode);
    out.resize(out.size() - zs_.avail_out);
    if (rc == Z_STREAM_END || rc == Z_STREAM_ERROR) break;
    if (zs_.avail_out != 0 && zs_.avail_in == 0) break;  // Z_BUF_ERROR lands here too: no progress possible
  }
  return out;
}

}  // namespace unbroken::http
