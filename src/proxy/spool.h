#pragma once
// Spool: a FIFO of bytes held in memory up to a limit and beyond it in an unlinked temporary file,
// bounded in total (nginx's client_body_buffer_size / proxy_buffers + proxy_max_temp_file_size).
// The proxy reads a request body whole into one before it picks an upstream, and reads an
// upstream's response into one as fast as it comes while the client takes it slowly.
//
// Order: the bytes in memory always come before the bytes in the file. While the file holds
// unread bytes, every append goes to the file; once the reader has taken them all, the file is
// truncated to nothing and appends go to memory again, so a long stream through a slow client
// does not grow the file without bound (it holds at most max_total at once).
//
// The file side does blocking pwrite/pread on the caller's thread (the loop thread in the
// proxy): the file is local and fresh in the page cache, and nginx reads and writes its
// temporary files the same way. Loop thread only; not thread-safe.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "base/result.h"
#include "base/unique_fd.h"
#include "net/buffer.h"

namespace unbroken::proxy {

struct SpoolLimits {
  std::size_t memory_limit = 64 * 1024;  // bytes held in memory before the file is used
  // Bytes held at once, memory and file together (not what has passed through): past it append()
  // fails with kSpoolFull. The request body: --max-body; a response: memory + --upstream-max-temp.
  std::uint64_t max_total = std::numeric_limits<std::uint64_t>::max();
  std::string temp_dir = "/tmp";            // where the file is made (only when it is needed)
  std::size_t file_read_chunk = 64 * 1024;  // what one peek() reads from the file at most
};

// The error append() returns when the bytes would take the spool past max_total (not EFBIG, which
// the file itself can return under RLIMIT_FSIZE).
inline constexpr Errno kSpoolFull{EMSGSIZE};

class Spool {
 public:
  explicit Spool(SpoolLimits limits);
  Spool(Spool&&) = default;
  Spool& operator=(Spool&&) = default;

  // Adds `bytes` at the back, all of them or (on error) none. Errors: kSpoolFull past max_total;
  // the file's errno when it cannot be made (ENOENT: no temp_dir, EACCES, EMFILE) or written
  // (ENOSPC, EDQUOT, EIO). After an error the spool still holds what it held and can be read.
  [[nodiscard]] Result<void> append(std::string_view bytes);

  // The next bytes, contiguous, non-empty unless the spool is empty: everything held in memory,
  // or up to file_read_chunk bytes read from the file into a buffer the spool reuses. The view is
  // valid until the next append(), consume(), peek() or clear(). Errors: pread's errno (EIO).
  [[nodiscard]] Result<std::string_view> peek();
  // Drops the first n bytes of what peek() returned (n <= its size).
  void consume(std::size_t n);
  // Drops everything; the memory and the file (truncated) are kept for reuse.
  void clear();

  [[nodiscard]] std::uint64_t size() const { return memory_.size() + bytes_in_file(); }
  [[nodiscard]] bool empty() const { return size() == 0; }
  // Held bytes that went through the file (including those read back and not yet consumed).
  [[nodiscard]] std::uint64_t bytes_in_file() const { return (write_at_ - read_at_) + from_file_.size(); }
  [[nodiscard]] bool has_file() const { return file_.valid(); }
  [[nodiscard]] const SpoolLimits& limits() const { return limits_; }

 private:
  [[nodiscard]] Result<void> write_file(std::string_view bytes);
  void rewind_if_drained();

  SpoolLimits limits_;
  net::Buffer memory_{0};       // the head of the queue; grows to memory_limit at most
  net::Buffer from_file_{0};    // bytes read back from the file, not yet consumed
  UniqueFd file_;               // made at the first spill, kept until the spool goes
  std::uint64_t write_at_ = 0;  // the file's end: the next append goes here
  std::uint64_t read_at_ = 0;   // the next byte of the file not yet read back
};

// An unlinked temporary file in `dir`, open read-write: O_TMPFILE where the filesystem has it,
// mkostemp and unlink where it refuses (EOPNOTSUPP, EISDIR on old kernels). Nothing of it is
// visible in `dir`; its blocks go when the descriptor is closed.
[[nodiscard]] Result<UniqueFd> open_unlinked_temp(const std::string& dir);
// The fallback alone, for the tests.
[[nodiscard]] Result<UniqueFd> open_unlinked_temp_mkstemp(const std::string& dir);

}  // namespace unbroken::proxy
