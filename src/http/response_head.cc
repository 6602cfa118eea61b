#include "http/response_head.h"

#include <charconv>

namespace unbroken::http {

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

std::string_view DateCache::get() {
  std::time_t now = std::time(nullptr);
  if (now != second_ || len_ == 0) {
    second_ = now;
    std::tm tm{};
    ::gmtime_r(&now, &tm);
    len_ = std::strftime(buf_, sizeof buf_, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  }
  return {buf_, len_};
}

namespace {

void append_number(std::string& out, std::uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

}  // namespace

// Plain appends rather than fmt: this runs for every response.
void append_head(std::string& out, const HeadSpec& spec, std::string_view date) {
  // RFC 9110 6.2: a server sends its own highest version, also to a 1.0 client; the 1.0
  // connection rules (version_minor) still decide keep-alive and framing.
  out.append("HTTP/1.1 ");
  append_number(out, static_cast<std::uint64_t>(spec.status));
  out.append(" ").append(reason_phrase(spec.status)).append("\r\nServer: unbroken\r\n");
  append_header(out, "Date", date);
  if (!spec.content_type.empty()) append_header(out, "Content-Type", spec.content_type);
  if (spec.headers)
    for (const auto& [k, v] : *spec.headers) append_header(out, k, v);
  // 1xx, 204 and 304 carry no body and no framing headers (RFC 9112 6.3).
  bool bodiless = spec.status < 200 || spec.status == 204 || spec.status == 304;
  if (!bodiless) {
    if (spec.content_length) {
      out.append("Content-Length: ");
      append_number(out, *spec.content_length);
      out.append("\r\n");
    } else if (spec.chunked) {
      out.append("Transfer-Encoding: chunked\r\n");
    }
  }
  if (!spec.keep_alive) {
    out.append("Connection: close\r\n");
  } else if (spec.version_minor == 0) {
    out.append("Connection: keep-alive\r\n");
  }
  out.append("\r\n");
}

}  // namespace unbroken::http
