// --min-send-rate through the real server: a reader whose every read is progress (the send timer
// never fires) is cut when its rate over a send timeout stays below the minimum, and recorded with
// timer send_rate; a reader above it is never cut.
//
// slowhttptest's slow-read mode (slowhttp_test.cc) does not get this far on Linux: the kernel wakes
// a writer only once a third of its socket buffer is free, so a client reading a few bytes a second
// gives no progress at all and the send timer cuts it. The reader here is slow only against the
// minimum it is given: at most 256 KiB every 50 ms, about 5 MB/s.

#include <poll.h>
#include <sys/socket.h>

#include "integration/harness.h"

namespace unbroken::testing {
namespace {

// Reads a 100 MB download at about 5 MB/s for at most `within`; false when the server cut it.
bool read_paced(std::uint16_t port, std::chrono::milliseconds within) {
  UniqueFd fd = connect_to(port, 2s);
  send_all(fd.get(), "GET /diag/bytes/104857600 HTTP/1.1\r\nHost: t\r\n\r\n");
  std::vector<char> buf(256 * 1024);
  auto end = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < end) {
    ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), 0);
    if (n <= 0) return false;
    ::poll(nullptr, 0, 50);  // the client's pace, not a wait for the server
  }
  return true;
}

TEST(SendRate, ReaderBelowTheMinimumIsCutWithTimerSendRate) {
  auto server = Server::start({{"--send-timeout", "2s", "--min-send-rate", "16MiB/s"}});
  EXPECT_FALSE(read_paced(server->port(), 8s)) << "a reader below --min-send-rate was not cut";
  auto rec = server->wait_record([](const Record& r) { return r.count("timer") && r.at("timer") == "send_rate"; });
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->at("outcome"), "timeout");
  EXPECT_EQ(rec->at("phase"), "response");
  EXPECT_EQ(rec->at("timeout_ms"), "2000");
  EXPECT_EQ(server->metric("unbroken_timeouts_total{timer=\"send_rate\"}"), 1);
  EXPECT_EQ(server->metric("unbroken_timeouts_total{timer=\"send\"}"), 0) << "every read was progress";
}

TEST(SendRate, ReaderAboveTheMinimumIsNeverCut) {
  for (const char* rate : {"1MiB/s", "0"}) {
    auto server = Server::start({{"--send-timeout", "2s", "--min-send-rate", rate}});
    EXPECT_TRUE(read_paced(server->port(), 4s)) << rate << ": an honest reader was cut";
    EXPECT_EQ(server->metric("unbroken_timeouts_total{timer=\"send_rate\"}"), 0) << rate;
  }
}

}  // namespace
}  // namespace unbroken::testing
