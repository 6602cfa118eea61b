#pragma once
// What `unbroken chaos` runs with: the target, how long, how many clients of which kinds.

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "chaos/kind.h"
#include "net/socket.h"

namespace CLI {
class App;
}  // namespace CLI

namespace unbroken::chaos {

// The one address a run ever connects to, with the Host header and path of its requests.
struct Target {
  net::SocketAddress address;
  std::string host;  // Host header: as written in the URL
  std::string path;  // request-target, "/" when the URL has none
  bool tls = false;  // https://
  std::string name;  // the host alone (no port, no brackets): SNI, and what a certificate must name
};

class TlsSetup;

struct ChaosConfig {
  std::string url;
  std::chrono::milliseconds duration{30'000};
  std::size_t connections = 50;  // concurrent clients, all kinds together
  double rate = 0;               // new connections per second, all kinds; 0: as fast as they end
  std::string mix =
      "good=50,hangup-wait=10,abort-response=10,rst-response=5,slowloris=5,slow-read=5,stall=5,idle=5,refresh-storm=5";
  bool json = false;
  std::uint64_t max_good_errors = 0;
  std::uint64_t seed = 1;
  std::chrono::milliseconds trickle{1'000};       // pace of slowloris, slow-body and slow-read
  std::chrono::milliseconds good_timeout{5'000};  // a good request unanswered this long is an error
  std::string cacert;  // https: check the server's certificate against this PEM file; empty: no check

  // Filled by finish_chaos_config().
  Target target;
  std::array<double, kKindCount> weights{};
  std::shared_ptr<TlsSetup> tls;  // https:// targets
};

class ChaosError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

void add_chaos_options(CLI::App& chaos, ChaosConfig& cfg);
// Validates the parsed flags, resolves the URL and loads --cacert. Throws ChaosError with a
// one-line message (a TLS-only kind with an http:// target, a --cacert that cannot be used).
void finish_chaos_config(ChaosConfig& cfg);

// "http[s]://host[:port][/path]" (port 80 or 443 by default). Throws ChaosError.
Target parse_url(std::string_view url);
// "good=50,slowloris=5": weights by kind. Throws ChaosError naming the bad item.
std::array<double, kKindCount> parse_mix(std::string_view mix);
// Shares `connections` out by weight (largest remainder), every kind with a weight getting at
// least one client when there are enough; returns the kind of each client, kinds in enum order.
std::vector<Kind> assign_clients(const std::array<double, kKindCount>& weights, std::size_t connections);

}  // namespace unbroken::chaos
