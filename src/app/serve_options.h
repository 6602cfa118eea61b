#pragma once
// The vocabulary of serve's option table, shared by its two readers inside app/: serve_config.cc
// (the table, the flags, the checks) and serve_config_file.cc (the TOML file and its [[proxy]]
// tables). Not for use outside them.

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "app/serve_config.h"

namespace unbroken::app::serve_options {

using Millis = std::chrono::milliseconds;
// Where a setting lives: in ServeConfig itself, in its HTTP limits, in their gzip settings, or in
// its upstream settings, so that each limit has its default in one place (http::HttpLimits) and no
// copy here. An upstream setting is also a [[proxy]] table's key (see kRouteOptions).
template <typename T>
struct Member {
  constexpr Member(T ServeConfig::*m) : own(m) {}
  constexpr Member(T http::HttpLimits::*m) : limit(m) {}
  constexpr Member(T http::GzipSettings::*m) : gzip(m) {}
  constexpr Member(T UpstreamConfig::*m) : up(m) {}
  T& of(ServeConfig& cfg) const {
    return own ? cfg.*own : limit ? cfg.limits.*limit : gzip ? cfg.limits.gzip.*gzip : cfg.upstream.*up;
  }
  const T& of(const ServeConfig& cfg) const {
    return own ? cfg.*own : limit ? cfg.limits.*limit : gzip ? cfg.limits.gzip.*gzip : cfg.upstream.*up;
  }
  bool operator==(const Member&) const = default;
  T ServeConfig::*own = nullptr;
  T http::HttpLimits::*limit = nullptr;
  T http::GzipSettings::*gzip = nullptr;
  T UpstreamConfig::*up = nullptr;
};
using Field = std::variant<Member<std::vector<std::string>>, Member<std::string>, Member<unsigned>, Member<Millis>,
                           Member<std::uint64_t>, Member<bool>, Member<AbortBudget>>;

// What a value must satisfy beyond parsing as its field's type.
enum class Check {
  kNone,
  kAddress,        // HOST:PORT
  kProxy,          // PREFIX=UPSTREAM[,UPSTREAM...]
  kAddressOrOff,   // HOST:PORT or "off"
  kDirectory,      // empty, or an existing directory
  kNotEmpty,       // the access log: "-" is stdout, "off" is none, "" is a mistake
  kLogFormat,      // json or text
  kUpstreamAbort,  // finish or close
  kCidrList,       // CIDR[,CIDR...], IPv4 or IPv6
  kBalance,        // round_robin or least_conn
  kHealthPath,     // an absolute path for the active check's GET
  kWritableDir,    // an existing directory we may create files in
  kOnOff,          // a boolean flag that takes its value: --flag on|off
  kSessionStore,   // memory, sqlite:PATH, redis://HOST:PORT[/DB]
  kCookieName,     // an RFC 6265 token
  kThreads,        // 0..kMaxThreads
  kPositive,       // duration or byte size > 0
  kPositiveCount,  // a number of things > 0, parsed like a size so "10k" works
  kCount,          // a number of things, 0 meaning no limit
  kRate,           // bytes a second, "1KiB/s" or "1KiB"; 0 meaning no minimum
};

// One row per setting: the flag and the TOML key are the same name, so they cannot drift apart.
struct OptionSpec {
  std::string_view flag;       // "--header-timeout"
  std::string_view key;        // "header_timeout" in the --config file
  std::string_view type_name;  // shown after the flag by --help
  std::string_view help;       // one line; " (default ...)" is appended from the ServeConfig
  Field field;
  Check check;
};

template <typename... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
// Implicit for aggregates in C++20, but clang 14 (the fuzzing build) does not deduce it yet.
template <typename... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

// A value that failed; the caller prefixes "--flag: " or "file:line: key: ". `line` is set when the
// culprit is an element of a TOML array rather than the key's own value.
struct BadValue {
  std::string message;
  unsigned line = 0;
};

inline constexpr std::string_view kConfigFlag = "--config";

// Keeps what() on one line whatever bytes a flag, a path or a file holds; quote() adds '...'.
std::string escape(std::string_view s);
std::string quote(std::string_view s);
// "serve.toml:3: " or, when toml++ has no position, "serve.toml: ".
std::string where(std::string_view path, unsigned line);
void check_writable_dir(const std::string& path);
// Parses and checks `values` (as given, never empty; scalars take the last) into the spec's field.
// Throws BadValue.
void apply(const OptionSpec& spec, ServeConfig& cfg, const std::vector<std::string>& values);
// The option with this TOML key, or nullptr.
const OptionSpec* find_by_key(std::string_view key);
// The setting a [[proxy]] table's key (other than prefix and upstreams) names, or nullptr with
// `hint` saying where a key known elsewhere belongs (" (...)", or empty).
const OptionSpec* route_option(std::string_view key, std::string& hint);

// A [[proxy]] table (or an inline table in the proxy array) as read and checked; its keys go over
// the global upstream settings once the flags are in (finish_serve_config).
struct ProxyTable {
  proxy::ProxyRoute route;
  std::vector<std::pair<const OptionSpec*, std::vector<std::string>>> keys;
};

// Reads the --config file into `cfg`, its proxy tables into `tables`. Throws ConfigError.
void load_config_file(const std::string& path, ServeConfig& cfg, std::vector<ProxyTable>& tables);
// Fills cfg.proxy_routes from cfg.proxy and `tables` over the final global settings. `source`
// prefixes a message about the routes ("--proxy: " or the file's "serve.toml: proxy: ").
void resolve_proxy_routes(ServeConfig& cfg, const std::vector<ProxyTable>& tables, const std::string& source);

}  // namespace unbroken::app::serve_options
