#pragma once
// Static file serving beneath one root directory. Path resolution is done by the kernel with
// openat2(RESOLVE_BENEATH), so neither "..", percent-encoded tricks nor symlinks can reach a file
// outside the root; the response names an open descriptor and the caller sends it with sendfile.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace unbroken::http {

struct StaticRequest {
  std::string_view method;         // "GET", "HEAD", anything else -> 405 with Allow: GET, HEAD
  std::string_view target;         // raw request-target as received, e.g. "/a%20b/c.txt?x=1" (query ignored)
  std::string_view if_none_match;  // header values, empty when absent
  std::string_view if_modified_since;
  std::string_view range;
  std::string_view if_range;
};

struct StaticResponse {
  int status = 200;
  // Headers to send, excluding Content-Length, Date, Connection, Server (the caller adds those).
  // For 304 the caller should omit Content-Length (RFC 9110 8.6): content_length() is 0 there.
  std::vector<std::pair<std::string, std::string>> headers;
  UniqueFd file;  // when valid: body is bytes [offset, offset+length) of this file (caller uses sendfile)
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::string body;  // otherwise: a small body (e.g. "not found\n"); may be empty (304)
  [[nodiscard]] std::uint64_t content_length() const { return file.valid() ? length : body.size(); }
};

class StaticFiles {
 public:
  // Opens `root` as a directory (O_PATH|O_DIRECTORY|O_CLOEXEC). Errno on failure, including ENOSYS
  // when the kernel (or a seccomp filter) refuses openat2, so that surfaces at start-up.
  static Result<StaticFiles> open(const std::string& root);
  // Never throws. For HEAD the caller will omit the body but uses the same headers and content_length().
  // Stateless apart from the root descriptor: safe to call from several loops at once.
  StaticResponse serve(const StaticRequest& req) const;

 private:
  explicit StaticFiles(UniqueFd root) : root_(std::move(root)) {}
  UniqueFd root_;
};

}  // namespace unbroken::http
