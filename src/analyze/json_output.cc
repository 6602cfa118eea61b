#include <fmt/format.h>

#include "analyze/output.h"
#include "analyze/time_parse.h"
#include "base/text.h"

namespace unbroken::analyze {
namespace {

// Strings come from logs: base/text.h escapes what JSON needs escaped, and any byte that is not
// well-formed UTF-8 (nginx and HAProxy logs may carry raw bytes) becomes \u00XX.
void str(std::string& out, std::string_view s) {
  append_json_string(out, s);
}

std::string num(double d) {
  return fmt::format("{:.4g}", d);
}
std::string ms(double d) {
  return fmt::format("{:.3f}", d);
}

void key(std::string& out, std::string_view k) {
  str(out, k);
  out.push_back(':');
}

void time_or_null(std::string& out, std::int64_t t) {
  if (t == kNoTime) {
    out += "null";
  } else {
    str(out, format_iso8601(t));
  }
}

void rows(std::string& out, std::string_view name, const std::vector<Row>& rs) {
  key(out, name);
  out += "[";
  for (std::size_t i = 0; i < rs.size(); ++i) {
    const Row& r = rs[i];
    if (i) out += ",";
    out += "{";
    key(out, "key"), str(out, r.key);
    out += fmt::format(R"(,"requests":{},"departures":{},"ratio":{},"error":{},"wasted_ms":{},"partial":{},)"
                       R"("bytes_out":{},"bytes_acked":{},"bytes":{}}})",
                       r.requests, r.departures, num(r.ratio), r.error, ms(r.wasted_ms), r.partial, r.bytes_out,
                       r.bytes_acked, r.bytes);
  }
  out += "]";
}

void numbers(std::string& out, const std::vector<std::uint64_t>& v) {
  out += "[";
  for (std::size_t k = 0; k < v.size(); ++k) out += fmt::format("{}{}", k ? "," : "", v[k]);
  out += "]";
}

// The traffic as a whole, and the cut-short responses with how they were told.
void traffic(std::string& out, const Report& r) {
  const Traffic& t = r.traffic;
  out += fmt::format(R"("traffic":{{"requests":{},"bytes_out":{},"with_bytes":{},"status_classes":{{)", r.requests,
                     t.bytes_out, t.with_bytes);
  for (std::size_t c = 0; c < kStatusClassNames.size(); ++c)
    out += fmt::format(R"({}"{}":{})", c ? "," : "", kStatusClassNames[c], t.status_classes[c]);
  out += R"(},"statuses":[)";
  for (std::size_t i = 0; i < t.statuses.size(); ++i) {
    out += fmt::format(R"({}{{"status":{},"count":{}}})", i ? "," : "", t.statuses[i].key, t.statuses[i].count);
  }
  out += "],";
  rows(out, "routes", t.routes);
  out += ",";
  rows(out, "clients", t.clients);
  out += ",";
  rows(out, "user_agents", r.user_agents);
  const CutShort& cs = r.cut_short;
  out += fmt::format(R"(}},"cut_short":{{"exact":{},"inferred":{},"judged":{},"sized_paths":{},)", cs.exact,
                     cs.inferred, cs.judged, cs.sized_paths);
  rows(out, "by_network_route", cs.pairs);
  out += "},";
}

void outcome_map(std::string& out, const std::array<std::uint64_t, kOutcomeCount>& a) {
  out += "{";
  for (std::size_t o = 0; o < kOutcomeCount; ++o) {
    if (o) out += ",";
    key(out, kOutcomeNames[o]);
    out += std::to_string(a[o]);
  }
  out += "}";
}

void shares(std::string& out, const std::vector<Share>& v) {
  out += "[";
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) out += ",";
    out += "{";
    key(out, "key"), str(out, v[i].key);
    out += fmt::format(R"(,"count":{}}})", v[i].count);
  }
  out += "]";
}

// "upstreams": the proxy's upstreams with their outcomes; "upstream_piles": failures at one duration.
void upstreams(std::string& out, const Report& r) {
  out += R"("upstreams":[)";
  for (std::size_t i = 0; i < r.upstreams.size(); ++i) {
    const UpstreamRow& u = r.upstreams[i];
    out += i ? ",{" : "{";
    key(out, "upstream"), str(out, u.upstream);
    out += fmt::format(R"(,"requests":{},"failures":{},"server_errors":{},"retries":{},"reused_failures":{},)"
                       R"("connect_ms":{},"header_ms":{},"error":{},"by_outcome":)",
                       u.requests, u.failures, u.server_errors, u.retries, u.reused_failures,
                       u.connect_ms >= 0 ? ms(u.connect_ms) : "null", u.header_ms >= 0 ? ms(u.header_ms) : "null",
                       u.error);
    outcome_map(out, u.by_outcome);
    out += "}";
  }
  out += R"(],"upstream_piles":[)";
  for (std::size_t i = 0; i < r.upstream_piles.size(); ++i) {
    const UpstreamPile& p = r.upstream_piles[i];
    out += i ? ",{" : "{";
    key(out, "upstream"), str(out, p.upstream);
    out += ",";
    key(out, "route"), str(out, p.route);
    out += fmt::format(R"(,"status":{},"seconds":{:.3f},"from":{:.1f},"to":{:.1f},"count":{},"pile":{},"timer":)",
                       p.status, p.seconds, p.from, p.to, p.count, p.pile);
    if (p.timer == Timer::kNone) {
      out += "null";
    } else {
      str(out, name(p.timer));
    }
    out += fmt::format(R"(,"timeout_ms":{},"known":)", p.timeout_ms);
    if (p.known.empty()) {
      out += "null";
    } else {
      str(out, p.known);
    }
    out += "}";
  }
  out += "],";
}

// {"total":N,"error":E,"top":[{"key":"no shared cipher","count":20},...]}
void reasons(std::string& out, std::string_view name, const Reasons& rs) {
  key(out, name);
  out += fmt::format(R"({{"total":{},"error":{},"top":)", rs.total, rs.error);
  shares(out, rs.top);
  out += "},";
}

}  // namespace

std::string render_json(const Report& r) {
  std::string out;
  out.reserve(64 << 10);
  out += R"({"schema":"unbroken-analyze/1","inputs":[)";
  for (std::size_t i = 0; i < r.inputs.size(); ++i) {
    const InputSummary& in = r.inputs[i];
    if (i) out += ",";
    out += "{";
    key(out, "name"), str(out, in.name);
    out += ",";
    key(out, "format"), str(out, in.format);
    out += fmt::format(R"(,"gzip":{},"bytes":{},"lines":{},"unparsed":{},"first_unparsed_lines":)", in.gzip, in.bytes,
                       in.lines, in.unparsed);
    numbers(out, in.first_unparsed);
    out += fmt::format(R"(,"repaired":{},"first_repaired_lines":)", in.repaired);
    numbers(out, in.first_repaired);
    out += R"(,"completion":)";
    if (in.completion.empty()) {
      out += "null";
    } else {
      str(out, in.completion);
    }
    out += R"(,"error":)";
    if (in.error.empty()) {
      out += "null";
    } else {
      str(out, in.error);
    }
    out += "}";
  }
  out += "],";
  out += R"("span":{"from":)";
  time_or_null(out, r.first_ms);
  out += R"(,"to":)";
  time_or_null(out, r.last_ms);
  out += R"(,"bucket":)";
  str(out, r.bucket);
  out += "},";
  double rate = r.requests ? static_cast<double>(r.departures) / static_cast<double>(r.requests) : 0;
  out += fmt::format(R"("totals":{{"lines":{},"unparsed":{},"repaired":{},"filtered_out":{},"requests":{},)"
                     R"("departures":{},"departure_rate":{},"by_outcome":)",
                     r.lines, r.unparsed, r.repaired, r.filtered_out, r.requests, r.departures, num(rate));
  outcome_map(out, r.by_outcome);
  out += R"(,"departures_by_phase":{)";
  for (std::size_t p = 0; p < kPhaseCount; ++p) {
    if (p) out += ",";
    key(out, kPhaseNames[p]);
    out += std::to_string(r.by_phase[p]);
  }
  out += R"(},"outcome_phase":{)";
  for (std::size_t o = 0; o < kOutcomeCount; ++o) {
    if (o) out += ",";
    key(out, kOutcomeNames[o]);
    out += "{";
    for (std::size_t p = 0; p < kPhaseCount; ++p) {
      if (p) out += ",";
      key(out, kPhaseNames[p]);
      out += std::to_string(r.outcome_phase[o][p]);
    }
    out += "}";
  }
  out += "}},";

  out += R"("findings":[)";
  for (std::size_t i = 0; i < r.findings.size(); ++i) {
    const Finding& f = r.findings[i];
    if (i) out += ",";
    out += fmt::format(R"({{"rank":{},"kind":)", i + 1);
    str(out, f.kind);
    out += R"(,"subject":)";
    str(out, f.subject);
    out += fmt::format(R"(,"score":{},"text":)", num(f.score));
    str(out, f.text);
    out += "}";
  }
  out += "],";
  traffic(out, r);

  out += R"("timeline":[)";
  for (std::size_t i = 0; i < r.timeline.size(); ++i) {
    const TimeBucket& b = r.timeline[i];
    if (i) out += ",";
    out += R"({"start":)";
    time_or_null(out, b.start_ms);
    out += fmt::format(R"(,"requests":{},"bytes":{},"departures":{},"by_outcome":)", b.requests, b.bytes, b.departures);
    outcome_map(out, b.by_outcome);
    out += "}";
  }
  out += "],";

  out += R"("cliffs":[)";
  for (std::size_t i = 0; i < r.cliffs.size(); ++i) {
    const Cliff& c = r.cliffs[i];
    if (i) out += ",";
    out += fmt::format(R"({{"seconds":{:.3f},"from":{:.1f},"to":{:.1f},"count":{},"share":{},"background":{},"known":)",
                       c.seconds, c.from, c.to, c.count, num(c.share), num(c.background));
    if (c.known.empty()) {
      out += "null";
    } else {
      str(out, c.known);
    }
    out += R"(,"server_timer":)";
    if (c.server_timer == Timer::kNone) {
      out += "null";
    } else {
      out += "{";
      key(out, "timer"), str(out, name(c.server_timer));
      out += fmt::format(R"(,"timeout_ms":{},"count":{}}})", c.server_timeout_ms, c.server_timer_count);
    }
    out += R"(,"routes":)";
    shares(out, c.routes);
    out += R"(,"networks":)";
    shares(out, c.networks);
    out += "}";
  }
  out += "],";

  upstreams(out, r);
  reasons(out, "tls_handshake_failures", r.tls_failures);
  reasons(out, "upstream_errors", r.upstream_errors);

  out += R"("routes":{)";
  rows(out, "by_departures", r.routes_by_departures);
  out += ",";
  rows(out, "by_ratio", r.routes_by_ratio);
  out += R"(},"clients":{)";
  rows(out, "by_departures", r.ips);
  out += ",";
  rows(out, "by_ratio", r.ips_by_ratio);
  out += R"(},"networks":{)";
  rows(out, "by_departures", r.networks);
  out += ",";
  rows(out, "by_ratio", r.networks_by_ratio);
  out += "},";
  rows(out, "user_agents", r.user_agents);
  out += ",";

  out += R"("timers":[)";
  for (std::size_t i = 0; i < r.timers.size(); ++i) {
    if (i) out += ",";
    out += "{";
    key(out, "timer"), str(out, name(r.timers[i].timer));
    out += fmt::format(R"(,"count":{},"timeout_ms":{}}})", r.timers[i].count, r.timers[i].timeout_ms);
  }
  out += "],";

  const Delivery& d = r.delivery;
  out += fmt::format(R"("delivery":{{"partial":{},"bytes_out":{},"bytes_unsent":{},"with_acked":{},)"
                     R"("bytes_out_with_acked":{},"bytes_acked":{},"acked_fraction_tenths":[)",
                     d.partial, d.bytes_out, d.bytes_unsent, d.with_acked, d.bytes_out_with_acked, d.bytes_acked);
  for (std::size_t i = 0; i < d.acked_fraction.size(); ++i)
    out += fmt::format("{}{}", i ? "," : "", d.acked_fraction[i]);
  out += "]},";
  out += fmt::format(R"("wasted":{{"total_ms":{},"cancelled":{},)", ms(r.wasted_ms), r.cancelled);
  rows(out, "by_route", r.wasted_by_route);
  out += "},";

  out += fmt::format(R"("duration_histogram":{{"bin_seconds":{},"departures_with_duration":{},"counts":[)",
                     num(r.hist_bin_s), r.with_duration);
  for (std::size_t i = 0; i < r.histogram.size(); ++i) out += fmt::format("{}{}", i ? "," : "", r.histogram[i]);
  out += "]},";

  out += R"("sketches":[)";
  for (std::size_t i = 0; i < r.sketches.size(); ++i) {
    const SketchInfo& s = r.sketches[i];
    if (i) out += ",";
    out += "{";
    key(out, "table"), str(out, s.table);
    out += fmt::format(R"(,"algorithm":"space-saving","capacity":{},"total":{},"max_error":{}}})", s.capacity, s.total,
                       s.max_error);
  }
  out += "]}\n";
  return out;
}

}  // namespace unbroken::analyze
