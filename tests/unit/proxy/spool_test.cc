// The proxy's spool: a FIFO that keeps order across memory and its temporary file whatever the
// cut of the appends and the reads, stays within its total, rewinds its file once drained, and
// reports file errors as values.

#include "proxy/spool.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "common/every_split.h"

namespace unbroken::proxy {
namespace {

namespace fs = std::filesystem;

class SpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ub-spool-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  SpoolLimits limits(std::size_t memory, std::size_t chunk = 16) const {
    SpoolLimits l;
    l.memory_limit = memory;
    l.file_read_chunk = chunk;
    l.temp_dir = dir_;
    return l;
  }

  // Our descriptors that point into the temp dir (an unlinked file's link still names its dir):
  // the sizes of their files.
  std::vector<off_t> spool_files() const {
    std::vector<off_t> sizes;
    for (const auto& e : fs::directory_iterator("/proc/self/fd")) {
      std::error_code ec;
      fs::path target = fs::read_symlink(e.path(), ec);
      if (ec || target.string().rfind(dir_ + "/", 0) != 0) continue;
      struct stat st {};
      if (::stat(e.path().c_str(), &st) == 0) sizes.push_back(st.st_size);
    }
    return sizes;
  }

  std::string dir_;
};

// Reads everything out, taking at most `step` bytes of each peek.
std::string drain(Spool& s, std::size_t step = SIZE_MAX, std::size_t limit = SIZE_MAX) {
  std::string out;
  while (!s.empty() && out.size() < limit) {
    auto v = s.peek();
    EXPECT_TRUE(v) << v.error().message();
    if (!v) break;
    EXPECT_FALSE(v->empty());
    std::size_t n = std::min({step, v->size(), limit - out.size()});
    out.append(v->substr(0, n));
    s.consume(n);
  }
  return out;
}

std::string pattern(std::size_t n, std::uint32_t seed = 1) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

struct Case {
  std::size_t memory;
  std::size_t chunk;
  std::size_t step;  // bytes taken per peek while reading
};

// The payload cut at every point (and byte by byte), read back between the appends, across
// memory-only, a spill in the middle of an append, and a file-only spool.
TEST_F(SpoolTest, EverySplitReadsBackInOrder) {
  const std::string in = pattern(100);
  for (Case c : {Case{1000, 16, SIZE_MAX}, Case{40, 16, SIZE_MAX}, Case{40, 7, 3}, Case{0, 16, 5}, Case{1, 1, 1}}) {
    for (const auto& parts : testing::every_split(in)) {
      for (std::size_t read_between : {std::size_t{0}, std::size_t{1}, std::size_t{25}}) {
        Spool s(limits(c.memory, c.chunk));
        std::string out;
        for (const auto& p : parts) {
          ASSERT_TRUE(s.append(p));
          out += drain(s, c.step, read_between);
        }
        EXPECT_EQ(s.size(), in.size() - out.size());
        out += drain(s, c.step);
        ASSERT_EQ(out, in) << "memory " << c.memory << " chunk " << c.chunk << " parts " << parts.size()
                           << " read_between " << read_between;
        EXPECT_TRUE(s.empty());
        EXPECT_EQ(s.bytes_in_file(), 0u);
      }
    }
  }
}

// What goes where: memory to its limit, the rest of that append to the file, and every append to
// the file while the file holds unread bytes, even once memory has room again.
TEST_F(SpoolTest, MemoryThenFile) {
  struct Step {
    char op;  // 'a' append n bytes, 'c' read n bytes
    std::size_t n;
    std::uint64_t size;
    std::uint64_t in_file;
  };
  const Step steps[] = {
      {'a', 8, 8, 0}, {'a', 2, 10, 0}, {'a', 5, 15, 5}, {'c', 10, 5, 5}, {'a', 3, 8, 8},
      {'c', 4, 4, 4}, {'c', 4, 0, 0},  {'a', 6, 6, 0},  {'a', 6, 12, 2}, {'c', 12, 0, 0},
  };
  Spool s(limits(10, 4));
  std::string in, out;
  std::uint32_t seed = 0;
  for (const Step& st : steps) {
    if (st.op == 'a') {
      std::string p = pattern(st.n, ++seed);
      ASSERT_TRUE(s.append(p));
      in += p;
    } else {
      out += drain(s, SIZE_MAX, st.n);
    }
    EXPECT_EQ(s.size(), st.size) << st.op << st.n;
    EXPECT_EQ(s.bytes_in_file(), st.in_file) << st.op << st.n;
  }
  EXPECT_EQ(out, in);
  EXPECT_TRUE(s.has_file());
}

TEST_F(SpoolTest, NoFileUntilMemoryIsFull) {
  Spool s(limits(64));
  ASSERT_TRUE(s.append(pattern(64)));
  EXPECT_FALSE(s.has_file());
  EXPECT_TRUE(spool_files().empty());
  auto v = s.peek();
  ASSERT_TRUE(v);
  EXPECT_EQ(v->size(), 64u);  // memory comes out whole, in one view
}

// max_total bounds what is held, all or nothing per append; what has been read does not count.
TEST_F(SpoolTest, TotalLimit) {
  SpoolLimits l = limits(16);
  l.max_total = 100;
  Spool s(l);
  std::string in = pattern(60);
  ASSERT_TRUE(s.append(in));
  auto full = s.append(pattern(41, 2));
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error(), kSpoolFull);
  EXPECT_EQ(s.size(), 60u);
  std::string more = pattern(40, 3);
  ASSERT_TRUE(s.append(more));
  EXPECT_EQ(s.size(), 100u);
  EXPECT_FALSE(s.append("x"));
  std::string out = drain(s, SIZE_MAX, 50);
  std::string last = pattern(50, 4);
  ASSERT_TRUE(s.append(last));
  out += drain(s);
  EXPECT_EQ(out, in + more + last);
}

// Several megabytes in appends of every size, read in reads of other sizes: the same bytes.
TEST_F(SpoolTest, SeveralMegabytesReadBackExactly) {
  Spool s(limits(64 * 1024, 64 * 1024));
  const std::string in = pattern(6 * 1024 * 1024, 7);
  std::mt19937 rng(3);
  std::string out;
  std::size_t at = 0;
  while (at < in.size()) {
    std::size_t n = std::min<std::size_t>(in.size() - at, 1 + rng() % 200'000);
    ASSERT_TRUE(s.append(std::string_view(in).substr(at, n)));
    at += n;
    out += drain(s, 1 + rng() % 100'000, rng() % 150'000);
  }
  EXPECT_GT(s.bytes_in_file(), 0u);
  out += drain(s, 70'000);
  EXPECT_TRUE(out == in) << "lengths " << out.size() << " " << in.size();
}

// Once the reader has caught up, the file is truncated and the next bytes go to memory again: a
// long stream through the spool does not grow the file past what was held at once.
TEST_F(SpoolTest, RewindsTheFileWhenDrained) {
  Spool s(limits(8, 64));
  for (int round = 0; round < 50; ++round) {
    std::string p = pattern(1000, round);
    ASSERT_TRUE(s.append(p));
    auto files = spool_files();
    ASSERT_EQ(files.size(), 1u);
    EXPECT_EQ(files[0], 992);  // 8 in memory
    ASSERT_EQ(drain(s, 100), p);
    EXPECT_EQ(spool_files(), std::vector<off_t>{0});
    ASSERT_TRUE(s.append("abc"));
    EXPECT_EQ(s.bytes_in_file(), 0u);  // memory again
    ASSERT_EQ(drain(s), "abc");
  }
}

TEST_F(SpoolTest, ClearKeepsTheFileEmptyForReuse) {
  Spool s(limits(4));
  ASSERT_TRUE(s.append(pattern(100)));
  s.clear();
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(spool_files(), std::vector<off_t>{0});
  ASSERT_TRUE(s.append("hello, world"));
  EXPECT_EQ(drain(s), "hello, world");
}

TEST_F(SpoolTest, MissingTempDirIsAnError) {
  SpoolLimits l = limits(4);
  l.temp_dir = dir_ + "/not-there";
  Spool s(l);
  auto r = s.append("0123456789");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ENOENT);
  EXPECT_TRUE(s.empty());  // nothing of it was kept, not even the part memory had room for
  ASSERT_TRUE(s.append("abc"));
  EXPECT_EQ(drain(s), "abc");
  EXPECT_FALSE(open_unlinked_temp(l.temp_dir));
  EXPECT_FALSE(open_unlinked_temp_mkstemp(l.temp_dir));
}

// Both ways of making the file leave nothing in the directory.
TEST_F(SpoolTest, TheFileIsUnlinked) {
  for (auto make : {open_unlinked_temp, open_unlinked_temp_mkstemp}) {
    auto fd = make(dir_);
    ASSERT_TRUE(fd) << fd.error().message();
    EXPECT_EQ(::write(fd->get(), "abc", 3), 3);
    EXPECT_TRUE(fs::is_empty(dir_));
    struct stat st {};
    ASSERT_EQ(::fstat(fd->get(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_EQ(st.st_nlink, 0u);
    EXPECT_EQ(::fcntl(fd->get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  }
  Spool s(limits(4));
  ASSERT_TRUE(s.append(pattern(100)));
  EXPECT_TRUE(s.has_file());
  EXPECT_TRUE(fs::is_empty(dir_));
  EXPECT_EQ(spool_files().size(), 1u);
}

// A write the file refuses half way (here RLIMIT_FSIZE, as ENOSPC would) adds nothing: what was
// held reads back as it was, and the spool goes on once there is room.
TEST_F(SpoolTest, FileWriteErrorAddsNothing) {
  Spool s(limits(10));
  std::string first = pattern(500, 1);
  ASSERT_TRUE(s.append(first));
  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  struct rlimit small = old;
  small.rlim_cur = 1000;
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  auto r = s.append(pattern(800, 2));  // 490 + 800 > 1000: a short write, then EFBIG
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old), 0);
  ::signal(SIGXFSZ, old_handler);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EFBIG);
  EXPECT_EQ(s.size(), 500u);
  std::string second = pattern(800, 3);
  ASSERT_TRUE(s.append(second));
  EXPECT_EQ(drain(s, 33), first + second);
}

}  // namespace
}  // namespace unbroken::proxy
