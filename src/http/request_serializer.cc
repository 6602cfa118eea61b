#include "http/request_serializer.h"

#include <charconv>

namespace unbroken::http {
namespace {

void append_number(std::string& out, std::uint64_t v, int base) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, base);
  out.append(buf, end);
}

}  // namespace

void append_request_line(std::string& out, std::string_view method, std::string_view target, int version_minor) {
  out.append(method).append(" ").append(target).append(version_minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

void end_request_head(std::string& out, BodyFraming framing, std::uint64_t content_length) {
  if (framing == BodyFraming::kContentLength) {
    out.append("Content-Length: ");
    append_number(out, content_length, 10);
    out.append("\r\n");
  } else if (framing == BodyFraming::kChunked) {
    out.append("Transfer-Encoding: chunked\r\n");
  }
  out.append("\r\n");
}

void append_request_head(std::string& out, const RequestHead& head) {
  append_request_line(out, head.method, head.target, head.version_minor);
  for (const HeaderList::Field& f : head.fields) append_field(out, f.name, f.value);
  end_request_head(out, head.framing, head.content_length);
}

void append_chunk(std::string& out, std::string_view piece) {
  if (piece.empty()) return;
  append_number(out, piece.size(), 16);
  out.append("\r\n").append(piece).append("\r\n");
}

void append_last_chunk(std::string& out) {
  out.append("0\r\n\r\n");
}

}  // namespace unbroken::http
