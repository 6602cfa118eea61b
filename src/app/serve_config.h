#pragma once
// What `unbroken serve` runs with: built-in defaults, then a TOML file (--config), then the flags
// actually given on the command line, each step overriding the previous one.

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "http/http_limits.h"
#include "proxy/proxy_route.h"

// CLI11 declares this itself (CLI/App.hpp); declaring it here keeps CLI11 out of every file that only
// needs ServeConfig.
namespace CLI {
class App;
}  // namespace CLI

namespace unbroken::app {

// --upstream-abort-budget DURATION[/SIZE]: how long, and how many response bytes, an upstream is
// read into nothing after its client left (the finish policy); past either it is closed.
struct AbortBudget {
  std::chrono::milliseconds time{30'000};
  std::uint64_t bytes = 8 * 1024 * 1024;
  bool operator==(const AbortBudget&) const = default;
};

// One proxy route's upstream settings: the --upstream-* flags, and for a [[proxy]] table its own
// keys over them. serve copies them into the route's proxy::ProxySettings, whose defaults these
// match (a unit test compares them).
struct UpstreamConfig {
  std::chrono::milliseconds connect_timeout{2'000};
  std::chrono::milliseconds header_timeout{60'000};
  std::chrono::milliseconds read_timeout{60'000};
  std::chrono::milliseconds send_timeout{30'000};
  std::string abort = "finish";  // a client that leaves: finish (read the rest) or close
  AbortBudget abort_budget;
  std::uint64_t keepalive = 32;  // idle pooled connections per loop and upstream; 0: no pooling
  std::chrono::milliseconds idle_timeout{1'000};
  std::uint64_t max_fails = 3;  // 0: never taken out by failures
  std::chrono::milliseconds fail_timeout{10'000};
  bool request_buffering = true;
  std::uint64_t buffer = 1024 * 1024;              // response bytes held in memory before a temp file
  std::uint64_t max_temp = 1024ull * 1024 * 1024;  // the largest response temp file
  std::chrono::milliseconds tunnel_idle_timeout{60'000};
  std::string ca;  // --upstream-ca: PEM CAs that https:// upstreams are verified against; empty: the system store
  // [[proxy]] table keys only, no flag.
  std::string balance = "round_robin";  // or least_conn
  std::string health;                   // GET this path every health_interval; empty: no active check
  std::chrono::milliseconds health_interval{5'000};
  bool buffering = true;  // false: the response streams through with back-pressure
};

// A proxy route ready to mount: where, to whom, with which settings.
struct ProxyRouteConfig {
  proxy::ProxyRoute route;
  UpstreamConfig upstream;
};

// $TMPDIR, or /tmp when it is unset or empty.
[[nodiscard]] std::string default_temp_dir();

struct ServeConfig {
  std::vector<std::string> listen{"127.0.0.1:8080"};  // HOST:PORT, repeatable; [::1]:8080 for IPv6
  std::string admin = "127.0.0.1:9090";               // "off" disables the admin listener
  std::string root;                                   // empty: no static files
  std::string log = "-";                              // access log file, "-" = stdout
  std::string log_format = "json";                    // json or text
  std::chrono::milliseconds noise_interval{60'000};   // operational-log summaries at most this often
  unsigned threads = 0;                               // 0 = number of cores
  unsigned workers = 0;                               // blocking-handler pool size, 0 = number of cores
  // Timeouts, sizes, the minimum send rate and on-the-fly gzip, with the server's own defaults
  // (http/loop_context.h): the flags write into it and serve hands it to the server as is.
  http::HttpLimits limits;
  std::uint64_t max_connections = 10'000;    // per process
  std::uint64_t max_connections_per_ip = 0;  // per client address; 0 = no limit
  bool diag = false;
  std::string session_store = "sqlite:./var/sessions.db";  // memory, sqlite:PATH or redis://HOST:PORT[/DB]
  std::chrono::milliseconds session_ttl{30 * 60'000};      // sliding: each use extends it
  std::chrono::milliseconds session_sweep{60'000};         // how often expired sessions are removed
  std::string session_cookie = "ub_session";
  // Reverse proxy: "PREFIX=UPSTREAM[,UPSTREAM...]" each, checked (proxy::parse_proxy_route); the
  // --proxy flags, or the file's proxy strings.
  std::vector<std::string> proxy;
  UpstreamConfig upstream;                    // the --upstream-* and --tunnel-idle-timeout flags
  std::string trusted_proxies;                // CIDR[,CIDR...] (proxy::TrustedProxies); empty: trust nobody
  std::string temp_dir = default_temp_dir();  // buffered bodies; checked to be a writable directory
  // Every proxy route, filled by finish_serve_config: each `proxy` string with the global upstream
  // settings, then each [[proxy]] table of the file with its own keys over them. --proxy flags
  // replace the file's routes of both forms, as --listen replaces the file's listen.
  std::vector<ProxyRouteConfig> proxy_routes;
  std::string config_file;  // --config
  // TLS ([tls] in the file): listeners, and the certificates with their keys, paired in order; the
  // first pair is the default, the others are chosen by SNI. --tls-self-signed makes a certificate
  // for localhost on first run (under var/) when no --tls-cert is given.
  std::vector<std::string> tls_listen;
  std::vector<std::string> tls_cert;
  std::vector<std::string> tls_key;
  bool tls_self_signed = false;
};

// A bad flag, config file or value. what() is one line naming the flag ("--max-body: ...") or the file,
// line and key ("serve.toml:3: max_body: ...") and quoting the bad value, ready to print as is.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Registers the serve flags on `serve`. CLI11 keeps the values as text until finish_serve_config(), so
// that a bad value gets our message and the --config file can go underneath the flags. The help texts
// show the defaults currently in `cfg`; no reference to it is kept.
void add_serve_options(CLI::App& serve, ServeConfig& cfg);

// Call after a successful parse of `serve`: loads --config if given, applies the given flags over it
// and validates every value. Throws ConfigError; `cfg` is then partly updated and should be dropped.
void finish_serve_config(CLI::App& serve, ServeConfig& cfg);

}  // namespace unbroken::app
