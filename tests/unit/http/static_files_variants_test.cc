// StaticFiles' precompressed siblings (NAME.br, NAME.gz, found by static_open.cc) through its cache,
// on a real directory: the second file of static_files_test.cc, which would be over 500 lines with it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>

#include "http/static_files.h"

namespace unbroken::http {
namespace {

constexpr std::string_view kPlain = "plain text of the page\n";
constexpr std::string_view kGz = "gzip-bytes-of-the-page";
constexpr std::string_view kBr = "br-bytes";

std::string value_of(const StaticResponse& r, std::string_view name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return std::string(v);
  return "(none)";
}

std::string sent_body(const StaticResponse& r) {
  if (r.cached) return std::string(r.cached_body);
  if (!r.file.valid()) return r.body;
  std::string out(r.length, '\0');
  EXPECT_EQ(::pread(r.file.get(), out.data(), out.size(), static_cast<off_t>(r.offset)),
            static_cast<ssize_t>(r.length));
  return out;
}

class StaticVariantsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/static_variants_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    put("page.txt", kPlain);
    put("page.txt.gz", kGz);
    put("page.txt.br", kBr);
    put("only.txt", kPlain);
    auto files = StaticFiles::open(root_);
    ASSERT_TRUE(files.ok()) << files.error().message();
    files_.emplace(std::move(*files));
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  // Written with the same fixed mtime unless told otherwise (gzip -k keeps the original's).
  void put(const std::string& name, std::string_view data, time_t mtime = 1'000'000'000) {
    std::ofstream(root_ + "/" + name, std::ios::binary) << data;
    const timespec times[2] = {{mtime, 0}, {mtime, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, (root_ + "/" + name).c_str(), times, 0), 0);
  }
  StaticResponse serve(std::string_view target, std::string_view accept, StaticCache* cache = nullptr,
                       std::string_view method = "GET", std::string_view inm = "", std::string_view range = "") {
    return files_->serve(StaticRequest{method, target, inm, "", range, "", accept}, cache);
  }

  std::string root_;
  std::optional<StaticFiles> files_;
};

struct Expect {
  std::string_view accept;
  std::string_view encoding;  // Content-Encoding, "(none)" for identity
  std::string_view body;
  std::string_view etag_tail;
};

TEST_F(StaticVariantsTest, TheAcceptedSiblingIsServedWithItsOwnEtagAndEveryAnswerVaries) {
  const Expect table[] = {
      {"", "(none)", kPlain, "-0\""},
      {"gzip", "gzip", kGz, "-0-gz\""},
      {"gzip, deflate, br", "br", kBr, "-0-br\""},
      {"br;q=0.5, gzip", "gzip", kGz, "-0-gz\""},
      {"gzip;q=0, br;q=0", "(none)", kPlain, "-0\""},
      {"identity;q=0, br", "br", kBr, "-0-br\""},
  };
  StaticCache cache(std::chrono::hours(1));
  for (int round = 0; round < 3; ++round) {  // uncached, then filling the cache, then from it
    for (const auto& row : table) {
      for (std::string_view method : {"GET", "HEAD"}) {
        auto r = serve("/page.txt", row.accept, round == 0 ? nullptr : &cache, method);
        EXPECT_EQ(r.status, 200) << row.accept;
        EXPECT_EQ(r.cached, round > 0) << row.accept;
        EXPECT_EQ(value_of(r, "Content-Encoding"), row.encoding) << row.accept;
        EXPECT_EQ(value_of(r, "Vary"), "Accept-Encoding") << row.accept;
        EXPECT_EQ(value_of(r, "Content-Type"), "text/plain; charset=utf-8") << row.accept;
        EXPECT_EQ(r.content_length(), row.body.size()) << row.accept;
        EXPECT_EQ(sent_body(r), row.body) << row.accept;
        EXPECT_TRUE(value_of(r, "ETag").ends_with(row.etag_tail)) << value_of(r, "ETag");
      }
    }
  }
}

TEST_F(StaticVariantsTest, AFileWithoutSiblingsHasNoVaryUnlessCompressionIsOn) {
  auto r = serve("/only.txt", "gzip");
  EXPECT_EQ(value_of(r, "Vary"), "(none)");
  EXPECT_EQ(value_of(r, "Content-Encoding"), "(none)");
  put("image.png", "png");
  files_->set_vary_compressible(true);
  EXPECT_EQ(value_of(serve("/only.txt", ""), "Vary"), "Accept-Encoding");
  EXPECT_EQ(value_of(serve("/image.png", "gzip"), "Vary"), "(none)");
  auto etag = value_of(serve("/only.txt", ""), "ETag");
  auto not_modified = serve("/only.txt", "", nullptr, "GET", etag);
  EXPECT_EQ(not_modified.status, 304);
  EXPECT_EQ(value_of(not_modified, "Vary"), "Accept-Encoding");
}

TEST_F(StaticVariantsTest, IfNoneMatchMatchesTheVariantSentOnly) {
  StaticCache cache(std::chrono::hours(1));
  for (StaticCache* c : {static_cast<StaticCache*>(nullptr), &cache, &cache}) {
    std::string gz_etag = value_of(serve("/page.txt", "gzip", c), "ETag");
    std::string plain_etag = value_of(serve("/page.txt", "", c), "ETag");
    ASSERT_NE(gz_etag, plain_etag);
    auto hit = serve("/page.txt", "gzip", c, "GET", gz_etag);
    EXPECT_EQ(hit.status, 304);
    EXPECT_EQ(value_of(hit, "ETag"), gz_etag);
    EXPECT_EQ(value_of(hit, "Vary"), "Accept-Encoding");
    EXPECT_EQ(serve("/page.txt", "gzip", c, "GET", plain_etag).status, 200) << "the identity tag is not the gzip one";
    EXPECT_EQ(serve("/page.txt", "", c, "GET", gz_etag).status, 200);
  }
}

TEST_F(StaticVariantsTest, ARangeCountsTheEncodedBytes) {
  auto r = serve("/page.txt", "gzip", nullptr, "GET", "", "bytes=5-9");
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(value_of(r, "Content-Encoding"), "gzip");
  EXPECT_EQ(value_of(r, "Content-Range"), "bytes 5-9/" + std::to_string(kGz.size()));
  EXPECT_EQ(sent_body(r), kGz.substr(5, 5));
  EXPECT_EQ(serve("/page.txt", "br", nullptr, "GET", "", "bytes=100-").status, 416);
}

TEST_F(StaticVariantsTest, AStaleOrIrregularSiblingIsIgnored) {
  put("old.txt", kPlain, 2'000'000'000);
  put("old.txt.gz", kGz, 1'000'000'000);  // older than the file it claims to compress
  ASSERT_EQ(::mkdir((root_ + "/dir.txt.gz").c_str(), 0755), 0);
  put("dir.txt", kPlain);
  ASSERT_EQ(::symlink("/etc/hostname", (root_ + "/out.txt.gz").c_str()), 0);  // leaves the root
  put("out.txt", kPlain);
  for (std::string_view target : {"/old.txt", "/dir.txt", "/out.txt"}) {
    auto r = serve(target, "gzip");
    EXPECT_EQ(r.status, 200) << target;
    EXPECT_EQ(value_of(r, "Content-Encoding"), "(none)") << target;
    EXPECT_EQ(value_of(r, "Vary"), "(none)") << target;
    EXPECT_EQ(sent_body(r), kPlain) << target;
  }
}

}  // namespace
}  // namespace unbroken::http
