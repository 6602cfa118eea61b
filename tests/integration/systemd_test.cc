// serve under systemd, with the test playing systemd's side for real: the notify protocol on a
// NOTIFY_SOCKET datagram socket (READY, RELOADING, STOPPING, WATCHDOG), and socket activation with
// listening descriptors passed as LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>

#include "common/notify_socket.h"
#include "harness.h"
#include "net/socket.h"

namespace unbroken::testing {
namespace {

std::unique_ptr<Server> start_notifying(NotifySocket& notify, std::vector<std::string> env = {},
                                        std::vector<std::string> pid_env = {}) {
  env.push_back(notify.env());
  return Server::start({.args = {}, .env = env, .pid_env = pid_env, .wait_started = false});
}

// READY=1 comes once every listener accepts: connecting the moment it arrives succeeds, on the
// plain port and on the admin port, both already in the log.
void expect_ready_and_serving(NotifySocket& notify, Server& server) {
  auto ready = notify.wait_for("READY=1", 15s);
  ASSERT_TRUE(ready) << server.stderr_text();
  server.read_ports();
  ASSERT_NE(server.port(), 0) << "READY=1 before the listening line: " << server.stderr_text();
  ASSERT_NE(server.admin_port(), 0) << "READY=1 before the admin line: " << server.stderr_text();
  EXPECT_TRUE(connect_to(server.port(), 2s));
  EXPECT_TRUE(connect_to(server.admin_port(), 2s));
  EXPECT_TRUE(has_line(*ready, "STATUS=listening on http://127.0.0.1:" + std::to_string(server.port()))) << *ready;
}

TEST(Systemd, ReadyReloadingStopping) {
  NotifySocket notify;
  ASSERT_TRUE(notify.bound());
  auto server = start_notifying(notify);
  expect_ready_and_serving(notify, *server);
  auto r = get(server->port(), "/hello.txt");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);

  ::kill(server->pid(), SIGHUP);
  auto reloading = notify.wait_for("RELOADING=1", 10s);
  ASSERT_TRUE(reloading) << server->stderr_text();
  EXPECT_NE(reloading->find("\nMONOTONIC_USEC="), std::string::npos) << *reloading;
  std::vector<std::string> between;
  EXPECT_TRUE(notify.wait_for("READY=1", 10s, &between)) << "no READY=1 after the reload";
  EXPECT_TRUE(between.empty());

  ::kill(server->pid(), SIGTERM);
  EXPECT_TRUE(notify.wait_for("STOPPING=1", 10s)) << server->stderr_text();
  EXPECT_EQ(server->wait_exit(), 0);
}

TEST(Systemd, AbstractNotifySocket) {
  NotifySocket notify(/*abstract=*/true);
  ASSERT_TRUE(notify.bound());
  auto server = start_notifying(notify);
  expect_ready_and_serving(notify, *server);
}

// WATCHDOG_USEC=200000: a ping every 100 ms while the loops answer, so several in a second.
TEST(Systemd, WatchdogPingsWhileLoopsAnswer) {
  NotifySocket notify;
  auto server = start_notifying(notify, {"WATCHDOG_USEC=200000"}, {"WATCHDOG_PID"});
  expect_ready_and_serving(notify, *server);
  auto until = std::chrono::steady_clock::now() + 1s;
  int pings = 0;
  while (std::chrono::steady_clock::now() < until) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    auto m = notify.next(std::max(left, 1ms));
    if (m && has_line(*m, "WATCHDOG=1")) ++pings;
  }
  EXPECT_GE(pings, 4) << server->stderr_text();
  EXPECT_LE(pings, 12);  // half the interval, not a busy loop
}

// A watchdog meant for another process (WATCHDOG_PID not ours) is not ours to ping.
TEST(Systemd, NoWatchdogForAnotherPid) {
  NotifySocket notify;
  auto server = start_notifying(notify, {"WATCHDOG_USEC=200000", "WATCHDOG_PID=1"});
  expect_ready_and_serving(notify, *server);
  EXPECT_FALSE(notify.wait_for("WATCHDOG=1", 500ms));
}

// A listening socket made before serve started; a client already connected to it waits in its backlog.
struct Activation {
  Activation() {
    auto addr = net::SocketAddress::parse("127.0.0.1:0");
    auto fd = net::listen_tcp(*addr, /*reuse_port=*/false);
    EXPECT_TRUE(fd);
    if (!fd) return;
    listener = std::move(*fd);
    port = net::local_address(listener.get())->port();
  }
  UniqueFd listener;
  std::uint16_t port = 0;
};

TEST(Systemd, SocketActivationAnswersTheBacklog) {
  Activation http;
  ASSERT_NE(http.port, 0);
  // Connected and asked before serve exists: the kernel completed the handshake into the backlog.
  UniqueFd early = connect_to(http.port);
  ASSERT_TRUE(early);
  send_all(early.get(), "GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n");
  // --listen on the passed port: serve would fail to bind it (no SO_REUSEPORT on the passed
  // socket), so serving means it took the socket instead.
  auto server = Server::start({.args = {"--listen", "127.0.0.1:" + std::to_string(http.port)},
                               .env = {"LISTEN_FDS=1"},
                               .pid_env = {"LISTEN_PID"},
                               .pass_fds = {http.listener.get()}});
  ASSERT_EQ(server->port(), http.port) << server->stderr_text();
  auto r = read_response(early.get());
  ASSERT_TRUE(r) << server->stderr_text();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello, world\n");
  // Only the passed socket: neither --listen address was bound.
  std::string err = server->stderr_text();
  std::string line = "listening on http://127.0.0.1:" + std::to_string(http.port) + " (";
  EXPECT_NE(err.find(line), std::string::npos) << err;
  for (int i = 0; i < 4; ++i) {  // both loops accept on the shared socket
    auto again = get(server->port(), "/hello.txt");
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 200);
  }
  EXPECT_EQ(server->stop(), 0);
}

// LISTEN_FDNAMES: "admin" is the admin listener; any other name is plain HTTP.
TEST(Systemd, SocketActivationByName) {
  Activation http, admin;
  auto server = Server::start({.args = {},
                               .env = {"LISTEN_FDS=2", "LISTEN_FDNAMES=web:admin"},
                               .pid_env = {"LISTEN_PID"},
                               .pass_fds = {http.listener.get(), admin.listener.get()}});
  ASSERT_EQ(server->port(), http.port) << server->stderr_text();
  ASSERT_EQ(server->admin_port(), admin.port) << server->stderr_text();
  auto r = get(http.port, "/hello.txt");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_GE(server->metric("unbroken_connections_accepted_total"), 1);
}

// LISTEN_PID names another process: the descriptors are not ours, and serve binds its flags.
TEST(Systemd, ListenFdsForAnotherPidAreIgnored) {
  Activation other;
  auto server =
      Server::start({.args = {}, .env = {"LISTEN_FDS=1", "LISTEN_PID=1"}, .pass_fds = {other.listener.get()}});
  ASSERT_NE(server->port(), 0) << server->stderr_text();
  EXPECT_NE(server->port(), other.port);
  auto r = get(server->port(), "/hello.txt");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

// What systemd could not have passed: each is one line and a non-zero exit, before anything binds.
TEST(Systemd, BadListenDescriptorIsOneLineAndExit) {
  struct Case {
    const char* what;
    std::function<UniqueFd()> make;
  };
  std::vector<Case> cases = {
      {"a pipe",
       [] {
         int p[2];
         EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
         ::close(p[1]);
         return UniqueFd(p[0]);
       }},
      {"a TCP socket that does not listen", [] { return UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)); }},
      {"a UDP socket", [] { return UniqueFd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)); }},
  };
  for (auto& c : cases) {
    SCOPED_TRACE(c.what);
    UniqueFd fd = c.make();
    auto server = Server::start({.args = {},
                                 .env = {"LISTEN_FDS=1"},
                                 .pid_env = {"LISTEN_PID"},
                                 .pass_fds = {fd.get()},
                                 .wait_started = false});
    EXPECT_EQ(server->wait_exit(), 1);
    std::string err = server->stderr_text();
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
    EXPECT_NE(err.find("LISTEN_FDS: descriptor 3 is not a listening TCP socket"), std::string::npos) << err;
  }
}

}  // namespace
}  // namespace unbroken::testing
