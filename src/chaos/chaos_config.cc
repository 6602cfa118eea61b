#include "chaos/chaos_config.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <numeric>

#include "base/units.h"
#include "chaos/tls.h"

namespace unbroken::chaos {
namespace {

std::chrono::milliseconds duration_flag(std::string_view flag, const std::string& text, bool allow_zero) {
  auto d = parse_duration(text);
  if (!d) throw ChaosError(fmt::format("{}: '{}' is not a duration (e.g. 500ms, 30s, 2m)", flag, text));
  if (!allow_zero && d->count() == 0) throw ChaosError(fmt::format("{}: must be more than 0", flag));
  return *d;
}

}  // namespace

Target parse_url(std::string_view url) {
  Target t;
  std::string_view rest;
  if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else if (url.starts_with("https://")) {
    rest = url.substr(8);
    t.tls = true;
  } else {
    throw ChaosError(fmt::format("URL '{}': only http[s]://HOST[:PORT][/PATH] is supported", url));
  }
  auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  t.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (authority.empty()) throw ChaosError(fmt::format("URL '{}': no host", url));
  // A port is present when the authority ends in :digits (outside an IPv6 literal's brackets).
  auto colon = authority.rfind(':');
  bool has_port = colon != std::string_view::npos && authority.find(']', colon) == std::string_view::npos;
  std::string host_port = has_port ? std::string(authority) : fmt::format("{}:{}", authority, t.tls ? 443 : 80);
  auto addr = net::SocketAddress::parse(host_port);
  if (!addr || addr->port() == 0) throw ChaosError(fmt::format("URL '{}': cannot resolve '{}'", url, host_port));
  t.address = *addr;
  t.host = std::string(authority);
  std::string_view name = has_port ? authority.substr(0, colon) : authority;
  if (name.starts_with('[') && name.ends_with(']')) name = name.substr(1, name.size() - 2);
  t.name = std::string(name);
  for (char c : t.path) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      throw ChaosError(fmt::format("URL '{}': the path must not contain spaces or control characters", url));
    }
  }
  return t;
}

std::array<double, kKindCount> parse_mix(std::string_view mix) {
  std::array<double, kKindCount> w{};
  bool any = false;
  while (!mix.empty()) {
    auto comma = mix.find(',');
    std::string_view item = mix.substr(0, comma);
    mix = comma == std::string_view::npos ? std::string_view{} : mix.substr(comma + 1);
    if (item.empty()) continue;
    auto eq = item.find('=');
    std::string_view kind_name = item.substr(0, eq);
    auto kind = parse_kind(kind_name);
    if (!kind) {
      std::string known;
      for (std::size_t i = 0; i < kKindCount; ++i) known += (i ? ", " : "") + std::string(name(static_cast<Kind>(i)));
      throw ChaosError(fmt::format("--mix: unknown kind '{}' (kinds: {})", kind_name, known));
    }
    double weight = 1;
    if (eq != std::string_view::npos) {
      std::string_view v = item.substr(eq + 1);
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), weight);
      if (ec != std::errc{} || end != v.data() + v.size() || !(weight >= 0) || !std::isfinite(weight)) {
        throw ChaosError(fmt::format("--mix: '{}': the weight must be a number >= 0", item));
      }
    }
    w[static_cast<std::size_t>(*kind)] = weight;
    any = any || weight > 0;
  }
  if (!any) throw ChaosError("--mix: no kind has a weight above 0");
  return w;
}

std::vector<Kind> assign_clients(const std::array<double, kKindCount>& weights, std::size_t connections) {
  std::array<std::size_t, kKindCount> count{};
  std::size_t weighted = 0;
  for (double w : weights) weighted += w > 0 ? 1 : 0;
  // One client for every kind with a weight first (when there are enough), the rest by weight.
  std::size_t given = 0;
  if (connections >= weighted) {
    for (std::size_t i = 0; i < kKindCount; ++i) count[i] = weights[i] > 0 ? 1 : 0;
    given = weighted;
  }
  double total = std::accumulate(weights.begin(), weights.end(), 0.0);
  std::size_t rest = connections - given;
  std::array<double, kKindCount> remainder{};
  for (std::size_t i = 0; i < kKindCount; ++i) {
    double share = total > 0 ? weights[i] / total * static_cast<double>(rest) : 0;
    auto whole = static_cast<std::size_t>(share);
    count[i] += whole;
    given += whole;
    remainder[i] = weights[i] > 0 ? share - static_cast<double>(whole) : -1;
  }
  // Largest remainder (Hamilton): the total is exact.
  while (given < connections) {
    auto best = static_cast<std::size_t>(std::max_element(remainder.begin(), remainder.end()) - remainder.begin());
    ++count[best];
    remainder[best] = -1;
    ++given;
  }
  std::vector<Kind> out;
  out.reserve(connections);
  for (std::size_t i = 0; i < kKindCount; ++i) out.insert(out.end(), count[i], static_cast<Kind>(i));
  return out;
}

void add_chaos_options(CLI::App& chaos, ChaosConfig& cfg) {
  chaos.add_option("url", cfg.url, "target, http[s]://HOST[:PORT][/PATH]; the only address the run connects to")
      ->required();
  // Durations go through parse_duration() at parse time, so that a typo gets our one-line message.
  auto duration_option = [&chaos](const char* flag, std::chrono::milliseconds& field, const char* help) {
    chaos
        .add_option_function<std::string>(
            flag, [flag, &field](const std::string& text) { field = duration_flag(flag, text, false); }, help)
        ->default_str(format_duration(field));
  };
  duration_option("--duration", cfg.duration, "how long the run lasts (it stops by itself)");
  chaos.add_option("--connections", cfg.connections, "concurrent clients, all kinds together")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{100'000}));
  chaos.add_option("--rate", cfg.rate, "new connections per second at most, all kinds (0: no limit)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  chaos.add_option("--mix", cfg.mix, "KIND=WEIGHT,... share of the clients by kind")->capture_default_str();
  chaos.add_flag("--json", cfg.json, "one JSON report on stdout instead of tables");
  chaos.add_option("--max-good-errors", cfg.max_good_errors, "good-client errors tolerated before the verdict fails")
      ->capture_default_str();
  chaos.add_option("--seed", cfg.seed, "random seed: the same seed makes the same choices")->capture_default_str();
  duration_option("--trickle", cfg.trickle, "pace of slowloris, slow-body, slow-read and tls-slow-handshake");
  chaos.add_option("--cacert", cfg.cacert,
                   "https: check the server's certificate against this PEM file (and the URL's host); "
                   "without it, no check");
  std::string kinds = "\nClient kinds (--mix):\n";
  for (std::size_t i = 0; i < kKindCount; ++i) {
    auto k = static_cast<Kind>(i);
    kinds += fmt::format("  {:<19} {}\n", name(k), describe(k));
  }
  kinds += "\nExit code: 0 when good clients were served throughout, 1 when not, 2 for bad flags.";
  chaos.footer(kinds);
  duration_option("--good-timeout", cfg.good_timeout, "a good request unanswered this long is an error");
}

void finish_chaos_config(ChaosConfig& cfg) {
  cfg.target = parse_url(cfg.url);
  cfg.weights = parse_mix(cfg.mix);
  if (!cfg.target.tls) {
    for (std::size_t i = 0; i < kKindCount; ++i) {
      auto k = static_cast<Kind>(i);
      if (tls_only(k) && cfg.weights[i] > 0)
        throw ChaosError(fmt::format("--mix: {} needs an https:// target", name(k)));
    }
    if (!cfg.cacert.empty()) throw ChaosError("--cacert: only for an https:// target");
    return;
  }
  cfg.tls = TlsSetup::create(cfg.cacert);
}

}  // namespace unbroken::chaos
