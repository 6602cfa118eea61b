// Cliff detection and the ranked findings: the part of the analyzer that turns counts into sentences.

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "analyze/analyzer.h"
#include "analyze/output.h"

namespace unbroken::analyze {
namespace {

// Defaults that cut connections at a fixed time. Only used to name a cliff found in the data.
constexpr std::array<KnownTimeout, 4> kKnown{{
    {30, "a common client and gateway default (Heroku's router, many HTTP client libraries)"},
    {60, "the default idle timeout of AWS Application and Classic Load Balancers (and nginx's proxy_read_timeout)"},
    {100, "Cloudflare's default proxy read timeout (it answers 524)"},
    {120, "a common proxy and load-balancer default"},
}};
// What cuts an upstream's answer at a fixed time, seen from its proxy.
constexpr std::array<KnownTimeout, 2> kKnownUpstream{{
    {30, "gunicorn's default worker timeout (--timeout): it kills a sync worker that takes longer"},
    {60, "nginx's default proxy_read_timeout and unbroken's --upstream-header-timeout"},
}};

std::string pct(double f) {
  return fmt::format("{:.0f}%", f * 100);
}
std::string pct1(double f) {
  return fmt::format("{:.1f}%", f * 100);
}

std::string seconds(double s) {
  if (s >= 10) return fmt::format("{:.0f} s", s);
  return fmt::format("{:.1f} s", s);
}

std::string timeout_text(std::int64_t ms) {
  if (ms < 0) return "setting not logged";
  if (ms % 1000 == 0) return fmt::format("{} s", ms / 1000);
  return fmt::format("{} ms", ms);
}

std::vector<Share> merge_top(const std::unordered_map<std::string, std::uint64_t>& m, std::size_t n) {
  std::vector<Share> v;
  for (const auto& [k, c] : m) {
    if (c > 1) v.push_back(Share{k, c});
  }
  std::sort(v.begin(), v.end(),
            [](const Share& a, const Share& b) { return a.count != b.count ? a.count > b.count : a.key < b.key; });
  if (v.size() > n) v.resize(n);
  return v;
}

// Claims no more than the inputs show: a format that logs no completion cannot say that every response
// was complete, only that none looked cut.
std::string no_departures(const Report& r) {
  bool inferred = false, unknown = false;
  std::string_view format;  // of the first input whose cuts are inferred
  for (const InputSummary& in : r.inputs) {
    if (in.completion == "inferred" && !inferred) format = in.format;
    inferred |= in.completion == "inferred";
    unknown |= in.completion.empty() && in.lines > in.unparsed;
  }
  if (!inferred && !unknown) {
    return fmt::format("No departures: all {} requests ended with a complete response.", r.requests);
  }
  std::string text = fmt::format("No departures seen in {} requests: no status shows one (499, 408, 504)", r.requests);
  if (inferred) {
    text += fmt::format(
        " and no 200 was shorter than the size its path is served at in full ({} of {} 2xx responses could be "
        "judged). The {} format does not say whether a response was complete, so this is inferred: a download cut "
        "short on a path never served in full, or whose size varies, would not show",
        r.cut_short.judged, r.traffic.status_classes[2], format);
  }
  return text + ".";
}

}  // namespace

// Cut-short 200s: the network and route with the highest share of its downloads cut, against the
// share of all other judged downloads, and the total when no network stands out.
void Analyzer::add_cut_short(Report& r) const {
  const CutShort& cs = r.cut_short;
  const std::uint64_t cuts = cs.exact + cs.inferred;
  if (cuts < 10) return;
  const double deps = static_cast<double>(std::max<std::uint64_t>(r.departures, 1));
  const std::string how = cs.inferred == 0
                              ? "exact: the log records whether each response was complete"
                              : fmt::format(
                                    "inferred: each was a 200 shorter than the size its path is served at in "
                                    "full, judged on {} downloads of {} paths",
                                    cs.judged, cs.sized_paths);
  std::size_t named = 0;
  for (const Row& p : cs.pairs) {
    if (named == 3) break;
    std::uint64_t n = cs.judged > p.requests ? cs.judged - p.requests : 0;
    std::uint64_t d = cuts > p.departures ? cuts - p.departures : 0;
    double others = n > 0 ? static_cast<double>(d) / static_cast<double>(n) : 0;
    if (p.requests < 20 || p.departures < 10 || p.ratio < std::max(0.2, 3 * others)) continue;
    auto sp = p.key.find(' ');
    std::string net = p.key.substr(0, sp), route = p.key.substr(sp + 1);
    route = route.substr(route.find(' ') + 1);  // the method: downloads are GETs
    r.findings.push_back(
        {"cut_short", p.key,
         fmt::format("{} abandons {} of {} downloads: {} of {} cut short, {} sent before the cuts ({} for other "
                     "downloads; {}).",
                     net, pct(p.ratio), route, p.departures, p.requests, human_bytes(p.bytes_out), pct1(others), how),
         1.2 * static_cast<double>(p.departures) / deps + 0.25});
    ++named;
  }
  if (named > 0) return;
  r.findings.push_back(
      {"cut_short", "",
       fmt::format("{} of {} downloads ({}) were cut short before their last byte ({}).", cuts, cs.judged,
                   pct1(static_cast<double>(cuts) / static_cast<double>(std::max<std::uint64_t>(cs.judged, 1))), how),
       0.8 * static_cast<double>(cuts) / deps + 0.1});
}

// Upstream failures: where they pile up at one duration per upstream and route (a timeout), then
// by upstream and outcome for what no pile explains.
void Analyzer::add_upstream_findings(Report& r) const {
  const double deps = static_cast<double>(std::max<std::uint64_t>(r.departures, 1));
  for (const UpstreamPile& p : r.upstream_piles) {
    std::string answers = p.status > 0 ? fmt::format("answers {}", p.status) : std::string("fails");
    std::string text = fmt::format("upstream {} {} at {} on {}: {} requests ended between {:.1f} and {:.1f} s",
                                   p.upstream, answers, seconds(p.seconds), p.route, p.count, p.from, p.to);
    if (p.timer != Timer::kNone) {
      text += fmt::format(
          ", cut by the proxy's {} timer ({}). The application takes longer than that on this route: "
          "make it answer sooner, or give the route a longer timer",
          name(p.timer), timeout_text(p.timeout_ms));
    } else {
      text += ", with no timer of the proxy's firing: the upstream ended them itself";
    }
    // A timer whose setting the log names needs no well-known default to explain it.
    bool name_known = !p.known.empty() && (p.timer == Timer::kNone || p.timeout_ms < 0);
    text += name_known ? fmt::format(". {}.", p.known) : ".";
    r.findings.push_back({"upstream_pile", p.upstream + " " + p.route, std::move(text),
                          1.5 * static_cast<double>(p.count) / deps + 0.3});
  }
  for (const UpstreamRow& u : r.upstreams) {
    std::uint64_t piled = 0;
    for (const UpstreamPile& p : r.upstream_piles) piled += p.upstream == u.upstream ? p.count : 0;
    double share = static_cast<double>(u.failures) / static_cast<double>(std::max<std::uint64_t>(u.requests, 1));
    if (u.failures < 10 || share < 0.01 || piled * 10 >= u.failures * 9) continue;
    std::string text = fmt::format("upstream {} failed {} of its {} requests ({}): {}", u.upstream, u.failures,
                                   u.requests, pct1(share), upstream_outcomes(u));
    if (u.reused_failures > 0) {
      text += fmt::format(
          "; {} on a reused keep-alive connection, which the application may have closed while it was "
          "idle (keep the proxy's idle timeout below the application's keep-alive)",
          u.reused_failures);
    }
    if (u.retries > 0) text += fmt::format("; {} retries", u.retries);
    r.findings.push_back({"upstream", u.upstream, text + ".", static_cast<double>(u.failures) / deps + 0.2});
  }
}

namespace {

// What a handshake failure's reason usually means, for the reasons a server meets most.
constexpr std::array<std::pair<std::string_view, std::string_view>, 6> kTlsHints{{
    {"http request", "plain HTTP sent to the TLS port"},
    {"no shared cipher", "clients offering none of the server's ciphers: old clients or scanners"},
    {"unsupported protocol", "clients below TLS 1.2"},
    {"wrong version number", "not TLS at all"},
    {"unknown ca", "clients that do not trust the certificate's issuer: is the chain complete?"},
    {"certificate unknown", "clients that rejected the certificate"},
}};

// "\"no shared cipher\" 20 (hint), client_closed 5": a reason the log gave is quoted, an outcome is not.
std::string reason_list(const Reasons& rs) {
  std::string text;
  for (const Share& s : rs.top) {
    if (!text.empty()) text += ", ";
    bool outcome = std::find(kOutcomeNames.begin(), kOutcomeNames.end(), s.key) != kOutcomeNames.end();
    text += outcome ? fmt::format("{} {}", s.key, s.count) : fmt::format("\"{}\" {}", s.key, s.count);
    for (const auto& [reason, hint] : kTlsHints)
      if (!outcome && s.key == reason) text += fmt::format(" ({})", hint);
  }
  return text;
}

}  // namespace

void Analyzer::add_reason_findings(Report& r) {
  const double deps = static_cast<double>(std::max<std::uint64_t>(r.departures, 1));
  if (const Reasons& t = r.tls_failures; t.total > 0) {
    r.findings.push_back({"tls_handshake", t.top.empty() ? "" : t.top[0].key,
                          fmt::format("{} TLS handshakes failed ({} of departures): {}.", t.total,
                                      pct1(static_cast<double>(t.total) / deps), reason_list(t)),
                          static_cast<double>(t.total) / deps + 0.1});
  }
  if (const Reasons& u = r.upstream_errors; u.total > 0) {
    r.findings.push_back({"upstream_error", u.top.empty() ? "" : u.top[0].key,
                          fmt::format("{} upstream failures gave a reason: {}.", u.total, reason_list(u)),
                          static_cast<double>(u.total) / deps + 0.1});
  }
}

// A cliff is a narrow window of durations holding many times what its neighbourhood predicts. The
// window widens with the value (0.5%, at least one 100 ms bin either side): a 120 s timer jitters
// more in absolute terms than a 3 s one. Nothing here knows which values to expect.
std::vector<Cliff> Analyzer::find_cliffs(const Durations& d, std::span<const KnownTimeout> known,
                                         std::size_t max_piles) {
  const std::vector<std::uint64_t>& hist = d.hist;
  const auto n = static_cast<std::ptrdiff_t>(hist.size());
  auto sum = [&](std::ptrdiff_t a, std::ptrdiff_t b) {  // [a, b], clipped
    std::uint64_t s = 0;
    for (std::ptrdiff_t i = std::max<std::ptrdiff_t>(a, 0); i <= std::min(b, n - 1); ++i)
      s += hist[static_cast<std::size_t>(i)];
    return s;
  };
  const double min_share = 0.01 * static_cast<double>(d.total);
  std::vector<Cliff> found;
  for (std::ptrdiff_t i = 10; i < n; ++i) {
    std::uint64_t c = hist[static_cast<std::size_t>(i)];
    if (c == 0) continue;
    const std::ptrdiff_t w = std::max<std::ptrdiff_t>(1, std::lround(0.005 * static_cast<double>(i)));
    // The heaviest bin of its window stands for the window.
    bool peak = true;
    for (std::ptrdiff_t j = i - w; j <= i + w && peak; ++j) {
      if (j == i || j < 0 || j >= n) continue;
      std::uint64_t cj = hist[static_cast<std::size_t>(j)];
      if (cj > c || (cj == c && j < i)) peak = false;
    }
    if (!peak) continue;
    std::uint64_t in = sum(i - w, i + w);
    const std::ptrdiff_t reach = std::max<std::ptrdiff_t>(40, 10 * w);
    std::uint64_t around = sum(i - w - reach, i - w - 2) + sum(i + w + 2, i + w + reach);
    std::ptrdiff_t around_bins = std::min(i - w - 2, n - 1) - std::max<std::ptrdiff_t>(i - w - reach, 0) + 1 +
                                 std::min(i + w + reach, n - 1) - std::max(i + w + 2, std::ptrdiff_t{0}) + 1;
    double expected = around_bins > 0 ? static_cast<double>(around) / static_cast<double>(around_bins) *
                                            static_cast<double>(2 * w + 1)
                                      : 0;
    auto in_d = static_cast<double>(in);
    if (in < 20 || in_d < 6 * expected + 10 || in_d < min_share) continue;

    Cliff cl;
    double total_ms = 0;
    std::unordered_map<std::string, std::uint64_t> routes, networks;
    std::array<std::uint64_t, kTimerCount> timers{};
    std::map<std::int64_t, std::uint64_t> timeouts;
    for (std::ptrdiff_t j = std::max<std::ptrdiff_t>(i - w, 0); j <= std::min(i + w, n - 1); ++j) {
      auto u = static_cast<std::size_t>(j);
      total_ms += d.sum_ms[u];
      if (!d.detail[u]) continue;
      // Each bin keeps only 8 routes and 8 networks: count - error is what is certain of each, so a
      // cliff spread over many networks names none rather than eight with inflated counts.
      const BinDetail& b = *d.detail[u];
      for (const auto& rc : b.first.counters()) routes[rc.key] += rc.count - rc.error;
      for (const auto& nc : b.second.counters()) networks[nc.key] += nc.count - nc.error;
      for (std::size_t t = 0; t < kTimerCount; ++t) timers[t] += b.timers[t];
      for (const auto& [ms, k] : b.timeouts) timeouts[ms] += k;
    }
    cl.count = in;
    cl.seconds = total_ms / in_d / 1000;
    cl.from = static_cast<double>(std::max<std::ptrdiff_t>(i - w, 0)) * kBinMs / 1000.0;
    cl.to = static_cast<double>(i + w + 1) * kBinMs / 1000.0;
    cl.share = in_d / static_cast<double>(std::max<std::uint64_t>(d.total, 1));
    cl.background = expected;
    cl.routes = merge_top(routes, 5);
    cl.networks = merge_top(networks, 5);
    std::size_t best = 0;
    for (std::size_t t = 1; t < kTimerCount; ++t) {
      if (timers[t] > (best == 0 ? 0 : timers[best])) best = t;
    }
    if (best != 0 && timers[best] * 2 >= in) {
      cl.server_timer = static_cast<Timer>(best);
      cl.server_timer_count = timers[best];
      std::uint64_t most = 0;
      for (const auto& [ms, k] : timeouts) {
        if (k > most) most = k, cl.server_timeout_ms = ms;
      }
    }
    for (const auto& k : known) {
      if (std::abs(cl.seconds - k.seconds) <= std::max(0.5, 0.02 * k.seconds)) {
        cl.known = fmt::format("{} s is {}", k.seconds, k.who);
      }
    }
    found.push_back(std::move(cl));
    i += w;
  }
  std::sort(found.begin(), found.end(), [](const Cliff& a, const Cliff& b) { return a.count > b.count; });
  if (found.size() > max_piles) found.resize(max_piles);
  return found;
}

void Analyzer::build_cliffs(Report& r) const {
  r.cliffs = find_cliffs(durations_, kKnown, 5);
  // An upstream pile names each upstream and route holding a quarter of it or more.
  for (const Cliff& c : find_cliffs(upstream_durations_, kKnownUpstream, 5)) {
    for (const Share& who : c.routes) {
      if (who.count * 4 < c.count || r.upstream_piles.size() == 8) continue;
      auto tab = who.key.find('\t');
      UpstreamPile p{
          who.key.substr(0, tab), who.key.substr(tab + 1), 0,      c.seconds, c.from, c.to, who.count, c.count,
          c.server_timer,         c.server_timeout_ms,     c.known};
      if (!c.networks.empty()) p.status = std::atoi(c.networks[0].key.c_str());
      r.upstream_piles.push_back(std::move(p));
    }
  }
}

void Analyzer::build_findings(Report& r) const {
  auto& out = r.findings;
  if (r.requests == 0) return;
  const double deps = static_cast<double>(std::max<std::uint64_t>(r.departures, 1));
  if (r.departures == 0) {
    out.push_back({"none", "", no_departures(r), 0});
    return;
  }

  // The server's own configured timers, to compare a cliff with.
  std::string own;
  for (const TimerRow& t : r.timers) {
    if (t.timeout_ms < 0) continue;
    own += fmt::format("{}{} {}", own.empty() ? "" : ", ", name(t.timer), timeout_text(t.timeout_ms));
  }

  std::vector<std::string> cliff_routes;
  std::unordered_map<std::size_t, const Cliff*> timer_piles;
  for (const Cliff& c : r.cliffs) {
    // Upstream failures pile up among departures too; their own finding names the upstream.
    bool upstream = std::any_of(r.upstream_piles.begin(), r.upstream_piles.end(), [&](const UpstreamPile& p) {
      return p.from < c.to && c.from < p.to && p.pile * 2 >= c.count;
    });
    if (upstream) continue;
    if (c.server_timer != Timer::kNone) {
      timer_piles.emplace(static_cast<std::size_t>(c.server_timer), &c);
      continue;
    }
    std::string where;
    if (!c.routes.empty() && c.routes[0].key != kNoRequestLine) {
      where = fmt::format(", {} of them on {}", c.routes[0].count, c.routes[0].key);
      if (c.routes[0].count * 2 >= c.count) cliff_routes.push_back(c.routes[0].key);
    }
    if (!c.networks.empty() && c.networks[0].count * 4 >= c.count) {
      where += fmt::format(", {} from {}", c.networks[0].count, c.networks[0].key);
    }
    std::string text = fmt::format(
        "{} departures ({} of departures with a duration) ended at {:.1f} s (between {:.1f} and {:.1f} s){}. No "
        "server timer fired for them: a client, proxy or load-balancer timeout of about {} is cutting them",
        c.count, pct1(c.share), c.seconds, c.from, c.to, where, seconds(c.seconds));
    text += own.empty() ? " (the log names none of the server's own timers)."
                        : fmt::format(" (the server's own timers: {}).", own);
    if (!c.known.empty()) text += fmt::format(" {}.", c.known);
    out.push_back(
        {"cliff", fmt::format("{:.1f}s", c.seconds), std::move(text), 1.5 * static_cast<double>(c.count) / deps + 0.3});
  }

  for (const TimerRow& t : r.timers) {
    double share_req = static_cast<double>(t.count) / static_cast<double>(r.requests);
    // A proxy's upstream timer says the application was slow, not the client: the upstream findings.
    if (t.count < 10 || share_req < 0.01 || upstream_timer(t.timer)) continue;
    std::string text = fmt::format(
        "The server's {} timer ({}) fired on {} requests, {} of all requests and {} of departures", name(t.timer),
        timeout_text(t.timeout_ms), t.count, pct1(share_req), pct1(static_cast<double>(t.count) / deps));
    if (auto it = timer_piles.find(static_cast<std::size_t>(t.timer)); it != timer_piles.end()) {
      const Cliff& c = *it->second;
      text += fmt::format("; departures pile up at {:.1f} s ({} between {:.1f} and {:.1f} s)", c.seconds, c.count,
                          c.from, c.to);
      if (!c.routes.empty() && c.routes[0].key != kNoRequestLine) text += fmt::format(", most on {}", c.routes[0].key);
    }
    text += ". If these clients are legitimate, the timer is too short for them.";
    out.push_back(
        {"timer", std::string(name(t.timer)), std::move(text), 1.2 * static_cast<double>(t.count) / deps + 0.2});
  }

  // A key stands out against everybody else's rate, not the overall one: a network that makes up a
  // third of the departures raises the overall rate it would be compared with.
  // A key that is half the traffic or more has no "everybody else" to stand out from: +inf.
  auto rest = [&](const Row& k) {
    std::uint64_t n = r.requests > k.requests ? r.requests - k.requests : 0;
    std::uint64_t d = r.departures > k.departures ? r.departures - k.departures : 0;
    if (n < 20 || k.requests * 2 > r.requests) return std::numeric_limits<double>::infinity();
    return static_cast<double>(d) / static_cast<double>(n);
  };
  std::vector<std::string> networks_named;
  std::size_t named = 0;
  for (const Row& n : r.networks_by_ratio) {
    if (named == 3) break;
    double others = rest(n);
    if (n.ratio < std::max(0.2, 3 * others) || n.requests < 20) continue;
    std::string text = fmt::format("Clients in {} left {} of their {} requests ({} departures; {} for everyone else)",
                                   n.key, pct(n.ratio), n.requests, n.departures, pct1(others));
    if (n.partial > 0) {
      text += fmt::format("; {} left mid-response after {} written", n.partial, human_bytes(n.bytes_out));
      if (n.bytes_acked > 0) text += fmt::format(", {} acknowledged", human_bytes(n.bytes_acked));
    }
    text += ". Look at that network's path: a mobile carrier, a proxy, or a client with a short timeout.";
    out.push_back({"client_network", n.key, std::move(text), 1.2 * static_cast<double>(n.departures) / deps + 0.2});
    networks_named.push_back(n.key);
    ++named;
  }

  named = 0;
  std::string net;
  for (const Row& ip : r.ips_by_ratio) {
    if (named == 3) break;
    double others = rest(ip);
    if (ip.ratio < std::max(0.2, 3 * others)) continue;
    if (client_network(ip.key, net) &&
        std::find(networks_named.begin(), networks_named.end(), net) != networks_named.end()) {
      continue;
    }
    out.push_back({"client", ip.key,
                   fmt::format("Client {} left {} of its {} requests ({} for everyone else).", ip.key, pct(ip.ratio),
                               ip.requests, pct1(others)),
                   static_cast<double>(ip.departures) / deps + 0.1});
    ++named;
  }

  named = 0;
  for (const Row& rt : r.routes_by_ratio) {
    if (named == 3) break;
    double others = rest(rt);
    if (rt.ratio < std::max(0.1, 2 * others) || rt.key == kNoRequestLine ||
        std::find(cliff_routes.begin(), cliff_routes.end(), rt.key) != cliff_routes.end()) {
      continue;
    }
    std::string text = fmt::format("{}: {} of {} requests departed ({} for other routes)", rt.key, pct(rt.ratio),
                                   rt.requests, pct1(others));
    if (rt.wasted_ms > 0) text += fmt::format("; handlers worked {:.1f} s for nobody", rt.wasted_ms / 1000);
    out.push_back({"route", rt.key, text + ".", 0.7 * static_cast<double>(rt.departures) / deps});
    ++named;
  }

  for (const Row& ua : r.user_agents) {
    double others = rest(ua);
    if (ua.requests < 50 || ua.ratio < std::max(0.2, 3 * others)) continue;
    out.push_back({"user_agent", ua.key,
                   fmt::format("{} clients left {} of their {} requests ({} for other clients).", ua.key, pct(ua.ratio),
                               ua.requests, pct1(others)),
                   0.8 * static_cast<double>(ua.departures) / deps});
  }

  add_cut_short(r);
  add_upstream_findings(r);
  add_reason_findings(r);

  const Delivery& d = r.delivery;
  if (d.partial >= 10 && static_cast<double>(d.partial) >= 0.05 * deps) {
    std::string text =
        fmt::format("{} responses were cut off mid-body after {} written", d.partial, human_bytes(d.bytes_out));
    if (d.with_acked > 0) {
      text += fmt::format("; of the {} with delivery logged, the clients acknowledged {} of {} ({})", d.with_acked,
                          human_bytes(d.bytes_acked), human_bytes(d.bytes_out_with_acked),
                          pct(static_cast<double>(d.bytes_acked) /
                              static_cast<double>(std::max<std::uint64_t>(d.bytes_out_with_acked, 1))));
    }
    out.push_back({"delivery", "", text + ".", 0.5 * static_cast<double>(d.partial) / deps});
  }

  if (r.wasted_ms >= 1000 && !r.wasted_by_route.empty()) {
    const Row& w = r.wasted_by_route[0];
    out.push_back({"wasted_work", w.key,
                   fmt::format("Handlers worked {:.1f} s for clients that had already left ({} cancelled requests); "
                               "{:.1f} s of it on {}.",
                               r.wasted_ms / 1000, r.cancelled, w.wasted_ms / 1000, w.key),
                   0.25});
  }

  std::stable_sort(out.begin(), out.end(), [](const Finding& a, const Finding& b) { return a.score > b.score; });
  if (out.size() > 10) out.resize(10);
}

}  // namespace unbroken::analyze
