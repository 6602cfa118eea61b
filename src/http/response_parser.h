#pragma once
// The client side's llhttp wrapper (HTTP_RESPONSE, strict mode), beside RequestParser: one response
// after another from a byte stream, with the same header storage and limits. feed() parses until an
// interim (1xx) head, the final head when a body follows, the message's end, a 101 (the rest of the
// stream is another protocol, left unconsumed), the data running out, or an error. Body bytes go to
// a BodySink as they are parsed (a proxy streams them) and are counted. Peer bytes never assert.

#include <llhttp.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http/request.h"
#include "http/request_parser.h"

namespace unbroken::http {

// How the body of a final response is delimited (RFC 9112 6.3).
enum class ResponseFraming : std::uint8_t {
  kNone,        // HEAD, 1xx, 101, 204, 304 (whatever the head says), or Content-Length: 0
  kLength,      // Content-Length
  kChunked,     // Transfer-Encoding ending in chunked
  kUntilClose,  // neither: the body ends when the server closes (finish())
};

struct ParsedResponse {
  int version_major = 1;
  int version_minor = 1;
  int status = 0;
  std::string reason;  // the reason phrase as received, possibly empty
  HeaderList headers;
  HeaderList trailers;                          // after a chunked body's last chunk
  std::optional<std::uint64_t> content_length;  // as the head says (a 304 or HEAD answer too)
  ResponseFraming framing = ResponseFraming::kNone;
  bool keep_alive = true;  // the connection can carry the next request after this response

  // First header with this name (case-insensitive), or empty.
  [[nodiscard]] std::string_view header(std::string_view name) const { return headers.find(name); }
  void clear();
};

class ResponseParser {
 public:
  enum class Status {
    kNeedMore,  // every byte consumed, the response is not complete
    kInterim,   // a 1xx head (not 101) is complete: response() holds it; feed on for the final one
    kHead,      // the final head is complete and a body follows; feed on for it
    kMessage,   // the final response is complete; the next feed begins the next response
    kUpgrade,   // 101 Switching Protocols: what follows its head is not HTTP and is not consumed
    kError,     // malformed response: error_reason() says why; the connection must close
  };
  struct Outcome {
    Status status;
    std::size_t consumed;
  };

  explicit ResponseParser(ParserLimits limits);
  ResponseParser(const ResponseParser&) = delete;
  ResponseParser& operator=(const ResponseParser&) = delete;

  // The method of the request the coming response answers (RFC 9110 9.3.2: the answer to HEAD has
  // no body, whatever its head says). Holds until it is set again or the parser is reset.
  void expect_response_to(std::string_view method) { head_request_ = method == "HEAD"; }
  Outcome feed(std::string_view data, BodySink* sink);
  // The peer closed (EOF): kMessage when that completed a close-delimited body, kNeedMore when no
  // response was under way (a clean close between responses), kError when one was cut short
  // (cut_short() is then true).
  Status finish();
  // Back to the state of a new parser for a new connection, keeping capacity as RequestParser does.
  void reset();

  [[nodiscard]] const ParsedResponse& response() const { return response_; }
  [[nodiscard]] std::string_view error_reason() const { return error_reason_; }
  [[nodiscard]] bool cut_short() const { return cut_short_; }
  // Bytes of the current head so far / body bytes of the current response (after de-chunking).
  [[nodiscard]] std::uint64_t head_bytes() const { return head_bytes_; }
  [[nodiscard]] std::uint64_t body_bytes() const { return body_bytes_; }
  // True from the first byte of a response (an interim one included) until the final one ends.
  [[nodiscard]] bool in_message() const { return in_message_; }
  // The final response's head is complete (it stays so after the message, until the next begins).
  [[nodiscard]] bool head_complete() const { return head_complete_; }

 private:
  static int on_message_begin(llhttp_t* p);
  static int on_status(llhttp_t* p, const char* at, std::size_t len);
  static int on_header_field(llhttp_t* p, const char* at, std::size_t len);
  static int on_header_field_complete(llhttp_t* p);
  static int on_header_value(llhttp_t* p, const char* at, std::size_t len);
  static int on_header_value_complete(llhttp_t* p);
  static int on_headers_complete(llhttp_t* p);
  static int on_body(llhttp_t* p, const char* at, std::size_t len);
  static int on_message_complete(llhttp_t* p);
  static const llhttp_settings_t& settings();

  int fail(const char* reason);
  Outcome fail_at(const char* reason, std::size_t consumed);
  int check_transfer_encoding(std::string_view value);
  int count_trailer_bytes(std::size_t len);
  int on_head(llhttp_t* p);
  bool scan_head(std::string_view data, std::size_t& at);
  void trim_capacity();
  void begin_head();

  // The status line's code is scanned here, llhttp takes "0200" and "  200": exactly three digits.
  enum class LineState : std::uint8_t { kVersion, kCode, kRest };

  llhttp_t parser_{};
  ParserLimits limits_;
  ParsedResponse response_;
  std::string field_;
  std::string value_;
  BodySink* sink_ = nullptr;
  std::uint64_t head_bytes_ = 0;
  std::uint64_t body_bytes_ = 0;
  std::uint64_t trailer_bytes_ = 0;
  const char* error_reason_ = "";
  int code_digits_ = 0;
  LineState line_ = LineState::kVersion;
  bool head_request_ = false;
  bool te_chunked_ = false;  // a Transfer-Encoding line of this message ended in chunked
  bool in_message_ = false;
  bool head_complete_ = false;
  bool interim_ = false;  // the head that just completed was a 1xx
  bool message_complete_ = false;
  bool upgraded_ = false;
  bool failed_ = false;
  bool cut_short_ = false;
  bool prev_was_lf_ = false;  // across feeds: the head's last byte so far was LF
};

}  // namespace unbroken::http
