#include "analyze/analyze_command.h"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "analyze/input.h"
#include "analyze/output.h"
#include "analyze/time_parse.h"

namespace unbroken::analyze {
namespace {

std::size_t terminal_width() {
  winsize ws{};
  if (::isatty(1) && ::ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  if (const char* c = std::getenv("COLUMNS")) {
    long n = std::strtol(c, nullptr, 10);
    if (n > 0) return static_cast<std::size_t>(n);
  }
  return 100;
}

std::int64_t parse_time_flag(std::string_view flag, const std::string& value) {
  auto t = parse_iso8601(value);
  if (!t) {
    throw std::runtime_error(
        fmt::format("{}: '{}' is not a time; use 2026-11-26T23:50:00Z, 2026-11-26 23:50 or "
                    "2026-11-26 (UTC unless a zone is given)",
                    flag, value));
  }
  return *t;
}

}  // namespace

void add_analyze_options(CLI::App& cmd, AnalyzeConfig& cfg) {
  cmd.add_option("inputs", cfg.inputs,
                 "access logs: files, globs, - for stdin; plain or gzip; unbroken JSON lines, nginx or HAProxy")
      ->required();
  cmd.add_option("--format", cfg.format, "text (default), json, or html (with --out)")
      ->check(CLI::IsMember({"text", "json", "html"}));
  cmd.add_option("--out", cfg.out, "write the report here instead of stdout");
  cmd.add_option("--since", cfg.since, "only requests at or after this time (ISO 8601, UTC by default)");
  cmd.add_option("--until", cfg.until, "only requests before this time");
  cmd.add_option("--route", cfg.route, "only routes or paths matching this glob, e.g. '/api/*'");
  cmd.add_option("--client", cfg.client, "only this client address or network (10.1.2.0/24, 2001:db8::/48)");
  cmd.add_option("--nginx-format", cfg.nginx_format, "the log_format of nginx inputs (default: combined)");
  cmd.add_option("--width", cfg.width, "columns for --format text (default: the terminal's)");
  cmd.add_flag("--no-progress", cfg.no_progress, "no progress bar on stderr");
}

void finish_analyze_config(AnalyzeConfig& cfg) {
  if (!cfg.since.empty()) cfg.filters.since_ms = parse_time_flag("--since", cfg.since);
  if (!cfg.until.empty()) cfg.filters.until_ms = parse_time_flag("--until", cfg.until);
  if (cfg.filters.since_ms != kNoTime && cfg.filters.until_ms != kNoTime &&
      cfg.filters.until_ms <= cfg.filters.since_ms) {
    throw std::runtime_error("--until must be later than --since");
  }
  cfg.filters.route = cfg.route;
  if (!cfg.client.empty()) {
    cfg.filters.client = ClientFilter::parse(cfg.client);
    if (!cfg.filters.client) {
      throw std::runtime_error(
          fmt::format("--client: '{}' is not an IP address or a network like 10.1.2.0/24", cfg.client));
    }
  }
  if (cfg.out.empty()) throw std::runtime_error("--out: empty file name");
  if (cfg.format == "html" && cfg.out == "-" && ::isatty(1)) {
    throw std::runtime_error("--format html writes a file: add --out report.html");
  }
}

int run_analyze(const AnalyzeConfig& cfg) {
  std::string error;
  auto nginx = NginxParser::compile(cfg.nginx_format.empty() ? NginxParser::kCombined : cfg.nginx_format, &error);
  if (!nginx) {
    std::fprintf(stderr, "unbroken: %s\n", error.c_str());
    return 2;
  }
  std::vector<std::string> paths;
  try {
    paths = expand_inputs(cfg.inputs);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unbroken: %s\n", e.what());
    return 2;
  }
  std::FILE* out = stdout;
  if (cfg.out != "-") {
    out = std::fopen(cfg.out.c_str(), "we");
    if (out == nullptr) {
      std::fprintf(stderr, "unbroken: --out: cannot write '%s': %s\n", cfg.out.c_str(), std::strerror(errno));
      return 2;
    }
  }
  Analyzer analyzer(cfg.filters);
  ReadOptions opts{&*nginx, !cfg.no_progress && ::isatty(2)};
  Report report = analyzer.finish(read_inputs(paths, opts, analyzer));
  std::string doc;
  if (cfg.format == "json") {
    doc = render_json(report);
  } else if (cfg.format == "html") {
    doc = render_html(report);
  } else {
    doc = render_text(report, cfg.width > 0 ? cfg.width : terminal_width());
  }
  bool ok = std::fwrite(doc.data(), 1, doc.size(), out) == doc.size();
  ok = (out == stdout ? std::fflush(out) : std::fclose(out)) == 0 && ok;
  if (!ok) {
    std::fprintf(stderr, "unbroken: cannot write the report to '%s'\n", cfg.out.c_str());
    return 2;
  }
  return 0;
}

}  // namespace unbroken::analyze
