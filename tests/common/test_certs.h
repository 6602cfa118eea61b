#pragma once
// Certificates for the TLS tests, made with OpenSSL's API into a directory: an EC P-256 key and a
// certificate for some DNS names (and 127.0.0.1), self-signed or issued by a test CA. A
// self-signed one is its own trust anchor: curl --cacert, Python's ssl and --upstream-ca take it.

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace unbroken::testing {

struct TestCert {
  std::string cert;  // PEM file: the certificate (then its issuer's, when issued by a CA)
  std::string key;   // PEM file: its private key
};

class CertMaker {
 public:
  ~CertMaker() {
    for (EVP_PKEY* k : keys_) EVP_PKEY_free(k);
    for (X509* c : certs_) X509_free(c);
  }

  // Writes `dir`/`stem`.pem and `dir`/`stem`.key: a certificate for `names` (the first is the CN;
  // "127.0.0.1" becomes an IP SAN), valid from an hour ago for `days`. `issuer`: a previous make()
  // with ca = true, or nullptr for self-signed. A CA's certificate can sign others.
  TestCert make(const std::string& dir, const std::string& stem, const std::vector<std::string>& names,
                const TestCert* issuer = nullptr, bool ca = false, long days = 30) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    keys_.push_back(key);
    X509* x = X509_new();
    certs_.push_back(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), static_cast<long>(++serial_ + 1000));
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), days * 86400);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(names.at(0).c_str()),
                               -1, -1, 0);
    X509* issuer_cert = x;
    EVP_PKEY* issuer_key = key;
    if (issuer) {
      for (std::size_t i = 0; i < paths_.size(); ++i)  // paths_ lacks x, made just now
        if (paths_[i] == issuer->cert) {
          issuer_cert = certs_[i];
          issuer_key = keys_[i];
        }
    }
    X509_set_issuer_name(x, X509_get_subject_name(issuer_cert));
    std::string san;
    for (const std::string& n : names) {
      if (!san.empty()) san += ",";
      san += (n.find_first_not_of("0123456789.") == std::string::npos ? "IP:" : "DNS:") + n;
    }
    add_ext(x, issuer_cert, NID_subject_alt_name, san);
    add_ext(x, issuer_cert, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
    if (ca) add_ext(x, issuer_cert, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
    if (X509_sign(x, issuer_key, EVP_sha256()) == 0) throw std::runtime_error("X509_sign failed");
    TestCert out{dir + "/" + stem + ".pem", dir + "/" + stem + ".key"};
    paths_.push_back(out.cert);
    FILE* f = std::fopen(out.cert.c_str(), "w");
    PEM_write_X509(f, x);
    if (issuer && issuer_cert != x) PEM_write_X509(f, issuer_cert);
    std::fclose(f);
    f = std::fopen(out.key.c_str(), "w");
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    return out;
  }

 private:
  static void add_ext(X509* x, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }

  std::vector<EVP_PKEY*> keys_;
  std::vector<X509*> certs_;
  std::vector<std::string> paths_;
  int serial_ = 0;
};

}  // namespace unbroken::testing
