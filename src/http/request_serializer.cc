#include "http/request_serializer.h"

namespace unbroken::http {

void append_request_line(std::string& out, std::string_view method, std::string_view target, int version_minor) {
  out.append(method).append(" ").append(target).append(version_minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
}

void end_request_head(std::string& out, BodyFraming framing, std::uint64_t content_length) {
  if (framing == BodyFraming::kContentLength) {
    out.append("Content-Length: ");
    append_decimal(out, content_length);
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
  ChunkSizeBuffer size;
  out.append(chunk_size_line(size, piece.size())).append(piece).append("\r\n");
}

void append_last_chunk(std::string& out) {
  out.append(kLastChunk);
}

}  // namespace unbroken::http
