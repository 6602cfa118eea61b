#pragma once
// A blocking TLS client for the tests: OpenSSL over a loopback socket, with a receive timeout so a
// test cannot hang. Certificates are checked against `ca_file` when given, not at all otherwise.

#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace unbroken::testing {

struct TlsClientOptions {
  std::string sni;                // empty: none sent
  std::string ca_file;            // empty: no verification
  SSL_SESSION* resume = nullptr;  // a session from an earlier connection's take_session()
  int max_version = 0;            // e.g. TLS1_2_VERSION; 0: OpenSSL's highest
  std::uint8_t max_fragment = 0;  // TLSEXT_max_fragment_length_512 etc.: small records asked of the server
  std::chrono::milliseconds timeout{5000};
};

// A real ClientHello, OpenSSL's (SNI `sni` unless empty), made in memory so that a raw socket can
// send it and then misbehave.
inline std::string client_hello(const std::string& sni) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, rbio, wbio);
  if (!sni.empty()) SSL_set_tlsext_host_name(ssl, sni.c_str());
  [[maybe_unused]] int r = SSL_connect(ssl);  // wants to read the ServerHello: the ClientHello is out
  char* data = nullptr;
  long n = BIO_get_mem_data(wbio, &data);
  std::string out(data, static_cast<std::size_t>(n));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return out;
}

class TlsClient {
 public:
  TlsClient(std::uint16_t port, const TlsClientOptions& o = {}) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{static_cast<time_t>(o.timeout.count() / 1000),
               static_cast<suseconds_t>(o.timeout.count() % 1000 * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
    ssl_ = SSL_new(context(o));
    if (!o.sni.empty()) SSL_set_tlsext_host_name(ssl_, o.sni.c_str());
    if (o.resume) SSL_set_session(ssl_, o.resume);
    if (o.max_fragment) SSL_set_tlsext_max_fragment_length(ssl_, o.max_fragment);
    SSL_set_fd(ssl_, fd_);
    connected_ = SSL_connect(ssl_) == 1;
    if (!connected_) error_ = ERR_reason_error_string(ERR_get_error()) ?: "handshake failed";
    ERR_clear_error();
  }
  ~TlsClient() {
    if (ssl_) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
  }
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  [[nodiscard]] bool connected() const { return connected_; }
  [[nodiscard]] const std::string& error() const { return error_; }
  [[nodiscard]] SSL* ssl() const { return ssl_; }
  [[nodiscard]] int fd() const { return fd_; }

  bool write(const std::string& bytes) { return SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size())) > 0; }
  // Up to `max` bytes, or "" at EOF, an error or the timeout.
  std::string read_some(std::size_t max = 16 * 1024) {
    std::string out(max, '\0');
    int n = SSL_read(ssl_, out.data(), static_cast<int>(max));
    out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return out;
  }
  // Reads until `n` bytes or more are in, or the connection ends.
  std::string read_at_least(std::size_t n) {
    std::string out;
    while (out.size() < n) {
      std::string more = read_some();
      if (more.empty()) break;
      out += more;
    }
    return out;
  }
  // Reads until `needle` is in what was read (a response's end), or the connection ends.
  std::string read_until(const std::string& needle) {
    std::string out;
    while (out.find(needle) == std::string::npos) {
      std::string more = read_some();
      if (more.empty()) break;
      out += more;
    }
    return out;
  }
  // Sends RST: SO_LINGER 0, then close. First waits (2 s at most) until the server's kernel has
  // acknowledged everything written: an RST discards what is still unsent, and the kernel may hold
  // a small segment back for a moment (autocorking) while an earlier one is still on its way.
  void reset() {
    for (int i = 0; i < 2000; ++i) {
      int unacked = 0;
      if (::ioctl(fd_, SIOCOUTQ, &unacked) != 0 || unacked == 0) break;
      ::usleep(1000);  // no event says "acknowledged": the kernel's count is polled
    }
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(fd_);
    fd_ = -1;
  }
  // For resumption: the session this connection made (its ticket); the caller frees it.
  SSL_SESSION* take_session() {
    // TLS 1.3 tickets come after the handshake: a read lets them in.
    return SSL_get1_session(ssl_);
  }

 private:
  // One context per set of options (the CA file by its contents: tests make new files under old
  // names), for the process: OpenSSL's client resumes a session only with the context that made it.
  static SSL_CTX* context(const TlsClientOptions& o) {
    static std::mutex mu;
    // Never destroyed: the contexts stay reachable to the end (LeakSanitizer's check runs after
    // static destructors).
    static auto& made = *new std::map<std::pair<std::string, int>, SSL_CTX*>;
    std::string ca;
    if (!o.ca_file.empty()) {
      std::ifstream in(o.ca_file, std::ios::binary);
      ca.assign(std::istreambuf_iterator<char>(in), {});
      ca += o.ca_file;
    }
    std::lock_guard lock(mu);
    SSL_CTX*& ctx = made[{ca, o.max_version}];
    if (ctx) return ctx;
    ctx = SSL_CTX_new(TLS_client_method());
    if (o.max_version) SSL_CTX_set_max_proto_version(ctx, o.max_version);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
    if (!o.ca_file.empty()) {
      SSL_CTX_load_verify_locations(ctx, o.ca_file.c_str(), nullptr);
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    }
    return ctx;
  }

  int fd_ = -1;
  SSL* ssl_ = nullptr;
  bool connected_ = false;
  std::string error_;
};

}  // namespace unbroken::testing
