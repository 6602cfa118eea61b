// A steady keep-alive request performs no heap allocation on the loop thread, with every request
// logged in the full JSON record, over plain TCP and over TLS. malloc is replaced by a counting
// one (operator new, OpenSSL and the C library all come through it); the loop thread opts in to
// counting from inside the first handler it runs.

#include <arpa/inet.h>
#include <execinfo.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <new>
#include <string>

#include "../common/test_certs.h"
#include "../common/tls_client.h"
#include "app/static_route.h"
#include "http/response_parser.h"
#include "http/server.h"
#include "net/tls_alloc.h"
#include "observe/access_log.h"
#include "observe/upstream_metrics.h"

namespace {
std::atomic<std::uint64_t> g_allocations{0};
std::atomic<bool> g_measuring{false};
// Plain data: it is read inside malloc, also while a thread starts or exits.
thread_local bool t_counting = false;
}  // namespace

// A place for a debugger's breakpoint: `break counted_allocation` shows who allocates.
extern "C" [[gnu::noinline]] void counted_allocation() {
  asm volatile("");
}

// The first counted allocation's call stack, printed when the test fails.
void* g_first_stack[32];
std::atomic<int> g_first_depth{0};

namespace {
[[maybe_unused]] void count() {
  if (!t_counting) return;
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (!g_measuring.load(std::memory_order_relaxed)) return;
  counted_allocation();
  if (g_first_depth.load() == 0) {
    t_counting = false;  // backtrace() itself may allocate
    g_first_depth = ::backtrace(g_first_stack, 32);
    t_counting = true;
  }
}
}  // namespace

// malloc itself is counted, whoever calls it: operator new, OpenSSL (through the allocator unbroken
// installs for it, net/tls_alloc.h), the C library. glibc's own entry points do the work. A
// sanitizer has its own malloc, which this would bypass: there nothing is counted, and the tests
// that need the count are skipped.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kCounting = false;
#else
constexpr bool kCounting = true;
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);
void* malloc(std::size_t n) {
  count();
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t size) {
  count();
  return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t n) {
  count();
  return __libc_realloc(p, n);
}
void* aligned_alloc(std::size_t align, std::size_t n) {
  count();
  return __libc_memalign(align, n);
}
int posix_memalign(void** out, std::size_t align, std::size_t n) {
  count();
  *out = __libc_memalign(align, n);
  return *out ? 0 : ENOMEM;
}
void free(void* p) {
  __libc_free(p);
}
}
#endif

namespace {
// Before any test makes a TLS context, as the unbroken binary does first thing in main().
const bool g_tls_allocator = unbroken::net::install_tls_allocator();
}  // namespace

namespace unbroken::http {
namespace {

class Client {
 public:
  // Over TLS when `tls`: OpenSSL's client, on this (uncounted) thread.
  Client(std::uint16_t port, bool tls) {
    if (tls) {
      tls_ = std::make_unique<testing::TlsClient>(port);
      connected_ = tls_->connected();
      return;
    }
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  [[nodiscard]] bool connected() const { return connected_; }

  // Sends one request and reads its whole response; false on any failure.
  bool round_trip(const std::string& request, int& status) {
    if (tls_ ? !tls_->write(request)
             : ::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size()))
      return false;
    for (;;) {
      auto r = parser_.feed(buf_, nullptr);
      buf_.erase(0, r.consumed);
      if (r.status == ResponseParser::Status::kMessage) {
        status = parser_.response().status;
        return true;
      }
      if (r.status == ResponseParser::Status::kError || r.status == ResponseParser::Status::kUpgrade) return false;
      if (r.status != ResponseParser::Status::kNeedMore) continue;
      if (tls_) {
        std::string more = tls_->read_some(4096);
        if (more.empty()) return false;
        buf_ += more;
        continue;
      }
      char chunk[4096];
      ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return false;
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  std::unique_ptr<testing::TlsClient> tls_;
  bool connected_ = false;
  std::string buf_;
  ResponseParser parser_{ParserLimits{}};
};

class SteadyAllocation : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("unbroken-alloc-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    log_ = std::make_unique<observe::AccessLog>((dir_ / "access.log").string());
    // A handler that answers at once, and one that allocates: the control that shows the counter counts.
    router_.add("GET", "/hello/{name}", [](const ExchangePtr& ex) {
      t_counting = true;
      ex->respond(200, "hello, world\n");
    });
    // A streamed response with a header longer than a small-string buffer, as /diag/bytes sends.
    router_.add("GET", "/typed", [](const ExchangePtr& ex) {
      t_counting = true;
      ex->add_header("Content-Type", "application/octet-stream");
      ex->start(200, 13);
      if (ex->write("abcdefghijklm")) ex->finish();
    });
    // Files: a small one is served from the loop's cache (revalidated hourly here, so that no
    // second boundary inside the measured window makes it read the file again).
    std::filesystem::create_directories(dir_ / "www");
    std::ofstream(dir_ / "www" / "13.txt") << "abcdefghijklm";
    auto files = StaticFiles::open((dir_ / "www").string());
    ASSERT_TRUE(files.ok());
    app::mount_static_files(router_, std::make_shared<const StaticFiles>(std::move(*files)), std::chrono::hours(1));
    router_.add("GET", "/allocating", [](const ExchangePtr& ex) {
      t_counting = true;
      auto owned = std::make_unique<std::string>(100, 'x');
      ex->respond(200, std::string_view(*owned).substr(0, 13));
    });
    ServerOptions opts;
    opts.listen = {*net::SocketAddress::parse("127.0.0.1:0")};
    opts.tls_listen = {*net::SocketAddress::parse("127.0.0.1:0")};
    testing::TestCert cert = certs_.make(dir_.string(), "localhost", {"localhost"});
    net::TlsSetupError error;
    opts.tls = net::TlsServerContext::create({.certs = {{cert.cert, cert.key}}}, error);
    ASSERT_TRUE(opts.tls) << error.message;
    opts.threads = 1;
    server_ = std::make_unique<Server>(opts, router_, [this](const RequestRecord& r) { log_->write(r); });
    ASSERT_TRUE(server_->start().ok());
  }
  void TearDown() override {
    server_->drain();
    server_->wait();
    server_.reset();
    log_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Allocations on the loop thread while `count` requests are answered on one keep-alive
  // connection, after `warmup` requests that let buffers and pools reach their working size.
  std::uint64_t allocations_for(const std::string& target, int warmup, int count, bool tls = false) {
    Client c(tls ? server_->tls_addresses()[0].port() : server_->addresses()[0].port(), tls);
    EXPECT_TRUE(c.connected());
    // Headers as a browser sends them: longer than any small-string buffer.
    std::string req = "GET " + target +
                      " HTTP/1.1\r\nHost: localhost\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) "
                      "Gecko/20100101 Firefox/128.0\r\nAccept: text/html,application/xhtml+xml\r\n"
                      "Accept-Language: en-GB,en;q=0.5\r\nReferer: http://localhost/index.html\r\n\r\n";
    int status = 0;
    for (int i = 0; i < warmup; ++i) {
      if (!c.round_trip(req, status)) return UINT64_MAX;
    }
    std::uint64_t before = g_allocations.load();
    g_measuring = true;
    for (int i = 0; i < count; ++i) {
      if (!c.round_trip(req, status) || status != 200) {
        g_measuring = false;
        return UINT64_MAX;
      }
    }
    g_measuring = false;
    return g_allocations.load() - before;
  }

  std::filesystem::path dir_;
  testing::CertMaker certs_;
  std::unique_ptr<observe::AccessLog> log_;
  Router router_;
  std::unique_ptr<Server> server_;
};

TEST_F(SteadyAllocation, KeepAliveRequestAllocatesNothingOnTheLoopThread) {
  if (!kCounting) GTEST_SKIP() << "a sanitizer build has its own malloc, not counted here";
  // backtrace() loads its unwinder on first use: not inside the measured window.
  void* warm[1];
  ::backtrace(warm, 1);
  EXPECT_EQ(allocations_for("/hello/world?lang=en", 200, 2000), 0u);
  if (g_first_depth > 0) {
    std::fprintf(stderr, "first allocation on the loop thread:\n");
    ::backtrace_symbols_fd(g_first_stack, g_first_depth, 2);
  }
  // Every request was logged in full (the logging is part of what must not allocate).
  server_->drain();
  server_->wait();
  log_.reset();
  std::ifstream in(dir_ / "access.log");
  std::size_t lines = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.find("\"path\":\"/hello/world?lang=en\"") != std::string::npos &&
        line.find("\"outcome\":\"ok\"") != std::string::npos && line.find("\"ua\":\"Mozilla/5.0") != std::string::npos)
      ++lines;
  }
  EXPECT_EQ(lines, 2200u);
}

// The same over TLS: the record layer encrypts into buffers the SSL object keeps (no
// SSL_MODE_RELEASE_BUFFERS), and the transport's queues keep their capacity.
TEST_F(SteadyAllocation, KeepAliveRequestOverTlsAllocatesNothingOnTheLoopThread) {
  if (!kCounting) GTEST_SKIP() << "a sanitizer build has its own malloc, not counted here";
  ASSERT_TRUE(g_tls_allocator) << "OpenSSL allocated before its allocator could be replaced";
  void* warm[1];
  ::backtrace(warm, 1);
  EXPECT_EQ(allocations_for("/hello/world?lang=en", 200, 2000, /*tls=*/true), 0u);
  if (g_first_depth > 0) {
    std::fprintf(stderr, "first allocation on the loop thread:\n");
    ::backtrace_symbols_fd(g_first_stack, g_first_depth, 2);
  }
}

// A handler's own response header (no small-string buffer holds it) and a cached static file:
// the exchange's header storage goes round with the request's, from one request to the next.
TEST_F(SteadyAllocation, ResponseHeadersAndCachedFilesAllocateNothing) {
  if (!kCounting) GTEST_SKIP() << "a sanitizer build has its own malloc, not counted here";
  void* warm[1];
  ::backtrace(warm, 1);
  EXPECT_EQ(allocations_for("/typed", 200, 2000), 0u);
  EXPECT_EQ(allocations_for("/13.txt", 200, 2000), 0u);
  if (g_first_depth > 0) {
    std::fprintf(stderr, "first allocation on the loop thread:\n");
    ::backtrace_symbols_fd(g_first_stack, g_first_depth, 2);
  }
}

TEST_F(SteadyAllocation, TheCounterSeesANewTlsConnectionAllocate) {
  if (!kCounting) GTEST_SKIP() << "a sanitizer build has its own malloc, not counted here";
  // A new TLS connection allocates (its SSL object, through OpenSSL's allocator): the counter sees it.
  int status = 0;
  Client warm(server_->tls_addresses()[0].port(), true);
  ASSERT_TRUE(warm.round_trip("GET /hello/x HTTP/1.1\r\nHost: l\r\n\r\n", status));  // turns counting on
  // The client's allocations are on this thread, which does not count.
  std::uint64_t before = g_allocations.load();
  Client fresh(server_->tls_addresses()[0].port(), true);
  ASSERT_TRUE(fresh.round_trip("GET /hello/x HTTP/1.1\r\nHost: l\r\n\r\n", status));
  EXPECT_GT(g_allocations.load() - before, 0u);
}

TEST_F(SteadyAllocation, TheCounterSeesAHandlerThatAllocates) {
  if (!kCounting) GTEST_SKIP() << "a sanitizer build has its own malloc, not counted here";
  EXPECT_GE(allocations_for("/allocating", 10, 500), 500u);
}

// The record sink's upstream counters: a proxied record of an upstream already seen allocates nothing.
TEST(UpstreamMetricsAllocation, ARecordOfASeenUpstreamAllocatesNothing) {
  if (!kCounting) GTEST_SKIP() << "a sanitizer build has its own malloc, not counted here";
  observe::UpstreamMetrics metrics;
  RequestRecord rec;
  rec.upstream.emplace();
  rec.upstream->upstream = "127.0.0.1:8000";
  rec.upstream->status = 200;
  rec.upstream->header_ms = 3;
  rec.upstream->retries = 1;
  metrics.observe(rec);  // its first record adds the upstream's slot
  std::uint64_t before = g_allocations.load();
  t_counting = true;
  for (int i = 0; i < 1000; ++i) {
    rec.outcome = i % 10 ? Outcome::kOk : Outcome::kUpstreamReset;
    metrics.observe(rec);
  }
  t_counting = false;
  EXPECT_EQ(g_allocations.load() - before, 0u);
  EXPECT_EQ(metrics.snapshot().front().requests(), 1001u);
}

}  // namespace
}  // namespace unbroken::http
