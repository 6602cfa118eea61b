// The reverse proxy in front of real application servers: a Flask app (targets/flask_app.py) under
// gunicorn's sync workers, on a TCP port and on a unix socket, both started by the test on free
// addresses. Requests and bodies through, a chunked upstream, the upstream failures (refused, too
// slow, killed mid-response) as their own outcomes, and the headline: a client that leaves while a
// sync worker is still writing leaves no error in gunicorn's log through unbroken, where the same
// departure aimed at gunicorn directly does (the control, asserted, so that the test can fail).

#include <sys/socket.h>

#include "integration/gunicorn_fixture.h"

namespace unbroken::testing {
namespace {

// gunicorn's debug lines for a client that left while it wrote (workers/sync.py), and its error.
bool has_write_error(const std::string& log) {
  return log.find("Ignoring EPIPE") != std::string::npos ||
         log.find("Ignoring connection reset") != std::string::npos ||
         log.find("Socket error processing request") != std::string::npos;
}

std::string field(const Record& r, const char* key) {
  auto it = r.find(key);
  return it == r.end() ? std::string() : it->second;
}

class ProxyTest : public GunicornTest {};

std::optional<Response> request(std::uint16_t port, const std::string& wire) {
  UniqueFd fd = connect_to(port);
  send_all(fd.get(), wire);
  return read_response(fd.get());
}

TEST_F(ProxyTest, GetPostAndChunkedThroughGunicornOnTcpAndUnixSocket) {
  auto tcp = gunicorn("127.0.0.1:0", "tcp");
  std::string sock = dir_ + "/app.sock";
  auto unix_app = gunicorn("unix:" + sock, "unix");
  // The longest prefix wins: /hello goes to the unix socket, everything else to the TCP one.
  auto server = Server::start({{"--proxy", "/=" + upstream(*tcp), "--proxy", "/hello=unix:" + sock}});

  auto r = get(server->port(), "/hello");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello, proxy\n");
  EXPECT_NE(unix_app->wait_output("\"GET /hello HTTP/1.1\"").find("\"GET /hello HTTP/1.1\""), std::string::npos);
  EXPECT_EQ(tcp->output().find("GET /hello"), std::string::npos);
  auto rec = server->wait_record([](const Record& x) { return field(x, "path") == "/hello"; });
  ASSERT_TRUE(rec);
  EXPECT_EQ((*rec)["outcome"], "ok");
  EXPECT_EQ((*rec)["route"], "* /hello/*");

  // A body through, and the head the application saw: forwarding fields ours, hop-by-hop ones gone.
  std::string body(100'000, 'b');
  r = request(server->port(),
              "POST /echo HTTP/1.1\r\nHost: app\r\nConnection: X-Secret\r\nX-Secret: 1\r\n"
              "X-Forwarded-For: 6.6.6.6\r\nContent-Length: " +
                  std::to_string(body.size()) + "\r\n\r\n" + body);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, body);
  EXPECT_EQ(r->headers["x-seen-forwarded-for"], "127.0.0.1");
  EXPECT_EQ(r->headers["x-seen-via"], "1.1 unbroken");
  EXPECT_EQ(r->headers["x-seen-secret"], "");

  // A chunked request body, and a response without a length: chunked to our client too.
  r = request(server->port(),
              "POST /echo HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "abcde");
  r = get(server->port(), "/chunked?n=4");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["transfer-encoding"], "chunked");
  EXPECT_EQ(r->body, "piece 0\npiece 1\npiece 2\npiece 3\n");
  EXPECT_TRUE(r->complete);
}

TEST_F(ProxyTest, UpstreamNotListeningIs502RefusedWithinTheConnectTimeout) {
  auto server = Server::start(
      {{"--proxy", "/=http://127.0.0.1:" + std::to_string(free_port()), "--upstream-connect-timeout", "2s"}});
  auto started = std::chrono::steady_clock::now();
  auto r = get(server->port(), "/anything");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 502);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
  auto rec = server->wait_record([](const Record& x) { return field(x, "path") == "/anything"; });
  ASSERT_TRUE(rec);
  EXPECT_EQ((*rec)["outcome"], "upstream_refused");
  EXPECT_EQ((*rec)["status"], "502");
}

TEST_F(ProxyTest, UpstreamSlowerThanTheHeaderTimeoutIs504) {
  auto app = gunicorn("127.0.0.1:0", "slow");
  auto server = Server::start({{"--proxy", "/=" + upstream(*app), "--upstream-header-timeout", "300ms"}});
  auto r = get(server->port(), "/slow?ms=1500");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 504);
  auto rec = server->wait_record([](const Record& x) { return field(x, "path") == "/slow?ms=1500"; });
  ASSERT_TRUE(rec);
  EXPECT_EQ((*rec)["outcome"], "upstream_timeout");
  EXPECT_EQ((*rec)["status"], "504");
  EXPECT_EQ((*rec)["timer"], "upstream_header");
  EXPECT_EQ((*rec)["timeout_ms"], "300");
  EXPECT_EQ(server->metric("unbroken_timeouts_total{timer=\"upstream_header\"}"), 1);
}

TEST_F(ProxyTest, UpstreamKilledMidResponseIsACutAndUpstreamReset) {
  auto app = gunicorn("127.0.0.1:0", "die");
  auto server = Server::start({{"--proxy", "/=" + upstream(*app)}});
  UniqueFd fd = connect_to(server->port());
  send_all(fd.get(), "GET /die HTTP/1.1\r\nHost: app\r\n\r\n");
  bool eof = false;
  std::string wire = read_until_close(fd.get(), &eof);
  auto r = parse_response(wire);
  ASSERT_TRUE(r) << wire.substr(0, 200);
  EXPECT_EQ(r->status, 200);
  EXPECT_FALSE(r->complete);  // the client sees a cut, never a complete-looking short response
  EXPECT_LT(r->body.size(), 1u << 20);
  auto rec = server->wait_record([](const Record& x) { return field(x, "path") == "/die"; });
  ASSERT_TRUE(rec);
  EXPECT_EQ((*rec)["outcome"], "upstream_reset");
}

// A client that reads the head of /big?bytes=6MiB&tag=TAG, then resets.
void leave(std::uint16_t port, const std::string& tag) {
  UniqueFd fd = connect_to(port);
  send_all(fd.get(), "GET /big?bytes=6291456&tag=" + tag + " HTTP/1.1\r\nHost: app\r\n\r\n");
  char buf[4096];
  ASSERT_GT(::recv(fd.get(), buf, sizeof buf, 0), 0);
  reset(fd);
}

// Waits (with a deadline) for gunicorn's log to show a write error; whether it did.
bool wait_write_error(Child& app) {
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!has_write_error(app.output()) && std::chrono::steady_clock::now() < deadline) app.wait_output("Ignoring", 1s);
  return has_write_error(app.output());
}

// The headline. One sync worker writes 6 MiB (more than the sockets hold, so it is still writing
// when the client goes); the client reads the head and resets.
TEST_F(ProxyTest, AClientThatLeavesLeavesNoBrokenPipeInGunicornsLogThroughUnbroken) {
  auto app = gunicorn("127.0.0.1:0", "headline", 1);
  auto server = Server::start({{"--proxy", "/=" + upstream(*app)}});
  leave(server->port(), "proxied");
  // The worker finished its response (its access line is written only then) and logged no error.
  std::string log = app->wait_output("tag=proxied HTTP/1.1\" 200");
  EXPECT_NE(log.find("tag=proxied HTTP/1.1\" 200"), std::string::npos) << log;
  auto rec =
      server->wait_record([](const Record& x) { return field(x, "path").find("tag=proxied") != std::string::npos; });
  ASSERT_TRUE(rec);
  EXPECT_EQ((*rec)["outcome"], "client_reset");
  // The whole response was read from the worker, for nobody.
  EXPECT_GE(std::stoull((*rec)["upstream_bytes_in"]), 6291456u);
  EXPECT_GT(std::stod((*rec)["wasted_ms"]), 0);
  EXPECT_FALSE(has_write_error(app->output())) << app->output();

  // The control: the same departure aimed at gunicorn directly shows in its log.
  leave(port_of(*app), "direct");
  EXPECT_TRUE(wait_write_error(*app)) << app->output();
}

// --upstream-abort close: the upstream connection closes with the client, as nginx does by default,
// and the worker's next write fails like the direct one.
TEST_F(ProxyTest, TheClosePolicyCutsTheUpstreamOffWithTheClient) {
  auto app = gunicorn("127.0.0.1:0", "close", 1);
  auto server = Server::start({{"--proxy", "/=" + upstream(*app), "--upstream-abort", "close"}});
  leave(server->port(), "closed");
  EXPECT_TRUE(wait_write_error(*app)) << app->output();
  auto rec =
      server->wait_record([](const Record& x) { return field(x, "path").find("tag=closed") != std::string::npos; });
  ASSERT_TRUE(rec);
  EXPECT_EQ(field(*rec, "outcome"), "client_reset");
}

}  // namespace
}  // namespace unbroken::testing
