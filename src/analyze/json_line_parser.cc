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

}  // namespace

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
    switch (key.size()) {
      case 2:
        if (key == "ts") {
          err = v.get_string().get(s);
          if (err == SUCCESS) {
            auto t = parse_iso8601(s);
            if (t) e.ts_ms = *t;
          }
        } else if (key == "ua") {
          err = v.get_string().get(e.ua);
        }
        break;
      case 4:
        if (key == "path") err = v.get_string().get(e.path);
        break;
      case 5:
        if (key == "route") {
          err = v.get_string().get(e.route);
        } else if (key == "phase") {
          err = v.get_string().get(s);
          int p = lookup(kPhaseNames, s);
          e.phase = p < 0 ? Phase::kUnknown : static_cast<Phase>(p);
        } else if (key == "timer") {
          err = v.get_string().get(s);
          int t = lookup(kTimerNames, s);
          e.timer = t < 0 ? Timer::kNone : static_cast<Timer>(t);
        }
        break;
      case 6:
        if (key == "client") {
          err = v.get_string().get(e.client);
        } else if (key == "method") {
          err = v.get_string().get(e.method);
        } else if (key == "status") {
          err = v.get_int64().get(n);
          e.status = static_cast<int>(n);
          has_status = err == SUCCESS;
        }
        break;
      case 7:
        if (key == "outcome") {
          err = v.get_string().get(s);
          int o = lookup(kOutcomeNames, s);
          if (o < 0) return false;
          e.outcome = static_cast<Outcome>(o);
          has_outcome = true;
        }
        break;
      case 9:
        if (key == "bytes_out") {
          err = v.get_int64().get(e.bytes_out);
        } else if (key == "cancelled") {
          err = v.get_bool().get(e.cancelled);
        } else if (key == "wasted_ms") {
          err = v.get_double().get(e.wasted_ms);
        }
        break;
      case 10:
        if (key == "timeout_ms") {
          err = v.get_int64().get(e.timeout_ms);
        } else if (key == "handler_ms") {
          err = v.get_double().get(e.handler_ms);
        }
        break;
      case 11:
        if (key == "bytes_acked") {
          err = v.get_int64().get(e.bytes_acked);
        } else if (key == "duration_ms") {
          err = v.get_double().get(e.duration_ms);
        }
        break;
      case 12:
        if (key == "bytes_unsent") err = v.get_int64().get(e.bytes_unsent);
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
