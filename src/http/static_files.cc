// Static files: request-target -> clean relative path -> openat2 beneath the root -> validators ->
// conditional and range decision. Nothing here throws or reads errno above the syscall wrappers.
#include "http/static_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <limits>
#include <optional>

#include "base/text.h"
#include "http/http_date.h"
#include "http/static_open.h"

namespace unbroken::http {
namespace {

constexpr std::string_view kTextPlain = "text/plain; charset=utf-8";
constexpr std::string_view kDefaultContentType = "application/octet-stream";

constexpr std::pair<std::string_view, std::string_view> kContentTypes[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},  // RFC 8259: always UTF-8, no charset parameter defined
    {"txt", "text/plain; charset=utf-8"},
    {"xml", "text/xml; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"mp3", "audio/mpeg"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"csv", "text/csv; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = ascii_lower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Origin-form "/p?q", or absolute-form "http://host/p?q" which RFC 9112 3.2.2 says a server must
// accept. Anything else (authority-form, "*") is not a file request: nullopt -> 400.
std::optional<std::string_view> target_path(std::string_view target) {
  std::string_view path = target.substr(0, target.find_first_of("?#"));
  if (!path.empty() && path.front() == '/') return path;
  for (std::string_view scheme : {std::string_view("http://"), std::string_view("https://")}) {
    if (path.size() >= scheme.size() && iequals(path.substr(0, scheme.size()), scheme)) {
      std::size_t slash = path.find('/', scheme.size());
      return slash == std::string_view::npos ? std::string_view("/") : path.substr(slash);
    }
  }
  return std::nullopt;
}

// False on a malformed escape or a decoded NUL: both are 400 and never reach a lookup, since a
// NUL would silently truncate the C string handed to the kernel.
bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = hex_value(in[i + 1]);
      int lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0') return false;
    out.push_back(c);
  }
  return true;
}

struct CleanPath {
  std::string relative;  // "a/b.txt": no empty, "." or ".." segments; "" is the root itself
  bool trailing_slash = false;
};

// RFC 3986 5.2.4 remove_dot_segments on the decoded path (so "%2e%2e" and "..%2f" are plain ".."
// by now), collapsing "//". A ".." that would climb above the root is nullopt (404, not revealed).
// RESOLVE_BENEATH would refuse it as well; doing it here keeps "." and ".." away from the kernel
// and gives a canonical path for the directory redirect.
std::optional<CleanPath> clean_path(std::string_view decoded) {
  CleanPath clean;
  std::size_t pos = 1;  // decoded always starts with '/'
  while (pos <= decoded.size()) {
    std::size_t slash = std::min(decoded.find('/', pos), decoded.size());
    std::string_view seg = decoded.substr(pos, slash - pos);
    pos = slash + 1;
    clean.trailing_slash = seg.empty() || seg == "." || seg == "..";
    if (seg == "..") {
      if (clean.relative.empty()) return std::nullopt;
      std::size_t cut = clean.relative.rfind('/');
      clean.relative.resize(cut == std::string::npos ? 0 : cut);
    } else if (!clean.trailing_slash) {
      if (!clean.relative.empty()) clean.relative.push_back('/');
      clean.relative.append(seg);
    }
  }
  return clean;
}

// Re-encodes a clean path for Location: any byte a file name holds stays a valid URI path, and
// CR/LF can never reach a header.
std::string encode_path(std::string_view path) {
  constexpr std::string_view kSafe = "-._~!$&'()*+,;=:@/";
  constexpr std::string_view kHex = "0123456789ABCDEF";
  std::string out;
  for (char c : path) {
    auto u = static_cast<unsigned char>(c);
    bool alnum = (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z');
    if (alnum || kSafe.find(c) != std::string_view::npos) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  return out;
}

std::string_view content_type_for(std::string_view path) {
  std::string_view name = path.substr(path.rfind('/') + 1);  // npos + 1 == 0
  std::size_t dot = name.rfind('.');
  if (dot == std::string_view::npos) return kDefaultContentType;
  std::string_view ext = name.substr(dot + 1);
  for (const auto& [known, type] : kContentTypes) {
    if (iequals(ext, known)) return type;
  }
  return kDefaultContentType;
}

StaticResponse text_response(int status, std::string_view body) {
  StaticResponse r;
  r.status = status;
  r.headers.add("Content-Type", kTextPlain);
  r.body = body;
  return r;
}

// EXDEV is RESOLVE_BENEATH refusing an escape (a symlink out, an absolute symlink); ELOOP covers
// symlink loops and magic links. Both look like "missing" so probing reveals nothing.
StaticResponse error_response(Errno e) {
  switch (e.code) {
    case ENOENT:
    case ENOTDIR:
    case EXDEV:
    case ELOOP:
    case ENAMETOOLONG:
    case ENXIO:
    case ENODEV: return text_response(404, "not found\n");
    case EACCES:
    case EPERM: return text_response(403, "forbidden\n");
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case EAGAIN: return text_response(503, "service unavailable\n");
    default: return text_response(500, "internal error\n");
  }
}

// What a response is judged by, viewed: a cached file's are the cache's strings, not copies.
struct ValidatorsView {
  std::string_view etag;
  std::string_view last_modified;
  std::time_t mtime = 0;
};

struct Validators {
  std::string etag;
  std::string last_modified;
  std::time_t mtime = 0;
  operator ValidatorsView() const { return {etag, last_modified, mtime}; }  // NOLINT: a view of itself
};

// Strong ETag from size and nanosecond mtime, as nginx and Apache do rather than hashing content: a
// rewrite escapes it only by keeping the size within one timestamp tick. A precompressed sibling's
// tag comes from its own stat and carries a suffix, so that no two representations share one.
Validators validators_for(const struct stat& st, Encoding enc) {
  constexpr std::array<const char*, 3> kSuffix{"", "-gz", "-br"};
  char buf[80];
  using ull = unsigned long long;
  std::snprintf(buf, sizeof buf, "\"%llx-%llx-%llx%s\"", static_cast<ull>(st.st_size),
                static_cast<ull>(st.st_mtim.tv_sec), static_cast<ull>(st.st_mtim.tv_nsec),
                kSuffix[static_cast<std::size_t>(enc)]);
  return {buf, format_http_date(st.st_mtim.tv_sec), st.st_mtim.tv_sec};
}

// Weak comparison (RFC 9110 13.1.2): a W/ prefix is ignored. A malformed member ends the scan;
// the members before it still count.
bool none_match_hits(std::string_view list, std::string_view etag) {
  list = trim_ows(list);
  if (list == "*") return true;
  std::size_t i = 0;
  for (;;) {
    while (i < list.size() && (list[i] == ' ' || list[i] == '\t' || list[i] == ',')) ++i;
    if (i >= list.size()) return false;
    if (list.substr(i, 2) == "W/") i += 2;
    if (i >= list.size() || list[i] != '"') return false;
    std::size_t close = list.find('"', i + 1);
    if (close == std::string_view::npos) return false;
    if (list.substr(i, close - i + 1) == etag) return true;
    i = close + 1;
  }
}

// If-None-Match wins outright when present (RFC 9110 13.2.2); If-Modified-Since has one-second
// resolution, so it compares whole seconds.
bool not_modified(const StaticRequest& req, const ValidatorsView& v) {
  if (!req.if_none_match.empty()) return none_match_hits(req.if_none_match, v.etag);
  if (req.if_modified_since.empty()) return false;
  auto since = parse_http_date(trim_ows(req.if_modified_since));
  return since && v.mtime <= *since;
}

// If-Range needs a strong match (RFC 9110 13.1.5): a W/ tag never equals ours, and a date must be
// Last-Modified byte for byte.
bool if_range_allows(std::string_view if_range, const ValidatorsView& v) {
  if_range = trim_ows(if_range);
  return if_range.empty() || if_range == v.etag || if_range == v.last_modified;
}

struct ByteRange {
  enum class Kind { kIgnore, kPartial, kUnsatisfiable };
  Kind kind = Kind::kIgnore;
  std::uint64_t first = 0;
  std::uint64_t last = 0;
};

// Saturating: a position beyond 2^64 is beyond any file, so clamping keeps its meaning.
std::optional<std::uint64_t> parse_position(std::string_view s) {
  if (s.empty()) return std::nullopt;
  constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    auto d = static_cast<std::uint64_t>(c - '0');
    v = v > (kMax - d) / 10 ? kMax : v * 10 + d;
  }
  return v;
}

// A single "bytes=" range (RFC 9110 14.1.2). Several ranges would need multipart/byteranges, and
// a server may always ignore Range (14.2): so do that for lists, malformed values and empty files.
ByteRange parse_range(std::string_view value, std::uint64_t size) {
  using Kind = ByteRange::Kind;
  constexpr std::string_view kUnit = "bytes=";
  value = trim_ows(value);
  if (size == 0 || value.size() < kUnit.size() || !iequals(value.substr(0, kUnit.size()), kUnit)) return {};
  std::string_view spec = trim_ows(value.substr(kUnit.size()));
  std::size_t dash = spec.find('-');
  if (dash == std::string_view::npos || spec.find(',') != std::string_view::npos) return {};
  auto first = parse_position(spec.substr(0, dash));
  auto last = parse_position(spec.substr(dash + 1));
  if (dash == 0) {  // suffix: the final n bytes
    if (!last) return {};
    if (*last == 0) return {Kind::kUnsatisfiable};
    return {Kind::kPartial, size - std::min(*last, size), size - 1};
  }
  if (!first || (dash + 1 < spec.size() && (!last || *last < *first))) return {};
  if (*first >= size) return {Kind::kUnsatisfiable};
  return {Kind::kPartial, *first, std::min(last.value_or(size - 1), size - 1)};
}

// Vary and the validators, which every answer for a representation carries (304 included, RFC
// 9110 15.4.5); true when that answer is a 304.
bool begin_response(StaticResponse& r, const ValidatorsView& v, bool vary, const StaticRequest& req) {
  if (vary) r.headers.add("Vary", "Accept-Encoding");
  r.headers.add("ETag", v.etag);
  if (!v.last_modified.empty()) r.headers.add("Last-Modified", v.last_modified);
  if (!not_modified(req, v)) return false;
  r.status = 304;
  return true;
}

void add_content_headers(StaticResponse& r, std::string_view type, Encoding enc) {
  r.headers.add("Content-Type", type);
  if (enc != Encoding::kIdentity) r.headers.add("Content-Encoding", name(enc));
  r.headers.add("Accept-Ranges", "bytes");
}

// `opened` is the representation sent: the file itself or its sibling (ranges count its bytes, as
// nginx does for gzip_static).
StaticResponse serve_file(Opened opened, std::string_view type, const StaticRequest& req, Encoding enc, bool vary) {
  Validators v = validators_for(opened.st, enc);
  StaticResponse r;
  if (begin_response(r, v, vary, req)) return r;
  auto size = static_cast<std::uint64_t>(opened.st.st_size);
  ByteRange range = if_range_allows(req.if_range, v) ? parse_range(req.range, size) : ByteRange{};
  if (range.kind == ByteRange::Kind::kUnsatisfiable) {
    r.status = 416;
    r.headers.add("Content-Range", "bytes */" + std::to_string(size));
    return r;
  }
  add_content_headers(r, type, enc);
  r.length = size;
  if (range.kind == ByteRange::Kind::kPartial) {
    r.status = 206;
    r.offset = range.first;
    r.length = range.last - range.first + 1;
    r.headers.add("Content-Range", "bytes " + std::to_string(range.first) + "-" + std::to_string(range.last) + "/" +
                                       std::to_string(size));
  }
  r.file = std::move(opened.fd);
  return r;
}

// The response for a cached file, as serve_file() would give it for a whole-file request.
StaticResponse serve_cached(const StaticCache::Entry& e, const StaticRequest& req, Headers&& storage) {
  const auto& variants = e.variants;
  Encoding enc = choose_encoding(AcceptEncoding::parse(req.accept_encoding),
                                 !variants[static_cast<std::size_t>(Encoding::kBr)].etag.empty(),
                                 !variants[static_cast<std::size_t>(Encoding::kGzip)].etag.empty());
  const StaticCache::Variant& v = variants[static_cast<std::size_t>(enc)];
  StaticResponse r;
  r.headers = std::move(storage);
  if (begin_response(r, ValidatorsView{v.etag, v.last_modified, v.mtime}, e.vary, req)) return r;
  add_content_headers(r, e.content_type, enc);
  r.cached = true;
  r.cached_body = v.content;
  return r;
}

// Reads the whole (small) file; false if it changed size under us or cannot be read.
bool read_whole(int fd, std::uint64_t size, std::string& out) {
  out.resize(size);
  std::uint64_t got = 0;
  while (got < size) {
    ssize_t n = ::pread(fd, out.data() + got, size - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    got += static_cast<std::uint64_t>(n);
  }
  return true;
}

bool read_variant(const Opened& o, Encoding enc, StaticCache::Variant& out) {
  auto size = static_cast<std::uint64_t>(o.st.st_size);
  if (size > StaticCache::kMaxFileBytes || !read_whole(o.fd.get(), size, out.content)) return false;
  Validators v = validators_for(o.st, enc);
  out.etag = std::move(v.etag);
  out.last_modified = std::move(v.last_modified);
  out.mtime = v.mtime;
  return true;
}

// A small file and its siblings as one cache entry; nullopt when any is too large or unreadable.
std::optional<StaticCache::Entry> read_entry(const Opened& file, const Siblings& siblings) {
  StaticCache::Entry e;
  auto& variants = e.variants;
  if (!read_variant(file, Encoding::kIdentity, variants[static_cast<std::size_t>(Encoding::kIdentity)]) ||
      (siblings.gz &&
       !read_variant(*siblings.gz, Encoding::kGzip, variants[static_cast<std::size_t>(Encoding::kGzip)])) ||
      (siblings.br && !read_variant(*siblings.br, Encoding::kBr, variants[static_cast<std::size_t>(Encoding::kBr)]))) {
    return std::nullopt;
  }
  return e;
}

}  // namespace

Result<StaticFiles> StaticFiles::open(const std::string& root) {
  int fd = ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno{errno};
  UniqueFd dir(fd);
  // Probe openat2 once: ENOSYS from an old kernel or a seccomp profile is a start-up failure,
  // not a 500 on every request.
  auto probe = open_path_beneath(dir.get());
  if (!probe) return probe.error();
  return StaticFiles(std::move(dir));
}

StaticResponse StaticFiles::serve(const StaticRequest& req, StaticCache* cache) const {
  // Whole-file GET and HEAD only; a range (or an If-Range) takes the full path below.
  bool cacheable = cache != nullptr && (req.method == "GET" || req.method == "HEAD") && req.range.empty();
  std::string_view key = req.target.substr(0, req.target.find('?'));
  auto now = std::chrono::steady_clock::now();
  if (cacheable) {
    auto it = cache->entries_.find(key);
    if (it != cache->entries_.end()) {
      if (now - it->second.checked < cache->revalidate_after_)
        return serve_cached(it->second, req, std::move(cache->spare_headers_));
      // Stale: forget it and look again (a hot small file is read once a second at most).
      cache->total_bytes_ -= it->second.bytes();
      cache->entries_.erase(it);
    }
  }
  if (req.method != "GET" && req.method != "HEAD") {
    StaticResponse r = text_response(405, "method not allowed\n");
    r.headers.add("Allow", "GET, HEAD");
    return r;
  }
  auto path = target_path(req.target);
  std::string decoded;
  if (!path || !percent_decode(*path, decoded)) return text_response(400, "bad request\n");
  auto clean = clean_path(decoded);
  if (!clean) return text_response(404, "not found\n");
  std::string name = clean->relative;
  auto opened = open_and_stat(root_.get(), name);
  if (!opened) return error_response(opened.error());
  if (S_ISDIR(opened->st.st_mode)) {
    if (!clean->trailing_slash) {
      StaticResponse r = text_response(301, "moved permanently\n");
      r.headers.add("Location", "/" + encode_path(name) + "/");
      return r;
    }
    // Opened from the root, not the directory fd, so an index.html symlink may point anywhere
    // inside the root rather than only beneath this directory.
    name = name.empty() ? "index.html" : name + "/index.html";
    opened = open_and_stat(root_.get(), name);
    if (!opened) return error_response(opened.error());
  } else if (clean->trailing_slash) {
    return text_response(404, "not found\n");  // "/file.txt/" names a directory that is not one
  }
  if (!S_ISREG(opened->st.st_mode)) return text_response(404, "not found\n");
  Siblings siblings = find_siblings(root_.get(), name, opened->st);
  std::string_view type = content_type_for(name);
  bool vary = siblings.any() || (vary_compressible_ && compressible_type(type));
  std::optional<StaticCache::Entry> e;
  if (cacheable && (e = read_entry(*opened, siblings))) {
    e->content_type = type;
    e->vary = vary;
    e->checked = now;
    return serve_cached(cache->insert(key, std::move(*e)), req, std::move(cache->spare_headers_));
  }
  Encoding enc =
      choose_encoding(AcceptEncoding::parse(req.accept_encoding), siblings.br.has_value(), siblings.gz.has_value());
  Opened chosen = enc == Encoding::kBr     ? std::move(*siblings.br)
                  : enc == Encoding::kGzip ? std::move(*siblings.gz)
                                           : std::move(*opened);
  return serve_file(std::move(chosen), type, req, enc, vary);
}

}  // namespace unbroken::http
