#pragma once
// The limits of one HTTP server, every default given once here: serve's config embeds this struct
// (its flags point into it), the library's ServerOptions carries it to each loop.

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace unbroken::http {

// Settings of on-the-fly compression (`--gzip`, `--gzip-min-length`).
struct GzipSettings {
  bool enabled = false;
  // Responses whose length is known and below this stay uncompressed (streamed ones are compressed).
  std::uint64_t min_length = 1024;
};

struct HttpLimits {
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds body_timeout{30'000};
  std::chrono::milliseconds handler_timeout{60'000};
  std::chrono::milliseconds send_timeout{30'000};
  std::chrono::milliseconds keepalive_timeout{15'000};
  std::chrono::milliseconds tls_handshake_timeout{10'000};  // from accept to the TLS handshake's end
  std::chrono::milliseconds drain_timeout{10'000};
  // Below this many bytes a second, averaged over send_timeout while output waits for the client,
  // the connection is cut (timer send_rate); 0: no minimum.
  std::uint64_t min_send_rate = 1024;
  // After an error response, how long to read and discard what the client still sends, so that
  // closing does not turn into a RST that destroys the response (nginx lingering_close).
  std::chrono::milliseconds linger_timeout{2'000};
  std::uint64_t max_header_bytes = 16 * 1024;
  std::size_t max_headers = 100;  // header fields in one request head
  std::uint64_t max_body = 8 * 1024 * 1024;
  // Unparsed input held per connection (pipelined requests, body not yet consumed).
  std::size_t max_buffered_input = 64 * 1024;
  GzipSettings gzip;  // on-the-fly compression (off by default)
  // Output queued per connection: producers pause above high, resume below low.
  std::size_t output_high_water = 256 * 1024;
  std::size_t output_low_water = 64 * 1024;
};

}  // namespace unbroken::http
