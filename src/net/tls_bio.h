#pragma once
// The BIO under a TLS connection, when OpenSSL must not touch the socket itself: a source/sink BIO
// whose reads and writes are an object's (BIO_get_data). `Owner::bio_read` and `bio_write` return
// a count, kBioRetry for "not now" (OpenSSL retries when told to), or kBioFailed. The server's
// transport (net/tls_transport.cc) and chaos's client (chaos/tls.cc) each have one.

#include <openssl/bio.h>

namespace unbroken::net {

inline constexpr int kBioRetry = -1;
inline constexpr int kBioFailed = -2;

// One method per Owner type, made on first use (thread-safe: a function-local static).
template <typename Owner>
BIO_METHOD* bio_method_for(const char* name) {
  static BIO_METHOD* method = [name] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, name);
    BIO_meth_set_write(m, [](BIO* b, const char* data, int len) {
      BIO_clear_retry_flags(b);
      int n = static_cast<Owner*>(BIO_get_data(b))->bio_write(data, len);
      if (n == kBioRetry) BIO_set_retry_write(b);
      return n < 0 ? -1 : n;
    });
    BIO_meth_set_read(m, [](BIO* b, char* out, int len) {
      BIO_clear_retry_flags(b);
      int n = static_cast<Owner*>(BIO_get_data(b))->bio_read(out, len);
      if (n == kBioRetry) BIO_set_retry_read(b);
      return n < 0 ? -1 : n;
    });
    BIO_meth_set_ctrl(m, [](BIO*, int cmd, long, void*) -> long { return cmd == BIO_CTRL_FLUSH ? 1 : 0; });
    BIO_meth_set_create(m, [](BIO* b) {
      BIO_set_init(b, 1);
      return 1;
    });
    return m;
  }();
  return method;
}

}  // namespace unbroken::net
