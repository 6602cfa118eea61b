#pragma once
// The three renderings of a Report. Each writes the whole document to `out`; none fails.

#include <cstdio>
#include <string>
#include <vector>

#include "analyze/report.h"

namespace unbroken::analyze {

// Aligned tables, findings first, sized to `width` columns.
[[nodiscard]] std::string render_text(const Report& r, std::size_t width);

// The stable schema documented in docs/analyze.md ("schema": "unbroken-analyze/1").
[[nodiscard]] std::string render_json(const Report& r);

// One self-contained HTML file: inline SVG charts and CSS, no script, no external resource.
[[nodiscard]] std::string render_html(const Report& r);

// The timeline in at most max_rows rows, neighbouring buckets added together: `unit` names one row
// ("minute", "3 minutes").
struct GroupedTimeline {
  std::vector<TimeBucket> rows;
  std::string unit;
};
[[nodiscard]] GroupedTimeline group_timeline(const Report& r, std::size_t max_rows);

// Shared by the renderers.
[[nodiscard]] std::string group_digits(std::uint64_t n);
[[nodiscard]] std::string human_bytes(std::uint64_t b);
// "upstream_timeout 240, upstream_refused 100": an upstream's failures by outcome.
[[nodiscard]] std::string upstream_outcomes(const UpstreamRow& u);

}  // namespace unbroken::analyze
