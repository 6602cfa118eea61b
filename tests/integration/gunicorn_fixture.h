#pragma once
// Tests in front of a real application server: targets/flask_app.py under gunicorn's sync workers,
// on a free TCP port or a unix socket in a temporary directory of the test's own.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <filesystem>
#include <memory>
#include <string>

#include "integration/child_process.h"
#include "integration/harness.h"

namespace unbroken::testing {

// A port nobody listens on: bound by us, then released.
inline std::uint16_t free_port() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

class GunicornTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/unbroken-proxy-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // gunicorn with `workers` sync workers on `bind` (127.0.0.1:0 or unix:PATH); waits for it to listen.
  // Sync workers close every connection; `extra` can ask for gthread workers, which keep it alive.
  std::unique_ptr<Child> gunicorn(const std::string& bind, const std::string& name, int workers = 2,
                                  const std::vector<std::string>& extra = {"--worker-class", "sync"}) {
    std::filesystem::path targets = std::filesystem::path(__FILE__).parent_path() / "targets";
    std::vector<std::string> argv{
        "gunicorn",    "--chdir", targets.string(),   "--bind", bind,        "--workers", std::to_string(workers),
        "--log-level", "debug",   "--access-logfile", "-",      "--timeout", "30"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back("flask_app:app");
    auto c = std::make_unique<Child>(argv, dir_ + "/gunicorn-" + name + ".out");
    std::string out = c->wait_output("Booting worker");
    EXPECT_NE(out.find("Listening at: "), std::string::npos) << out;
    return c;
  }
  static std::uint16_t port_of(const Child& c) {
    std::string out = c.output();
    auto at = out.find("Listening at: http://127.0.0.1:");
    if (at == std::string::npos) return 0;
    return static_cast<std::uint16_t>(std::stoi(out.substr(at + 31)));
  }
  static std::string upstream(const Child& c) { return "http://127.0.0.1:" + std::to_string(port_of(c)); }

  std::string dir_;
};

}  // namespace unbroken::testing
