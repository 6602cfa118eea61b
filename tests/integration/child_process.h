#pragma once
// A child process for integration tests (application servers, chaos runs), its stdout and stderr in
// one file that a test waits on with inotify and a deadline, never with sleeps.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace unbroken::testing {

using namespace std::chrono_literals;

inline std::size_t occurrences(std::string_view text, std::string_view needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string_view::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A child process with stdout and stderr in files.
class Child {
 public:
  Child(std::vector<std::string> args, const std::string& out_path) : out_(out_path) {
    std::ofstream(out_path).close();
    pid_ = ::fork();
    if (pid_ == 0) {
      int out = ::open(out_path.c_str(), O_WRONLY | O_TRUNC);
      ::dup2(out, 1);
      ::dup2(out, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
  }
  // SIGTERM first: a process with children of its own (nginx's master) takes them down with it,
  // where SIGKILL would leave them running.
  ~Child() {
    if (pid_ <= 0 || reaped_) return;
    ::kill(pid_, SIGTERM);
    if (wait(5s) == -1 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  // The exit code, waiting at most `within` (then -1).
  int wait(std::chrono::milliseconds within) {
    auto deadline = std::chrono::steady_clock::now() + within;
    int status = 0;
    // waitpid has no timeout: a SIGCHLD-free poll, each step bounded by the child's own deadline.
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) return -1;
      ::usleep(20'000);
    }
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  // Waits (inotify) until the output contains `marker` (`times` times); returns the output.
  std::string wait_output(const std::string& marker, std::chrono::milliseconds within = 30s, std::size_t times = 1) {
    int ino = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    ::inotify_add_watch(ino, out_.c_str(), IN_MODIFY);
    auto deadline = std::chrono::steady_clock::now() + within;
    std::string text = slurp(out_);
    while (occurrences(text, marker) < times && std::chrono::steady_clock::now() < deadline) {
      pollfd p{ino, POLLIN, 0};
      ::poll(&p, 1, 100);
      char buf[4096];
      while (::read(ino, buf, sizeof buf) > 0) {
      }
      text = slurp(out_);
    }
    ::close(ino);
    return text;
  }
  [[nodiscard]] std::string output() const { return slurp(out_); }

 private:
  std::string out_;
  pid_t pid_ = -1;
  bool reaped_ = false;
};

}  // namespace unbroken::testing
