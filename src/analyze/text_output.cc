#include <fmt/format.h>

#include <algorithm>

#include "analyze/output.h"
#include "analyze/time_parse.h"

namespace unbroken::analyze {
namespace {

// ", 3 unparsed (lines 7, 9, 12, ...)": a count and the first line numbers of an input's odd lines.
void append_lines(std::string& line, std::string_view what, std::uint64_t count,
                  const std::vector<std::uint64_t>& first) {
  if (count == 0) return;
  line += fmt::format(", {} {} (line{}", group_digits(count), what, first.size() > 1 ? "s " : " ");
  for (std::size_t i = 0; i < first.size(); ++i) line += fmt::format("{}{}", i ? ", " : "", first[i]);
  line += count > first.size() ? ", ...)" : ")";
}

constexpr std::size_t kRows = 10;

// A table whose first column (the key) gets whatever width the others leave.
class Table {
 public:
  // left_last: the last column is text (a bar), aligned left.
  explicit Table(std::vector<std::string> header, bool left_last = false)
      : header_(std::move(header)), left_last_(left_last) {}
  void row(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  [[nodiscard]] bool empty() const { return rows_.empty(); }

  void render(std::string& out, std::size_t width) const {
    std::vector<std::size_t> w(header_.size(), 0);
    for (std::size_t c = 0; c < header_.size(); ++c) {
      w[c] = header_[c].size();
      for (const auto& r : rows_) w[c] = std::max(w[c], display_width(r[c]));
    }
    std::size_t others = 0;
    for (std::size_t c = 1; c < w.size(); ++c) others += w[c] + 2;
    std::size_t key_max = width > others + 12 ? width - others - 2 : 12;
    w[0] = std::min(w[0], key_max);
    auto line = [&](const std::vector<std::string>& cells) {
      std::string s = "  ";
      for (std::size_t c = 0; c < cells.size(); ++c) {
        std::string cell = cells[c];
        if (c == 0 && display_width(cell) > w[0]) cell = truncate(cell, w[0]);
        std::size_t pad = w[c] - std::min(w[c], display_width(cell));
        if (c == 0) {
          s += cell + std::string(pad, ' ');
        } else if (left_last_ && c + 1 == cells.size()) {
          s += "  " + cell + std::string(pad, ' ');
        } else {
          s += "  " + std::string(pad, ' ') + cell;
        }
      }
      while (!s.empty() && s.back() == ' ') s.pop_back();
      out += s + "\n";
    };
    line(header_);
    for (const auto& r : rows_) line(r);
  }

 private:
  // Columns count code points, not bytes: the bars are drawn with a multi-byte block character.
  static std::size_t display_width(const std::string& s) {
    std::size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
  }
  static std::string truncate(const std::string& s, std::size_t w) {
    std::string out;
    std::size_t n = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
      auto c = static_cast<unsigned char>(s[i]);
      if ((c & 0xC0) != 0x80 && ++n > w - 1) break;
      out.push_back(s[i]);
    }
    return out + "…";
  }
  std::vector<std::string> header_;
  bool left_last_;
  std::vector<std::vector<std::string>> rows_;
};

std::string pct(double f) {
  return fmt::format("{:.1f}%", f * 100);
}

std::string bar(double f, std::size_t width) {
  std::string s;
  auto n = static_cast<std::size_t>(f * static_cast<double>(width) + 0.5);
  for (std::size_t i = 0; i < n; ++i) s += "█";
  return s;
}

// Wraps text to width, indenting continuation lines.
std::string wrap(const std::string& text, std::size_t width, std::size_t indent) {
  std::string out, line;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t j = text.find(' ', i);
    if (j == std::string::npos) j = text.size();
    std::string word = text.substr(i, j - i);
    if (!line.empty() && line.size() + 1 + word.size() > width - indent) {
      out += line + "\n" + std::string(indent, ' ');
      line.clear();
    }
    if (!line.empty()) line += ' ';
    line += word;
    i = j + 1;
  }
  return out + line;
}

void section(std::string& out, std::string_view title) {
  out += "\n";
  out += title;
  out += "\n";
}

void rows_table(std::string& out, std::size_t width, std::string_view title, const std::string& key_name,
                const std::vector<Row>& rows, bool with_delivery) {
  if (rows.empty()) return;
  section(out, title);
  std::vector<std::string> head{key_name, "departures", "requests", "ratio"};
  if (with_delivery) {
    head.push_back("partial");
    head.push_back("wasted");
  }
  head.push_back("±");
  Table t(head);
  for (std::size_t i = 0; i < std::min(rows.size(), kRows); ++i) {
    const Row& r = rows[i];
    std::vector<std::string> cells{r.key, group_digits(r.departures), r.requests ? group_digits(r.requests) : "?",
                                   r.requests ? pct(r.ratio) : "?"};
    if (with_delivery) {
      cells.push_back(group_digits(r.partial));
      cells.push_back(fmt::format("{:.1f}s", r.wasted_ms / 1000));
    }
    cells.push_back(group_digits(r.error));
    t.row(std::move(cells));
  }
  t.render(out, width);
}

// Everything about departures: only when there are some, so that a clean log's report is its traffic.
void departure_sections(std::string& out, const Report& r, std::size_t width) {
  if (r.departures > 0) {
    section(out, "Departures by outcome and phase");
    std::vector<std::string> head{"outcome", "total"};
    std::vector<std::size_t> phases;
    for (std::size_t p = 0; p < kPhaseCount; ++p) {
      if (r.by_phase[p] > 0) {
        phases.push_back(p);
        head.emplace_back(kPhaseNames[p]);
      }
    }
    Table t(head);
    for (std::size_t o = 1; o < kOutcomeCount; ++o) {
      if (r.by_outcome[o] == 0) continue;
      std::vector<std::string> cells{std::string(kOutcomeNames[o]), group_digits(r.by_outcome[o])};
      for (std::size_t p : phases) cells.push_back(group_digits(r.outcome_phase[o][p]));
      t.row(std::move(cells));
    }
    t.render(out, width);
  }

  if (!r.timeline.empty()) {
    // At most 30 rows: neighbouring buckets are added together when the span is long.
    auto [rows, unit] = group_timeline(r, 30);
    section(out, fmt::format("Departures over time (per {})", unit));
    std::uint64_t peak = 1;
    for (const auto& b : rows) peak = std::max(peak, b.departures);
    Table t({"time (UTC)", "requests", "departures", "rate", ""}, true);
    std::size_t bar_width = width > 80 ? 30 : 15;
    for (const auto& b : rows) {
      double f = b.requests ? static_cast<double>(b.departures) / static_cast<double>(b.requests) : 0;
      t.row({format_iso8601(b.start_ms).substr(0, 16), group_digits(b.requests), group_digits(b.departures), pct(f),
             bar(static_cast<double>(b.departures) / static_cast<double>(peak), bar_width)});
    }
    t.render(out, width);
  }

  rows_table(out, width, "Top routes by departures", "route", r.routes_by_departures, true);
  rows_table(out, width, "Top routes by departure ratio (20+ requests)", "route", r.routes_by_ratio, true);
  rows_table(out, width, "Top clients by departures", "client", r.ips, false);
  rows_table(out, width, "Top client networks (/24, /64) by departures", "network", r.networks, false);
  rows_table(out, width, "Top client networks by departure ratio (20+ requests)", "network", r.networks_by_ratio,
             false);
  rows_table(out, width, "User-agent families", "family", r.user_agents, false);

  section(out, "Timeout cliffs (departure durations piling up at one value)");
  if (r.cliffs.empty())
    out += fmt::format("  none among {} departures with a duration\n", group_digits(r.with_duration));
  for (const Cliff& c : r.cliffs) {
    out +=
        fmt::format("  {:.1f} s: {} departures between {:.1f} and {:.1f} s ({} of departures, {:.0f} expected there)\n",
                    c.seconds, group_digits(c.count), c.from, c.to, pct(c.share), c.background);
    if (c.server_timer != Timer::kNone) {
      out += fmt::format("    the server's {} timer fired for {} of them (timeout_ms {})\n", name(c.server_timer),
                         group_digits(c.server_timer_count), c.server_timeout_ms);
    } else {
      out += "    no server timer fired for them: a client, proxy or load-balancer timeout\n";
    }
    if (!c.known.empty()) out += "    " + wrap(c.known, width, 4) + "\n";
    std::string routes, nets;
    for (const Share& s : c.routes) routes += fmt::format("{}{} ({})", routes.empty() ? "" : ", ", s.key, s.count);
    for (const Share& s : c.networks) nets += fmt::format("{}{} ({})", nets.empty() ? "" : ", ", s.key, s.count);
    if (!routes.empty()) out += "    routes: " + wrap(routes, width, 12) + "\n";
    out += nets.empty() ? "    clients: spread over many networks\n" : "    clients: " + wrap(nets, width, 13) + "\n";
  }

  if (!r.timers.empty()) {
    section(out, "Server timers that fired");
    Table t({"timer", "fired", "of requests", "timeout"});
    for (const TimerRow& tr : r.timers) {
      t.row({std::string(name(tr.timer)), group_digits(tr.count),
             pct(static_cast<double>(tr.count) / static_cast<double>(std::max<std::uint64_t>(r.requests, 1))),
             tr.timeout_ms >= 0 ? fmt::format("{} ms", tr.timeout_ms) : "?"});
    }
    t.render(out, width);
  }

  const Delivery& d = r.delivery;
  section(out, "Delivery of partial responses");
  if (d.partial == 0) {
    out += "  no departure after response bytes were written\n";
  } else {
    out += fmt::format("  {} departures after {} written", group_digits(d.partial), human_bytes(d.bytes_out));
    if (d.bytes_unsent > 0) out += fmt::format(", {} still unsent", human_bytes(d.bytes_unsent));
    out += "\n";
    if (d.with_acked > 0) {
      out += fmt::format("  {} with acknowledgements logged: {} of {} acknowledged ({})\n", group_digits(d.with_acked),
                         human_bytes(d.bytes_acked), human_bytes(d.bytes_out_with_acked),
                         pct(static_cast<double>(d.bytes_acked) /
                             static_cast<double>(std::max<std::uint64_t>(d.bytes_out_with_acked, 1))));
      std::string dist;
      for (std::size_t i = 0; i < d.acked_fraction.size(); ++i) {
        dist += fmt::format("{}{}-{}%: {}", i ? ", " : "", i * 10, i * 10 + 10, d.acked_fraction[i]);
      }
      out += "  acknowledged share: " + wrap(dist, width, 22) + "\n";
    }
  }

  section(out, "Wasted work (handler time after the client left)");
  if (r.wasted_by_route.empty()) {
    out += "  none logged\n";
  } else {
    out += fmt::format("  {:.1f} s in all, {} requests cancelled\n", r.wasted_ms / 1000, group_digits(r.cancelled));
    Table t({"route", "wasted", "departures"});
    for (std::size_t i = 0; i < std::min(r.wasted_by_route.size(), kRows); ++i) {
      const Row& w = r.wasted_by_route[i];
      t.row({w.key, fmt::format("{:.1f}s", w.wasted_ms / 1000), group_digits(w.departures)});
    }
    t.render(out, width);
  }
}

// Cut-short 200s, and how they were told: logged by the format, or inferred from sizes.
void cut_short_section(std::string& out, const Report& r, std::size_t width) {
  const CutShort& cs = r.cut_short;
  if (cs.judged == 0 && cs.exact == 0) return;
  section(out, "Responses cut short (a 200 whose body stopped before its end)");
  if (cs.exact > 0)
    out += fmt::format("  {} exact: the log records whether each response was complete\n", group_digits(cs.exact));
  if (cs.inferred > 0 || cs.exact == 0) {
    out += "  " +
           wrap(fmt::format("{} inferred: a 200 to a GET shorter than the size its path is served at in full "
                            "({} downloads judged, {} paths with a full size)",
                            group_digits(cs.inferred), group_digits(cs.judged), group_digits(cs.sized_paths)),
                width, 2) +
           "\n";
  }
  rows_table(out, width, "Cut short by network and route", "network route", cs.pairs, false);
}

std::string ms_or_dash(double ms) {
  return ms >= 0 ? fmt::format("{:.1f}ms", ms) : "-";
}

// A reverse proxy's upstreams: how their requests ended, their failures by outcome, and the piles.
void upstream_section(std::string& out, const Report& r, std::size_t width) {
  if (r.upstreams.empty()) return;
  section(out, "Upstreams (proxied requests)");
  Table t({"upstream", "requests", "failures", "ratio", "5xx", "retries", "connect", "head", "±"});
  std::string outcomes;
  for (const UpstreamRow& u : r.upstreams) {
    double ratio = static_cast<double>(u.failures) / static_cast<double>(std::max<std::uint64_t>(u.requests, 1));
    t.row({u.upstream, group_digits(u.requests), group_digits(u.failures), pct(ratio), group_digits(u.server_errors),
           group_digits(u.retries), ms_or_dash(u.connect_ms), ms_or_dash(u.header_ms), group_digits(u.error)});
    std::string how = upstream_outcomes(u);
    if (u.reused_failures > 0) how += fmt::format(" ({} on reused connections)", group_digits(u.reused_failures));
    if (!how.empty()) outcomes += "  " + wrap(u.upstream + ": " + how, width, 4) + "\n";
  }
  t.render(out, width);
  out += outcomes;
  for (const UpstreamPile& p : r.upstream_piles) {
    std::string timer = p.timer == Timer::kNone ? "no proxy timer" : fmt::format("{} timer", name(p.timer));
    out += "  " +
           wrap(fmt::format("pile: {} {}: {} answered {} between {:.1f} and {:.1f} s ({}; {} in the whole pile)",
                            p.upstream, p.route, group_digits(p.count), p.status, p.from, p.to, timer,
                            group_digits(p.pile)),
                width, 4) +
           "\n";
  }
}

std::string bytes_or_dash(std::uint64_t b, bool logged) {
  return logged ? human_bytes(b) : "-";
}

// Top rows by requests: what the traffic is made of.
void requests_table(std::string& out, std::size_t width, std::string_view title, const std::string& key_name,
                    const Report& r, const std::vector<Row>& rows) {
  if (rows.empty()) return;
  section(out, title);
  Table t({key_name, "requests", "share", "bytes", "departures", "±"});
  for (std::size_t i = 0; i < std::min(rows.size(), kRows); ++i) {
    const Row& row = rows[i];
    double share = static_cast<double>(row.requests) / static_cast<double>(std::max<std::uint64_t>(r.requests, 1));
    t.row({row.key, group_digits(row.requests), pct(share), bytes_or_dash(row.bytes, r.traffic.with_bytes > 0),
           group_digits(row.departures), group_digits(row.error)});
  }
  t.render(out, width);
}

// The picture of the traffic as a whole: statuses, volume over time, the top routes and clients.
void traffic_sections(std::string& out, const Report& r, std::size_t width) {
  if (r.requests == 0) return;
  const Traffic& tr = r.traffic;
  const bool bytes = tr.with_bytes > 0;
  section(out, "Traffic");
  out += fmt::format("  {} requests", group_digits(r.requests));
  if (bytes)
    out += fmt::format(", {} served ({} per request)", human_bytes(tr.bytes_out),
                       human_bytes(tr.bytes_out / tr.with_bytes));
  out += "\n";
  Table classes({"status", "requests", "share"});
  for (std::size_t k : kStatusClassOrder) {
    if (tr.status_classes[k] == 0) continue;
    classes.row({std::string(kStatusClassNames[k]), group_digits(tr.status_classes[k]),
                 pct(static_cast<double>(tr.status_classes[k]) / static_cast<double>(r.requests))});
  }
  classes.render(out, width);
  std::string codes;
  for (std::size_t i = 0; i < std::min<std::size_t>(tr.statuses.size(), 12); ++i) {
    codes += fmt::format("{}{} {}", i ? ", " : "", tr.statuses[i].key, group_digits(tr.statuses[i].count));
  }
  if (!codes.empty()) out += "  codes: " + wrap(codes, width, 9) + "\n";

  if (!r.timeline.empty()) {
    auto [rows, unit] = group_timeline(r, 30);
    section(out, fmt::format("Requests over time (per {})", unit));
    std::uint64_t peak = 1;
    for (const auto& b : rows) peak = std::max(peak, b.requests);
    Table t({"time (UTC)", "requests", "bytes", ""}, true);
    for (const auto& b : rows) {
      t.row({format_iso8601(b.start_ms).substr(0, 16), group_digits(b.requests), bytes_or_dash(b.bytes, bytes),
             bar(static_cast<double>(b.requests) / static_cast<double>(peak), width > 80 ? 30 : 15)});
    }
    t.render(out, width);
  }
  requests_table(out, width, "Top routes by requests", "route", r, tr.routes);
  requests_table(out, width, "Top clients by requests", "client", r, tr.clients);
  requests_table(out, width, "User agents by requests (families)", "family", r, r.user_agents);
}

}  // namespace

GroupedTimeline group_timeline(const Report& r, std::size_t max_rows) {
  GroupedTimeline g;
  const std::size_t group = std::max<std::size_t>(1, (r.timeline.size() + max_rows - 1) / max_rows);
  g.unit = group > 1 ? fmt::format("{} {}s", group, r.bucket) : r.bucket;
  for (std::size_t i = 0; i < r.timeline.size(); i += group) {
    TimeBucket b = r.timeline[i];
    for (std::size_t j = i + 1; j < std::min(i + group, r.timeline.size()); ++j) {
      const TimeBucket& n = r.timeline[j];
      b.requests += n.requests;
      b.bytes += n.bytes;
      b.departures += n.departures;
      for (std::size_t o = 0; o < kOutcomeCount; ++o) b.by_outcome[o] += n.by_outcome[o];
    }
    g.rows.push_back(b);
  }
  return g;
}

std::string group_digits(std::uint64_t n) {
  std::string s = std::to_string(n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<std::size_t>(i), ",");
  return s;
}

std::string upstream_outcomes(const UpstreamRow& u) {
  std::string how;
  for (std::size_t o = 0; o < kOutcomeCount; ++o) {
    if (upstream_failure(static_cast<Outcome>(o)) && u.by_outcome[o] > 0)
      how += fmt::format("{}{} {}", how.empty() ? "" : ", ", kOutcomeNames[o], group_digits(u.by_outcome[o]));
  }
  return how;
}

std::string human_bytes(std::uint64_t b) {
  if (b >= (1ULL << 30)) return fmt::format("{:.1f} GiB", static_cast<double>(b) / (1ULL << 30));
  if (b >= (1ULL << 20)) return fmt::format("{:.1f} MiB", static_cast<double>(b) / (1ULL << 20));
  if (b >= (1ULL << 10)) return fmt::format("{:.1f} KiB", static_cast<double>(b) / (1ULL << 10));
  return fmt::format("{} B", b);
}

std::string render_text(const Report& r, std::size_t width) {
  width = std::clamp<std::size_t>(width, 60, 240);
  std::string out;
  out += fmt::format("unbroken analyze: {} input{}, {} lines", r.inputs.size(), r.inputs.size() == 1 ? "" : "s",
                     group_digits(r.lines));
  if (r.first_ms != kNoTime) {
    out += fmt::format(", {} .. {}", format_iso8601(r.first_ms).substr(0, 19), format_iso8601(r.last_ms).substr(0, 19));
  }
  out += "\n";
  for (const InputSummary& in : r.inputs) {
    std::string line =
        fmt::format("  {} ({}{}): {} lines", in.name, in.format, in.gzip ? ", gzip" : "", group_digits(in.lines));
    append_lines(line, "unparsed", in.unparsed, in.first_unparsed);
    append_lines(line, "repaired", in.repaired, in.first_repaired);
    if (!in.error.empty()) line += fmt::format("; stopped early: {}", in.error);
    out += line + "\n";
  }
  double rate = r.requests ? static_cast<double>(r.departures) / static_cast<double>(r.requests) : 0;
  out +=
      fmt::format("  requests {}, departures {} ({})", group_digits(r.requests), group_digits(r.departures), pct(rate));
  if (r.filtered_out > 0) out += fmt::format(", {} left out by the filters", group_digits(r.filtered_out));
  out += "\n";

  section(out, "Findings");
  if (r.findings.empty()) out += "  (none)\n";
  for (std::size_t i = 0; i < r.findings.size(); ++i) {
    std::string prefix = fmt::format("  {}. ", i + 1);
    out += prefix + wrap(r.findings[i].text, width, prefix.size()) + "\n";
  }

  if (r.departures > 0) departure_sections(out, r, width);
  cut_short_section(out, r, width);
  upstream_section(out, r, width);
  traffic_sections(out, r, width);

  section(out, "Accuracy");
  out += wrap(
             "Top-k tables come from Space-Saving sketches: memory is fixed whatever the number of distinct keys, "
             "and a count may be overestimated by at most the ± column, itself at most N/k (N counted, k counters):",
             width, 2)
             .insert(0, "  ");
  out += "\n";
  for (const SketchInfo& s : r.sketches) {
    out += fmt::format("  {:<18} k={:<6} N={:<12} max error {}{}\n", s.table, s.capacity, group_digits(s.total),
                       group_digits(s.max_error), s.max_error == 0 ? " (exact)" : "");
  }
  return out;
}

}  // namespace unbroken::analyze
