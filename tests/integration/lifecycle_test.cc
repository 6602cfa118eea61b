// Process-level behaviour: graceful shutdown, signals, descriptor exhaustion, bad flags.

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <thread>

#include "harness.h"

namespace unbroken::testing {
namespace {

// Sends SIGTERM and returns /healthz's status once the drain has begun (503), or the last one seen.
// The signal is handled asynchronously; until then a second signal could merge with this one.
int start_drain(Server& server) {
  ::kill(server.pid(), SIGTERM);
  int health = 0;
  for (int i = 0; i < 200 && health != 503; ++i) {
    auto h = get(server.admin_port(), "/healthz");
    health = h ? h->status : -1;
    if (health == 200) std::this_thread::sleep_for(5ms);  // polling a state another process changes
  }
  return health;
}

// Opens a connection with a request the handler holds for a minute; returns once it is counted.
UniqueFd start_long_request(Server& server) {
  UniqueFd busy = connect_to(server.port());
  send_all(busy.get(), "GET /diag/delay/60000 HTTP/1.1\r\nHost: t\r\n\r\n");
  for (int i = 0; i < 200 && server.metric("unbroken_connections_active") < 1; ++i)
    std::this_thread::sleep_for(10ms);  // polling a gauge: there is no event to await
  EXPECT_GE(server.metric("unbroken_connections_active"), 1);
  return busy;
}

TEST(Lifecycle, GracefulShutdownFinishesTheRequestInFlight) {
  auto server = Server::start({{"--drain-timeout", "5s"}});
  UniqueFd busy = connect_to(server->port());
  send_all(busy.get(), "GET /diag/delay/600 HTTP/1.1\r\nHost: t\r\n\r\n");
  UniqueFd idle = connect_to(server->port());
  send_all(idle.get(), "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_TRUE(read_response(idle.get()));
  // The delay handler is running once its request was read; the idle one is in keep-alive.
  ASSERT_TRUE(server->wait_record([](const Record& r) { return r.at("path") == "/hello.txt"; }));
  EXPECT_EQ(start_drain(*server), 503);
  bool eof = false;
  EXPECT_EQ(read_until_close(idle.get(), &eof), "");  // idle keep-alive connection closed at once
  EXPECT_TRUE(eof);
  auto r = read_response(busy.get());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok\n");
  EXPECT_EQ(r->headers["connection"], "close");
  EXPECT_EQ(server->wait_exit(), 0);
  EXPECT_FALSE(connect_to(server->port())) << "listeners are closed";
  // Its record was written during the drain, an instant before the exit: the log has it.
  auto records = server->records();
  EXPECT_TRUE(std::any_of(records.begin(), records.end(), [](const Record& rec) {
    return rec.at("path") == "/diag/delay/600" && rec.at("status") == "200";
  })) << server->log_text();
}

TEST(Lifecycle, DrainTimeoutCutsWhatDoesNotFinish) {
  auto server = Server::start({{"--drain-timeout", "300ms"}});
  UniqueFd busy = start_long_request(*server);
  auto start = std::chrono::steady_clock::now();
  ::kill(server->pid(), SIGTERM);
  auto exit_code = server->wait_exit(10s);
  EXPECT_EQ(exit_code, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(Lifecycle, SecondSignalExitsWithoutWaitingForTheDrain) {
  auto server = Server::start({{"--drain-timeout", "60s"}});
  UniqueFd busy = start_long_request(*server);
  ASSERT_EQ(start_drain(*server), 503);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(server->stop(SIGINT, 10s), 128 + SIGINT);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s) << "the 60 s drain was not waited for";
  EXPECT_NE(server->stderr_text().find("second Interrupt: exiting without finishing the drain"), std::string::npos)
      << server->stderr_text();
}

TEST(Lifecycle, SigpipeDoesNotKillTheServer) {
  auto server = Server::start();
  ::kill(server->pid(), SIGPIPE);
  auto r = get(server->port(), "/hello.txt");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(server->alive());
}

TEST(Lifecycle, SighupReopensTheLogAndKeepsServing) {
  auto server = Server::start();
  ::kill(server->pid(), SIGHUP);
  ASSERT_TRUE(get(server->port(), "/hello.txt"));
  EXPECT_TRUE(server->wait_record([](const Record& r) { return r.at("path") == "/hello.txt"; }));
  EXPECT_TRUE(server->alive());
}

TEST(Lifecycle, DescriptorExhaustionIsCountedAndRecovered) {
  auto server = Server::start({.args = {}, .rlimit_nofile = 64});
  int baseline = server->open_fds();
  // Hold more connections than the server has descriptors for.
  std::vector<UniqueFd> held;
  for (int i = 0; i < 80; ++i) {
    UniqueFd fd = connect_to(server->port(), 2s);
    if (fd) held.push_back(std::move(fd));
  }
  // The admin listener shares the exhausted descriptor table, so look at /proc until the server
  // holds every descriptor it may have, then let go and ask what happened.
  bool exhausted = false;
  for (int i = 0; i < 500 && !exhausted; ++i) {
    exhausted = server->open_fds() >= 64;
    if (!exhausted) std::this_thread::sleep_for(10ms);  // polling /proc: no event to await
  }
  EXPECT_TRUE(exhausted);
  held.clear();
  ASSERT_TRUE(server->wait_fds(baseline, 10s));
  EXPECT_GE(server->metric("unbroken_accept_errors_total{errno=\"EMFILE\"}"), 1);
  auto r = get(server->port(), "/hello.txt");
  ASSERT_TRUE(r) << "the server serves again once descriptors are free";
  EXPECT_EQ(r->status, 200);
}

TEST(Lifecycle, BadFlagIsOneLineAndExit2) {
  std::string cmd = std::string(UNBROKEN_BINARY) + " serve --header-timeout banana 2>&1; echo \"exit=$?\"";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  ::pclose(p);
  EXPECT_NE(out.find("--header-timeout"), std::string::npos) << out;
  EXPECT_NE(out.find("exit=2"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2) << out;
}

}  // namespace
}  // namespace unbroken::testing
