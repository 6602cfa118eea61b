#include "http/response_encoder.h"

#include <array>
#include <charconv>

#include "http/gzip_response.h"

namespace unbroken::http {
namespace {

void append_number(std::string& out, std::uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

// RFC 9110 6.2: a server sends its own highest version, also to a 1.0 client; the 1.0 connection
// rules (version_minor) still decide keep-alive and framing.
void append_status_line(std::string& out, int status, std::string_view reason) {
  out.append("HTTP/1.1 ");
  append_number(out, static_cast<std::uint64_t>(status));
  out.append(" ").append(reason.empty() ? reason_phrase(status) : reason).append("\r\n");
}

bool bodiless(int status) {
  // 1xx, 204 and 304 carry no body and no framing headers (RFC 9112 6.3).
  return status < 200 || status == 204 || status == 304;
}

// True when `token` is one of the comma-separated tokens of a Connection header value.
bool names_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    std::size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (iequals(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

bool hop_by_hop(const Headers& headers, std::string_view name) {
  static constexpr std::array<std::string_view, 9> kHopByHop{"connection", "keep-alive",     "proxy-connection",
                                                             "te",         "trailer",        "transfer-encoding",
                                                             "upgrade",    "content-length", "proxy-authenticate"};
  for (std::string_view h : kHopByHop)
    if (iequals(name, h)) return true;
  for (const auto& [k, v] : headers)
    if (iequals(k, "connection") && names_token(v, name)) return true;
  return false;
}

}  // namespace

bool ResponseEncoder::frame(const Request& req, int status, std::optional<std::uint64_t> length, bool keep_alive) {
  head_only_ = req.method == "HEAD" || bodiless(status);
  length_ = length;
  chunked_ = !length && req.version_minor == 1;
  // HTTP/1.0 without a length: the body ends when the connection does.
  return keep_alive && (length || chunked_);
}

void ResponseEncoder::append_framing(std::string& out, int status, int version_minor, bool keep_alive) const {
  if (!bodiless(status)) {
    if (length_) {
      out.append("Content-Length: ");
      append_number(out, *length_);
      out.append("\r\n");
    } else if (chunked_) {
      out.append("Transfer-Encoding: chunked\r\n");
    }
  }
  if (!keep_alive) {
    out.append("Connection: close\r\n");
  } else if (version_minor == 0) {
    out.append("Connection: keep-alive\r\n");
  }
  out.append("\r\n");
}

// Plain appends rather than fmt: this runs for every response.
bool ResponseEncoder::begin(std::string& out, const Request& req, const Head& head, bool keep_alive,
                            std::string_view date) {
  keep_alive = frame(req, head.status, head.length, keep_alive);
  append_status_line(out, head.status, {});
  out.append("Server: unbroken\r\n");
  append_header(out, "Date", date);
  if (!head.content_type.empty()) append_header(out, "Content-Type", head.content_type);
  if (head.headers)
    for (const auto& [k, v] : *head.headers) append_header(out, k, v);
  append_framing(out, head.status, req.version_minor, keep_alive);
  return keep_alive;
}

bool ResponseEncoder::begin_upstream(std::string& out, const Request& req, const UpstreamHead& up,
                                     std::optional<std::uint64_t> length, bool keep_alive, std::string_view date) {
  keep_alive = frame(req, up.status, length, keep_alive);
  append_status_line(out, up.status, up.reason);
  bool has_date = false;
  if (up.headers) {
    for (const auto& [k, v] : *up.headers) {
      if (hop_by_hop(*up.headers, k)) continue;
      has_date = has_date || iequals(k, "date");
      append_header(out, k, v);
    }
  }
  // RFC 9110 6.6.1: a recipient with a clock adds a Date the origin did not send.
  if (!has_date) append_header(out, "Date", date);
  append_framing(out, up.status, req.version_minor, keep_alive);
  return keep_alive;
}

bool ResponseEncoder::start_gzip(Headers& headers, std::optional<std::uint64_t> length) {
  gzip_ = http::start_gzip(headers, length);
  return gzip_ != nullptr;
}

void ResponseEncoder::queue_piece(net::Transport& t, std::string_view data) {
  if (!chunked_) {
    t.queue(data);
    return;
  }
  char size[24];
  char* end = std::to_chars(size, size + sizeof size - 2, data.size(), 16).ptr;
  *end++ = '\r';
  *end++ = '\n';
  t.queue(std::string_view(size, static_cast<std::size_t>(end - size)));
  t.queue(data);
  t.queue("\r\n");
}

void ResponseEncoder::write(net::Transport& t, std::string_view data, bool flush) {
  if (head_only_ || data.empty()) return;
  if (gzip_ && (data = gzip_->write(data, flush)).empty()) return;
  if (length_) {
    std::uint64_t room = *length_ - body_written_;
    if (data.size() > room) data = data.substr(0, room);  // never send more than we announced
  }
  body_written_ += data.size();
  queue_piece(t, data);
}

void ResponseEncoder::file(net::Transport& t, UniqueFd file, std::uint64_t offset, std::uint64_t length) {
  if (head_only_) return;
  t.queue_file(std::move(file), offset, length);
  body_written_ += length;
}

bool ResponseEncoder::finish(net::Transport& t) {
  bool complete = !(length_ && body_written_ < *length_ && !head_only_);
  if (std::string_view tail = gzip_ ? gzip_->finish() : ""; !tail.empty()) queue_piece(t, tail);
  if (chunked_ && !head_only_) t.queue("0\r\n\r\n");
  return complete;
}

void ResponseEncoder::error(std::string& out, const Request& req, int status, std::string_view text,
                            std::string_view date) {
  ResponseEncoder e;
  e.begin(out, req, Head{status, nullptr, text.size(), "text/plain; charset=utf-8"}, false, date);
  // RFC 9110 9.3.2: a response to HEAD carries no content, errors included.
  if (req.method != "HEAD") out.append(text);
}

}  // namespace unbroken::http
