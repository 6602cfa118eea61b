#pragma once
// The llhttp wrapper (strict mode). feed() parses until the request head is complete, the message is
// complete, the data runs out, or the request is bad; bad requests carry the status to answer with.
// Body bytes are passed to a BodySink as they are parsed.

#include <llhttp.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "http/http_limits.h"
#include "http/request.h"

namespace unbroken::http {

class BodySink {
 public:
  virtual ~BodySink() = default;
  virtual void on_body(std::string_view chunk) = 0;
};

// A parser's share of HttpLimits (their defaults are the server's); the client side passes its own.
struct ParserLimits {
  std::uint64_t max_header_bytes = HttpLimits{}.max_header_bytes;
  std::size_t max_headers = HttpLimits{}.max_headers;
  std::uint64_t max_body = HttpLimits{}.max_body;
};

class RequestParser {
 public:
  enum class Status {
    kNeedMore,  // every byte consumed, the request is not complete
    kHead,      // head complete and a body follows: request() is ready to dispatch
    kMessage,   // message complete (head and body); the parser is paused until the next feed
    kError,     // bad request: error_status() and error_reason() say why; the connection must close
  };
  struct Outcome {
    Status status;
    std::size_t consumed;
  };

  explicit RequestParser(ParserLimits limits);
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  Outcome feed(std::string_view data, BodySink* sink);
  [[nodiscard]] Request& request() { return request_; }
  [[nodiscard]] const Request& request() const { return request_; }
  // Takes back a finished request (moved out of request() after its head) for its capacity.
  void recycle(Request&& r) {
    r.clear();
    request_ = std::move(r);
    trim_capacity();
  }
  // Empties r, keeping its strings' capacity up to kMaxKeptCapacity each.
  static void trim(Request& r);
  // Back to the state of a new parser for a new connection, keeping the request's capacity (up
  // to kMaxKeptCapacity per string, so one large upload does not pin its buffer forever).
  void reset();
  static constexpr std::size_t kMaxKeptCapacity = 16 * 1024;
  [[nodiscard]] int error_status() const { return error_status_; }
  [[nodiscard]] std::string_view error_reason() const { return error_reason_; }
  // Bytes of the current request's head so far (empty lines before its request line included) / total
  // body bytes parsed.
  [[nodiscard]] std::uint64_t head_bytes() const { return head_bytes_; }
  [[nodiscard]] std::uint64_t body_bytes() const { return body_bytes_; }
  // True between the first byte of a request and its message completion.
  [[nodiscard]] bool in_message() const { return in_message_; }
  [[nodiscard]] bool head_complete() const { return head_complete_; }

 private:
  static int on_message_begin(llhttp_t* p);
  static int on_method_complete(llhttp_t* p);
  static int on_url(llhttp_t* p, const char* at, std::size_t len);
  static int on_header_field(llhttp_t* p, const char* at, std::size_t len);
  static int on_header_field_complete(llhttp_t* p);
  static int on_header_value(llhttp_t* p, const char* at, std::size_t len);
  static int on_header_value_complete(llhttp_t* p);
  static int on_headers_complete(llhttp_t* p);
  static int on_body(llhttp_t* p, const char* at, std::size_t len);
  static int on_message_complete(llhttp_t* p);
  static const llhttp_settings_t& settings();

  int fail(int status, const char* reason);
  void trim_capacity();
  int check_transfer_encoding(std::string_view value);
  void map_llhttp_error(llhttp_errno_t err);

  llhttp_t parser_{};
  ParserLimits limits_;
  Request request_;
  std::string field_;
  std::string value_;
  BodySink* sink_ = nullptr;
  std::uint64_t head_bytes_ = 0;
  std::uint64_t body_bytes_ = 0;
  int host_count_ = 0;
  bool te_chunked_ = false;  // a Transfer-Encoding line of this message ended in chunked
  int error_status_ = 0;
  const char* error_reason_ = "";
  bool in_message_ = false;
  bool head_complete_ = false;
  bool message_complete_ = false;
  bool failed_ = false;
  bool prev_was_lf_ = false;  // across feeds: the head's last byte so far was LF
};

}  // namespace unbroken::http
