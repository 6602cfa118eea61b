// The reverse proxy in front of real application servers under `unbroken chaos`: uWSGI and gunicorn
// (sync workers, targets/flask_app.py) started by the test on ports they pick themselves. Each test
// aims the same traffic at the application server directly (the control, asserted, so that the test
// can fail) and through unbroken. Also a slow client on a big response, a trickled upload, and
// upstreams that answer with a broken head (an in-test TCP server).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <optional>
#include <set>
#include <thread>

#include "integration/chaos_run.h"
#include "integration/child_process.h"
#include "integration/harness.h"

namespace unbroken::testing {
namespace {

namespace fs = std::filesystem;

// The port after `marker` in a server's start-up output, 0 when absent.
std::uint16_t port_after(const std::string& out, const std::string& marker) {
  auto at = out.find(marker);
  return at == std::string::npos ? 0 : static_cast<std::uint16_t>(std::stoi(out.substr(at + marker.size())));
}

// What uWSGI writes when a client left while a worker wrote to it (core/writer.c and the python
// plugin): "OSError: write error" raised into the app, beside "SIGPIPE: writing to a closed
// pipe/socket/fd (probably the client disconnected)" or "uwsgi_response_write_body_do(): Broken pipe".
std::size_t uwsgi_write_errors(std::string_view log) {
  return occurrences(log, "OSError: write error") + occurrences(log, "SIGPIPE: writing to a closed") +
         occurrences(log, "uwsgi_response_write_body_do()");
}

// A record of a client that left: what every chaos departure must be logged as.
bool is_departure(const std::string& outcome) {
  return outcome == "client_closed" || outcome == "client_reset" || outcome == "broken_pipe";
}

// A blocking socket whose receive buffer is set before connect, so that the window it announces is
// small from the start: a client that reads slowly holds back the server behind it.
UniqueFd connect_small_window(std::uint16_t port, int rcvbuf) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  timeval tv{10, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

// Pacing of a deliberately slow client: the load's shape, not a wait for an event.
void pace(std::chrono::milliseconds step) {
  ::poll(nullptr, 0, static_cast<int>(step.count()));
}

class ProxyAppServersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/unbroken-appservers-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::string targets() { return (fs::path(__FILE__).parent_path() / "targets").string(); }

  // uWSGI (Debian uwsgi-core and its python3 plugin) with `processes` sync workers under a master,
  // HTTP on a port it picks; waits for the last worker. --die-on-term: SIGTERM stops it (uWSGI 2.0
  // reloads on SIGTERM otherwise).
  std::unique_ptr<Child> uwsgi(int processes, std::uint16_t& port) {
    auto c = std::make_unique<Child>(
        std::vector<std::string>{"uwsgi", "--plugin", "python3", "--http-socket", "127.0.0.1:0", "--chdir", targets(),
                                 "--module", "flask_app:app", "--master", "--processes", std::to_string(processes),
                                 "--die-on-term", "--need-app"},
        dir_ + "/uwsgi.out");
    std::string out = c->wait_output("spawned uWSGI worker " + std::to_string(processes) + " ");
    port = port_after(out, "bound to TCP address 127.0.0.1:");
    EXPECT_NE(port, 0) << out;
    return c;
  }

  // gunicorn with `workers` sync workers, the app loaded before the fork (--preload) so that a
  // booted worker answers at once; access log in its output; waits for every worker.
  std::unique_ptr<Child> gunicorn(int workers, std::uint16_t& port, const std::string& name = "gunicorn") {
    auto c = std::make_unique<Child>(
        std::vector<std::string>{"gunicorn", "--chdir", targets(), "--bind", "127.0.0.1:0", "--workers",
                                 std::to_string(workers), "--worker-class", "sync", "--preload", "--access-logfile",
                                 "-", "--timeout", "30", "flask_app:app"},
        dir_ + "/" + name + ".out");
    std::string out = c->wait_output("Booting worker with pid", 30s, static_cast<std::size_t>(workers));
    port = port_after(out, "Listening at: http://127.0.0.1:");
    EXPECT_NE(port, 0) << out;
    return c;
  }

  // unbroken in front of an application server on `port`, with its defaults unless `extra` says.
  static std::unique_ptr<Server> in_front_of(std::uint16_t port, std::vector<std::string> extra = {}) {
    extra.insert(extra.begin(), {"--proxy", "/=http://127.0.0.1:" + std::to_string(port)});
    return Server::start({extra});
  }

  std::unique_ptr<ChaosRun> chaos(std::uint16_t port, const std::string& path, const std::string& mix, int seconds,
                                  const std::vector<std::string>& extra) {
    return run_chaos(dir_ + "/chaos-" + std::to_string(++runs_) + ".out",
                     "http://127.0.0.1:" + std::to_string(port) + path, mix, seconds, extra);
  }

  std::string dir_;
  int runs_ = 0;
};

// Aborted and reset downloads and refresh storms on a 4 MiB response (64 KiB pieces: every abort
// lands mid-body), about 300 connections in 3 s.
constexpr const char* kDownloadMix = "abort-response=1,rst-response=1,refresh-storm=1";
constexpr const char* kDownloadKinds[] = {"abort-response", "rst-response", "refresh-storm"};
const std::vector<std::string> kDownloadFlags{"--connections", "12", "--rate", "100"};
constexpr const char* kBigPath = "/big?bytes=4194304";

// The headline. Through unbroken (default finish policy) uWSGI writes every response whole and logs
// no error; each attempt chaos made is one record, a departure recorded as the client's. Aimed at
// uWSGI directly, the same mix fills its log with write errors.
TEST_F(ProxyAppServersTest, AbortedDownloadsLeaveNoWriteErrorInUwsgisLogThroughUnbroken) {
  std::uint16_t app_port = 0;
  auto app = uwsgi(4, app_port);
  ASSERT_NE(app_port, 0);
  auto server = in_front_of(app_port);

  std::size_t log_start = app->output().size();
  auto run = chaos(server->port(), kBigPath, kDownloadMix, 3, kDownloadFlags);
  // Every attempt that reached unbroken is one record: answered, left by design, or still under way
  // when the run ended (chaos then closes it). A departure is recorded once the upstream's response
  // has been read to its end (the finish policy): wait for the last of them.
  std::uint64_t expected = 0;
  for (const char* kind : kDownloadKinds)
    expected += run->reaction(kind, "answered") + run->reaction(kind, "left") + run->reaction(kind, "nothing");
  ASSERT_GT(expected, 200u) << run->json;
  auto from_chaos = [](const Record& r) { return field(r, "ua").rfind("unbroken-chaos/", 0) == 0; };
  std::vector<Record> records;
  auto deadline = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < deadline) {
    records = server->records();
    if (static_cast<std::uint64_t>(std::count_if(records.begin(), records.end(), from_chaos)) >= expected) break;
    server->wait_record([](const Record&) { return true; }, 200ms, records.size());
  }
  for (const char* kind : kDownloadKinds) {
    std::string ua = std::string("unbroken-chaos/") + kind;
    std::uint64_t ok = 0, departed = 0, other = 0;
    std::set<std::string> others;
    for (const auto& r : records) {
      if (field(r, "ua") != ua) continue;
      std::string outcome = field(r, "outcome");
      if (outcome == "ok") {
        ++ok;
      } else if (is_departure(outcome)) {
        ++departed;
      } else {
        ++other;
        others.insert(outcome);
      }
    }
    std::uint64_t answered = run->reaction(kind, "answered");
    std::uint64_t left = run->reaction(kind, "left") + run->reaction(kind, "nothing");
    EXPECT_EQ(ok + departed + other, answered + left) << kind << ": one record per attempt\n" << run->json;
    // A client that leaves after unbroken wrote the last byte into its socket, before chaos read
    // it, left a complete response: ok is right for it, so `left` bounds the departures.
    EXPECT_GE(ok, answered) << kind;
    EXPECT_LE(departed, left) << kind;
    EXPECT_EQ(other, 0u) << kind << ": " << ::testing::PrintToString(others);
    EXPECT_EQ(run->reaction(kind, "reset") + run->reaction(kind, "closed_silently"), 0u) << kind;
  }
  std::string proxied = app->output().substr(log_start);
  EXPECT_EQ(uwsgi_write_errors(proxied), 0u) << proxied.substr(0, 4000);

  // The control: the same mix aimed at uWSGI directly. Its error lines come as the workers write.
  log_start = app->output().size();
  auto direct = chaos(app_port, kBigPath, kDownloadMix, 3, kDownloadFlags);
  std::string log = app->wait_output("OSError: write error", 10s).substr(log_start);
  EXPECT_GT(uwsgi_write_errors(log), 0u) << log.substr(0, 4000);
  std::cout << "uWSGI error lines, 3 s of " << kDownloadMix << ": direct " << uwsgi_write_errors(log)
            << " (at least: counted at the first)"
            << ", through unbroken " << uwsgi_write_errors(proxied) << "\n";
}

// Good clients beside clients that hold connections: a head trickled forever (slowloris), a tiny
// receive window read slowly, a response never read past its head.
constexpr const char* kSlowMix = "good=4,slowloris=2,slow-read=2,stall=2";
const std::vector<std::string> kSlowFlags{"--connections", "10", "--trickle", "100ms", "--good-timeout", "2s"};

// Two sync workers: two slow clients hold both, and the good clients time out. Through unbroken, a
// head reaches the workers only once it is whole, so slowloris never holds one.
TEST_F(ProxyAppServersTest, SlowClientsStarveGunicornsTwoWorkersButNotThroughUnbroken) {
  std::uint16_t app_port = 0;
  auto app = gunicorn(2, app_port);
  ASSERT_NE(app_port, 0);
  auto direct = chaos(app_port, "/hello", kSlowMix, 3, kSlowFlags);
  EXPECT_FALSE(direct->passed()) << direct->json;
  EXPECT_EQ(direct->exit_code, 1);
  EXPECT_GT(direct->good("errors"), 0u);

  auto server = in_front_of(app_port);
  auto proxied = chaos(server->port(), "/hello", kSlowMix, 3, kSlowFlags);
  EXPECT_TRUE(proxied->passed()) << proxied->json;
  EXPECT_EQ(proxied->exit_code, 0);
  EXPECT_GT(proxied->good("requests"), 100u) << proxied->json;
}

// The same mix on an 8 MiB response, more than the sockets between a worker and a client hold:
// directly, the slow readers keep the workers blocked in their writes; through unbroken, each worker
// hands its response to unbroken's buffer at once and is free again. A 3 s good timeout: the
// machine these run on is shared, and an 8 MiB answer under load takes its time.
TEST_F(ProxyAppServersTest, SlowReadersDoNotHoldGunicornsWorkersThroughUnbroken) {
  std::uint16_t app_port = 0;
  auto app = gunicorn(2, app_port);
  ASSERT_NE(app_port, 0);
  const std::vector<std::string> flags{"--connections", "10", "--trickle", "100ms", "--good-timeout", "3s"};
  auto direct = chaos(app_port, "/big?bytes=8388608", kSlowMix, 4, flags);
  EXPECT_FALSE(direct->passed()) << direct->json;

  auto server = in_front_of(app_port);
  auto proxied = chaos(server->port(), "/big?bytes=8388608", kSlowMix, 4, flags);
  EXPECT_TRUE(proxied->passed()) << proxied->json;
  EXPECT_GT(proxied->good("requests"), 10u) << proxied->json;
}

constexpr std::size_t kTenMiB = 10 * 1024 * 1024;

// Response buffering: a client reading about 1 MB/s through a 64 KiB window. gunicorn's access
// line (written once the worker has sent it all) must come within a second, while the client has
// read less than half; without the buffer the worker stays in its writes until the last few MiB
// (about what the sockets hold) are left, seconds later.
TEST_F(ProxyAppServersTest, ASlowClientOnA10MBResponseReleasesTheWorkerWithinASecond) {
  std::uint16_t app_port = 0;
  auto app = gunicorn(1, app_port);
  ASSERT_NE(app_port, 0);
  auto server = in_front_of(app_port);
  UniqueFd fd = connect_small_window(server->port(), 64 * 1024);
  send_all(fd.get(), "GET /big?bytes=10485760 HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n");
  auto sent = std::chrono::steady_clock::now();
  const std::string done = "\"GET /big?bytes=10485760 HTTP/1.1\" 200";
  std::string wire;
  std::optional<std::chrono::steady_clock::duration> logged_after;
  std::size_t read_when_logged = 0;
  char buf[32 * 1024];
  for (;;) {
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n <= 0) break;
    wire.append(buf, static_cast<std::size_t>(n));
    if (logged_after) continue;  // seen: read the rest as fast as it comes
    auto elapsed = std::chrono::steady_clock::now() - sent;
    if (app->output().find(done) != std::string::npos) {
      logged_after = elapsed;
      read_when_logged = wire.size();
    } else if (elapsed < 2s) {
      // 32 KiB every 30 ms, about 1 MB/s; the wait ends early when the access line comes.
      app->wait_output(done, 30ms);
    }
  }
  ASSERT_TRUE(logged_after) << app->output();
  EXPECT_LT(*logged_after, 1s);
  EXPECT_LT(read_when_logged, kTenMiB / 2) << "the client was still reading";
  auto r = parse_response(wire);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->complete);
  EXPECT_EQ(r->body.size(), kTenMiB);
  auto rec = server->wait_record([](const Record& x) { return field(x, "path") == "/big?bytes=10485760"; });
  ASSERT_TRUE(rec);
  EXPECT_EQ(field(*rec, "outcome"), "ok");
}

// A response the upstream sent whole and then closed its connection after (gunicorn's sync workers
// always do), streamed (X-Accel-Buffering: no) to a slow client: reading the upstream pauses for the
// client, the worker's FIN arrives meanwhile, and the bytes before it are still to be read. They
// all reach the client (TcpConnection::report_hangup_after_input); before, the FIN ended the
// response early as upstream_reset in two runs of three.
TEST_F(ProxyAppServersTest, AWholeResponseReachesASlowClientWhenTheUpstreamClosesRightAfterIt) {
  std::uint16_t app_port = 0;
  auto app = gunicorn(1, app_port);
  ASSERT_NE(app_port, 0);
  auto server = in_front_of(app_port);
  UniqueFd fd = connect_small_window(server->port(), 64 * 1024);
  send_all(fd.get(), "GET /big?bytes=10485760&stream=1 HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n");
  std::string wire;
  char buf[64 * 1024];
  for (ssize_t n; (n = ::recv(fd.get(), buf, sizeof buf, 0)) > 0;) {
    wire.append(buf, static_cast<std::size_t>(n));
    pace(20ms);  // about 3 MB/s: slower than the worker writes
  }
  auto r = parse_response(wire);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->complete);
  EXPECT_EQ(r->body.size(), kTenMiB);
  EXPECT_NE(app->output().find("stream=1 HTTP/1.1\" 200 10485760"), std::string::npos) << app->output();
  auto rec =
      server->wait_record([](const Record& x) { return field(x, "path").find("stream=1") != std::string::npos; });
  ASSERT_TRUE(rec);
  EXPECT_EQ(field(*rec, "outcome"), "ok");
  EXPECT_GE(std::stoull(field(*rec, "upstream_bytes_in")), kTenMiB);
}

// Request buffering: unbroken takes the whole body before it picks the upstream, so the single
// sync worker answers a fast request while a 10 MiB upload trickles in over 5 s; a body streamed to
// it as it comes would hold the worker for all 5 s.
TEST_F(ProxyAppServersTest, ATrickledUploadDoesNotOccupyTheSingleWorker) {
  std::uint16_t app_port = 0;
  auto app = gunicorn(1, app_port);
  ASSERT_NE(app_port, 0);
  auto server = in_front_of(app_port, {"--max-body", "16MiB"});
  UniqueFd upload = connect_to(server->port());
  send_all(upload.get(),
           "POST /upload HTTP/1.1\r\nHost: app\r\nContent-Length: " + std::to_string(kTenMiB) + "\r\n\r\n");
  constexpr std::size_t kPieces = 40;  // 256 KiB every 125 ms: 10 MiB in 5 s
  std::string piece(kTenMiB / kPieces, 'u');
  for (std::size_t i = 0; i < kPieces; ++i) {
    send_all(upload.get(), piece);
    pace(125ms);
    if (i != 8) continue;
    // A second into the upload: a fast request on another connection.
    auto started = std::chrono::steady_clock::now();
    UniqueFd fast = connect_to(server->port(), 1500ms);
    send_all(fast.get(), "GET /hello HTTP/1.1\r\nHost: app\r\n\r\n");
    auto r = read_response(fast.get());
    ASSERT_TRUE(r) << "the fast request was not answered while the upload went on";
    EXPECT_EQ(r->status, 200);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
  }
  auto r = read_response(upload.get());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, std::to_string(kTenMiB) + "\n");
}

// A response held in the spool for a client a little slower than the upstream is written whole,
// 40 times over.
TEST_F(ProxyAppServersTest, AHeldResponseIsWrittenWholeToAClientALittleSlowerThanTheUpstream) {
  std::uint16_t app_port = 0;
  auto app = gunicorn(2, app_port);
  ASSERT_NE(app_port, 0);
  auto server = in_front_of(app_port);
  constexpr std::size_t kBody = 8 << 20;
  for (int i = 0; i < 40; ++i) {
    SCOPED_TRACE(i);
    UniqueFd fd = connect_to(server->port(), 2s);
    send_all(fd.get(), "GET /big?bytes=8388608 HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n");
    std::string wire;
    char buf[64 * 1024];
    for (ssize_t n; (n = ::recv(fd.get(), buf, sizeof buf, 0)) > 0;) {
      wire.append(buf, static_cast<std::size_t>(n));
      pace(1ms);
    }
    auto r = parse_response(wire);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->body.size(), kBody) << "stalled: no byte for 2 s";
  }
}

// An upstream that answers every connection with the same bytes, whatever it was asked, and closes:
// the application server no parser should believe.
class CannedUpstream {
 public:
  explicit CannedUpstream(std::string answer)
      : answer_(std::move(answer)), fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_.get(), 16), 0);
    ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  // shutdown() wakes the blocked accept() (EINVAL), and the thread ends.
  ~CannedUpstream() {
    ::shutdown(fd_.get(), SHUT_RDWR);
    thread_.join();
  }
  [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  void serve() {
    for (;;) {
      UniqueFd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!c) return;
      timeval tv{5, 0};
      ::setsockopt(c.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      std::string head;
      char buf[4096];
      while (head.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(c.get(), buf, sizeof buf, 0);
        if (n <= 0) break;
        head.append(buf, static_cast<std::size_t>(n));
      }
      [[maybe_unused]] auto sent = ::send(c.get(), answer_.data(), answer_.size(), MSG_NOSIGNAL);
    }
  }

  std::string answer_;
  UniqueFd fd_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

TEST_F(ProxyAppServersTest, ABrokenUpstreamHeadIs502UpstreamProtocolErrorAndNeverForwarded) {
  struct Case {
    const char* prefix;
    const char* answer;
  };
  const Case cases[] = {
      {"/two-lengths", "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nContent-Length: 7\r\n\r\nsecret!"},
      {"/bad-status", "HTTP/1.1 2OO OK\r\nContent-Length: 6\r\n\r\nsecret"},
      {"/not-http", "secret\r\n\r\n"},
  };
  std::vector<std::unique_ptr<CannedUpstream>> upstreams;
  ServeOptions opts;
  for (const auto& c : cases) {
    upstreams.push_back(std::make_unique<CannedUpstream>(c.answer));
    opts.args.insert(opts.args.end(), {"--proxy", std::string(c.prefix) + "=" + upstreams.back()->url()});
  }
  auto server = Server::start(opts);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.prefix);
    auto r = get(server->port(), std::string(c.prefix) + "/x");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 502);
    EXPECT_EQ(r->body.find("secret"), std::string::npos) << r->body;
    std::string path = std::string(c.prefix) + "/x";
    auto rec = server->wait_record([&](const Record& x) { return field(x, "path") == path; });
    ASSERT_TRUE(rec);
    EXPECT_EQ(field(*rec, "outcome"), "upstream_protocol_error");
    EXPECT_EQ(field(*rec, "status"), "502");
  }
}

}  // namespace
}  // namespace unbroken::testing
