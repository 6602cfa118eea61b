// TlsServerContext and TlsClientContext with real certificates (made in a temp dir) and real
// handshakes: a server SSL from the context and a test client SSL joined by a memory BIO pair,
// driven in turn on this thread. Certificate errors, SNI, protocols and ciphers, ALPN, ticket
// resumption and key rotation (an injected clock), reload, upstream verification, kTLS detection.

#include "net/tls_context.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "../../common/test_certs.h"

namespace unbroken::net {
namespace {

using namespace std::chrono_literals;
using testing::CertMaker;
using testing::TestCert;

struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};
using SslPtr = std::unique_ptr<SSL, SslFree>;

struct ClientOptions {
  std::string sni{};
  int max_version = 0;
  const char* ciphers = nullptr;  // TLS 1.2's list
  std::string alpn{};             // wire format, e.g. "\x02h2"
  SSL_SESSION* resume = nullptr;
  bool legacy = false;  // security level 0, so that it offers TLS 1.1 and old ciphers
};

SslPtr test_client(const ClientOptions& o) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (o.legacy) {
    SSL_CTX_set_security_level(ctx, 0);
    SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
    SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
  }
  if (o.max_version) SSL_CTX_set_max_proto_version(ctx, o.max_version);
  if (o.ciphers) SSL_CTX_set_cipher_list(ctx, o.ciphers);
  if (!o.alpn.empty())
    SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(o.alpn.data()),
                            static_cast<unsigned>(o.alpn.size()));
  SslPtr ssl(SSL_new(ctx));
  SSL_CTX_free(ctx);  // the SSL holds its own reference
  if (!o.sni.empty()) SSL_set_tlsext_host_name(ssl.get(), o.sni.c_str());
  if (o.resume) SSL_set_session(ssl.get(), o.resume);
  return ssl;
}

bool still_going(SSL* ssl, int rc) {
  int e = SSL_get_error(ssl, rc);
  return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

// OpenSSL's first reason on this thread's error queue, and the queue emptied.
std::string reason() {
  const char* r = ERR_reason_error_string(ERR_peek_error());
  std::string out = r ? r : "no reason";
  ERR_clear_error();
  return out;
}

// Joins the two over a BIO pair and runs both handshakes to the end. Then the client reads once,
// which takes in TLS 1.3's NewSessionTicket. False when either side failed; `why` then says which
// side and its reason ("server: no shared cipher").
bool handshake(SSL* server, SSL* client, std::string* why = nullptr) {
  BIO* sb = nullptr;
  BIO* cb = nullptr;
  BIO_new_bio_pair(&sb, 0, &cb, 0);
  SSL_set_bio(server, sb, sb);
  SSL_set_bio(client, cb, cb);
  SSL_set_accept_state(server);
  SSL_set_connect_state(client);
  bool server_done = false;
  bool client_done = false;
  auto failed = [why](const char* side) {
    std::string r = reason();
    if (why) *why = std::string(side) + ": " + r;
    return false;
  };
  for (int turn = 0; turn < 50 && !(server_done && client_done); ++turn) {
    if (!client_done) {
      int rc = SSL_do_handshake(client);
      client_done = rc == 1;
      if (!client_done && !still_going(client, rc)) return failed("client");
    }
    if (!server_done) {
      int rc = SSL_do_handshake(server);
      server_done = rc == 1;
      if (!server_done && !still_going(server, rc)) return failed("server");
    }
  }
  if (!(server_done && client_done)) return failed("both stuck");
  char byte;
  EXPECT_LE(SSL_read(client, &byte, 1), 0);
  ERR_clear_error();
  return true;
}

std::string peer_cn(SSL* client) {
  X509* x = SSL_get0_peer_certificate(client);
  if (!x) return "(none)";
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
  return cn;
}

std::string alpn_of(SSL* ssl) {
  const unsigned char* p = nullptr;
  unsigned n = 0;
  SSL_get0_alpn_selected(ssl, &p, &n);
  return std::string(reinterpret_cast<const char*>(p), n);
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A self-signed certificate with a CN and no subjectAltName, which CertMaker never makes.
TestCert cn_only_cert(const std::string& dir, const std::string& stem, const std::string& cn) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 77);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, X509_get_subject_name(x));
  X509_sign(x, key, EVP_sha256());
  TestCert out{dir + "/" + stem + ".pem", dir + "/" + stem + ".key"};
  FILE* f = std::fopen(out.cert.c_str(), "w");
  PEM_write_X509(f, x);
  std::fclose(f);
  f = std::fopen(out.key.c_str(), "w");
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  X509_free(x);
  EVP_PKEY_free(key);
  return out;
}

class TlsContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() / ("unbroken-tlsctx-" + std::to_string(::getpid()))).string();
    std::filesystem::create_directories(dir_);
    std::filesystem::permissions(dir_, std::filesystem::perms::all);  // nobody traverses it too
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<TlsServerContext> server(const std::vector<TestCert>& certs, std::chrono::seconds period = 3600s) {
    TlsServerConfig config;
    for (const TestCert& c : certs) config.certs.push_back({c.cert, c.key});
    config.ticket_key_period = period;
    config.clock = [this] { return now_; };
    TlsSetupError error;
    auto ctx = TlsServerContext::create(config, error);
    EXPECT_TRUE(ctx) << error.message;
    return ctx;
  }

  // A handshake of a new server SSL from `ctx` with a client made of `o`; the client, or nullptr
  // when the handshake failed (then why_ says the server's reason).
  SslPtr connect(TlsServerContext& ctx, const ClientOptions& o = {}) {
    server_ssl_.reset(ctx.new_ssl());
    SslPtr client = test_client(o);
    if (!handshake(server_ssl_.get(), client.get(), &why_)) return nullptr;
    return client;
  }

  std::string dir_;
  CertMaker certs_;
  std::chrono::steady_clock::time_point now_ = std::chrono::steady_clock::now();
  SslPtr server_ssl_;
  std::string why_;  // the last failed connect()'s side and reason
};

// ---- certificate and key errors

TEST_F(TlsContextTest, EachBadFileIsOneLineNamingTheFileAndTheProblem) {
  TestCert good = certs_.make(dir_, "good", {"good.test"});
  TestCert other = certs_.make(dir_, "other", {"other.test"});
  std::string garbage = dir_ + "/garbage.txt";
  write_file(garbage, "this is not PEM\n");
  std::string bad_base64 = dir_ + "/bad64.pem";
  write_file(bad_base64, "-----BEGIN CERTIFICATE-----\n!!!!not base64!!!!\n-----END CERTIFICATE-----\n");
  std::string empty = dir_ + "/empty.pem";
  write_file(empty, "");
  std::string encrypted = dir_ + "/encrypted.key";
  {
    FILE* in = std::fopen(good.key.c_str(), "r");
    EVP_PKEY* k = PEM_read_PrivateKey(in, nullptr, nullptr, nullptr);
    std::fclose(in);
    FILE* out = std::fopen(encrypted.c_str(), "w");
    PEM_write_PrivateKey(out, k, EVP_aes_256_cbc(), nullptr, 0, nullptr, const_cast<char*>("secret"));
    std::fclose(out);
    EVP_PKEY_free(k);
  }
  std::string rsa_key = dir_ + "/rsa.key";
  {
    EVP_PKEY* k = EVP_RSA_gen(2048);
    FILE* out = std::fopen(rsa_key.c_str(), "w");
    PEM_write_PrivateKey(out, k, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(out);
    EVP_PKEY_free(k);
  }
  struct Case {
    std::string cert, key, message;
  };
  const Case cases[] = {
      {dir_ + "/missing.pem", good.key, dir_ + "/missing.pem: no such file"},
      {dir_ + "/nodir/x.pem", good.key, dir_ + "/nodir/x.pem: no such file"},
      {dir_, good.key, dir_ + ": is a directory, not a PEM file"},
      {garbage, good.key, garbage + ": no PEM certificate in it"},
      {empty, good.key, empty + ": no PEM certificate in it"},
      {good.key, good.key, good.key + ": no PEM certificate in it"},
      {bad_base64, good.key, bad_base64 + ": not a valid PEM certificate ("},
      {good.cert, dir_ + "/missing.key", dir_ + "/missing.key: no such file"},
      {good.cert, good.cert, good.cert + ": no PEM private key in it"},
      {good.cert, garbage, garbage + ": no PEM private key in it"},
      {good.cert, empty, empty + ": no PEM private key in it"},
      {good.cert, other.key, other.key + ": does not match the certificate in " + good.cert},
      {good.cert, rsa_key, rsa_key + ": does not match the certificate in " + good.cert},
      {good.cert, encrypted, encrypted + ": the private key is encrypted (a passphrase is not supported)"},
  };
  for (const Case& c : cases) {
    TlsSetupError error;
    EXPECT_FALSE(TlsServerContext::create({.certs = {{c.cert, c.key}}}, error)) << c.cert << " " << c.key;
    EXPECT_EQ(error.message.substr(0, c.message.size()), c.message) << c.cert << " " << c.key;
    EXPECT_EQ(error.message.find('\n'), std::string::npos);
  }
  TlsSetupError error;
  EXPECT_FALSE(TlsServerContext::create({.certs = {{good.cert, good.key}, {good.cert, other.key}}}, error));
  EXPECT_EQ(error.message, other.key + ": does not match the certificate in " + good.cert) << "the second pair too";
  EXPECT_FALSE(TlsServerContext::create({}, error));
  EXPECT_EQ(error.message, "no TLS certificate configured");
  EXPECT_FALSE(TlsServerContext::create({.certs = {{good.cert, good.key}}, .ticket_key_period = 0s}, error));
  EXPECT_EQ(error.message, "the session ticket key period must be positive");
  EXPECT_EQ(ERR_peek_error(), 0u) << "the error queue is left empty";
}

// Root reads any file, so the unreadable case runs in a child that has become nobody.
std::string error_as_nobody(const TlsServerConfig& config) {
  int fds[2];
  if (::pipe(fds) != 0) return "pipe failed";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    std::string message = "could not become nobody";
    if (::setgid(65534) == 0 && ::setuid(65534) == 0) {
      TlsSetupError error;
      message = TlsServerContext::create(config, error) ? "created" : error.message;
    }
    (void)!::write(fds[1], message.data(), message.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string out;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  ::waitpid(pid, nullptr, 0);
  return out;
}

TEST_F(TlsContextTest, AnUnreadableFileSaysPermissionDenied) {
  TestCert good = certs_.make(dir_, "good", {"good.test"});
  EXPECT_EQ(error_as_nobody({.certs = {{good.cert, good.key}}}), "created") << "readable files load as nobody";
  ::chmod(good.key.c_str(), 0);
  EXPECT_EQ(error_as_nobody({.certs = {{good.cert, good.key}}}), good.key + ": cannot be read (permission denied)");
  ::chmod(good.cert.c_str(), 0);
  EXPECT_EQ(error_as_nobody({.certs = {{good.cert, good.key}}}), good.cert + ": cannot be read (permission denied)");
}

// ---- SNI

TEST_F(TlsContextTest, SniChoosesByNamesAndTheFirstIsTheDefault) {
  auto ctx = server({certs_.make(dir_, "default", {"default.test", "127.0.0.1"}),
                     certs_.make(dir_, "wild", {"*.example.com"}), certs_.make(dir_, "www", {"www.example.com"}),
                     cn_only_cert(dir_, "cn", "cn-only.test"), certs_.make(dir_, "multi", {"a.test", "B.Test"})});
  ASSERT_TRUE(ctx);
  struct Case {
    std::string sni, cn;
  } const cases[] = {
      {"", "default.test"},
      {"www.example.com", "www.example.com"},  // exact beats the wildcard, though listed later
      {"WWW.Example.COM", "www.example.com"},
      {"www.example.com.", "www.example.com"},
      {"api.example.com", "*.example.com"},
      {"a.b.example.com", "default.test"},  // a wildcard matches one label
      {"example.com", "default.test"},
      {"unknown.test", "default.test"},
      {"cn-only.test", "cn-only.test"},  // CN, as it has no subjectAltName
      {"a.test", "a.test"},
      {"b.test", "a.test"},  // its second SAN
      {"default.test", "default.test"},
  };
  for (const Case& c : cases) {
    SslPtr client = connect(*ctx, {.sni = c.sni});
    ASSERT_TRUE(client) << c.sni << ": " << why_;
    EXPECT_EQ(peer_cn(client.get()), c.cn) << c.sni;
  }
}

// ---- protocols, ciphers, ALPN

TEST_F(TlsContextTest, OnlyTls12And13WithModernCiphers) {
  auto ctx = server({certs_.make(dir_, "s", {"s.test"})});
  ASSERT_TRUE(ctx);
  SslPtr c13 = connect(*ctx);
  ASSERT_TRUE(c13) << why_;
  EXPECT_STREQ(SSL_get_version(c13.get()), "TLSv1.3");
  SslPtr c12 = connect(*ctx, {.max_version = TLS1_2_VERSION});
  ASSERT_TRUE(c12) << why_;
  EXPECT_STREQ(SSL_get_version(c12.get()), "TLSv1.2");
  EXPECT_STREQ(SSL_get_cipher_name(c12.get()), "ECDHE-ECDSA-AES128-GCM-SHA256");
  EXPECT_TRUE(connect(*ctx, {.max_version = TLS1_2_VERSION, .ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305"})) << why_;

  // The legacy client offers them: it is the server that says no.
  for (int old : {TLS1_1_VERSION, TLS1_VERSION}) {
    EXPECT_FALSE(connect(*ctx, {.max_version = old, .legacy = true})) << old;
    EXPECT_EQ(why_, "server: unsupported protocol") << old;
  }
  for (const char* weak : {"AES128-SHA", "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA",
                           "ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA384"}) {
    EXPECT_FALSE(connect(*ctx, {.max_version = TLS1_2_VERSION, .ciphers = weak, .legacy = true})) << weak;
    EXPECT_EQ(why_, "server: no shared cipher") << weak;
  }
}

TEST_F(TlsContextTest, AlpnIsHttp11OrNothing) {
  auto ctx = server({certs_.make(dir_, "s", {"s.test"})});
  ASSERT_TRUE(ctx);
  struct Case {
    std::string offered, chosen;
  } const cases[] = {
      {std::string("\x08http/1.1"), "http/1.1"},
      {std::string("\x02h2\x08http/1.1"), "http/1.1"},
      {std::string("\x02h2"), ""},  // no ALPN, not a failed handshake
      {"", ""},
  };
  for (const Case& c : cases) {
    SslPtr client = connect(*ctx, {.alpn = c.offered});
    ASSERT_TRUE(client) << c.chosen;
    EXPECT_EQ(alpn_of(client.get()), c.chosen);
  }
}

// ---- session tickets

TEST_F(TlsContextTest, TicketsResumeInTls13AndTls12) {
  auto ctx = server({certs_.make(dir_, "s", {"s.test"})});
  ASSERT_TRUE(ctx);
  for (int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    SslPtr first = connect(*ctx, {.max_version = version});
    ASSERT_TRUE(first);
    EXPECT_FALSE(SSL_session_reused(server_ssl_.get()));
    SSL_SESSION* session = SSL_get1_session(first.get());
    ASSERT_TRUE(SSL_SESSION_is_resumable(session)) << version;
    EXPECT_TRUE(SSL_SESSION_has_ticket(session)) << version;
    SslPtr second = connect(*ctx, {.max_version = version, .resume = session});
    ASSERT_TRUE(second);
    EXPECT_TRUE(SSL_session_reused(server_ssl_.get())) << version;
    EXPECT_TRUE(SSL_session_reused(second.get())) << version;
    SSL_SESSION_free(session);
  }
  // The server keeps nothing per client: its cache is off.
  SslPtr probe = connect(*ctx);
  EXPECT_EQ(SSL_CTX_get_session_cache_mode(SSL_get_SSL_CTX(server_ssl_.get())), SSL_SESS_CACHE_OFF);
  EXPECT_EQ(SSL_CTX_sess_number(SSL_get_SSL_CTX(server_ssl_.get())), 0);
}

TEST_F(TlsContextTest, ATicketResumesAcrossSniCertificates) {
  auto ctx = server({certs_.make(dir_, "a", {"a.test"}), certs_.make(dir_, "b", {"b.test"})});
  ASSERT_TRUE(ctx);
  SslPtr first = connect(*ctx, {.sni = "b.test"});
  ASSERT_TRUE(first);
  SSL_SESSION* session = SSL_get1_session(first.get());
  SslPtr second = connect(*ctx, {.sni = "b.test", .resume = session});
  ASSERT_TRUE(second);
  EXPECT_TRUE(SSL_session_reused(server_ssl_.get()));
  EXPECT_EQ(peer_cn(second.get()), "b.test");
  SSL_SESSION_free(session);
}

TEST_F(TlsContextTest, KeysRotateAndATicketTwoPeriodsOldIsRefused) {
  auto ctx = server({certs_.make(dir_, "s", {"s.test"})}, 10s);
  ASSERT_TRUE(ctx);
  for (int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    SCOPED_TRACE(version);
    SslPtr first = connect(*ctx, {.max_version = version});
    ASSERT_TRUE(first);
    SSL_SESSION* old_ticket = SSL_get1_session(first.get());
    now_ += 9s;  // still the current key
    SslPtr c1 = connect(*ctx, {.max_version = version, .resume = old_ticket});
    ASSERT_TRUE(c1);
    EXPECT_TRUE(SSL_session_reused(server_ssl_.get()));
    now_ += 6s;  // 15 s: the key is the previous one, it still decrypts, and the ticket is renewed
    SslPtr c2 = connect(*ctx, {.max_version = version, .resume = old_ticket});
    ASSERT_TRUE(c2);
    EXPECT_TRUE(SSL_session_reused(server_ssl_.get()));
    SSL_SESSION* renewed = SSL_get1_session(c2.get());
    now_ += 6s;  // 21 s: two periods after the first key was made
    SslPtr c3 = connect(*ctx, {.max_version = version, .resume = old_ticket});
    ASSERT_TRUE(c3);
    EXPECT_FALSE(SSL_session_reused(server_ssl_.get())) << "the key two periods old is gone";
    SslPtr c4 = connect(*ctx, {.max_version = version, .resume = renewed});
    ASSERT_TRUE(c4);
    EXPECT_TRUE(SSL_session_reused(server_ssl_.get())) << "the renewed ticket has the new key";
    SSL_SESSION_free(old_ticket);
    SSL_SESSION_free(renewed);
    now_ += 100s;
  }
}

TEST_F(TlsContextTest, AKeyUnusedForLongIsNotKeptAsThePreviousOne) {
  auto ctx = server({certs_.make(dir_, "s", {"s.test"})}, 10s);
  ASSERT_TRUE(ctx);
  SslPtr first = connect(*ctx);
  ASSERT_TRUE(first);
  SSL_SESSION* ticket = SSL_get1_session(first.get());
  now_ += 25s;  // no handshake in between: the rotation happens now, lazily, and drops it at once
  SslPtr second = connect(*ctx, {.resume = ticket});
  ASSERT_TRUE(second);
  EXPECT_FALSE(SSL_session_reused(server_ssl_.get()));
  SSL_SESSION_free(ticket);
}

// Loops on several threads handshake at once while the ring rotates and a reload swaps the
// certificates: every handshake completes and tickets go on resuming (run under TSan/ASan).
TEST_F(TlsContextTest, LoopsOnSeveralThreadsShareTheRingWhileItRotatesAndReloads) {
  TestCert files = certs_.make(dir_, "s", {"s.test"});
  std::atomic<std::int64_t> ms{0};
  const auto start = std::chrono::steady_clock::now();
  TlsSetupError error;
  auto ctx = TlsServerContext::create(
      {.certs = {{files.cert, files.key}}, .ticket_key_period = 1s, .clock = [&] { return start + 1ms * ms.load(); }},
      error);
  ASSERT_TRUE(ctx) << error.message;
  constexpr int kThreads = 4;
  constexpr int kRounds = 25;
  std::atomic<int> done{0};
  std::atomic<int> resumed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        SslPtr server(ctx->new_ssl());
        SslPtr client = test_client({.max_version = t % 2 ? TLS1_2_VERSION : 0});
        if (!handshake(server.get(), client.get())) continue;
        SSL_SESSION* session = SSL_get1_session(client.get());
        ms += 50;
        SslPtr server2(ctx->new_ssl());
        SslPtr client2 = test_client({.max_version = t % 2 ? TLS1_2_VERSION : 0, .resume = session});
        if (handshake(server2.get(), client2.get())) ++done;
        if (SSL_session_reused(server2.get())) ++resumed;
        SSL_SESSION_free(session);
      }
    });
  }
  for (int i = 0; i < 5; ++i) {
    TlsSetupError reload_error;
    EXPECT_TRUE(ctx->reload(reload_error)) << reload_error.message;
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(done.load(), kThreads * kRounds);
  EXPECT_GE(resumed.load(), kThreads * kRounds / 2);
  EXPECT_GT(ms.load(), 2000) << "the ring rotated on the way";
}

// ---- reload

TEST_F(TlsContextTest, ReloadServesTheNewCertificateAndTicketsStillResume) {
  TestCert files = certs_.make(dir_, "s", {"v1.test"});
  auto ctx = server({files});
  ASSERT_TRUE(ctx);
  SslPtr first = connect(*ctx, {.max_version = TLS1_2_VERSION});
  ASSERT_TRUE(first);
  EXPECT_EQ(peer_cn(first.get()), "v1.test");
  SSL_SESSION* ticket12 = SSL_get1_session(first.get());
  SslPtr first13 = connect(*ctx);
  SSL_SESSION* ticket13 = SSL_get1_session(first13.get());
  SslPtr opened_before(ctx->new_ssl());  // accepted before the reload, handshaking after it

  certs_.make(dir_, "s", {"v2.test"});
  TlsSetupError error;
  ASSERT_TRUE(ctx->reload(error)) << error.message;
  SslPtr fresh = connect(*ctx);
  ASSERT_TRUE(fresh);
  EXPECT_EQ(peer_cn(fresh.get()), "v2.test");
  SslPtr old_client = test_client({});
  ASSERT_TRUE(handshake(opened_before.get(), old_client.get()));
  EXPECT_EQ(peer_cn(old_client.get()), "v1.test") << "an SSL keeps the certificates it was made with";

  for (SSL_SESSION* ticket : {ticket12, ticket13}) {
    SslPtr resumed = connect(*ctx, {.max_version = SSL_SESSION_get_protocol_version(ticket), .resume = ticket});
    ASSERT_TRUE(resumed);
    EXPECT_TRUE(SSL_session_reused(server_ssl_.get())) << SSL_SESSION_get_protocol_version(ticket);
    SSL_SESSION_free(ticket);
  }
}

TEST_F(TlsContextTest, ReloadWithABadFileKeepsTheOldCertificate) {
  TestCert files = certs_.make(dir_, "s", {"v1.test"});
  TestCert second = certs_.make(dir_, "t", {"t.test"});
  auto ctx = server({files, second});
  ASSERT_TRUE(ctx);
  const std::string good_cert = read_file(files.cert);
  const std::string good_key = read_file(files.key);
  struct Case {
    std::string what;
    std::function<void()> spoil;
    std::string message;
  } const cases[] = {
      {"garbage key", [&] { write_file(files.key, "oops"); }, files.key + ": no PEM private key in it"},
      {"new cert, old key",
       [&] {
         certs_.make(dir_, "s", {"v2.test"});
         write_file(files.key, good_key);
       },
       files.key + ": does not match the certificate in " + files.cert},
      {"second cert gone",
       [&] {
         write_file(files.cert, good_cert);
         std::filesystem::remove(second.cert);
       },
       second.cert + ": no such file"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    c.spoil();
    TlsSetupError error;
    EXPECT_FALSE(ctx->reload(error));
    EXPECT_EQ(error.message, c.message);
    SslPtr client = connect(*ctx);
    ASSERT_TRUE(client);
    EXPECT_EQ(peer_cn(client.get()), "v1.test");
    SslPtr by_sni = connect(*ctx, {.sni = "t.test"});
    ASSERT_TRUE(by_sni);
    EXPECT_EQ(peer_cn(by_sni.get()), "t.test");
  }
}

// ---- the client context

class TlsClientContextTest : public TlsContextTest {
 protected:
  // A handshake of `client` (from a TlsClientContext) with a server SSL of `ctx`.
  bool talk(TlsServerContext& ctx, SSL* client) {
    server_ssl_.reset(ctx.new_ssl());
    return handshake(server_ssl_.get(), client);
  }
  std::unique_ptr<TlsClientContext> client_ctx(const std::string& ca) {
    TlsSetupError error;
    auto c = TlsClientContext::create({ca}, error);
    EXPECT_TRUE(c) << error.message;
    return c;
  }
};

TEST_F(TlsClientContextTest, VerifiesNamesAndAddressesWithTheReason) {
  TestCert ca = certs_.make(dir_, "ca", {"Test CA"}, nullptr, true);
  TestCert leaf = certs_.make(dir_, "leaf", {"upstream.test", "127.0.0.1"}, &ca);
  TestCert expired = certs_.make(dir_, "expired", {"upstream.test"}, &ca, false, -1);
  TestCert stranger = certs_.make(dir_, "stranger", {"upstream.test"});
  auto server_leaf = server({leaf});
  auto server_expired = server({expired});
  auto server_stranger = server({stranger});
  ASSERT_TRUE(server_leaf && server_expired && server_stranger);
  auto client = client_ctx(ca.cert);
  ASSERT_TRUE(client);
  struct Case {
    TlsServerContext* server;
    std::string host, failure, sni;
  } const cases[] = {
      {server_leaf.get(), "upstream.test", "", "upstream.test"},
      {server_leaf.get(), "UPSTREAM.test", "", "UPSTREAM.test"},
      {server_leaf.get(), "127.0.0.1", "", ""},  // an address: no SNI, checked against the IP SAN
      {server_leaf.get(), "other.test", "hostname mismatch", "other.test"},
      {server_leaf.get(), "127.0.0.2", "IP address mismatch", ""},
      {server_expired.get(), "upstream.test", "certificate has expired", "upstream.test"},
      {server_stranger.get(), "upstream.test", "self-signed certificate", "upstream.test"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.host);
    SslPtr ssl(client->new_ssl(c.host));
    ASSERT_TRUE(ssl);
    EXPECT_EQ(talk(*c.server, ssl.get()), c.failure.empty());
    EXPECT_EQ(TlsClientContext::verify_failure(ssl.get()), c.failure);
    const char* sni = SSL_get_servername(server_ssl_.get(), TLSEXT_NAMETYPE_host_name);
    EXPECT_EQ(sni ? sni : "", c.sni);
    if (c.failure.empty()) {
      EXPECT_EQ(alpn_of(ssl.get()), "http/1.1");
    }
  }
  SslPtr v12(client->new_ssl("upstream.test"));
  SSL_set_max_proto_version(v12.get(), TLS1_2_VERSION);
  EXPECT_TRUE(talk(*server_leaf, v12.get()));
}

TEST_F(TlsClientContextTest, TheSystemStoreDoesNotKnowATestCertificate) {
  auto srv = server({certs_.make(dir_, "s", {"s.test"})});
  ASSERT_TRUE(srv);
  auto client = client_ctx("");
  ASSERT_TRUE(client);
  SslPtr ssl(client->new_ssl("s.test"));
  EXPECT_FALSE(talk(*srv, ssl.get()));
  EXPECT_EQ(TlsClientContext::verify_failure(ssl.get()), "self-signed certificate");
}

TEST_F(TlsClientContextTest, ABadCaFileIsOneLine) {
  TestCert good = certs_.make(dir_, "good", {"good.test"});
  std::string garbage = dir_ + "/garbage.pem";
  write_file(garbage, "not a certificate\n");
  struct Case {
    std::string ca, message;
  } const cases[] = {
      {dir_ + "/missing.pem", dir_ + "/missing.pem: no such file"},
      {good.key, good.key + ": no PEM certificate in it"},
      {garbage, garbage + ": no PEM certificate in it"},
      {dir_, dir_ + ": is a directory, not a PEM file"},
  };
  for (const Case& c : cases) {
    TlsSetupError error;
    EXPECT_FALSE(TlsClientContext::create({c.ca}, error));
    EXPECT_EQ(error.message, c.message);
  }
}

// ---- kTLS

TEST(DetectKtls, SaysWhichPartIsMissing) {
  std::string dir = std::filesystem::temp_directory_path() / ("unbroken-ktls-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  write_file(dir + "/without", "mptcp espintcp\n");
  write_file(dir + "/with", "espintcp tls mptcp\n");
#ifdef OPENSSL_NO_KTLS
  const bool openssl_has_it = false;
#else
  const bool openssl_has_it = true;
#endif
  KtlsSupport without = detect_ktls(dir + "/without");
  EXPECT_FALSE(without.available);
  EXPECT_EQ(without.reason, openssl_has_it ? "kernel TLS is not available: the kernel has no tls ULP (modprobe tls); "
                                             "static files are encrypted in user space"
                                           : "kernel TLS is not available: OpenSSL was built without kTLS and the "
                                             "kernel has no tls ULP (modprobe tls); static files are encrypted in "
                                             "user space");
  KtlsSupport with = detect_ktls(dir + "/with");
  EXPECT_EQ(with.available, openssl_has_it) << with.reason;
  KtlsSupport unreadable = detect_ktls(dir + "/missing");
  EXPECT_FALSE(unreadable.available);
  EXPECT_NE(unreadable.reason.find("cannot read " + dir + "/missing"), std::string::npos) << unreadable.reason;
  // This machine: whatever /proc says, the answer agrees with it.
  std::ifstream proc("/proc/sys/net/ipv4/tcp_available_ulp");
  std::string ulps((std::istreambuf_iterator<char>(proc)), {});
  KtlsSupport here = detect_ktls();
  EXPECT_EQ(here.available, openssl_has_it && (" " + ulps).find(" tls") != std::string::npos) << here.reason;
  EXPECT_EQ(here.reason.find('\n'), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace unbroken::net
