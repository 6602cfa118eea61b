// `unbroken serve`'s reverse-proxy settings: the --upstream-* flags, --temp-dir, the [[proxy]]
// tables with their per-route keys over the flags, and the one-line message for each mistake.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>
#include <vector>

#include "app/serve_config.h"
#include "serve_config_rig.h"

namespace unbroken::app {
namespace {

class ServeConfigProxyTest : public ServeConfigTest {};

TEST_F(ServeConfigProxyTest, UpstreamDefaultsAreTheIssues) {
  ServeConfig cfg = parse({});
  const UpstreamConfig& u = cfg.upstream;
  EXPECT_EQ(u.send_timeout, milliseconds{30'000});
  EXPECT_EQ(u.abort_budget, (AbortBudget{milliseconds{30'000}, 8u * 1024 * 1024}));
  EXPECT_EQ(u.keepalive, 32u);
  EXPECT_EQ(u.idle_timeout, milliseconds{1'000});
  EXPECT_EQ(u.max_fails, 3u);
  EXPECT_EQ(u.fail_timeout, milliseconds{10'000});
  EXPECT_TRUE(u.request_buffering);
  EXPECT_EQ(u.buffer, 1024u * 1024);
  EXPECT_EQ(u.max_temp, 1024ull * 1024 * 1024);
  EXPECT_EQ(u.tunnel_idle_timeout, milliseconds{60'000});
  EXPECT_EQ(u.balance, "round_robin");
  EXPECT_EQ(u.health, "");
  EXPECT_TRUE(u.buffering);
  EXPECT_TRUE(cfg.proxy_routes.empty());
}

TEST_F(ServeConfigProxyTest, TempDirDefaultsToTmpdirOrTmp) {
  const char* was = ::getenv("TMPDIR");
  std::string saved = was ? was : "";
  ::setenv("TMPDIR", dir_.c_str(), 1);
  EXPECT_EQ(ServeConfig{}.temp_dir, dir_.string());
  ::setenv("TMPDIR", "", 1);
  EXPECT_EQ(ServeConfig{}.temp_dir, "/tmp");
  ::unsetenv("TMPDIR");
  EXPECT_EQ(ServeConfig{}.temp_dir, "/tmp");
  if (was) ::setenv("TMPDIR", saved.c_str(), 1);
}

TEST_F(ServeConfigProxyTest, EveryUpstreamFlagReachesItsField) {
  ServeConfig cfg = parse({"--proxy",
                           "/api=http://127.0.0.1:8000",
                           "--upstream-send-timeout",
                           "5s",
                           "--upstream-abort-budget",
                           "10s/1MiB",
                           "--upstream-keepalive",
                           "0",
                           "--upstream-idle-timeout",
                           "500ms",
                           "--upstream-max-fails",
                           "5",
                           "--upstream-fail-timeout",
                           "1m",
                           "--upstream-request-buffering",
                           "off",
                           "--temp-dir",
                           dir_.string(),
                           "--upstream-buffer",
                           "64KiB",
                           "--upstream-max-temp",
                           "10MiB",
                           "--tunnel-idle-timeout",
                           "2m",
                           "--upstream-read-timeout",
                           "7s"});
  const UpstreamConfig& u = cfg.upstream;
  EXPECT_EQ(u.send_timeout, milliseconds{5'000});
  EXPECT_EQ(u.abort_budget, (AbortBudget{milliseconds{10'000}, 1024u * 1024}));
  EXPECT_EQ(u.keepalive, 0u) << "0 is no pooling, and accepted";
  EXPECT_EQ(u.idle_timeout, milliseconds{500});
  EXPECT_EQ(u.max_fails, 5u);
  EXPECT_EQ(u.fail_timeout, milliseconds{60'000});
  EXPECT_FALSE(u.request_buffering);
  EXPECT_EQ(cfg.temp_dir, dir_.string());
  EXPECT_EQ(u.buffer, 64u * 1024);
  EXPECT_EQ(u.max_temp, 10u * 1024 * 1024);
  EXPECT_EQ(u.tunnel_idle_timeout, milliseconds{120'000});
  // The --proxy route carries the flags' settings.
  ASSERT_EQ(cfg.proxy_routes.size(), 1u);
  EXPECT_EQ(cfg.proxy_routes[0].route.prefix, "/api");
  EXPECT_EQ(cfg.proxy_routes[0].route.upstreams, std::vector<std::string>{"127.0.0.1:8000"});
  EXPECT_EQ(cfg.proxy_routes[0].upstream.read_timeout, milliseconds{7'000});
  EXPECT_EQ(cfg.proxy_routes[0].upstream.abort_budget.bytes, 1024u * 1024);
}

TEST_F(ServeConfigProxyTest, AbortBudgetTakesADurationAloneOrWithASize) {
  EXPECT_EQ(parse({"--upstream-abort-budget", "5s"}).upstream.abort_budget,
            (AbortBudget{milliseconds{5'000}, 8u * 1024 * 1024}))
      << "the size keeps its default";
  EXPECT_EQ(parse({"--upstream-abort-budget", "1m/512k"}).upstream.abort_budget,
            (AbortBudget{milliseconds{60'000}, 512u * 1024}));
  EXPECT_TRUE(parse({"--upstream-request-buffering", "on"}).upstream.request_buffering);
  EXPECT_FALSE(parse({"--upstream-request-buffering=false"}).upstream.request_buffering);
}

TEST_F(ServeConfigProxyTest, BadUpstreamFlagsGiveOneLineNamingFlagAndValue) {
  const std::string missing = (dir_ / "missing").string();
  const std::string file = write("file.txt", "x");
  const std::string budget = " (use DURATION or DURATION/SIZE with both greater than 0, e.g. 30s/8MiB)";
  const std::vector<std::pair<std::vector<std::string>, std::string>> kCases = {
      {{"--upstream-send-timeout", "0s"}, "--upstream-send-timeout: invalid duration '0s' (must be greater than 0)"},
      {{"--upstream-abort-budget", "8MiB"}, "--upstream-abort-budget: invalid budget '8MiB'" + budget},
      {{"--upstream-abort-budget", "30s/"}, "--upstream-abort-budget: invalid budget '30s/'" + budget},
      {{"--upstream-abort-budget", "30s/0"}, "--upstream-abort-budget: invalid budget '30s/0'" + budget},
      {{"--upstream-abort-budget", "0s/8MiB"}, "--upstream-abort-budget: invalid budget '0s/8MiB'" + budget},
      {{"--upstream-abort-budget", "30s/8MiB/1"}, "--upstream-abort-budget: invalid budget '30s/8MiB/1'" + budget},
      {{"--upstream-keepalive", "-1"}, "--upstream-keepalive: invalid count '-1' (use e.g. 10000 or 10k)"},
      {{"--upstream-idle-timeout", "1"}, "--upstream-idle-timeout: invalid duration '1' (use e.g. 500ms, 2s, 1m)"},
      {{"--upstream-max-fails", "many"}, "--upstream-max-fails: invalid count 'many' (use e.g. 10000 or 10k)"},
      {{"--upstream-fail-timeout", "0"}, "--upstream-fail-timeout: invalid duration '0' (must be greater than 0)"},
      {{"--upstream-request-buffering", "maybe"},
       "--upstream-request-buffering: invalid value 'maybe' (use on or off)"},
      {{"--upstream-buffer", "0"}, "--upstream-buffer: invalid size '0' (must be greater than 0)"},
      {{"--upstream-max-temp", "1GB!"}, "--upstream-max-temp: invalid size '1GB!' (use e.g. 65536, 64KiB, 8MiB)"},
      {{"--tunnel-idle-timeout", "x"}, "--tunnel-idle-timeout: invalid duration 'x' (use e.g. 500ms, 2s, 1m)"},
      {{"--temp-dir", missing}, "--temp-dir: cannot access '" + missing + "': No such file or directory"},
      {{"--temp-dir", file}, "--temp-dir: '" + file + "' is not a directory"},
      {{"--temp-dir", ""}, "--temp-dir: must not be empty"},
  };
  for (const auto& [args, message] : kCases) EXPECT_EQ(error_of(args), message) << args.front();
}

TEST_F(ServeConfigProxyTest, TheDefaultTempDirIsCheckedOnlyWhenAProxyUsesIt) {
  const std::string missing = (dir_ / "missing").string();
  const char* was = ::getenv("TMPDIR");
  std::string saved = was ? was : "";
  ::setenv("TMPDIR", missing.c_str(), 1);
  EXPECT_EQ(error_of({}), "");
  EXPECT_EQ(error_of({"--proxy", "/=http://h:1"}),
            "--temp-dir: cannot access '" + missing + "': No such file or directory");
  EXPECT_EQ(error_of({"--proxy", "/=http://h:1", "--temp-dir", dir_.string()}), "");
  if (was) {
    ::setenv("TMPDIR", saved.c_str(), 1);
  } else {
    ::unsetenv("TMPDIR");
  }
}

TEST_F(ServeConfigProxyTest, HelpShowsTheUpstreamDefaults) {
  CLI::App app{"unbroken"};
  CLI::App* serve = app.add_subcommand("serve");
  ServeConfig cfg;
  add_serve_options(*serve, cfg);
  const std::vector<std::pair<std::string, std::string>> kDefaults = {
      {"--upstream-send-timeout", "(default 30s)"},     {"--upstream-abort-budget", "(default 30s/8MiB)"},
      {"--upstream-keepalive", "(default 32)"},         {"--upstream-idle-timeout", "(default 1s)"},
      {"--upstream-max-fails", "(default 3)"},          {"--upstream-fail-timeout", "(default 10s)"},
      {"--upstream-request-buffering", "(default on)"}, {"--upstream-buffer", "(default 1MiB)"},
      {"--upstream-max-temp", "(default 1GiB)"},        {"--tunnel-idle-timeout", "(default 1m)"},
      {"--temp-dir", "(default " + cfg.temp_dir + ")"},
  };
  for (const auto& [flag, suffix] : kDefaults) {
    const CLI::Option* opt = serve->get_option_no_throw(flag);
    ASSERT_NE(opt, nullptr) << flag;
    EXPECT_TRUE(opt->get_description().ends_with(suffix)) << flag << ": " << opt->get_description();
  }
  EXPECT_NE(serve->help().find("--upstream-request-buffering on|off"), std::string::npos);
}

TEST_F(ServeConfigProxyTest, ProxyTablesTakeTheirKeysOverTheGlobalOnes) {
  std::string path = write("serve.toml", R"(upstream_read_timeout = "9s"
upstream_max_fails = 4

[[proxy]]
prefix = "/api/"
upstreams = ["http://127.0.0.1:8000", "unix:/run/app.sock"]
abort = "close"
balance = "least_conn"
health = "/healthz"
health_interval = "2s"
buffering = false
request_buffering = false
upstream_connect_timeout = "250ms"
upstream_header_timeout = "3s"
upstream_send_timeout = "4s"
upstream_keepalive = 0
upstream_idle_timeout = "300ms"
upstream_fail_timeout = "20s"
upstream_abort_budget = "1s/1KiB"
upstream_buffer = "4KiB"
upstream_max_temp = "1MiB"
tunnel_idle_timeout = "5s"

[[proxy]]
prefix = "/"
upstreams = ["http://[::1]:9000"]
)");
  ServeConfig cfg = parse({"--config", path, "--upstream-max-fails", "6"});
  ASSERT_EQ(cfg.proxy_routes.size(), 2u);
  const ProxyRouteConfig& api = cfg.proxy_routes[0];
  EXPECT_EQ(api.route.prefix, "/api");
  EXPECT_EQ(api.route.upstreams, (std::vector<std::string>{"127.0.0.1:8000", "unix:/run/app.sock"}));
  const UpstreamConfig& u = api.upstream;
  EXPECT_EQ(u.abort, "close");
  EXPECT_EQ(u.balance, "least_conn");
  EXPECT_EQ(u.health, "/healthz");
  EXPECT_EQ(u.health_interval, milliseconds{2'000});
  EXPECT_FALSE(u.buffering);
  EXPECT_FALSE(u.request_buffering);
  EXPECT_EQ(u.connect_timeout, milliseconds{250});
  EXPECT_EQ(u.header_timeout, milliseconds{3'000});
  EXPECT_EQ(u.send_timeout, milliseconds{4'000});
  EXPECT_EQ(u.keepalive, 0u);
  EXPECT_EQ(u.idle_timeout, milliseconds{300});
  EXPECT_EQ(u.fail_timeout, milliseconds{20'000});
  EXPECT_EQ(u.abort_budget, (AbortBudget{milliseconds{1'000}, 1024}));
  EXPECT_EQ(u.buffer, 4096u);
  EXPECT_EQ(u.max_temp, 1024u * 1024);
  EXPECT_EQ(u.tunnel_idle_timeout, milliseconds{5'000});
  // Keys the table leaves out come from the file's globals, and the flags over those.
  EXPECT_EQ(u.read_timeout, milliseconds{9'000});
  EXPECT_EQ(u.max_fails, 6u);
  const ProxyRouteConfig& root = cfg.proxy_routes[1];
  EXPECT_EQ(root.route.prefix, "/");
  EXPECT_EQ(root.upstream.abort, "finish");
  EXPECT_EQ(root.upstream.balance, "round_robin");
  EXPECT_TRUE(root.upstream.buffering);
  EXPECT_EQ(root.upstream.read_timeout, milliseconds{9'000});
  EXPECT_EQ(root.upstream.max_fails, 6u);
}

TEST_F(ServeConfigProxyTest, StringsAndTablesMixAndTheFlagReplacesBoth) {
  std::string path = write("serve.toml", R"(proxy = [
  "/a=http://127.0.0.1:1",
  { prefix = "/b", upstreams = ["http://127.0.0.1:2"], balance = "least_conn" },
]
)");
  ServeConfig cfg = parse({"--config", path});
  ASSERT_EQ(cfg.proxy_routes.size(), 2u);
  EXPECT_EQ(cfg.proxy, std::vector<std::string>{"/a=http://127.0.0.1:1"});
  EXPECT_EQ(cfg.proxy_routes[0].route.prefix, "/a");
  EXPECT_EQ(cfg.proxy_routes[0].upstream.balance, "round_robin");
  EXPECT_EQ(cfg.proxy_routes[1].route.prefix, "/b");
  EXPECT_EQ(cfg.proxy_routes[1].upstream.balance, "least_conn");
  ServeConfig flag = parse({"--config", path, "--proxy", "/c=http://127.0.0.1:3"});
  ASSERT_EQ(flag.proxy_routes.size(), 1u);
  EXPECT_EQ(flag.proxy_routes[0].route.prefix, "/c");
}

TEST_F(ServeConfigProxyTest, APrefixTakenTwiceIsOneLine) {
  EXPECT_EQ(error_of({"--proxy", "/a=http://h:1", "--proxy", "/a/=http://h:2"}),
            "--proxy: two routes have the prefix '/a'");
  std::string path =
      write("twice.toml", "proxy = [\"/a=http://h:1\", { prefix = \"/a\", upstreams = [\"http://h:2\"] }]\n");
  EXPECT_EQ(error_of({"--config", path}), path + ": proxy: two routes have the prefix '/a'");
}

TEST_F(ServeConfigProxyTest, BadProxyTablesNameTheTableAndTheKey) {
  const std::vector<std::pair<std::string, std::string>> kCases = {
      {"[[proxy]]\nupstreams = [\"http://h:1\"]\n", "1: proxy #1: missing key 'prefix'"},
      {"[[proxy]]\nprefix = \"/a\"\nupstreams = [\"http://h:1\"]\n\n[[proxy]]\nprefix = \"/b\"\n",
       "5: proxy #2 (prefix '/b'): missing key 'upstreams'"},
      {"[[proxy]]\nprefix = 1\n", "2: proxy #1: prefix: expected a string, got an integer"},
      {"[[proxy]]\nprefix = \"api\"\n", "2: proxy #1: prefix: invalid proxy prefix 'api' (a path such as /api or /)"},
      {"[[proxy]]\nprefix = \"/a\"\nupstreams = \"http://h:1\"\n",
       "3: proxy #1 (prefix '/a'): upstreams: expected an array of strings, got a string"},
      {"[[proxy]]\nprefix = \"/a\"\nupstreams = []\n",
       "3: proxy #1 (prefix '/a'): upstreams: expected at least one upstream, got an empty array"},
      {"[[proxy]]\nprefix = \"/a\"\nupstreams = [\n  \"http://h:1\",\n  \"ftp://h:2\",\n]\n",
       "5: proxy #1 (prefix '/a'): upstreams: invalid upstream 'ftp://h:2' (use http://HOST:PORT, https://HOST:PORT or "
       "unix:/path)"},
      {"[[proxy]]\nprefix = \"/a\"\nupstreams = [\"http://h:1\", 2]\n",
       "3: proxy #1 (prefix '/a'): upstreams: expected an array of strings, got an array holding an integer"},
      {"[[proxy]]\nprefix = \"/a\"\nupstreams = [\"http://h:1\"]\nbalanse = \"least_conn\"\n",
       "4: proxy #1 (prefix '/a'): unknown key 'balanse'"},
      // A setting with a short name in a table takes only that one; server-wide keys are no route's.
      {"[[proxy]]\nprefix = \"/a\"\nupstreams = [\"http://h:1\"]\nupstream_abort = \"close\"\n",
       "4: proxy #1 (prefix '/a'): unknown key 'upstream_abort' (in a [[proxy]] table it is 'abort')"},
      {"[[proxy]]\nprefix = \"/a\"\nupstreams = [\"http://h:1\"]\nmax_body = \"1MiB\"\n",
       "4: proxy #1 (prefix '/a'): unknown key 'max_body' (a server-wide key: put it above the first [[proxy]] table)"},
      {"[[proxy]]\nprefix = \"/a\"\nupstreams = [\"http://h:1\"]\ntemp_dir = \"/tmp\"\n",
       "4: proxy #1 (prefix '/a'): unknown key 'temp_dir' (a server-wide key: put it above the first [[proxy]] table)"},
      {"[[proxy]]\nprefix = \"/a\"\nupstreams = [\"http://h:1\"]\nabort = \"ignore\"\n",
       "4: proxy #1 (prefix '/a'): abort: invalid policy 'ignore' (use finish or close)"},
      {"[[proxy]]\nprefix = \"/a\"\nupstreams = [\"http://h:1\"]\nbalance = \"random\"\n",
       "4: proxy #1 (prefix '/a'): balance: invalid balance 'random' (use round_robin or least_conn)"},
      {"[[proxy]]\nprefix = \"/a\"\nupstreams = [\"http://h:1\"]\nhealth = \"healthz\"\n",
       "4: proxy #1 (prefix '/a'): health: invalid path 'healthz' (use an absolute path such as /healthz)"},
      {"[[proxy]]\nprefix = \"/a\"\nupstreams = [\"http://h:1\"]\nhealth = \"/a b\"\n",
       "4: proxy #1 (prefix '/a'): health: invalid path '/a b' (use an absolute path such as /healthz)"},
      {"[[proxy]]\nprefix = \"/a\"\nupstreams = [\"http://h:1\"]\nbuffering = \"no\"\n",
       "4: proxy #1 (prefix '/a'): buffering: expected true or false, got a string"},
      {"[[proxy]]\nprefix = \"/a\"\nupstreams = [\"http://h:1\"]\nupstream_read_timeout = \"0s\"\n",
       "4: proxy #1 (prefix '/a'): upstream_read_timeout: invalid duration '0s' (must be greater than 0)"},
      {"[[proxy]]\nprefix = \"/a\"\nupstreams = [\"http://h:1\"]\nupstream_abort_budget = 30\n",
       "4: proxy #1 (prefix '/a'): upstream_abort_budget: expected a budget string such as \"30s/8MiB\", got an "
       "integer"},
      {"proxy = [\"/a=http://h:1\", 3]\n", "1: proxy: expected strings or tables, got an integer"},
      {"proxy = [\"/a=ftp://h:1\", { prefix = \"/b\", upstreams = [\"http://h:2\"] }]\n",
       "1: proxy: invalid upstream 'ftp://h:1' (use http://HOST:PORT, https://HOST:PORT or unix:/path)"},
      {"proxy = [\"/a=http://h:1\", { prefix = \"/b\" }]\n", "1: proxy #2 (prefix '/b'): missing key 'upstreams'"},
      {"upstream_abort_budget = \"soon\"\n",
       "1: upstream_abort_budget: invalid budget 'soon' (use DURATION or DURATION/SIZE with both greater than 0, e.g. "
       "30s/8MiB)"},
      {"upstream_request_buffering = \"off\"\n", "1: upstream_request_buffering: expected true or false, got a string"},
  };
  for (const auto& [text, message] : kCases) {
    std::string path = write("bad.toml", text);
    EXPECT_EQ(error_of({"--config", path}), path + ":" + message) << text;
  }
}

}  // namespace
}  // namespace unbroken::app
