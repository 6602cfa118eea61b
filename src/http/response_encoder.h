#pragma once
// Response framing, one response at a time: the head (ours, or an upstream's status and headers with
// our framing), the framing of body pieces (Content-Length, chunked, or to the close), gzip's tail,
// the final chunk, and the error answer the connection sends in place of a response. It decides and
// serialises; the connection owns the transport, the timers and what is sent when.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/unique_fd.h"
#include "http/content_encoding.h"
#include "http/request.h"
#include "http/response_head.h"
#include "net/transport.h"

namespace unbroken::http {

// What an application server answered, as the reverse proxy forwards it: its status, reason and
// headers. Not forwarded: the hop-by-hop fields (RFC 9110 7.6.1: Connection and the fields it
// names, Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade), Trailer and Content-Length
// (the framing towards our client is ours, and re-framed trailers are not sent), and
// Proxy-Authenticate (RFC 9110 11.7.1: it is meant for the next proxy, which we are).
struct UpstreamHead {
  int status = 200;
  std::string_view reason;              // empty: our reason phrase for the status
  const HeaderList* headers = nullptr;  // as the response parser kept them: forwarded without a copy
};

class ResponseEncoder {
 public:
  // Our own response: Server, Date, Content-Type (unless empty), then the handler's headers.
  struct Head {
    int status = 200;
    const Headers* headers = nullptr;
    // nullopt: unknown; chunked for HTTP/1.1, delimited by the close for HTTP/1.0.
    std::optional<std::uint64_t> length;
    std::string_view content_type;
  };

  // Decides the framing of the response to `req` and appends its head to `out`. keep_alive: the
  // connection may stay open after this response (the client asked, nobody is draining); returns
  // whether it does (not when HTTP/1.0 framing needs the close).
  bool begin(std::string& out, const Request& req, const Head& head, bool keep_alive, std::string_view date);
  // The same for an upstream's head, with `length` the body length we will frame (nullopt: chunked or
  // to the close). Its Date and Server are kept; Date is added if it had none.
  bool begin_upstream(std::string& out, const Request& req, const UpstreamHead& up, std::optional<std::uint64_t> length,
                      bool keep_alive, std::string_view date);

  // An upstream's 101 head for a tunnel (Exchange::start_tunnel): its Upgrade and Connection fields
  // are kept, since they are the answer to the client's Upgrade, and nothing frames a body after it
  // (what follows is another protocol, relayed as it is). The other hop-by-hop fields are dropped.
  void begin_tunnel(std::string& out, const UpstreamHead& up, std::string_view date);

  // --gzip: compress this body (before begin(); `length` is the identity body's). False when zlib
  // cannot allocate, and the body goes out as it is. On success the length is no longer known.
  bool start_gzip(Headers& headers, std::optional<std::uint64_t> length);

  // Queues a body piece, framed; never more than an announced length. flush: gzip emits what it has.
  void write(net::Transport& t, std::string_view data, bool flush);
  // Queues bytes [offset, offset+length) of `file` (not when gzipping: the bytes go through write()).
  void file(net::Transport& t, UniqueFd file, std::uint64_t offset, std::uint64_t length);
  // Queues gzip's tail and the final chunk. False when the body is shorter than its Content-Length:
  // the response cannot be framed any more and ends with the connection.
  [[nodiscard]] bool finish(net::Transport& t);

  // The answer that replaces a response (a bad request, a timeout): `status`, `text` as the body
  // (none for HEAD, RFC 9110 9.3.2), Connection: close.
  static void error(std::string& out, const Request& req, int status, std::string_view text, std::string_view date);

  [[nodiscard]] bool chunked() const { return chunked_; }
  // The body ends with the connection (HTTP/1.0 without a length): a cut cannot be told from the end.
  [[nodiscard]] bool close_delimited() const { return !chunked_ && !length_ && !head_only_; }
  // HEAD, 1xx, 204 and 304: the head only; body bytes a handler writes anyway are dropped.
  [[nodiscard]] bool head_only() const { return head_only_; }
  [[nodiscard]] bool gzipping() const { return gzip_ != nullptr; }
  [[nodiscard]] std::uint64_t body_written() const { return body_written_; }

 private:
  bool frame(const Request& req, int status, std::optional<std::uint64_t> length, bool keep_alive);
  void append_framing(std::string& out, int status, int version_minor, bool keep_alive) const;
  void queue_piece(net::Transport& t, std::string_view data);

  bool chunked_ = false;
  bool head_only_ = false;
  std::optional<std::uint64_t> length_;
  std::uint64_t body_written_ = 0;
  std::unique_ptr<GzipStream> gzip_;
};

}  // namespace unbroken::http
