// The HTML report: one file, inline CSS and SVG drawn here, no script and no external resource, so
// it can be mailed, attached to a ticket, or opened offline years later.

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "analyze/output.h"
#include "analyze/time_parse.h"

namespace unbroken::analyze {
namespace {

constexpr std::array<std::string_view, kOutcomeCount> kColours{"#9aa5b1", "#e4572e", "#f3a712", "#a8c686", "#669bbc",
                                                               "#8e6c8a", "#29335c", "#c9b79c", "#d1495b", "#7a9e7e",
                                                               "#b56576", "#e09f3e", "#540b0e", "#6d597a"};

std::string esc(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string pct(double f) {
  return fmt::format("{:.1f}%", f * 100);
}

// A round number at or above v for an axis maximum: 1, 2, 5 times a power of ten.
double nice_max(double v) {
  if (v <= 1) return 1;
  double p = std::pow(10, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * p >= v) return m * p;
  }
  return 10 * p;
}

struct Frame {
  double w, h, left, bottom, top;
};

// A chart over time, open for its bars: the buckets, the value at the top of the axis, and the
// height and width a bar may take.
struct TimePlot {
  GroupedTimeline timeline;
  double top, plot_h, bar_w;
};

// The heading, the <svg> element, the time axis with its first and last times, and the value axis
// (0 and a round top above the largest `value` of a bucket). The caller draws the bars and closes
// the </svg>.
template <typename Value>
TimePlot time_chart(std::string& out, const Report& r, std::string_view title, std::string_view name, Frame f,
                    Value value) {
  TimePlot p{group_timeline(r, 120), 0, f.h - f.bottom - f.top, 0};
  const auto& bars = p.timeline.rows;
  std::uint64_t peak = 0;
  for (const auto& b : bars) peak = std::max<std::uint64_t>(peak, value(b));
  p.top = nice_max(static_cast<double>(peak));
  p.bar_w = bars.empty() ? 0 : (f.w - f.left - 10) / static_cast<double>(bars.size());
  out += fmt::format("<h2>{} over time (per {})</h2>", title, p.timeline.unit);
  out += fmt::format(R"(<svg data-chart="{}" viewBox="0 0 {} {}" width="{}" height="{}" role="img">)", name, f.w, f.h,
                     f.w, f.h);
  out += fmt::format(R"(<line x1="{}" y1="{}" x2="{}" y2="{}" class="axis"/>)", f.left, f.h - f.bottom, f.w - 10,
                     f.h - f.bottom);
  out += fmt::format(R"(<text x="{}" y="{}" class="tick" text-anchor="end">{}</text>)", f.left - 4, f.top + 10,
                     group_digits(static_cast<std::uint64_t>(p.top)));
  out += fmt::format(R"(<text x="{}" y="{}" class="tick" text-anchor="end">0</text>)", f.left - 4, f.h - f.bottom);
  if (!bars.empty()) {
    out += fmt::format(R"(<text x="{}" y="{}" class="tick">{}</text>)", f.left, f.h - 10,
                       format_iso8601(bars.front().start_ms).substr(0, 16));
    out += fmt::format(R"(<text x="{}" y="{}" class="tick" text-anchor="end">{}</text>)", f.w - 10, f.h - 10,
                       format_iso8601(bars.back().start_ms).substr(0, 16));
  }
  return p;
}

void departures_over_time(std::string& out, const Report& r) {
  constexpr double kW = 900, kH = 260, kLeft = 50, kBottom = 30, kTop = 10;
  TimePlot p = time_chart(out, r, "Departures", "departures-over-time", {kW, kH, kLeft, kBottom, kTop},
                          [](const TimeBucket& b) { return b.departures; });
  const auto& bars = p.timeline.rows;
  double top = p.top, plot_h = p.plot_h, bw = p.bar_w;
  for (std::size_t i = 0; i < bars.size(); ++i) {
    const TimeBucket& b = bars[i];
    double x = kLeft + static_cast<double>(i) * bw, y = kH - kBottom;
    std::string when = format_iso8601(b.start_ms).substr(0, 16);
    for (std::size_t o = 1; o < kOutcomeCount; ++o) {
      if (b.by_outcome[o] == 0) continue;
      double h = static_cast<double>(b.by_outcome[o]) / top * plot_h;
      y -= h;
      out += fmt::format(
          R"(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="{}" data-series="{}" data-bucket="{}" )"
          R"(data-value="{}"><title>{} {}: {} of {} requests</title></rect>)",
          x + 0.5, y, std::max(bw - 1, 0.5), h, kColours[o], kOutcomeNames[o], when, b.by_outcome[o], when,
          kOutcomeNames[o], b.by_outcome[o], b.requests);
    }
  }
  out += "</svg><div class=\"legend\">";
  for (std::size_t o = 1; o < kOutcomeCount; ++o) {
    if (r.by_outcome[o] == 0) continue;
    out += fmt::format(R"(<span><i style="background:{}"></i>{}</span>)", kColours[o], kOutcomeNames[o]);
  }
  out += "</div>";
}

void outcome_phase(std::string& out, const Report& r) {
  constexpr double kCellW = 120, kCellH = 34, kLeft = 130, kTop = 30;
  std::vector<std::size_t> outcomes;
  for (std::size_t o = 1; o < kOutcomeCount; ++o) {
    if (r.by_outcome[o] > 0) outcomes.push_back(o);
  }
  std::uint64_t peak = 1;
  for (std::size_t o : outcomes) {
    for (std::size_t p = 0; p < kPhaseCount; ++p) peak = std::max(peak, r.outcome_phase[o][p]);
  }
  double w = kLeft + kCellW * kPhaseCount + 10,
         h = kTop + kCellH * static_cast<double>(std::max<std::size_t>(outcomes.size(), 1)) + 10;
  out += "<h2>Departures by outcome and phase</h2>";
  out += fmt::format(R"(<svg data-chart="outcome-phase" viewBox="0 0 {} {}" width="{}" height="{}" role="img">)", w, h,
                     w, h);
  for (std::size_t p = 0; p < kPhaseCount; ++p) {
    out += fmt::format(R"(<text x="{}" y="{}" class="tick" text-anchor="middle">{}</text>)",
                       kLeft + kCellW * (static_cast<double>(p) + 0.5), kTop - 10, kPhaseNames[p]);
  }
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    std::size_t o = outcomes[i];
    double y = kTop + kCellH * static_cast<double>(i);
    out += fmt::format(R"(<text x="{}" y="{}" class="tick" text-anchor="end">{}</text>)", kLeft - 8, y + kCellH / 2 + 4,
                       kOutcomeNames[o]);
    for (std::size_t p = 0; p < kPhaseCount; ++p) {
      std::uint64_t v = r.outcome_phase[o][p];
      double a = v == 0 ? 0.04 : 0.15 + 0.85 * static_cast<double>(v) / static_cast<double>(peak);
      double x = kLeft + kCellW * static_cast<double>(p);
      out += fmt::format(
          R"(<rect x="{}" y="{}" width="{}" height="{}" fill="#e4572e" fill-opacity="{:.2f}" data-outcome="{}" )"
          R"(data-phase="{}" data-value="{}"><title>{} in {}: {}</title></rect>)",
          x + 1, y + 1, kCellW - 2, kCellH - 2, a, kOutcomeNames[o], kPhaseNames[p], v, kOutcomeNames[o],
          kPhaseNames[p], v);
      if (v > 0) {
        out += fmt::format(R"(<text x="{}" y="{}" class="cell" text-anchor="middle">{}</text>)", x + kCellW / 2,
                           y + kCellH / 2 + 4, group_digits(v));
      }
    }
  }
  out += "</svg>";
}

void duration_histogram(std::string& out, const Report& r) {
  constexpr double kW = 900, kH = 260, kLeft = 50, kBottom = 30, kTop = 24;
  // Display bins: at most 200 across the span, whole multiples of the 100 ms collection bins.
  std::size_t n = r.histogram.size();
  std::size_t per = std::max<std::size_t>(1, (n + 199) / 200);
  std::vector<std::uint64_t> bins((n + per - 1) / per, 0);
  for (std::size_t i = 0; i < n; ++i) bins[i / per] += r.histogram[i];
  // Room on the right, so that a cliff at the longest duration is not drawn on the frame.
  bins.resize(bins.size() + std::max<std::size_t>(3, bins.size() / 12), 0);
  double bin_s = r.hist_bin_s * static_cast<double>(per);
  std::uint64_t peak = 0;
  for (auto b : bins) peak = std::max(peak, b);
  double top = nice_max(static_cast<double>(peak));
  double span_s = bin_s * static_cast<double>(bins.size());
  out += fmt::format("<h2>Durations of departures ({:.1f} s bins), cliffs marked</h2>", bin_s);
  out += fmt::format(R"(<svg data-chart="duration-histogram" viewBox="0 0 {} {}" width="{}" height="{}" role="img">)",
                     kW, kH, kW, kH);
  double plot_w = kW - kLeft - 10, plot_h = kH - kBottom - kTop;
  out += fmt::format(R"(<line x1="{}" y1="{}" x2="{}" y2="{}" class="axis"/>)", kLeft, kH - kBottom, kW - 10,
                     kH - kBottom);
  out += fmt::format(R"(<text x="{}" y="{}" class="tick" text-anchor="end">{}</text>)", kLeft - 4, kTop + 10,
                     group_digits(static_cast<std::uint64_t>(top)));
  double bw = bins.empty() ? 0 : plot_w / static_cast<double>(bins.size());
  for (std::size_t i = 0; i < bins.size(); ++i) {
    if (bins[i] == 0) continue;
    double h = static_cast<double>(bins[i]) / top * plot_h;
    double from = static_cast<double>(i) * bin_s;
    out += fmt::format(
        R"(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="#669bbc" data-series="bin" data-from="{:.1f}" )"
        R"(data-value="{}"><title>{:.1f}-{:.1f} s: {}</title></rect>)",
        kLeft + static_cast<double>(i) * bw, kH - kBottom - h, std::max(bw - 0.5, 0.5), h, from, bins[i], from,
        from + bin_s, bins[i]);
  }
  for (const Cliff& c : r.cliffs) {
    if (span_s <= 0) break;
    double x = kLeft + c.seconds / span_s * plot_w;
    out += fmt::format(
        R"(<line x1="{:.1f}" y1="{}" x2="{:.1f}" y2="{}" class="cliff" data-cliff="{:.1f}" data-value="{}"/>)"
        R"(<text x="{:.1f}" y="{}" class="cliff-label" text-anchor="{}">{:.1f} s ({}){}</text>)",
        x, kTop - 4, x, kH - kBottom, c.seconds, c.count, x, kTop - 8,
        x > kW - 120     ? "end"
        : x < kLeft + 80 ? "start"
                         : "middle",
        c.seconds, group_digits(c.count),
        c.server_timer != Timer::kNone ? fmt::format(" {} timer", name(c.server_timer)) : "");
  }
  for (double t : {0.0, span_s / 2, span_s}) {
    out += fmt::format(R"(<text x="{:.1f}" y="{}" class="tick" text-anchor="middle">{:.0f} s</text>)",
                       kLeft + (span_s > 0 ? t / span_s : 0) * plot_w, kH - 10, t);
  }
  out += "</svg>";
}

void top_routes(std::string& out, const Report& r) {
  constexpr double kW = 900, kRowH = 24, kLabel = 330;
  std::size_t n = std::min<std::size_t>(r.routes_by_departures.size(), 12);
  double h = kRowH * static_cast<double>(std::max<std::size_t>(n, 1)) + 10;
  std::uint64_t peak = 1;
  for (std::size_t i = 0; i < n; ++i) peak = std::max(peak, r.routes_by_departures[i].departures);
  out += "<h2>Top routes by departures</h2>";
  out += fmt::format(R"(<svg data-chart="top-routes" viewBox="0 0 {} {}" width="{}" height="{}" role="img">)", kW, h,
                     kW, h);
  for (std::size_t i = 0; i < n; ++i) {
    const Row& row = r.routes_by_departures[i];
    double y = 5 + kRowH * static_cast<double>(i);
    double w = (kW - kLabel - 120) * static_cast<double>(row.departures) / static_cast<double>(peak);
    std::string label = row.key.size() > 48 ? row.key.substr(0, 47) + "…" : row.key;
    out +=
        fmt::format(R"(<text x="{}" y="{}" class="tick" text-anchor="end">{}</text>)", kLabel - 8, y + 16, esc(label));
    out +=
        fmt::format(R"(<rect x="{}" y="{}" width="{:.1f}" height="{}" fill="#e4572e" data-series="{}" data-value="{}" )"
                    R"(data-requests="{}"><title>{}: {} departures of {} requests</title></rect>)",
                    kLabel, y + 3, std::max(w, 1.0), kRowH - 6, esc(row.key), row.departures, row.requests,
                    esc(row.key), row.departures, row.requests);
    out += fmt::format(R"(<text x="{:.1f}" y="{}" class="tick">{} ({})</text>)", kLabel + std::max(w, 1.0) + 6, y + 16,
                       group_digits(row.departures), row.requests ? pct(row.ratio) : "?");
  }
  out += "</svg>";
}

void table(std::string& out, std::string_view title, std::string_view key, const std::vector<Row>& rows) {
  if (rows.empty()) return;
  out +=
      fmt::format("<h2>{}</h2><table><tr><th>{}</th><th>departures</th><th>requests</th><th>ratio</th><th>±</th></tr>",
                  esc(title), esc(key));
  for (std::size_t i = 0; i < std::min<std::size_t>(rows.size(), 15); ++i) {
    const Row& r = rows[i];
    out += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", esc(r.key),
                       group_digits(r.departures), r.requests ? group_digits(r.requests) : "?",
                       r.requests ? pct(r.ratio) : "?", group_digits(r.error));
  }
  out += "</table>";
}

void requests_over_time(std::string& out, const Report& r) {
  constexpr double kW = 900, kH = 200, kLeft = 60, kBottom = 30, kTop = 10;
  TimePlot p = time_chart(out, r, "Requests", "requests-over-time", {kW, kH, kLeft, kBottom, kTop},
                          [](const TimeBucket& b) { return b.requests; });
  const auto& bars = p.timeline.rows;
  double bw = p.bar_w;
  for (std::size_t i = 0; i < bars.size(); ++i) {
    const TimeBucket& b = bars[i];
    double h = static_cast<double>(b.requests) / p.top * p.plot_h;
    std::string when = format_iso8601(b.start_ms).substr(0, 16);
    out += fmt::format(
        R"(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="#669bbc" data-series="requests" )"
        R"(data-bucket="{}" data-value="{}"><title>{}: {} requests, {}</title></rect>)",
        kLeft + static_cast<double>(i) * bw + 0.5, kH - kBottom - h, std::max(bw - 1, 0.5), h, when, b.requests, when,
        b.requests, human_bytes(b.bytes));
  }
  out += "</svg>";
}

void requests_table(std::string& out, std::string_view title, std::string_view key, const Report& r,
                    const std::vector<Row>& rows) {
  if (rows.empty()) return;
  out += fmt::format(
      "<h2>{}</h2><table><tr><th>{}</th><th>requests</th><th>share</th><th>bytes</th><th>departures</th>"
      "<th>±</th></tr>",
      esc(title), esc(key));
  for (std::size_t i = 0; i < std::min<std::size_t>(rows.size(), 15); ++i) {
    const Row& row = rows[i];
    out += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", esc(row.key),
        group_digits(row.requests),
        pct(static_cast<double>(row.requests) / static_cast<double>(std::max<std::uint64_t>(r.requests, 1))),
        human_bytes(row.bytes), group_digits(row.departures), group_digits(row.error));
  }
  out += "</table>";
}

// The traffic as a whole: what a log without departures is still worth reading for.
void traffic(std::string& out, const Report& r) {
  const Traffic& t = r.traffic;
  out += fmt::format(R"(<h2>Traffic</h2><p data-bytes="{}">{} requests, {} served.</p>)", t.bytes_out,
                     group_digits(r.requests), human_bytes(t.bytes_out));
  out += R"(<table data-table="status-classes"><tr><th>status</th><th>requests</th><th>share</th></tr>)";
  for (std::size_t k : kStatusClassOrder) {
    if (t.status_classes[k] == 0) continue;
    out += fmt::format(
        R"(<tr data-class="{}"><td>{}</td><td>{}</td><td>{}</td></tr>)", kStatusClassNames[k], kStatusClassNames[k],
        group_digits(t.status_classes[k]),
        pct(static_cast<double>(t.status_classes[k]) / static_cast<double>(std::max<std::uint64_t>(r.requests, 1))));
  }
  out += "</table><p>Codes: ";
  for (std::size_t i = 0; i < std::min<std::size_t>(t.statuses.size(), 15); ++i) {
    out += fmt::format("{}{} ({})", i ? ", " : "", t.statuses[i].key, group_digits(t.statuses[i].count));
  }
  out += ".</p>";
  requests_over_time(out, r);
  requests_table(out, "Top routes by requests", "route", r, t.routes);
  requests_table(out, "Top clients by requests", "client", r, t.clients);
  requests_table(out, "User agents by requests (families)", "family", r, r.user_agents);
}

void cut_short(std::string& out, const Report& r) {
  const CutShort& cs = r.cut_short;
  if (cs.judged == 0 && cs.exact == 0) return;
  out += fmt::format(R"(<h2>Responses cut short</h2><p data-exact="{}" data-inferred="{}">)", cs.exact, cs.inferred);
  if (cs.exact > 0)
    out += fmt::format("{} exact (the log records whether each response was complete). ", group_digits(cs.exact));
  if (cs.inferred > 0 || cs.exact == 0) {
    out += fmt::format(
        "{} inferred: a 200 to a GET shorter than the size its path is served at in full ({} downloads "
        "judged, {} paths with a full size).",
        group_digits(cs.inferred), group_digits(cs.judged), group_digits(cs.sized_paths));
  }
  out += "</p>";
  table(out, "Cut short by network and route", "network route", cs.pairs);
}

// The proxy's upstreams: requests, failures by outcome, answered 5xx, retries, mean head time.
void upstreams(std::string& out, const Report& r) {
  if (r.upstreams.empty()) return;
  out +=
      "<h2>Upstreams (proxied requests)</h2><table><tr><th>upstream</th><th>requests</th><th>failures</th>"
      "<th>by outcome</th><th>5xx</th><th>retries</th><th>head</th></tr>";
  for (const UpstreamRow& u : r.upstreams) {
    std::string how = upstream_outcomes(u);
    out += fmt::format(
        R"(<tr data-upstream="{}"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>)",
        esc(u.upstream), esc(u.upstream), group_digits(u.requests), group_digits(u.failures), how,
        group_digits(u.server_errors), group_digits(u.retries),
        u.header_ms >= 0 ? fmt::format("{:.1f} ms", u.header_ms) : "-");
  }
  out += "</table>";
}

}  // namespace

std::string render_html(const Report& r) {
  std::string out;
  out.reserve(256 << 10);
  out += R"(<!doctype html><html lang="en"><head><meta charset="utf-8"><title>unbroken analyze</title><style>
body{font:14px/1.4 "DejaVu Sans",system-ui,sans-serif;margin:24px auto;max-width:960px;color:#1d2731;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}
.summary{color:#52606d}ol.findings li{margin:6px 0}
svg{display:block;background:#fafbfc;border:1px solid #e4e7eb;max-width:100%;height:auto}
.axis{stroke:#9aa5b1}.tick{font-size:11px;fill:#52606d}.cell{font-size:12px;fill:#fff;font-weight:bold}
.cliff{stroke:#d1495b;stroke-width:2;stroke-dasharray:4 3}.cliff-label{font-size:11px;fill:#d1495b;font-weight:bold}
.legend span{margin-right:14px;font-size:12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
table{border-collapse:collapse;font-size:13px}td,th{padding:3px 10px;border-bottom:1px solid #e4e7eb;text-align:right}
td:first-child,th:first-child{text-align:left;max-width:480px;overflow-wrap:anywhere}
</style></head><body data-report="unbroken-analyze/1">)";
  out += "<h1>unbroken analyze</h1>";
  double rate = r.requests ? static_cast<double>(r.departures) / static_cast<double>(r.requests) : 0;
  out += fmt::format(R"(<p class="summary" data-requests="{}" data-departures="{}">{} requests, {} departures ({}))",
                     r.requests, r.departures, group_digits(r.requests), group_digits(r.departures), pct(rate));
  if (r.first_ms != kNoTime) {
    out += fmt::format(", {} to {} UTC", format_iso8601(r.first_ms).substr(0, 19),
                       format_iso8601(r.last_ms).substr(0, 19));
  }
  out +=
      fmt::format("; {} lines from {} input{}, {} unparsed, {} repaired.</p>", group_digits(r.lines), r.inputs.size(),
                  r.inputs.size() == 1 ? "" : "s", group_digits(r.unparsed), group_digits(r.repaired));

  out += R"(<h2>Findings</h2><ol class="findings">)";
  for (const Finding& f : r.findings) {
    out += fmt::format(R"(<li data-kind="{}" data-subject="{}">{}</li>)", esc(f.kind), esc(f.subject), esc(f.text));
  }
  out += "</ol>";

  if (r.departures > 0) {
    departures_over_time(out, r);
    outcome_phase(out, r);
    duration_histogram(out, r);
    top_routes(out, r);
    table(out, "Top routes by departure ratio (20+ requests)", "route", r.routes_by_ratio);
    table(out, "Top client networks by departures", "network", r.networks);
    table(out, "Top client networks by departure ratio (20+ requests)", "network", r.networks_by_ratio);
    table(out, "Top clients by departures", "client", r.ips);
  }
  cut_short(out, r);
  upstreams(out, r);
  if (r.requests > 0) traffic(out, r);

  if (!r.timers.empty()) {
    out += "<h2>Server timers that fired</h2><table><tr><th>timer</th><th>fired</th><th>timeout</th></tr>";
    for (const TimerRow& t : r.timers) {
      out += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td></tr>", name(t.timer), group_digits(t.count),
                         t.timeout_ms >= 0 ? fmt::format("{} ms", t.timeout_ms) : "?");
    }
    out += "</table>";
  }
  const Delivery& d = r.delivery;
  out += fmt::format("<h2>Delivery of partial responses</h2><p>{} departures after {} written", group_digits(d.partial),
                     human_bytes(d.bytes_out));
  if (d.with_acked > 0) {
    out += fmt::format("; {} of {} acknowledged where logged", human_bytes(d.bytes_acked),
                       human_bytes(d.bytes_out_with_acked));
  }
  out += ".</p>";
  out += fmt::format("<h2>Wasted work</h2><p>{:.1f} s of handler time after clients left, {} requests cancelled.</p>",
                     r.wasted_ms / 1000, group_digits(r.cancelled));
  out +=
      "<h2>Accuracy</h2><p>Top-k tables come from Space-Saving sketches: a count may be overestimated by at most "
      "the ± column, itself at most N/k.</p><table><tr><th>table</th><th>k</th><th>N</th><th>max error</th></tr>";
  for (const SketchInfo& s : r.sketches) {
    out += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", s.table, s.capacity,
                       group_digits(s.total), group_digits(s.max_error));
  }
  out += "</table></body></html>\n";
  return out;
}

}  // namespace unbroken::analyze
