#pragma once
// Folds entries into bounded aggregates: counts by outcome and phase, a timeline, top-k sketches for
// routes, clients, networks and user agents, and a departure-duration histogram for cliff detection.
// Memory is fixed by the sketch capacities and the histogram size, not by the input. One thread.

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "analyze/entry.h"
#include "analyze/keys.h"
#include "analyze/report.h"
#include "analyze/size_profile.h"
#include "analyze/space_saving.h"

namespace unbroken::analyze {

struct Filters {
  std::int64_t since_ms = kNoTime;  // inclusive
  std::int64_t until_ms = kNoTime;  // exclusive
  std::string route;                // fnmatch pattern on the normalised route or the path
  std::optional<ClientFilter> client;
};

struct KeyStats {
  std::uint64_t requests = 0;
  std::uint64_t departures = 0;
  double wasted_ms = 0;
  std::uint64_t partial = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t bytes_acked = 0;
  std::uint64_t bytes = 0;  // of all its requests, departed or not
};

struct Empty {};

// A default that cuts requests at a fixed time, to name a pile found in the data with.
struct KnownTimeout {
  double seconds;
  std::string_view who;
};

// How the input being read shows a 200 that was cut short: by its outcome (unbroken's log, HAProxy's
// termination state: nothing to do), by $request_completion or Content-Length (kLogged), or not at all,
// so that it is inferred from sizes learned over the whole input beforehand (kLearned) or, for an input
// that cannot be read twice (stdin), from the sizes seen so far (kOnline).
enum class CutInference : std::uint8_t { kOff, kLogged, kLearned, kOnline };

// The route of a request that never got as far as a request line (a header timeout, a bad request).
inline constexpr std::string_view kNoRequestLine = "(no request line)";

class Analyzer {
 public:
  static constexpr std::size_t kRouteCapacity = 2048;
  static constexpr std::size_t kClientCapacity = 8192;
  static constexpr std::size_t kAgentCapacity = 512;
  static constexpr int kBinMs = 100;
  static constexpr int kBins = 6000;  // 0 .. 600 s
  static constexpr std::size_t kUpstreamCapacity = 256;

  explicit Analyzer(Filters filters = {});
  ~Analyzer();

  // Judges a 200 against the size profile when the input's mode asks for it, then counts the entry.
  void add(const Entry& e);
  // The first pass over an input in mode kLearned: sizes only, nothing is counted.
  void learn_size(const Entry& e) { sizes_.learn(e); }
  void set_cut_inference(CutInference mode) { cut_mode_ = mode; }
  // Builds the report; inputs are the per-file statistics the reader kept.
  [[nodiscard]] Report finish(std::vector<InputSummary> inputs) const;

 private:
  // Keys a sketch pair is kept for: every request counts in `all`, departures also in `departed`,
  // so the departure tables rank by departures rather than inheriting the request ranking.
  struct Dimension {
    explicit Dimension(std::size_t capacity) : all(capacity), departed(capacity) {}
    SpaceSaving<KeyStats> all;
    SpaceSaving<KeyStats> departed;
    void add(std::string_view key, const Entry& e);
  };
  // Durations in kBinMs bins up to kBins, and who ended in each bin from 1 s up: the departures a
  // cliff is made of (`first` a route, `second` a network), or the upstream failures an upstream pile
  // is made of (`first` "upstream<TAB>route", `second` the status).
  struct BinDetail {
    BinDetail() : first(8), second(8) {}
    SpaceSaving<Empty> first;
    SpaceSaving<Empty> second;
    std::array<std::uint64_t, kTimerCount> timers{};
    std::map<std::int64_t, std::uint64_t> timeouts;
  };
  struct Durations {
    Durations() : hist(kBins, 0), sum_ms(kBins, 0.0), detail(kBins) {}
    std::vector<std::uint64_t> hist;
    std::vector<double> sum_ms;
    std::vector<std::unique_ptr<BinDetail>> detail;
    std::uint64_t total = 0;  // added with a duration, also those past the last bin
    void add(double ms, std::string_view first, std::string_view second, Timer timer, std::int64_t timeout_ms);
  };
  // Per upstream, over its proxied requests.
  struct UpstreamStats {
    std::uint64_t requests = 0, failures = 0, retries = 0, reused_failures = 0, server_errors = 0;
    std::uint64_t with_connect = 0, with_header = 0;
    double connect_ms = 0, header_ms = 0;
    std::array<std::uint64_t, kOutcomeCount> by_outcome{};
  };
  struct Bucket {
    std::uint64_t requests = 0;
    std::uint64_t bytes = 0;
    std::array<std::uint64_t, kOutcomeCount> by_outcome{};
  };

  [[nodiscard]] bool keep(const Entry& e, std::string_view route_key);
  void add_judged(const Entry& e, bool judged);
  // `address` is the client's, without its port.
  void add_traffic(const Entry& e, bool judged, std::string_view address);
  void add_duration(const Entry& e);
  void add_upstream(const Entry& e);
  void add_reasons(const Entry& e);  // TLS handshake failures and upstream errors by reason
  void add_time(const Entry& e);
  // The piles in d, the largest max_piles; `known` names the well-known defaults a pile may match.
  [[nodiscard]] static std::vector<Cliff> find_cliffs(const Durations& d, std::span<const KnownTimeout> known,
                                                      std::size_t max_piles);
  void build_cliffs(Report& r) const;     // the departure cliffs and the upstream piles
  void build_upstreams(Report& r) const;  // the upstream table
  void add_upstream_findings(Report& r) const;
  static void add_reason_findings(Report& r);  // tls_handshake and upstream_error
  void build_findings(Report& r) const;
  void build_traffic(Report& r) const;  // the traffic picture and the cut-short counts
  void add_cut_short(Report& r) const;  // the cut_short findings

  Filters filters_;
  std::uint64_t requests_ = 0, departures_ = 0, filtered_ = 0, cancelled_ = 0;
  double wasted_ms_ = 0;
  std::array<std::array<std::uint64_t, kPhaseCount>, kOutcomeCount> outcome_phase_{};
  std::array<std::uint64_t, kTimerCount> timers_{};
  std::array<std::map<std::int64_t, std::uint64_t>, kTimerCount> timer_settings_;
  std::int64_t first_ms_ = kNoTime, last_ms_ = kNoTime;
  std::int64_t bucket_ms_ = 60'000;
  std::map<std::int64_t, Bucket> buckets_;
  Dimension routes_{kRouteCapacity}, ips_{kClientCapacity}, networks_{kClientCapacity}, agents_{kAgentCapacity};
  Durations durations_;           // of departures
  Durations upstream_durations_;  // of upstream failures
  SpaceSaving<UpstreamStats> upstreams_{kUpstreamCapacity};
  // OpenSSL's reasons are a few dozen fixed strings; upstream errors add the verifier's.
  static constexpr std::size_t kReasonCapacity = 64;
  SpaceSaving<Empty> tls_failures_{kReasonCapacity}, upstream_errors_{kReasonCapacity};
  Delivery delivery_;
  SizeProfile sizes_;
  CutInference cut_mode_ = CutInference::kOff;
  std::uint64_t cuts_exact_ = 0, cuts_inferred_ = 0, cuts_judged_ = 0;
  Dimension cut_pairs_{kRouteCapacity};  // "network route": judged downloads and their cuts
  std::array<std::uint64_t, 1000> statuses_{};
  std::uint64_t bytes_out_ = 0, with_bytes_ = 0;
  // Scratch buffers reused for every line.
  std::string route_, network_, ua_scratch_, pair_, status_;
  // User agents repeat: their family is looked up once per distinct string (bounded; cleared when full).
  // The hash reads the length and three 8-byte words: agents are long and differ in many places.
  struct AgentHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept;
  };
  std::unordered_map<std::string, std::string, AgentHash, std::equal_to<>> ua_cache_;
  // Logs come in time order: the bucket of the previous line is most often this line's.
  std::int64_t last_bucket_start_ = kNoTime;
  Bucket* last_bucket_ = nullptr;
};

}  // namespace unbroken::analyze
