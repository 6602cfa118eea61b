#pragma once
// OpenSSL's allocator, replaced so that steady TLS traffic makes no heap allocation. OpenSSL 3.0
// allocates a 40-byte WPACKET_SUB each time it builds a record header or a TLS 1.3 record's
// additional data (WPACKET_init_static_len zallocs one even over a static buffer), so every record
// read or written would call malloc and free. Small blocks are kept on a free list per thread
// instead and reused; larger ones go to malloc as before.

namespace unbroken::net {

// Installs the allocator. It must run before OpenSSL allocates anything (first thing in main(), or
// in an embedding program before its first OpenSSL call); false if it came too late, in which
// case OpenSSL keeps its own allocator and works as before.
bool install_tls_allocator();

}  // namespace unbroken::net
