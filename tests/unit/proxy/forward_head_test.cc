// The head the proxy sends upstream: hop-by-hop fields and the ones Connection names are dropped,
// Host kept, our framing, X-Forwarded-For the peer's address, Via appended.

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
  append_forward_head(out, req, false);
  EXPECT_EQ(out,
            "GET /a?b=1 HTTP/1.1\r\n"
            "Host: example.com\r\n"
            "Accept: */*\r\n"
            "X-Forwarded-For: 203.0.113.7\r\n"
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
  append_forward_head(out, ws, false);
  EXPECT_NE(out.find("\r\nSec-WebSocket-Key: k\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("close"), std::string::npos) << out;
  EXPECT_EQ(out.find("keep-alive"), std::string::npos) << out;
  // Upgrade alone (Connection does not name it) is an ordinary hop-by-hop field: dropped.
  auto bare = request("GET", "/chat", {{"Host", "h"}, {"Upgrade", "websocket"}});
  out.clear();
  append_forward_head(out, bare, false);
  EXPECT_EQ(out.find("Upgrade"), std::string::npos) << out;
  EXPECT_NE(out.find("\r\nConnection: close\r\n"), std::string::npos) << out;
}

TEST(ForwardHeadTest, FramingIsOurs) {
  auto req = request("POST", "/p", {{"Host", "h"}, {"Content-Length", "5"}});
  req.content_length = 5;
  std::string out;
  append_forward_head(out, req, false);
  EXPECT_NE(out.find("\r\nContent-Length: 5\r\n"), std::string::npos) << out;
  auto chunked = request("POST", "/p", {{"Host", "h"}, {"Transfer-Encoding", "chunked"}});
  chunked.chunked = true;
  out.clear();
  append_forward_head(out, chunked, true);
  EXPECT_NE(out.find("\r\nTransfer-Encoding: chunked\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("Content-Length"), std::string::npos) << out;
  EXPECT_EQ(out.find("Connection"), std::string::npos) << "kept alive for the pool: " << out;
}

TEST(ForwardHeadTest, ClientIp) {
  EXPECT_EQ(client_ip("203.0.113.7:51234"), "203.0.113.7");
  EXPECT_EQ(client_ip("[::1]:8080"), "::1");
  EXPECT_EQ(client_ip("nohost"), "nohost");
}

}  // namespace
}  // namespace unbroken::proxy
