// `unbroken serve` options: flags through a real CLI::App, TOML files written to a temporary
// directory, flags over the file, and the exact one-line message for each kind of mistake.
#include "app/serve_config.h"

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "net/socket.h"
#include "serve_config_rig.h"

namespace unbroken::app {
namespace {

TEST_F(ServeConfigTest, NoFlagsKeepsTheDefaults) {
  ServeConfig cfg = parse({});
  ServeConfig def;
  EXPECT_EQ(cfg.listen, def.listen);
  EXPECT_EQ(cfg.admin, def.admin);
  EXPECT_EQ(cfg.root, "");
  EXPECT_EQ(cfg.log, "-");
  EXPECT_EQ(cfg.threads, 0u);
  EXPECT_EQ(cfg.limits.header_timeout, milliseconds{10'000});
  EXPECT_EQ(cfg.limits.drain_timeout, milliseconds{10'000});
  EXPECT_EQ(cfg.limits.max_header_bytes, 16u * 1024);
  EXPECT_EQ(cfg.limits.max_body, 8u * 1024 * 1024);
  EXPECT_EQ(cfg.max_connections, 10'000u);
  EXPECT_FALSE(cfg.diag);
  EXPECT_EQ(cfg.config_file, "");
}

// serve's limits are the server's own (http::HttpLimits), defaults included: no copy to drift.
TEST_F(ServeConfigTest, LimitsDefaultToTheServersOwn) {
  ServeConfig cfg = parse({});
  const http::HttpLimits server;
  const http::HttpLimits& l = cfg.limits;
  EXPECT_EQ(l.header_timeout, server.header_timeout);
  EXPECT_EQ(l.body_timeout, server.body_timeout);
  EXPECT_EQ(l.handler_timeout, server.handler_timeout);
  EXPECT_EQ(l.send_timeout, server.send_timeout);
  EXPECT_EQ(l.keepalive_timeout, server.keepalive_timeout);
  EXPECT_EQ(l.drain_timeout, server.drain_timeout);
  EXPECT_EQ(l.min_send_rate, server.min_send_rate);
  EXPECT_EQ(l.linger_timeout, server.linger_timeout);
  EXPECT_EQ(l.max_header_bytes, server.max_header_bytes);
  EXPECT_EQ(l.max_body, server.max_body);
  EXPECT_EQ(l.max_buffered_input, server.max_buffered_input);
  EXPECT_EQ(l.gzip.enabled, server.gzip.enabled);
  EXPECT_EQ(l.gzip.min_length, server.gzip.min_length);
  EXPECT_EQ(l.output_high_water, server.output_high_water);
  EXPECT_EQ(l.output_low_water, server.output_low_water);
}

// Each limit flag lands in the field of HttpLimits that the server reads.
TEST_F(ServeConfigTest, LimitFlagsSetTheServersFields) {
  ServeConfig cfg = parse({"--header-timeout",
                           "1s",
                           "--body-timeout",
                           "2s",
                           "--handler-timeout",
                           "3s",
                           "--send-timeout",
                           "4s",
                           "--keepalive-timeout",
                           "5s",
                           "--drain-timeout",
                           "6s",
                           "--min-send-rate",
                           "7",
                           "--max-header-bytes",
                           "8KiB",
                           "--max-body",
                           "9KiB",
                           "--gzip",
                           "--gzip-min-length",
                           "10"});
  const http::HttpLimits& l = cfg.limits;
  EXPECT_EQ(l.header_timeout, milliseconds{1'000});
  EXPECT_EQ(l.body_timeout, milliseconds{2'000});
  EXPECT_EQ(l.handler_timeout, milliseconds{3'000});
  EXPECT_EQ(l.send_timeout, milliseconds{4'000});
  EXPECT_EQ(l.keepalive_timeout, milliseconds{5'000});
  EXPECT_EQ(l.drain_timeout, milliseconds{6'000});
  EXPECT_EQ(l.min_send_rate, 7u);
  EXPECT_EQ(l.max_header_bytes, 8u * 1024);
  EXPECT_EQ(l.max_body, 9u * 1024);
  EXPECT_TRUE(l.gzip.enabled);
  EXPECT_EQ(l.gzip.min_length, 10u);
}

TEST_F(ServeConfigTest, EveryFlagReachesItsField) {
  ServeConfig cfg = parse({"--listen",
                           "0.0.0.0:80",
                           "--admin",
                           "off",
                           "--root",
                           dir_.string(),
                           "--log",
                           "/tmp/access.log",
                           "--threads",
                           "4",
                           "--workers",
                           "16",
                           "--header-timeout",
                           "500ms",
                           "--body-timeout",
                           "2s",
                           "--handler-timeout",
                           "1.5s",
                           "--send-timeout",
                           "1m",
                           "--keepalive-timeout",
                           "1h",
                           "--drain-timeout",
                           "0",
                           "--max-header-bytes",
                           "64KiB",
                           "--max-body",
                           "10m",
                           "--max-connections",
                           "10k",
                           "--max-connections-per-ip",
                           "0",
                           "--diag"});
  EXPECT_EQ(cfg.max_connections_per_ip, 0u) << "0 is no limit, and accepted";
  EXPECT_EQ(cfg.listen, std::vector<std::string>{"0.0.0.0:80"});
  EXPECT_EQ(cfg.admin, "off");
  EXPECT_EQ(cfg.root, dir_.string());
  EXPECT_EQ(cfg.log, "/tmp/access.log");
  EXPECT_EQ(cfg.threads, 4u);
  EXPECT_EQ(cfg.workers, 16u);
  EXPECT_EQ(cfg.limits.header_timeout, milliseconds{500});
  EXPECT_EQ(cfg.limits.body_timeout, milliseconds{2'000});
  EXPECT_EQ(cfg.limits.handler_timeout, milliseconds{1'500});
  EXPECT_EQ(cfg.limits.send_timeout, milliseconds{60'000});
  EXPECT_EQ(cfg.limits.keepalive_timeout, milliseconds{3'600'000});
  EXPECT_EQ(cfg.limits.drain_timeout, milliseconds{0});
  EXPECT_EQ(cfg.limits.max_header_bytes, 64u * 1024);
  EXPECT_EQ(cfg.limits.max_body, 10u * 1024 * 1024);
  EXPECT_EQ(cfg.max_connections, 10u * 1024);
  EXPECT_TRUE(cfg.diag);
}

TEST_F(ServeConfigTest, ListenRepeatsAndReplacesTheDefault) {
  ServeConfig cfg = parse({"--listen", "127.0.0.1:0", "--listen=[::1]:8080", "--listen", "*:81"});
  EXPECT_EQ(cfg.listen, (std::vector<std::string>{"127.0.0.1:0", "[::1]:8080", "*:81"}));
}

TEST_F(ServeConfigTest, ProxyRepeatsAndUpstreamTimeoutsParse) {
  ServeConfig cfg = parse({"--proxy", "/api=http://127.0.0.1:8000,unix:/run/app.sock", "--proxy=/=http://[::1]:9",
                           "--upstream-connect-timeout", "500ms", "--upstream-header-timeout", "3s",
                           "--upstream-read-timeout", "4s", "--upstream-abort", "close"});
  EXPECT_EQ(cfg.upstream.abort, "close");
  EXPECT_EQ(cfg.proxy, (std::vector<std::string>{"/api=http://127.0.0.1:8000,unix:/run/app.sock", "/=http://[::1]:9"}));
  EXPECT_EQ(cfg.upstream.connect_timeout, milliseconds{500});
  EXPECT_EQ(cfg.upstream.header_timeout, milliseconds{3'000});
  EXPECT_EQ(cfg.upstream.read_timeout, milliseconds{4'000});
  ServeConfig def = parse({});
  EXPECT_TRUE(def.proxy.empty());
  EXPECT_EQ(def.upstream.abort, "finish");
  EXPECT_EQ(def.upstream.connect_timeout, milliseconds{2'000});
  EXPECT_EQ(def.upstream.header_timeout, milliseconds{60'000});
  EXPECT_EQ(def.upstream.read_timeout, milliseconds{60'000});
}

TEST_F(ServeConfigTest, BadProxyIsOneLineNamingIt) {
  EXPECT_EQ(error_of({"--proxy", "/api=ftp://h:1"}),
            "--proxy: invalid upstream 'ftp://h:1' (use http://HOST:PORT, https://HOST:PORT or unix:/path)");
  EXPECT_EQ(error_of({"--proxy", "/ok=http://h:1", "--proxy", "nope"}),
            "--proxy: invalid proxy 'nope' (use PREFIX=UPSTREAM[,UPSTREAM...])");
  EXPECT_EQ(error_of({"--upstream-abort", "ignore"}),
            "--upstream-abort: invalid policy 'ignore' (use finish or close)");
}

TEST_F(ServeConfigTest, TrustedProxiesParseOrNameTheBadElement) {
  EXPECT_EQ(parse({}).trusted_proxies, "");
  EXPECT_EQ(parse({"--trusted-proxies", "10.0.0.0/8,::1"}).trusted_proxies, "10.0.0.0/8,::1");
  EXPECT_EQ(error_of({"--trusted-proxies", "10.0.0.0/8,10.0.0.0/40"}),
            "--trusted-proxies: invalid trusted proxy '10.0.0.0/40' (an IPv4 prefix is 0..32)");
  EXPECT_EQ(parse({"--config", write("trust.toml", "trusted_proxies = \"fd00::/8\"\n")}).trusted_proxies, "fd00::/8");
  std::string bad = write("bad-trust.toml", "trusted_proxies = \"lb.internal\"\n");
  EXPECT_NE(error_of({"--config", bad}).find("trusted_proxies: invalid trusted proxy 'lb.internal'"), std::string::npos)
      << error_of({"--config", bad});
}

TEST_F(ServeConfigTest, RepeatedScalarFlagTakesTheLast) {
  ServeConfig cfg = parse({"--header-timeout", "1s", "--header-timeout=2s", "--threads", "1", "--threads", "2"});
  EXPECT_EQ(cfg.limits.header_timeout, milliseconds{2'000});
  EXPECT_EQ(cfg.threads, 2u);
}

TEST_F(ServeConfigTest, AcceptsEveryAddressForm) {
  // Names pass the syntax check here and are resolved when the listener binds; an empty host and
  // "*" mean every interface, as in net::SocketAddress::parse.
  for (std::string addr : {"127.0.0.1:8080", "0.0.0.0:0", "localhost:65535", "my-host.example_1:80", ":8080", "*:80",
                           "[::1]:8080", "[::]:443"}) {
    EXPECT_EQ(error_of({"--listen", addr, "--admin", addr}), "") << addr;
  }
}

TEST_F(ServeConfigTest, TakesExactlyTheAddressesTheServerCanParse) {
  // The first five net::SocketAddress::parse took and the config refused, when each had its own
  // rules; unix: parses (for connecting) but is no listen address.
  struct Row {
    std::string addr;
    bool listens;
  };
  const Row kRows[] = {
      {"::1:8080", false},
      {"[1.2.3.4]:80", false},
      {"[]:80", false},
      {"[*]:80", false},
      {"[fe80::1%lo]:80", false},
      {"127.0.0.1:8080", true},
      {"[::1]:8080", true},
      {"*:80", true},
      {":80", true},
      {"localhost:80", true},
      {"127.0.0.1:65536", false},
      {"a b:80", false},
  };
  for (const auto& r : kRows) {
    EXPECT_EQ(error_of({"--listen", r.addr}).empty(), r.listens) << r.addr;
    EXPECT_EQ(net::SocketAddress::parse(r.addr).has_value(), r.listens) << r.addr;
  }
  EXPECT_TRUE(net::SocketAddress::parse("unix:/run/app.sock"));
  EXPECT_FALSE(error_of({"--listen", "unix:/run/app.sock"}).empty());
}

TEST_F(ServeConfigTest, DiagFlagTakesAnExplicitValue) {
  EXPECT_TRUE(parse({"--diag=true"}).diag);
  EXPECT_FALSE(parse({"--diag=false"}).diag);
}

TEST_F(ServeConfigTest, GzipIsOffByDefaultAndSetByFlagOrFile) {
  ServeConfig def = parse({});
  EXPECT_FALSE(def.limits.gzip.enabled);
  EXPECT_EQ(def.limits.gzip.min_length, 1024u);
  ServeConfig flags = parse({"--gzip", "--gzip-min-length", "4k"});
  EXPECT_TRUE(flags.limits.gzip.enabled);
  EXPECT_EQ(flags.limits.gzip.min_length, 4096u);
  ServeConfig file = parse({"--config", write("gzip.toml", "gzip = true\ngzip_min_length = \"2KiB\"\n")});
  EXPECT_TRUE(file.limits.gzip.enabled);
  EXPECT_EQ(file.limits.gzip.min_length, 2048u);
  EXPECT_THROW(parse({"--gzip-min-length", "0"}), ConfigError);
}

struct BadFlag {
  std::vector<std::string> args;
  std::string message;
};

TEST_F(ServeConfigTest, BadFlagValuesGiveOneLineNamingFlagAndValue) {
  const std::string missing = (dir_ / "missing").string();
  const std::string file = write("file.txt", "x");
  const BadFlag kCases[] = {
      {{"--header-timeout", "abc"}, "--header-timeout: invalid duration 'abc' (use e.g. 500ms, 2s, 1m)"},
      {{"--body-timeout", "30"}, "--body-timeout: invalid duration '30' (use e.g. 500ms, 2s, 1m)"},
      {{"--send-timeout=-1s"}, "--send-timeout: invalid duration '-1s' (use e.g. 500ms, 2s, 1m)"},
      {{"--handler-timeout", "0"}, "--handler-timeout: invalid duration '0' (must be greater than 0)"},
      {{"--keepalive-timeout", "0ms"}, "--keepalive-timeout: invalid duration '0ms' (must be greater than 0)"},
      {{"--drain-timeout", "soon"}, "--drain-timeout: invalid duration 'soon' (use e.g. 500ms, 2s, 1m)"},
      {{"--header-timeout", "1\n2s"}, "--header-timeout: invalid duration '1\\x0a2s' (use e.g. 500ms, 2s, 1m)"},
      {{"--max-body", "8MB!"}, "--max-body: invalid size '8MB!' (use e.g. 65536, 64KiB, 8MiB)"},
      {{"--max-body", "99999999999999999999"},
       "--max-body: invalid size '99999999999999999999' (use e.g. 65536, 64KiB, 8MiB)"},
      {{"--max-header-bytes", "0"}, "--max-header-bytes: invalid size '0' (must be greater than 0)"},
      {{"--max-connections", "lots"}, "--max-connections: invalid count 'lots' (use e.g. 10000 or 10k)"},
      {{"--max-connections", "0"}, "--max-connections: invalid count '0' (must be greater than 0)"},
      {{"--max-connections-per-ip", "lots"}, "--max-connections-per-ip: invalid count 'lots' (use e.g. 10000 or 10k)"},
      {{"--max-connections-per-ip", "-1"}, "--max-connections-per-ip: invalid count '-1' (use e.g. 10000 or 10k)"},
      {{"--threads", "300"}, "--threads: invalid thread count '300' (use 1..256, or 0 for one per core)"},
      {{"--threads", "99999999999999999999"},
       "--threads: invalid thread count '99999999999999999999' (use 1..256, or 0 for one per core)"},
      {{"--threads", "two"}, "--threads: invalid count 'two' (use a whole number)"},
      {{"--workers=-1"}, "--workers: invalid count '-1' (use a whole number)"},
      {{"--workers", "4294967296"}, "--workers: invalid count '4294967296' (too large)"},
      {{"--listen", "8080"}, "--listen: invalid address '8080' (use HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080)"},
      {{"--listen", "127.0.0.1:"},
       "--listen: invalid address '127.0.0.1:' (use HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080)"},
      {{"--listen", "127.0.0.1:http"},
       "--listen: invalid address '127.0.0.1:http' (use HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080)"},
      {{"--listen", "a b:80"}, "--listen: invalid address 'a b:80' (use HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080)"},
      {{"--listen", "127.0.0.1:65536"}, "--listen: invalid address '127.0.0.1:65536' (port must be 0..65535)"},
      {{"--listen", "127.0.0.1:8080", "--listen", "::1:8080"},
       "--listen: invalid address '::1:8080' (put an IPv6 address in brackets, e.g. [::1]:8080)"},
      {{"--listen", "[::1:8080"}, "--listen: invalid address '[::1:8080' (not an IPv6 address in brackets)"},
      {{"--listen", "[1.2.3.4]:80"}, "--listen: invalid address '[1.2.3.4]:80' (not an IPv6 address in brackets)"},
      // inet_pton, like net::SocketAddress::parse, takes no scope id.
      {{"--listen", "[fe80::1%lo]:80"},
       "--listen: invalid address '[fe80::1%lo]:80' (not an IPv6 address in brackets)"},
      {{"--admin", "of"}, "--admin: invalid address 'of' (use HOST:PORT or off, e.g. 127.0.0.1:8080 or [::1]:8080)"},
      {{"--listen", "[]:80"}, "--listen: invalid address '[]:80' (not an IPv6 address in brackets)"},
      {{"--listen", "unix:/run/app.sock"},
       "--listen: invalid address 'unix:/run/app.sock' (cannot listen on a unix socket; use HOST:PORT, e.g. "
       "127.0.0.1:8080 or [::1]:8080)"},
      {{"--admin", "unix:"},
       "--admin: invalid address 'unix:' (cannot listen on a unix socket; use HOST:PORT or off, e.g. "
       "127.0.0.1:8080 or [::1]:8080)"},
      {{"--root", missing}, "--root: cannot access '" + missing + "': No such file or directory"},
      {{"--root", file}, "--root: '" + file + "' is not a directory"},
      {{"--log", ""}, "--log: must not be empty (use - for stdout)"},
      {{"--diag=maybe"}, "--diag: invalid value 'maybe' (use true or false)"},
      {{"--config", missing}, "--config: cannot read '" + missing + "': No such file or directory"},
      {{"--config", dir_.string()}, "--config: cannot read '" + dir_.string() + "': Is a directory"},
  };
  for (const auto& c : kCases) EXPECT_EQ(error_of(c.args), c.message) << c.args.front();
}

TEST_F(ServeConfigTest, UnknownOrIncompleteFlagsAreCli11Errors) {
  EXPECT_EQ(error_of({"--bogus"}), "CLI11: The following argument was not expected: --bogus");
  EXPECT_EQ(error_of({"--listen"}), "CLI11: --listen: 1 required HOST:PORT missing");
  EXPECT_EQ(error_of({"--max-body="}), "CLI11: --max-body: 1 required SIZE missing");
}

TEST_F(ServeConfigTest, HelpShowsEveryFlagWithItsDefault) {
  CLI::App app{"unbroken"};
  CLI::App* serve = app.add_subcommand("serve");
  ServeConfig cfg;
  cfg.limits.max_body = 1024 * 1024;  // the help reflects the config it was given
  add_serve_options(*serve, cfg);
  const std::vector<std::pair<std::string, std::string>> kDefaults = {
      {"--listen", "(default 127.0.0.1:8080)"},
      {"--admin", "(default 127.0.0.1:9090)"},
      {"--root", "(default none)"},
      {"--log", "(default -)"},
      {"--threads", "(default 0)"},
      {"--workers", "(default 0)"},
      {"--header-timeout", "(default 10s)"},
      {"--body-timeout", "(default 30s)"},
      {"--handler-timeout", "(default 1m)"},
      {"--send-timeout", "(default 30s)"},
      {"--keepalive-timeout", "(default 15s)"},
      {"--drain-timeout", "(default 10s)"},
      {"--max-header-bytes", "(default 16KiB)"},
      {"--max-body", "(default 1MiB)"},
      {"--max-connections", "(default 10000)"},
      {"--diag", "(default off)"},
      {"--config", "(default none)"},
  };
  for (const auto& [flag, suffix] : kDefaults) {
    const CLI::Option* opt = serve->get_option_no_throw(flag);
    ASSERT_NE(opt, nullptr) << flag;
    const std::string& desc = opt->get_description();
    EXPECT_TRUE(desc.ends_with(suffix)) << flag << ": " << desc;
    EXPECT_EQ(desc.find('\n'), std::string::npos) << flag;
  }
  std::string help = serve->help();
  EXPECT_NE(help.find("--header-timeout DURATION"), std::string::npos) << help;
  EXPECT_NE(help.find("--max-body SIZE"), std::string::npos) << help;
  EXPECT_NE(help.find("--listen HOST:PORT"), std::string::npos) << help;
}

TEST_F(ServeConfigTest, ConfigFileSetsEveryKey) {
  std::string path = write("serve.toml", R"(# every key, in the forms a person would write
listen = ["0.0.0.0:8080", "[::]:8080"]
admin = "off"
root = ")" + dir_.string() + R"("
log = "access.log"
threads = 2
workers = 8
header_timeout = "5s"
body_timeout = "1m"
handler_timeout = "90s"
send_timeout = "250ms"
keepalive_timeout = "1.5s"
drain_timeout = 0
max_header_bytes = "32KiB"
max_body = 1048576
max_connections = 500
diag = true
)");
  ServeConfig cfg = parse({"--config", path});
  EXPECT_EQ(cfg.config_file, path);
  EXPECT_EQ(cfg.listen, (std::vector<std::string>{"0.0.0.0:8080", "[::]:8080"}));
  EXPECT_EQ(cfg.admin, "off");
  EXPECT_EQ(cfg.root, dir_.string());
  EXPECT_EQ(cfg.log, "access.log");
  EXPECT_EQ(cfg.threads, 2u);
  EXPECT_EQ(cfg.workers, 8u);
  EXPECT_EQ(cfg.limits.header_timeout, milliseconds{5'000});
  EXPECT_EQ(cfg.limits.body_timeout, milliseconds{60'000});
  EXPECT_EQ(cfg.limits.handler_timeout, milliseconds{90'000});
  EXPECT_EQ(cfg.limits.send_timeout, milliseconds{250});
  EXPECT_EQ(cfg.limits.keepalive_timeout, milliseconds{1'500});
  EXPECT_EQ(cfg.limits.drain_timeout, milliseconds{0});
  EXPECT_EQ(cfg.limits.max_header_bytes, 32u * 1024);
  EXPECT_EQ(cfg.limits.max_body, 1024u * 1024);
  EXPECT_EQ(cfg.max_connections, 500u);
  EXPECT_TRUE(cfg.diag);
}

TEST_F(ServeConfigTest, ConfigFileKeepsDefaultsForAbsentKeysAndTakesASingleListenString) {
  std::string path = write("serve.toml", "listen = \"127.0.0.1:0\"\n");
  ServeConfig cfg = parse({"--config", path});
  EXPECT_EQ(cfg.listen, std::vector<std::string>{"127.0.0.1:0"});
  EXPECT_EQ(cfg.admin, "127.0.0.1:9090");
  EXPECT_EQ(cfg.limits.header_timeout, milliseconds{10'000});
  EXPECT_EQ(cfg.limits.max_body, 8u * 1024 * 1024);
}

TEST_F(ServeConfigTest, ConfigFileTakesProxySpecsAsStrings) {
  // The flag's form, one string per route.
  std::string path = write("serve.toml", R"(proxy = ["/api=http://127.0.0.1:8000", "/=unix:/run/app.sock"]
upstream_header_timeout = "5s"
upstream_abort = "close"
)");
  ServeConfig cfg = parse({"--config", path});
  EXPECT_EQ(cfg.proxy, (std::vector<std::string>{"/api=http://127.0.0.1:8000", "/=unix:/run/app.sock"}));
  EXPECT_EQ(cfg.upstream.header_timeout, milliseconds{5'000});
  EXPECT_EQ(cfg.upstream.abort, "close");
  std::string bad = write("bad.toml", "proxy = [\"/api=ftp://h:1\"]\n");
  EXPECT_NE(error_of({"--config", bad}).find("proxy: invalid upstream 'ftp://h:1'"), std::string::npos)
      << error_of({"--config", bad});
}

TEST_F(ServeConfigTest, FlagsOverrideTheFileWhereGivenOnly) {
  std::string path = write("serve.toml", R"(listen = ["127.0.0.1:1", "127.0.0.1:2"]
header_timeout = "5s"
body_timeout = "7s"
max_body = "1MiB"
diag = true
)");
  // Flags before and after --config: the order on the command line does not matter.
  ServeConfig cfg = parse({"--header-timeout", "9s", "--config", path, "--listen", "127.0.0.1:3", "--diag=false"});
  EXPECT_EQ(cfg.listen, std::vector<std::string>{"127.0.0.1:3"});
  EXPECT_EQ(cfg.limits.header_timeout, milliseconds{9'000});
  EXPECT_FALSE(cfg.diag);
  EXPECT_EQ(cfg.limits.body_timeout, milliseconds{7'000});
  EXPECT_EQ(cfg.limits.max_body, 1024u * 1024);
}

struct BadFile {
  std::string text;
  std::string message;  // after "<path>:"
};

TEST_F(ServeConfigTest, BadConfigFilesNameFileLineKeyAndValue) {
  const std::string missing = (dir_ / "missing").string();
  const BadFile kCases[] = {
      {"foo = 1\n", "1: unknown key 'foo'"},
      {"threads = 2\n\nHeader_Timeout = \"1s\"\n", "3: unknown key 'Header_Timeout'"},
      {"[serve]\nlisten = \"127.0.0.1:80\"\n", "1: unknown key 'serve'"},
      // Reported in file order, although toml++ keeps keys sorted.
      {"zzz = 1\nadmin = \"bad\"\n", "1: unknown key 'zzz'"},
      {"header_timeout = \"x\"\n", "1: header_timeout: invalid duration 'x' (use e.g. 500ms, 2s, 1m)"},
      {"\nbody_timeout = 30\n", "2: body_timeout: invalid duration '30' (use e.g. 500ms, 2s, 1m)"},
      {"send_timeout = \"0s\"\n", "1: send_timeout: invalid duration '0s' (must be greater than 0)"},
      {"send_timeout = true\n", "1: send_timeout: expected a duration string such as \"10s\", got a boolean"},
      {"threads = \"4\"\n", "1: threads: expected an integer, got a string"},
      {"threads = 257\n", "1: threads: invalid thread count '257' (use 1..256, or 0 for one per core)"},
      {"workers = -2\n", "1: workers: invalid count '-2' (use a whole number)"},
      {"diag = \"yes\"\n", "1: diag: expected true or false, got a string"},
      {"max_body = 1.5\n", "1: max_body: expected an integer or a size string such as \"8MiB\", got a float"},
      {"max_body = -1\n", "1: max_body: invalid size '-1' (use e.g. 65536, 64KiB, 8MiB)"},
      {"max_header_bytes = \"lots\"\n", "1: max_header_bytes: invalid size 'lots' (use e.g. 65536, 64KiB, 8MiB)"},
      {"max_connections = [1]\n", "1: max_connections: expected an integer, got an array"},
      {"listen = 8080\n", "1: listen: expected a string or an array of strings, got an integer"},
      {"listen = [\n  \"127.0.0.1:80\",\n  8080,\n]\n",
       "3: listen: expected a string or an array of strings, got an array holding an integer"},
      {"listen = []\n", "1: listen: expected at least one address, got an empty array"},
      {"listen = \"nope\"\n", "1: listen: invalid address 'nope' (use HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080)"},
      {"admin = \"127.0.0.1:99999\"\n", "1: admin: invalid address '127.0.0.1:99999' (port must be 0..65535)"},
      {"log = 1\n", "1: log: expected a string, got an integer"},
      {"root = \"" + missing + "\"\n", "1: root: cannot access '" + missing + "': No such file or directory"},
  };
  for (const auto& c : kCases) {
    std::string path = write("bad.toml", c.text);
    EXPECT_EQ(error_of({"--config", path}), path + ":" + c.message) << c.text;
  }
}

TEST_F(ServeConfigTest, TomlSyntaxErrorsNameFileLineAndColumnOnOneLine) {
  for (std::string_view text : {"a = = 1\n", "listen = \"unterminated\n", "threads = 1\nthreads = 2\n", "[[x]\n"}) {
    std::string path = write("syntax.toml", text);
    std::string message = error_of({"--config", path});
    EXPECT_TRUE(message.starts_with(path + ":")) << message;
    EXPECT_NE(message.find(": invalid TOML: "), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
  std::string path = write("syntax.toml", "threads = 1\nthreads = 2\n");
  EXPECT_TRUE(error_of({"--config", path}).starts_with(path + ":2:")) << error_of({"--config", path});
}

TEST_F(ServeConfigTest, ABadFileFailsEvenWhenAFlagOverridesTheKey) {
  // The file is wrong either way; silently ignoring it would hide the typo until the flag is dropped.
  std::string path = write("serve.toml", "header_timeout = \"x\"\n");
  EXPECT_EQ(error_of({"--config", path, "--header-timeout", "1s"}),
            path + ":1: header_timeout: invalid duration 'x' (use e.g. 500ms, 2s, 1m)");
}

}  // namespace
}  // namespace unbroken::app
