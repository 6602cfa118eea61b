#include "proxy/spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "base/check.h"

namespace unbroken::proxy {

Spool::Spool(SpoolLimits limits) : limits_(std::move(limits)) {
  UB_CHECK(limits_.file_read_chunk > 0);
}

Result<void> Spool::append(std::string_view bytes) {
  if (bytes.empty()) return {};
  // size() <= max_total always holds, so the subtraction cannot wrap.
  if (bytes.size() > limits_.max_total - size()) return kSpoolFull;
  // Memory takes bytes only while nothing is waiting in the file: they must come out after it.
  std::size_t to_memory = 0;
  if (bytes_in_file() == 0 && memory_.size() < limits_.memory_limit)
    to_memory = std::min(bytes.size(), limits_.memory_limit - memory_.size());
  // The file first: if it fails, nothing has been added anywhere.
  if (to_memory < bytes.size())
    if (auto r = write_file(bytes.substr(to_memory)); !r) return r;
  if (to_memory > 0) {
    char* at = memory_.prepare(to_memory, limits_.memory_limit);
    UB_CHECK(memory_.writable() >= to_memory);
    std::memcpy(at, bytes.data(), to_memory);
    memory_.commit(to_memory);
  }
  return {};
}

Result<void> Spool::write_file(std::string_view bytes) {
  if (!file_) {
    auto made = open_unlinked_temp(limits_.temp_dir);
    if (!made) return made.error();
    file_ = std::move(*made);
  }
  // Blocking on the loop thread, on purpose: a local file (see the header). write_at_ moves only
  // once all of it is written, so a short write followed by ENOSPC leaves bytes past the end that
  // the next append overwrites.
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::pwrite(file_.get(), bytes.data() + done, bytes.size() - done, static_cast<off_t>(write_at_ + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno{errno};
    if (n == 0) return Errno{EIO};
    done += static_cast<std::size_t>(n);
  }
  write_at_ += bytes.size();
  return {};
}

Result<std::string_view> Spool::peek() {
  if (!memory_.empty()) return memory_.readable();
  if (!from_file_.empty() || read_at_ == write_at_) return from_file_.readable();
  std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(limits_.file_read_chunk, write_at_ - read_at_));
  // from_file_ is empty here, so its storage starts at its front: one chunk, allocated once.
  char* into = from_file_.prepare(want, limits_.file_read_chunk);
  for (;;) {
    ssize_t n = ::pread(file_.get(), into, want, static_cast<off_t>(read_at_));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno{errno};
    if (n == 0) return Errno{EIO};  // shorter than what was written: not our file any more
    from_file_.commit(static_cast<std::size_t>(n));
    read_at_ += static_cast<std::uint64_t>(n);
    return from_file_.readable();
  }
}

void Spool::consume(std::size_t n) {
  if (!memory_.empty()) {
    UB_CHECK(n <= memory_.size());
    memory_.consume(n);
    return;
  }
  UB_CHECK(n <= from_file_.size());
  from_file_.consume(n);
  rewind_if_drained();
}

void Spool::clear() {
  memory_.clear();
  from_file_.clear();
  read_at_ = write_at_;
  rewind_if_drained();
}

void Spool::rewind_if_drained() {
  if (write_at_ == 0 || read_at_ != write_at_ || !from_file_.empty()) return;
  read_at_ = write_at_ = 0;
  // Gives the blocks back. Should it fail (it does not on a regular file we own), the offsets are
  // reset anyway and the next bytes overwrite the old ones: the file only keeps its size.
  [[maybe_unused]] int rc = ::ftruncate(file_.get(), 0);
}

Result<UniqueFd> open_unlinked_temp(const std::string& dir) {
  for (;;) {
    int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0) return UniqueFd(fd);
    if (errno == EINTR) continue;
    // The filesystem (EOPNOTSUPP) or an old kernel (EISDIR, EINVAL) has no O_TMPFILE. Anything
    // else (ENOENT, EACCES, EMFILE) is the answer, and mkstemp would only say it again.
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) return Errno{errno};
    return open_unlinked_temp_mkstemp(dir);
  }
}

Result<UniqueFd> open_unlinked_temp_mkstemp(const std::string& dir) {
  std::string path = dir + "/unbroken-spool-XXXXXX";
  UniqueFd fd(::mkostemp(path.data(), O_CLOEXEC));  // mode 0600
  if (!fd) return Errno{errno};
  // Unlinked at once: a crash leaves nothing behind, and nobody else can open it.
  if (::unlink(path.c_str()) != 0) return Errno{errno};
  return fd;
}

}  // namespace unbroken::proxy
