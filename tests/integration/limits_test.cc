// Connection limits under a flood: --max-connections-per-ip answers the surplus from one address
// with 503 and a close, while another address is still served.


#include <filesystem>

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
  std::vector<std::string> args{UNBROKEN_BINARY, "chaos", "http://127.0.0.1:" + std::to_string(server->port()) +
                                "/diag/bytes/13", "--duration", "4s", "--connections", "100", "--mix",
                                "good=5,idle=95", "--good-timeout", "3s", "--json"};
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

}  // namespace
}  // namespace unbroken::testing
