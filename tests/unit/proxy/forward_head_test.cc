// The head the proxy sends upstream: hop-by-hop fields and the ones Connection names are dropped,
// Host kept, our framing, the forwarding fields believed from a trusted peer only, Via appended,
// and the X-Request-Id kept from a trusted peer when it is sane.

#include "proxy/forward_head.h"

#include <gtest/gtest.h>

namespace unbroken::proxy {
namespace {

http::Request request(std::string method, std::string target, std::vector<std::pair<std::string, std::string>> fields) {
  http::Request r;
  r.method = std::move(method);
  r.target = std::move(target);
  r.client = "203.0.113.7:51234";
  for (auto& [k, v] : fields) r.headers.add(k, v);
  return r;
}

ForwardParams kept_alive(bool on) {
  ForwardParams p;
  p.keep_alive = on;
  return p;
}

TEST(ForwardHeadTest, DropsHopByHopAndWritesForwardingFields) {
  auto req = request("GET", "/a?b=1",
                     {{"Host", "example.com"},
                      {"Connection", "keep-alive, X-Secret"},
                      {"X-Secret", "1"},
                      {"Keep-Alive", "timeout=5"},
                      {"TE", "trailers"},
                      {"Upgrade", "h2c"},
                      {"Proxy-Connection", "keep-alive"},
                      {"X-Forwarded-For", "1.2.3.4"},
                      {"Via", "1.0 corp"},
                      {"Accept", "*/*"}});
  std::string out;
  append_forward_head(out, req, kept_alive(false));
  EXPECT_EQ(out,
            "GET /a?b=1 HTTP/1.1\r\n"
            "Host: example.com\r\n"
            "Accept: */*\r\n"
            "X-Forwarded-For: 203.0.113.7\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: example.com\r\n"
            "Forwarded: for=203.0.113.7;proto=http;host=example.com\r\n"
            "Via: 1.0 corp, 1.1 unbroken\r\n"
            "Connection: close\r\n"
            "\r\n");
}

TEST(ForwardHeadTest, AnUpgradeTheClientAskedForGoesOn) {
  // Upgrade with Connection naming it: forwarded, with Connection: upgrade (never close: the
  // connection becomes the tunnel, and never goes back to the pool).
  auto ws = request(
      "GET", "/chat",
      {{"Host", "h"}, {"Connection", "keep-alive, Upgrade"}, {"Upgrade", "websocket"}, {"Sec-WebSocket-Key", "k"}});
  std::string out;
  append_forward_head(out, ws, kept_alive(false));
  EXPECT_NE(out.find("\r\nSec-WebSocket-Key: k\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("close"), std::string::npos) << out;
  EXPECT_EQ(out.find("keep-alive"), std::string::npos) << out;
  // Upgrade alone (Connection does not name it) is an ordinary hop-by-hop field: dropped.
  auto bare = request("GET", "/chat", {{"Host", "h"}, {"Upgrade", "websocket"}});
  out.clear();
  append_forward_head(out, bare, kept_alive(false));
  EXPECT_EQ(out.find("Upgrade"), std::string::npos) << out;
  EXPECT_NE(out.find("\r\nConnection: close\r\n"), std::string::npos) << out;
}

TEST(ForwardHeadTest, FramingIsOurs) {
  auto req = request("POST", "/p", {{"Host", "h"}, {"Content-Length", "5"}});
  req.content_length = 5;
  std::string out;
  append_forward_head(out, req, kept_alive(false));
  EXPECT_NE(out.find("\r\nContent-Length: 5\r\n"), std::string::npos) << out;
  auto chunked = request("POST", "/p", {{"Host", "h"}, {"Transfer-Encoding", "chunked"}});
  chunked.chunked = true;
  out.clear();
  append_forward_head(out, chunked, kept_alive(true));
  EXPECT_NE(out.find("\r\nTransfer-Encoding: chunked\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("Content-Length"), std::string::npos) << out;
  EXPECT_EQ(out.find("Connection"), std::string::npos) << "kept alive for the pool: " << out;
}

// The head's field lines other than Host and Connection, in order, one per line.
std::string forwarding_lines(const std::string& head) {
  std::string out;
  std::size_t at = head.find("\r\n") + 2;
  for (std::size_t end; (end = head.find("\r\n", at)) != std::string::npos && end != at; at = end + 2) {
    std::string line = head.substr(at, end - at);
    if (line.rfind("Host: ", 0) == 0 || line == "Connection: close") continue;
    out += line + "\n";
  }
  return out;
}

struct TrustCase {
  const char* name;
  std::string client;
  bool trusted;
  std::string_view proto;
  std::vector<std::pair<std::string, std::string>> fields;
  std::string expected;  // forwarding_lines() of the head
};

TEST(ForwardHeadTest, ForwardingFieldsFromTrustedAndUntrustedPeers) {
  const std::vector<std::pair<std::string, std::string>> spoofed{
      {"Host", "app.example"},        {"X-Forwarded-For", "1.2.3.4"},
      {"X-Forwarded-Proto", "https"}, {"X-Forwarded-Host", "front.example"},
      {"X-Forwarded-Port", "443"},    {"Forwarded", "for=1.2.3.4;proto=https"},
      {"X-Request-Id", "theirs"}};
  const TrustCase cases[] = {
      {"untrusted: every forwarding field replaced, X-Forwarded-Port dropped", "203.0.113.7:5", false, "http", spoofed,
       "X-Forwarded-For: 203.0.113.7\n"
       "X-Forwarded-Proto: http\n"
       "X-Forwarded-Host: app.example\n"
       "Forwarded: for=203.0.113.7;proto=http;host=app.example\n"
       "X-Request-Id: ours\n"
       "Via: 1.1 unbroken\n"},
      {"trusted: the chains appended to, the front's proto and host kept", "203.0.113.7:5", true, "http", spoofed,
       "X-Forwarded-Port: 443\n"
       "X-Forwarded-For: 1.2.3.4, 203.0.113.7\n"
       "X-Forwarded-Proto: https\n"
       "X-Forwarded-Host: front.example\n"
       "Forwarded: for=1.2.3.4;proto=https, for=203.0.113.7;proto=http;host=app.example\n"
       "X-Request-Id: ours\n"
       "Via: 1.1 unbroken\n"},
      {"trusted: several X-Forwarded-For fields are one list",
       "10.0.0.2:5",
       true,
       "http",
       {{"Host", "h"}, {"X-Forwarded-For", "1.1.1.1"}, {"X-Forwarded-For", "2.2.2.2, 3.3.3.3"}},
       "X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.2\n"
       "X-Forwarded-Proto: http\n"
       "X-Forwarded-Host: h\n"
       "Forwarded: for=10.0.0.2;proto=http;host=h\n"
       "X-Request-Id: ours\n"
       "Via: 1.1 unbroken\n"},
      {"IPv6 peer: bracketed and quoted in Forwarded, a host with a port quoted",
       "[2001:db8::7]:5000",
       false,
       "https",
       {{"Host", "h:8080"}},
       "X-Forwarded-For: 2001:db8::7\n"
       "X-Forwarded-Proto: https\n"
       "X-Forwarded-Host: h:8080\n"
       "Forwarded: for=\"[2001:db8::7]\";proto=https;host=\"h:8080\"\n"
       "X-Request-Id: ours\n"
       "Via: 1.1 unbroken\n"},
      {"no Host (HTTP/1.0): no X-Forwarded-Host, no host=",
       "203.0.113.7:5",
       false,
       "http",
       {},
       "X-Forwarded-For: 203.0.113.7\n"
       "X-Forwarded-Proto: http\n"
       "Forwarded: for=203.0.113.7;proto=http\n"
       "X-Request-Id: ours\n"
       "Via: 1.1 unbroken\n"},
  };
  for (const auto& c : cases) {
    auto req = request("GET", "/", c.fields);
    req.client = c.client;
    std::string out;
    append_forward_head(out, req, {c.trusted, c.proto, "ours"});
    EXPECT_EQ(forwarding_lines(out), c.expected) << c.name;
  }
}

TEST(ForwardHeadTest, ClientRequestIdKeptOnlyFromATrustedPeerAndWhenSane) {
  struct Case {
    bool trusted;
    std::vector<std::pair<std::string, std::string>> fields;
    std::string_view kept;
  };
  const std::string longest(128, 'a');
  const Case cases[] = {
      {false, {{"X-Request-Id", "abc-123"}}, ""},
      {true, {{"X-Request-Id", "abc-123"}}, "abc-123"},
      {true, {{"x-request-id", "f47ac10b-58cc-4372-a567-0e02b2c3d479"}}, "f47ac10b-58cc-4372-a567-0e02b2c3d479"},
      {true, {}, ""},
      {true, {{"X-Request-Id", longest}}, longest},
      {true, {{"X-Request-Id", std::string(129, 'a')}}, ""},
      {true, {{"X-Request-Id", "a b"}}, ""},
      {true, {{"X-Request-Id", "a/b"}}, ""},
      {true, {{"X-Request-Id", "a?b"}}, ""},
      {true, {{"X-Request-Id", "50%"}}, ""},
      {true, {{"X-Request-Id", "caf\xc3\xa9"}}, ""},
      {true, {{"X-Request-Id", "tab\there"}}, ""},
      {true, {{"X-Request-Id", "one"}, {"X-Request-Id", "two"}}, ""},
  };
  for (const auto& c : cases) {
    auto req = request("GET", "/", c.fields);
    EXPECT_EQ(client_request_id(req, c.trusted), c.kept)
        << (c.fields.empty() ? std::string("(none)") : c.fields[0].second) << " trusted=" << c.trusted;
  }
}

TEST(ForwardHeadTest, ClientIp) {
  EXPECT_EQ(client_ip("203.0.113.7:51234"), "203.0.113.7");
  EXPECT_EQ(client_ip("[::1]:8080"), "::1");
  EXPECT_EQ(client_ip("nohost"), "nohost");
}

}  // namespace
}  // namespace unbroken::proxy
