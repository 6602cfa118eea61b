#pragma once
// Reads one HTTP/1.1 response after another from a byte stream (llhttp in response mode): status,
// framing (Content-Length, chunked, or until close), body length, keep-alive.

#include <llhttp.h>

#include <cstdint>
#include <string_view>

namespace unbroken::chaos {

class ResponseReader {
 public:
  enum class Status { kNeedMore, kHead, kComplete, kError };

  ResponseReader();
  ResponseReader(const ResponseReader&) = delete;
  ResponseReader& operator=(const ResponseReader&) = delete;

  // Parses until the head is complete (kHead, once per response), the response is complete, or the
  // data runs out; `consumed` says how much of data was used.
  Status feed(std::string_view data, std::size_t& consumed);
  // The peer closed: completes a response delimited by the close; false if one was cut short.
  bool finish();
  // Ready for the next response on the same connection.
  void reset();

  [[nodiscard]] int status() const { return status_; }
  [[nodiscard]] bool head_seen() const { return head_seen_; }
  [[nodiscard]] bool started() const { return started_; }
  [[nodiscard]] std::uint64_t body_bytes() const { return body_bytes_; }
  [[nodiscard]] bool keep_alive() const { return keep_alive_; }
  [[nodiscard]] std::string_view error() const { return error_; }

 private:
  static int on_message_begin(llhttp_t* p);
  static int on_headers_complete(llhttp_t* p);
  static int on_body(llhttp_t* p, const char* at, std::size_t len);
  static int on_message_complete(llhttp_t* p);

  llhttp_settings_t settings_{};
  llhttp_t parser_{};
  int status_ = 0;
  bool started_ = false;
  bool head_seen_ = false;
  bool head_reported_ = false;
  bool complete_ = false;
  bool keep_alive_ = false;
  std::uint64_t body_bytes_ = 0;
  std::string_view error_;
};

}  // namespace unbroken::chaos
