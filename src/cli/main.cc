// unbroken: the command line. Subcommands: serve, chaos, analyze, version.

#include <CLI/CLI.hpp>
#include <cstdio>

#include "analyze/analyze_command.h"
#include "app/serve.h"
#include "app/serve_config.h"
#include "base/build_info.h"
#include "chaos/chaos.h"
#include "cli/man_page.h"
#include "net/tls_alloc.h"

int main(int argc, char** argv) {
  // Before anything can touch OpenSSL: steady TLS traffic then makes no heap allocation.
  unbroken::net::install_tls_allocator();
  CLI::App app{"unbroken: an HTTP/1.1 server for networks where clients leave early"};
  app.require_subcommand(1);
  app.set_version_flag("--version", unbroken::build::version_line(), "print the version and the git commit, and exit");
  auto* serve = app.add_subcommand("serve", "serve HTTP (static files with --root, diagnostics with --diag)");
  unbroken::app::ServeConfig cfg;
  unbroken::app::add_serve_options(*serve, cfg);
  auto* chaos = app.add_subcommand("chaos", "misbehaving clients against an HTTP/1.1 server, and a verdict");
  unbroken::chaos::ChaosConfig chaos_cfg;
  unbroken::chaos::add_chaos_options(*chaos, chaos_cfg);
  auto* analyze =
      app.add_subcommand("analyze", "read access logs and say who departs, where, and which timeout cuts them");
  unbroken::analyze::AnalyzeConfig analyze_cfg;
  unbroken::analyze::add_analyze_options(*analyze, analyze_cfg);
  auto* version = app.add_subcommand("version", "print the version and the git commit");
  // Hidden (no group): the build runs it to write unbroken.1 from these same tables.
  auto* help_man = app.add_subcommand("help-man", "print the unbroken(1) man page in roff")->group("");
  try {
    app.parse(argc, argv);
    if (serve->parsed()) unbroken::app::finish_serve_config(*serve, cfg);
    if (chaos->parsed()) unbroken::chaos::finish_chaos_config(chaos_cfg);
    if (analyze->parsed()) unbroken::analyze::finish_analyze_config(analyze_cfg);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);  // the version line on stdout, exit 0
  } catch (const CLI::ParseError& e) {
    // One line naming the problem, exit 2; never a stack trace.
    std::fprintf(stderr, "unbroken: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unbroken: %s\n", e.what());
    return 2;
  }
  if (version->parsed()) {
    std::printf("%s\n", unbroken::build::version_line().c_str());
    return 0;
  }
  if (help_man->parsed()) {
    std::fputs(unbroken::cli::man_page(app).c_str(), stdout);
    return 0;
  }
  if (serve->parsed()) return unbroken::app::run_serve(cfg);
  if (chaos->parsed()) {
    try {
      return unbroken::chaos::run_chaos(chaos_cfg);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "unbroken chaos: %s\n", e.what());
      return 2;
    }
  }
  if (analyze->parsed()) return unbroken::analyze::run_analyze(analyze_cfg);
  return 0;
}
