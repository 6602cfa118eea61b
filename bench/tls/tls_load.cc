// tls_load: a load client for bench/tls/run that opens a new TLS connection for every request, with
// a full handshake (no session offered) or a resumed one (each slot offers the newest ticket its last
// connection received). wrk reconnects under `Connection: close` but keeps the SSL object and so
// resumes every time, and `openssl s_time` keeps one connection in flight; this keeps N in flight on
// one thread and counts how many handshakes the server actually resumed, so a row says what it measured.
//
// Each connection: connect, handshake, `GET PATH HTTP/1.1` with `Connection: close`, read until the
// server closes, check the status line. Prints one line of key=value pairs on stdout.
// Usage: tls_load PORT PATH [--connections N] [--seconds S] [--resume] [--max-tls 1.2|1.3]
// Build: c++ -O2 -std=c++20 tls_load.cc -lssl -lcrypto -o tls_load
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  int port = 0;
  std::string path;
  int connections = 16;
  double seconds = 5;
  bool resume = false;
  int max_version = 0;  // 0: OpenSSL's highest (TLS 1.3)
};

struct Slot {
  int fd = -1;
  SSL* ssl = nullptr;
  SSL_SESSION* session = nullptr;  // the ticket the next connection offers (--resume)
  bool connected = false, handshaken = false, sent = false;
  std::string head;  // the first bytes of the response, enough for the status line
  std::size_t bytes = 0;
  Clock::time_point started;
};

struct Totals {
  std::uint64_t done = 0, resumed = 0, errors = 0, bytes = 0;
  std::vector<std::uint32_t> micros;  // each completed connection's duration
  std::string version, cipher, group, first_error;
};

std::string ssl_error_text() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  const char* r = e ? ERR_reason_error_string(e) : nullptr;
  return r ? r : std::strerror(errno);
}

class Load {
 public:
  Load(const Options& o, SSL_CTX* ctx, int ep) : o_(o), ctx_(ctx), ep_(ep), slots_(o.connections) {
    request_ = "GET " + o.path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  }

  void start(Slot& s) {
    s.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(o_.port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s.started = Clock::now();
    if (connect(s.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
      // Not fail(): that starts again at once, and a refused connect would recurse. run() retries.
      count_error(std::string("connect: ") + std::strerror(errno));
      close_slot(s);
      return;
    }
    s.ssl = SSL_new(ctx_);
    SSL_set_fd(s.ssl, s.fd);
    SSL_set_connect_state(s.ssl);
    SSL_set_tlsext_host_name(s.ssl, "localhost");
    if (o_.resume && s.session) SSL_set_session(s.ssl, s.session);
    s.connected = s.handshaken = s.sent = false;
    s.head.clear();
    s.bytes = 0;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.ptr = &s;
    epoll_ctl(ep_, EPOLL_CTL_ADD, s.fd, &ev);
  }

  // Advances one connection as far as the socket allows (edge-triggered: until OpenSSL wants more).
  void drive(Slot& s) {
    if (!s.connected) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) return fail(s, std::string("connect: ") + std::strerror(err));
      s.connected = true;
    }
    if (!s.handshaken) {
      int r = SSL_do_handshake(s.ssl);
      if (r != 1) return wait_or_fail(s, r, "handshake");
      s.handshaken = true;
    }
    if (!s.sent) {
      int r = SSL_write(s.ssl, request_.data(), static_cast<int>(request_.size()));
      if (r <= 0) return wait_or_fail(s, r, "write");
      s.sent = true;
    }
    char buf[65536];
    for (;;) {
      int r = SSL_read(s.ssl, buf, sizeof buf);
      if (r > 0) {
        s.bytes += static_cast<std::size_t>(r);
        if (s.head.size() < 16) s.head.append(buf, std::min<std::size_t>(r, 16 - s.head.size()));
        continue;
      }
      if (r == 0 || SSL_get_error(s.ssl, r) == SSL_ERROR_ZERO_RETURN) return finish(s);
      return wait_or_fail(s, r, "read");
    }
  }

  int run() {
    auto deadline =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.seconds));
    auto begin = Clock::now();
    for (Slot& s : slots_) start(s);
    std::vector<epoll_event> events(o_.connections);
    while (Clock::now() < deadline) {
      int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 100);
      for (int i = 0; i < n; ++i) drive(*static_cast<Slot*>(events[i].data.ptr));
      for (Slot& s : slots_)
        if (s.fd < 0) start(s);
    }
    double elapsed = std::chrono::duration<double>(Clock::now() - begin).count();
    report(elapsed);
    for (Slot& s : slots_) {
      close_slot(s);
      SSL_SESSION_free(s.session);
    }
    return t_.done > 0 ? 0 : 1;
  }

 private:
  void wait_or_fail(Slot& s, int r, const char* what) {
    int e = SSL_get_error(s.ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
    fail(s, std::string(what) + ": " + ssl_error_text());
  }

  void finish(Slot& s) {
    if (s.head.rfind("HTTP/1.1 200", 0) != 0) return fail(s, "status line: " + s.head.substr(0, 12));
    ++t_.done;
    t_.bytes += s.bytes;
    if (SSL_session_reused(s.ssl)) ++t_.resumed;
    t_.micros.push_back(static_cast<std::uint32_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - s.started).count()));
    if (t_.version.empty()) {
      t_.version = SSL_get_version(s.ssl);
      t_.cipher = SSL_get_cipher_name(s.ssl);
      const char* g = SSL_group_to_name(s.ssl, SSL_get_negotiated_group(s.ssl));
      t_.group = g ? g : "?";
    }
    if (o_.resume) {
      // After the body, so that TLS 1.3's NewSessionTicket (sent after the handshake) has been read.
      SSL_SESSION* next = SSL_get1_session(s.ssl);
      if (next && SSL_SESSION_is_resumable(next)) {
        SSL_SESSION_free(s.session);
        s.session = next;
      } else {
        SSL_SESSION_free(next);
      }
    }
    close_slot(s);
    start(s);
  }

  void count_error(const std::string& why) {
    if (t_.errors++ == 0) t_.first_error = why;
  }

  void fail(Slot& s, const std::string& why) {
    count_error(why);
    close_slot(s);
    start(s);
  }

  static void close_slot(Slot& s) {
    // No close_notify from us, the server has closed already; but marked as sent, or SSL_free takes
    // the session for a broken one and makes it not resumable (ssl_clear_bad_session).
    if (s.ssl && s.handshaken) SSL_set_shutdown(s.ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(s.ssl);
    s.ssl = nullptr;
    if (s.fd >= 0) close(s.fd);  // close() also takes it out of the epoll set
    s.fd = -1;
  }

  void report(double elapsed) {
    std::sort(t_.micros.begin(), t_.micros.end());
    auto pct = [&](double p) {
      if (t_.micros.empty()) return 0.0;
      return t_.micros[std::min(t_.micros.size() - 1, static_cast<std::size_t>(p * t_.micros.size()))] / 1000.0;
    };
    std::printf("connections=%llu resumed=%llu errors=%llu seconds=%.3f conn_per_s=%.0f p50_ms=%.3f p99_ms=%.3f",
                static_cast<unsigned long long>(t_.done), static_cast<unsigned long long>(t_.resumed),
                static_cast<unsigned long long>(t_.errors), elapsed, t_.done / elapsed, pct(0.5), pct(0.99));
    std::printf(" bytes_per_conn=%.0f version=%s cipher=%s group=%s\n", t_.done ? double(t_.bytes) / t_.done : 0.0,
                t_.version.c_str(), t_.cipher.c_str(), t_.group.c_str());
    if (t_.errors)
      std::fprintf(stderr, "tls_load: %llu errors, the first: %s\n", static_cast<unsigned long long>(t_.errors),
                   t_.first_error.c_str());
  }

  Options o_;
  SSL_CTX* ctx_;
  int ep_;
  std::vector<Slot> slots_;
  std::string request_;
  Totals t_;
};

bool parse(int argc, char** argv, Options& o) {
  if (argc < 3) return false;
  o.port = std::atoi(argv[1]);
  o.path = argv[2];
  for (int i = 3; i < argc; ++i) {
    std::string a = argv[i];
    bool has_value = i + 1 < argc;
    if (a == "--resume") {
      o.resume = true;
    } else if (a == "--connections" && has_value) {
      o.connections = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--seconds" && has_value) {
      o.seconds = std::atof(argv[++i]);
    } else if (a == "--max-tls" && has_value) {
      std::string v = argv[++i];
      o.max_version = v == "1.2" ? TLS1_2_VERSION : TLS1_3_VERSION;
    } else {
      return false;
    }
  }
  return o.port > 0 && o.seconds > 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) {
    std::fprintf(stderr, "usage: tls_load PORT PATH [--connections N] [--seconds S] [--resume] [--max-tls 1.2|1.3]\n");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (o.max_version) SSL_CTX_set_max_proto_version(ctx, o.max_version);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);  // a bench against our own throwaway certificate
  // Both servers close with or without close_notify; either way the response is complete.
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  int rc = Load(o, ctx, ep).run();
  close(ep);
  SSL_CTX_free(ctx);
  return rc;
}
