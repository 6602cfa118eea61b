#include "http/response_parser.h"

#include "base/text.h"
#include "http/llhttp_errors.h"
#include "http/wire.h"

namespace unbroken::http {
namespace {

ResponseParser& self(llhttp_t* p) {
  return *static_cast<ResponseParser*>(p->data);
}

// What a person reads (a proxy's 502 names it): the problem in words, never llhttp's code.
const char* describe(llhttp_errno_t err, const char* llhttp_reason) {
  switch (err) {
    case HPE_INVALID_CONSTANT: return "malformed status line";
    case HPE_INVALID_STATUS: return "malformed status code";
    default: break;
  }
  if (const char* text = shared_error_text(err, llhttp_reason)) return text;
  // llhttp's own reasons are sentences ("Expected CRLF after chunk"); its codes are not.
  return *llhttp_reason != '\0' ? llhttp_reason : "malformed response";
}

}  // namespace

void ParsedResponse::clear() {
  version_major = version_minor = 1;
  status = 0;
  reason.clear();
  headers.clear();
  trailers.clear();
  content_length.reset();
  framing = ResponseFraming::kNone;
  keep_alive = true;
}

const llhttp_settings_t& ResponseParser::settings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t st;
    llhttp_settings_init(&st);
    st.on_message_begin = on_message_begin;
    st.on_status = on_status;
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

ResponseParser::ResponseParser(ParserLimits limits) : limits_(limits) {
  llhttp_init(&parser_, HTTP_RESPONSE, &settings());
  parser_.data = this;
}

void ResponseParser::reset() {
  llhttp_init(&parser_, HTTP_RESPONSE, &settings());
  parser_.data = this;
  response_.clear();
  field_.clear();
  value_.clear();
  trim_capacity();
  sink_ = nullptr;
  head_bytes_ = body_bytes_ = trailer_bytes_ = 0;
  error_reason_ = "";
  begin_head();
  head_request_ = te_chunked_ = in_message_ = head_complete_ = interim_ = message_complete_ = false;
  upgraded_ = failed_ = cut_short_ = false;
}

void ResponseParser::trim_capacity() {
  for (std::string* s : {&response_.reason, &value_}) {
    if (s->capacity() > RequestParser::kMaxKeptCapacity) std::string().swap(*s);
  }
}

// The next bytes are a status line: the line scan starts again.
void ResponseParser::begin_head() {
  line_ = LineState::kVersion;
  code_digits_ = 0;
  prev_was_lf_ = false;
  head_bytes_ = 0;
}

int ResponseParser::fail(const char* reason) {
  error_reason_ = reason;
  return HPE_USER;
}

ResponseParser::Outcome ResponseParser::fail_at(const char* reason, std::size_t consumed) {
  failed_ = true;
  error_reason_ = reason;
  return {Status::kError, consumed};
}

int ResponseParser::on_message_begin(llhttp_t* p) {
  ResponseParser& s = self(p);
  s.response_.clear();
  s.field_.clear();
  s.value_.clear();
  s.body_bytes_ = s.trailer_bytes_ = 0;
  s.te_chunked_ = false;
  s.in_message_ = true;
  s.head_complete_ = s.interim_ = s.message_complete_ = false;
  return 0;
}

int ResponseParser::on_status(llhttp_t* p, const char* at, std::size_t len) {
  self(p).response_.reason.append(at, len);
  return 0;
}

// Trailer fields arrive after the head's limits were checked: they are bounded here, as they come.
int ResponseParser::count_trailer_bytes(std::size_t len) {
  trailer_bytes_ += len;
  return trailer_bytes_ > limits_.max_header_bytes ? fail("trailer section too large") : 0;
}

int ResponseParser::on_header_field(llhttp_t* p, const char* at, std::size_t len) {
  ResponseParser& s = self(p);
  s.field_.append(at, len);
  return s.head_complete_ ? s.count_trailer_bytes(len) : 0;
}

int ResponseParser::on_header_field_complete(llhttp_t* p) {
  ResponseParser& s = self(p);
  // RFC 9110 5.1: a field name is a token, never empty (llhttp takes ": value" for a field).
  if (s.field_.empty()) return s.fail("empty header field name");
  const HeaderList& list = s.head_complete_ ? s.response_.trailers : s.response_.headers;
  if (list.size() >= s.limits_.max_headers) return s.fail("too many header fields");
  return 0;
}

int ResponseParser::on_header_value(llhttp_t* p, const char* at, std::size_t len) {
  ResponseParser& s = self(p);
  s.value_.append(at, len);
  return s.head_complete_ ? s.count_trailer_bytes(len) : 0;
}

int ResponseParser::check_transfer_encoding(std::string_view value) {
  // RFC 9112 6.1: chunked is applied once, last. Several Transfer-Encoding lines form one list, so
  // a line after one that ended in chunked puts a coding after it. Other codings alone leave the
  // body delimited by the close (RFC 9112 6.3.4); llhttp frames it so, and so do we.
  if (te_chunked_) return fail("chunked is not the final transfer coding");
  bool chunked_seen = false;
  bool chunked_last = false;
  while (!value.empty()) {
    std::string_view coding = next_list_element(value);
    if (coding.empty()) continue;
    if (iequals(coding, "chunked")) {
      if (chunked_seen) return fail("chunked applied twice");
      chunked_seen = true;
    }
    chunked_last = iequals(coding, "chunked");
  }
  if (chunked_seen && !chunked_last) return fail("chunked is not the final transfer coding");
  te_chunked_ = chunked_last;
  return 0;
}

int ResponseParser::on_header_value_complete(llhttp_t* p) {
  ResponseParser& s = self(p);
  if (s.field_.empty()) return s.fail("empty header field name");
  if (s.head_complete_) {
    s.response_.trailers.add(s.field_, s.value_);
  } else {
    if (iequals(s.field_, "transfer-encoding")) {
      if (int r = s.check_transfer_encoding(s.value_); r != 0) return r;
    }
    s.response_.headers.add(s.field_, s.value_);
  }
  s.field_.clear();
  s.value_.clear();
  return 0;
}

int ResponseParser::on_headers_complete(llhttp_t* p) {
  return self(p).on_head(p);
}

// Return values are llhttp's: 0 go on (a bodiless message completes at once), 2 upgrade (the rest
// is another protocol), HPE_PAUSED stop before the body so the caller sees the head first.
int ResponseParser::on_head(llhttp_t* p) {
  ParsedResponse& r = response_;
  r.version_major = p->http_major;
  r.version_minor = p->http_minor;
  if (!(r.version_major == 1 && (r.version_minor == 0 || r.version_minor == 1)))
    return fail("unsupported HTTP version");
  r.status = p->status_code;
  if (r.status < 100 || r.status > 599) return fail("status code out of range");
  if (p->flags & F_CONTENT_LENGTH) r.content_length = p->content_length;
  if (r.status == 101) {
    // Whatever its head says (llhttp upgrades only with Upgrade and Connection: upgrade).
    upgraded_ = head_complete_ = true;
    r.keep_alive = false;
    return 2;
  }
  // RFC 9112 6.3: a 1xx, 204 or 304 answer and any answer to HEAD end with their head.
  bool informational = r.status < 200;
  if (head_request_ || bodiless_status(r.status)) p->flags |= F_SKIPBODY;
  if (informational) {
    interim_ = true;
    return 0;
  }
  if (p->flags & F_SKIPBODY) {
    r.framing = ResponseFraming::kNone;
  } else if (p->flags & F_CHUNKED) {
    r.framing = ResponseFraming::kChunked;
  } else if (p->flags & F_TRANSFER_ENCODING) {
    r.framing = ResponseFraming::kUntilClose;
  } else if (r.content_length) {
    r.framing = *r.content_length > 0 ? ResponseFraming::kLength : ResponseFraming::kNone;
  } else {
    r.framing = ResponseFraming::kUntilClose;
  }
  if (r.framing == ResponseFraming::kLength && *r.content_length > limits_.max_body)
    return fail("response body too large");
  r.keep_alive = llhttp_should_keep_alive(p) != 0;
  // RFC 9112 6.1: Transfer-Encoding in a 1.0 message means faulty framing; close after it.
  if (r.version_minor == 0 && (p->flags & F_TRANSFER_ENCODING)) r.keep_alive = false;
  head_complete_ = true;
  return r.framing == ResponseFraming::kNone ? 0 : HPE_PAUSED;
}

int ResponseParser::on_body(llhttp_t* p, const char* at, std::size_t len) {
  ResponseParser& s = self(p);
  s.body_bytes_ += len;
  if (s.body_bytes_ > s.limits_.max_body) return s.fail("response body too large");
  if (s.sink_) s.sink_->on_body({at, len});
  return 0;
}

int ResponseParser::on_message_complete(llhttp_t* p) {
  ResponseParser& s = self(p);
  // After an interim response the final one is still to come: the message goes on.
  if (!s.interim_) s.in_message_ = false;
  s.message_complete_ = true;
  return HPE_PAUSED;
}

// Checks what llhttp lets through in the bytes of a head: a status code of other than three digits
// ("0200", "  200") and obs-fold (RFC 9112 5.2: a user agent replaces it with spaces, but a proxy
// or gateway may reject it with a 502, which is what our client side, the reverse proxy, is). False
// with `at` the offending byte.
bool ResponseParser::scan_head(std::string_view data, std::size_t& at) {
  for (at = 0; at < data.size(); ++at) {
    char c = data[at];
    if (line_ == LineState::kVersion) {
      if (c == ' ') line_ = LineState::kCode;
    } else if (line_ == LineState::kCode) {
      if (c >= '0' && c <= '9' && code_digits_ < 3) {
        ++code_digits_;
      } else if (code_digits_ == 3 && (c == ' ' || c == '\r')) {
        line_ = LineState::kRest;
      } else {
        error_reason_ = "malformed status code";
        return false;
      }
    } else if ((c == ' ' || c == '\t') && prev_was_lf_) {
      error_reason_ = "obsolete line folding";
      return false;
    }
    prev_was_lf_ = c == '\n';
  }
  return true;
}

ResponseParser::Outcome ResponseParser::feed(std::string_view data, BodySink* sink) {
  if (failed_) return {Status::kError, 0};
  if (upgraded_) return {Status::kUpgrade, 0};
  sink_ = sink;
  if (llhttp_get_errno(&parser_) == HPE_PAUSED) llhttp_resume(&parser_);
  // Between responses counts as head; so does the time after an interim one.
  bool was_in_head = !in_message_ || !head_complete_;
  message_complete_ = false;
  llhttp_errno_t err = llhttp_execute(&parser_, data.data(), data.size());
  sink_ = nullptr;
  std::size_t consumed = data.size();
  // Paused or failed: only the bytes before that point were parsed, and only they are scanned.
  if (err != HPE_OK) consumed = static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - data.data());
  // A feed that started in a head pauses where it (or a bodiless message) ends: all head bytes.
  if (was_in_head) {
    head_bytes_ += consumed;
    std::size_t at = 0;
    if (!scan_head(data.substr(0, consumed), at)) return fail_at(error_reason_, at);
  }
  if (err == HPE_PAUSED_UPGRADE) err = HPE_PAUSED;
  if (err != HPE_OK && err != HPE_PAUSED) {
    // Our own checks set the reason (llhttp reports them as HPE_USER or an HPE_CB_* code).
    if (*error_reason_ == '\0') {
      const char* reason = llhttp_get_error_reason(&parser_);
      error_reason_ = describe(err, reason ? reason : "");
    }
    return fail_at(error_reason_, consumed);
  }
  if (was_in_head && head_bytes_ > limits_.max_header_bytes) return fail_at("response head too large", consumed);
  if (message_complete_) {
    begin_head();
    if (upgraded_) return {Status::kUpgrade, consumed};
    return {interim_ ? Status::kInterim : Status::kMessage, consumed};
  }
  if (err == HPE_PAUSED && head_complete_) return {Status::kHead, consumed};
  return {Status::kNeedMore, consumed};
}

ResponseParser::Status ResponseParser::finish() {
  if (failed_) return Status::kError;
  if (!in_message_) return Status::kNeedMore;
  // A close-delimited body ends here (llhttp_finish would say so too, but not while paused at
  // the head, where an empty such body leaves it).
  if (head_complete_ && response_.framing == ResponseFraming::kUntilClose) {
    in_message_ = false;
    return Status::kMessage;
  }
  cut_short_ = failed_ = true;
  error_reason_ = head_complete_ ? "connection closed before the response body ended"
                                 : "connection closed before the response head ended";
  return Status::kError;
}

}  // namespace unbroken::http
