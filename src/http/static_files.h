#pragma once
// Static file serving beneath one root directory. Path resolution is done by the kernel with
// openat2(RESOLVE_BENEATH), so neither "..", percent-encoded tricks nor symlinks can reach a file
// outside the root; the response names an open descriptor and the caller sends it with sendfile.
// A precompressed sibling (NAME.br, NAME.gz) is answered instead when the client accepts it.

#include <array>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "http/content_encoding.h"
#include "http/response_head.h"

namespace unbroken::http {

struct StaticRequest {
  std::string_view method;         // "GET", "HEAD", anything else -> 405 with Allow: GET, HEAD
  std::string_view target;         // raw request-target as received, e.g. "/a%20b/c.txt?x=1" (query ignored)
  std::string_view if_none_match;  // header values, empty when absent
  std::string_view if_modified_since;
  std::string_view range;
  std::string_view if_range;
  // Picks a precompressed sibling (NAME.br, NAME.gz) when the client accepts its coding.
  std::string_view accept_encoding = {};
};

struct StaticResponse {
  int status = 200;
  // Headers to send, excluding Content-Length, Date, Connection, Server (the caller adds those).
  // For 304 the caller should omit Content-Length (RFC 9110 8.6): content_length() is 0 there.
  Headers headers;
  UniqueFd file;  // when valid: body is bytes [offset, offset+length) of this file (caller uses sendfile)
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::string body;  // otherwise: a small body (e.g. "not found\n"); may be empty (304)
  // A file from the StaticCache: the body is these bytes, valid until that cache's next serve().
  bool cached = false;
  std::string_view cached_body;
  [[nodiscard]] std::uint64_t content_length() const {
    return file.valid() ? length : cached ? cached_body.size() : body.size();
  }
};

// One loop's cache of small files (up to kMaxFileBytes each): contents and validators, so that a hot
// file costs no open, fstat, sendfile and close per request. An entry is checked against the file
// system again once it is older than kRevalidateAfter (a changed file is served stale for at most
// that long, like nginx's open_file_cache_valid). Not thread-safe: one per loop thread.
class StaticCache {
 public:
  static constexpr std::uint64_t kMaxFileBytes = 64 * 1024;
  static constexpr std::size_t kMaxEntries = 4096;
  static constexpr std::uint64_t kMaxTotalBytes = 32 * 1024 * 1024;
  static constexpr std::chrono::milliseconds kRevalidateAfter{1000};

  explicit StaticCache(std::chrono::milliseconds revalidate_after = kRevalidateAfter)
      : revalidate_after_(revalidate_after) {}

  // One representation: the file itself or a precompressed sibling.
  struct Variant {
    std::string content;
    std::string etag;  // empty: there is no such sibling
    std::string last_modified;
    std::time_t mtime = 0;
  };
  struct Entry {
    std::array<Variant, 3> variants;  // indexed by Encoding
    std::string_view content_type;
    bool vary = false;  // Vary: Accept-Encoding on every answer for this path
    std::chrono::steady_clock::time_point checked;
    [[nodiscard]] std::uint64_t bytes() const {
      return variants[0].content.size() + variants[1].content.size() + variants[2].content.size();
    }
  };
  // A served response's header storage, back from the caller for the next cached answer: a hot
  // file's answer then allocates nothing.
  void give_back(Headers&& h) {
    h.clear();
    spare_headers_ = std::move(h);
  }

 private:
  friend class StaticFiles;
  // Bounded: when full, start again (hot files come back at their next request).
  const Entry& insert(std::string_view key, Entry e) {
    if (entries_.size() >= kMaxEntries || total_bytes_ + e.bytes() > kMaxTotalBytes) {
      entries_.clear();
      total_bytes_ = 0;
    }
    total_bytes_ += e.bytes();
    return entries_.insert_or_assign(std::string(key), std::move(e)).first->second;
  }
  // Looked up by the request's path as a view: no string is built per request.
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> entries_;
  std::uint64_t total_bytes_ = 0;
  std::chrono::milliseconds revalidate_after_;
  Headers spare_headers_;
};

class StaticFiles {
 public:
  // Opens `root` as a directory (O_PATH|O_DIRECTORY|O_CLOEXEC). Errno on failure, including ENOSYS
  // when the kernel (or a seccomp filter) refuses openat2, so that surfaces at start-up.
  static Result<StaticFiles> open(const std::string& root);
  // Never throws. For HEAD the caller will omit the body but uses the same headers and content_length().
  // Stateless apart from the root descriptor: safe to call from several loops at once.
  StaticResponse serve(const StaticRequest& req) const { return serve(req, nullptr); }
  // The same, answering whole-file GET and HEAD requests for small files from `cache` (may be null).
  StaticResponse serve(const StaticRequest& req, StaticCache* cache) const;
  // With on-the-fly compression on (--gzip), answers for compressible types carry Vary:
  // Accept-Encoding too, 304s included, as the connection may compress their 200s.
  void set_vary_compressible(bool on) { vary_compressible_ = on; }

 private:
  explicit StaticFiles(UniqueFd root) : root_(std::move(root)) {}
  UniqueFd root_;
  bool vary_compressible_ = false;
};

}  // namespace unbroken::http
