#include "observe/record_format.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "base/record_schema.h"
#include "base/text.h"
#include "base/timestamp.h"

namespace unbroken::observe {
namespace {

// Room for the record's fixed part: every field name with its punctuation (under 600 bytes), every
// integer (at most 24 characters, under 20 of them) and the 8 durations (kMaxMillis each).
constexpr std::size_t kMaxMillis = 320;  // DBL_MAX in fixed notation has 309 digits
constexpr std::size_t kFixedBound = 4096;

// True when none of v's bytes needs escaping in a JSON string: each is printable ASCII but '"' and
// '\\'. The bit tricks of "Bit Twiddling Hacks" (a byte below n, a zero byte, a set top bit).
constexpr std::uint64_t kOnes = 0x0101010101010101, kHigh = 0x8080808080808080;
constexpr std::uint64_t below(std::uint64_t x, std::uint64_t n) {
  return (x - n * kOnes) & ~x & kHigh;
}
constexpr std::uint64_t escapes(std::uint64_t v) {
  return below(v, 0x20) | (v & kHigh) | below(v ^ (0x7f * kOnes), 1) | below(v ^ ('"' * kOnes), 1) |
         below(v ^ ('\\' * kOnes), 1);
}
constexpr bool plain(std::uint64_t v) {
  return escapes(v) == 0;
}
// Both words: the same test on the sixteen bytes at once where SSE2 is there (every x86-64).
inline bool plain2(std::uint64_t a, std::uint64_t b) {
#if defined(__SSE2__)
  __m128i v = _mm_set_epi64x(static_cast<long long>(b), static_cast<long long>(a));
  // Signed bytes: below 0x20 is a control character or, negative, a byte from 0x80 up.
  __m128i bad =
      _mm_or_si128(_mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)), _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f))),
                   _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));
  return _mm_movemask_epi8(bad) == 0;
#else
  return (escapes(a) | escapes(b)) == 0;
#endif
}

// A cursor into memory the caller sized with json_bound(); push_back and append(first, last) are
// what append_json_string writes through.
// Inlined, so that a field name's copy is a few moves of a known length rather than a memcpy call.
class Out {
 public:
  explicit Out(char* p) : p_(p) {}
  [[gnu::always_inline]] void push_back(char c) { *p_++ = c; }
  [[gnu::always_inline]] void append(const char* first, const char* last) {
    std::memcpy(p_, first, static_cast<std::size_t>(last - first));
    p_ += last - first;
  }
  [[gnu::always_inline]] void put(std::string_view s) { append(s.data(), s.data() + s.size()); }
  [[gnu::always_inline]] void field(std::string_view name) {
    put(",\"");
    put(name);
    put("\":");
  }
  // s as a JSON string (append_json_string). What clients send rarely needs escaping: sixteen bytes
  // at a time are checked and copied together, and only a string with something to escape goes
  // through the escaper, byte by byte.
  void string(std::string_view s) {
    char* start = p_;
    push_back('"');
    if (copy_plain(s.data(), s.size())) return push_back('"');
    p_ = start;
    append_json_string(*this, s);
  }
  template <typename Int>
  void number(Int v) {
    p_ = std::to_chars(p_, p_ + 24, v).ptr;
  }
  // "{:.3f}" as fmt and printf write it: the exact binary value rounded to 3 decimals, ties to even.
  // Scaled by 1000, the product's error (under 2^-53 of it, so 1e-4 below 1e9 ms) can only matter
  // next to a tie, and those few values, like negative zero, NaN and huge ones, go to std::to_chars.
  void millis(double v) {
    if (v >= 0 && v < 1e9 && !std::signbit(v)) {
      double m = v * 1000;
      double whole = std::floor(m);
      double frac = m - whole;  // exact
      if (std::fabs(frac - 0.5) > 1e-3) {
        auto n = static_cast<std::uint64_t>(whole) + (frac > 0.5 ? 1 : 0);
        number(n / 1000);
        auto thousandths = static_cast<unsigned>(n % 1000);
        p_[0] = '.';
        p_[1] = static_cast<char>('0' + thousandths / 100);
        p_[2] = static_cast<char>('0' + thousandths / 10 % 10);
        p_[3] = static_cast<char>('0' + thousandths % 10);
        p_ += 4;
        return;
      }
    }
    p_ = std::to_chars(p_, p_ + kMaxMillis, v, std::chars_format::fixed, 3).ptr;
  }
  void boolean(bool b) { put(b ? "true" : "false"); }
  [[nodiscard]] char* end() const { return p_; }

 private:
  // Copies in[0, n) to p_ when none of it needs escaping, by overlapping loads and stores of whole
  // words (up to 3 bytes past the end of the string are written when it is shorter than 4).
  bool copy_plain(const char* in, std::size_t n) {
    if (n >= 8) {
      // Sixteen bytes at a time; the last two words overlap the ones before them.
      for (std::size_t i = 0; i < n; i += 16) {
        std::size_t at = std::min(i, n - std::min<std::size_t>(n, 16));
        std::size_t second = std::min(at + 8, n - 8);
        std::uint64_t a, b;
        std::memcpy(&a, in + at, 8);
        std::memcpy(&b, in + second, 8);
        if (!plain2(a, b)) return false;
        std::memcpy(p_ + at, &a, 8);
        std::memcpy(p_ + second, &b, 8);
      }
    } else if (n >= 4) {
      std::uint32_t lo, hi;  // two overlapping halves
      std::memcpy(&lo, in, 4);
      std::memcpy(&hi, in + n - 4, 4);
      if (!plain(lo | std::uint64_t{hi} << 32)) return false;
      std::memcpy(p_, &lo, 4);
      std::memcpy(p_ + n - 4, &hi, 4);
    } else {
      std::uint64_t v = 0x2020202020202020;  // spaces: plain, whatever of them a short string leaves
      for (std::size_t i = 0; i < n; ++i) reinterpret_cast<unsigned char*>(&v)[i] = static_cast<unsigned char>(in[i]);
      if (!plain(v)) return false;
      std::memcpy(p_, &v, 4);
    }
    p_ += n;
    return true;
  }

  char* p_;
};

// "2026-11-27T07:42:05.631Z" (base/timestamp.h), whatever TZ says. Records come many to a second:
// the date and time of day are formatted once per second and thread, the milliseconds every time.
void put_timestamp(Out& out, std::chrono::system_clock::time_point ts) {
  constexpr std::size_t kSecondsPart = 20;  // "2026-11-27T07:42:05."
  thread_local std::int64_t cached_second = INT64_MIN;
  thread_local char cached[kTimestampLength];
  std::int64_t ms = std::chrono::floor<std::chrono::milliseconds>(ts.time_since_epoch()).count();
  std::int64_t second = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
  if (second != cached_second) {
    format_timestamp(second * 1000, cached);
    cached_second = second;
  }
  auto milli = static_cast<unsigned>(ms - second * 1000);
  out.append(cached, cached + kSecondsPart);
  const char tail[] = {static_cast<char>('0' + milli / 100), static_cast<char>('0' + milli / 10 % 10),
                       static_cast<char>('0' + milli % 10), 'Z'};
  out.append(tail, tail + sizeof tail);
}

void append(fmt::memory_buffer& out, std::string_view s) {
  out.append(s.data(), s.data() + s.size());
}

void append_timestamp(fmt::memory_buffer& out, std::chrono::system_clock::time_point ts) {
  char text[kTimestampLength];
  Out o(text);
  put_timestamp(o, ts);
  out.append(text, text + sizeof text);
}

}  // namespace

std::size_t json_bound(const http::RequestRecord& r) {
  std::size_t text = r.client.size() + r.method.size() + r.path.size() + r.route.size() + r.ua.size() +
                     r.referer.size() + r.encoding.size();
  if (const auto& u = r.upstream) text += u->upstream.size() + u->error.size() + u->request_id.size();
  if (const auto& t = r.tls) text += t->version.size() + t->cipher.size() + t->sni.size() + t->error.size();
  return kFixedBound + 6 * text;
}

char* write_json(char* at, const http::RequestRecord& r) {
  namespace f = schema::field;
  Out out(at);
  // Inlined (see Out): each name is a constant there.
  auto number = [&](std::string_view name, auto v) __attribute__((always_inline)) {
    out.field(name), out.number(v);
  };
  auto millis = [&](std::string_view name, double v) __attribute__((always_inline)) {
    out.field(name), out.millis(v);
  };
  auto string = [&](std::string_view name, std::string_view v) __attribute__((always_inline)) {
    out.field(name), out.string(v);
  };
  // Our names need no escaping.
  auto word = [&](std::string_view name, std::string_view v) __attribute__((always_inline)) {
    out.field(name), out.push_back('"'), out.put(v), out.push_back('"');
  };
  out.put("{\"");
  out.put(f::kTs);
  out.put("\":\"");
  put_timestamp(out, r.ts);
  out.push_back('"');
  number(f::kConn, r.conn);
  number(f::kReq, r.req);
  string(f::kClient, r.client);
  string(f::kMethod, r.method);
  string(f::kPath, r.path);
  if (!r.route.empty()) string(f::kRoute, r.route);
  number(f::kStatus, r.status);
  string(f::kUa, r.ua);
  string(f::kReferer, r.referer);
  word(f::kOutcome, schema::name(r.outcome));
  word(f::kPhase, schema::name(r.phase));
  if (r.timer) word(f::kTimer, schema::name(*r.timer)), number(f::kTimeoutMs, r.timeout_ms);
  number(f::kBytesIn, r.bytes_in);
  number(f::kBytesOut, r.bytes_out);
  if (r.bytes_acked) number(f::kBytesAcked, *r.bytes_acked);
  if (r.bytes_unsent) number(f::kBytesUnsent, *r.bytes_unsent);
  if (!r.encoding.empty()) string(f::kEncoding, r.encoding);
  millis(f::kDurationMs, r.duration_ms);
  millis(f::kHandlerMs, r.handler_ms);
  out.field(f::kCancelled), out.boolean(r.cancelled);
  millis(f::kWastedMs, r.wasted_ms);
  if (const auto& u = r.upstream) {
    string(f::kUpstream, u->upstream);
    number(f::kUpstreamStatus, u->status);
    millis(f::kUpstreamConnectMs, u->connect_ms);
    millis(f::kUpstreamHeaderMs, u->header_ms);
    millis(f::kUpstreamMs, u->ms);
    number(f::kUpstreamBytesIn, u->bytes_in);
    number(f::kUpstreamBytesOut, u->bytes_out);
    out.field(f::kUpstreamReused), out.boolean(u->reused);
    number(f::kUpstreamRetries, u->retries);
    if (!u->error.empty()) string(f::kUpstreamError, u->error);
    if (!u->request_id.empty()) string(f::kRequestId, u->request_id);
  }
  // The handshake's facts once it finished; the SNI is the client's text, escaped like any other.
  if (const auto& t = r.tls) {
    if (t->established) string(f::kTlsVersion, t->version), string(f::kTlsCipher, t->cipher);
    if (!t->sni.empty()) string(f::kSni, t->sni);
    if (t->established) out.field(f::kTlsResumed), out.boolean(t->resumed);
    if (!t->error.empty()) string(f::kTlsError, t->error);
  }
  out.put("}\n");
  return out.end();
}

void append_json(fmt::memory_buffer& out, const http::RequestRecord& rec) {
  std::size_t at = out.size();
  out.resize(at + json_bound(rec));  // fmt's resize does not fill
  out.resize(static_cast<std::size_t>(write_json(out.data() + at, rec) - out.data()));
}

void append_text(fmt::memory_buffer& out, const http::RequestRecord& r) {
  auto it = fmt::appender(out);
  append_timestamp(out, r.ts);
  append(out, " ");
  append(out, r.client);
  append(out, " ");
  append_json_string(out, fmt::format("{} {}", r.method, r.path));
  fmt::format_to(it, " {} {}/{}", r.status, http::name(r.outcome), http::name(r.phase));
  if (r.timer) fmt::format_to(it, " timer={}({}ms)", http::name(*r.timer), r.timeout_ms);
  fmt::format_to(it, " in={} out={}", r.bytes_in, r.bytes_out);
  if (r.bytes_acked) fmt::format_to(it, " acked={}", *r.bytes_acked);
  if (r.bytes_unsent) fmt::format_to(it, " unsent={}", *r.bytes_unsent);
  if (!r.encoding.empty()) append(out, " enc="), append_json_string(out, r.encoding);
  fmt::format_to(it, " {:.1f}ms handler={:.1f}ms", r.duration_ms, r.handler_ms);
  if (r.cancelled) fmt::format_to(it, " cancelled wasted={:.1f}ms", r.wasted_ms);
  if (const auto& u = r.upstream) {
    append(out, " upstream=");
    append_json_string(out, u->upstream);
    fmt::format_to(it, " upstream_status={} upstream={:.1f}ms", u->status, u->ms);
    if (!u->error.empty()) append(out, " upstream_error="), append_json_string(out, u->error);
  }
  if (const auto& t = r.tls) {
    if (t->established) {
      append(out, " tls="), append_json_string(out, t->version);
      append(out, " cipher="), append_json_string(out, t->cipher);
      if (t->resumed) append(out, " resumed");
    }
    if (!t->sni.empty()) append(out, " sni="), append_json_string(out, t->sni);
    if (!t->error.empty()) append(out, " tls_error="), append_json_string(out, t->error);
  }
  fmt::format_to(it, " conn={} req={} ua=", r.conn, r.req);
  append_json_string(out, r.ua);
  append(out, " referer=");
  append_json_string(out, r.referer);
  append(out, "\n");
}

}  // namespace unbroken::observe
