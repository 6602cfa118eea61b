#include "net/tls_context.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "base/text.h"
#include "net/tls_tickets.h"

namespace unbroken::net {
namespace {

// Mozilla's "intermediate" list for TLS 1.2 (forward secrecy, AEAD only); TLS 1.3's suites are
// OpenSSL's defaults, all of them strong.
constexpr const char* kCiphers12 =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kGroups = "X25519:P-256:P-384";
constexpr unsigned char kAlpn[] = "\x08http/1.1";  // wire format: length, then the name

struct CtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, CtxFree>;

// OpenSSL's error queue, drained: the first reason for the message, and whether a given reason is
// anywhere in it (the one that matters is often not the last: "PEM lib" sits on "no start line").
struct OpensslErrors {
  OpensslErrors() {
    while (unsigned long e = ERR_get_error()) {
      codes.push_back(e);
      if (first.empty() && ERR_reason_error_string(e)) first = ERR_reason_error_string(e);
    }
    if (first.empty()) first = "unknown error";
  }
  [[nodiscard]] bool has(int lib, int reason) const {
    for (unsigned long e : codes)
      if (ERR_GET_LIB(e) == lib && ERR_GET_REASON(e) == reason) return true;
    return false;
  }
  std::vector<unsigned long> codes;
  std::string first;
};

// Why `path` cannot be opened for reading, in words, before OpenSSL says it its way ("system lib").
std::optional<std::string> unreadable(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT || e == ENOTDIR) return path + ": no such file";
    if (e == EACCES || e == EPERM) return path + ": cannot be read (permission denied)";
    return path + ": cannot be read (" + Errno{e}.message() + ")";
  }
  struct stat st {};
  bool dir = ::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
  ::close(fd);
  if (dir) return path + ": is a directory, not a PEM file";
  return std::nullopt;
}

// No prompt on the terminal for an encrypted key: the load fails and says so.
int no_passphrase(char*, int, int, void*) {
  return -1;
}

std::string cert_problem(const std::string& path) {
  OpensslErrors e;
  if (e.has(ERR_LIB_PEM, PEM_R_NO_START_LINE)) return path + ": no PEM certificate in it";
  return path + ": not a valid PEM certificate (" + e.first + ")";
}

std::string key_problem(const std::string& key, const std::string& cert) {
  OpensslErrors e;
  if (e.has(ERR_LIB_X509, X509_R_KEY_VALUES_MISMATCH) || e.has(ERR_LIB_X509, X509_R_KEY_TYPE_MISMATCH) ||
      e.has(ERR_LIB_SSL, SSL_R_NO_CERTIFICATE_ASSIGNED))
    return key + ": does not match the certificate in " + cert;
  if (e.has(ERR_LIB_PEM, PEM_R_BAD_PASSWORD_READ) || e.has(ERR_LIB_PEM, PEM_R_PROBLEMS_GETTING_PASSWORD))
    return key + ": the private key is encrypted (a passphrase is not supported)";
  if (e.has(ERR_LIB_PEM, PEM_R_NO_START_LINE) || e.has(ERR_LIB_SSL, ERR_R_PEM_LIB))
    return key + ": no PEM private key in it";
  return key + ": not a valid private key (" + e.first + ")";
}

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned inlen,
                void*) {
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, outlen, kAlpn, sizeof kAlpn - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;  // h2 only: go on without ALPN, as HTTP/1.1
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

// The settings every server SSL_CTX shares: an SSL moved to another by SNI keeps them.
void configure_server(SSL_CTX* ctx, std::chrono::seconds ticket_period) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_cipher_list(ctx, kCiphers12);
  SSL_CTX_set1_groups_list(ctx, kGroups);
  // No SSL_MODE_RELEASE_BUFFERS: it frees and reallocates the record buffers between requests.
  // No partial writes either: a client that negotiates max_fragment_length would make SSL_write
  // return after its first small record.
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Stateless resumption only: tickets carry the session, the server keeps nothing per client.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  // One TLS 1.3 ticket per handshake, not OpenSSL's two: fewer bytes, and a resumed connection
  // gets a fresh one anyway.
  SSL_CTX_set_num_tickets(ctx, 1);
  // The ring decides; this only keeps OpenSSL from refusing a ticket the ring still accepts.
  SSL_CTX_set_timeout(ctx, static_cast<long>(2 * ticket_period.count()));
  static constexpr unsigned char kSidCtx[] = "unbroken";
  SSL_CTX_set_session_id_context(ctx, kSidCtx, sizeof kSidCtx - 1);
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
  SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
}

std::string lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

// The DNS names a certificate is for: its subjectAltName DNS entries, or its CN when it has none.
std::vector<std::string> cert_names(X509* x) {
  std::vector<std::string> names;
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
    if (g->type != GEN_DNS) continue;
    const ASN1_STRING* s = g->d.dNSName;
    names.push_back(lowered(
        {reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<std::size_t>(ASN1_STRING_length(s))}));
  }
  GENERAL_NAMES_free(sans);
  if (!names.empty()) return names;
  X509_NAME* subject = X509_get_subject_name(x);
  int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (at >= 0) {
    const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at));
    names.push_back(lowered(
        {reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<std::size_t>(ASN1_STRING_length(s))}));
  }
  return names;
}

}  // namespace

// Which SSL_CTX a name chooses. It belongs to the default SSL_CTX (its ex_data, freed with it), so
// a handshake that started before a reload still finds the table of its own load.
struct SniTable {
  ~SniTable() {
    for (std::size_t i = 1; i < ctxs.size(); ++i) SSL_CTX_free(ctxs[i]);
  }
  // The SSL_CTX index for `name` (lower case): an exact name, else a wildcard for its parent
  // domain (one label), else 0, the default. The earlier certificate wins a name both have.
  [[nodiscard]] std::size_t find(std::string_view name) const {
    if (auto it = exact.find(name); it != exact.end()) return it->second;
    std::size_t dot = name.find('.');
    if (dot == std::string_view::npos || dot == 0) return 0;
    auto it = wildcard.find(name.substr(dot + 1));
    return it == wildcard.end() ? 0 : it->second;
  }
  void add(std::string_view name, std::size_t index) {
    if (name.starts_with("*.")) {
      wildcard.emplace(name.substr(2), index);
    } else if (name.find('*') == std::string_view::npos) {
      exact.emplace(name, index);
    }
  }
  std::vector<SSL_CTX*> ctxs;  // [0] is the owner (no reference held), the others are references
  std::map<std::string, std::size_t, std::less<>> exact;
  std::map<std::string, std::size_t, std::less<>> wildcard;  // "*.example.com" as "example.com"
};

namespace {

void free_table(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<SniTable*>(ptr);
}

int table_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, free_table);
  return index;
}

int choose_certificate(SSL* ssl, int* alert, void* arg) {
  const auto* table = static_cast<const SniTable*>(arg);
  const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (sni == nullptr) return SSL_TLSEXT_ERR_OK;
  char name[256];
  std::size_t n = std::strlen(sni);
  if (n >= sizeof name) return SSL_TLSEXT_ERR_OK;
  for (std::size_t i = 0; i < n; ++i) name[i] = ascii_lower(sni[i]);
  if (n > 0 && name[n - 1] == '.') --n;
  std::size_t index = table->find({name, n});
  if (index != 0 && SSL_set_SSL_CTX(ssl, table->ctxs[index]) == nullptr) {
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

struct TlsServerContext::State {
  ~State() {
    for (SSL_CTX* c : ctxs) SSL_CTX_free(c);
  }
  std::vector<SSL_CTX*> ctxs;  // one per certificate, the first the default
};

std::unique_ptr<TlsServerContext> TlsServerContext::create(const TlsServerConfig& config, TlsSetupError& error) {
  if (config.ticket_key_period <= std::chrono::seconds::zero()) {
    error.message = "the session ticket key period must be positive";
    return nullptr;
  }
  std::unique_ptr<TlsServerContext> c(new TlsServerContext);
  c->config_ = config;
  c->tickets_ = std::make_shared<TicketKeys>(config.ticket_key_period, config.clock);
  if (!c->reload(error)) return nullptr;
  return c;
}

TlsServerContext::~TlsServerContext() = default;

// One certificate's SSL_CTX, or nullptr and `error`: each file is checked for existence and
// readability first, so the message says which file and what is wrong with it.
static SSL_CTX* load_one(const TlsCertFiles& files, const TlsServerConfig& config,
                         const std::shared_ptr<TlsServerContext::TicketKeys>& keys, TlsSetupError& error) {
  ERR_clear_error();
  CtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx || !TlsServerContext::TicketKeys::attach(ctx.get(), keys)) {
    error.message = "out of memory creating a TLS context";
    return nullptr;
  }
  configure_server(ctx.get(), config.ticket_key_period);
  if (auto why = unreadable(files.cert)) {
    error.message = *why;
    return nullptr;
  }
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), files.cert.c_str()) != 1) {
    error.message = cert_problem(files.cert);
    return nullptr;
  }
  if (auto why = unreadable(files.key)) {
    error.message = *why;
    return nullptr;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), files.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1) {
    error.message = key_problem(files.key, files.cert);
    return nullptr;
  }
  return ctx.release();
}

bool TlsServerContext::reload(TlsSetupError& error) {
  if (config_.certs.empty()) {
    error.message = "no TLS certificate configured";
    return false;
  }
  auto state = std::make_shared<State>();
  for (const TlsCertFiles& files : config_.certs) {
    SSL_CTX* ctx = load_one(files, config_, tickets_, error);
    if (ctx == nullptr) return false;
    state->ctxs.push_back(ctx);
  }
  auto table = std::make_unique<SniTable>();
  for (std::size_t i = 0; i < state->ctxs.size(); ++i) {
    if (i > 0) SSL_CTX_up_ref(state->ctxs[i]);
    table->ctxs.push_back(state->ctxs[i]);
    for (const std::string& name : cert_names(SSL_CTX_get0_certificate(state->ctxs[i]))) table->add(name, i);
  }
  SSL_CTX* def = state->ctxs.front();
  if (SSL_CTX_set_ex_data(def, table_index(), table.get()) != 1) {
    error.message = "out of memory creating a TLS context";
    return false;
  }
  SSL_CTX_set_tlsext_servername_arg(def, table.release());
  SSL_CTX_set_tlsext_servername_callback(def, choose_certificate);
  std::lock_guard lock(mu_);
  current_ = std::move(state);
  return true;
}

SSL* TlsServerContext::new_ssl() {
  std::shared_ptr<State> s;
  {
    std::lock_guard lock(mu_);
    s = current_;
  }
  return SSL_new(s->ctxs.front());
}

KtlsSupport detect_ktls(const std::string& ulp_list) {
  std::string missing;
#ifdef OPENSSL_NO_KTLS
  missing = "OpenSSL was built without kTLS";
#endif
  std::ifstream in(ulp_list);
  std::stringstream ulps;
  ulps << in.rdbuf();
  bool tls = false;
  for (std::string ulp; ulps >> ulp;) tls = tls || ulp == "tls";
  if (!in) {
    missing += (missing.empty() ? "" : " and ") + ("cannot read " + ulp_list);
  } else if (!tls) {
    missing += (missing.empty() ? "" : " and ") + std::string("the kernel has no tls ULP (modprobe tls)");
  }
  if (missing.empty()) return {true, "kernel TLS is available"};
  return {false, "kernel TLS is not available: " + missing + "; static files are encrypted in user space"};
}

std::unique_ptr<TlsClientContext> TlsClientContext::create(const TlsClientConfig& config, TlsSetupError& error) {
  ERR_clear_error();
  std::unique_ptr<TlsClientContext> c(new TlsClientContext);
  c->ctx_ = SSL_CTX_new(TLS_client_method());
  if (c->ctx_ == nullptr || SSL_CTX_set_alpn_protos(c->ctx_, kAlpn, sizeof kAlpn - 1) != 0) {
    error.message = "out of memory creating a TLS context";
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(c->ctx_, TLS1_2_VERSION);
  SSL_CTX_set_options(c->ctx_, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(c->ctx_, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);  // whole writes (see the server's)
  SSL_CTX_set_verify(c->ctx_, SSL_VERIFY_PEER, nullptr);
  if (config.ca_file.empty()) {
    // An empty or absent system store is not an error here: every upstream then fails to verify,
    // each with its reason ("unable to get local issuer certificate").
    SSL_CTX_set_default_verify_paths(c->ctx_);
    ERR_clear_error();
    return c;
  }
  if (auto why = unreadable(config.ca_file)) {
    error.message = *why;
    return nullptr;
  }
  if (SSL_CTX_load_verify_locations(c->ctx_, config.ca_file.c_str(), nullptr) != 1) {
    OpensslErrors e;
    bool none = e.has(ERR_LIB_X509, X509_R_NO_CERTIFICATE_OR_CRL_FOUND) || e.has(ERR_LIB_PEM, PEM_R_NO_START_LINE);
    error.message = config.ca_file + (none ? ": no PEM certificate in it" : ": not a valid CA file (" + e.first + ")");
    return nullptr;
  }
  return c;
}

TlsClientContext::~TlsClientContext() {
  SSL_CTX_free(ctx_);
}

SSL* TlsClientContext::new_ssl(std::string_view host) {
  SSL* ssl = SSL_new(ctx_);
  if (ssl == nullptr) return nullptr;
  std::string h(host);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  unsigned char addr[16];
  bool ip = ::inet_pton(AF_INET, h.c_str(), addr) == 1 || ::inet_pton(AF_INET6, h.c_str(), addr) == 1;
  // SNI carries names only (RFC 6066 3); an address is checked against the certificate's IP SANs.
  bool ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), h.c_str()) == 1
               : SSL_set_tlsext_host_name(ssl, h.c_str()) == 1 && SSL_set1_host(ssl, h.c_str()) == 1;
  if (!ok) {
    ERR_clear_error();
    SSL_free(ssl);
    return nullptr;
  }
  SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  return ssl;
}

std::string_view TlsClientContext::verify_failure(SSL* ssl) {
  long result = SSL_get_verify_result(ssl);
  if (result == X509_V_OK) return {};
  return X509_verify_cert_error_string(result);
}

}  // namespace unbroken::net
