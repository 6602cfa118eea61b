#include "chaos/report.h"

#include <fmt/format.h>

#include <algorithm>

#include "base/text.h"

namespace unbroken::chaos {

void Sample::add(double v, std::mt19937_64& rng) {
  ++seen_;
  max_ = std::max(max_, v);
  if (values_.size() < kCapacity) {
    values_.push_back(v);
    return;
  }
  // Reservoir sampling: every value seen so far stays with equal probability.
  std::uniform_int_distribution<std::uint64_t> pick(0, seen_ - 1);
  if (auto i = pick(rng); i < kCapacity) values_[i] = v;
}

double Sample::percentile(double q) const {
  if (values_.empty()) return 0;
  std::vector<double> v = values_;
  auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

std::uint64_t GoodStats::error_count() const {
  std::uint64_t n = 0;
  for (const auto& [kind, count] : errors) n += count;
  return n;
}

void judge(Report& r, std::uint64_t max_good_errors, std::chrono::milliseconds good_timeout) {
  const GoodStats& g = r.good;
  bool has_good = r.kinds[static_cast<std::size_t>(Kind::kGood)].clients > 0;
  std::uint64_t errors = g.error_count();
  if (!has_good) {
    r.passed = true;
    r.verdict = "no good clients in the mix: nothing to judge";
  } else if (g.requests == 0) {
    r.passed = false;
    r.verdict = "the target never answered a good client";
  } else if (errors > max_good_errors) {
    std::string kinds;
    for (const auto& [kind, count] : g.errors) kinds += fmt::format("{}{} {}", kinds.empty() ? "" : ", ", kind, count);
    r.passed = false;
    r.verdict = fmt::format("{} good-client errors (more than {}): {}", errors, max_good_errors, kinds);
  } else if (g.longest_wait_ms > static_cast<double>(good_timeout.count())) {
    r.passed = false;
    r.verdict = fmt::format("the target stopped answering: good clients waited {:.1f} s with no answer",
                            g.longest_wait_ms / 1000);
  } else {
    r.passed = true;
    r.verdict = fmt::format(
        "good clients were served throughout: {} requests, p99 {:.1f} ms, longest wait {:.0f} ms, {} errors",
        g.requests, g.latency_ms.percentile(0.99), g.longest_wait_ms, errors);
  }
}

std::string render_text(const Report& r) {
  std::string out = fmt::format("unbroken chaos {} for {:.1f} s, {} connections, seed {}\n\n", r.target, r.seconds,
                                r.connections, r.seed);
  const GoodStats& g = r.good;
  if (r.kinds[0].clients > 0) {
    out +=
        fmt::format("good ({} clients): {} requests, {:.0f} req/s, latency p50 {:.2f} ms, p99 {:.2f} ms, max {:.1f} ms",
                    r.kinds[0].clients, g.requests, r.seconds > 0 ? static_cast<double>(g.requests) / r.seconds : 0,
                    g.latency_ms.percentile(0.5), g.latency_ms.percentile(0.99), g.latency_ms.max());
    out += fmt::format(", errors {}", g.error_count());
    for (const auto& [kind, count] : g.errors) out += fmt::format(" ({} {})", kind, count);
    out += "\n\n";
  }
  // Short column titles; the legend below spells them out.
  out += fmt::format("{:<19} {:>7} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9} {:>9}  statuses\n",
                     "kind", "clients", "attempts", "answered", "408", "closed", "reset", "nothing", "left", "refused",
                     "tls_err", "p50 ms", "max ms");
  for (std::size_t k = 1; k < kKindCount; ++k) {
    const KindStats& s = r.kinds[k];
    if (s.clients == 0) continue;
    out += fmt::format("{:<19} {:>7} {:>8}", name(static_cast<Kind>(k)), s.clients, s.attempts);
    out += fmt::format(" {:>8}", s.reactions[0]);
    for (std::size_t i = 1; i < kReactionCount; ++i) out += fmt::format(" {:>7}", s.reactions[i]);
    out += fmt::format(" {:>9.1f} {:>9.1f} ", s.reaction_ms.percentile(0.5), s.reaction_ms.max());
    for (const auto& [status, count] : s.statuses) out += fmt::format(" {}x{}", status, count);
    for (const auto& [alert, count] : s.alerts) out += fmt::format(" alert:{}x{}", alert, count);
    for (const auto& [reason, count] : s.tls_errors) out += fmt::format(" ({} {})", reason, count);
    out += "\n";
  }
  out +=
      "\nanswered: a response head; 408: a 408 response; closed: FIN without a response; reset: RST;\n"
      "nothing: no reaction by the end of the run; left: the client left by design first; refused: no\n"
      "connection; tls_err: TLS failed at the client (its reasons follow). Times run from the\n"
      "connection to the server's reaction. alert: a TLS alert the server sent before it hung up.\n\n";
  out += fmt::format("verdict: {}: {}\n", r.passed ? "PASS" : "FAIL", r.verdict);
  return out;
}

std::string render_json(const Report& r) {
  // Every string here is ours (kind and reaction names, error kinds) except the target, which
  // parse_url() limited to printable characters; all of them are escaped as any JSON string is.
  auto quoted = [](std::string_view s) {
    std::string q;
    append_json_string(q, s);
    return q;
  };
  auto sample = [](const Sample& s) {
    return fmt::format(R"({{"count":{},"p50":{:.3f},"p99":{:.3f},"max":{:.3f}}})", s.count(), s.percentile(0.5),
                       s.percentile(0.99), s.max());
  };
  const GoodStats& g = r.good;
  std::string out = fmt::format(R"({{"target":{},"seconds":{:.3f},"connections":{},"seed":{},)", quoted(r.target),
                                r.seconds, r.connections, r.seed);
  out += fmt::format(R"("good":{{"clients":{},"requests":{},"requests_per_s":{:.1f},"body_bytes":{},"latency_ms":{},)",
                     r.kinds[0].clients, g.requests, r.seconds > 0 ? static_cast<double>(g.requests) / r.seconds : 0,
                     g.body_bytes, sample(g.latency_ms));
  // {"name":count,...}
  auto counts = [&quoted](const std::map<std::string, std::uint64_t>& m) {
    std::string o = "{";
    for (const auto& [item, count] : m) o += fmt::format("{}{}:{}", o.size() > 1 ? "," : "", quoted(item), count);
    return o + "}";
  };
  out += fmt::format(R"("longest_wait_ms":{:.1f},"errors":{},"error_kinds":{}}},"kinds":{{)", g.longest_wait_ms,
                     g.error_count(), counts(g.errors));
  bool first = true;
  for (std::size_t k = 1; k < kKindCount; ++k) {
    const KindStats& s = r.kinds[k];
    if (s.clients == 0) continue;
    out += fmt::format(R"({}{}:{{"clients":{},"attempts":{})", first ? "" : ",", quoted(name(static_cast<Kind>(k))),
                       s.clients, s.attempts);
    first = false;
    for (std::size_t i = 0; i < kReactionCount; ++i)
      out += fmt::format(R"(,{}:{})", quoted(name(static_cast<Reaction>(i))), s.reactions[i]);
    out += ",\"statuses\":{";
    bool first_status = true;
    for (const auto& [status, count] : s.statuses) {
      out += fmt::format(R"({}"{}":{})", first_status ? "" : ",", status, count);
      first_status = false;
    }
    out += fmt::format(R"(}},"alerts":{},"tls_errors":{},"reaction_ms":{}}})", counts(s.alerts), counts(s.tls_errors),
                       sample(s.reaction_ms));
  }
  out += fmt::format(R"(}},"verdict":{{"passed":{},"reason":{}}}}})", r.passed, quoted(r.verdict));
  out += "\n";
  return out;
}

}  // namespace unbroken::chaos
