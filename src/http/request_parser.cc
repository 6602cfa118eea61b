#include "http/request_parser.h"

#include <array>

#include "base/text.h"
#include "http/llhttp_errors.h"

namespace unbroken::http {
namespace {

RequestParser& self(llhttp_t* p) {
  return *static_cast<RequestParser*>(p->data);
}

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// A table: every request's Host is checked a character at a time.
constexpr auto kUnreservedOrSubDelim = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c)
    t[static_cast<std::size_t>(c)] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  for (char c : std::string_view("-._~!$&'()*+,;=")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();

bool is_unreserved_or_sub_delim(char c) {
  return kUnreservedOrSubDelim[static_cast<unsigned char>(c)];
}

// RFC 3986 3.2.3: port = *DIGIT; one that names no TCP port is refused too.
bool valid_port(std::string_view port) {
  if (port.size() > 5) return false;
  unsigned v = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  return v <= 65535;
}

// RFC 9112 3.2: Host = uri-host [ ":" port ], uri-host = IP-literal / IPv4address / reg-name. An
// empty value is allowed (a target without an authority).
bool valid_host(std::string_view v) {
  std::string_view host = v;
  std::string_view rest;
  if (!v.empty() && v.front() == '[') {
    auto close = v.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    // IPv6address or IPvFuture ("v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )).
    for (char c : v.substr(1, close - 1))
      if (!is_hex(c) && c != ':' && c != '.' && !(v[1] == 'v' && is_unreserved_or_sub_delim(c))) return false;
    host = {};
    rest = v.substr(close + 1);
  } else {
    auto colon = v.find(':');
    host = v.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view{} : v.substr(colon);
  }
  for (std::size_t i = 0; i < host.size(); ++i) {
    char c = host[i];
    if (c == '%') {
      if (i + 2 >= host.size() || !is_hex(host[i + 1]) || !is_hex(host[i + 2])) return false;
      i += 2;
    } else if (!is_unreserved_or_sub_delim(c)) {
      return false;
    }
  }
  if (rest.empty()) return true;
  return rest.front() == ':' && valid_port(rest.substr(1));
}

constexpr const char* kNoHttp2 = "HTTP/2 is not supported here; speak HTTP/1.1";

struct Answer {
  int status;
  const char* text;
};

// What a person reads: the problem in words (llhttp_errors.h), and the status that answers it.
Answer describe(llhttp_errno_t err, const char* llhttp_reason) {
  switch (err) {
    case HPE_INVALID_METHOD: return {400, "invalid method"};
    case HPE_INVALID_URL: return {400, "invalid request target"};
    case HPE_INVALID_CONSTANT: return {400, "malformed request line"};
    case HPE_PAUSED_H2_UPGRADE: return {505, kNoHttp2};
    default: break;
  }
  if (const char* text = shared_error_text(err, llhttp_reason))
    return {std::string_view(text) == kUnsupportedVersion ? 505 : 400, text};
  // llhttp's own reasons are sentences ("Expected CRLF after chunk"); its codes are not.
  return {400, *llhttp_reason != '\0' ? llhttp_reason : "malformed request"};
}

}  // namespace

const llhttp_settings_t& RequestParser::settings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t st;
    llhttp_settings_init(&st);
    st.on_message_begin = on_message_begin;
    st.on_method_complete = on_method_complete;
    st.on_url = on_url;
    st.on_header_field = on_header_field;
    st.on_header_field_complete = on_header_field_complete;
    st.on_header_value = on_header_value;
    st.on_header_value_complete = on_header_value_complete;
    st.on_headers_complete = on_headers_complete;
    st.on_body = on_body;
    st.on_message_complete = on_message_complete;
    return st;
  }();
  return s;
}

RequestParser::RequestParser(ParserLimits limits) : limits_(limits) {
  llhttp_init(&parser_, HTTP_REQUEST, &settings());
  parser_.data = this;
}

void RequestParser::reset() {
  llhttp_init(&parser_, HTTP_REQUEST, &settings());
  parser_.data = this;
  request_.clear();
  field_.clear();
  value_.clear();
  trim_capacity();
  sink_ = nullptr;
  head_bytes_ = body_bytes_ = 0;
  host_count_ = 0;
  te_chunked_ = false;
  error_status_ = 0;
  error_reason_ = "";
  in_message_ = head_complete_ = message_complete_ = failed_ = prev_was_lf_ = false;
}

void RequestParser::trim_capacity() {
  for (std::string* s : {&request_.body, &request_.target, &value_}) {
    if (s->capacity() > kMaxKeptCapacity) std::string().swap(*s);
  }
}

void RequestParser::trim(Request& r) {
  r.clear();
  for (std::string* s : {&r.body, &r.target}) {
    if (s->capacity() > kMaxKeptCapacity) std::string().swap(*s);
  }
  if (r.headers.arena_capacity() > kMaxKeptCapacity) r.headers = HeaderList{};
}

int RequestParser::fail(int status, const char* reason) {
  error_status_ = status;
  error_reason_ = reason;
  return HPE_USER;
}

int RequestParser::on_message_begin(llhttp_t* p) {
  RequestParser& s = self(p);
  s.request_.clear();
  s.field_.clear();
  s.value_.clear();
  s.body_bytes_ = 0;
  s.host_count_ = 0;
  s.te_chunked_ = false;
  s.in_message_ = true;
  s.head_complete_ = s.message_complete_ = false;
  return 0;
}

int RequestParser::on_method_complete(llhttp_t* p) {
  RequestParser& s = self(p);
  // Known this early, the method lets an error in the rest of the head still be answered to HEAD
  // without a body (RFC 9110 9.3.2).
  s.request_.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
  // PRI is reserved for the HTTP/2 preface (RFC 9113 3.4): answer now rather than wait, perhaps
  // until the header timeout, for the rest of a preface we cannot speak anyway.
  if (p->method == HTTP_PRI) return s.fail(505, kNoHttp2);
  return 0;
}

int RequestParser::on_url(llhttp_t* p, const char* at, std::size_t len) {
  self(p).request_.target.append(at, len);
  return 0;
}

int RequestParser::on_header_field(llhttp_t* p, const char* at, std::size_t len) {
  self(p).field_.append(at, len);
  return 0;
}

int RequestParser::on_header_field_complete(llhttp_t* p) {
  RequestParser& s = self(p);
  // RFC 9110 5.1: a field name is a token, never empty (llhttp takes ": value" for a field).
  if (s.field_.empty()) return s.fail(400, "empty header field name");
  if (s.request_.headers.size() >= s.limits_.max_headers) return s.fail(431, "too many header fields");
  return 0;
}

int RequestParser::on_header_value(llhttp_t* p, const char* at, std::size_t len) {
  self(p).value_.append(at, len);
  return 0;
}

int RequestParser::check_transfer_encoding(std::string_view value) {
  // RFC 9112 6.1/6.3: chunked must be the final coding, once; we implement no other coding. Several
  // Transfer-Encoding lines form one list: a line after one that ended in chunked puts something
  // after chunked (llhttp would frame by the last line alone, a proxy perhaps by the first).
  if (te_chunked_) return fail(400, "chunked is not the final transfer coding");
  bool chunked_seen = false;
  bool chunked_last = false;
  while (!value.empty()) {
    std::string_view token = next_list_element(value);
    if (iequals(token, "chunked")) {
      if (chunked_seen) return fail(400, "chunked applied twice");
      chunked_seen = chunked_last = true;
    } else if (!token.empty()) {
      return fail(501, "unsupported transfer coding");
    }
  }
  if (!chunked_last) return fail(400, "chunked is not the final transfer coding");
  te_chunked_ = true;
  return 0;
}

int RequestParser::on_header_value_complete(llhttp_t* p) {
  RequestParser& s = self(p);
  if (s.field_.empty()) return s.fail(400, "empty header field name");
  if (iequals(s.field_, "host")) {
    if (++s.host_count_ > 1) return s.fail(400, "more than one Host header");
    if (!valid_host(trim_ows(s.value_))) return s.fail(400, "invalid Host header");
  }
  if (iequals(s.field_, "transfer-encoding")) {
    if (int r = s.check_transfer_encoding(s.value_); r != 0) return r;
  }
  s.request_.headers.add(s.field_, s.value_);
  s.field_.clear();
  s.value_.clear();
  return 0;
}

int RequestParser::on_headers_complete(llhttp_t* p) {
  RequestParser& s = self(p);
  Request& r = s.request_;
  r.version_major = p->http_major;
  r.version_minor = p->http_minor;
  if (!(r.version_major == 1 && (r.version_minor == 0 || r.version_minor == 1)))
    return s.fail(505, "unsupported HTTP version");
  if (r.version_minor == 1 && s.host_count_ == 0) return s.fail(400, "missing Host header");
  if (p->method == HTTP_CONNECT) return s.fail(405, "CONNECT is not supported");
  r.chunked = (p->flags & F_CHUNKED) != 0;
  if (p->flags & F_CONTENT_LENGTH) r.content_length = p->content_length;
  if (r.content_length && *r.content_length > s.limits_.max_body) return s.fail(413, "request body too large");
  r.keep_alive = llhttp_should_keep_alive(p) != 0;
  std::string_view expect = r.header("expect");
  if (!expect.empty()) {
    if (!iequals(trim_ows(expect), "100-continue")) return s.fail(417, "unsupported expectation");
    r.expect_continue = r.version_minor == 1;
  }
  s.head_complete_ = true;
  // With a body, pause so the caller can dispatch (and answer 100-continue) before body bytes flow.
  // Without one, go straight on to message completion, which pauses too.
  return r.has_body() ? HPE_PAUSED : 0;
}

int RequestParser::on_body(llhttp_t* p, const char* at, std::size_t len) {
  RequestParser& s = self(p);
  s.body_bytes_ += len;
  if (s.body_bytes_ > s.limits_.max_body) return s.fail(413, "request body too large");
  if (s.sink_) s.sink_->on_body({at, len});
  return 0;
}

int RequestParser::on_message_complete(llhttp_t* p) {
  RequestParser& s = self(p);
  s.in_message_ = false;
  s.message_complete_ = true;
  return HPE_PAUSED;
}

void RequestParser::map_llhttp_error(llhttp_errno_t err) {
  failed_ = true;
  // Our own checks set the status; llhttp reports them as HPE_USER or HPE_CB_* codes.
  if (error_status_ != 0) return;
  const char* reason = llhttp_get_error_reason(&parser_) ? llhttp_get_error_reason(&parser_) : "";
  Answer a = describe(err, reason);
  error_status_ = a.status;
  error_reason_ = a.text;
}

namespace {

// Where a line of `head` starts with SP or HT (obs-fold), if one does; `after_lf`: the byte before
// `head` was an LF. By memchr from LF to LF: a head is scanned at memchr's speed, not a byte a turn.
std::optional<std::size_t> find_fold(std::string_view head, bool after_lf) {
  auto starts_fold = [&](std::size_t i) { return i < head.size() && (head[i] == ' ' || head[i] == '\t'); };
  if (after_lf && starts_fold(0)) return 0;
  for (std::size_t lf = head.find('\n'); lf != std::string_view::npos; lf = head.find('\n', lf + 1))
    if (starts_fold(lf + 1)) return lf + 1;
  return std::nullopt;
}

}  // namespace

RequestParser::Outcome RequestParser::feed(std::string_view data, BodySink* sink) {
  if (failed_) return {Status::kError, 0};
  sink_ = sink;
  if (llhttp_get_errno(&parser_) == HPE_PAUSED) llhttp_resume(&parser_);
  // Between messages counts as head: stray empty lines before a request line are scanned like it.
  // (head_complete_ stays set after a message until the next one begins, so it alone cannot say.)
  bool was_in_head = !in_message_ || !head_complete_;
  message_complete_ = false;
  llhttp_errno_t err = llhttp_execute(&parser_, data.data(), data.size());
  sink_ = nullptr;
  std::size_t consumed = data.size();
  if (err != HPE_OK) {
    // Paused or failed: only the bytes before that point were parsed. The obs-fold scan below must
    // not look past them, or a fold after a bad version would change the answer with the split.
    consumed = static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - data.data());
  }
  // A feed that started in the head pauses where the head (or a bodiless message) ends, so what
  // it consumed is head bytes.
  if (was_in_head) {
    head_bytes_ += consumed;
    // llhttp accepts obs-fold (a header line starting with SP or HT). RFC 9112 5.2 lets a server
    // reject it, and a proxy in front may have read the fold differently: reject it here.
    if (auto fold = find_fold(data.substr(0, consumed), prev_was_lf_)) {
      failed_ = true;
      error_status_ = 400;
      error_reason_ = "obsolete line folding";
      return {Status::kError, *fold};
    }
    if (consumed > 0) prev_was_lf_ = data[consumed - 1] == '\n';
  }
  if (err == HPE_PAUSED_UPGRADE) {
    // We speak no other protocol: answer the request and close.
    request_.keep_alive = false;
    llhttp_resume_after_upgrade(&parser_);
    err = HPE_PAUSED;
  }
  if (err != HPE_OK && err != HPE_PAUSED) {
    map_llhttp_error(err);
    return {Status::kError, consumed};
  }
  if (was_in_head && head_bytes_ > limits_.max_header_bytes) {
    failed_ = true;
    error_status_ = 431;
    error_reason_ = "request head too large";
    return {Status::kError, consumed};
  }
  if (message_complete_) {
    // The LF that ended this message must not make a space after it look like a fold: what follows
    // is the next request line, which llhttp judges.
    prev_was_lf_ = false;
    // Counted from here, empty lines before the next request line count toward its head's limit
    // however the stream was cut.
    head_bytes_ = 0;
    return {Status::kMessage, consumed};
  }
  if (err == HPE_PAUSED && head_complete_) return {Status::kHead, consumed};
  return {Status::kNeedMore, consumed};
}

}  // namespace unbroken::http
