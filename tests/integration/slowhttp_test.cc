// slowhttptest (Debian's) in slowloris, slow-body and slow-read modes against the running server,
// bounded in connections and time. Its own CSV report is the judge: its probe found the service
// available in every second of the attack, and the attack's connections were closed by our timeouts.

#include <poll.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "integration/harness.h"

namespace unbroken::testing {
namespace {

constexpr int kConnections = 120;

struct Second {
  int closed = 0;
  int pending = 0;
  int connected = 0;
  int service = 0;  // slowhttptest's chart value: the connection count while available, 0 when not
};

// Runs slowhttptest with `mode_args` and returns its per-second CSV rows. Its probe waits up to 5 s
// (-p) before calling the service unavailable: the sanitizer builds are several times slower.
std::vector<Second> attack(std::uint16_t port, const std::string& path, const std::vector<std::string>& mode_args) {
  char tmpl[] = "/tmp/unbroken-slowhttp-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  std::vector<std::string> args{"/usr/bin/slowhttptest",
                                "-c",
                                std::to_string(kConnections),
                                "-r",
                                "60",
                                "-l",
                                "8",
                                "-p",
                                "5",
                                "-u",
                                "http://127.0.0.1:" + std::to_string(port) + path,
                                "-g",
                                "-o",
                                dir + "/report"};
  args.insert(args.end(), mode_args.begin(), mode_args.end());
  ChildResult run = run_isolated(args, dir, 60s);  // slowhttptest stops itself after -l seconds
  EXPECT_TRUE(run.status != -1 && run.status != 127) << "slowhttptest did not run: " << run.err;
  std::vector<Second> rows;
  std::ifstream csv(dir + "/report.csv");
  std::string line;
  std::getline(csv, line);  // header: Seconds,Closed,Pending,Connected,Service Available
  while (std::getline(csv, line)) {
    Second s;
    int seconds = 0;
    if (std::sscanf(line.c_str(), "%d,%d,%d,%d,%d", &seconds, &s.closed, &s.pending, &s.connected, &s.service) == 5)
      rows.push_back(s);
  }
  std::filesystem::remove_all(dir);
  return rows;
}

class SlowHttp : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = Server::start({{"--header-timeout", "2s", "--body-timeout", "2s", "--send-timeout", "2s"}});
  }
  // The service stayed available by slowhttptest's own probe, and every one of its connections was
  // cut by our `timer` (from the server's metrics: slowhttptest notices a reset only when it next reads).
  void expect_survived(const std::vector<Second>& rows, const char* mode, const char* timer) {
    ASSERT_GE(rows.size(), 4u) << mode << ": no report";
    for (std::size_t i = 0; i < rows.size(); ++i)
      EXPECT_GT(rows[i].service, 0) << mode << ": unavailable, second " << i;
    std::string sample = std::string("unbroken_timeouts_total{timer=\"") + timer + "\"}";
    auto deadline = std::chrono::steady_clock::now() + 10s;
    double cut = 0;
    while ((cut = server_->metric(sample)) < kConnections && std::chrono::steady_clock::now() < deadline)
      ::poll(nullptr, 0, 100);  // the metric has no event to wait on
    EXPECT_GE(cut, kConnections) << mode << ": attack connections not cut by the " << timer << " timer";
    EXPECT_TRUE(server_->alive());
  }
  std::unique_ptr<Server> server_;
};

TEST_F(SlowHttp, SlowlorisIsCutByTheHeaderTimeout) {
  expect_survived(attack(server_->port(), "/diag/bytes/13", {"-H", "-i", "1"}), "slowloris", "header");
}

TEST_F(SlowHttp, SlowBodyIsCutByTheBodyTimeout) {
  // One byte of body every 3 s: no progress for longer than --body-timeout.
  expect_survived(attack(server_->port(), "/diag/echo", {"-B", "-i", "3", "-s", "65536"}), "slow body", "body");
}

TEST_F(SlowHttp, SlowReadIsCutByTheSendTimeout) {
  // A 4 MiB response read 32 bytes every 3 s through a tiny window.
  expect_survived(
      attack(server_->port(), "/diag/bytes/4194304", {"-X", "-w", "64", "-y", "128", "-n", "3", "-z", "32"}),
      "slow read", "send");
}

}  // namespace
}  // namespace unbroken::testing
