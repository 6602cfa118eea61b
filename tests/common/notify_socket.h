#pragma once
// systemd's side of sd_notify(3), for tests: a datagram socket the process under test is pointed at
// with NOTIFY_SOCKET, read with a deadline (poll), never with sleeps.

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/unique_fd.h"

namespace unbroken::testing {

// True when `message` has `line` as one of its lines ("READY=1" in "READY=1\nSTATUS=...").
inline bool has_line(std::string_view message, std::string_view line) {
  for (std::size_t at = 0; at <= message.size();) {
    std::size_t end = message.find('\n', at);
    if (end == std::string_view::npos) end = message.size();
    if (message.substr(at, end - at) == line) return true;
    at = end + 1;
  }
  return false;
}

class NotifySocket {
 public:
  // abstract: in Linux's abstract namespace, "@name" in NOTIFY_SOCKET (no file); otherwise a file in
  // a temp dir of its own.
  explicit NotifySocket(bool abstract = false) {
    char tmpl[] = "/tmp/unbroken-notify-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    address_ = abstract ? "@" + dir_.substr(5) : dir_ + "/notify.sock";
    std::memcpy(sun.sun_path, address_.data(), address_.size());
    if (abstract) sun.sun_path[0] = '\0';
    fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size());
    bound_ = ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&sun), len) == 0;
  }
  ~NotifySocket() { std::filesystem::remove_all(dir_); }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  [[nodiscard]] bool bound() const { return bound_; }
  // NOTIFY_SOCKET=..., for the environment of the process under test.
  [[nodiscard]] std::string env() const { return "NOTIFY_SOCKET=" + address_; }

  // The next message, or nullopt when none came within `within`.
  std::optional<std::string> next(std::chrono::milliseconds within) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(within.count())) <= 0) return std::nullopt;
    char buf[4096];
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
  }
  // Reads messages until one has `line`; those read before it are appended to *before.
  std::optional<std::string> wait_for(std::string_view line, std::chrono::milliseconds within,
                                      std::vector<std::string>* before = nullptr) {
    auto deadline = std::chrono::steady_clock::now() + within;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      std::optional<std::string> m = next(left);
      if (!m) return std::nullopt;
      if (has_line(*m, line)) return m;
      if (before) before->push_back(std::move(*m));
    }
  }

 private:
  std::string dir_;
  std::string address_;
  UniqueFd fd_;
  bool bound_ = false;
};

}  // namespace unbroken::testing
