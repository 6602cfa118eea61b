// The notify protocol's messages, read on a real NOTIFY_SOCKET, and the watchdog's health check: it
// pings while every loop answers its probe, stops while one is stuck, and starts again after.

#include "app/systemd_notify.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <future>
#include <thread>

#include "common/notify_socket.h"

namespace unbroken::app {
namespace {

using namespace std::chrono_literals;
using testing::NotifySocket;

// The process environment as systemd sets it for a Type=notify unit; put back after the test.
class SystemdEnv {
 public:
  SystemdEnv(const NotifySocket& notify, const char* watchdog_usec) {
    std::string env = notify.env();
    ::setenv("NOTIFY_SOCKET", env.substr(env.find('=') + 1).c_str(), 1);
    if (watchdog_usec) ::setenv("WATCHDOG_USEC", watchdog_usec, 1);
    ::unsetenv("WATCHDOG_PID");
  }
  ~SystemdEnv() {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
  }
};

// Event loops running on threads of their own, as the server's are.
struct RunningLoops {
  explicit RunningLoops(int n) {
    for (int i = 0; i < n; ++i) loops.push_back(std::move(*net::EventLoop::create()));
    for (auto& l : loops) threads.emplace_back([&l] { l->run(); });
  }
  ~RunningLoops() {
    for (auto& l : loops) l->stop();
    for (auto& t : threads) t.join();
  }
  std::vector<net::EventLoop*> raw() const {
    std::vector<net::EventLoop*> out;
    for (const auto& l : loops) out.push_back(l.get());
    return out;
  }
  std::vector<std::unique_ptr<net::EventLoop>> loops;
  std::vector<std::thread> threads;
};

TEST(SystemdNotifier, WithoutNotifySocketDoesNothing) {
  ::unsetenv("NOTIFY_SOCKET");
  SystemdNotifier n;
  EXPECT_FALSE(n.enabled());
  RunningLoops loops(1);
  n.ready("listening");
  n.start_watchdog(loops.raw());
  n.reloading();
  n.reloaded();
  n.stopping();
}

TEST(SystemdNotifier, Messages) {
  NotifySocket notify;
  ASSERT_TRUE(notify.bound());
  SystemdEnv env(notify, nullptr);
  SystemdNotifier n;
  ASSERT_TRUE(n.enabled());
  n.ready("listening on http://127.0.0.1:8080");
  EXPECT_EQ(notify.next(2s), "READY=1\nSTATUS=listening on http://127.0.0.1:8080");
  n.reloading();
  auto reloading = notify.next(2s);
  ASSERT_TRUE(reloading);
  EXPECT_TRUE(testing::has_line(*reloading, "RELOADING=1")) << *reloading;
  EXPECT_NE(reloading->find("\nMONOTONIC_USEC="), std::string::npos) << *reloading;
  n.reloaded();
  EXPECT_EQ(notify.next(2s), "READY=1\nSTATUS=listening on http://127.0.0.1:8080");
  n.stopping();
  EXPECT_EQ(notify.next(2s), "STOPPING=1\nSTATUS=draining");
}

TEST(SystemdNotifier, WatchdogFollowsLoopHealth) {
  NotifySocket notify;
  SystemdEnv env(notify, "100000");  // a ping every 50 ms
  RunningLoops loops(2);
  SystemdNotifier n;
  n.start_watchdog(loops.raw());
  ASSERT_TRUE(notify.wait_for("WATCHDOG=1", 2s));

  // The second loop is stuck in a task: once the pings in flight are through, none comes.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  loops.loops[1]->post([released] { released.wait(); });
  for (auto until = std::chrono::steady_clock::now() + 2s; std::chrono::steady_clock::now() < until;)
    if (!notify.next(200ms)) break;
  EXPECT_FALSE(notify.wait_for("WATCHDOG=1", 300ms)) << "pinged while a loop was stuck";

  release.set_value();
  EXPECT_TRUE(notify.wait_for("WATCHDOG=1", 2s)) << "no ping after the loop answered again";

  n.stopping();
  EXPECT_TRUE(notify.wait_for("STOPPING=1", 2s));
  EXPECT_FALSE(notify.wait_for("WATCHDOG=1", 200ms)) << "pinged after STOPPING=1";
}

}  // namespace
}  // namespace unbroken::app
