// Route normalisation, client addresses and networks, the --client filter, user-agent families.

#include "analyze/keys.h"

#include <gtest/gtest.h>

namespace unbroken::analyze {
namespace {

TEST(NormaliseRoute, IdsBecomeOnePlaceholder) {
  const std::pair<const char*, const char*> cases[] = {
      {"/users/17/orders", "/users/{id}/orders"},
      {"/users/42/orders?page=2", "/users/{id}/orders"},
      {"/items/550e8400-e29b-41d4-a716-446655440000", "/items/{id}"},
      {"/blobs/9f86d081884c7d65", "/blobs/{id}"},
      {"/s/Zx8dK2pQm4Rt7vYw9aBc", "/s/{id}"},
      {"/downloads/145.zip", "/downloads/{id}.zip"},
      {"/api/v2/users", "/api/v2/users"},  // a version is a word
      {"/deadbeef", "/deadbeef"},          // hex letters without a digit: a word
      {"/static/app.js", "/static/app.js"},
      {"/", "/"},
      {"", "-"},
      {"http://example.com/a/1", "/a/{id}"},
      {"/a//7/", "/a//{id}/"},
  };
  std::string out;
  for (const auto& [in, want] : cases) {
    normalise_route(in, out);
    EXPECT_EQ(out, want) << in;
  }
}

TEST(RoutePattern, ThePatternOfTheServersRouteName) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"GET /diag/delay/{ms}", "/diag/delay/{ms}"},
      {"POST /", "/"},
      {"(static)", ""},
      {"(unmatched)", ""},
      {"", ""},
      {"GET ", ""},
      {"GET x", ""},
      {"* /api/*", ""},  // a proxy's mount: the paths under it are the application's routes
      {"* /*", ""},
  };
  for (auto [in, want] : cases) EXPECT_EQ(route_pattern(in), want) << in;
}

TEST(ClientKeys, AddressAndNetwork) {
  EXPECT_EQ(client_address("10.0.0.7:5311"), "10.0.0.7");
  EXPECT_EQ(client_address("10.0.0.7"), "10.0.0.7");
  EXPECT_EQ(client_address("[2001:db8::1]:443"), "2001:db8::1");
  EXPECT_EQ(client_address("2001:db8::1"), "2001:db8::1");
  std::string net;
  EXPECT_TRUE(client_network("10.0.0.7", net));
  EXPECT_EQ(net, "10.0.0.0/24");
  EXPECT_TRUE(client_network("2001:db8:1:2:aaaa:bbbb:cccc:dddd", net));
  EXPECT_EQ(net, "2001:db8:1:2::/64");
  EXPECT_FALSE(client_network("example.com", net));
  EXPECT_FALSE(client_network("-", net));
}

TEST(ClientFilter, AddressesAndNetworks) {
  auto net = ClientFilter::parse("203.0.113.0/24");
  ASSERT_TRUE(net);
  EXPECT_TRUE(net->matches("203.0.113.9"));
  EXPECT_FALSE(net->matches("203.0.114.9"));
  EXPECT_FALSE(net->matches("2001:db8::1"));
  auto one = ClientFilter::parse("10.1.2.3");
  ASSERT_TRUE(one);
  EXPECT_TRUE(one->matches("10.1.2.3"));
  EXPECT_FALSE(one->matches("10.1.2.4"));
  auto v6 = ClientFilter::parse("2001:db8::/33");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->matches("2001:db8:7fff::1"));
  EXPECT_FALSE(v6->matches("2001:db8:8000::1"));
  for (const char* bad : {"", "10.0.0.0/33", "10.0.0.0/", "nope", "10.0.0.0/8x", "::/129"}) {
    EXPECT_FALSE(ClientFilter::parse(bad)) << bad;
  }
}

TEST(UaFamily, CommonAgents) {
  std::string scratch;
  const std::pair<const char*, const char*> cases[] = {
      {"Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/120.0 Safari/537.36 Edg/120.0", "Edge"},
      {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36", "Chrome"},
      {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1",
       "Mobile Safari"},
      {"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", "Firefox"},
      {"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Googlebot"},
      {"curl/7.88.1", "curl"},
      {"MyApp/3.1 (build 7)", "MyApp"},
      {"", "-"},
      {"-", "-"},
  };
  for (const auto& [ua, want] : cases) EXPECT_EQ(ua_family(ua, scratch), want) << ua;
}

}  // namespace
}  // namespace unbroken::analyze
