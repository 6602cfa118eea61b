#pragma once
// What the serve-config tests share: parsing `serve ARGS...` as main() does, the message a user
// would see, and a temporary directory to write config files into.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "app/serve_config.h"

namespace unbroken::app {

using std::chrono::milliseconds;
namespace fs = std::filesystem;

// Parses `serve ARGS...` as main() does and returns the config.
inline ServeConfig parse(std::vector<std::string> args) {
  CLI::App app{"unbroken"};
  CLI::App* serve = app.add_subcommand("serve");
  ServeConfig cfg;
  add_serve_options(*serve, cfg);
  args.insert(args.begin(), "serve");
  // CLI11 takes the vector overload reversed: it pops arguments off the back.
  std::reverse(args.begin(), args.end());
  app.parse(args);
  finish_serve_config(*serve, cfg);
  return cfg;
}

// The message a user would see, or "" when the arguments were accepted.
inline std::string error_of(std::vector<std::string> args) {
  try {
    parse(std::move(args));
  } catch (const ConfigError& e) {
    return e.what();
  } catch (const CLI::ParseError& e) {
    return std::string("CLI11: ") + e.what();
  }
  return "";
}

class ServeConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "serve_config_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Writes `text` to a file in the temporary directory and returns its path.
  std::string write(std::string_view name, std::string_view text) {
    fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }

  fs::path dir_;
};

}  // namespace unbroken::app
