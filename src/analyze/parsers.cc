#include "analyze/parsers.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>

#include "analyze/time_parse.h"
#include "base/text.h"

namespace unbroken::analyze {
namespace {

bool parse_int(std::string_view s, std::int64_t& out) {
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

// nginx's $upstream_* values list every upstream a request tried: "a, b" for the servers of one
// group (the earlier ones failed and b was tried next), "a : b" across an internal redirect (a new
// request). The last one answered; `retries` is how many of its group were tried before it.
std::string_view last_upstream(std::string_view s, int* retries = nullptr) {
  if (auto redirect = s.rfind(" : "); redirect != std::string_view::npos) s = s.substr(redirect + 3);
  if (retries != nullptr) *retries = static_cast<int>(std::count(s.begin(), s.end(), ','));
  if (auto comma = s.rfind(','); comma != std::string_view::npos) s = s.substr(comma + 1);
  return trim_ows(s);
}

// "0.123" seconds; false for "-" and anything else that is not a number. Of a list ("0.010, 0.120"
// after an upstream retry), the last one.
bool parse_seconds(std::string_view s, double& out) {
  s = last_upstream(s);
  if (s.empty() || s == "-") return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  // from_chars takes "inf" and "nan"; a log's seconds are finite and below ~30 years.
  return ec == std::errc() && end == s.data() + s.size() && std::isfinite(out) && out >= 0 && out < 1e12;
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

void classify_by_status(Entry& e) {
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
    default: e.outcome = Outcome::kOk; e.phase = Phase::kResponse;
  }
}

void classify_upstream_failure(Entry& e, bool header_logged, bool connect_logged) {
  if (e.upstream.empty() || (e.status != 502 && e.status != 504)) return;
  if (header_logged && e.upstream_header_ms >= 0) return;  // the application's own 502/504
  // nginx writes "-" for a connect time when it never connected.
  const bool never_connected = connect_logged && e.upstream_connect_ms < 0;
  e.phase = Phase::kHandler;
  e.timer = Timer::kNone;
  if (e.upstream.find(':') == std::string_view::npos) {
    // Not an address but the upstream block's name: "no live upstreams", none could be tried.
    e.outcome = Outcome::kUpstreamUnavailable;
  } else if (e.status == 504) {
    e.outcome = Outcome::kUpstreamTimeout;
    e.timer = never_connected ? Timer::kUpstreamConnect : Timer::kUpstreamHeader;
  } else {
    // A 502 after connecting is a reset or a malformed head; nginx's log does not tell them apart.
    e.outcome = never_connected ? Outcome::kUpstreamRefused : Outcome::kUpstreamReset;
  }
}

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

// The log_format variables the parser reads; any other is skipped.
constexpr std::pair<std::string_view, NginxParser::Var> kVariables[] = {
    {"remote_addr", NginxParser::Var::kRemoteAddr},
    {"http_x_forwarded_for", NginxParser::Var::kRemoteAddr},
    {"realip_remote_addr", NginxParser::Var::kRemoteAddr},
    {"time_local", NginxParser::Var::kTimeLocal},
    {"time_iso8601", NginxParser::Var::kTimeIso},
    {"msec", NginxParser::Var::kMsec},
    {"request", NginxParser::Var::kRequest},
    {"request_method", NginxParser::Var::kMethod},
    {"request_uri", NginxParser::Var::kUri},
    {"uri", NginxParser::Var::kUri},
    {"status", NginxParser::Var::kStatus},
    {"body_bytes_sent", NginxParser::Var::kBytesSent},
    {"bytes_sent", NginxParser::Var::kBytesSent},
    {"http_user_agent", NginxParser::Var::kUserAgent},
    {"request_time", NginxParser::Var::kRequestTime},
    {"upstream_response_time", NginxParser::Var::kUpstreamTime},
    {"upstream_addr", NginxParser::Var::kUpstreamAddr},
    {"upstream_status", NginxParser::Var::kUpstreamStatus},
    {"upstream_header_time", NginxParser::Var::kUpstreamHeaderTime},
    {"upstream_connect_time", NginxParser::Var::kUpstreamConnectTime},
    {"request_completion", NginxParser::Var::kCompletion},
    {"sent_http_content_length", NginxParser::Var::kContentLength},
};

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
    for (const auto& [known, as] : kVariables) {
      if (var == known) v = as;
    }
    any |= v == Var::kStatus;
    p.has_request_time_ |= v == Var::kRequestTime;
    p.has_completion_ |= v == Var::kCompletion;
    p.has_length_ |= v == Var::kContentLength;
    p.has_body_bytes_ |= var == "body_bytes_sent";
    p.has_upstream_ |= var.starts_with("upstream_") && v != Var::kOther;
    p.has_header_time_ |= v == Var::kUpstreamHeaderTime;
    p.has_connect_time_ |= v == Var::kUpstreamConnectTime;
    p.tokens_.push_back(Token{"", v});
  }
  if (!any) {
    *error = "--nginx-format: the format has no $status, so departures cannot be told apart";
    return std::nullopt;
  }
  p.combined_ = format == kCombined;
  return p;
}

bool NginxParser::parse(std::string_view line, Entry& e) const {
  e = Entry{};
  std::size_t pos = 0;
  bool has_status = false;
  std::int64_t content_length = -1;
  std::string_view completion;
  for (std::size_t t = 0; t < tokens_.size() && !e.repaired; ++t) {
    const Token& tok = tokens_[t];
    if (!tok.literal.empty()) {
      if (line.compare(pos, tok.literal.size(), tok.literal) != 0) return false;
      pos += tok.literal.size();
      continue;
    }
    std::size_t end;
    if (t + 1 < tokens_.size()) {
      end = line.find(tokens_[t + 1].literal, pos);
      if (end == std::string_view::npos) {
        if (!last_quoted(t)) return false;
        // The last quoted field without its closing quote (a user agent cut off, as published Apache
        // and nginx logs have): read as far as it goes, as GoAccess does, and counted as repaired.
        end = line.size();
        e.repaired = true;
      }
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
        if (auto ts = parse_clf_time(v))
          e.ts_ms = *ts;
        else
          return false;
        break;
      case Var::kTimeIso:
        if (auto ts = parse_iso8601(v))
          e.ts_ms = *ts;
        else
          return false;
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
        if (parse_seconds(v, d)) e.handler_ms = e.upstream_ms = d * 1000;
        break;
      case Var::kUpstreamHeaderTime:
        if (parse_seconds(v, d)) e.upstream_header_ms = d * 1000;
        break;
      case Var::kUpstreamConnectTime:
        if (parse_seconds(v, d)) e.upstream_connect_ms = d * 1000;
        break;
      case Var::kUpstreamAddr: {
        int retries = 0;
        std::string_view addr = last_upstream(v, &retries);
        if (addr != "-") e.upstream = addr;
        e.upstream_retries = std::max(e.upstream_retries, retries);
        break;
      }
      case Var::kUpstreamStatus: {
        int retries = 0;
        if (parse_int(last_upstream(v, &retries), n) && n >= 100 && n <= 999) e.upstream_status = static_cast<int>(n);
        e.upstream_retries = std::max(e.upstream_retries, retries);
        break;
      }
      case Var::kCompletion: completion = v; break;
      case Var::kContentLength:
        if (parse_int(v, n)) content_length = n;
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
  classify_by_status(e);
  if (has_upstream_) classify_upstream_failure(e, has_header_time_, has_connect_time_);
  if (e.outcome == Outcome::kOk && e.download()) {
    // nginx logs an abandoned download as a 200 with fewer bytes; these two variables say so exactly.
    bool short_body = has_body_bytes_ && content_length >= 0 && e.bytes_out >= 0 && e.bytes_out < content_length;
    if ((has_completion_ && completion != "OK") || short_body) {
      e.outcome = Outcome::kClientClosed;
      e.phase = Phase::kResponse;
      e.cut = Cut::kExact;
    }
  }
  return true;
}

bool NginxParser::last_quoted(std::size_t t) const {
  return t + 2 == tokens_.size() && t > 0 && tokens_[t + 1].literal.starts_with('"') &&
         tokens_[t - 1].literal.ends_with('"');
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
                : e.phase == Phase::kResponse     ? Timer::kSend
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
