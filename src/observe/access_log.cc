#include "observe/access_log.h"

#include <fmt/compile.h>
#include <fmt/format.h>

#include <ctime>
#include <stdexcept>

namespace unbroken::observe {
namespace {

constexpr std::size_t kWakeBytes = 64 * 1024;
constexpr auto kFlushInterval = std::chrono::milliseconds(50);

void append(fmt::memory_buffer& out, std::string_view s) {
  out.append(s.data(), s.data() + s.size());
}

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlongs, no surrogates, at most
// U+10FFFF), or 0.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  auto cont = [&](std::size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  unsigned char c = b(0);
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if ((c == 0xE0 && b(1) < 0xA0) || (c == 0xED && b(1) > 0x9F)) return 0;
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if ((c == 0xF0 && b(1) < 0x90) || (c == 0xF4 && b(1) > 0x8F)) return 0;
    return 4;
  }
  return 0;
}

void append_escaped(fmt::memory_buffer& out, std::string_view s) {
  out.push_back('"');
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': append(out, "\\\""); break;
      case '\\': append(out, "\\\\"); break;
      case '\n': append(out, "\\n"); break;
      case '\r': append(out, "\\r"); break;
      case '\t': append(out, "\\t"); break;
      default:
        if (c >= 0x80) {
          // Well-formed UTF-8 passes through; any other byte becomes \u00XX, so the line is always
          // valid JSON whatever a client sent.
          if (std::size_t n = utf8_length(s, i); n > 0) {
            append(out, s.substr(i, n));
            i += n - 1;
            break;
          }
        }
        if (c < 0x20 || c >= 0x7f) {
          fmt::format_to(fmt::appender(out), "\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

// "2026-11-27T07:42:05.631Z": RFC 3339 in UTC. fmt 9 formats a system_clock time with localtime(),
// which would label local time "Z" on a machine with a time zone (and take the zone lock per
// record), so the seconds are formatted with gmtime_r, once per second per thread.
void append_timestamp(fmt::memory_buffer& out, std::chrono::system_clock::time_point ts) {
  struct Cache {
    std::time_t second = -1;
    char text[32] = {};
    std::size_t size = 0;
  };
  thread_local Cache cache;
  auto secs = std::chrono::time_point_cast<std::chrono::seconds>(ts);
  if (ts < secs) secs -= std::chrono::seconds(1);  // before 1970 the cast rounds toward zero
  auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(ts - secs).count();
  std::time_t t = std::chrono::system_clock::to_time_t(secs);
  if (t != cache.second) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    cache.size = std::strftime(cache.text, sizeof cache.text, "%Y-%m-%dT%H:%M:%S", &tm);
    cache.second = t;
  }
  out.append(cache.text, cache.text + cache.size);
  fmt::format_to(fmt::appender(out), FMT_COMPILE(".{:03d}Z"), millis);
}

void field(fmt::memory_buffer& out, std::string_view name) {
  append(out, ",\"");
  append(out, name);
  append(out, "\":");
}

}  // namespace

void append_json(fmt::memory_buffer& out, const http::RequestRecord& r) {
  auto it = fmt::appender(out);
  append(out, "{\"ts\":\"");
  append_timestamp(out, r.ts);
  fmt::format_to(it, FMT_COMPILE("\",\"conn\":{},\"req\":{}"), r.conn, r.req);
  field(out, "client"), append_escaped(out, r.client);
  field(out, "method"), append_escaped(out, r.method);
  field(out, "path"), append_escaped(out, r.path);
  fmt::format_to(it, FMT_COMPILE(",\"status\":{}"), r.status);
  field(out, "ua"), append_escaped(out, r.ua);
  field(out, "referer"), append_escaped(out, r.referer);
  fmt::format_to(it, FMT_COMPILE(",\"outcome\":\"{}\",\"phase\":\"{}\""), http::name(r.outcome), http::name(r.phase));
  if (r.timer)
    fmt::format_to(it, FMT_COMPILE(",\"timer\":\"{}\",\"timeout_ms\":{}"), http::name(*r.timer), r.timeout_ms);
  fmt::format_to(it, FMT_COMPILE(",\"bytes_in\":{},\"bytes_out\":{}"), r.bytes_in, r.bytes_out);
  if (r.bytes_acked) fmt::format_to(it, FMT_COMPILE(",\"bytes_acked\":{}"), *r.bytes_acked);
  if (r.bytes_unsent) fmt::format_to(it, FMT_COMPILE(",\"bytes_unsent\":{}"), *r.bytes_unsent);
  if (!r.encoding.empty()) field(out, "encoding"), append_escaped(out, r.encoding);
  fmt::format_to(it,
                 FMT_COMPILE(",\"duration_ms\":{:.3f},\"handler_ms\":{:.3f},\"cancelled\":{},\"wasted_ms\":{:.3f}}}\n"),
                 r.duration_ms, r.handler_ms, r.cancelled, r.wasted_ms);
}

void append_text(fmt::memory_buffer& out, const http::RequestRecord& r) {
  auto it = fmt::appender(out);
  append_timestamp(out, r.ts);
  append(out, " ");
  append(out, r.client);
  append(out, " ");
  append_escaped(out, fmt::format("{} {}", r.method, r.path));
  fmt::format_to(it, " {} {}/{}", r.status, http::name(r.outcome), http::name(r.phase));
  if (r.timer) fmt::format_to(it, " timer={}({}ms)", http::name(*r.timer), r.timeout_ms);
  fmt::format_to(it, " in={} out={}", r.bytes_in, r.bytes_out);
  if (r.bytes_acked) fmt::format_to(it, " acked={}", *r.bytes_acked);
  if (r.bytes_unsent) fmt::format_to(it, " unsent={}", *r.bytes_unsent);
  if (!r.encoding.empty()) append(out, " enc="), append_escaped(out, r.encoding);
  fmt::format_to(it, " {:.1f}ms handler={:.1f}ms", r.duration_ms, r.handler_ms);
  if (r.cancelled) fmt::format_to(it, " cancelled wasted={:.1f}ms", r.wasted_ms);
  fmt::format_to(it, " conn={} req={} ua=", r.conn, r.req);
  append_escaped(out, r.ua);
  append(out, " referer=");
  append_escaped(out, r.referer);
  append(out, "\n");
}

AccessLog::AccessLog(std::string path, LogFormat format, std::size_t max_queued_bytes)
    : path_(std::move(path)), format_(format), max_queued_(max_queued_bytes) {
  open_file();
  if (file_ == nullptr) throw std::runtime_error(fmt::format("--log: cannot open '{}'", path_));
  // The loops append to pending_ and the writer swaps it with its batch: with both at the queue's
  // bound from the start, neither ever grows (no allocation on a loop thread, even when the writer
  // falls behind). Only the pages actually written become resident.
  pending_.reserve(max_queued_);
  thread_ = std::thread([this] { run(); });
}

AccessLog::~AccessLog() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
  if (file_ != nullptr && file_ != stdout) std::fclose(file_);
}

void AccessLog::open_file() {
  if (path_ == "-") {
    file_ = stdout;
    return;
  }
  std::FILE* f = std::fopen(path_.c_str(), "ae");
  if (f == nullptr) return;  // keep writing to the old file rather than losing records
  if (file_ != nullptr && file_ != stdout) std::fclose(file_);
  file_ = f;
}

void AccessLog::write(const http::RequestRecord& rec) {
  thread_local fmt::memory_buffer line;
  line.clear();
  if (format_ == LogFormat::kJson) {
    append_json(line, rec);
  } else {
    append_text(line, rec);
  }
  bool crossed;
  {
    std::lock_guard lock(mu_);
    if (pending_.size() + line.size() > max_queued_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    crossed = pending_.size() < kWakeBytes && pending_.size() + line.size() >= kWakeBytes;
    pending_.append(line.data(), line.size());
  }
  // Waking the writer per record costs a context switch per request; it wakes on its own every
  // kFlushInterval, and early only when a batch is worth writing.
  if (crossed) cv_.notify_one();
}

void AccessLog::run() {
  std::string batch;
  batch.reserve(max_queued_);
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, kFlushInterval, [this] { return stopping_ || pending_.size() >= kWakeBytes; });
      if (pending_.empty()) {
        if (stopping_) return;
        continue;
      }
      batch.swap(pending_);
    }
    if (reopen_.exchange(false)) open_file();
    std::fwrite(batch.data(), 1, batch.size(), file_);
    std::fflush(file_);
    batch.clear();
  }
}

}  // namespace unbroken::observe
