#pragma once
// Reads the inputs of `unbroken analyze` line by line into an Analyzer: files, glob patterns and "-"
// for stdin, each plain or gzip (told apart by its first bytes, not its name), each in whichever log
// format its first lines show.

#include <cstdint>
#include <string>
#include <vector>

#include "analyze/analyzer.h"
#include "analyze/parsers.h"
#include "analyze/report.h"

namespace unbroken::analyze {

// Expands glob patterns and checks that every file can be opened. Throws std::runtime_error with a
// one-line message naming the first argument that matches nothing or cannot be read.
[[nodiscard]] std::vector<std::string> expand_inputs(const std::vector<std::string>& args);

struct ReadOptions {
  const NginxParser* nginx = nullptr;  // the log_format for nginx inputs
  bool progress = false;               // a progress bar on stderr
};

// Feeds every line of every input to the analyzer. Unreadable lines are counted in the summaries; a
// read error (a truncated gzip member, EIO) ends that input, keeps what was read, and is named in its
// summary's `error`.
[[nodiscard]] std::vector<InputSummary> read_inputs(const std::vector<std::string>& paths, const ReadOptions& opts,
                                                    Analyzer& analyzer);

}  // namespace unbroken::analyze
