// StaticFiles against a real directory tree per test: real files, symlinks, a FIFO, real openat2.
#include "http/static_files.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>

namespace unbroken::http {
namespace {

constexpr std::string_view kHello = "hello world\n";
constexpr std::string_view kDigits = "0123456789abcdefghij";  // 20 bytes
// 2001-09-09T01:46:40.5Z: a fixed mtime so validators can be checked literally.
constexpr timespec kDigitsMtime = {1000000000, 500000000};
constexpr std::string_view kDigitsLastModified = "Sun, 09 Sep 2001 01:46:40 GMT";
constexpr std::string_view kDigitsEtag = "\"14-3b9aca00-1dcd6500\"";

std::optional<std::string> header(const StaticResponse& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return std::string(v);
  }
  return std::nullopt;
}

// What the caller would put on the wire: the file slice via pread, else the in-memory body.
std::string body(const StaticResponse& r) {
  if (!r.file.valid()) return r.body;
  std::string out(r.length, '\0');
  ssize_t n = ::pread(r.file.get(), out.data(), out.size(), static_cast<off_t>(r.offset));
  EXPECT_EQ(n, static_cast<ssize_t>(r.length));
  out.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
  return out;
}

// StaticRequest with defaults, so tests can use designated initializers: g++ 12 warns
// (-Wmissing-field-initializers) about skipped members that have no default member initializer.
struct Req {
  std::string_view method = "GET";
  std::string_view target{};
  std::string_view if_none_match{};
  std::string_view if_modified_since{};
  std::string_view range{};
  std::string_view if_range{};

  [[nodiscard]] StaticRequest to_request() const {
    StaticRequest r;
    r.method = method;
    r.target = target;
    r.if_none_match = if_none_match;
    r.if_modified_since = if_modified_since;
    r.range = range;
    r.if_range = if_range;
    return r;
  }
};

class StaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/static_files_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    root_ = base_ + "/www";
    for (const char* dir : {"", "/sub", "/emptydir", "/evil.com", "/sp ace"}) make_dir(root_ + dir);
    write_file(base_ + "/secret.txt", "top secret\n");
    write_file(root_ + "/hello.txt", kHello);
    write_file(root_ + "/digits.txt", kDigits);
    write_file(root_ + "/page.html", "<h1>hi</h1>\n");
    write_file(root_ + "/empty.txt", "");
    write_file(root_ + "/sub/index.html", "<p>index</p>\n");
    write_file(root_ + "/sub/a b.txt", "space\n");
    const timespec times[2] = {kDigitsMtime, kDigitsMtime};
    ASSERT_EQ(::utimensat(AT_FDCWD, (root_ + "/digits.txt").c_str(), times, 0), 0);
    make_symlink("../secret.txt", root_ + "/link_out");
    make_symlink(base_ + "/secret.txt", root_ + "/link_abs");
    make_symlink("..", root_ + "/dir_out");
    make_symlink("hello.txt", root_ + "/link_in");
    make_symlink("../hello.txt", root_ + "/sub/link_up");
    auto files = StaticFiles::open(root_);
    ASSERT_TRUE(files.ok()) << files.error().message();
    files_.emplace(std::move(*files));
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(base_, ignored);
  }

  static void make_dir(const std::string& path) { ASSERT_EQ(::mkdir(path.c_str(), 0755), 0) << path; }
  static void make_symlink(const std::string& to, const std::string& at) {
    ASSERT_EQ(::symlink(to.c_str(), at.c_str()), 0) << at;
  }
  static void write_file(const std::string& path, std::string_view data) {
    std::ofstream out(path, std::ios::binary);
    out << data;
    ASSERT_TRUE(out.good()) << path;
  }

  StaticResponse serve(const Req& req) { return files_->serve(req.to_request()); }
  StaticResponse get(std::string_view target) { return serve({.target = target}); }
  StaticResponse get_range(std::string_view range) { return serve({.target = "/digits.txt", .range = range}); }

  std::string base_;
  std::string root_;
  std::optional<StaticFiles> files_;
};

void expect_not_found(const StaticResponse& r, std::string_view why) {
  EXPECT_EQ(r.status, 404) << why;
  EXPECT_FALSE(r.file.valid()) << why;
  EXPECT_EQ(r.body, "not found\n") << why;
  EXPECT_EQ(header(r, "Content-Type"), "text/plain; charset=utf-8") << why;
}

TEST_F(StaticFilesTest, GetServesFileWithTypeLengthAndValidators) {
  auto r = get("/hello.txt");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(header(r, "Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(header(r, "Accept-Ranges"), "bytes");
  EXPECT_TRUE(header(r, "ETag").has_value());
  EXPECT_TRUE(header(r, "Last-Modified").has_value());
  EXPECT_FALSE(header(r, "Content-Range").has_value());
  ASSERT_TRUE(r.file.valid());
  EXPECT_EQ(r.offset, 0u);
  EXPECT_EQ(r.content_length(), kHello.size());
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(body(r), kHello);
}

TEST_F(StaticFilesTest, ValidatorsAreLiteral) {
  auto r = get("/digits.txt");
  EXPECT_EQ(header(r, "Last-Modified"), kDigitsLastModified);
  EXPECT_EQ(header(r, "ETag"), kDigitsEtag);
}

TEST_F(StaticFilesTest, HeadMatchesGet) {
  for (std::string_view target : {"/hello.txt", "/nope", "/sub"}) {
    auto g = get(target);
    auto h = serve({.method = "HEAD", .target = target});
    EXPECT_EQ(h.status, g.status) << target;
    EXPECT_EQ(h.headers, g.headers) << target;
    EXPECT_EQ(h.content_length(), g.content_length()) << target;
  }
  auto h = serve({.method = "HEAD", .target = "/digits.txt", .range = "bytes=2-5"});
  EXPECT_EQ(h.status, 206);
  EXPECT_EQ(h.offset, 2u);
  EXPECT_EQ(h.content_length(), 4u);
}

TEST_F(StaticFilesTest, ContentTypeByExtension) {
  struct Case {
    const char* name;
    const char* type;
  };
  for (auto [name, type] : {Case{"a.PNG", "image/png"}, Case{"a.md", "text/markdown; charset=utf-8"},
                            Case{"a.json", "application/json"}, Case{"a.tar.gz", "application/gzip"},
                            Case{"a.woff2", "font/woff2"}, Case{"a.mjs", "text/javascript; charset=utf-8"},
                            Case{"a.bin", "application/octet-stream"}, Case{"noext", "application/octet-stream"}}) {
    write_file(root_ + "/" + name, "x");
    EXPECT_EQ(header(get(std::string("/") + name), "Content-Type"), type) << name;
  }
  EXPECT_EQ(header(get("/page.html"), "Content-Type"), "text/html; charset=utf-8");
}

TEST_F(StaticFilesTest, MissingIsNotFound) {
  expect_not_found(get("/nope.txt"), "missing file");
  expect_not_found(get("/nope/deeper.txt"), "missing directory");
  expect_not_found(get("/hello.txt/"), "file named as a directory");
  expect_not_found(get("/hello.txt/x"), "file used as a directory");
}

TEST_F(StaticFilesTest, TraversalIsNotFound) {
  for (std::string_view target :
       {"/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2e/secret.txt", "/..%2fsecret.txt", "/..%2Fsecret.txt",
        "/%2e%2e%2fsecret.txt", "/sub/../../secret.txt", "/sub/%2e%2e/%2E%2E/secret.txt", "/./../secret.txt",
        "//../secret.txt", "/sub/..%2f..%2fsecret.txt", "/dir_out/secret.txt", "/dir_out/www/hello.txt",
        "http://host/../secret.txt"}) {
    expect_not_found(get(target), target);
  }
}

TEST_F(StaticFilesTest, DotSegmentsThatStayInsideResolve) {
  for (std::string_view target :
       {"/sub/../hello.txt", "/./hello.txt", "//hello.txt", "/sub/%2e%2e/hello.txt", "http://example.com/hello.txt"}) {
    auto r = get(target);
    EXPECT_EQ(r.status, 200) << target;
    EXPECT_EQ(body(r), kHello) << target;
  }
}

TEST_F(StaticFilesTest, SymlinkOutOfRootIsNotFound) {
  // Precondition: outside the server both links do reach the secret, so a 404 means we refused.
  std::ifstream direct(root_ + "/link_out");
  ASSERT_TRUE(direct.good());
  expect_not_found(get("/link_out"), "relative symlink out");
  expect_not_found(get("/link_abs"), "absolute symlink out");
}

TEST_F(StaticFilesTest, SymlinkInsideRootServes) {
  for (std::string_view target : {"/link_in", "/sub/link_up"}) {
    auto r = get(target);
    EXPECT_EQ(r.status, 200) << target;
    EXPECT_EQ(body(r), kHello) << target;
  }
}

TEST_F(StaticFilesTest, DirectoryIndexAndRedirect) {
  auto r = get("/sub/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(header(r, "Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(body(r), "<p>index</p>\n");

  auto moved = get("/sub?x=1");
  EXPECT_EQ(moved.status, 301);
  EXPECT_EQ(header(moved, "Location"), "/sub/");
  // "//evil.com/" would be a protocol-relative open redirect; the Location must be canonical.
  EXPECT_EQ(header(get("//evil.com"), "Location"), "/evil.com/");
  EXPECT_EQ(header(get("/sp%20ace"), "Location"), "/sp%20ace/");

  expect_not_found(get("/emptydir/"), "directory without index");
  expect_not_found(get("/"), "root without index");
  write_file(root_ + "/index.html", "root\n");
  EXPECT_EQ(body(get("/")), "root\n");
}

TEST_F(StaticFilesTest, QueryIgnoredAndEscapesDecoded) {
  EXPECT_EQ(body(get("/hello.txt?x=1&y=/../secret.txt")), kHello);
  EXPECT_EQ(body(get("/hello%2Etxt")), kHello);
  auto r = get("/sub/a%20b.txt");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(body(r), "space\n");
}

TEST_F(StaticFilesTest, MalformedTargetIsBadRequest) {
  for (std::string_view target : {"/%zz", "/%2", "/%", "/a%00b", "/%g0", "/hello.txt%", "relative.txt", "", "*"}) {
    auto r = get(target);
    EXPECT_EQ(r.status, 400) << target;
    EXPECT_EQ(r.body, "bad request\n") << target;
    EXPECT_FALSE(r.file.valid()) << target;
  }
}

TEST_F(StaticFilesTest, OtherMethodsAreNotAllowed) {
  for (std::string_view method : {"POST", "PUT", "DELETE", "get", "OPTIONS"}) {
    auto r = serve({.method = method, .target = "/hello.txt"});
    EXPECT_EQ(r.status, 405) << method;
    EXPECT_EQ(header(r, "Allow"), "GET, HEAD") << method;
    EXPECT_FALSE(r.file.valid()) << method;
  }
}

TEST_F(StaticFilesTest, NotModifiedByEtag) {
  for (std::string inm : {std::string(kDigitsEtag), "W/" + std::string(kDigitsEtag),
                          "\"nope\", " + std::string(kDigitsEtag), std::string("*")}) {
    auto r = serve({.target = "/digits.txt", .if_none_match = inm});
    EXPECT_EQ(r.status, 304) << inm;
    EXPECT_FALSE(r.file.valid()) << inm;
    EXPECT_EQ(r.content_length(), 0u) << inm;
    EXPECT_EQ(header(r, "ETag"), kDigitsEtag) << inm;
    EXPECT_EQ(header(r, "Last-Modified"), kDigitsLastModified) << inm;
  }
  auto r = serve({.target = "/digits.txt", .if_none_match = "\"nope\""});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(body(r), kDigits);
  // If-None-Match present and not matching: If-Modified-Since must not be consulted.
  r = serve({.target = "/digits.txt", .if_none_match = "\"nope\"", .if_modified_since = kDigitsLastModified});
  EXPECT_EQ(r.status, 200);
}

TEST_F(StaticFilesTest, NotModifiedBySince) {
  for (std::string_view since : {kDigitsLastModified, std::string_view("Sun, 09 Sep 2001 01:46:41 GMT"),
                                 std::string_view("Fri, 01 Jan 2100 00:00:00 GMT")}) {
    auto r = serve({.target = "/digits.txt", .if_modified_since = since});
    EXPECT_EQ(r.status, 304) << since;
    EXPECT_FALSE(r.file.valid()) << since;
  }
  for (std::string_view since : {"Sun, 09 Sep 2001 01:46:39 GMT", "yesterday", "Sunday, 09-Sep-01 01:46:40 GMT",
                                 "Sun, 09 Sep 2001 25:46:40 GMT", "Sun, 09 Foo 2001 01:46:40 GMT"}) {
    auto r = serve({.target = "/digits.txt", .if_modified_since = since});
    EXPECT_EQ(r.status, 200) << since;
    EXPECT_EQ(body(r), kDigits) << since;
  }
}

TEST_F(StaticFilesTest, SatisfiableRangesArePartial) {
  struct Case {
    std::string_view range;
    std::uint64_t offset;
    std::uint64_t length;
    std::string_view content_range;
  };
  for (const auto& c : {Case{"bytes=2-5", 2, 4, "bytes 2-5/20"}, Case{"bytes=15-", 15, 5, "bytes 15-19/20"},
                        Case{"bytes=-4", 16, 4, "bytes 16-19/20"}, Case{"bytes=5-100", 5, 15, "bytes 5-19/20"},
                        Case{"bytes=-100", 0, 20, "bytes 0-19/20"}, Case{"bytes=0-0", 0, 1, "bytes 0-0/20"},
                        Case{"bytes=19-19", 19, 1, "bytes 19-19/20"}, Case{"Bytes=3-4", 3, 2, "bytes 3-4/20"},
                        Case{"bytes=0-99999999999999999999999", 0, 20, "bytes 0-19/20"}}) {
    auto r = get_range(c.range);
    EXPECT_EQ(r.status, 206) << c.range;
    ASSERT_TRUE(r.file.valid()) << c.range;
    EXPECT_EQ(r.offset, c.offset) << c.range;
    EXPECT_EQ(r.length, c.length) << c.range;
    EXPECT_EQ(header(r, "Content-Range"), c.content_range) << c.range;
    EXPECT_EQ(body(r), kDigits.substr(c.offset, c.length)) << c.range;
  }
}

TEST_F(StaticFilesTest, UnsatisfiableRangeIs416) {
  for (std::string_view range : {"bytes=20-", "bytes=25-30", "bytes=-0", "bytes=99999999999999999999999-"}) {
    auto r = get_range(range);
    EXPECT_EQ(r.status, 416) << range;
    EXPECT_EQ(header(r, "Content-Range"), "bytes */20") << range;
    EXPECT_FALSE(r.file.valid()) << range;
    EXPECT_EQ(r.content_length(), 0u) << range;
  }
}

TEST_F(StaticFilesTest, MultipleOrMalformedRangesServeWholeFile) {
  for (std::string_view range : {"bytes=0-1,3-4", "bytes=0-1, 5-6", "bytes=5-2", "bytes=abc", "items=0-1",
                                 "bytes=", "bytes=-", "bytes=1-2-3", "bytes=--5", "bytes 0-1"}) {
    auto r = get_range(range);
    EXPECT_EQ(r.status, 200) << range;
    EXPECT_FALSE(header(r, "Content-Range").has_value()) << range;
    EXPECT_EQ(r.offset, 0u) << range;
    EXPECT_EQ(body(r), kDigits) << range;
  }
  auto empty = serve({.target = "/empty.txt", .range = "bytes=0-"});
  EXPECT_EQ(empty.status, 200);
  EXPECT_EQ(empty.content_length(), 0u);
}

TEST_F(StaticFilesTest, IfRangeGuardsRange) {
  auto with_if_range = [&](std::string_view if_range) {
    return serve({.target = "/digits.txt", .range = "bytes=2-5", .if_range = if_range}).status;
  };
  EXPECT_EQ(with_if_range(kDigitsEtag), 206);
  EXPECT_EQ(with_if_range(kDigitsLastModified), 206);
  EXPECT_EQ(with_if_range("\"other\""), 200);
  EXPECT_EQ(with_if_range("W/" + std::string(kDigitsEtag)), 200);  // If-Range needs a strong match
  EXPECT_EQ(with_if_range("Mon, 10 Sep 2001 01:46:40 GMT"), 200);
}

TEST_F(StaticFilesTest, FifoIsNotFoundWithoutBlocking) {
  ASSERT_EQ(::mkfifo((root_ + "/pipe").c_str(), 0644), 0);
  ::alarm(5);  // a blocking open would hang forever with no writer; SIGALRM fails the run instead
  auto r = get("/pipe");
  ::alarm(0);
  expect_not_found(r, "fifo");
}

TEST_F(StaticFilesTest, PermissionDeniedIsForbidden) {
  write_file(root_ + "/locked.txt", "locked\n");
  ASSERT_EQ(::chmod((root_ + "/locked.txt").c_str(), 0), 0);
  if (::geteuid() != 0) {
    EXPECT_EQ(get("/locked.txt").status, 403);
    return;
  }
  // root bypasses file modes, so ask from a child that has become "nobody".
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(255);
    int status = serve({.target = "/locked.txt"}).status;
    int readable = serve({.target = "/hello.txt"}).status;
    ::_exit(status == 403 && readable == 200 ? 0 : 1);
  }
  int wstatus = 0;
  ASSERT_EQ(::waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFEXITED(wstatus));
  ASSERT_NE(WEXITSTATUS(wstatus), 255) << "could not drop privileges";
  EXPECT_EQ(WEXITSTATUS(wstatus), 0) << "locked.txt was not 403, or hello.txt was not 200, as nobody";
}

TEST_F(StaticFilesTest, OpenRejectsNonDirectories) {
  auto missing = StaticFiles::open(base_ + "/nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ENOENT);
  auto file = StaticFiles::open(root_ + "/hello.txt");
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.error().code, ENOTDIR);
}

}  // namespace
}  // namespace unbroken::http

namespace unbroken::http {
namespace {

std::string wire_body(const StaticResponse& r) {
  return r.cached ? std::string(r.cached_body) : body(r);
}

TEST_F(StaticFilesTest, CachedAnswersAreTheUncachedOnes) {
  StaticCache cache(std::chrono::hours(1));
  for (int round = 0; round < 2; ++round) {  // the second round comes from the cache
    for (std::string_view target :
         {"/hello.txt", "/digits.txt", "/sub/", "/empty.txt", "/nope", "/sub", "/page.html?x=1"}) {
      for (std::string_view method : {"GET", "HEAD"}) {
        Req req{.method = method, .target = target};
        auto plain = files_->serve(req.to_request());
        auto cached = files_->serve(req.to_request(), &cache);
        EXPECT_EQ(cached.status, plain.status) << target;
        EXPECT_EQ(cached.headers, plain.headers) << target;
        EXPECT_EQ(cached.content_length(), plain.content_length()) << target;
        EXPECT_EQ(wire_body(cached), wire_body(plain)) << target;
      }
    }
  }
  // Conditional requests are answered from the cached validators.
  Req conditional{.target = "/digits.txt", .if_none_match = kDigitsEtag};
  EXPECT_EQ(files_->serve(conditional.to_request(), &cache).status, 304);
}

TEST_F(StaticFilesTest, ACachedFileIsReadAgainOnlyAfterRevalidation) {
  StaticCache long_lived(std::chrono::hours(1));
  StaticCache always(std::chrono::milliseconds(0));
  Req req{.target = "/hello.txt"};
  EXPECT_EQ(wire_body(files_->serve(req.to_request(), &long_lived)), kHello);
  EXPECT_EQ(wire_body(files_->serve(req.to_request(), &always)), kHello);
  write_file(root_ + "/hello.txt", "changed, and longer than before\n");
  auto stale = files_->serve(req.to_request(), &long_lived);
  EXPECT_TRUE(stale.cached);
  EXPECT_EQ(wire_body(stale), kHello) << "within the revalidation period the cache answers alone";
  EXPECT_EQ(wire_body(files_->serve(req.to_request(), &always)), "changed, and longer than before\n");
  std::filesystem::remove(root_ + "/hello.txt");
  EXPECT_EQ(files_->serve(req.to_request(), &always).status, 404) << "a deleted file is gone at revalidation";
}

TEST_F(StaticFilesTest, RangesAndLargeFilesBypassTheCache) {
  StaticCache cache(std::chrono::hours(1));
  Req range{.target = "/digits.txt", .range = "bytes=2-4"};
  auto r = files_->serve(range.to_request(), &cache);
  EXPECT_EQ(r.status, 206);
  EXPECT_FALSE(r.cached);
  EXPECT_EQ(body(r), "234");
  write_file(root_ + "/big.bin", std::string(StaticCache::kMaxFileBytes + 1, 'b'));
  Req big{.target = "/big.bin"};
  auto b = files_->serve(big.to_request(), &cache);
  EXPECT_FALSE(b.cached);
  EXPECT_TRUE(b.file.valid());
}

}  // namespace
}  // namespace unbroken::http
