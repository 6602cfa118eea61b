// Request-body back-pressure through the real server: a 100 MB upload into POST /diag/slow-sink, a
// consumer that takes 1 MiB every 10 ms (about 100 MiB/s, slower than loopback) and pauses the body
// while it holds a window. The server stops reading while paused, so its peak memory grows by a few
// MiB, not by the upload, and every byte arrives in order (the sink's count and hash).
//
// Without pause_body() the sink holds everything the client sent faster than it takes it: checked
// by hand with the pause removed, the peak grew by most of the upload.

#include <fstream>
#include <thread>

#include "integration/harness.h"

namespace unbroken::testing {
namespace {

constexpr std::uint64_t kUpload = 100ull * 1024 * 1024;

std::uint64_t vm_hwm_kib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6));
  return 0;
}

// The body the client sends: a repeating 64 KiB block whose bytes depend on their offset.
const std::string& block() {
  static const std::string b = [] {
    std::string s(64 * 1024, '\0');
    for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>((i * 7 + i / 251) & 0xff);
    return s;
  }();
  return b;
}

std::uint64_t fnv1a_of_upload() {
  std::uint64_t h = 14695981039346656037ull;
  for (std::uint64_t sent = 0; sent < kUpload; sent += block().size())
    for (char c : block()) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return h;
}

TEST(BodyBackpressure, SlowConsumerKeepsServerMemoryBoundedAndGetsEveryByte) {
  auto server = Server::start({{"--max-body", "200MiB"}});
  // One small request first, so the loop's buffers and pools exist before the baseline is taken.
  ASSERT_TRUE(get(server->port(), "/diag/status/200"));
  std::uint64_t hwm_before = vm_hwm_kib(server->pid());
  ASSERT_GT(hwm_before, 0u);

  UniqueFd fd = connect_to(server->port(), 60s);
  std::thread client([&] {
    send_all(fd.get(), "POST /diag/slow-sink?delay_ms=10 HTTP/1.1\r\nHost: t\r\nContent-Length: " +
                           std::to_string(kUpload) + "\r\n\r\n");
    for (std::uint64_t sent = 0; sent < kUpload; sent += block().size()) send_all(fd.get(), block());
  });
  auto resp = read_response(fd.get());
  client.join();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, "bytes=" + std::to_string(kUpload) + " fnv1a=" + std::to_string(fnv1a_of_upload()) + "\n");

  std::uint64_t grown_kib = vm_hwm_kib(server->pid()) - hwm_before;
  EXPECT_LT(grown_kib, 16u * 1024) << "peak RSS grew by " << grown_kib << " KiB during a 100 MB upload";
  auto rec = server->wait_record([](const Record& r) { return r.at("path").rfind("/diag/slow-sink", 0) == 0; });
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->at("outcome"), "ok");
  EXPECT_GE(std::stoull(rec->at("bytes_in")), kUpload);
}

}  // namespace
}  // namespace unbroken::testing
