#include "http/response_encoder.h"

#include <array>
#include <charconv>

#include "base/text.h"
#include "http/gzip_response.h"
#include "http/wire.h"

namespace unbroken::http {
namespace {

// RFC 9110 6.2: a server sends its own highest version, also to a 1.0 client; the 1.0 connection
// rules (version_minor) still decide keep-alive and framing.
void append_status_line(std::string& out, int status, std::string_view reason) {
  // Our own lines, made once: one append per response instead of four and a number.
  static const auto kLines = [] {
    std::array<std::string, 600> lines;
    for (int s = 100; s < 600; ++s) {
      lines[static_cast<std::size_t>(s)] = "HTTP/1.1 " + std::to_string(s) + " ";
      lines[static_cast<std::size_t>(s)].append(reason_phrase(s)).append("\r\n");
    }
    return lines;
  }();
  if (reason.empty() && status >= 100 && status < 600) {
    out.append(kLines[static_cast<std::size_t>(status)]);
    return;
  }
  out.append("HTTP/1.1 ");
  append_decimal(out, static_cast<std::uint64_t>(status));
  out.append(" ").append(reason.empty() ? reason_phrase(status) : reason).append("\r\n");
}

// Not forwarded from an upstream: the hop-by-hop fields, Trailer and Content-Length (the framing
// towards our client is ours), Proxy-Authenticate (for the next proxy: us). See UpstreamHead.
bool dropped_response_field(const HeaderList& headers, std::string_view name) {
  return is_hop_by_hop_field(name) || iequals(name, "trailer") || iequals(name, "content-length") ||
         iequals(name, "proxy-authenticate") || named_by_connection(headers, name);
}

}  // namespace

bool ResponseEncoder::frame(const Request& req, int status, std::optional<std::uint64_t> length, bool keep_alive) {
  head_only_ = req.method == "HEAD" || bodiless_status(status);
  length_ = length;
  chunked_ = !length && req.version_minor == 1;
  // HTTP/1.0 without a length: the body ends when the connection does.
  return keep_alive && (length || chunked_);
}

void ResponseEncoder::append_framing(std::string& out, int status, int version_minor, bool keep_alive) const {
  if (!bodiless_status(status)) {
    if (length_) {
      // Built whole, then one append.
      constexpr std::string_view kName = "Content-Length: ";
      char line[kName.size() + 20 + 2];
      kName.copy(line, kName.size());
      char* end = std::to_chars(line + kName.size(), line + kName.size() + 20, *length_).ptr;
      *end++ = '\r';
      *end++ = '\n';
      out.append(line, static_cast<std::size_t>(end - line));
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
  out.append("Server: unbroken\r\nDate: ").append(date).append("\r\n");
  if (!head.content_type.empty()) append_field(out, "Content-Type", head.content_type);
  if (head.headers)
    for (const auto& [k, v] : *head.headers) append_field(out, k, v);
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
      if (dropped_response_field(*up.headers, k)) continue;
      has_date = has_date || iequals(k, "date");
      append_field(out, k, v);
    }
  }
  // RFC 9110 6.6.1: a recipient with a clock adds a Date the origin did not send.
  if (!has_date) append_field(out, "Date", date);
  append_framing(out, up.status, req.version_minor, keep_alive);
  return keep_alive;
}

void ResponseEncoder::begin_tunnel(std::string& out, const UpstreamHead& up, std::string_view date) {
  head_only_ = true;  // the body writes of a response do not apply: tunnel bytes go out unframed
  length_ = std::nullopt;
  chunked_ = false;
  append_status_line(out, up.status, up.reason);
  bool has_date = false;
  if (up.headers) {
    for (const auto& [k, v] : *up.headers) {
      bool upgrade_field = iequals(k, "upgrade") || iequals(k, "connection");
      if (!upgrade_field && dropped_response_field(*up.headers, k)) continue;
      has_date = has_date || iequals(k, "date");
      append_field(out, k, v);
    }
  }
  if (!has_date) append_field(out, "Date", date);
  out.append("\r\n");
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
  ChunkSizeBuffer size;
  t.queue(chunk_size_line(size, data.size()));
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
  if (chunked_ && !head_only_) t.queue(kLastChunk);
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
