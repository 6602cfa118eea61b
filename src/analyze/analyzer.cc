#include "analyze/analyzer.h"

#include <fnmatch.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace unbroken::analyze {
namespace {

constexpr std::int64_t kHourMs = 3'600'000;
// A week of minutes; past that the timeline rolls up to hours so that its size stays bounded.
constexpr std::size_t kMaxMinuteBuckets = 7 * 24 * 60;
constexpr std::size_t kTopRows = 20;

std::int64_t floor_to(std::int64_t v, std::int64_t unit) {
  std::int64_t q = v / unit;
  if (v % unit != 0 && v < 0) --q;
  return q * unit;
}

// A duration a log may hold: finite, not negative, under ~30 years. Anything else is ignored rather
// than summed into an infinity that would make the JSON report invalid.
bool sane_ms(double ms) {
  return ms > 0 && ms < 1e12;
}

Row to_row(const SpaceSaving<KeyStats>::Counter& c, bool ranked_by_departures) {
  Row r;
  r.key = c.key;
  r.error = c.error;
  r.departures = ranked_by_departures ? c.count : c.aux.departures;
  r.requests = ranked_by_departures ? 0 : c.count;
  r.ratio = r.requests > 0 ? static_cast<double>(r.departures) / static_cast<double>(r.requests) : 0;
  r.wasted_ms = c.aux.wasted_ms;
  r.partial = c.aux.partial;
  r.bytes_out = c.aux.bytes_out;
  r.bytes_acked = c.aux.bytes_acked;
  r.bytes = c.aux.bytes;
  return r;
}

// The request count the `all` sketch holds for key, to put beside a departure-ranked row.
template <class Sketch>
void fill_requests(std::vector<Row>& rows, const Sketch& all) {
  std::unordered_map<std::string_view, std::uint64_t> counts;
  for (const auto& c : all.counters()) counts.emplace(c.key, c.count);
  for (Row& r : rows) {
    auto it = counts.find(r.key);
    if (it == counts.end()) continue;
    r.requests = std::max(it->second, r.departures);
    r.ratio = static_cast<double>(r.departures) / static_cast<double>(r.requests);
  }
}

// Rows ranked by departure ratio among keys whose request count is certainly at least min_requests.
std::vector<Row> by_ratio(const SpaceSaving<KeyStats>& all, std::uint64_t min_requests, std::size_t n) {
  std::vector<Row> rows;
  for (const auto& c : all.counters()) {
    if (c.count - c.error < min_requests || c.aux.departures == 0) continue;
    rows.push_back(to_row(c, false));
    // Requests since the key took its counter: the ratio of what this counter saw, not inflated by
    // the inherited error.
    rows.back().requests = c.aux.requests;
    rows.back().ratio = static_cast<double>(c.aux.departures) / static_cast<double>(c.aux.requests);
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return a.ratio != b.ratio ? a.ratio > b.ratio : a.departures > b.departures;
  });
  if (rows.size() > n) rows.resize(n);
  return rows;
}

}  // namespace

Analyzer::Analyzer(Filters filters) : filters_(std::move(filters)) {}

Analyzer::~Analyzer() = default;

std::size_t Analyzer::AgentHash::operator()(std::string_view s) const noexcept {
  std::uint64_t h = s.size() * 0x9E3779B97F4A7C15ULL;
  auto word = [&](std::size_t at) {
    std::uint64_t w = 0;
    std::memcpy(&w, s.data() + at, std::min<std::size_t>(8, s.size() - at));
    return w;
  };
  if (!s.empty()) {
    for (std::size_t at : {std::size_t{0}, s.size() / 2, s.size() > 8 ? s.size() - 8 : 0}) {
      h = (h ^ word(at)) * 0x100000001B3ULL;
      h ^= h >> 29;
    }
  }
  return static_cast<std::size_t>(h);
}

void Analyzer::Dimension::add(std::string_view key, const Entry& e) {
  KeyStats& s = all.add(key);
  s.requests += 1;
  if (e.bytes_out > 0) s.bytes += static_cast<std::uint64_t>(e.bytes_out);
  if (!e.departed()) return;
  s.departures += 1;
  KeyStats& d = departed.add(key);
  d.departures += 1;
  for (KeyStats* k : {&s, &d}) {
    if (sane_ms(e.wasted_ms)) k->wasted_ms += e.wasted_ms;
    if (e.partial()) {
      k->partial += 1;
      k->bytes_out += static_cast<std::uint64_t>(e.bytes_out);
      if (e.bytes_acked >= 0) k->bytes_acked += static_cast<std::uint64_t>(e.bytes_acked);
    }
  }
}

bool Analyzer::keep(const Entry& e, std::string_view route_key) {
  if (filters_.since_ms != kNoTime && (e.ts_ms == kNoTime || e.ts_ms < filters_.since_ms)) return false;
  if (filters_.until_ms != kNoTime && (e.ts_ms == kNoTime || e.ts_ms >= filters_.until_ms)) return false;
  if (!filters_.route.empty()) {
    std::string path(e.path.substr(0, e.path.find('?')));
    std::string route(route_key.substr(route_key.find(' ') + 1));
    if (::fnmatch(filters_.route.c_str(), route.c_str(), 0) != 0 &&
        ::fnmatch(filters_.route.c_str(), path.c_str(), 0) != 0 &&
        ::fnmatch(filters_.route.c_str(), std::string(route_key).c_str(), 0) != 0) {
      return false;
    }
  }
  if (filters_.client && !filters_.client->matches(client_address(e.client))) return false;
  return true;
}

void Analyzer::add(const Entry& e) {
  if (cut_mode_ == CutInference::kLogged) {
    // The parser has marked the cut ones; every successful GET with a body was judged.
    add_judged(e, e.download());
    return;
  }
  if (cut_mode_ == CutInference::kOff || e.outcome != Outcome::kOk) {
    add_judged(e, false);
    return;
  }
  if (cut_mode_ == CutInference::kOnline) sizes_.learn(e);
  SizeProfile::Verdict v = sizes_.judge(e);
  if (v != SizeProfile::Verdict::kCut) {
    add_judged(e, v == SizeProfile::Verdict::kFull);
    return;
  }
  // A departure like HAProxy's CD: the client left while the response was being sent.
  Entry cut = e;
  cut.outcome = Outcome::kClientClosed;
  cut.phase = Phase::kResponse;
  cut.cut = Cut::kInferred;
  add_judged(cut, true);
}

void Analyzer::add_judged(const Entry& e, bool judged) {
  route_.assign(e.method.empty() ? std::string_view("-") : e.method);
  route_.push_back(' ');
  // The server's route pattern where it has one, under the request's own method (a HEAD that a GET
  // route served is a HEAD).
  if (e.method.empty() && e.path.empty() && e.route.empty()) {
    route_.assign(kNoRequestLine);
  } else if (std::string_view pattern = route_pattern(e.route); !pattern.empty()) {
    route_.append(pattern);
  } else {
    std::string normalised;
    normalise_route(e.path, normalised);
    route_.append(normalised);
  }
  if ((filters_.since_ms != kNoTime || filters_.until_ms != kNoTime || !filters_.route.empty() || filters_.client) &&
      !keep(e, route_)) {
    ++filtered_;
    return;
  }
  ++requests_;
  auto o = static_cast<std::size_t>(e.outcome);
  outcome_phase_[o][static_cast<std::size_t>(e.phase)] += 1;
  if (e.timer != Timer::kNone) {
    timers_[static_cast<std::size_t>(e.timer)] += 1;
    if (e.timeout_ms >= 0) timer_settings_[static_cast<std::size_t>(e.timer)][e.timeout_ms] += 1;
  }
  add_time(e);

  std::string_view address = client_address(e.client);
  routes_.add(route_, e);
  ips_.add(address.empty() ? std::string_view("-") : address, e);
  if (client_network(address, network_)) networks_.add(network_, e);
  auto cached = ua_cache_.find(e.ua);
  if (cached == ua_cache_.end()) {
    if (ua_cache_.size() >= 4096) ua_cache_.clear();
    cached = ua_cache_.emplace(std::string(e.ua), std::string(ua_family(e.ua, ua_scratch_))).first;
  }
  agents_.add(cached->second, e);
  add_traffic(e, judged, address);
  if (!e.upstream.empty()) add_upstream(e);
  add_reasons(e);

  if (!e.departed()) return;
  ++departures_;
  if (e.cancelled) ++cancelled_;
  if (sane_ms(e.wasted_ms)) wasted_ms_ += e.wasted_ms;
  if (e.partial()) {
    delivery_.partial += 1;
    delivery_.bytes_out += static_cast<std::uint64_t>(e.bytes_out);
    if (e.bytes_unsent > 0) delivery_.bytes_unsent += static_cast<std::uint64_t>(e.bytes_unsent);
    if (e.bytes_acked >= 0) {
      delivery_.with_acked += 1;
      delivery_.bytes_out_with_acked += static_cast<std::uint64_t>(e.bytes_out);
      delivery_.bytes_acked += static_cast<std::uint64_t>(e.bytes_acked);
      double f = std::clamp(static_cast<double>(e.bytes_acked) / static_cast<double>(e.bytes_out), 0.0, 1.0);
      delivery_.acked_fraction[std::min<std::size_t>(9, static_cast<std::size_t>(f * 10))] += 1;
    }
  }
  add_duration(e);
}

void Analyzer::add_traffic(const Entry& e, bool judged, std::string_view address) {
  if (e.status >= 100 && e.status <= 999) statuses_[static_cast<std::size_t>(e.status)] += 1;
  if (e.bytes_out >= 0) {
    bytes_out_ += static_cast<std::uint64_t>(e.bytes_out);
    ++with_bytes_;
  }
  if (e.cut == Cut::kExact) ++cuts_exact_;
  if (e.cut == Cut::kInferred) ++cuts_inferred_;
  if (!judged) return;
  ++cuts_judged_;
  pair_.assign(network_.empty() ? address : std::string_view(network_));
  pair_.push_back(' ');
  pair_.append(route_);
  cut_pairs_.add(pair_, e);
}

void Analyzer::add_time(const Entry& e) {
  if (e.ts_ms == kNoTime) return;
  if (first_ms_ == kNoTime || e.ts_ms < first_ms_) first_ms_ = e.ts_ms;
  if (last_ms_ == kNoTime || e.ts_ms > last_ms_) last_ms_ = e.ts_ms;
  std::int64_t start = floor_to(e.ts_ms, bucket_ms_);
  if (start != last_bucket_start_ || last_bucket_ == nullptr) {
    last_bucket_ = &buckets_[start];  // std::map: the pointer stays valid as buckets are added
    last_bucket_start_ = start;
  }
  Bucket& b = *last_bucket_;
  b.requests += 1;
  if (e.bytes_out > 0) b.bytes += static_cast<std::uint64_t>(e.bytes_out);
  b.by_outcome[static_cast<std::size_t>(e.outcome)] += 1;
  if (buckets_.size() > kMaxMinuteBuckets && bucket_ms_ < kHourMs) {
    std::map<std::int64_t, Bucket> hours;
    for (const auto& [start, m] : buckets_) {
      Bucket& h = hours[floor_to(start, kHourMs)];
      h.requests += m.requests;
      h.bytes += m.bytes;
      for (std::size_t i = 0; i < kOutcomeCount; ++i) h.by_outcome[i] += m.by_outcome[i];
    }
    buckets_.swap(hours);
    bucket_ms_ = kHourMs;
    last_bucket_ = nullptr;
  }
}

void Analyzer::add_duration(const Entry& e) {
  durations_.add(e.duration_ms, route_, network_, e.timer, e.timeout_ms);
}

void Analyzer::Durations::add(double ms, std::string_view first, std::string_view second, Timer timer,
                              std::int64_t timeout_ms) {
  if (!(ms >= 0)) return;  // also NaN
  ++total;
  // Compared as a double before the cast: converting an out-of-range double to an integer is UB.
  if (ms >= static_cast<double>(kBins) * kBinMs) return;
  auto bin = static_cast<std::size_t>(ms / kBinMs);
  hist[bin] += 1;
  sum_ms[bin] += ms;
  // Who ended where is kept only from 1 s up: piles below that are not told apart from fast requests.
  if (bin < 10) return;
  auto& d = detail[bin];
  if (!d) d = std::make_unique<BinDetail>();
  d->first.add(first);
  if (!second.empty()) d->second.add(second);
  d->timers[static_cast<std::size_t>(timer)] += 1;
  if (timer != Timer::kNone && timeout_ms >= 0) d->timeouts[timeout_ms] += 1;
}

void Analyzer::add_upstream(const Entry& e) {
  UpstreamStats& u = upstreams_.add(e.upstream);
  u.requests += 1;
  u.retries += static_cast<std::uint64_t>(std::max(e.upstream_retries, 0));
  u.by_outcome[static_cast<std::size_t>(e.outcome)] += 1;
  if (e.outcome == Outcome::kOk && e.upstream_status >= 500) ++u.server_errors;
  if (sane_ms(e.upstream_connect_ms)) u.connect_ms += e.upstream_connect_ms, ++u.with_connect;
  if (sane_ms(e.upstream_header_ms)) u.header_ms += e.upstream_header_ms, ++u.with_header;
  if (!upstream_failure(e.outcome)) return;
  ++u.failures;
  if (e.upstream_reused) ++u.reused_failures;
  // The upstream's own time where logged: what its timeout measures.
  pair_.assign(e.upstream);
  pair_.push_back('\t');
  pair_.append(route_);
  status_ = std::to_string(e.status);
  upstream_durations_.add(e.upstream_ms >= 0 ? e.upstream_ms : e.duration_ms, pair_, status_, e.timer, e.timeout_ms);
}

void Analyzer::add_reasons(const Entry& e) {
  if (!e.tls_error.empty()) {
    tls_failures_.add(e.tls_error);
  } else if (e.phase == Phase::kTlsHandshake && e.departed()) {
    tls_failures_.add(name(e.outcome));
  }
  if (!e.upstream_error.empty()) upstream_errors_.add(e.upstream_error);
}

void Analyzer::build_upstreams(Report& r) const {
  for (const auto* c : upstreams_.top(kTopRows, [](const auto& c) { return std::pair(c.aux.failures, c.count); })) {
    const UpstreamStats& u = c->aux;
    UpstreamRow row{c->key,    c->count,          u.failures, u.by_outcome, u.server_errors,
                    u.retries, u.reused_failures, -1,         -1,           c->error};
    if (u.with_connect > 0) row.connect_ms = u.connect_ms / static_cast<double>(u.with_connect);
    if (u.with_header > 0) row.header_ms = u.header_ms / static_cast<double>(u.with_header);
    r.upstreams.push_back(std::move(row));
  }
  if (!r.upstreams.empty()) {
    r.sketches.push_back(SketchInfo{"upstreams", upstreams_.capacity(), upstreams_.total(), upstreams_.max_error()});
  }
}

Report Analyzer::finish(std::vector<InputSummary> inputs) const {
  Report r;
  r.inputs = std::move(inputs);
  for (const auto& in : r.inputs) {
    r.lines += in.lines;
    r.unparsed += in.unparsed;
    r.repaired += in.repaired;
  }
  r.filtered_out = filtered_;
  r.requests = requests_;
  r.departures = departures_;
  r.outcome_phase = outcome_phase_;
  for (std::size_t o = 0; o < kOutcomeCount; ++o) {
    for (std::size_t p = 0; p < kPhaseCount; ++p) {
      r.by_outcome[o] += outcome_phase_[o][p];
      if (o != 0) r.by_phase[p] += outcome_phase_[o][p];
    }
  }
  r.first_ms = first_ms_;
  r.last_ms = last_ms_;

  // Per minute, or per hour once the span is longer than two days.
  std::int64_t unit = bucket_ms_;
  if (unit < kHourMs && first_ms_ != kNoTime && last_ms_ - first_ms_ > 48 * kHourMs) unit = kHourMs;
  r.bucket = unit == kHourMs ? "hour" : "minute";
  for (const auto& [start, b] : buckets_) {
    std::int64_t s = floor_to(start, unit);
    if (r.timeline.empty() || r.timeline.back().start_ms != s) r.timeline.push_back(TimeBucket{s, 0, 0, 0, {}});
    TimeBucket& t = r.timeline.back();
    t.requests += b.requests;
    t.bytes += b.bytes;
    for (std::size_t i = 0; i < kOutcomeCount; ++i) {
      t.by_outcome[i] += b.by_outcome[i];
      if (i != 0) t.departures += b.by_outcome[i];
    }
  }

  for (const auto* c : routes_.departed.top(kTopRows, [](const auto& c) { return c.count; })) {
    r.routes_by_departures.push_back(to_row(*c, true));
  }
  fill_requests(r.routes_by_departures, routes_.all);
  r.routes_by_ratio = by_ratio(routes_.all, 20, kTopRows);
  for (const auto* c : ips_.departed.top(kTopRows, [](const auto& c) { return c.count; })) {
    r.ips.push_back(to_row(*c, true));
  }
  fill_requests(r.ips, ips_.all);
  for (const auto* c : networks_.departed.top(kTopRows, [](const auto& c) { return c.count; })) {
    r.networks.push_back(to_row(*c, true));
  }
  fill_requests(r.networks, networks_.all);
  r.networks_by_ratio = by_ratio(networks_.all, 20, kTopRows);
  r.ips_by_ratio = by_ratio(ips_.all, 20, kTopRows);
  for (const auto* c : agents_.all.top(kTopRows, [](const auto& c) { return c.count; })) {
    r.user_agents.push_back(to_row(*c, false));
  }
  for (const auto* c : routes_.departed.top(kTopRows, [](const auto& c) { return c.aux.wasted_ms; })) {
    if (c->aux.wasted_ms > 0) r.wasted_by_route.push_back(to_row(*c, true));
  }

  for (std::size_t t = 1; t < kTimerCount; ++t) {
    if (timers_[t] == 0) continue;
    TimerRow row{static_cast<Timer>(t), timers_[t], -1};
    std::uint64_t best = 0;
    for (const auto& [ms, n] : timer_settings_[t]) {
      if (n > best) best = n, row.timeout_ms = ms;
    }
    r.timers.push_back(row);
  }
  std::sort(r.timers.begin(), r.timers.end(), [](const TimerRow& a, const TimerRow& b) { return a.count > b.count; });

  r.delivery = delivery_;
  r.wasted_ms = wasted_ms_;
  r.cancelled = cancelled_;
  r.with_duration = durations_.total;
  r.hist_bin_s = kBinMs / 1000.0;
  const auto& hist = durations_.hist;
  std::size_t last = hist.size();
  while (last > 0 && hist[last - 1] == 0) --last;
  r.histogram.assign(hist.begin(), hist.begin() + static_cast<std::ptrdiff_t>(last));

  auto info = [&](std::string table, const SpaceSaving<KeyStats>& s) {
    r.sketches.push_back(SketchInfo{std::move(table), s.capacity(), s.total(), s.max_error()});
  };
  info("routes", routes_.all);
  info("routes_departed", routes_.departed);
  info("clients", ips_.all);
  info("clients_departed", ips_.departed);
  info("networks", networks_.all);
  info("networks_departed", networks_.departed);
  info("user_agents", agents_.all);
  if (cuts_judged_ > 0) info("cut_short_pairs", cut_pairs_.all);
  build_traffic(r);
  build_upstreams(r);
  for (auto [sketch, out] :
       {std::pair{&tls_failures_, &r.tls_failures}, std::pair{&upstream_errors_, &r.upstream_errors}}) {
    out->total = sketch->total();
    out->error = sketch->max_error();
    for (const auto* c : sketch->top(kTopReasons, [](const auto& c) { return c.count; }))
      out->top.push_back(Share{c->key, c->count});
  }

  build_cliffs(r);
  build_findings(r);
  return r;
}

void Analyzer::build_traffic(Report& r) const {
  Traffic& t = r.traffic;
  for (std::size_t code = 0; code < statuses_.size(); ++code) {
    if (statuses_[code] == 0) continue;
    t.status_classes[code >= 100 && code < 600 ? code / 100 : 0] += statuses_[code];
    t.statuses.push_back(Share{std::to_string(code), statuses_[code]});
  }
  std::uint64_t with_status = 0;
  for (std::uint64_t n : t.status_classes) with_status += n;
  t.status_classes[0] += requests_ - std::min(requests_, with_status);
  std::stable_sort(t.statuses.begin(), t.statuses.end(),
                   [](const Share& a, const Share& b) { return a.count > b.count; });
  t.bytes_out = bytes_out_;
  t.with_bytes = with_bytes_;
  for (const auto* c : routes_.all.top(kTopRows, [](const auto& c) { return c.count; })) {
    t.routes.push_back(to_row(*c, false));
  }
  for (const auto* c : ips_.all.top(kTopRows, [](const auto& c) { return c.count; })) {
    t.clients.push_back(to_row(*c, false));
  }

  CutShort& cs = r.cut_short;
  cs.exact = cuts_exact_;
  cs.inferred = cuts_inferred_;
  cs.judged = cuts_judged_;
  cs.sized_paths = sizes_.sized_paths();
  for (const auto* c : cut_pairs_.departed.top(kTopRows, [](const auto& c) { return c.count; })) {
    cs.pairs.push_back(to_row(*c, true));
  }
  fill_requests(cs.pairs, cut_pairs_.all);
}

}  // namespace unbroken::analyze
