#pragma once
// Socket activation (sd_listen_fds(3)): the listening sockets systemd passed to serve, by what they
// are for. LISTEN_FDNAMES (FileDescriptorName= in the .socket unit) says which: a socket named
// "https" is a TLS listener, one named "admin" the admin listener, any other (named "http", or not
// named at all) a plain HTTP listener. Sockets of a kind replace the flag for that kind (--listen,
// --tls-listen, --admin), which then binds nothing; kinds systemd passed none of bind as usual.

#include <string>
#include <vector>

#include "base/unique_fd.h"

namespace unbroken::app {

struct SystemdSockets {
  std::vector<UniqueFd> http;
  std::vector<UniqueFd> https;
  std::vector<UniqueFd> admin;
};

// Start-up only. Takes the sockets in LISTEN_FDS when LISTEN_PID is this process, and unsets the
// LISTEN_* variables (a child must not take them for its own). None passed: `out` stays empty. False
// with `error` set (one line) when a descriptor is not a listening TCP socket or LISTEN_FDS is bad.
[[nodiscard]] bool take_systemd_sockets(SystemdSockets& out, std::string& error);

// The descriptors, for ServerOptions::adopt (the server keeps duplicates; these may close after).
[[nodiscard]] std::vector<int> descriptors(const std::vector<UniqueFd>& fds);

}  // namespace unbroken::app
