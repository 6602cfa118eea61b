// serve's flags: one table of options (flag, TOML key, help, how each value is checked and applied),
// read by the command line, the TOML file (serve_config_file.cc) and the man page alike. It is just
// over ~500 lines because the table and its checks are one list by design; the TOML side moved out
// already, and the checks are the next to go if it grows.

#include "app/serve_config.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>

#include "app/serve_options.h"
#include "base/units.h"
#include "net/socket.h"
#include "proxy/proxy_route.h"
#include "proxy/trusted_proxies.h"

namespace unbroken::app::serve_options {
namespace {

constexpr unsigned kMaxThreads = 256;

constexpr OptionSpec kOptions[] = {
    {"--listen", "listen", "HOST:PORT",
     "serve HTTP on this address; repeat for several, [::1]:8080 for IPv6. Under systemd socket "
     "activation (LISTEN_FDS) the passed sockets replace it, except those named https or admin",
     &ServeConfig::listen, Check::kAddress},
    {"--admin", "admin", "HOST:PORT",
     "admin listener address (metrics, dashboard), or off; a socket systemd passes named admin "
     "replaces it",
     &ServeConfig::admin, Check::kAddressOrOff},
    {"--root", "root", "DIR", "serve static files from this directory", &ServeConfig::root, Check::kDirectory},
    {"--log", "log", "FILE", "access log file, - for stdout, off for none", &ServeConfig::log, Check::kNotEmpty},
    {"--log-format", "log_format", "FORMAT", "access log format: json (one object a line) or text",
     &ServeConfig::log_format, Check::kLogFormat},
    {"--noise-interval", "noise_interval", "DURATION",
     "at most one summary line per outcome and route on stderr per interval", &ServeConfig::noise_interval,
     Check::kPositive},
    {"--threads", "threads", "N", "event-loop threads, 1..256; 0 means one per core", &ServeConfig::threads,
     Check::kThreads},
    {"--workers", "workers", "N", "threads for blocking handlers; 0 means one per core", &ServeConfig::workers,
     Check::kNone},
    {"--header-timeout", "header_timeout", "DURATION", "the whole request head must arrive within this",
     &http::HttpLimits::header_timeout, Check::kPositive},
    {"--body-timeout", "body_timeout", "DURATION", "longest wait for more request body bytes",
     &http::HttpLimits::body_timeout, Check::kPositive},
    {"--handler-timeout", "handler_timeout", "DURATION", "longest a handler may take to respond",
     &http::HttpLimits::handler_timeout, Check::kPositive},
    {"--send-timeout", "send_timeout", "DURATION", "longest wait for the client to accept response bytes",
     &http::HttpLimits::send_timeout, Check::kPositive},
    {"--min-send-rate", "min_send_rate", "RATE",
     "cut a client that reads slower than this, averaged over the send timeout (0: no minimum)",
     &http::HttpLimits::min_send_rate, Check::kRate},
    {"--keepalive-timeout", "keepalive_timeout", "DURATION", "how long an idle keep-alive connection stays open",
     &http::HttpLimits::keepalive_timeout, Check::kPositive},
    {"--drain-timeout", "drain_timeout", "DURATION", "on SIGTERM, time left to open requests; 0 closes at once",
     &http::HttpLimits::drain_timeout, Check::kNone},
    {"--max-header-bytes", "max_header_bytes", "SIZE", "largest request head accepted",
     &http::HttpLimits::max_header_bytes, Check::kPositive},
    {"--max-body", "max_body", "SIZE", "largest request body accepted", &http::HttpLimits::max_body, Check::kPositive},
    {"--max-connections", "max_connections", "N", "open client connections allowed per process",
     &ServeConfig::max_connections, Check::kPositiveCount},
    {"--max-connections-per-ip", "max_connections_per_ip", "N",
     "open connections allowed per client address; more are answered 503 (0: no limit)",
     &ServeConfig::max_connections_per_ip, Check::kCount},
    {"--diag", "diag", "", "mount the diagnostic routes under /diag/", &ServeConfig::diag, Check::kNone},
    {"--gzip", "gzip", "", "gzip text responses on the fly for clients that accept it", &http::GzipSettings::enabled,
     Check::kNone},
    {"--gzip-min-length", "gzip_min_length", "SIZE", "smallest known-length response --gzip compresses",
     &http::GzipSettings::min_length, Check::kPositive},
    {"--session-store", "session_store", "STORE", "sessions: memory, sqlite:PATH or redis://HOST:PORT[/DB]",
     &ServeConfig::session_store, Check::kSessionStore},
    {"--session-ttl", "session_ttl", "DURATION", "a session expires this long after its last use",
     &ServeConfig::session_ttl, Check::kPositive},
    {"--session-sweep", "session_sweep", "DURATION", "how often expired sessions are removed",
     &ServeConfig::session_sweep, Check::kPositive},
    {"--proxy", "proxy", "PREFIX=UPSTREAM",
     "forward requests under PREFIX to http://HOST:PORT, https://HOST:PORT or unix:/path (comma-separated: round "
     "robin); repeatable, the longest prefix wins over --root",
     &ServeConfig::proxy, Check::kProxy},
    {"--upstream-connect-timeout", "upstream_connect_timeout", "DURATION",
     "longest wait for an upstream's connect (and TLS handshake)", &UpstreamConfig::connect_timeout, Check::kPositive},
    {"--upstream-header-timeout", "upstream_header_timeout", "DURATION",
     "longest wait from the request sent to the upstream's response head", &UpstreamConfig::header_timeout,
     Check::kPositive},
    {"--upstream-read-timeout", "upstream_read_timeout", "DURATION",
     "longest wait for the next byte of an upstream's response body", &UpstreamConfig::read_timeout, Check::kPositive},
    {"--upstream-send-timeout", "upstream_send_timeout", "DURATION",
     "longest wait for an upstream to take the next byte of a request", &UpstreamConfig::send_timeout,
     Check::kPositive},
    {"--upstream-abort", "upstream_abort", "POLICY",
     "a client that leaves: finish (read the upstream's response into nothing, within --upstream-abort-budget) "
     "or close",
     &UpstreamConfig::abort, Check::kUpstreamAbort},
    {"--upstream-abort-budget", "upstream_abort_budget", "DURATION[/SIZE]",
     "after a client left (finish): how long and how many response bytes are read before the upstream is closed",
     &UpstreamConfig::abort_budget, Check::kNone},
    {"--upstream-keepalive", "upstream_keepalive", "N",
     "idle keep-alive connections kept per event loop and upstream (0: a new connection per request)",
     &UpstreamConfig::keepalive, Check::kCount},
    {"--upstream-idle-timeout", "upstream_idle_timeout", "DURATION",
     "longest an idle upstream connection is kept (never longer than its Keep-Alive: timeout=)",
     &UpstreamConfig::idle_timeout, Check::kPositive},
    {"--upstream-max-fails", "upstream_max_fails", "N",
     "refusals or timeouts in a row that take an upstream out for --upstream-fail-timeout (0: never)",
     &UpstreamConfig::max_fails, Check::kCount},
    {"--upstream-fail-timeout", "upstream_fail_timeout", "DURATION",
     "how long a failing upstream is skipped before one request tries it again", &UpstreamConfig::fail_timeout,
     Check::kPositive},
    {"--upstream-request-buffering", "upstream_request_buffering", "on|off",
     "read a request body whole before choosing the upstream (in memory, then a file under --temp-dir)",
     &UpstreamConfig::request_buffering, Check::kOnOff},
    {"--temp-dir", "temp_dir", "DIR", "buffered bodies beyond their memory share go to files here ($TMPDIR or /tmp)",
     &ServeConfig::temp_dir, Check::kWritableDir},
    {"--upstream-buffer", "upstream_buffer", "SIZE", "response bytes held in memory before the rest goes to a file",
     &UpstreamConfig::buffer, Check::kPositive},
    {"--upstream-max-temp", "upstream_max_temp", "SIZE", "the largest temp file one upstream response may fill",
     &UpstreamConfig::max_temp, Check::kPositive},
    {"--tunnel-idle-timeout", "tunnel_idle_timeout", "DURATION",
     "an upgraded connection (WebSocket) closes after this long without a byte either way",
     &UpstreamConfig::tunnel_idle_timeout, Check::kPositive},
    {"--upstream-ca", "upstream_ca", "FILE",
     "PEM CA certificates that https:// upstreams are verified against (empty: the system store)", &UpstreamConfig::ca,
     Check::kNone},
    {"--trusted-proxies", "trusted_proxies", "CIDR[,CIDR...]",
     "peers whose X-Forwarded-For, Forwarded and X-Request-Id are believed (IPv4/IPv6 CIDRs or addresses)",
     &ServeConfig::trusted_proxies, Check::kCidrList},
    {"--tls-listen", "tls_listen", "HOST:PORT",
     "serve HTTPS on this address (needs --tls-cert and --tls-key, or --tls-self-signed); repeatable. A "
     "socket systemd passes named https replaces it (the certificate flags stay)",
     &ServeConfig::tls_listen, Check::kAddress},
    {"--tls-cert", "tls_cert", "FILE",
     "PEM certificate and its chain; repeatable, paired in order with --tls-key, chosen by SNI, the first the "
     "default",
     &ServeConfig::tls_cert, Check::kNone},
    {"--tls-key", "tls_key", "FILE", "PEM private key of the --tls-cert in the same position; repeatable",
     &ServeConfig::tls_key, Check::kNone},
    {"--tls-handshake-timeout", "tls_handshake_timeout", "DURATION", "the TLS handshake must finish within this",
     &http::HttpLimits::tls_handshake_timeout, Check::kPositive},
    {"--tls-self-signed", "tls_self_signed", "",
     "without --tls-cert: make (first run) or reuse var/tls/localhost.pem and .key, a certificate for localhost",
     &ServeConfig::tls_self_signed, Check::kNone},
    {"--session-cookie", "session_cookie", "NAME", "the session cookie's name", &ServeConfig::session_cookie,
     Check::kCookieName},
};

// A [[proxy]] table's own keys, which no flag sets: the route's abort policy and request buffering
// (the --upstream-abort and --upstream-request-buffering settings under their short names), the
// balancer, the active check and response buffering. A table also takes the TOML key of every
// other upstream flag (upstream_read_timeout, upstream_keepalive, ...): see route_option().
constexpr OptionSpec kRouteOptions[] = {
    {"", "abort", "", "", &UpstreamConfig::abort, Check::kUpstreamAbort},
    {"", "request_buffering", "", "", &UpstreamConfig::request_buffering, Check::kNone},
    {"", "balance", "", "", &UpstreamConfig::balance, Check::kBalance},
    {"", "health", "", "", &UpstreamConfig::health, Check::kHealthPath},
    {"", "health_interval", "", "", &UpstreamConfig::health_interval, Check::kPositive},
    {"", "buffering", "", "", &UpstreamConfig::buffering, Check::kNone},
};

// Syntax only, net's own (what SocketAddress::parse accepts), so the config takes exactly what the
// server can bind; names are resolved when binding.
void check_address(std::string_view s, std::string_view alternatives) {
  std::string hint = "use HOST:PORT" + std::string(alternatives) + ", e.g. 127.0.0.1:8080 or [::1]:8080";
  auto bad = [&](std::string_view why) {
    return BadValue{"invalid address " + quote(s) + " (" + std::string(why) + ")"};
  };
  net::AddressSyntax a = net::parse_address_syntax(s);
  // The server binds TCP listeners only; a unix: address is for connecting (the proxy's upstreams).
  if (a.is_unix) throw bad("cannot listen on a unix socket; " + hint);
  if (a.error == net::AddressError::kNotHostPort) throw bad(hint);
  if (a.error != net::AddressError::kNone) throw bad(net::describe(a.error));
}

void check_directory(const std::string& path) {
  if (path.empty()) return;  // no static files
  std::error_code ec;
  auto st = std::filesystem::status(path, ec);
  if (ec) throw BadValue{"cannot access " + quote(path) + ": " + ec.message()};
  if (!std::filesystem::is_directory(st)) throw BadValue{quote(path) + " is not a directory"};
}

// "DURATION[/SIZE]": the size keeps its default when only a duration is given.
AbortBudget parse_abort_budget(const std::string& text, AbortBudget budget) {
  auto bad = [&](std::string_view why) {
    return BadValue{"invalid budget " + quote(text) + " (" + std::string(why) + ")"};
  };
  std::string_view time = text, size;
  if (auto slash = time.find('/'); slash != std::string_view::npos) {
    size = time.substr(slash + 1);
    time = time.substr(0, slash);
    auto n = parse_size(size);
    if (!n || *n == 0) throw bad("use DURATION or DURATION/SIZE with both greater than 0, e.g. 30s/8MiB");
    budget.bytes = *n;
  }
  auto d = parse_duration(time);
  if (!d || d->count() == 0) throw bad("use DURATION or DURATION/SIZE with both greater than 0, e.g. 30s/8MiB");
  budget.time = *d;
  return budget;
}

void check_health_path(const std::string& path) {
  // It goes on a request line as is: an origin-form target, nothing that would split the line.
  bool printable = std::all_of(path.begin(), path.end(), [](char c) { return c > 0x20 && c < 0x7f; });
  if (path.empty() || path.front() != '/' || !printable)
    throw BadValue{"invalid path " + quote(path) + " (use an absolute path such as /healthz)"};
}

// Whole decimal number up to `limit`; `too_large` finishes the message when it is above.
unsigned parse_count(const std::string& text, unsigned limit, std::string_view too_large) {
  if (text.empty() || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    throw BadValue{"invalid count " + quote(text) + " (use a whole number)"};
  }
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || n > limit) throw BadValue{"invalid " + std::string(too_large)};
  return static_cast<unsigned>(n);
}

bool parse_bool(const std::string& text, Check check) {
  if (text == "true" || text == "1" || text == "yes" || text == "on") return true;
  if (text == "false" || text == "0" || text == "no" || text == "off") return false;
  throw BadValue{"invalid value " + quote(text) +
                 (check == Check::kOnOff ? " (use on or off)" : " (use true or false)")};
}

// Help text: the default is whatever `cfg` holds when the options are registered.
std::string default_text(const OptionSpec& spec, const ServeConfig& cfg) {
  return std::visit(
      Overloaded{
          [&](Member<std::vector<std::string>> f) {
            std::string out;
            for (const auto& v : f.of(cfg)) out += (out.empty() ? "" : " ") + v;
            return out.empty() ? std::string("none") : out;
          },
          [&](Member<std::string> f) { return f.of(cfg).empty() ? std::string("none") : f.of(cfg); },
          [&](Member<unsigned> f) { return std::to_string(f.of(cfg)); },
          [&](Member<Millis> f) { return format_duration(f.of(cfg)); },
          [&](Member<std::uint64_t> f) {
            if (spec.check == Check::kPositiveCount || spec.check == Check::kCount) return std::to_string(f.of(cfg));
            return format_size(f.of(cfg)) + (spec.check == Check::kRate ? "/s" : "");
          },
          [&](Member<bool> f) { return std::string(f.of(cfg) ? "on" : "off"); },
          [&](Member<AbortBudget> f) { return format_duration(f.of(cfg).time) + "/" + format_size(f.of(cfg).bytes); },
      },
      spec.field);
}

// Certificates and keys pair in order, and need a TLS listener as it needs them. The files
// themselves are read at start (net::TlsServerContext), so a config check needs no file.
void check_tls(const ServeConfig& cfg) {
  if (cfg.tls_cert.size() != cfg.tls_key.size()) {
    throw ConfigError("--tls-key: " + std::to_string(cfg.tls_cert.size()) + " --tls-cert but " +
                      std::to_string(cfg.tls_key.size()) + " --tls-key (each certificate needs its key, in order)");
  }
  if (cfg.tls_listen.empty() && !cfg.tls_cert.empty()) throw ConfigError("--tls-cert: no --tls-listen to serve it on");
  if (cfg.tls_listen.empty() && cfg.tls_self_signed)
    throw ConfigError("--tls-self-signed: no --tls-listen to serve it on");
  if (!cfg.tls_listen.empty() && cfg.tls_cert.empty() && !cfg.tls_self_signed)
    throw ConfigError("--tls-listen: no certificate (give --tls-cert FILE --tls-key FILE, or --tls-self-signed)");
}

bool is_upstream_setting(const Field& field) {
  return std::visit([](const auto& f) { return f.up != nullptr; }, field);
}

}  // namespace

// Keeps what() on one line whatever bytes a flag, a path or a file holds.
std::string escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

std::string quote(std::string_view s) {
  return "'" + escape(s) + "'";
}

// "serve.toml:3: " or, when toml++ has no position, "serve.toml: ".
std::string where(std::string_view path, unsigned line) {
  return escape(path) + (line > 0 ? ":" + std::to_string(line) : "") + ": ";
}

// The temp directory must take files now, not at the first large body.
void check_writable_dir(const std::string& path) {
  if (path.empty()) throw BadValue{"must not be empty"};
  check_directory(path);
  if (::access(path.c_str(), W_OK | X_OK) != 0)
    throw BadValue{quote(path) + " is not writable: " + std::strerror(errno)};
}

// Parses and checks `values` (as given, never empty; scalars take the last) into the spec's field.
void apply(const OptionSpec& spec, ServeConfig& cfg, const std::vector<std::string>& values) {
  const std::string& text = values.back();
  std::visit(
      Overloaded{
          [&](Member<std::vector<std::string>> f) {
            std::string error;
            for (const auto& v : values) {
              if (spec.check == Check::kAddress) {
                check_address(v, "");
              } else if (spec.check == Check::kProxy && !proxy::parse_proxy_route(v, error)) {
                throw BadValue{escape(error)};
              } else if (spec.check == Check::kNone && v.empty()) {
                throw BadValue{"must not be empty"};
              }
            }
            f.of(cfg) = values;
          },
          [&](Member<std::string> f) {
            if (spec.check == Check::kAddressOrOff && text != "off") check_address(text, " or off");
            if (spec.check == Check::kDirectory) check_directory(text);
            if (spec.check == Check::kWritableDir) check_writable_dir(text);
            if (spec.check == Check::kHealthPath && !text.empty()) check_health_path(text);
            if (spec.check == Check::kBalance && text != "round_robin" && text != "least_conn")
              throw BadValue{"invalid balance " + quote(text) + " (use round_robin or least_conn)"};
            if (spec.check == Check::kNotEmpty && text.empty()) throw BadValue{"must not be empty (use - for stdout)"};
            if (spec.check == Check::kLogFormat && text != "json" && text != "text")
              throw BadValue{"invalid format " + quote(text) + " (use json or text)"};
            if (std::string error; spec.check == Check::kCidrList && !proxy::TrustedProxies::parse(text, error))
              throw BadValue{escape(error)};
            if (spec.check == Check::kUpstreamAbort && text != "finish" && text != "close")
              throw BadValue{"invalid policy " + quote(text) + " (use finish or close)"};
            if (spec.check == Check::kSessionStore && text != "memory" &&
                !(text.rfind("sqlite:", 0) == 0 && text.size() > 7) &&
                !(text.rfind("redis://", 0) == 0 && text.size() > 8))
              throw BadValue{"invalid store " + quote(text) + " (use memory, sqlite:PATH or redis://HOST:PORT[/DB])"};
            if (spec.check == Check::kCookieName &&
                (text.empty() || text.find_first_of(" \t\"(),/:;<=>?@[\\]{}") != std::string::npos))
              throw BadValue{"invalid cookie name " + quote(text)};
            f.of(cfg) = text;
          },
          [&](Member<unsigned> f) {
            f.of(cfg) =
                spec.check == Check::kThreads
                    ? parse_count(text, kMaxThreads,
                                  "thread count " + quote(text) + " (use 1..256, or 0 for one per core)")
                    : parse_count(text, std::numeric_limits<unsigned>::max(), "count " + quote(text) + " (too large)");
          },
          [&](Member<Millis> f) {
            auto d = parse_duration(text);
            if (!d) throw BadValue{"invalid duration " + quote(text) + " (use e.g. 500ms, 2s, 1m)"};
            if (spec.check == Check::kPositive && d->count() == 0) {
              throw BadValue{"invalid duration " + quote(text) + " (must be greater than 0)"};
            }
            f.of(cfg) = *d;
          },
          [&](Member<std::uint64_t> f) {
            bool count = spec.check == Check::kPositiveCount || spec.check == Check::kCount;
            bool rate = spec.check == Check::kRate;
            std::string noun = count ? "invalid count " : rate ? "invalid rate " : "invalid size ";
            std::string_view number = text;
            if (rate && number.ends_with("/s")) number.remove_suffix(2);
            auto n = parse_size(number);
            if (!n)
              throw BadValue{noun + quote(text) +
                             (count  ? " (use e.g. 10000 or 10k)"
                              : rate ? " (use e.g. 1KiB/s or 512; 0 for no minimum)"
                                     : " (use e.g. 65536, 64KiB, 8MiB)")};
            if (*n == 0 && spec.check != Check::kCount && !rate)
              throw BadValue{noun + quote(text) + " (must be greater than 0)"};
            f.of(cfg) = *n;
          },
          [&](Member<bool> f) { f.of(cfg) = parse_bool(text, spec.check); },
          [&](Member<AbortBudget> f) { f.of(cfg) = parse_abort_budget(text, f.of(cfg)); },
      },
      spec.field);
}

const OptionSpec* find_by_key(std::string_view key) {
  for (const OptionSpec& spec : kOptions) {
    if (spec.key == key) return &spec;
  }
  return nullptr;
}

// A [[proxy]] table's key other than prefix and upstreams: its own, or an upstream flag's key
// unless that setting has its own name in a table.
const OptionSpec* route_option(std::string_view key, std::string& hint) {
  for (const OptionSpec& spec : kRouteOptions) {
    if (spec.key == key) return &spec;
  }
  const OptionSpec* spec = find_by_key(key);
  if (spec == nullptr) return nullptr;
  // TOML puts every key below a [[proxy]] header into that table: a server-wide key there is
  // most likely meant for the top of the file.
  hint = " (a server-wide key: put it above the first [[proxy]] table)";
  if (!is_upstream_setting(spec->field)) return nullptr;
  for (const OptionSpec& own : kRouteOptions) {
    if (own.field == spec->field) {
      hint = " (in a [[proxy]] table it is " + quote(own.key) + ")";
      return nullptr;
    }
  }
  hint.clear();
  return spec;
}

// Every route with its settings: the proxy strings with the global ones, the tables with their
// keys over them. `source` names where the routes came from, for a prefix taken twice.
void resolve_proxy_routes(ServeConfig& cfg, const std::vector<ProxyTable>& tables, const std::string& source) {
  cfg.proxy_routes.clear();
  for (const auto& spec : cfg.proxy) {
    std::string error;
    auto route = proxy::parse_proxy_route(spec, error);  // checked by apply() already
    if (!route) throw ConfigError(source + escape(error));
    cfg.proxy_routes.push_back({std::move(*route), cfg.upstream});
  }
  for (const ProxyTable& t : tables) {
    ServeConfig scratch;
    scratch.upstream = cfg.upstream;
    for (const auto& [spec, values] : t.keys) apply(*spec, scratch, values);  // checked when loaded
    cfg.proxy_routes.push_back({t.route, scratch.upstream});
  }
  for (std::size_t i = 0; i < cfg.proxy_routes.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      const std::string& prefix = cfg.proxy_routes[i].route.prefix;
      if (cfg.proxy_routes[j].route.prefix == prefix)
        throw ConfigError(source + "two routes have the prefix " + quote(prefix));
    }
  }
  if (cfg.proxy_routes.empty()) return;
  // Checked when given; the default ($TMPDIR or /tmp) only when a proxy will use it.
  try {
    check_writable_dir(cfg.temp_dir);
  } catch (const BadValue& e) {
    throw ConfigError("--temp-dir: " + e.message);
  }
}

}  // namespace unbroken::app::serve_options

namespace unbroken::app {

using namespace serve_options;

void add_serve_options(CLI::App& serve, ServeConfig& cfg) {
  for (const OptionSpec& spec : kOptions) {
    const std::string name(spec.flag);
    const std::string help = std::string(spec.help) + " (default " + default_text(spec, cfg) + ")";
    if (std::holds_alternative<Member<bool>>(spec.field) && spec.check != Check::kOnOff) {
      // add_flag(name, const std::string&) registers a flag with only a description; a non-const
      // string would be taken as the variable to store into.
      serve.add_flag(name, help);
      continue;
    }
    CLI::Option* opt = serve.add_option(name, CLI::callback_t{}, help)->type_name(std::string(spec.type_name));
    // A repeated scalar flag takes the last value, so a wrapper script can append overrides.
    if (std::holds_alternative<Member<std::vector<std::string>>>(spec.field)) {
      opt->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    } else {
      opt->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    }
  }
  serve
      .add_option(std::string(kConfigFlag), CLI::callback_t{},
                  "TOML file with these settings; flags override it (default none)")
      ->type_name("FILE")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

void finish_serve_config(CLI::App& serve, ServeConfig& cfg) {
  if (const CLI::Option* opt = serve.get_option_no_throw(std::string(kConfigFlag)); opt && opt->count() > 0) {
    cfg.config_file = opt->results().back();
  }
  std::vector<ProxyTable> tables;
  if (!cfg.config_file.empty()) load_config_file(cfg.config_file, cfg, tables);
  std::string proxy_source = escape(cfg.config_file) + ": proxy: ";

  for (const OptionSpec& spec : kOptions) {
    const CLI::Option* opt = serve.get_option_no_throw(std::string(spec.flag));
    if (opt == nullptr || opt->count() == 0) continue;
    try {
      apply(spec, cfg, opt->results());
    } catch (const BadValue& e) {
      throw ConfigError(std::string(spec.flag) + ": " + e.message);
    }
    if (spec.check == Check::kProxy) {
      tables.clear();  // --proxy replaces the file's routes, strings and tables alike
      proxy_source = std::string(spec.flag) + ": ";
    }
  }
  resolve_proxy_routes(cfg, tables, proxy_source);
  check_tls(cfg);
}

std::string default_temp_dir() {
  const char* dir = std::getenv("TMPDIR");
  return dir != nullptr && *dir != '\0' ? std::string(dir) : std::string("/tmp");
}

}  // namespace unbroken::app
