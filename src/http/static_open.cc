#include "http/static_open.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace unbroken::http {
namespace {

constexpr int kOpenAttempts = 4;
// O_NONBLOCK: opening a FIFO for reading would otherwise block the loop until a writer appears;
// it has no effect on regular files. O_NOCTTY: a tty in the root must not become ours.
constexpr std::uint64_t kFileFlags = O_RDONLY | O_NONBLOCK | O_NOCTTY;

// EAGAIN: RESOLVE_BENEATH saw a concurrent rename or mount and gave up rather than risk a wrong
// answer; a retry normally succeeds. EINTR is possible on network and FUSE filesystems.
Result<UniqueFd> open_beneath(int dir, const char* path, std::uint64_t flags) {
  open_how how{};
  how.flags = flags | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  for (int attempt = 1;; ++attempt) {
    long fd = ::syscall(SYS_openat2, dir, path, &how, sizeof how);
    if (fd >= 0) return UniqueFd(static_cast<int>(fd));
    if ((errno != EAGAIN && errno != EINTR) || attempt == kOpenAttempts) return Errno{errno};
  }
}

// Newer or equal by the nanosecond timestamp: tools such as `gzip -k` keep the original's mtime.
bool not_older(const struct stat& sibling, const struct stat& original) {
  const timespec& a = sibling.st_mtim;
  const timespec& b = original.st_mtim;
  return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec >= b.tv_nsec);
}

std::optional<Opened> sibling(int root, const std::string& path, const struct stat& original) {
  auto opened = open_and_stat(root, path);
  if (!opened || !S_ISREG(opened->st.st_mode) || !not_older(opened->st, original)) return std::nullopt;
  return std::move(*opened);
}

}  // namespace

Result<Opened> open_and_stat(int root, const std::string& relative) {
  auto fd = open_beneath(root, relative.empty() ? "." : relative.c_str(), kFileFlags);
  if (!fd) return fd.error();
  Opened opened{std::move(*fd)};
  if (::fstat(opened.fd.get(), &opened.st) != 0) return Errno{errno};
  return opened;
}

Result<UniqueFd> open_path_beneath(int root) {
  return open_beneath(root, ".", O_PATH);
}

Siblings find_siblings(int root, const std::string& name, const struct stat& original) {
  Siblings s;
  std::string path = name + ".br";
  s.br = sibling(root, path, original);
  path.replace(path.size() - 2, 2, "gz");
  s.gz = sibling(root, path, original);
  return s;
}

}  // namespace unbroken::http
