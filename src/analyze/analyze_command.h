#pragma once
// `unbroken analyze`: its flags (CLI11) and its run.

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "analyze/analyzer.h"

namespace unbroken::analyze {

struct AnalyzeConfig {
  std::vector<std::string> inputs;
  std::string format = "text";
  std::string out = "-";
  std::string since, until, route, client;
  std::string nginx_format;
  std::size_t width = 0;  // 0: the terminal's, else 100
  bool no_progress = false;
  Filters filters;  // parsed from the strings above by finish_analyze_config
};

void add_analyze_options(CLI::App& cmd, AnalyzeConfig& cfg);
// Checks and parses what CLI11 cannot; throws std::runtime_error with a one-line message naming the flag.
void finish_analyze_config(AnalyzeConfig& cfg);
// Reads, analyzes, writes. Returns the exit status: 0, or 2 with one line on stderr for a bad input.
int run_analyze(const AnalyzeConfig& cfg);

}  // namespace unbroken::analyze
