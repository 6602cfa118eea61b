#pragma once
// On-the-fly gzip of responses (`--gzip`): the decision, taken once when the head goes out, and a
// file body read through the compressor (a compressed file cannot go out with sendfile).

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "base/unique_fd.h"
#include "http/content_encoding.h"
#include "http/request.h"
#include "http/response_head.h"

namespace unbroken::http {

class Exchange;

// The Content-Encoding the response already has (from a handler or a precompressed file), or "".
std::string_view content_encoding_of(const Headers& headers);

// Whether to compress this response. A compressible one gains Vary: Accept-Encoding whatever the
// answer (a cache must keep the two apart); HEAD, 1xx/204/206/304, a response already encoded or
// with a Content-Range, one below the size floor, and clients that do not take gzip get false.
// content_type: the one passed to respond(), else the Content-Type header is looked at.
bool should_gzip(const GzipSettings& settings, const Request& req, Headers& headers, int status,
                 std::optional<std::uint64_t> length, std::string_view content_type);

// A started stream, with Content-Encoding: gzip added and a strong ETag made weak (the bytes are not
// the identity ones; nginx does the same). Null when zlib cannot allocate: send it uncompressed.
// length: the identity body's, when known (a smaller one needs a smaller zlib state).
std::unique_ptr<GzipStream> start_gzip(Headers& headers, std::optional<std::uint64_t> length);

// Sends bytes [offset, offset+length) of `file` through ex->write() and finishes, reading a piece
// at a time whenever the connection is below its high-water mark (back-pressure as for any
// streaming handler). Reads run on the loop thread, as the StaticCache's do.
void pump_file(const std::shared_ptr<Exchange>& ex, UniqueFd file, std::uint64_t offset, std::uint64_t length);

}  // namespace unbroken::http
