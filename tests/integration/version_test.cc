// `unbroken --version`, `unbroken version`, the start-up line and unbroken_build_info name the same
// version and commit: the one this test binary was built with.

#include <gtest/gtest.h>

#include <filesystem>

#include "base/build_info.h"
#include "harness.h"

namespace unbroken::testing {
namespace {

// The line both spellings print, from a real run of the binary.
std::string version_output(const std::string& how) {
  char tmpl[] = "/tmp/unbroken-version-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  ChildResult r = run_isolated({UNBROKEN_BINARY, how}, dir, 10s);
  std::filesystem::remove_all(dir);
  EXPECT_EQ(r.status, 0) << how << ": " << r.err;
  EXPECT_EQ(r.err, "") << how;
  return r.out;
}

TEST(Version, BothSpellingsPrintVersionAndCommit) {
  std::string expected =
      "unbroken " + std::string(build::version()) + " (commit " + std::string(build::commit()) + ")\n";
  EXPECT_EQ(version_output("--version"), expected);
  EXPECT_EQ(version_output("version"), expected);
  EXPECT_FALSE(build::version().empty());
  EXPECT_FALSE(build::commit().empty());
}

TEST(Version, StartupLineAndMetricAgreeWithTheCli) {
  std::string line = version_output("--version");
  ASSERT_FALSE(line.empty());
  line.pop_back();  // the newline
  auto server = Server::start();
  // The line that tests and scripts take as "started" carries it.
  std::string err = server->stderr_text();
  auto at = err.find("listening on http://");
  ASSERT_NE(at, std::string::npos) << err;
  std::string listening = err.substr(at, err.find('\n', at) - at);
  EXPECT_NE(listening.find(line), std::string::npos) << listening;
  std::string sample = "unbroken_build_info{version=\"" + std::string(build::version()) + "\",commit=\"" +
                       std::string(build::commit()) + "\"}";
  EXPECT_EQ(server->metric(sample), 1) << server->metrics_text();
}

}  // namespace
}  // namespace unbroken::testing
