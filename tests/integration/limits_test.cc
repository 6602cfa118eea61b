// Connection limits under a flood: --max-connections-per-ip answers the surplus from one address
// with 503 and a close, while another address is still served.

#include <poll.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "integration/harness.h"

namespace unbroken::testing {
namespace {

std::optional<Response> request(int fd) {
  send_all(fd, "GET /diag/bytes/5 HTTP/1.1\r\nHost: a\r\n\r\n");
  return read_response(fd);
}

TEST(Limits, PerAddressLimitAnswers503AndAnotherAddressIsServed) {
  auto server = Server::start({{"--max-connections-per-ip", "20", "--threads", "2"}});
  const int base_fds = server->open_fds();
  // The flood: 20 connections from 127.0.0.1 that hold their slots (one request each, kept alive).
  std::vector<UniqueFd> flood;
  for (int i = 0; i < 20; ++i) {
    flood.push_back(connect_from("127.0.0.1", server->port()));
    ASSERT_TRUE(flood.back());
    auto r = request(flood.back().get());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << "connection " << i << " is within the limit";
  }
  // One more from the same address: a 503 and a close, not a reset.
  UniqueFd extra = connect_from("127.0.0.1", server->port());
  ASSERT_TRUE(extra);
  auto refused = request(extra.get());
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503);
  EXPECT_EQ(refused->body, "too many connections from your address\n");
  EXPECT_TRUE(refused->closed);
  bool eof = false;
  read_until_close(extra.get(), &eof);
  EXPECT_TRUE(eof);
  // Another client address is served meanwhile.
  UniqueFd other = connect_from("127.0.0.2", server->port());
  ASSERT_TRUE(other);
  auto served = request(other.get());
  ASSERT_TRUE(served);
  EXPECT_EQ(served->status, 200);
  // The refusal is recorded as a limit, and counted.
  auto rec = server->wait_record([](const Record& r) { return r.at("status") == "503"; });
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->at("outcome"), "limit_exceeded");
  EXPECT_EQ(rec->at("client").rfind("127.0.0.1:", 0), 0u);
  // A slot freed is a slot given back: once the server has closed the three it no longer holds
  // (one of the flood, the refused one, the other address), the next connection is admitted.
  flood.pop_back();
  extra.reset();
  other.reset();
  ASSERT_TRUE(server->wait_fds(base_fds + 19));
  UniqueFd next = connect_from("127.0.0.1", server->port());
  auto r = request(next.get());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << "the freed slot was not given back";
}

TEST(Limits, MaxConnectionsHoldsUnderAnIdleFloodAndGoodClientsAreServed) {
  // 50 slots, 95 clients that connect and never send: accepting pauses at the limit (the rest wait
  // in the backlog), the header timeout frees the slots, and the good clients get their turn.
  auto server = Server::start({{"--max-connections", "50", "--header-timeout", "1s", "--threads", "1"}});
  const int base_fds = server->open_fds();
  std::vector<std::string> args{UNBROKEN_BINARY,
                                "chaos",
                                "http://127.0.0.1:" + std::to_string(server->port()) + "/diag/bytes/13",
                                "--duration",
                                "4s",
                                "--connections",
                                "100",
                                "--mix",
                                "good=5,idle=95",
                                "--good-timeout",
                                "3s",
                                "--json"};
  char tmpl[] = "/tmp/unbroken-flood-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  ChildResult run = run_isolated(args, dir, 30s);
  EXPECT_EQ(run.status, 0) << run.out << run.err;
  EXPECT_NE(run.out.find(R"("errors":0,)"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find(R"("passed":true)"), std::string::npos) << run.out;
  EXPECT_LE(server->metric("unbroken_connections_active"), 50);
  EXPECT_TRUE(server->alive());
  EXPECT_TRUE(server->wait_fds(base_fds)) << "descriptors leaked";
  std::filesystem::remove_all(dir);
}

// The count of `needle` in the server's stderr.
std::size_t lines_with(const Server& server, const std::string& needle) {
  std::string err = server.stderr_text();
  std::size_t n = 0;
  for (auto at = err.find(needle); at != std::string::npos; at = err.find(needle, at + 1)) ++n;
  return n;
}

// A pause at --max-connections is said once on stderr, with the limit and how to raise it, and
// counted once, however many times the listeners retry during it; its end is said too.
TEST(Limits, PauseAtTheConnectionLimitIsSaidAndCountedOnce) {
  auto server = Server::start({{"--max-connections", "10", "--threads", "2"}});
  std::vector<UniqueFd> held;
  for (int i = 0; i < 10; ++i) {
    held.push_back(connect_to(server->port()));
    auto r = request(held.back().get());
    ASSERT_TRUE(r) << i;
  }
  // Over the limit: these wait in the backlog; the listeners retry every 100 ms meanwhile.
  std::vector<UniqueFd> waiting;
  for (int i = 0; i < 3; ++i) waiting.push_back(connect_to(server->port(), 3s));
  send_all(waiting[0].get(), "GET /diag/bytes/5 HTTP/1.1\r\nHost: a\r\n\r\n");
  pollfd p{waiting[0].get(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 500), 0) << "answered beyond --max-connections";
  EXPECT_TRUE(server->wait_stderr("accepting paused"));
  EXPECT_EQ(lines_with(*server, "accepting paused: 10 connections open, the --max-connections limit"), 1u)
      << server->stderr_text();
  EXPECT_NE(server->stderr_text().find("raise it with --max-connections"), std::string::npos);
  EXPECT_EQ(server->metric("unbroken_accept_pauses_total"), 1);
  // Freeing the slots ends the pause: the waiting client is served, and the end is said.
  held.clear();
  auto r = read_response(waiting[0].get());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  waiting.clear();
  EXPECT_TRUE(server->wait_stderr("accepting resumed")) << server->stderr_text();
  EXPECT_EQ(lines_with(*server, "accepting resumed"), 1u) << server->stderr_text();
  EXPECT_EQ(lines_with(*server, "accepting paused"), 1u);
  EXPECT_EQ(server->metric("unbroken_accept_pauses_total"), 1);
}

// The soft descriptor limit goes up to the hard one when it cannot hold --max-connections (as Go
// does); when even the hard one cannot, one line says so.
TEST(Limits, DescriptorLimitIsRaisedToFitMaxConnections) {
  auto raised =
      Server::start({.args = {"--max-connections", "2000"}, .rlimit_nofile = 256, .rlimit_nofile_hard = 4096});
  std::ifstream limits("/proc/" + std::to_string(raised->pid()) + "/limits");
  std::string line, open_files;
  while (std::getline(limits, line))
    if (line.rfind("Max open files", 0) == 0) open_files = line;
  std::istringstream fields(open_files.substr(std::string("Max open files").size()));
  unsigned soft = 0, hard = 0;
  fields >> soft >> hard;
  EXPECT_EQ(soft, 4096u) << open_files;
  EXPECT_EQ(hard, 4096u);
  EXPECT_NE(raised->stderr_text().find("descriptor limit raised from 256 to 4096"), std::string::npos)
      << raised->stderr_text();

  auto short_of = Server::start({.args = {"--max-connections", "2000"}, .rlimit_nofile = 256});
  EXPECT_EQ(lines_with(*short_of, "--max-connections 2000 needs about"), 1u) << short_of->stderr_text();
  EXPECT_NE(short_of->stderr_text().find("the limit is 256"), std::string::npos);
  auto ok = get(short_of->port(), "/diag/bytes/5");
  ASSERT_TRUE(ok) << "still serves within its limit";
  EXPECT_EQ(ok->status, 200);

  auto enough = Server::start({.args = {"--max-connections", "100"}, .rlimit_nofile = 1024});
  EXPECT_EQ(lines_with(*enough, "descriptor"), 0u) << "nothing to say when the limit holds";
}

}  // namespace
}  // namespace unbroken::testing
