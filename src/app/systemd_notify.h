#pragma once
// serve's side of systemd's notify protocol (Type=notify, sd_notify(3)): READY=1 once every
// listener is open, RELOADING=1 / READY=1 around SIGHUP, STOPPING=1 when a drain begins, and
// WATCHDOG=1 while every event loop is alive. Without NOTIFY_SOCKET each call returns at once and
// no thread is started.

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "net/event_loop.h"

namespace unbroken::app {

class SystemdNotifier {
 public:
  SystemdNotifier();   // reads NOTIFY_SOCKET once
  ~SystemdNotifier();  // stops the watchdog
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  [[nodiscard]] bool enabled() const { return enabled_; }
  // READY=1 with `status` as STATUS= (what `systemctl status` shows); kept for reloaded().
  void ready(std::string status);
  // RELOADING=1 with MONOTONIC_USEC= (systemd 253+ wants it to match the reload to this message;
  // older versions ignore it), then READY=1 again once the reload is done.
  void reloading();
  void reloaded();
  // STOPPING=1; the watchdog stops too (systemd no longer expects pings once the unit is stopping,
  // and loops that finished their drain no longer answer).
  void stopping();

  // When systemd set WATCHDOG_USEC for this process (sd_watchdog_enabled): a thread pings
  // WATCHDOG=1 every half interval, but only when each loop answered the probe posted to it since
  // the last ping, so a stuck loop stops the pings and systemd restarts the service. The loops must
  // outlive stopping() or the destructor, whichever comes first.
  void start_watchdog(std::vector<net::EventLoop*> loops);

 private:
  void watch(std::vector<net::EventLoop*> loops, std::chrono::microseconds interval);
  void stop_watchdog();

  bool enabled_ = false;
  std::string status_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread watchdog_;
};

}  // namespace unbroken::app
