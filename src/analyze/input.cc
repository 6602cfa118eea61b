#include "analyze/input.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

namespace unbroken::analyze {
namespace {

constexpr std::size_t kChunk = 4 << 20;     // lines are cut out of buffers this large
constexpr std::size_t kRawChunk = 1 << 20;  // compressed bytes read at once
constexpr std::size_t kPadding = 64;        // >= SIMDJSON_PADDING: simdjson may read past a line's end
constexpr std::size_t kFirstUnparsed = 5;
constexpr std::uint64_t kProgressMinBytes = 64 << 20;
static_assert(kPadding >= simdjson::SIMDJSON_PADDING);

// A file or stdin as a stream of bytes, inflated when it starts with the gzip magic. Concatenated
// gzip members (what `cat a.gz b.gz` and logrotate's delaycompress make) are read one after another.
class ByteSource {
 public:
  ByteSource(int fd, bool owned) : fd_(fd), owned_(owned), raw_(kRawChunk) {}
  ~ByteSource() {
    if (gzip_) inflateEnd(&zs_);
    if (owned_) ::close(fd_);
  }
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;

  // Reads the first bytes to decide; false on a read error.
  bool start() {
    if (!fill_raw()) return false;
    gzip_ = raw_len_ >= 2 && static_cast<unsigned char>(raw_[0]) == 0x1f && static_cast<unsigned char>(raw_[1]) == 0x8b;
    if (gzip_) {
      std::memset(&zs_, 0, sizeof zs_);
      if (inflateInit2(&zs_, 15 + 16) != Z_OK) return false;
      zs_.next_in = reinterpret_cast<Bytef*>(raw_.data());
      zs_.avail_in = static_cast<uInt>(raw_len_);
    }
    return true;
  }

  [[nodiscard]] bool gzip() const { return gzip_; }
  [[nodiscard]] std::uint64_t raw_bytes() const { return raw_total_; }
  [[nodiscard]] const std::string& error() const { return error_; }

  // Up to n bytes into out; 0 at the end or on an error (then error() is set).
  std::size_t read(char* out, std::size_t n) {
    if (!gzip_) {
      if (raw_pos_ < raw_len_) {
        std::size_t k = std::min(n, raw_len_ - raw_pos_);
        std::memcpy(out, raw_.data() + raw_pos_, k);
        raw_pos_ += k;
        return k;
      }
      for (;;) {
        ssize_t k = ::read(fd_, out, n);
        if (k >= 0) {
          raw_total_ += static_cast<std::uint64_t>(k);
          return static_cast<std::size_t>(k);
        }
        if (errno != EINTR) {
          error_ = std::strerror(errno);
          return 0;
        }
      }
    }
    zs_.next_out = reinterpret_cast<Bytef*>(out);
    zs_.avail_out = static_cast<uInt>(n);
    while (zs_.avail_out == n) {
      if (zs_.avail_in == 0) {
        if (eof_) {
          if (member_open_) error_ = "the gzip stream is truncated";
          break;
        }
        if (!fill_raw()) break;
        zs_.next_in = reinterpret_cast<Bytef*>(raw_.data());
        zs_.avail_in = static_cast<uInt>(raw_len_);
        continue;
      }
      member_open_ = true;
      int rc = inflate(&zs_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        member_open_ = false;
        inflateReset(&zs_);
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        error_ = fmt::format("bad gzip data ({})", zs_.msg != nullptr ? zs_.msg : "inflate failed");
        break;
      }
    }
    return n - zs_.avail_out;
  }

 private:
  bool fill_raw() {
    raw_pos_ = 0;
    raw_len_ = 0;
    for (;;) {
      ssize_t k = ::read(fd_, raw_.data(), raw_.size());
      if (k > 0) {
        raw_len_ = static_cast<std::size_t>(k);
        raw_total_ += static_cast<std::uint64_t>(k);
        return true;
      }
      if (k == 0) {
        eof_ = true;
        return true;
      }
      if (errno != EINTR) {
        error_ = std::strerror(errno);
        return false;
      }
    }
  }

  int fd_;
  bool owned_;
  bool gzip_ = false;
  bool eof_ = false;
  bool member_open_ = false;
  std::vector<char> raw_;
  std::size_t raw_pos_ = 0, raw_len_ = 0;
  std::uint64_t raw_total_ = 0;
  z_stream zs_{};
  std::string error_;
};

// "\ranalyze: 42% 1.1 GB of 2.6 GB, 310 MB/s" at most five times a second, and only on a terminal.
class Progress {
 public:
  Progress(bool enabled, std::uint64_t total) : enabled_(enabled && total >= kProgressMinBytes), total_(total) {}
  void update(std::uint64_t done) {
    if (!enabled_) return;
    auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    double secs = std::chrono::duration<double>(now - start_).count();
    double mb = static_cast<double>(done) / 1e6;
    std::fprintf(stderr, "\ranalyze: %3.0f%% %.0f MB of %.0f MB, %.0f MB/s   ",
                 100.0 * static_cast<double>(done) / static_cast<double>(total_), mb, static_cast<double>(total_) / 1e6,
                 secs > 0 ? mb / secs : 0);
    shown_ = true;
  }
  ~Progress() {
    if (shown_) std::fprintf(stderr, "\r%60s\r", "");
  }

 private:
  bool enabled_;
  bool shown_ = false;
  std::uint64_t total_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_{};
};

struct LineSink {
  const ReadOptions& opts;
  Analyzer& analyzer;
  InputSummary& summary;
  JsonLineParser& json;
  bool detected = false;
  Format format = Format::kNginx;
  Entry entry;
  std::uint64_t number = 0;  // of the current line in the file, blank ones included
  bool learning = false;     // the first pass: sizes for the cut-short inference, nothing counted
  bool learned = false;      // the first pass over this input has run to its end
  bool stop = false;         // the first pass has nothing to learn from this input

  // Counts an odd line and keeps the first few line numbers.
  void note(std::uint64_t& count, std::vector<std::uint64_t>& first) const {
    ++count;
    if (first.size() < kFirstUnparsed) first.push_back(number);
  }
  void unparsed() { note(summary.unparsed, summary.first_unparsed); }

  // What the input is called and how it shows a cut-short response, decided by its first line.
  void detected_as(Format f) {
    format = f;
    detected = true;
    if (learning) return;
    bool nginx = f == Format::kNginx;
    summary.format = nginx ? std::string(opts.nginx->format_name()) : std::string(name(f));
    bool logged = !nginx || opts.nginx->logs_completion();
    summary.completion = logged ? "logged" : "inferred";
    analyzer.set_cut_inference(!nginx    ? CutInference::kOff
                               : logged  ? CutInference::kLogged
                               : learned ? CutInference::kLearned
                                         : CutInference::kOnline);
  }

  // One line without its '\n'; `capacity` bytes from line.data() are readable.
  void line(std::string_view line, std::size_t capacity) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) return;  // blank lines are not log lines
    if (!detected) detected_as(detect_format(line));
    if (learning) {
      if (format != Format::kNginx || opts.nginx->logs_completion()) {
        stop = true;
      } else if (opts.nginx->parse(line, entry)) {
        analyzer.learn_size(entry);
      }
      return;
    }
    ++summary.lines;
    bool ok = false;
    switch (format) {
      case Format::kJson: ok = json.parse(line, capacity, entry); break;
      case Format::kNginx: ok = opts.nginx->parse(line, entry); break;
      case Format::kHaproxy: ok = parse_haproxy(line, entry); break;
    }
    if (!ok) {
      unparsed();
      return;
    }
    if (entry.repaired) note(summary.repaired, summary.first_repaired);
    analyzer.add(entry);
  }
};

void read_one(ByteSource& src, LineSink& sink, std::vector<char>& buf, Progress& progress, std::uint64_t done_before) {
  std::size_t len = 0;    // bytes in buf, the start of the first unfinished line at 0
  bool skipping = false;  // inside a line longer than the buffer
  for (;;) {
    std::size_t got = src.read(buf.data() + len, kChunk - len);
    if (got == 0) break;
    len += got;
    std::size_t start = 0;
    for (;;) {
      const void* nl = std::memchr(buf.data() + start, '\n', len - start);
      if (nl == nullptr) break;
      std::size_t end = static_cast<std::size_t>(static_cast<const char*>(nl) - buf.data());
      if (skipping) {
        skipping = false;
      } else {
        sink.line(std::string_view(buf.data() + start, end - start), buf.size() - start);
        if (sink.stop) return;
      }
      start = end + 1;
    }
    if (start == 0 && len == kChunk) {
      // A line longer than the buffer: it is counted once, and its bytes skipped to the next '\n'.
      if (!skipping && !sink.learning) {
        ++sink.number;
        ++sink.summary.lines;
        sink.unparsed();
      }
      skipping = true;
      len = 0;
      continue;
    }
    std::memmove(buf.data(), buf.data() + start, len - start);
    len -= start;
    progress.update(done_before + src.raw_bytes());
  }
  // The last line without a '\n': a log cut off mid-write, most often.
  if (len > 0 && !skipping) sink.line(std::string_view(buf.data(), len), buf.size());
  sink.summary.error = src.error();
}

// The first pass over a file for the cut-short inference; false when its format needs none, when it
// cannot be read twice (a pipe named by a path: /dev/stdin, <(zcat ...)), or when it cannot be read
// at all, which the second pass then reports.
bool learn_sizes(const std::string& path, const ReadOptions& opts, Analyzer& analyzer, JsonLineParser& json,
                 std::vector<char>& buf) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ByteSource src(fd, true);
  if (!src.start()) return false;
  InputSummary ignored;
  LineSink sink{opts, analyzer, ignored, json, false, Format::kNginx, Entry{}, 0, true, false, false};
  Progress quiet(false, 0);
  read_one(src, sink, buf, quiet, 0);
  return sink.detected && !sink.stop;
}

}  // namespace

std::vector<std::string> expand_inputs(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (const std::string& a : args) {
    if (a == "-") {
      out.push_back(a);
      continue;
    }
    if (a.find_first_of("*?[") != std::string::npos) {
      glob_t g{};
      int rc = ::glob(a.c_str(), 0, nullptr, &g);
      if (rc != 0) {
        ::globfree(&g);
        throw std::runtime_error(fmt::format("no file matches '{}'", a));
      }
      for (std::size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
      ::globfree(&g);
      continue;
    }
    out.push_back(a);
  }
  for (const std::string& p : out) {
    if (p == "-") continue;
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0)
      throw std::runtime_error(fmt::format("cannot read '{}': {}", p, std::strerror(errno)));
    if (S_ISDIR(st.st_mode)) throw std::runtime_error(fmt::format("'{}' is a directory", p));
    if (::access(p.c_str(), R_OK) != 0)
      throw std::runtime_error(fmt::format("cannot read '{}': {}", p, std::strerror(errno)));
  }
  return out;
}

std::vector<InputSummary> read_inputs(const std::vector<std::string>& paths, const ReadOptions& opts,
                                      Analyzer& analyzer) {
  std::uint64_t total = 0;
  for (const std::string& p : paths) {
    struct stat st {};
    if (p != "-" && ::stat(p.c_str(), &st) == 0) total += static_cast<std::uint64_t>(st.st_size);
  }
  Progress progress(opts.progress, total);
  std::vector<char> buf(kChunk + kPadding, '\0');
  JsonLineParser json;
  std::vector<InputSummary> out;
  std::uint64_t done = 0;
  for (const std::string& p : paths) {
    InputSummary s;
    s.name = p == "-" ? "(stdin)" : p;
    s.format = "empty";
    int fd = p == "-" ? 0 : ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      // Checked by expand_inputs; a file removed since is one unreadable input, not the end.
      s.error = std::strerror(errno);
      out.push_back(std::move(s));
      continue;
    }
    // A combined log does not say whether a 200 was complete: a first pass learns the size each path
    // is served at in full, so that every response is judged against the whole file's sizes, the
    // first ones included. Stdin cannot be read twice and is judged against the sizes seen so far.
    bool learned = p != "-" && learn_sizes(p, opts, analyzer, json, buf);
    ByteSource src(fd, p != "-");
    LineSink sink{opts, analyzer, s, json, false, Format::kNginx, Entry{}, 0, false, learned, false};
    if (src.start()) {
      s.gzip = src.gzip();
      read_one(src, sink, buf, progress, done);
    } else {
      s.error = src.error();
    }
    s.bytes = src.raw_bytes();
    done += s.bytes;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace unbroken::analyze
