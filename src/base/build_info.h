#pragma once
// What this binary is: the project version (CMake's project(VERSION)) and the git commit it was
// built from, for `unbroken --version`, the start-up line and the unbroken_build_info metric.

#include <string>
#include <string_view>

namespace unbroken::build {

// "0.16.0".
[[nodiscard]] std::string_view version();
// The short commit hash, "-dirty" appended when tracked files had changes; "unknown" when built
// outside a git checkout (cmake/build_commit.cmake).
[[nodiscard]] std::string_view commit();
// "unbroken 0.16.0 (commit abc1234)".
[[nodiscard]] std::string version_line();

}  // namespace unbroken::build
