// The reverse proxy in front of real application servers: a Flask app (targets/flask_app.py) under
// gunicorn's sync workers, on a TCP port and on a unix socket, both started by the test on free
// addresses. Requests and bodies through, a chunked upstream, the upstream failures (refused, too
// slow, killed mid-response) as their own outcomes, and the headline: a client that leaves while a
// sync worker is still writing leaves no error in gunicorn's log through unbroken, where the same
// departure aimed at gunicorn directly does (the control, asserted, so that the test can fail).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <fstream>
#include <random>
#include <thread>

#include "integration/gunicorn_fixture.h"

namespace unbroken::testing {
namespace {

// gunicorn's debug lines for a client that left while it wrote (workers/sync.py), and its error.
bool has_write_error(const std::string& log) {
  return log.find("Ignoring EPIPE") != std::string::npos ||
         log.find("Ignoring connection reset") != std::string::npos ||
         log.find("Socket error processing request") != std::string::npos;
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
  EXPECT_EQ((*rec)["cancelled"], "false");  // the client is there and got our answer: nothing cancelled
}

// Round robin over a dead upstream and a live one: a refused connect moves on to the next upstream,
// so no client sees the dead one; the record says where the request went and that it was retried.
TEST_F(ProxyTest, ARefusedConnectMovesOnToTheNextUpstream) {
  auto app = gunicorn("127.0.0.1:0", "next");
  std::string dead = "http://127.0.0.1:" + std::to_string(free_port());
  auto server = Server::start({{"--proxy", "/=" + dead + "," + upstream(*app)}});
  int retried = 0;
  for (int i = 0; i < 4; ++i) {
    auto r = get(server->port(), "/hello?" + std::to_string(i));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    auto rec = server->wait_record([&](const Record& x) { return field(x, "path") == "/hello?" + std::to_string(i); });
    ASSERT_TRUE(rec);
    EXPECT_EQ("http://" + field(*rec, "upstream"), upstream(*app));
    retried += field(*rec, "upstream_retries") == "1";
  }
  EXPECT_GE(retried, 1);  // the dead one was met (and, once down, may be skipped)
}

TEST_F(ProxyTest, UpstreamSlowerThanTheHeaderTimeoutIs504) {
  auto app = gunicorn("127.0.0.1:0", "slow");
  // The connection's handler timer is shorter still: the proxy's own timers judge a proxied
  // request, so it never fires (before, it answered 503 timer=handler at 60 s with the defaults).
  auto server = Server::start(
      {{"--proxy", "/=" + upstream(*app), "--upstream-header-timeout", "300ms", "--handler-timeout", "100ms"}});
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

// An upstream that accepts (the kernel does, from the backlog) and never reads: a request body
// larger than the sockets hold stalls, and the send timer, not the header timer, ends it.
TEST_F(ProxyTest, AnUpstreamThatStopsReadingTheBodyIs504ByTheSendTimer) {
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(listener.get(), 8), 0);
  socklen_t len = sizeof a;
  ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&a), &len);
  auto server = Server::start({{"--proxy", "/=http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)),
                                "--upstream-send-timeout", "300ms", "--max-body", "64MiB"}});
  UniqueFd fd = connect_to(server->port());
  std::string body(40 << 20, 'u');  // beyond what loopback's socket buffers hold
  std::thread sender([&] {
    send_all(fd.get(),
             "POST /upload HTTP/1.1\r\nHost: app\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n");
    ::send(fd.get(), body.data(), body.size(), MSG_NOSIGNAL);  // cut short by the answer and close
  });
  auto r = read_response(fd.get());
  ::shutdown(fd.get(), SHUT_RDWR);
  sender.join();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 504);
  auto rec = server->wait_record([](const Record& x) { return field(x, "path") == "/upload"; });
  ASSERT_TRUE(rec);
  EXPECT_EQ(field(*rec, "outcome"), "upstream_timeout");
  EXPECT_EQ(field(*rec, "timer"), "upstream_send")
      << field(*rec, "phase") << " " << field(*rec, "bytes_in") << " " << field(*rec, "upstream_bytes_out");
  EXPECT_EQ(field(*rec, "timeout_ms"), "300");
}

// Sends GET /big?bytes=40MiB&tag=TAG on a fresh connection and reads only the first bytes: a client
// far slower than the application.
UniqueFd stall_on_big(std::uint16_t port, const std::string& tag) {
  UniqueFd fd = connect_to(port);
  // Small enough that 10 MB cannot hide in the kernel's buffers, large enough that the window
  // updates of loopback's 64 KiB segments do not wait on the persist timer.
  int small = 256 * 1024;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  send_all(fd.get(), "GET /big?bytes=41943040&tag=" + tag + " HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n");
  char buf[4096];
  EXPECT_GT(::recv(fd.get(), buf, sizeof buf, 0), 0);
  return fd;
}

// Response buffering: the sync worker hands its 40 MB (more than loopback's socket buffers and
// our own output queue hold together) to unbroken at loopback speed and is free
// while the client has barely started; the client still gets every byte. The control: aimed at
// gunicorn directly, the same client holds the worker until it has read the last byte.
TEST_F(ProxyTest, ASlowClientDoesNotHoldTheWorkerThroughUnbroken) {
  auto app = gunicorn("127.0.0.1:0", "slowreader", 1);
  auto server = Server::start({{"--proxy", "/=" + upstream(*app)}});
  UniqueFd proxied = stall_on_big(server->port(), "proxied");
  std::string line = "tag=proxied HTTP/1.1\" 200";
  EXPECT_NE(app->wait_output(line, 5s).find(line), std::string::npos) << "the worker is still held";
  bool eof = false;
  std::string rest = read_until_close(proxied.get(), &eof);
  EXPECT_GE(rest.size(), 41943040u - 4096);  // the rest of the body (and no more than asked)
  auto rec =
      server->wait_record([](const Record& x) { return field(x, "path").find("tag=proxied") != std::string::npos; });
  ASSERT_TRUE(rec);
  EXPECT_EQ(field(*rec, "outcome"), "ok");
  EXPECT_LT(std::stod(field(*rec, "upstream_ms")), std::stod(field(*rec, "duration_ms")));

  UniqueFd direct = stall_on_big(port_of(*app), "direct");
  std::string direct_line = "tag=direct HTTP/1.1\" 200";
  EXPECT_EQ(app->wait_output(direct_line, 1500ms).find(direct_line), std::string::npos)
      << "the control: a sync worker writes to its slow client itself";
  read_until_close(direct.get(), &eof);
  EXPECT_NE(app->wait_output(direct_line).find(direct_line), std::string::npos);
}

// Server-sent events pass through as they come: the first event reaches the client while the
// application is still waiting to send the second.
TEST_F(ProxyTest, ServerSentEventsStreamEventByEvent) {
  auto app = gunicorn("127.0.0.1:0", "sse", 1);
  auto server = Server::start({{"--proxy", "/=" + upstream(*app)}});
  std::string gate = dir_ + "/gate";
  UniqueFd fd = connect_to(server->port());
  send_all(fd.get(), "GET /events?gate=" + gate + " HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n");
  std::string got;
  char buf[4096];
  while (got.find("data: first\n\n") == std::string::npos) {
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    ASSERT_GT(n, 0) << got;
    got.append(buf, static_cast<std::size_t>(n));
  }
  EXPECT_EQ(got.find("second"), std::string::npos);
  EXPECT_NE(got.find("Content-Type: text/event-stream"), std::string::npos) << got;
  { std::ofstream(gate) << "go"; }
  bool eof = false;
  got += read_until_close(fd.get(), &eof);
  auto r = parse_response(got);
  ASSERT_TRUE(r) << got;
  EXPECT_TRUE(r->complete);
  EXPECT_EQ(r->body, "data: first\n\ndata: second\n\n");
}

// A client that reads the head of /big?bytes=6MiB&pause_ms=3&tag=TAG, then resets.
void leave(std::uint16_t port, const std::string& tag) {
  UniqueFd fd = connect_to(port);
  // Paced: the worker is still writing when the client goes, even though unbroken reads as fast as
  // it writes (response buffering), so the close policy always meets a worker mid-response.
  send_all(fd.get(), "GET /big?bytes=6291456&pause_ms=3&tag=" + tag + " HTTP/1.1\r\nHost: app\r\n\r\n");
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

// The pool: a second request goes on the connection the first one left, and says so.
TEST_F(ProxyTest, AKeepAliveUpstreamConnectionIsReusedByTheNextRequest) {
  auto app = gunicorn("127.0.0.1:0", "pool", 1, {"--worker-class", "gthread", "--threads", "4", "--keep-alive", "5"});
  // One loop: the pool is per loop.
  auto server = Server::start({{"--proxy", "/=" + upstream(*app), "--upstream-idle-timeout", "5s", "--threads", "1"}});
  for (const char* tag : {"a", "b", "c"}) {
    auto r = get(server->port(), std::string("/hello?") + tag);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  std::vector<std::string> reused;
  for (const char* tag : {"a", "b", "c"}) {
    auto rec = server->wait_record([&](const Record& x) { return field(x, "path") == std::string("/hello?") + tag; });
    ASSERT_TRUE(rec);
    reused.push_back(field(*rec, "upstream_reused"));
    EXPECT_EQ(field(*rec, "upstream_retries"), "0");
  }
  EXPECT_EQ(reused, (std::vector<std::string>{"false", "true", "true"}));
  // The control: with no pool every request connects anew, and the application is told to close.
  auto unpooled = Server::start({{"--proxy", "/=" + upstream(*app), "--upstream-keepalive", "0"}});
  for (const char* tag : {"d", "e"}) ASSERT_TRUE(get(unpooled->port(), std::string("/hello?") + tag));
  auto rec = unpooled->wait_record([&](const Record& x) { return field(x, "path") == "/hello?e"; });
  ASSERT_TRUE(rec);
  EXPECT_EQ(field(*rec, "upstream_reused"), "false");
}

// The stale keep-alive race: the application closes an idle connection after 1 s (gunicorn
// --keep-alive 1), and requests come about a second apart, some just as it closes. Our idle
// timeout is longer than the application's on purpose (the misconfiguration behind the 502s
// Envoy, ALB and HAProxy users report): the watch on parked connections and the retry of an
// idempotent request on a fresh connection must leave no client error in 500 requests.
TEST_F(ProxyTest, StaleKeepAliveConnectionsNeverReachTheClient) {
  auto app = gunicorn("127.0.0.1:0", "stale", 1, {"--worker-class", "gthread", "--threads", "64", "--keep-alive", "1"});
  auto server = Server::start({{"--proxy", "/=" + upstream(*app), "--upstream-idle-timeout", "10s"}});
  constexpr int kClients = 50, kEach = 10;
  std::atomic<int> ok{0};
  std::vector<std::string> errors(kClients);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c)
    clients.emplace_back([&, c] {
      std::minstd_rand rng(static_cast<unsigned>(c + 1));
      for (int i = 0; i < kEach; ++i) {
        // Around the application's 1 s: the workload's spacing, not a synchronisation.
        std::this_thread::sleep_for(std::chrono::milliseconds(900 + rng() % 200));
        auto r = get(server->port(), "/hello?c=" + std::to_string(c) + "&i=" + std::to_string(i));
        if (r && r->status == 200 && r->body == "hello, proxy\n") {
          ++ok;
        } else {
          errors[c] += r ? std::to_string(r->status) + " " : std::string("no response ");
        }
      }
    });
  for (auto& t : clients) t.join();
  std::string all;
  for (const auto& e : errors) all += e;
  EXPECT_EQ(ok.load(), kClients * kEach) << all;
  auto recs = server->records();
  int reused = 0, retried = 0;
  for (const auto& r : recs) {
    reused += field(r, "upstream_reused") == "true";
    retried += field(r, "upstream_retries") == "1";
  }
  // The pool was in play (else the test proves nothing); how often the race was met is told.
  EXPECT_GT(reused, kClients) << retried << " retried";
  std::printf("stale keep-alive: %d of %zu requests reused a pooled connection, %d retried\n", reused, recs.size(),
              retried);
}

}  // namespace
}  // namespace unbroken::testing
