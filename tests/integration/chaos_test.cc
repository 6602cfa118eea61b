// `unbroken chaos` against real servers on loopback: unbroken itself, Python's HTTPServer (one
// request at a time: slowloris must starve it) and ThreadingHTTPServer, and nginx. Each run is a few
// seconds long; the assertions are on its JSON report and exit code, and on how the reports differ.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <simdjson.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "integration/chaos_run.h"
#include "integration/child_process.h"
#include "integration/harness.h"

namespace unbroken::testing {
namespace {

namespace fs = std::filesystem;

class ChaosTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/unbroken-chaos-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs chaos with --json for `seconds` and parses its report.
  std::unique_ptr<ChaosRun> chaos(const std::string& url, const std::string& mix, int seconds,
                                  std::vector<std::string> extra = {}) {
    return run_chaos(dir_ + "/chaos-" + std::to_string(++runs_) + ".out", url, mix, seconds, extra);
  }

  std::unique_ptr<Child> python_server(const std::string& flavour, std::uint16_t& port) {
    fs::path script = fs::path(__FILE__).parent_path() / "targets" / "python_server.py";
    auto c = std::make_unique<Child>(std::vector<std::string>{"python3", script.string(), flavour},
                                     dir_ + "/python-" + flavour + ".out");
    std::string out = c->wait_output("port ");
    port = static_cast<std::uint16_t>(std::stoi(out.substr(out.find("port ") + 5)));
    return c;
  }

  std::string dir_;
  int runs_ = 0;
};

std::string url(std::uint16_t port, const std::string& path) {
  return "http://127.0.0.1:" + std::to_string(port) + path;
}

TEST_F(ChaosTest, UnbrokenServesGoodClientsWhileEveryKindMisbehaves) {
  auto server = Server::start(
      {{"--header-timeout", "1s", "--body-timeout", "1s", "--send-timeout", "1s", "--keepalive-timeout", "2s"}});
  auto run = chaos(url(server->port(), "/diag/bytes/13"),
                   "good=8,hangup-wait=1,abort-head=1,rst-head=1,abort-body=1,abort-response=1,rst-response=1,"
                   "slowloris=2,slow-body=1,pipeline-close=1,idle=2,refresh-storm=1",
                   3, {"--connections", "24", "--trickle", "100ms", "--good-timeout", "2s"});
  EXPECT_EQ(run->exit_code, 0) << run->json;
  EXPECT_TRUE(run->passed());
  EXPECT_GT(run->good("requests"), 100u);
  EXPECT_EQ(run->good("errors"), 0u) << run->json;
  // A head trickled for longer than --header-timeout gets its 408; a silent connection is closed.
  EXPECT_GT(run->reaction("slowloris", "closed_408"), 0u) << run->json;
  EXPECT_GT(run->reaction("idle", "closed_silently"), 0u) << run->json;
  // A body trickled a byte at a time makes no progress that counts: 408 at the body timeout.
  EXPECT_GT(run->reaction("slow-body", "closed_408"), 0u) << run->json;
  // A half-sent head followed by FIN: the client is gone, the server closes without an answer.
  EXPECT_GT(run->reaction("abort-head", "closed_silently"), 0u) << run->json;
  EXPECT_GT(run->reaction("hangup-wait", "left"), 0u);
  EXPECT_GT(run->reaction("refresh-storm", "attempts"), 0u);
  EXPECT_TRUE(server->alive());
}

TEST_F(ChaosTest, AClientThatStopsReadingIsResetByTheSendTimeout) {
  auto server = Server::start({{"--send-timeout", "1s"}});
  // 64 MiB cannot fit in the socket buffers: the server is left with bytes nobody reads.
  auto run = chaos(url(server->port(), "/diag/bytes/67108864"), "stall=2", 3, {"--connections", "2"});
  EXPECT_GT(run->reaction("stall", "reset"), 0u) << run->json;
  EXPECT_EQ(run->reaction("stall", "nothing") + run->reaction("stall", "reset") +
                run->reaction("stall", "closed_silently") + run->reaction("stall", "answered"),
            run->reaction("stall", "attempts"));
}

TEST_F(ChaosTest, SlowlorisStarvesPythonsSingleThreadedServer) {
  std::uint16_t port = 0;
  auto target = python_server("single", port);
  auto run = chaos(url(port, "/"), "good=4,slowloris=4", 3,
                   {"--connections", "8", "--trickle", "100ms", "--good-timeout", "1s"});
  EXPECT_EQ(run->exit_code, 1) << run->json;
  EXPECT_FALSE(run->passed());
  EXPECT_GT(run->good("errors"), 0u) << run->json;
  // Nothing stops a slowloris there: no header timeout.
  EXPECT_EQ(run->reaction("slowloris", "closed_408"), 0u);
}

TEST_F(ChaosTest, ThreadingServerKeepsServingButNeverCutsSlowloris) {
  std::uint16_t port = 0;
  auto target = python_server("threading", port);
  auto run = chaos(url(port, "/"), "good=4,slowloris=4", 3,
                   {"--connections", "8", "--trickle", "100ms", "--good-timeout", "2s"});
  EXPECT_EQ(run->exit_code, 0) << run->json;
  EXPECT_GT(run->good("requests"), 50u);
  // A thread per connection: the slow clients hold their threads until the run ends.
  EXPECT_EQ(run->reaction("slowloris", "closed_408"), 0u) << run->json;
  EXPECT_GT(run->reaction("slowloris", "nothing"), 0u) << run->json;

  // unbroken, same mix: the slow clients are cut with a 408 when the header timeout expires.
  auto server = Server::start({{"--header-timeout", "1s"}});
  auto ours = chaos(url(server->port(), "/diag/bytes/13"), "good=4,slowloris=4", 3,
                    {"--connections", "8", "--trickle", "100ms", "--good-timeout", "2s"});
  EXPECT_EQ(ours->exit_code, 0) << ours->json;
  EXPECT_GT(ours->reaction("slowloris", "closed_408"), 0u) << ours->json;
}

TEST_F(ChaosTest, NginxClosesSlowClientsSilentlyWhereUnbrokenAnswers408) {
  std::uint16_t port = 0;
  {
    // A free port for nginx, which cannot report one it picked itself.
    UniqueFd probe(::socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ASSERT_EQ(::bind(probe.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ::getsockname(probe.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  std::ofstream(dir_ + "/nginx.conf") << "worker_processes 1;\ndaemon off;\npid " << dir_ << "/nginx.pid;\n"
                                      << "error_log " << dir_ << "/nginx.err;\nevents { worker_connections 1024; }\n"
                                      << "http {\n  access_log off;\n  client_header_timeout 1s;\n"
                                      << "  client_body_temp_path " << dir_ << "; proxy_temp_path " << dir_
                                      << "; fastcgi_temp_path " << dir_ << "; uwsgi_temp_path " << dir_
                                      << "; scgi_temp_path " << dir_ << ";\n"
                                      << "  server { listen 127.0.0.1:" << port
                                      << "; location / { return 200 \"hello, chaos\\n\"; } }\n}\n";
  Child nginx({"nginx", "-c", dir_ + "/nginx.conf"}, dir_ + "/nginx.out");
  // nginx says nothing when it is ready: wait for its port to accept.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    UniqueFd probe = connect_to(port, 100ms);
    if (probe) break;
    ::poll(nullptr, 0, 20);  // nothing to wait on: nginx prints no readiness line
  }
  auto run = chaos(url(port, "/"), "good=4,slowloris=2,idle=2", 3,
                   {"--connections", "8", "--trickle", "100ms", "--good-timeout", "2s"});
  EXPECT_EQ(run->exit_code, 0) << run->json << slurp(dir_ + "/nginx.err");
  EXPECT_GT(run->good("requests"), 100u);
  // nginx's client_header_timeout closes without a response; unbroken answers 408 (see above).
  EXPECT_GT(run->reaction("slowloris", "closed_silently") + run->reaction("slowloris", "reset"), 0u) << run->json;
  EXPECT_EQ(run->reaction("slowloris", "closed_408"), 0u) << run->json;
  EXPECT_GT(run->reaction("idle", "closed_silently"), 0u) << run->json;
}

TEST_F(ChaosTest, EveryHangUpUnderChurnIsOneRecordAndNoDescriptorLeaks) {
  auto server = Server::start({{"--threads", "2"}});
  int baseline = server->open_fds();
  // Thousands of clients that send a request and leave while the handler waits: the stop button,
  // pressed as fast as one core can press it.
  auto run = chaos(url(server->port(), "/diag/delay/300"), "hangup-wait=1", 2, {"--connections", "20"});
  std::uint64_t left = run->reaction("hangup-wait", "left");
  ASSERT_GT(left, 100u) << run->json;
  // Each departure is recorded once the handler lets go (wasted_ms): wait for the last of them.
  auto is_departure = [](const Record& r) {
    return r.at("outcome") == "client_closed" && r.at("ua") == "unbroken-chaos/hangup-wait";
  };
  std::size_t seen = 0;
  auto deadline = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto records = server->records();
    seen = static_cast<std::size_t>(std::count_if(records.begin(), records.end(), is_departure));
    if (seen >= left) break;
    server->wait_record([](const Record&) { return true; }, 200ms, records.size());
  }
  EXPECT_EQ(seen, left) << "one record per departed client";
  for (const auto& r : server->records()) {
    if (!is_departure(r)) continue;
    EXPECT_EQ(r.at("status"), "499");
    EXPECT_EQ(r.at("phase"), "handler");
    EXPECT_EQ(r.at("cancelled"), "true");
  }
  EXPECT_EQ(server->metric(R"(unbroken_disconnects_total{outcome="client_closed",phase="handler"})"),
            static_cast<double>(left));
  EXPECT_TRUE(server->wait_fds(baseline)) << "descriptors leaked";
}

TEST_F(ChaosTest, BadFlagsAreOneLineAndExitTwo) {
  for (const auto& args : std::vector<std::vector<std::string>>{{"ftp://127.0.0.1/"},
                                                                {"http://127.0.0.1:1/", "--mix", "nosuch=1"},
                                                                {"http://127.0.0.1:1/", "--duration", "5"}}) {
    std::vector<std::string> full{UNBROKEN_BINARY, "chaos"};
    full.insert(full.end(), args.begin(), args.end());
    Child c(full, dir_ + "/bad.out");
    EXPECT_EQ(c.wait(10s), 2);
    std::string out = c.output();
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
    EXPECT_EQ(out.rfind("unbroken", 0), 0u) << out;
  }
}

TEST_F(ChaosTest, ATargetThatIsNotThereFailsTheVerdict) {
  auto run = chaos("http://127.0.0.1:1/", "good=2,idle=1", 1, {"--connections", "3"});
  EXPECT_EQ(run->exit_code, 1);
  EXPECT_EQ(run->good("requests"), 0u);
  EXPECT_GT(run->reaction("idle", "connect_failed"), 0u);
}

}  // namespace
}  // namespace unbroken::testing
