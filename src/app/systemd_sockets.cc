#include "app/systemd_sockets.h"

#include <sys/socket.h>
#include <systemd/sd-daemon.h>

#include <cstdlib>
#include <cstring>
#include <string_view>

namespace unbroken::app {

bool take_systemd_sockets(SystemdSockets& out, std::string& error) {
  char** names = nullptr;
  // unset_environment = 1: LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES are gone after this call.
  int n = sd_listen_fds_with_names(1, &names);
  if (n < 0) {
    error = std::string("LISTEN_FDS: ") + std::strerror(-n);
    return false;
  }
  bool ok = true;
  for (int i = 0; i < n; ++i) {
    int fd = SD_LISTEN_FDS_START + i;
    // "unknown": what sd_listen_fds_with_names() reports for a socket systemd gave no name.
    std::string_view name = names && names[i] && std::string_view(names[i]) != "unknown" ? names[i] : "";
    // Taken before the check, so that every passed descriptor is owned (and closed) whatever happens.
    UniqueFd owned(fd);
    if (ok && sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, /*listening=*/1, /*port=*/0) <= 0) {
      error = "LISTEN_FDS: descriptor " + std::to_string(fd) + (name.empty() ? "" : " (" + std::string(name) + ")") +
              " is not a listening TCP socket";
      ok = false;
    }
    auto& kind = name == "https" ? out.https : name == "admin" ? out.admin : out.http;
    kind.push_back(std::move(owned));
  }
  if (names) {
    for (int i = 0; i < n; ++i) std::free(names[i]);
    std::free(names);
  }
  return ok;
}

std::vector<int> descriptors(const std::vector<UniqueFd>& fds) {
  std::vector<int> out;
  for (const UniqueFd& fd : fds) out.push_back(fd.get());
  return out;
}

}  // namespace unbroken::app
