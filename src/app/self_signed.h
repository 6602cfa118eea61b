#pragma once
// --tls-self-signed: a certificate for localhost that serve makes on first run and reuses after,
// so that `make serve` can speak HTTPS with nothing set up (curl --cacert takes the certificate).

#include <string>

namespace unbroken::app {

struct SelfSignedFiles {
  std::string cert;   // DIR/localhost.pem
  std::string key;    // DIR/localhost.key (mode 0600)
  bool made = false;  // true: written now; false: reused from an earlier run
};

// Start-up only. Reuses DIR/localhost.pem and .key while the certificate is readable and valid for
// another day; otherwise makes a new pair (EC P-256, SAN DNS:localhost and IP:127.0.0.1, one
// year), creating DIR. False with `error` set (one line naming the file) when it cannot.
[[nodiscard]] bool self_signed_localhost(const std::string& dir, SelfSignedFiles& out, std::string& error);

}  // namespace unbroken::app
