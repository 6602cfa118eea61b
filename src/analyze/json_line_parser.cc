// unbroken's JSON-lines access log, one record a line, read with simdjson's on-demand parser.

#include <array>
#include <cstring>

#include "analyze/parsers.h"
#include "analyze/time_parse.h"

namespace unbroken::analyze {
namespace {

template <std::size_t N>
int lookup(const std::array<std::string_view, N>& names, std::string_view v) {
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == v) return static_cast<int>(i);
  }
  return -1;
}

namespace f = schema::field;
// The switch below dispatches on a key's length first: keys that share a case must share a length.
static_assert(f::kTs.size() == f::kUa.size());
static_assert(f::kRoute.size() == f::kPhase.size() && f::kRoute.size() == f::kTimer.size());
static_assert(f::kClient.size() == f::kMethod.size() && f::kClient.size() == f::kStatus.size());
static_assert(f::kBytesOut.size() == f::kCancelled.size() && f::kBytesOut.size() == f::kWastedMs.size() &&
              f::kBytesOut.size() == f::kTlsError.size());
static_assert(f::kTimeoutMs.size() == f::kHandlerMs.size());
static_assert(f::kBytesAcked.size() == f::kDurationMs.size());

// The proxy's fields, all named upstream_*, on proxied requests only: kept out of the hot switch.
// upstream_bytes_in/out are not read (no report uses them).
simdjson::error_code read_upstream(std::string_view key, simdjson::ondemand::value& v, Entry& e) {
  std::int64_t n = 0;
  simdjson::error_code err = simdjson::SUCCESS;
  if (key == f::kUpstream) {
    err = v.get_string().get(e.upstream);
  } else if (key == f::kUpstreamStatus) {
    err = v.get_int64().get(n);
    e.upstream_status = static_cast<int>(n);
  } else if (key == f::kUpstreamConnectMs) {
    err = v.get_double().get(e.upstream_connect_ms);
  } else if (key == f::kUpstreamHeaderMs) {
    err = v.get_double().get(e.upstream_header_ms);
  } else if (key == f::kUpstreamMs) {
    err = v.get_double().get(e.upstream_ms);
  } else if (key == f::kUpstreamRetries) {
    err = v.get_int64().get(n);
    e.upstream_retries = static_cast<int>(n);
  } else if (key == f::kUpstreamReused) {
    err = v.get_bool().get(e.upstream_reused);
  } else if (key == f::kUpstreamError) {
    err = v.get_string().get(e.upstream_error);
  }
  return err;
}

}  // namespace

// Every field of base/record_schema.h but conn, req, referer, bytes_in, encoding, upstream_bytes_in,
// upstream_bytes_out, request_id, tls_version, tls_cipher, sni and tls_resumed, which no report uses
// (the report is about how requests end; a successful handshake's parameters say nothing of that);
// other keys (another JSON logger's) are skipped.
bool JsonLineParser::parse(std::string_view line, std::size_t capacity, Entry& e) {
  using namespace simdjson;
  e = Entry{};
  ondemand::document doc;
  if (parser_.iterate(line.data(), line.size(), capacity).get(doc) != SUCCESS) return false;
  ondemand::object obj;
  if (doc.get_object().get(obj) != SUCCESS) return false;
  bool has_status = false, has_outcome = false;
  const char* end = line.data() + line.size();
  for (auto field : obj) {
    ondemand::raw_json_string raw;
    if (field.key().get(raw) != SUCCESS) return false;
    // Our keys have no escapes: the raw key is the key, up to its closing quote.
    const char* k = raw.raw();
    const auto* q = static_cast<const char*>(std::memchr(k, '"', static_cast<std::size_t>(end - k)));
    if (q == nullptr) return false;
    std::string_view key(k, static_cast<std::size_t>(q - k));
    ondemand::value v;
    if (field.value().get(v) != SUCCESS) return false;
    error_code err = SUCCESS;
    std::string_view s;
    std::int64_t n = 0;
    if (key.starts_with(f::kUpstream)) {
      if (read_upstream(key, v, e) != SUCCESS) return false;
      continue;
    }
    switch (key.size()) {
      case f::kTs.size():
        if (key == f::kTs) {
          err = v.get_string().get(s);
          if (err == SUCCESS) {
            auto t = parse_iso8601(s);
            if (t) e.ts_ms = *t;
          }
        } else if (key == f::kUa) {
          err = v.get_string().get(e.ua);
        }
        break;
      case f::kPath.size():
        if (key == f::kPath) err = v.get_string().get(e.path);
        break;
      case f::kRoute.size():
        if (key == f::kRoute) {
          err = v.get_string().get(e.route);
        } else if (key == f::kPhase) {
          err = v.get_string().get(s);
          int p = lookup(schema::kPhaseNames, s);
          e.phase = p < 0 ? Phase::kUnknown : to_phase(static_cast<schema::Phase>(p));
        } else if (key == f::kTimer) {
          err = v.get_string().get(s);
          int t = lookup(schema::kTimerNames, s);
          e.timer = t < 0 ? Timer::kNone : to_timer(static_cast<schema::TimerKind>(t));
        }
        break;
      case f::kClient.size():
        if (key == f::kClient) {
          err = v.get_string().get(e.client);
        } else if (key == f::kMethod) {
          err = v.get_string().get(e.method);
        } else if (key == f::kStatus) {
          err = v.get_int64().get(n);
          e.status = static_cast<int>(n);
          has_status = err == SUCCESS;
        }
        break;
      case f::kOutcome.size():
        if (key == f::kOutcome) {
          err = v.get_string().get(s);
          int o = lookup(kOutcomeNames, s);
          if (o < 0) return false;
          e.outcome = static_cast<Outcome>(o);
          has_outcome = true;
        }
        break;
      case f::kBytesOut.size():
        if (key == f::kBytesOut) {
          err = v.get_int64().get(e.bytes_out);
        } else if (key == f::kCancelled) {
          err = v.get_bool().get(e.cancelled);
        } else if (key == f::kWastedMs) {
          err = v.get_double().get(e.wasted_ms);
        } else if (key == f::kTlsError) {
          err = v.get_string().get(e.tls_error);
        }
        break;
      case f::kTimeoutMs.size():
        if (key == f::kTimeoutMs) {
          err = v.get_int64().get(e.timeout_ms);
        } else if (key == f::kHandlerMs) {
          err = v.get_double().get(e.handler_ms);
        }
        break;
      case f::kBytesAcked.size():
        if (key == f::kBytesAcked) {
          err = v.get_int64().get(e.bytes_acked);
        } else if (key == f::kDurationMs) {
          err = v.get_double().get(e.duration_ms);
        }
        break;
      case f::kBytesUnsent.size():
        if (key == f::kBytesUnsent) err = v.get_int64().get(e.bytes_unsent);
        break;
      default: break;
    }
    if (err != SUCCESS) return false;
  }
  if (!has_status && !has_outcome) return false;
  // A record from a log without outcomes (another JSON logger) is classified by its status.
  if (!has_outcome) {
    Phase keep = e.phase;
    classify_by_status(e);
    if (keep != Phase::kUnknown) e.phase = keep;
  }
  return true;
}

}  // namespace unbroken::analyze
