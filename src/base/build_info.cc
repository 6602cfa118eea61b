#include "base/build_info.h"

namespace unbroken::build {

// Defined in the file cmake/build_commit.cmake writes at build time: only it changes with a
// commit, so only it is compiled again.
extern const char kBuildCommit[];

std::string_view version() {
  return UNBROKEN_VERSION;
}

std::string_view commit() {
  return kBuildCommit;
}

std::string version_line() {
  return "unbroken " + std::string(version()) + " (commit " + std::string(commit()) + ")";
}

}  // namespace unbroken::build
