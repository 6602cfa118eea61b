#include "app/self_signed.h"

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>
#include <system_error>

namespace unbroken::app {
namespace {

constexpr long kDays = 365;

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, Deleter<X509, X509_free>>;

// Still worth serving: parses, and is valid a day from now.
bool usable(const std::string& cert_path, const std::string& key_path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(key_path, ec)) return false;
  FILE* f = std::fopen(cert_path.c_str(), "r");
  if (f == nullptr) return false;
  CertPtr cert(PEM_read_X509(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  if (!cert) return false;
  std::time_t tomorrow = std::time(nullptr) + 86400;
  return X509_cmp_time(X509_get0_notAfter(cert.get()), &tomorrow) > 0;
}

bool add_ext(X509* x, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) return false;
  int ok = X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
  return ok == 1;
}

CertPtr make_cert(EVP_PKEY* key) {
  CertPtr x(X509_new());
  X509_set_version(x.get(), 2);
  // A random serial: a browser that saw an earlier localhost certificate with the same issuer and
  // serial would refuse this one.
  BIGNUM* serial = BN_new();
  BN_rand(serial, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY);
  BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x.get()));
  BN_free(serial);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);  // a client's clock a little behind
  X509_gmtime_adj(X509_getm_notAfter(x.get()), kDays * 86400);
  X509_set_pubkey(x.get(), key);
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("unbroken self-signed"),
                             -1, -1, 0);
  X509_set_issuer_name(x.get(), name);
  bool ok = add_ext(x.get(), NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1") &&
            add_ext(x.get(), NID_basic_constraints, "critical,CA:FALSE") &&
            add_ext(x.get(), NID_ext_key_usage, "serverAuth") && X509_sign(x.get(), key, EVP_sha256()) > 0;
  return ok ? std::move(x) : nullptr;
}

// Written beside `path` and renamed over it, so that a crash leaves no half file to reuse.
template <typename Write>
bool write_file(const std::string& path, mode_t mode, Write write, std::string& error) {
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr || ::fchmod(fileno(f), mode) != 0) {
    error = tmp + ": " + std::strerror(errno);
    if (f != nullptr) std::fclose(f);
    return false;
  }
  bool ok = write(f) == 1;
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    error = path + ": cannot write: " + std::strerror(errno);
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

}  // namespace

bool self_signed_localhost(const std::string& dir, SelfSignedFiles& out, std::string& error) {
  out = SelfSignedFiles{dir + "/localhost.pem", dir + "/localhost.key", false};
  if (usable(out.cert, out.key)) return true;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    error = dir + ": cannot create: " + ec.message();
    return false;
  }
  KeyPtr key(EVP_EC_gen("P-256"));
  CertPtr cert = key ? make_cert(key.get()) : nullptr;
  if (!cert) {
    error = out.cert + ": cannot make a certificate (OpenSSL)";
    return false;
  }
  // The key first: a certificate on disk always has its key beside it.
  if (!write_file(
          out.key, 0600,
          [&](FILE* f) { return PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr, nullptr); }, error) ||
      !write_file(
          out.cert, 0644, [&](FILE* f) { return PEM_write_X509(f, cert.get()); }, error)) {
    return false;
  }
  out.made = true;
  return true;
}

}  // namespace unbroken::app
