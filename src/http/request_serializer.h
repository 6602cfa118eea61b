#pragma once
// Writing a request onto the wire, for the client side (the reverse proxy, chaos): the request line,
// fields in the caller's order, the framing the body will have, and chunk framing for its pieces.
// Everything is appended to a caller's string, whose growth is the only allocation, so a reused
// string stops allocating once it has grown to the usual request.
//
// Names are tokens and values hold no CR or LF: what RequestParser accepted, or our own text. The
// framing fields (Content-Length, Transfer-Encoding) are written from BodyFraming alone, never
// passed among the fields, so one request cannot say two lengths.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "http/request.h"
#include "http/wire.h"

namespace unbroken::http {

enum class BodyFraming : std::uint8_t {
  kNone,           // no body: no framing field at all
  kContentLength,  // Content-Length: content_length, then that many bytes
  kChunked,        // Transfer-Encoding: chunked, then append_chunk()s and append_last_chunk()
};

struct RequestHead {
  std::string_view method;
  std::string_view target;
  int version_minor = 1;
  std::span<const HeaderList::Field> fields;
  BodyFraming framing = BodyFraming::kNone;
  std::uint64_t content_length = 0;  // with kContentLength
};

// The whole head, up to and including the empty line.
void append_request_head(std::string& out, const RequestHead& head);

// The same in steps, for a caller that picks its fields from a list (a proxy dropping hop-by-hop
// fields) or that never ends its head (chaos' slowloris).
void append_request_line(std::string& out, std::string_view method, std::string_view target, int version_minor = 1);
// (Field lines: append_field, in wire.h.)
void end_request_head(std::string& out, BodyFraming framing, std::uint64_t content_length = 0);

// One piece of a chunked body. An empty piece writes nothing: a zero-size chunk would end the body.
void append_chunk(std::string& out, std::string_view piece);
// The last chunk, with no trailer fields.
void append_last_chunk(std::string& out);

}  // namespace unbroken::http
