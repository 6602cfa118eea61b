#pragma once
// What `unbroken analyze` found, computed once at the end and read by the text, JSON and HTML
// writers. Plain data: every number a writer prints is here, so the three outputs cannot disagree.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "analyze/entry.h"

namespace unbroken::analyze {

struct InputSummary {
  std::string name;
  std::string format;  // "json", "combined", "custom" (another log_format), "haproxy", or "empty"
  bool gzip = false;
  std::uint64_t bytes = 0;  // as read from the file (compressed for .gz)
  std::uint64_t lines = 0;
  std::uint64_t unparsed = 0;
  std::vector<std::uint64_t> first_unparsed;  // line numbers, the first few
  std::uint64_t repaired = 0;                 // read as far as they went (a last quoted field cut off)
  std::vector<std::uint64_t> first_repaired;
  // How a response cut short shows in this input: "logged" (an outcome, a termination state,
  // $request_completion) or "inferred" (a 200 shorter than its path's full size); empty when unknown.
  std::string completion;
  std::string error;  // why reading stopped early, or empty
};

// A row of a top-k table. Counts come from a Space-Saving sketch: `requests` or `departures` (whichever
// the table ranks by) may be overestimated by at most `error`.
struct Row {
  std::string key;
  std::uint64_t requests = 0;
  std::uint64_t departures = 0;
  double ratio = 0;  // departures / requests
  std::uint64_t error = 0;
  double wasted_ms = 0;
  std::uint64_t partial = 0;  // departures after some response bytes
  std::uint64_t bytes_out = 0;
  std::uint64_t bytes_acked = 0;
  std::uint64_t bytes = 0;  // response bytes of all its requests, where logged
};

struct Share {
  std::string key;
  std::uint64_t count = 0;
};

// Departure durations piling up at one value: somebody's timeout.
struct Cliff {
  double seconds = 0;  // mean duration of the departures in the pile
  double from = 0, to = 0;
  std::uint64_t count = 0;
  double share = 0;                   // of all departures with a duration
  double background = 0;              // departures expected there from the neighbourhood
  std::string known;                  // the well-known default it matches, or empty
  Timer server_timer = Timer::kNone;  // the server's own timer, when most of the pile carries it
  std::int64_t server_timeout_ms = -1;
  std::uint64_t server_timer_count = 0;
  std::vector<Share> routes;
  std::vector<Share> networks;
};

// A reverse proxy's upstream (unbroken's `upstream` field, nginx's $upstream_addr): how its
// requests ended. Counts are exact unless `error` (more upstreams than the table holds).
struct UpstreamRow {
  std::string upstream;
  std::uint64_t requests = 0;
  std::uint64_t failures = 0;  // ended with an upstream_* outcome (502, 504)
  std::array<std::uint64_t, kOutcomeCount> by_outcome{};
  std::uint64_t server_errors = 0;    // 5xx the upstream answered itself
  std::uint64_t retries = 0;          // attempts before the one that answered, summed
  std::uint64_t reused_failures = 0;  // failures on a pooled keep-alive connection
  double connect_ms = -1;             // mean, where logged
  double header_ms = -1;              // mean time to its response head, where logged
  std::uint64_t error = 0;
};

// Upstream failures of one upstream on one route piling up at one duration: its timeout, or its
// application server's (gunicorn kills a sync worker at 30 s).
struct UpstreamPile {
  std::string upstream, route;
  int status = 0;  // the status most of the pile was answered with
  double seconds = 0, from = 0, to = 0;
  std::uint64_t count = 0;     // of this upstream and route
  std::uint64_t pile = 0;      // the whole pile, every upstream and route
  Timer timer = Timer::kNone;  // the proxy's timer, when most of the pile carries it
  std::int64_t timeout_ms = -1;
  std::string known;
};

struct Finding {
  std::string kind;     // cliff, timer, client_network, client, route, user_agent, delivery, wasted_work,
                        // upstream_pile, upstream, tls_handshake, upstream_error
  std::string subject;  // the route, network, timer or value it is about
  std::string text;     // one plain-language sentence or two
  double score = 0;     // ranking weight: roughly the share of departures it explains
};

// Failures counted by their reason: TLS handshakes by tls_error (or by outcome when the record has
// none: a client that closed, reset or stalled says nothing), upstream failures by upstream_error.
struct Reasons {
  std::uint64_t total = 0;
  std::vector<Share> top;   // the most frequent first, at most kTopReasons
  std::uint64_t error = 0;  // a count in `top` may be overestimated by this much (many distinct reasons)
};
inline constexpr std::size_t kTopReasons = 5;

struct TimeBucket {
  std::int64_t start_ms = 0;
  std::uint64_t requests = 0;
  std::uint64_t bytes = 0;
  std::uint64_t departures = 0;
  std::array<std::uint64_t, kOutcomeCount> by_outcome{};
};

struct TimerRow {
  Timer timer = Timer::kNone;
  std::uint64_t count = 0;
  std::int64_t timeout_ms = -1;  // the most common configured value
};

struct Delivery {
  std::uint64_t partial = 0;  // departures with bytes_out > 0
  std::uint64_t bytes_out = 0;
  std::uint64_t with_acked = 0;  // of the partial ones, how many logged bytes_acked
  std::uint64_t bytes_out_with_acked = 0;
  std::uint64_t bytes_acked = 0;
  std::uint64_t bytes_unsent = 0;
  std::array<std::uint64_t, 10> acked_fraction{};  // acked/out in tenths, for those with acked
};

// 200s that were cut short: told by the log (exact) or inferred from the size their path is served at
// in full. `judged` counts the successful GETs that could be judged either way.
struct CutShort {
  std::uint64_t exact = 0;
  std::uint64_t inferred = 0;
  std::uint64_t judged = 0;
  std::size_t sized_paths = 0;  // paths with a full size (of those held at the end)
  std::vector<Row> pairs;       // "network route" keys by cuts; requests are the judged downloads
};

// Traffic::status_classes by index, and the order reports show them in (the classes, "none" last).
inline constexpr std::array<std::string_view, 6> kStatusClassNames{"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
inline constexpr std::array<std::size_t, 6> kStatusClassOrder{1, 2, 3, 4, 5, 0};

// The traffic as a whole, departures or not.
struct Traffic {
  std::array<std::uint64_t, 6> status_classes{};  // [0] no valid status, [1..5] 1xx..5xx
  std::vector<Share> statuses;                    // codes by count
  std::uint64_t bytes_out = 0;                    // response bytes, where logged
  std::uint64_t with_bytes = 0;                   // requests that logged them
  std::vector<Row> routes, clients;               // by requests
};

struct SketchInfo {
  std::string table;
  std::size_t capacity = 0;
  std::uint64_t total = 0;
  std::uint64_t max_error = 0;
};

struct Report {
  std::vector<InputSummary> inputs;
  std::uint64_t lines = 0, unparsed = 0, repaired = 0, filtered_out = 0;
  std::uint64_t requests = 0, departures = 0;
  std::array<std::uint64_t, kOutcomeCount> by_outcome{};
  std::array<std::uint64_t, kPhaseCount> by_phase{};  // departures only
  std::array<std::array<std::uint64_t, kPhaseCount>, kOutcomeCount> outcome_phase{};
  std::int64_t first_ms = kNoTime, last_ms = kNoTime;
  std::string bucket = "minute";
  std::vector<TimeBucket> timeline;
  std::vector<Row> routes_by_departures, routes_by_ratio, ips, ips_by_ratio, networks, networks_by_ratio, user_agents;
  std::vector<Row> wasted_by_route;
  std::vector<Cliff> cliffs;
  std::vector<UpstreamRow> upstreams;  // by failures, then requests
  std::vector<UpstreamPile> upstream_piles;
  Reasons tls_failures;  // departures in phase tls_handshake, and any record with a tls_error
  Reasons upstream_errors;
  std::vector<TimerRow> timers;
  Delivery delivery;
  double wasted_ms = 0;
  std::uint64_t cancelled = 0;
  std::uint64_t with_duration = 0;  // departures that logged a duration
  double hist_bin_s = 0.1;
  std::vector<std::uint64_t> histogram;  // departures per duration bin, [0, bins * hist_bin_s)
  std::vector<Finding> findings;
  CutShort cut_short;
  Traffic traffic;
  std::vector<SketchInfo> sketches;
};

}  // namespace unbroken::analyze
