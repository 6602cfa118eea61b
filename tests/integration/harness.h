#pragma once
// Runs the real `unbroken serve` binary on port 0 and talks to it over real loopback sockets.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "common/test_certs.h"
#include "common/tls_client.h"

namespace unbroken::testing {

using namespace std::chrono_literals;

// One access-log record, flattened: every value as its JSON text (strings unquoted).
using Record = std::map<std::string, std::string>;

// A record's field, or "" when it has none (the upstream fields are on proxied requests only).
inline std::string field(const Record& r, const char* key) {
  auto it = r.find(key);
  return it == r.end() ? std::string() : it->second;
}

struct ServeOptions {
  std::vector<std::string> args;                              // extra flags for `unbroken serve`
  std::optional<unsigned> rlimit_nofile = std::nullopt;       // lowered in the child before exec
  std::optional<unsigned> rlimit_nofile_hard = std::nullopt;  // the hard limit, when not the same
  std::string cwd = "";                   // the server's working directory (var/ is relative to it); empty: the test's
  std::vector<std::string> env = {};      // "NAME=VALUE" added to the server's environment
  std::vector<std::string> pid_env = {};  // NAMEs set to the server's own pid (LISTEN_PID, WATCHDOG_PID)
  std::vector<int> pass_fds = {};         // passed as descriptors 3, 4, ... (socket activation)
  bool wait_started = true;               // false: return at once (the test waits on something else, or for the exit)
};

class Server {
 public:
  // Starts the server, waits for its "listening on" and "admin on" lines. Fails the test on error.
  static std::unique_ptr<Server> start(ServeOptions opts = {});
  ~Server();

  [[nodiscard]] std::uint16_t port() const { return port_; }
  // Reads the ports from the start-up lines written so far (start() does, until they are there).
  void read_ports();
  // The first --tls-listen port ("tls listening on"), 0 without one.
  [[nodiscard]] std::uint16_t tls_port() const { return tls_port_; }
  [[nodiscard]] std::uint16_t admin_port() const { return admin_port_; }
  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] const std::string& root() const { return root_; }

  // Sends sig and waits for the exit status (or -1 when it did not exit within `within`).
  int stop(int sig = SIGTERM, std::chrono::milliseconds within = 15s);
  // Waits for an exit already under way, sending nothing (a second SIGTERM would cut a drain short).
  int wait_exit(std::chrono::milliseconds within = 15s) { return stop(0, within); }
  [[nodiscard]] bool alive() const;
  [[nodiscard]] int open_fds() const;
  [[nodiscard]] std::uint64_t rss_kib() const;
  // Waits until the open descriptor count is back to `n` or below (connections close asynchronously).
  bool wait_fds(int n, std::chrono::milliseconds within = 5s) const;

  // Access log records so far.
  [[nodiscard]] std::vector<Record> records() const;
  // Waits for a record matching pred (inotify on the log file, with a deadline).
  // Records before index `skip` are not considered (take records().size() before acting).
  std::optional<Record> wait_record(const std::function<bool(const Record&)>& pred,
                                    std::chrono::milliseconds within = 10s, std::size_t skip = 0) const;
  // The value of one metric sample, e.g. `unbroken_disconnects_total{outcome="client_closed",phase="handler"}`.
  // A sample missing from the scrape fails the test and reads as NaN, so that no comparison passes.
  [[nodiscard]] double metric(const std::string& sample) const;
  // For a sample the server exports only once it is non-zero (unbroken_requests_total by status):
  // 0 when absent.
  [[nodiscard]] double metric_or_zero(const std::string& sample) const;
  // The whole /metrics text.
  [[nodiscard]] std::string metrics_text() const;
  [[nodiscard]] std::string stderr_text() const;
  // Waits until stderr holds `needle` (inotify, with a deadline).
  bool wait_stderr(const std::string& needle, std::chrono::milliseconds within = 10s) const;
  // The access log file as written (for --log-format text).
  [[nodiscard]] std::string log_text() const;

 private:
  Server() = default;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  std::uint16_t tls_port_ = 0;
  std::uint16_t admin_port_ = 0;
  std::string dir_;
  std::string root_;
  std::string log_path_;
  std::string stderr_path_;
};

// Base for a suite whose tests share one server (started in SetUpTestSuite with start_shared()).
// Each test sees only the records written after it began, and must leave no descriptor behind.
class SharedServerTest : public ::testing::Test {
 protected:
  static void start_shared(ServeOptions opts = {}) {
    server_ = Server::start(std::move(opts)).release();
    baseline_ = server_->open_fds();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    seen_ = server_->records().size();
    metrics_at_start_ = server_->metrics_text();
  }
  // A metric sample's value when this test began; absent, it fails the test as metric() does.
  [[nodiscard]] double metric_at_start(const std::string& sample) const;
  void TearDown() override { EXPECT_TRUE(server_->wait_fds(baseline_)) << "descriptors leaked"; }
  // The last record written since this test began that matches pred.
  std::optional<Record> record_since_start(const std::function<bool(const Record&)>& pred) const {
    return server_->wait_record(pred, 10s, seen_);
  }

  // Every record written since this test began. A marker request goes last, and its record is
  // awaited: whatever the server logged before it is in the file (the log is written in order).
  std::vector<Record> records_since_start() const;

  static inline Server* server_ = nullptr;
  static inline int baseline_ = 0;
  std::size_t seen_ = 0;
  std::string metrics_at_start_;
};

// A blocking client socket with a receive timeout.
UniqueFd connect_to(std::uint16_t port, std::chrono::milliseconds timeout = 10s);
// The same from a chosen loopback source address (127.0.0.2 is another client to the server).
UniqueFd connect_from(const char* source, std::uint16_t port, std::chrono::milliseconds timeout = 10s);
void send_all(int fd, std::string_view data);
// Closes with RST instead of FIN.
void reset(UniqueFd& fd);

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  bool closed = false;   // the server closed the connection after it
  bool complete = true;  // false when the connection ended before the body did
};
// Reads one response (an interim 1xx is one too) through http::ResponseParser: Content-Length,
// chunked, or until close; none to HEAD. nullopt on EOF/timeout before a whole head; a malformed
// response fails the test.
std::optional<Response> read_response(int fd, bool head_request = false);
// The same for a response already read whole (as after read_until_close).
std::optional<Response> parse_response(std::string_view wire, bool head_request = false);
// Reads until EOF; returns what came, and whether EOF (rather than timeout or reset) ended it.
std::string read_until_close(int fd, bool* eof = nullptr);
// One request on a new connection.
std::optional<Response> get(std::uint16_t port, const std::string& target, const std::string& extra_headers = "");
// read_response over TLS: one response through the same parser, read with SSL_read.
std::optional<Response> read_response(TlsClient& client, bool head_request = false);
// One request on a new TLS connection (verified when `o` has a CA file); nullopt when the handshake
// or the response failed.
std::optional<Response> https_get(std::uint16_t port, const std::string& target, const TlsClientOptions& o);

// Certificates for a TLS test in a temp dir of their own (removed with it): `localhost` (DNS
// localhost, IP 127.0.0.1) and `other` (DNS other.test), each self-signed, so each is its own CA file.
struct TlsTestFiles {
  TlsTestFiles();
  ~TlsTestFiles();
  TlsTestFiles(const TlsTestFiles&) = delete;
  TlsTestFiles& operator=(const TlsTestFiles&) = delete;
  // The serve flags for one TLS listener on port 0 with `certs` (the first the default).
  static std::vector<std::string> serve_args(const std::vector<TestCert>& certs);
  std::string dir;
  CertMaker maker;
  TestCert localhost;
  TestCert other;
};
// The common name of the certificate the server presented on this connection, "" without one.
std::string peer_common_name(const TlsClient& client);

struct ChildResult {
  int status = -1;  // exit status, or -1 when it had to be killed
  std::string out;
  std::string err;
};
// Runs argv in a process group of its own, stdout and stderr to files in dir, HOME and the XDG
// directories pointed into dir so a browser leaves nothing in the real home. Chromium forks a zygote
// and renderers: the whole group is killed at the deadline, and after a normal exit too, in case a
// helper outlived the browser.
ChildResult run_isolated(const std::vector<std::string>& argv, const std::string& dir,
                         std::chrono::milliseconds within);

}  // namespace unbroken::testing
