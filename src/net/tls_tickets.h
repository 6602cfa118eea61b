#pragma once
// Internal to tls_context.cc: the session ticket key ring that every SSL_CTX of one
// TlsServerContext shares, across reloads. Keys are made in memory (RAND_bytes) and never written
// anywhere; the current key encrypts, the current and the previous one decrypt, so a ticket resumes
// for between one and two periods after it was made.

#include <openssl/ssl.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>

#include "net/tls_context.h"

namespace unbroken::net {

struct TlsServerContext::TicketKeys {
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  TicketKeys(std::chrono::seconds period, Clock clock);

  // Makes `ctx` issue and accept tickets of this ring, and hold a reference to it (freed with
  // the SSL_CTX). False when OpenSSL is out of memory.
  [[nodiscard]] static bool attach(SSL_CTX* ctx, const std::shared_ptr<TicketKeys>& keys);

  struct Key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
    std::chrono::steady_clock::time_point made;
    bool valid = false;
  };
  // Under mu_: replaces the current key once its period is over, and forgets the previous one
  // two periods after it was made. Lazy (called from the ticket callback), so no timer thread.
  void rotate_locked(std::chrono::steady_clock::time_point now);
  // The key that encrypts a new ticket; invalid when RAND_bytes failed.
  [[nodiscard]] Key for_encrypt();
  // 1: `name` is the current key's, 2: the previous key's (resume, then renew), 0: unknown or too old.
  [[nodiscard]] int for_decrypt(const unsigned char* name, Key& out);

  const std::chrono::steady_clock::duration period;
  const Clock clock;
  std::mutex mu;  // loops on several threads handshake at once
  Key current;
  Key previous;
};

}  // namespace unbroken::net
