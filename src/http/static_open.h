#pragma once
// Opening files beneath the static root (openat2 RESOLVE_BENEATH), and finding a file's
// precompressed siblings NAME.br and NAME.gz (nginx's gzip_static, for both codings).

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace unbroken::http {

struct Opened {
  UniqueFd fd;
  struct stat st {};
};

// `relative` is a clean path ("" is the root itself). Errno as the kernel gave it.
Result<Opened> open_and_stat(int root, const std::string& relative);

// Probes that openat2 works at all (ENOSYS from an old kernel or a seccomp profile).
Result<UniqueFd> open_path_beneath(int root);

struct Siblings {
  std::optional<Opened> br;
  std::optional<Opened> gz;
  [[nodiscard]] bool any() const { return br || gz; }
};

// NAME.br and NAME.gz beside `name`, each kept only when it is a regular file beneath the root and
// no older than `original`: a sibling left behind by an edit of the original would serve old content.
Siblings find_siblings(int root, const std::string& name, const struct stat& original);

}  // namespace unbroken::http
