// --proxy PREFIX=UPSTREAM[,UPSTREAM...]: what is taken, how it is normalised, and the one-line
// error that names a bad part; the router pattern and depth that make the longest prefix win.

#include "proxy/proxy_route.h"

#include <gtest/gtest.h>

namespace unbroken::proxy {
namespace {

TEST(ProxyRouteTest, AcceptedSpecsAreNormalised) {
  struct Case {
    std::string_view spec, prefix;
    std::vector<std::string> upstreams;
  };
  const Case cases[] = {
      {"/=http://127.0.0.1:8000", "/", {"127.0.0.1:8000"}},
      {"/api=http://127.0.0.1:8000/", "/api", {"127.0.0.1:8000"}},
      {"/api/=unix:/run/app.sock", "/api", {"unix:/run/app.sock"}},
      {"/a/b=http://localhost:1, http://[::1]:2,unix:/x", "/a/b", {"localhost:1", "[::1]:2", "unix:/x"}},
      // https keeps its scheme (split_upstream takes it apart); a route may mix the two.
      {"/=https://app.example:8443", "/", {"https://app.example:8443"}},
      {"/=https://127.0.0.1:443/,http://127.0.0.1:80", "/", {"https://127.0.0.1:443", "127.0.0.1:80"}},
      {"/=https://[::1]:8443", "/", {"https://[::1]:8443"}},
  };
  for (const Case& c : cases) {
    std::string error;
    auto r = parse_proxy_route(c.spec, error);
    ASSERT_TRUE(r) << c.spec << ": " << error;
    EXPECT_EQ(r->prefix, c.prefix) << c.spec;
    EXPECT_EQ(r->upstreams, c.upstreams) << c.spec;
  }
}

TEST(ProxyRouteTest, BadSpecsNameTheBadPart) {
  struct Case {
    std::string_view spec, quoted;
  };
  const Case cases[] = {
      {"/api", "'/api'"},                                      // no '='
      {"api=http://h:1", "'api'"},                             // prefix not a path
      {"/a*=http://h:1", "'/a*'"},                             //
      {"/api=ftp://h:1", "'ftp://h:1'"},                       // scheme
      {"/api=http://h", "'http://h'"},                         // no port
      {"/api=http://h:1,http://h:99999", "'http://h:99999'"},  // the second one
      {"/api=unix:", "'unix:'"},                               // empty path
      {"/api=", "'/api='"},                                    // nothing after '='
      {"/api=https://h", "'https://h'"},                       // no port
      {"/api=https://:443", "'https://:443'"},                 // no host
      {"/api=https://unix:/x", "'https://unix:/x'"},           // a socket has no scheme
  };
  for (const Case& c : cases) {
    std::string error;
    EXPECT_FALSE(parse_proxy_route(c.spec, error)) << c.spec;
    EXPECT_NE(error.find(c.quoted), std::string::npos) << c.spec << ": " << error;
    EXPECT_EQ(error.find('\n'), std::string::npos);
  }
}

TEST(ProxyRouteTest, SplitUpstreamGivesTheAddressAndTheNameToVerify) {
  struct Case {
    std::string_view parsed, address;
    bool tls;
    std::string_view host;
  };
  const Case cases[] = {
      {"127.0.0.1:8000", "127.0.0.1:8000", false, ""},
      {"unix:/run/app.sock", "unix:/run/app.sock", false, ""},
      {"https://app.example:8443", "app.example:8443", true, "app.example"},
      {"https://127.0.0.1:443", "127.0.0.1:443", true, "127.0.0.1"},
      {"https://[::1]:8443", "[::1]:8443", true, "::1"},
  };
  for (const Case& c : cases) {
    UpstreamTarget t = split_upstream(c.parsed);
    EXPECT_EQ(t.address, c.address) << c.parsed;
    EXPECT_EQ(t.tls, c.tls) << c.parsed;
    EXPECT_EQ(t.host, c.host) << c.parsed;
  }
  // What parse_upstream gives is what split_upstream takes.
  std::string error;
  auto parsed = parse_upstream("https://app.example:8443/", error);
  ASSERT_TRUE(parsed) << error;
  EXPECT_EQ(split_upstream(*parsed).host, "app.example");
}

TEST(ProxyRouteTest, PatternsAndDepth) {
  EXPECT_EQ(route_pattern("/"), "/*");
  EXPECT_EQ(route_pattern("/api"), "/api/*");
  EXPECT_EQ(prefix_depth("/"), 0u);
  EXPECT_EQ(prefix_depth("/api"), 1u);
  EXPECT_EQ(prefix_depth("/api/v2"), 2u);
}

}  // namespace
}  // namespace unbroken::proxy
