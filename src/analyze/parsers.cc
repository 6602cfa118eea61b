#include "analyze/parsers.h"

#include <array>
#include <cctype>
#include <cmath>
#include <charconv>
#include <cstring>

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

bool parse_int(std::string_view s, std::int64_t& out) {
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

// "0.123" seconds; false for "-" and anything else that is not a number. The last of a
// comma-separated list ("0.010, 0.120" after an upstream retry) is the one that answered.
bool parse_seconds(std::string_view s, double& out) {
  if (auto comma = s.rfind(','); comma != std::string_view::npos) s = s.substr(comma + 1);
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  if (s.empty() || s == "-") return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  // from_chars takes "inf" and "nan"; a log's seconds are finite and below ~30 years.
  return ec == std::errc() && end == s.data() + s.size() && std::isfinite(out) && out >= 0 && out < 1e12;
}

// What an nginx status says about how the request ended: nginx logs no outcome of its own.
void classify_nginx(Entry& e) {
  switch (e.status) {
    case 499:
      e.outcome = Outcome::kClientClosed;
      e.phase = e.bytes_out > 0 ? Phase::kResponse : Phase::kHandler;
      break;
    case 408: {
      // A 408 with a request line is client_body_timeout; without one, client_header_timeout.
      bool head = e.method.empty();
      e.outcome = Outcome::kTimeout;
      e.phase = head ? Phase::kRequestHeaders : Phase::kRequestBody;
      e.timer = head ? Timer::kHeader : Timer::kBody;
      break;
    }
    case 504:
      e.outcome = Outcome::kTimeout;
      e.phase = Phase::kHandler;
      e.timer = Timer::kHandler;
      break;
    case 400:
      e.outcome = Outcome::kProtocolError;
      e.phase = Phase::kRequestHeaders;
      break;
    case 413:
      e.outcome = Outcome::kLimitExceeded;
      e.phase = Phase::kRequestBody;
      break;
    case 414:
    case 431:
    case 494:
      e.outcome = Outcome::kLimitExceeded;
      e.phase = Phase::kRequestHeaders;
      break;
    default:
      e.outcome = Outcome::kOk;
      e.phase = Phase::kResponse;
  }
}

// "GET /path HTTP/1.1" into method and path; "-" or garbage leaves both empty.
void split_request(std::string_view req, Entry& e) {
  auto sp = req.find(' ');
  if (sp == std::string_view::npos) return;
  e.method = req.substr(0, sp);
  std::string_view rest = req.substr(sp + 1);
  auto sp2 = rest.rfind(' ');
  e.path = sp2 == std::string_view::npos ? rest : rest.substr(0, sp2);
}

}  // namespace

std::string_view name(Format f) {
  switch (f) {
    case Format::kJson: return "json";
    case Format::kNginx: return "nginx";
    case Format::kHaproxy: return "haproxy";
  }
  return "?";
}

Format detect_format(std::string_view line) {
  auto first = line.find_first_not_of(" \t");
  if (first != std::string_view::npos && line[first] == '{') return Format::kJson;
  if (line.find(" haproxy[") != std::string_view::npos) return Format::kHaproxy;
  // HAProxy's accept date has milliseconds and no zone; nginx's $time_local has a zone.
  auto open = line.find('[');
  auto close = line.find(']', open == std::string_view::npos ? 0 : open);
  if (open != std::string_view::npos && close != std::string_view::npos) {
    std::string_view inside = line.substr(open + 1, close - open - 1);
    if (inside.find(' ') == std::string_view::npos && inside.find('.') != std::string_view::npos &&
        parse_clf_time(inside)) {
      return Format::kHaproxy;
    }
  }
  return Format::kNginx;
}

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
      default:
        break;
    }
    if (err != SUCCESS) return false;
  }
  if (!has_status && !has_outcome) return false;
  // A record from a log without outcomes (another JSON logger) is classified by its status.
  if (!has_outcome) {
    Phase keep = e.phase;
    classify_nginx(e);
    if (keep != Phase::kUnknown) e.phase = keep;
  }
  return true;
}

std::optional<NginxParser> NginxParser::compile(std::string_view format, std::string* error) {
  NginxParser p;
  std::size_t i = 0;
  bool any = false;
  while (i < format.size()) {
    if (format[i] != '$') {
      auto next = format.find('$', i);
      if (next == std::string_view::npos) next = format.size();
      if (!p.tokens_.empty() && p.tokens_.back().var == Var::kOther && !p.tokens_.back().literal.empty()) {
        p.tokens_.back().literal.append(format.substr(i, next - i));
      } else {
        p.tokens_.push_back(Token{std::string(format.substr(i, next - i)), Var::kOther});
      }
      i = next;
      continue;
    }
    ++i;
    bool braced = i < format.size() && format[i] == '{';
    if (braced) ++i;
    std::size_t start = i;
    while (i < format.size() && (std::isalnum(static_cast<unsigned char>(format[i])) || format[i] == '_')) ++i;
    std::string_view var = format.substr(start, i - start);
    if (braced) {
      if (i >= format.size() || format[i] != '}') {
        *error = "--nginx-format: unclosed ${ in the format";
        return std::nullopt;
      }
      ++i;
    }
    if (var.empty()) {
      *error = "--nginx-format: a '$' without a variable name";
      return std::nullopt;
    }
    if (!p.tokens_.empty() && p.tokens_.back().literal.empty()) {
      *error = "--nginx-format: two variables with nothing between them cannot be told apart";
      return std::nullopt;
    }
    Var v = Var::kOther;
    if (var == "remote_addr" || var == "http_x_forwarded_for" || var == "realip_remote_addr") v = Var::kRemoteAddr;
    else if (var == "time_local") v = Var::kTimeLocal;
    else if (var == "time_iso8601") v = Var::kTimeIso;
    else if (var == "msec") v = Var::kMsec;
    else if (var == "request") v = Var::kRequest;
    else if (var == "request_method") v = Var::kMethod;
    else if (var == "request_uri" || var == "uri") v = Var::kUri;
    else if (var == "status") v = Var::kStatus;
    else if (var == "body_bytes_sent" || var == "bytes_sent") v = Var::kBytesSent;
    else if (var == "http_user_agent") v = Var::kUserAgent;
    else if (var == "request_time") v = Var::kRequestTime;
    else if (var == "upstream_response_time") v = Var::kUpstreamTime;
    any |= v == Var::kStatus;
    p.has_request_time_ |= v == Var::kRequestTime;
    p.tokens_.push_back(Token{"", v});
  }
  if (!any) {
    *error = "--nginx-format: the format has no $status, so departures cannot be told apart";
    return std::nullopt;
  }
  return p;
}

bool NginxParser::parse(std::string_view line, Entry& e) const {
  e = Entry{};
  std::size_t pos = 0;
  bool has_status = false;
  for (std::size_t t = 0; t < tokens_.size(); ++t) {
    const Token& tok = tokens_[t];
    if (!tok.literal.empty()) {
      if (line.compare(pos, tok.literal.size(), tok.literal) != 0) return false;
      pos += tok.literal.size();
      continue;
    }
    std::size_t end;
    if (t + 1 < tokens_.size()) {
      end = line.find(tokens_[t + 1].literal, pos);
      if (end == std::string_view::npos) return false;
    } else {
      end = line.find(' ', pos);
      if (end == std::string_view::npos) end = line.size();
    }
    std::string_view v = line.substr(pos, end - pos);
    pos = end;
    std::int64_t n = 0;
    double d = 0;
    switch (tok.var) {
      case Var::kRemoteAddr: e.client = v.substr(0, v.find(',')); break;
      case Var::kTimeLocal:
        if (auto ts = parse_clf_time(v)) e.ts_ms = *ts;
        else return false;
        break;
      case Var::kTimeIso:
        if (auto ts = parse_iso8601(v)) e.ts_ms = *ts;
        else return false;
        break;
      case Var::kMsec:
        if (!parse_seconds(v, d)) return false;
        e.ts_ms = static_cast<std::int64_t>(d * 1000);
        break;
      case Var::kRequest: split_request(v, e); break;
      case Var::kMethod: e.method = v; break;
      case Var::kUri: e.path = v; break;
      case Var::kStatus:
        if (!parse_int(v, n) || n < 100 || n > 999) return false;
        e.status = static_cast<int>(n);
        has_status = true;
        break;
      case Var::kBytesSent:
        if (parse_int(v, n)) e.bytes_out = n;
        break;
      case Var::kUserAgent: e.ua = v; break;
      case Var::kRequestTime:
        if (parse_seconds(v, d)) e.duration_ms = d * 1000;
        break;
      case Var::kUpstreamTime:
        if (parse_seconds(v, d)) e.handler_ms = d * 1000;
        break;
      case Var::kOther: break;
    }
  }
  if (!has_status) return false;
  // Fields appended to a known format: $request_time, then $upstream_response_time.
  if (!has_request_time_ && pos < line.size()) {
    std::string_view rest = line.substr(pos);
    std::size_t i = rest.find_first_not_of(' ');
    for (int field = 0; field < 2 && i != std::string_view::npos; ++field) {
      std::size_t j = rest.find(' ', i);
      std::string_view v = rest.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i);
      double d = 0;
      if (parse_seconds(v, d)) (field == 0 ? e.duration_ms : e.handler_ms) = d * 1000;
      i = j == std::string_view::npos ? j : rest.find_first_not_of(' ', j);
    }
  }
  // A nginx line cut short in the middle of the user agent has no closing quote: the literal search
  // above fails and the line is counted as unparsed, which is what a truncated line should be.
  classify_nginx(e);
  return true;
}

bool parse_haproxy(std::string_view line, Entry& e) {
  e = Entry{};
  // Find "IP:PORT [dd/Mon/yyyy:hh:mm:ss.mmm]" wherever the syslog prefix ends.
  std::size_t open = line.find(" [");
  while (open != std::string_view::npos) {
    std::size_t close = line.find(']', open);
    if (close != std::string_view::npos && parse_clf_time(line.substr(open + 2, close - open - 2))) break;
    open = line.find(" [", open + 1);
  }
  if (open == std::string_view::npos) return false;
  std::size_t close = line.find(']', open);
  e.ts_ms = *parse_clf_time(line.substr(open + 2, close - open - 2));
  std::size_t cstart = line.rfind(' ', open - 1);
  e.client = line.substr(cstart == std::string_view::npos ? 0 : cstart + 1,
                         open - (cstart == std::string_view::npos ? 0 : cstart + 1));

  // The fields after the date, space separated, up to the quoted request.
  std::string_view rest = line.substr(close + 1);
  std::size_t quote = rest.find('"');
  if (quote == std::string_view::npos) return false;
  std::string_view head = rest.substr(0, quote);
  std::array<std::string_view, 10> f{};
  std::size_t nf = 0, i = 0;
  while (nf < f.size()) {
    i = head.find_first_not_of(' ', i);
    if (i == std::string_view::npos) break;
    std::size_t j = head.find(' ', i);
    f[nf++] = head.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i);
    if (j == std::string_view::npos) break;
    i = j;
  }
  // frontend backend/server timers status bytes req_cookie resp_cookie termination_state conns queues
  if (nf < 8) return false;
  std::string_view timers = f[2];
  // TR/Tw/Tc/Tr/Ta (Tq/Tw/Tc/Tr/Tt before 1.8): -1 where the request never got that far.
  std::array<std::int64_t, 5> t{-1, -1, -1, -1, -1};
  std::size_t k = 0, a = 0;
  for (;; ++k) {
    std::size_t b = timers.find('/', a);
    if (k >= t.size()) return false;
    std::string_view part = timers.substr(a, b == std::string_view::npos ? std::string_view::npos : b - a);
    if (!parse_int(part, t[k])) return false;
    if (b == std::string_view::npos) break;
    a = b + 1;
  }
  if (k != 4) return false;
  if (t[4] >= 0) e.duration_ms = static_cast<double>(t[4]);
  if (t[3] >= 0) e.handler_ms = static_cast<double>(t[3]);
  std::int64_t n = 0;
  if (!parse_int(f[3], n)) return false;
  e.status = static_cast<int>(n);
  if (parse_int(f[4], n)) e.bytes_out = n;
  std::string_view state = f[7];
  if (state.size() != 4) return false;

  // HAProxy cuts lines at its log length limit (1024 bytes by default): no closing quote, unparsed.
  std::string_view req = rest.substr(quote + 1);
  auto q2 = req.rfind('"');
  if (q2 == std::string_view::npos) return false;
  split_request(req.substr(0, q2), e);
  if (e.method == "<BADREQ>") e.method = {};

  switch (state[1]) {
    case 'R': e.phase = Phase::kRequestHeaders; break;
    case 'Q':
    case 'C':
    case 'H':
    case 'T': e.phase = Phase::kHandler; break;
    case 'D':
    case 'L': e.phase = Phase::kResponse; break;
    default: e.phase = Phase::kIdle;
  }
  switch (state[0]) {
    case 'C': e.outcome = Outcome::kClientClosed; break;
    case 'c':
      e.outcome = Outcome::kTimeout;
      e.timer = e.phase == Phase::kRequestHeaders ? Timer::kHeader
                : e.phase == Phase::kResponse    ? Timer::kSend
                                                 : Timer::kHeader;
      break;
    case 's':
      e.outcome = Outcome::kTimeout;
      e.timer = Timer::kHandler;
      break;
    case 'S':
    case 'I':
    case 'D':
    case 'U': e.outcome = Outcome::kHandlerError; break;
    case 'P': e.outcome = Outcome::kProtocolError; break;
    case 'R': e.outcome = Outcome::kLimitExceeded; break;
    case 'K': e.outcome = Outcome::kShutdown; break;
    default: e.outcome = Outcome::kOk;
  }
  if (e.outcome == Outcome::kOk) e.phase = Phase::kResponse;
  return true;
}

}  // namespace unbroken::analyze
