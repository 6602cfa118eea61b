#pragma once
// A real redis-server for tests: a child process on a free loopback port, no persistence.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

namespace unbroken::testing_support {

using namespace std::chrono_literals;

inline bool redis_available() {
  return ::access("/usr/bin/redis-server", X_OK) == 0;
}

// A port nobody listens on right now (bind to 0, read it, close): redis cannot bind port 0 itself.
inline int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// A redis-server child process: no persistence, loopback only.
class RedisServer {
 public:
  explicit RedisServer(int port) : port_(port) { start(); }
  ~RedisServer() { stop(); }
  void start() {
    pid_ = ::fork();
    if (pid_ == 0) {
      int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 1);
      ::dup2(null, 2);
      std::string port = std::to_string(port_);
      ::execl("/usr/bin/redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
              "--appendonly", "no", "--loglevel", "warning", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    // Ready when it answers PING (a deadline; redis has no readiness signal to wait on).
    for (int i = 0; i < 200; ++i) {
      timeval tv{0, 200'000};
      redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
      bool up = c != nullptr && c->err == 0;
      if (up) {
        auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
        up = r != nullptr && r->type == REDIS_REPLY_STATUS;
        if (r) freeReplyObject(r);
      }
      if (c) redisFree(c);
      if (up) return;
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "redis-server did not start on port " << port_;
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  [[nodiscard]] std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

 private:
  int port_;
  pid_t pid_ = -1;
};

}  // namespace unbroken::testing_support
