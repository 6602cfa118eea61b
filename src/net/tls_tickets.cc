#include "net/tls_tickets.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstring>

namespace unbroken::net {
namespace {

using Keys = TlsServerContext::TicketKeys;

void free_ring(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<std::shared_ptr<Keys>*>(ptr);
}

int ring_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, free_ring);
  return index;
}

Keys::Key fresh_key(std::chrono::steady_clock::time_point now) {
  Keys::Key k{};
  k.made = now;
  k.valid = RAND_bytes(k.name, sizeof k.name) == 1 && RAND_bytes(k.aes, sizeof k.aes) == 1 &&
            RAND_bytes(k.hmac, sizeof k.hmac) == 1;
  return k;
}

bool init_mac(EVP_MAC_CTX* hctx, const Keys::Key& k) {
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
                         OSSL_PARAM_construct_end()};
  return EVP_MAC_init(hctx, k.hmac, sizeof k.hmac, params) == 1;
}

// OpenSSL's ticket callback (SSL_CTX_set_tlsext_ticket_key_evp_cb). It looks the ring up on the
// SSL's current SSL_CTX: after an SNI switch that is another SSL_CTX, which holds the same ring.
int ticket_cb(SSL* ssl, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH], EVP_CIPHER_CTX* cctx,
              EVP_MAC_CTX* hctx, int enc) {
  auto* ring = static_cast<std::shared_ptr<Keys>*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ring_index()));
  if (ring == nullptr) return 0;
  Keys::Key k;
  int found = 1;
  if (enc) {
    k = (*ring)->for_encrypt();
    // 0: no ticket this time (the handshake goes on), rather than failing the handshake.
    if (!k.valid || RAND_bytes(iv, 16) != 1) return 0;
    std::memcpy(key_name, k.name, sizeof k.name);
  } else {
    found = (*ring)->for_decrypt(key_name, k);
    if (found == 0) return 0;  // a full handshake, and a new ticket
  }
  if (EVP_CipherInit_ex(cctx, EVP_aes_256_cbc(), nullptr, k.aes, iv, enc) != 1 || !init_mac(hctx, k)) return -1;
  OPENSSL_cleanse(k.aes, sizeof k.aes);  // the copy on this stack; the ring keeps its own
  OPENSSL_cleanse(k.hmac, sizeof k.hmac);
  return found;
}

}  // namespace

Keys::TicketKeys(std::chrono::seconds p, Clock c)
    : period(p), clock(c ? std::move(c) : Clock([] { return std::chrono::steady_clock::now(); })) {
  current = fresh_key(clock());
}

bool Keys::attach(SSL_CTX* ctx, const std::shared_ptr<Keys>& keys) {
  auto* ref = new std::shared_ptr<Keys>(keys);
  if (SSL_CTX_set_ex_data(ctx, ring_index(), ref) != 1) {
    delete ref;
    return false;
  }
  return SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb) == 1;
}

void Keys::rotate_locked(std::chrono::steady_clock::time_point now) {
  if (!current.valid || now - current.made >= period) {
    previous = current;
    current = fresh_key(now);
  }
  if (previous.valid && now - previous.made >= 2 * period) previous.valid = false;
}

Keys::Key Keys::for_encrypt() {
  std::lock_guard lock(mu);
  rotate_locked(clock());
  return current;
}

int Keys::for_decrypt(const unsigned char* name, Key& out) {
  std::lock_guard lock(mu);
  rotate_locked(clock());
  for (const Key* k : {&current, &previous}) {
    if (k->valid && std::memcmp(k->name, name, sizeof k->name) == 0) {
      out = *k;
      return k == &current ? 1 : 2;
    }
  }
  return 0;
}

}  // namespace unbroken::net
