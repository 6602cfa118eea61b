#include "app/toml_guard.h"

#include <gtest/gtest.h>

#include <vector>

namespace unbroken::app {
namespace {

// Each input toml++ 3.3 reaches __builtin_unreachable() on is refused at its line; each legal
// place for a non-ASCII character (strings, comments) passes.
TEST(TomlGuard, RefusesWhatTomlPlusPlusCannotClassify) {
  struct Case {
    const char* text;
    unsigned line;  // 0: accepted
  };
  const std::vector<Case> cases{
      {"a = \"\xc3\x8e\"", 0},
      {"# \xc3\x8e", 0},
      {"a = '''\xc3\x8e'''", 0},
      {"a = '\xc3\x8e'", 0},
      {"a = \"x\" # \xc3\x8e", 0},
      {"a = \"\\\"\xc3\x8e\"", 0},  // an escaped quote does not end the string
      {"a = \"\"\"x\n\xc3\x8e\"\"\"", 0},
      {"a = \"\\u00ce\"", 0},
      {" \xc3\x8ei", 1},
      {"a = 1\n\xc3\x8e = 1", 2},
      {"a = \xc3\x8e", 1},
      {"a = 1 \xc3\x8e", 1},
      {"[\xc3\x8e]", 1},
      {"a = [1,\xc3\x8e]", 1},
      {"a = \"x\"\xc3\x8e", 1},
      {"a = \"\"\"x\\\n \xc3\x8e\"\"\"", 2},
      {"a = \"\"\"\\ \xc3\x8e\"\"\"", 1},
      {"a = \"\"\"\\\xc3\x8e\"\"\"", 1},
      {"a = '''x'''\n\xc3\x8e", 2},
  };
  for (const auto& c : cases) {
    auto bad = toml_unreadable(c.text);
    if (c.line == 0) {
      EXPECT_FALSE(bad) << c.text;
    } else {
      ASSERT_TRUE(bad) << c.text;
      EXPECT_EQ(bad->line, c.line) << c.text;
    }
  }
}

}  // namespace
}  // namespace unbroken::app
