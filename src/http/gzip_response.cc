#include "http/gzip_response.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "http/exchange.h"

namespace unbroken::http {
namespace {

constexpr std::size_t kFilePiece = 64 * 1024;

std::string_view header_of(const Headers& headers, std::string_view name) {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return v;
  return {};
}

bool contains_token(std::string_view list, std::string_view token) {
  for (std::size_t i = 0; i + token.size() <= list.size(); ++i)
    if (iequals(list.substr(i, token.size()), token)) return true;
  return false;
}

void add_vary(Headers& headers) {
  for (const auto& [k, v] : headers)
    if (iequals(k, "vary") && (contains_token(v, "accept-encoding") || v == "*")) return;
  headers.add("Vary", "Accept-Encoding");
}

struct FilePump {
  UniqueFd file;
  std::uint64_t offset;
  std::uint64_t left;
  std::string piece;
};

void pump(const std::shared_ptr<Exchange>& ex, const std::shared_ptr<FilePump>& p) {
  while (ex->active()) {
    if (!ex->writable()) {
      ex->on_drain([ex, p] { pump(ex, p); });
      return;
    }
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(p->left, kFilePiece));
    p->piece.resize(want);
    ssize_t n = want == 0 ? 0 : ::pread(p->file.get(), p->piece.data(), want, static_cast<off_t>(p->offset));
    if (n < 0 && errno == EINTR) continue;
    // Done, or the file shrank or failed under us: end the body here (the chunked framing stays
    // valid; a client checking the length it expected sees the short file).
    if (n <= 0) {
      ex->finish();
      return;
    }
    p->offset += static_cast<std::uint64_t>(n);
    p->left -= static_cast<std::uint64_t>(n);
    if (!ex->write(std::string_view(p->piece.data(), static_cast<std::size_t>(n)))) return;
  }
}

}  // namespace

std::string_view content_encoding_of(const Headers& headers) {
  return header_of(headers, "content-encoding");
}

bool should_gzip(const GzipSettings& settings, const Request& req, Headers& headers, int status,
                 std::optional<std::uint64_t> length, std::string_view content_type) {
  if (!settings.enabled || status < 200 || status == 204 || status == 206 || status == 304) return false;
  if (!content_encoding_of(headers).empty() || !header_of(headers, "content-range").empty()) return false;
  if (!compressible_type(content_type.empty() ? header_of(headers, "content-type") : content_type)) return false;
  if (length && *length < settings.min_length) return false;
  add_vary(headers);
  if (req.method == "HEAD") return false;
  return choose_encoding(AcceptEncoding::parse(req.header("accept-encoding")), false, true) == Encoding::kGzip;
}

std::unique_ptr<GzipStream> start_gzip(Headers& headers, std::optional<std::uint64_t> length) {
  auto stream = std::make_unique<GzipStream>();
  if (!stream->init(length)) return nullptr;
  headers.add("Content-Encoding", "gzip");
  for (std::size_t i = 0; i < headers.size(); ++i) {
    auto [k, v] = headers[i];
    if (iequals(k, "etag") && !v.empty() && v.front() == '"') headers.set_value(i, "W/" + std::string(v));
  }
  return stream;
}

void pump_file(const std::shared_ptr<Exchange>& ex, UniqueFd file, std::uint64_t offset, std::uint64_t length) {
  pump(ex, std::make_shared<FilePump>(FilePump{std::move(file), offset, length, {}}));
}

}  // namespace unbroken::http
