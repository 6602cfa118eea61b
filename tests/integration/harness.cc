#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <simdjson.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/collect_body.h"
#include "http/response_parser.h"

namespace unbroken::testing {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::uint16_t port_after(const std::string& text, const std::string& marker) {
  auto at = text.find(marker);
  if (at == std::string::npos) return 0;
  auto colon = text.find(':', at + marker.size());
  if (colon == std::string::npos) return 0;
  return static_cast<std::uint16_t>(std::atoi(text.c_str() + colon + 1));
}

// Waits until `path` changes (or the deadline); inotify, not a sleep.
void wait_for_change(int inotify_fd, std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return;
  pollfd p{inotify_fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 100))) > 0) {
    char buf[4096];
    [[maybe_unused]] auto n = ::read(inotify_fd, buf, sizeof buf);
  }
}

// In the child before exec: fds[i] becomes descriptor 3 + i, inherited. Each goes out of the way
// first, so that one already at 3 + j is not overwritten before it is moved.
void pass_descriptors(const std::vector<int>& fds) {
  std::vector<int> high;
  for (int fd : fds) high.push_back(::fcntl(fd, F_DUPFD, 100));
  for (std::size_t i = 0; i < high.size(); ++i) {
    ::dup2(high[i], 3 + static_cast<int>(i));  // dup2 clears FD_CLOEXEC on the copy
    ::close(high[i]);
  }
}

}  // namespace

std::unique_ptr<Server> Server::start(ServeOptions opts) {
  std::unique_ptr<Server> s(new Server());
  char tmpl[] = "/tmp/unbroken-test-XXXXXX";
  s->dir_ = ::mkdtemp(tmpl);
  s->root_ = s->dir_ + "/root";
  ::mkdir(s->root_.c_str(), 0755);
  std::ofstream(s->root_ + "/hello.txt") << "hello, world\n";
  s->log_path_ = s->dir_ + "/access.log";
  s->stderr_path_ = s->dir_ + "/stderr.log";
  std::ofstream(s->log_path_).close();

  std::vector<std::string> args{
      UNBROKEN_BINARY, "serve",  "--listen",   "127.0.0.1:0",     "--admin",
      "127.0.0.1:0",   "--log",  s->log_path_, "--threads",       "2",
      "--root",        s->root_, "--diag",     "--session-store", "sqlite:" + s->dir_ + "/sessions.db"};
  args.insert(args.end(), opts.args.begin(), opts.args.end());
  pid_t pid = ::fork();
  if (pid == 0) {
    if (!opts.cwd.empty() && ::chdir(opts.cwd.c_str()) != 0) ::_exit(126);
    int err = ::open(s->stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(err, 2);
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(null, 1);
    pass_descriptors(opts.pass_fds);
    for (auto& e : opts.env) ::putenv(e.data());
    for (const auto& name : opts.pid_env) ::setenv(name.c_str(), std::to_string(::getpid()).c_str(), 1);
    if (opts.rlimit_nofile) {
      rlimit rl{*opts.rlimit_nofile, opts.rlimit_nofile_hard.value_or(*opts.rlimit_nofile)};
      ::setrlimit(RLIMIT_NOFILE, &rl);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  s->pid_ = pid;
  if (!opts.wait_started) return s;
  int ino = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  ::inotify_add_watch(ino, s->stderr_path_.c_str(), IN_MODIFY);
  auto deadline = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < deadline) {
    s->read_ports();
    if (s->port_ != 0 && s->admin_port_ != 0) break;
    if (!s->alive()) break;
    wait_for_change(ino, deadline);
  }
  ::close(ino);
  EXPECT_NE(s->port_, 0) << "server did not start: " << s->stderr_text();
  return s;
}

void Server::read_ports() {
  std::string text = read_file(stderr_path_);
  port_ = port_after(text, "listening on http://");
  tls_port_ = port_after(text, "tls listening on https://");
  admin_port_ = port_after(text, "admin on http://");
}

Server::~Server() {
  if (alive()) stop(SIGKILL, 5s);
  std::string cmd = "rm -rf '" + dir_ + "'";
  [[maybe_unused]] int r = std::system(cmd.c_str());
}

bool Server::alive() const {
  if (pid_ <= 0) return false;
  int status = 0;
  return ::waitpid(pid_, &status, WNOHANG) == 0;
}

int Server::stop(int sig, std::chrono::milliseconds within) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, sig);
  auto deadline = std::chrono::steady_clock::now() + within;
  // waitpid has no timeout: wait on a pidfd instead.
  int pfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      if (pfd >= 0) ::close(pfd);
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    pollfd p{pfd, POLLIN, 0};
    ::poll(&p, 1, 100);
  }
  if (pfd >= 0) ::close(pfd);
  return -1;
}

int Server::open_fds() const {
  std::string dir = "/proc/" + std::to_string(pid_) + "/fd";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return -1;
  int n = 0;
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n;
}

std::uint64_t Server::rss_kib() const {
  std::ifstream f("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  return 0;
}

bool Server::wait_fds(int n, std::chrono::milliseconds within) const {
  auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (open_fds() <= n) return true;
    std::this_thread::sleep_for(10ms);  // polling /proc: there is no event for "descriptor closed"
  }
  return open_fds() <= n;
}

std::vector<Record> Server::records() const {
  std::vector<Record> out;
  std::string text = read_file(log_path_);
  // The writer may be in the middle of a line: only complete lines count.
  text.erase(text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1);
  std::istringstream in(text);
  std::string line;
  simdjson::dom::parser parser;
  while (std::getline(in, line)) {
    simdjson::dom::element doc;
    if (parser.parse(line).get(doc) != simdjson::SUCCESS) {
      ADD_FAILURE() << "access log line is not JSON: " << line;
      continue;
    }
    Record r;
    for (auto [key, value] : doc.get_object()) {
      std::string_view sv;
      if (value.get_string().get(sv) == simdjson::SUCCESS) {
        r[std::string(key)] = std::string(sv);
      } else {
        r[std::string(key)] = simdjson::minify(value);
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

namespace {

// Checks `done` each time `path` changes, until it holds or the deadline passes.
bool watch_file(const std::string& path, std::chrono::milliseconds within, const std::function<bool()>& done) {
  int ino = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  ::inotify_add_watch(ino, path.c_str(), IN_MODIFY);
  auto deadline = std::chrono::steady_clock::now() + within;
  bool ok = false;
  while (!(ok = done()) && std::chrono::steady_clock::now() < deadline) wait_for_change(ino, deadline);
  ::close(ino);
  return ok;
}

}  // namespace

std::optional<Record> Server::wait_record(const std::function<bool(const Record&)>& pred,
                                          std::chrono::milliseconds within, std::size_t skip) const {
  std::optional<Record> found;
  watch_file(log_path_, within, [&] {
    auto all = records();
    for (std::size_t i = skip; i < all.size(); ++i)
      if (pred(all[i])) found = all[i];
    return found.has_value();
  });
  return found;
}

bool Server::wait_stderr(const std::string& needle, std::chrono::milliseconds within) const {
  return watch_file(stderr_path_, within, [&] { return stderr_text().find(needle) != std::string::npos; });
}

namespace {

std::optional<double> sample_value(const std::string& text, const std::string& sample) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(sample + " ", 0) == 0) return std::stod(line.substr(sample.size() + 1));
  return std::nullopt;
}

// A missing sample used to read as -1, which passed any "not more than" or "at least its earlier
// value" assertion; now it is a failure, and NaN makes every comparison with it false.
double present_sample(const std::string& text, const std::string& sample) {
  auto v = sample_value(text, sample);
  if (!v) {
    ADD_FAILURE() << "metric sample missing from the scrape: " << sample;
    return std::nan("");
  }
  return *v;
}

}  // namespace

std::string Server::metrics_text() const {
  auto r = get(admin_port_, "/metrics");
  return r ? r->body : std::string();
}

double Server::metric(const std::string& sample) const {
  return present_sample(metrics_text(), sample);
}

double Server::metric_or_zero(const std::string& sample) const {
  return sample_value(metrics_text(), sample).value_or(0);
}

std::string Server::stderr_text() const {
  return read_file(stderr_path_);
}
std::string Server::log_text() const {
  return read_file(log_path_);
}

// Bytes read past one response (pipelined responses), by descriptor.
std::map<int, std::string>& leftovers() {
  thread_local std::map<int, std::string> map;
  return map;
}

UniqueFd connect_from(const char* source, std::uint16_t port, std::chrono::milliseconds timeout) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  leftovers().erase(fd.get());  // a new socket may reuse the number of a closed one
  timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (source != nullptr) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    ::inet_pton(AF_INET, source, &local.sin_addr);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) return UniqueFd();
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return UniqueFd();
  return fd;
}

UniqueFd connect_to(std::uint16_t port, std::chrono::milliseconds timeout) {
  return connect_from(nullptr, port, timeout);
}

void send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

void reset(UniqueFd& fd) {
  linger lg{1, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  fd.reset();
}

namespace {

// Reads more bytes into buf; false on EOF, error or timeout.
bool fill(int fd, std::string& buf, bool* eof = nullptr) {
  char tmp[65536];
  ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
  if (n > 0) {
    buf.append(tmp, static_cast<std::size_t>(n));
    return true;
  }
  if (eof) *eof = n == 0;
  return false;
}

}  // namespace

namespace {

// The harness reads what our own server sends: no limit worth hitting, the parser's checks all on.
constexpr http::ParserLimits kResponseLimits{1 << 20, 1000, UINT64_MAX};

Response to_response(const http::ParsedResponse& parsed) {
  Response r;
  r.status = parsed.status;
  for (auto [k, v] : parsed.headers) {
    std::string name(k);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers[name] = std::string(v);  // the last of a name, as before
  }
  r.closed = r.headers["connection"] == "close";
  return r;
}

// Parses one response (an interim 1xx counts as one) from `buf`, asking `more` for bytes while it
// needs them; what follows the response stays in buf. When `more` fails (EOF, timeout, reset) the
// response ends there: complete if its body was delimited by the close.
std::optional<Response> parse_one(std::string& buf, bool head_request, const std::function<bool(std::string&)>& more) {
  http::ResponseParser parser(kResponseLimits);
  parser.expect_response_to(head_request ? "HEAD" : "GET");
  CollectBody sink;
  std::size_t used = 0;
  for (;;) {
    auto r = parser.feed(std::string_view(buf).substr(used), &sink);
    used += r.consumed;
    using Status = http::ResponseParser::Status;
    if (r.status == Status::kHead) continue;
    if (r.status == Status::kInterim || r.status == Status::kMessage || r.status == Status::kUpgrade) break;
    if (r.status == Status::kError) {
      ADD_FAILURE() << "malformed response: " << parser.error_reason() << "\n" << buf;
      buf.clear();
      return std::nullopt;
    }
    buf.erase(0, used);
    used = 0;
    if (more(buf)) continue;
    if (parser.finish() == Status::kMessage) break;
    if (!parser.head_complete()) return std::nullopt;  // nothing, or a head cut short
    Response out = to_response(parser.response());
    out.body = std::move(sink.body);
    out.complete = false;  // returned as far as it came
    return out;
  }
  buf.erase(0, used);
  Response out = to_response(parser.response());
  out.body = std::move(sink.body);
  return out;
}

}  // namespace

std::optional<Response> read_response(int fd, bool head_request) {
  std::string buf = std::move(leftovers()[fd]);
  leftovers().erase(fd);
  auto r = parse_one(buf, head_request, [fd](std::string& b) { return fill(fd, b); });
  if (!buf.empty()) leftovers()[fd] = std::move(buf);
  return r;
}

std::optional<Response> read_response(TlsClient& client, bool head_request) {
  std::string buf = std::move(leftovers()[client.fd()]);
  leftovers().erase(client.fd());
  auto r = parse_one(buf, head_request, [&client](std::string& b) {
    std::string more = client.read_some();
    b += more;
    return !more.empty();
  });
  if (!buf.empty()) leftovers()[client.fd()] = std::move(buf);
  return r;
}

std::optional<Response> https_get(std::uint16_t port, const std::string& target, const TlsClientOptions& o) {
  TlsClient client(port, o);
  if (!client.connected()) return std::nullopt;
  leftovers().erase(client.fd());  // a new socket may reuse the number of a closed one
  if (!client.write("GET " + target + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")) return std::nullopt;
  return read_response(client);
}

std::optional<Response> parse_response(std::string_view wire, bool head_request) {
  std::string buf(wire);
  return parse_one(buf, head_request, [](std::string&) { return false; });
}

std::string read_until_close(int fd, bool* eof) {
  std::string out;
  bool e = false;
  while (fill(fd, out, &e)) {
  }
  if (eof) *eof = e;
  return out;
}

std::optional<Response> get(std::uint16_t port, const std::string& target, const std::string& extra_headers) {
  UniqueFd fd = connect_to(port);
  if (!fd) return std::nullopt;
  send_all(fd.get(), "GET " + target + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" + extra_headers + "\r\n");
  return read_response(fd.get());
}

TlsTestFiles::TlsTestFiles() {
  char tmpl[] = "/tmp/unbroken-tls-XXXXXX";
  dir = ::mkdtemp(tmpl);
  localhost = maker.make(dir, "localhost", {"localhost", "127.0.0.1"});
  other = maker.make(dir, "other", {"other.test"});
}

TlsTestFiles::~TlsTestFiles() {
  std::string cmd = "rm -rf '" + dir + "'";
  [[maybe_unused]] int r = std::system(cmd.c_str());
}

std::vector<std::string> TlsTestFiles::serve_args(const std::vector<TestCert>& certs) {
  std::vector<std::string> args{"--tls-listen", "127.0.0.1:0"};
  for (const TestCert& c : certs) args.insert(args.end(), {"--tls-cert", c.cert, "--tls-key", c.key});
  return args;
}

std::string peer_common_name(const TlsClient& client) {
  X509* cert = SSL_get1_peer_certificate(client.ssl());
  if (cert == nullptr) return "";
  char cn[256] = "";
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  X509_free(cert);
  return cn;
}

double SharedServerTest::metric_at_start(const std::string& sample) const {
  return present_sample(metrics_at_start_, sample);
}

std::vector<Record> SharedServerTest::records_since_start() const {
  static int markers = 0;
  std::string marker = "/diag/status/204?marker=" + std::to_string(++markers);
  get(server_->port(), marker);
  server_->wait_record([&](const Record& r) { return r.at("path") == marker; }, 10s, seen_);
  std::vector<Record> out;
  auto all = server_->records();
  for (std::size_t i = seen_; i < all.size(); ++i)
    if (all[i].at("path") != marker) out.push_back(all[i]);
  return out;
}

ChildResult run_isolated(const std::vector<std::string>& argv, const std::string& dir,
                         std::chrono::milliseconds within) {
  std::string out_path = dir + "/stdout", err_path = dir + "/stderr";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::setenv("HOME", dir.c_str(), 1);
    ::setenv("XDG_CONFIG_HOME", (dir + "/config").c_str(), 1);
    ::setenv("XDG_CACHE_HOME", (dir + "/cache").c_str(), 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ChildResult r;
  if (pid < 0) return r;
  ::setpgid(pid, pid);  // also from the parent: no window where a kill of the group misses the child
  int pfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  auto deadline = std::chrono::steady_clock::now() + within;
  for (;;) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    pollfd p{pfd, POLLIN, 0};
    ::poll(&p, 1, 100);
  }
  ::kill(-pid, SIGKILL);
  if (pfd >= 0) ::close(pfd);
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  return r;
}

// Headless Chromium on url with a fresh profile, virtual time so that 8 s of page time (four polls
// 2 s apart) pass in well under a second of real time.

}  // namespace unbroken::testing
