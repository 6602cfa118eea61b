// libFuzzer target: `unbroken serve --config FILE` with arbitrary file contents. Every outcome must
// be a ConfigError (one line, reported by main) or a valid configuration: never another exception,
// a crash or a hang.

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

#include "app/serve_config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = "/tmp/unbroken-fuzz-config-" + std::to_string(::getpid()) + ".toml";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  CLI::App app;
  auto* serve = app.add_subcommand("serve");
  unbroken::app::ServeConfig cfg;
  unbroken::app::add_serve_options(*serve, cfg);
  try {
    const char* argv[] = {"unbroken", "serve", "--config", path.c_str()};
    app.parse(4, const_cast<char**>(argv));
    unbroken::app::finish_serve_config(*serve, cfg);
  } catch (const unbroken::app::ConfigError& e) {
    std::string what = e.what();
    if (what.empty() || what.find('\n') != std::string::npos) std::abort();  // one line, always
  }
  return 0;
}
