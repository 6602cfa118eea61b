#pragma once
// Bytes that requests and responses share on the wire, written by the response encoder and the
// request serializer alike: decimal lengths, field lines, chunk-size lines, the last chunk, and which
// statuses carry no body. Allocation-free beyond the caller's string.

#include <array>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/text.h"

namespace unbroken::http {

inline void append_decimal(std::string& out, std::uint64_t v) {
  char buf[20];
  out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

// "name: value\r\n". Names are tokens and values hold no CR or LF (what the parsers accepted, or
// our own text).
inline void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

// The size line of a chunk of n bytes ("1a\r\n"), written into buf.
using ChunkSizeBuffer = std::array<char, 18>;  // 16 hex digits and CRLF
inline std::string_view chunk_size_line(ChunkSizeBuffer& buf, std::uint64_t n) {
  char* end = std::to_chars(buf.data(), buf.data() + 16, n, 16).ptr;
  *end++ = '\r';
  *end++ = '\n';
  return {buf.data(), static_cast<std::size_t>(end - buf.data())};
}

// The last chunk of a chunked body, with no trailer fields.
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

// 1xx, 204 and 304 answers carry no body and no framing fields (RFC 9112 6.3), whatever their
// head says.
constexpr bool bodiless_status(int status) {
  return status < 200 || status == 204 || status == 304;
}

// RFC 9110 7.6.1: the fields of one connection, never forwarded by a proxy in either direction:
// Connection, Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade.
inline bool is_hop_by_hop_field(std::string_view name) {
  constexpr std::array<std::string_view, 6> kHopByHop{"connection", "keep-alive",        "proxy-connection",
                                                      "te",         "transfer-encoding", "upgrade"};
  for (std::string_view h : kHopByHop)
    if (iequals(name, h)) return true;
  return false;
}

// Whether a Connection field among `fields` names `name`, which makes it hop-by-hop too. Fields:
// HeaderList (what the parsers keep) or Headers (a handler's), anything of name/value pairs.
template <class Fields>
bool named_by_connection(const Fields& fields, std::string_view name) {
  for (const auto& [k, v] : fields) {
    if (!iequals(k, "connection")) continue;
    for (std::string_view list = v; !list.empty();)
      if (iequals(next_list_element(list), name)) return true;
  }
  return false;
}

}  // namespace unbroken::http
