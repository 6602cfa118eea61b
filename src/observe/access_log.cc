#include "observe/access_log.h"

#include <fmt/compile.h>
#include <fmt/format.h>

#include <stdexcept>

#include "base/text.h"
#include "base/timestamp.h"

namespace unbroken::observe {
namespace {

constexpr std::size_t kWakeBytes = 64 * 1024;
constexpr auto kFlushInterval = std::chrono::milliseconds(50);

void append(fmt::memory_buffer& out, std::string_view s) {
  out.append(s.data(), s.data() + s.size());
}

// "2026-11-27T07:42:05.631Z" (base/timestamp.h), whatever TZ says: fmt 9 would format a
// system_clock time with localtime() and label local time "Z".
void append_timestamp(fmt::memory_buffer& out, std::chrono::system_clock::time_point ts) {
  char text[kTimestampLength];
  format_timestamp(std::chrono::floor<std::chrono::milliseconds>(ts.time_since_epoch()).count(), text);
  out.append(text, text + sizeof text);
}

void field(fmt::memory_buffer& out, std::string_view name) {
  append(out, ",\"");
  append(out, name);
  append(out, "\":");
}

}  // namespace

void append_json(fmt::memory_buffer& out, const http::RequestRecord& r) {
  namespace f = schema::field;
  auto it = fmt::appender(out);
  auto number = [&](std::string_view name, auto v) {
    field(out, name);
    fmt::format_to(it, FMT_COMPILE("{}"), v);
  };
  auto millis = [&](std::string_view name, double v) {
    field(out, name);
    fmt::format_to(it, FMT_COMPILE("{:.3f}"), v);
  };
  auto string = [&](std::string_view name, std::string_view v) { field(out, name), append_json_string(out, v); };
  // Our names need no escaping.
  auto word = [&](std::string_view name, std::string_view v) {
    field(out, name), out.push_back('"'), append(out, v), out.push_back('"');
  };
  append(out, "{\"");
  append(out, f::kTs);
  append(out, "\":\"");
  append_timestamp(out, r.ts);
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
  field(out, f::kCancelled), append(out, r.cancelled ? "true" : "false");
  millis(f::kWastedMs, r.wasted_ms);
  if (const auto& u = r.upstream) {
    string(f::kUpstream, u->upstream);
    number(f::kUpstreamStatus, u->status);
    millis(f::kUpstreamConnectMs, u->connect_ms);
    millis(f::kUpstreamHeaderMs, u->header_ms);
    millis(f::kUpstreamMs, u->ms);
    number(f::kUpstreamBytesIn, u->bytes_in);
    number(f::kUpstreamBytesOut, u->bytes_out);
    field(out, f::kUpstreamReused), append(out, u->reused ? "true" : "false");
    number(f::kUpstreamRetries, u->retries);
    if (!u->error.empty()) string(f::kUpstreamError, u->error);
    if (!u->request_id.empty()) string(f::kRequestId, u->request_id);
  }
  // The handshake's facts once it finished; the SNI is the client's text, escaped like any other.
  if (const auto& t = r.tls) {
    if (t->established) string(f::kTlsVersion, t->version), string(f::kTlsCipher, t->cipher);
    if (!t->sni.empty()) string(f::kSni, t->sni);
    if (t->established) field(out, f::kTlsResumed), append(out, t->resumed ? "true" : "false");
    if (!t->error.empty()) string(f::kTlsError, t->error);
  }
  append(out, "}\n");
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
